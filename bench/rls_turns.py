"""The API with Row-Level Security on and off, alone, in many short turns, with CPU per request.

    python -m bench.rls_turns --reuse                          # 10,000 posts, Q1-Q5, 10 turns of 3 s
    python -m bench.rls_turns --posts 1000000 --reuse --scenarios Q5 --turns 20

`bench/run` measures the API with RLS on and off in turns with three other servers, 12 s each per
scenario, and reports one ratio, which strays by several hundredths from run to run. This runs
only the two (one worker each; RLS off on the single-tenant copy `bench/run` makes, made afresh
here and dropped at the end) and gives per scenario the ratio of the summed requests over all
turns, the median and the range of the turns' own ratios, and where the difference is: the CPU
per request of PostgreSQL (every process of the server, when it runs on this machine) and of the
API's worker, summed over the turns (`bench/turns.py`). The two take each turn in alternating
order. Nothing is written to a file.

What the statement alone costs as the request role against the superuser (the API with RLS off
runs as the connecting role) is `python -m bench.statement_cpu`'s to measure.
"""

from __future__ import annotations

import asyncio

from bench import runner, servers
from bench.cli import turns_parser, turns_setup
from bench.load import drop_database, single_tenant_copy
from bench.machine import PostgresCpu
from bench.scenarios import BY_NAME, Scenario
from bench.turns import alternate, summary


def main(argv: list[str] | None = None) -> int:
    parser = turns_parser("python -m bench.rls_turns", __doc__)
    args = parser.parse_args(argv)
    for name in args.scenarios:
        if BY_NAME[name].kind == "write":
            # Each server writes posts of its own in `bench/run` (`runner.WRITE_SHARES`); these
            # two would write the same ones.
            parser.error(f"{name} is a write: bench/run measures it")
    admin_url, loaded, settings = turns_setup(args, "rls-turns-")
    folder = settings.work_dir
    name = f"cms_bench_{args.posts}"
    off_url = asyncio.run(single_tenant_copy(admin_url, name, loaded.organization_id))
    postgres = asyncio.run(PostgresCpu.find(loaded.url))
    on = servers.start(
        "api-1w",
        "server",
        workers=1,
        env={"DATABASE_URL": loaded.url, "ENABLE_RLS": "true"},
        log_dir=folder,
    )
    try:
        off = servers.start(
            "api-rls-off-1w",
            "server",
            workers=1,
            env={"DATABASE_URL": off_url, "ENABLE_RLS": "false"},
            log_dir=folder,
        )
        try:
            targets = [
                runner.Target("on", on, loaded.url),
                runner.Target("off", off, off_url),
            ]
            for scenario in args.scenarios:
                print(_measure(targets, BY_NAME[scenario], settings, args.turns, postgres))
        finally:
            off.stop()
    finally:
        on.stop()
        asyncio.run(drop_database(admin_url, f"{name}_rls_off"))
    return 0


def _measure(
    targets: list[runner.Target],
    scenario: Scenario,
    settings: runner.Settings,
    turns: int,
    postgres: PostgresCpu,
) -> str:
    measured = alternate(targets, scenario, settings, turns, postgres)
    return summary(scenario.name, "RLS on / off", measured["on"], measured["off"], ("on", "off"))


if __name__ == "__main__":
    raise SystemExit(main())
