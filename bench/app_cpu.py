"""The application's CPU per read with no HTTP around it: the API's app and the floor's, called as ASGI.

    python -m bench.app_cpu --reuse                      # Q4, 10,000 posts, 7 rounds of 6,000 reads
    python -m bench.app_cpu --reuse --scenarios Q4 Q1 --rounds 9 --concurrency 16

Under wrk the worker's time is mostly the HTTP server's (uvicorn parsing, its access log, two
socket writes per response), which the API and the floor share, so a change of a few microseconds
in the app's own path hides in the machine's drift (single 3-second turns stray by ±10%). This
calls each app directly, as uvicorn would (`scope`, `receive`, `send`), `--concurrency` reads at
once on one event loop (uvloop, as `serve` runs), and measures this process's CPU per read, in
which what remains is the app's own code, the driver and the event loop. At the default of four
reads at once a pooled connection is always free, as it mostly is under wrk, where the worker
and not the pool is the bottleneck; at sixteen most reads wait for one to be handed over.

The floor is `bench/floor.py`'s app on the same database; the API reads as the scenarios'
organization with its API key. The two take turns, a round each in alternating order, and the
median and the least of each one's rounds are printed, the least because the machine's drift only
ever adds. Needs the bench database (`--reuse` keeps the one an
earlier run loaded).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Iterator
from typing import Any

import uvloop

from bench.cli import _admin_url, _post_ids, _prepare
from bench.dataset import Dataset
from bench.floor import create_app as floor_app
from bench.read_cpu import request_bodies
from bench.scenarios import BY_NAME
from server.app import create_app
from server.config import Settings
from server.services import Services

WARM_UP = 300  # reads before the rounds, for each app


class _Reads:
    """One app's reads of one scenario, as uvicorn would hand them to it."""

    def __init__(
        self, app: Any, path: str, headers: list[tuple[bytes, bytes]], bodies: Iterator[bytes]
    ) -> None:
        self.app, self.path, self.headers, self.bodies = app, path, headers, bodies
        self.figures: list[float] = []

    async def read(self) -> None:
        body = next(self.bodies)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": self.path,
            "raw_path": self.path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [*self.headers, (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return messages.pop() if messages else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await self.app(scope, receive, send)
        if sent[0]["status"] != 200 or b'"errors"' in sent[-1]["body"]:
            raise RuntimeError(f"{self.path}: {sent}")

    async def run(self, reads: int, concurrency: int) -> float:
        """µs of this process's CPU per read, over `reads` reads, `concurrency` at once."""
        each = max(1, reads // concurrency)

        async def reader() -> None:
            for _ in range(each):
                await self.read()

        started = time.process_time()
        await asyncio.gather(*(reader() for _ in range(concurrency)))
        return (time.process_time() - started) / (each * concurrency) * 1e6


async def run(admin_url: str, args: argparse.Namespace) -> None:
    loaded = await _prepare(
        admin_url, f"cms_bench_{args.posts}", Dataset(args.posts, 1), reuse=args.reuse, log=print
    )
    post_ids, _ = await _post_ids(loaded)
    settings = Settings(database_url=loaded.url, delivery_worker=False)
    services = Services.create(settings)
    await services.start()
    api = create_app(settings, services=services)
    floor = floor_app(settings, loaded.organization_id)
    content_type = (b"content-type", b"application/json")
    api_headers = [content_type, (b"authorization", f"Bearer {loaded.api_key}".encode())]
    try:
        async with api.router.lifespan_context(api), floor.router.lifespan_context(floor):
            for name in args.scenarios:
                scenario = BY_NAME[name]
                both = [
                    _Reads(api, "/graphql", api_headers, request_bodies(scenario, post_ids)),
                    _Reads(
                        floor,
                        scenario.floor_path,
                        [content_type],
                        request_bodies(scenario, post_ids),
                    ),
                ]
                for reads in both:
                    await reads.run(WARM_UP, args.concurrency)
                # The two take turns, in alternating order, so that the machine's drift falls on both.
                for turn in range(args.rounds):
                    for reads in both if turn % 2 == 0 else both[::-1]:
                        reads.figures.append(await reads.run(args.reads, args.concurrency))
                for label, reads in zip(("API", "floor"), both, strict=True):
                    figures = reads.figures
                    print(
                        f"{name} {label:5s} median {statistics.median(figures):6.1f} µs,"
                        f" least {min(figures):6.1f} µs  ({' '.join(f'{f:.1f}' for f in figures)})",
                        flush=True,
                    )
    finally:
        await services.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.app_cpu", description=__doc__)
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--scenarios", nargs="+", default=["Q4"])
    parser.add_argument("--reads", type=int, default=6000, help="per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=4, help="reads at once")
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args(argv)
    admin_url = _admin_url()
    uvloop.run(run(admin_url, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
