"""The API direct and through PgBouncer, alone, in many short turns: how far one turn's ratio strays.

    python -m bench.pooler_turns                          # 10,000 posts, Q1-Q5, 10 turns of 3 s
    python -m bench.pooler_turns --posts 1000000 --reuse  # on the scale run's database
    python -m bench.pooler_turns --scenarios Q4 --turns 20

`bench/run` measures the API through PgBouncer in turns with three other servers, 12 s each per
scenario, and reports one ratio. On a shared machine one turn's ratio strays by a fifth either
way, so that figure lands on either side of a target near it. This runs only the two (one worker
each, PgBouncer in transaction mode on its Unix socket, as `bench/run` starts them) and gives per
scenario the ratio of the summed requests over all turns, then the median and the range of the
turns' own ratios. The two take each turn in alternating order. Nothing is written to a file.
"""

from __future__ import annotations

import statistics

from bench import runner, servers
from bench.cli import pooled_api, turns_parser, turns_setup
from bench.scenarios import BY_NAME, Scenario


def main(argv: list[str] | None = None) -> int:
    parser = turns_parser("python -m bench.pooler_turns", __doc__)
    args = parser.parse_args(argv)
    admin_url, loaded, settings = turns_setup(args, "pooler-turns-")
    folder = settings.work_dir
    env = {"DATABASE_URL": loaded.url, "ENABLE_RLS": "true"}
    direct = servers.start("api-1w", "server", workers=1, env=env, log_dir=folder)
    try:
        with pooled_api(folder, admin_url, loaded.url) as pooled_server:
            targets = [
                runner.Target("direct", direct, loaded.url),
                runner.Target("pooled", pooled_server, loaded.url),
            ]
            for name in args.scenarios:
                print(_measure(targets, BY_NAME[name], settings, args.turns), flush=True)
    finally:
        direct.stop()
    return 0


def _measure(
    targets: list[runner.Target], scenario: Scenario, settings: runner.Settings, turns: int
) -> str:
    for target in targets:
        runner.run_wrk(target, scenario, settings, settings.warmup)
    rps: dict[str, list[float]] = {target.label: [] for target in targets}
    for turn in range(turns):
        for target in targets if turn % 2 == 0 else targets[::-1]:
            rps[target.label].append(
                runner.run_wrk(target, scenario, settings, settings.duration).rps
            )
    ratios = [p / d for p, d in zip(rps["pooled"], rps["direct"], strict=True)]
    return (
        f"{scenario.name}: through PgBouncer / direct {sum(rps['pooled']) / sum(rps['direct']):.2f}"
        f" (median of the turns {statistics.median(ratios):.2f},"
        f" {min(ratios):.2f}-{max(ratios):.2f}); direct {statistics.mean(rps['direct']):.0f} req/s,"
        f" through PgBouncer {statistics.mean(rps['pooled']):.0f} req/s"
    )


if __name__ == "__main__":
    raise SystemExit(main())
