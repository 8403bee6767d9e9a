"""The API direct and through PgBouncer, alone, in many short turns: how far one turn's ratio strays.

    python -m bench.pooler_turns                          # 10,000 posts, Q1-Q5, 10 turns of 3 s
    python -m bench.pooler_turns --posts 1000000 --reuse  # on the scale run's database
    python -m bench.pooler_turns --scenarios Q4 --turns 20

`bench/run` measures the API through PgBouncer in turns with three other servers, 12 s each per
scenario, and reports one ratio. On a shared machine one turn's ratio strays by a fifth either
way, so that figure lands on either side of a target near it. This runs only the two (one worker
each, PgBouncer in transaction mode on its Unix socket, as `bench/run` starts them) and gives per
scenario the ratio of the summed requests over all turns, then the median and the range of the
turns' own ratios, and the CPU per request of PostgreSQL, of the API's worker and of PgBouncer
summed over the turns (`bench/turns.py`). The two take each turn in alternating order. Nothing is
written to a file.
"""

from __future__ import annotations

import asyncio

import psutil

from bench import runner, servers
from bench.cli import pooled_api, turns_parser, turns_setup
from bench.machine import PostgresCpu
from bench.scenarios import BY_NAME
from bench.turns import alternate, summary

PGBOUNCER = "PgBouncer"


def main(argv: list[str] | None = None) -> int:
    parser = turns_parser("python -m bench.pooler_turns", __doc__)
    args = parser.parse_args(argv)
    admin_url, loaded, settings = turns_setup(args, "pooler-turns-")
    folder = settings.work_dir
    postgres = asyncio.run(PostgresCpu.find(loaded.url))
    env = {"DATABASE_URL": loaded.url, "ENABLE_RLS": "true"}
    direct = servers.start("api-1w", "server", workers=1, env=env, log_dir=folder)
    try:
        with pooled_api(folder, admin_url, loaded.url) as (pooled_server, pooler):
            targets = [
                runner.Target("direct", direct, loaded.url),
                runner.Target("pooled", pooled_server, loaded.url),
            ]
            others = {PGBOUNCER: psutil.Process(pooler.pid)} if pooler.pid else {}
            for name in args.scenarios:
                measured = alternate(targets, BY_NAME[name], settings, args.turns, postgres, others)
                line = summary(
                    name,
                    "through PgBouncer / direct",
                    measured["pooled"],
                    measured["direct"],
                    ("through PgBouncer", "direct"),
                )
                print(line, flush=True)
    finally:
        direct.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
