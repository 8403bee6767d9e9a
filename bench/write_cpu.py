"""CPU per W1 pair (updatePost then publishPost), in this process and in PostgreSQL.

    python -m bench.write_cpu                  # 2,000 posts, 5 rounds of 200 pairs
    python -m bench.write_cpu --posts 10000 --pairs 300 --rounds 7 --worker
    python -m bench.write_cpu --cycle 100      # each post written again after 100 pairs

The API runs in this process over httpx's ASGI transport (as `bench/inprocess.py`), one pair after
the other, so the figures are CPU time per pair with no contention: this process's (the client's
share is small and the same before and after a change) and the PostgreSQL server's (every backend,
when it runs on this machine). Each round prints both; the median is what to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import random
import statistics
import time
from collections.abc import Awaitable, Callable

import httpx
import orjson

from bench.cli import _admin_url, _post_ids, _prepare
from bench.dataset import Dataset
from bench.machine import PostgresCpu
from bench.runner import revisions
from bench.scenarios import BY_NAME, update_variables
from server.app import create_app
from server.config import Settings
from server.engine.postgres import PostgresAdapter
from server.services import Services


async def run(
    admin_url: str,
    posts: int,
    pairs: int,
    rounds: int,
    *,
    worker: bool,
    plans: bool = False,
    profile: bool = False,
    concurrency: int = 1,
    cycle: int = 0,
) -> None:
    loaded = await _prepare(
        admin_url, f"cms_write_cpu_{posts}", Dataset(posts, 1), reuse=True, log=print
    )
    _, ids = await _post_ids(loaded)
    ids = ids[:cycle] if cycle else ids
    revision = dict(zip(ids, await revisions(loaded.url, ids), strict=True))
    pg = await PostgresCpu.find(loaded.url)
    scenario = BY_NAME["W1"]
    settings = Settings(database_url=loaded.url, delivery_worker=worker)
    services = Services.create(settings, PostgresAdapter(loaded.url, pool_size=max(4, concurrency)))
    await services.start()
    headers = {"Authorization": f"Bearer {loaded.api_key}", "Content-Type": "application/json"}
    transport = httpx.ASGITransport(app=create_app(settings, services=services))
    done = [0] * concurrency
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

            async def pair(task: int = 0) -> None:
                # Each concurrent task writes posts of its own: no revision conflicts.
                mine = ids[task::concurrency]
                post = mine[done[task] % len(mine)]
                done[task] += 1
                variables = update_variables(post, revision[post], _rating())
                for body in (
                    scenario.body(variables),
                    scenario.body({"id": post}, second=True),
                ):
                    answer = orjson.loads(
                        (await client.post("/graphql", content=body, headers=headers)).content
                    )
                    if "errors" in answer:
                        raise RuntimeError(answer)
                    revision[post] = next(iter(answer["data"].values()))["revision"]

            for _ in range(20):
                await pair()
            profiler = cProfile.Profile() if profile else None
            if profiler is not None:
                profiler.enable()
            ours, theirs, walls, counted = [], [], [], []
            for _ in range(rounds):
                statements = services.adapter.database.statements
                cpu, pg_before, wall = time.process_time(), pg.read(), time.perf_counter()
                await asyncio.gather(
                    *(_pairs(pair, task, pairs // concurrency) for task in range(concurrency))
                )
                walls.append((time.perf_counter() - wall) / pairs * 1000)
                ours.append((time.process_time() - cpu) / pairs * 1000)
                used = PostgresCpu.used(pg_before, pg.read())
                # Every statement through a `Tx`: the requests' and the outbox worker's.
                counted.append((services.adapter.database.statements - statements) / pairs)
                theirs.append((used or 0.0) / pairs * 1000)
                print(
                    f"pair: this process {ours[-1]:.2f} ms CPU, PostgreSQL {theirs[-1]:.2f} ms CPU,"
                    f" {walls[-1]:.2f} ms wall, {counted[-1]:.2f} statements",
                    flush=True,
                )
        if profiler is not None:
            profiler.disable()
            stats = pstats.Stats(profiler).sort_stats(os.environ.get("PROFILE_SORT", "tottime"))
            stats.print_stats(os.environ.get("PROFILE_FILTER", ""), 60)
        if plans:
            await _print_plans(services)
    finally:
        await services.stop()
    print(
        f"median of {rounds} x {pairs} pairs: this process {statistics.median(ours):.2f} ms,"
        f" PostgreSQL {statistics.median(theirs):.2f} ms, wall {statistics.median(walls):.2f} ms,"
        f" {statistics.median(counted):.2f} statements"
    )


async def _pairs(pair: Callable[[int], Awaitable[None]], task: int, count: int) -> None:
    for _ in range(count):
        await pair(task)


def _rating() -> float:
    # Never the rating the post has (a save of the same data writes nothing): a new one each time.
    return random.randrange(1, 49_000) / 10_000 + 0.00001 * (time.perf_counter_ns() % 100)  # noqa: S311


async def _print_plans(services: Services) -> None:
    """How often PostgreSQL planned each prepared statement of the pool afresh (custom plans)."""
    # asyncpg's pool: its holders know every connection, those this process holds between uses too.
    for holder in services.adapter.database.pool._holders:
        conn = holder._con
        if conn is None or conn.is_closed():
            continue
        for row in await conn.fetch(
            "SELECT generic_plans, custom_plans, left(regexp_replace(statement, '\\s+', ' ', 'g'), 90)"
            " AS sql FROM pg_prepared_statements WHERE statement LIKE '%cms_documents%'"
            " ORDER BY custom_plans DESC"
        ):
            print(f"  generic {row[0]:5d} custom {row[1]:5d}  {row[2]}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.write_cpu")
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=1, help="pairs in flight at once")
    parser.add_argument("--profile", action="store_true", help="cProfile the pairs")
    parser.add_argument("--plans", action="store_true", help="show the pool's plan choices")
    parser.add_argument("--worker", action="store_true", help="run the outbox worker too")
    parser.add_argument(
        "--cycle",
        type=int,
        default=0,
        help="write only the first N posts, each again after N pairs (default: all of them)",
    )
    args = parser.parse_args()
    asyncio.run(
        run(
            _admin_url(),
            args.posts,
            args.pairs,
            args.rounds,
            worker=args.worker,
            plans=args.plans,
            profile=args.profile,
            concurrency=args.concurrency,
            cycle=args.cycle,
        )
    )


if __name__ == "__main__":
    main()
