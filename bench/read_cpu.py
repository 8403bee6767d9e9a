"""CPU per compiled read, direct and through PgBouncer: in this process, in PgBouncer, in PostgreSQL.

    python -m bench.read_cpu                   # 2,000 posts, Q1 and Q5, 5 rounds of 500 reads
    python -m bench.read_cpu --posts 10000 --reads 1000 --rounds 7 --scenarios Q1
    python -m bench.read_cpu --posts 10000 --scenarios Q4 Q1 --direct-only

The API runs in this process over httpx's ASGI transport (as `bench/write_cpu.py`), one read after
the other, once on PostgreSQL directly and once through a PgBouncer in transaction mode started
for the run (on its Unix socket, as a sidecar would be; start-up work and LISTEN go direct, as
`docs/scaling.md` sets it up). So the figures are CPU time per read with no contention, split
where the pooled path spends it: this process, PgBouncer, and the PostgreSQL server (every
backend, when it runs on this machine). Each round prints them; the medians are what to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import orjson
import psutil

from bench import pgbouncer
from bench.cli import _admin_url, _post_ids, _prepare
from bench.dataset import Dataset
from bench.machine import PostgresCpu
from bench.scenarios import BY_NAME, Scenario
from server.app import create_app
from server.config import Settings
from server.services import Services

WARM_UP = 50


@dataclass
class Rounds:
    """Microseconds of CPU per read, one figure per round, for each part."""

    api: list[float]
    pooler: list[float]
    postgres: list[float]

    def last(self) -> str:
        return _line(self.api[-1], self.pooler[-1], self.postgres[-1])

    def median(self) -> str:
        return _line(*map(statistics.median, (self.api, self.pooler, self.postgres)))


def request_bodies(scenario: Scenario, post_ids: list[str]) -> Iterator[bytes]:
    """The request bodies to send, one per read: Q4 cycles through post ids, the others repeat."""
    if scenario.kind != "by_id":
        return itertools.repeat(scenario.body())
    return itertools.cycle([scenario.body({"id": post_id}) for post_id in post_ids])


async def _measure(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    bodies: Iterator[bytes],
    reads: int,
    rounds: int,
    pg: PostgresCpu,
    pooler_cpu: Callable[[], float],
) -> Rounds:
    async def read() -> None:
        response = await client.post("/graphql", content=next(bodies), headers=headers)
        if response.status_code != 200 or "errors" in orjson.loads(response.content):
            raise RuntimeError(response.text)

    for _ in range(WARM_UP):
        await read()
    measured = Rounds([], [], [])
    for _ in range(rounds):
        cpu, pg_before, pooler_before = time.process_time(), pg.read(), pooler_cpu()
        for _ in range(reads):
            await read()
        measured.api.append((time.process_time() - cpu) / reads * 1e6)
        measured.pooler.append((pooler_cpu() - pooler_before) / reads * 1e6)
        measured.postgres.append((PostgresCpu.used(pg_before, pg.read()) or 0.0) / reads * 1e6)
        print(f"  {measured.last()}", flush=True)
    return measured


def _line(api: float, pooler: float, postgres: float) -> str:
    return f"this process {api:6.0f} µs, PgBouncer {pooler:5.0f} µs, PostgreSQL {postgres:6.0f} µs"


async def run(
    admin_url: str, posts: int, reads: int, rounds: int, names: list[str], *, direct_only: bool
) -> None:
    loaded = await _prepare(
        admin_url, f"cms_read_cpu_{posts}", Dataset(posts, 1), reuse=True, log=print
    )
    post_ids, _ = await _post_ids(loaded)
    pg = await PostgresCpu.find(loaded.url)
    database = pgbouncer.Upstream.of(loaded.url).database
    results: dict[tuple[str, str], Rounds] = {}
    with pgbouncer.pgbouncer(admin_url, pool_size=4) as pooler:
        pooler_cpu = _pooler_cpu()
        reaches = {
            "direct": Settings(database_url=loaded.url, pool_size=4),
            "pooled": Settings(
                database_url=pooler.url(database),
                database_pool_mode="transaction",
                database_direct_url=loaded.url,
                pool_size=4,
            ),
        }
        if direct_only:
            del reaches["pooled"]
        for reach, settings in reaches.items():
            services = Services.create(settings)
            await services.start()
            headers = {
                "Authorization": f"Bearer {loaded.api_key}",
                "Content-Type": "application/json",
            }
            transport = httpx.ASGITransport(app=create_app(settings, services=services))
            try:
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://bench"
                ) as client:
                    for name in names:
                        print(f"{name} {reach}:", flush=True)
                        results[name, reach] = await _measure(
                            client,
                            headers,
                            request_bodies(BY_NAME[name], post_ids),
                            reads,
                            rounds,
                            pg,
                            pooler_cpu,
                        )
            finally:
                await services.stop()
    print(f"median of {rounds} x {reads} reads, CPU per read:")
    for (name, reach), measured in results.items():
        print(f"  {name} {reach:6s}: {measured.median()}")


def _pooler_cpu() -> Callable[[], float]:
    """CPU seconds of the PgBouncer this process started (its child), as a reading."""
    found = [p for p in psutil.Process().children() if p.name() == "pgbouncer"]
    if len(found) != 1:
        raise RuntimeError(f"expected one pgbouncer child process, found {len(found)}")

    def read() -> float:
        cpu = found[0].cpu_times()
        return float(cpu.user + cpu.system)

    return read


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.read_cpu")
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--reads", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--scenarios", nargs="+", default=["Q1", "Q5"], choices=["Q1", "Q2", "Q3", "Q4", "Q5"]
    )
    parser.add_argument("--direct-only", action="store_true", help="skip the run through PgBouncer")
    args = parser.parse_args()
    asyncio.run(
        run(
            _admin_url(),
            args.posts,
            args.reads,
            args.rounds,
            args.scenarios,
            direct_only=args.direct_only,
        )
    )


if __name__ == "__main__":
    main()
