"""The API in this process, over httpx's ASGI transport: statement counts and the statements' SQL.

`Database.statements` counts every statement a request runs through its transaction (`Tx`), the
opening (`OPENING_STATEMENTS` in bench/scenarios.py) included; BEGIN and COMMIT are not statements
of the unit of work and are not counted. A subclass of the database
also keeps the SQL and arguments of each statement, which `bench/explain.py` replays under EXPLAIN.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.scenarios import Scenario, update_variables
from server.app import create_app
from server.config import Settings
from server.db.pool import Database, Tx
from server.engine.postgres import PostgresAdapter
from server.services import Services

Statement = tuple[str, tuple[Any, ...]]


class RecordingDatabase(Database):
    """A `Database` that also keeps the SQL and arguments of every statement its transactions run."""

    def __init__(self, url: str, *, pool_size: int = 4) -> None:
        super().__init__(url, pool_size=pool_size)
        self.log: list[Statement] = []

    @asynccontextmanager
    async def transaction(
        self, *, read_only: bool = False, opening: str | None = None, commit_token: bool = False
    ) -> AsyncIterator[Tx]:
        if opening is not None:
            # It runs before the `Tx` is handed out (with BEGIN, in one round trip): recorded here.
            self.log.append((opening, ()))
        async with super().transaction(
            read_only=read_only, opening=opening, commit_token=commit_token
        ) as tx:
            # Wrapped on the instance: exactly the statements the unit of work runs through its
            # `Tx`, not the driver's own (type introspection, BEGIN, COMMIT).
            for name in ("fetch", "fetchrow", "fetchval", "execute", "executemany"):
                setattr(tx, name, self._recording(getattr(tx, name)))
            yield tx

    def ran(self, sql: str, args: Sequence[Any]) -> None:
        # A read's one statement (`cms_read`): the read itself is what EXPLAIN replays.
        super().ran(sql, args)
        self.log.append((sql, tuple(args)))

    def _recording(self, method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def run(sql: str, *args: Any) -> Any:
            self.log.append((sql, args))
            return await method(sql, *args)

        return run


@dataclass
class Measured:
    """One scenario's requests: the statements each ran, counted and recorded."""

    counts: list[int] = field(default_factory=list)
    statements: list[list[Statement]] = field(default_factory=list)
    # W1: the post and the revision each draft save expected.
    saves: list[tuple[str, int]] = field(default_factory=list)


@asynccontextmanager
async def app_client(url: str) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    adapter = PostgresAdapter(url, pool_size=4)
    adapter.database = RecordingDatabase(url, pool_size=4)
    # No outbox worker: its statements would be counted with the requests'.
    settings = Settings(database_url=url, delivery_worker=False)
    services = Services.create(settings, adapter)
    await services.start()
    transport = httpx.ASGITransport(app=create_app(settings, services=services))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            yield client, services
    finally:
        await services.stop()


async def measure(
    client: httpx.AsyncClient,
    services: Services,
    scenario: Scenario,
    *,
    api_key: str,
    post_ids: list[str],
    revision_of: Callable[[str], Any],
    repeat: int = 5,
) -> Measured:
    """Send the scenario's request `repeat` times (W1: the pair) after one more to warm up, counting
    each one's statements."""
    database = services.adapter.database
    assert isinstance(database, RecordingDatabase)
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    measured = Measured()

    async def send(body: bytes) -> dict[str, Any]:
        before, logged = database.statements, len(database.log)
        response = await client.post("/graphql", content=body, headers=headers)
        payload: dict[str, Any] = response.json()
        if response.status_code != 200 or "errors" in payload:
            raise RuntimeError(f"{scenario.name} failed: {payload}")
        measured.counts.append(database.statements - before)
        measured.statements.append(database.log[logged:])
        return payload

    # The first request of a process also loads the content model: not what a request costs.
    for n in range(-1, repeat):
        post_id = post_ids[n % len(post_ids)]
        if scenario.kind == "fixed":
            await send(scenario.body())
        elif scenario.kind == "by_id":
            await send(scenario.body({"id": post_id}))
        else:
            # Each post twice in a row: its first save reads it, the next does not, as this
            # process wrote it last (`server/content/written.py`).
            post_id = post_ids[(n // 2) % len(post_ids)]
            revision = await revision_of(post_id)
            measured.saves.append((post_id, revision))
            # A rating no earlier run left (a save of the data as it is writes nothing).
            rating = (n + 1) / 10 + random.randrange(1, 1000) / 100_000  # noqa: S311
            await send(scenario.body(update_variables(post_id, revision, rating)))
            await send(scenario.body({"id": post_id}, second=True))
        if n < 0:
            measured = Measured()
    return measured
