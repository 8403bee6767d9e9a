"""Connections that die, locks that are held, a pool that is used up: clear answers, no hangs.

Each fault is real: backends ended with `pg_terminate_backend`, tables locked by another
transaction, pooled connections held. The content query takes the compiled read path (one
statement, its own transaction, the opening included), `me` and `documentVersions` the resolver
path (an opening, then statements in its transaction).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest

from server.engine.postgres import PostgresAdapter
from server.testing import GraphQLClient, running_api

COMPILED = "{ allPost { title } }"
RESOLVED = "{ me { kind } }"
# The resolver path, reading documents after its opening.
RESOLVED_CONTENT = (
    '{ documentVersions(id: "00000000-0000-4000-8000-000000000000") { totalVersions } }'
)
# Generous: only reached when something hangs that must not.
GUARD_SECONDS = 60


@asynccontextmanager
async def api(
    db_url: str, **options: Any
) -> AsyncIterator[tuple[GraphQLClient, asyncpg.Connection]]:
    """The API on its own small pool, and a connection of the test's to do the damage with."""
    adapter = PostgresAdapter(db_url, pool_size=2, run_migrations=False, **options)
    await adapter.connect()
    admin = await asyncpg.connect(db_url)
    try:
        async with running_api(adapter=adapter) as client:
            yield client, admin
    finally:
        await admin.close()
        await adapter.disconnect()


async def lock_waiter(admin: asyncpg.Connection, *, besides: Sequence[int] = ()) -> int:
    """The backend that waits for a lock (other than `besides`), once there is one."""
    async with asyncio.timeout(GUARD_SECONDS):
        while True:
            # Inside a transaction, pg_stat_activity would show the same snapshot again.
            await admin.execute("SELECT pg_stat_clear_snapshot()")
            pid: int | None = await admin.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND pid <> ALL($1::int[]) LIMIT 1",
                list(besides),
            )
            if pid is not None:
                return pid
            await asyncio.sleep(0.01)


async def end_lock_waiters(admin: asyncpg.Connection, count: int) -> list[int]:
    """End `count` backends in turn, each once it waits for a lock."""
    ended: list[int] = []
    for _ in range(count):
        pid = await lock_waiter(admin, besides=ended)
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        ended.append(pid)
    return ended


def code(response: httpx.Response) -> str:
    errors = response.json()["errors"]
    value: str = errors[0]["extensions"]["code"]
    return value


async def sent_while_ending(
    gql: GraphQLClient,
    admin: asyncpg.Connection,
    query: str,
    *,
    locked: str,
    deaths: int,
    next_waits: bool = False,
) -> httpx.Response:
    """`query`, sent while the table `locked` is, ending `deaths` backends that wait for it in turn
    (and, with `next_waits`, letting go only once another backend waits for it too)."""
    async with admin.transaction():
        await admin.execute(f"LOCK TABLE {locked} IN ACCESS EXCLUSIVE MODE")
        request = asyncio.create_task(gql.post(query))
        ended = await end_lock_waiters(admin, deaths)
        if next_waits:
            await lock_waiter(admin, besides=ended)
    return await request


@pytest.mark.parametrize("query", [COMPILED, RESOLVED], ids=["compiled", "resolvers"])
async def test_a_connection_killed_at_the_opening_is_replaced_once(
    cms_database_url: str, query: str
) -> None:
    async with api(cms_database_url) as (gql, admin):
        # The opening checks the key: with its table locked, the opening waits, on a backend
        # that is then ended before it has done anything. The second attempt waits on a fresh one.
        response = await sent_while_ending(
            gql, admin, query, locked="api_keys", deaths=1, next_waits=True
        )
        assert response.status_code == 200
        assert "errors" not in response.json(), response.json()
        # Served where it began: the compiled path did not hand it over to the resolvers.
        assert gql.app.state.graphql.compiled_served == (1 if query == COMPILED else 0)


@pytest.mark.parametrize("query", [COMPILED, RESOLVED], ids=["compiled", "resolvers"])
async def test_a_second_lost_connection_is_service_unavailable(
    cms_database_url: str, query: str
) -> None:
    async with api(cms_database_url) as (gql, admin):
        response = await sent_while_ending(gql, admin, query, locked="api_keys", deaths=2)
        assert (response.status_code, code(response)) == (503, "SERVICE_UNAVAILABLE")
        assert response.headers["Retry-After"] == "2"
        # The pool recovers: the next request is served.
        assert (await gql.data(query)) is not None


async def test_a_connection_lost_after_the_opening_is_service_unavailable(
    cms_database_url: str,
) -> None:
    async with api(cms_database_url) as (gql, admin):
        # The opening is done; the content statement waits for the lock when its backend ends.
        response = await sent_while_ending(
            gql, admin, RESOLVED_CONTENT, locked="cms_documents", deaths=1
        )
        assert (response.status_code, code(response)) == (503, "SERVICE_UNAVAILABLE")
        assert response.headers["Retry-After"] == "2"


async def test_a_compiled_read_lost_midway_is_read_again_once(cms_database_url: str) -> None:
    async with api(cms_database_url) as (gql, admin):
        # The read is its own read-only transaction, opening included: nothing of it remains
        # once its backend ends, so it runs once more on a fresh connection.
        response = await sent_while_ending(gql, admin, COMPILED, locked="cms_documents", deaths=1)
        assert response.status_code == 200
        assert response.json() == {"data": {"allPost": []}}
        twice = await sent_while_ending(gql, admin, COMPILED, locked="cms_documents", deaths=2)
        assert (twice.status_code, code(twice)) == (503, "SERVICE_UNAVAILABLE")


@pytest.mark.parametrize("query", [COMPILED, '{ documents(type: "post") { totalDocs } }'])
async def test_a_lock_wait_ends_at_the_lock_timeout(cms_database_url: str, query: str) -> None:
    async with api(cms_database_url, lock_timeout_ms=100) as (gql, admin):
        async with admin.transaction():
            await admin.execute("LOCK TABLE cms_documents IN ACCESS EXCLUSIVE MODE")
            async with asyncio.timeout(GUARD_SECONDS):
                response = await gql.post(query)
        assert (response.status_code, code(response)) == (200, "TIMEOUT")
        assert "lock timeout" in response.json()["errors"][0]["message"]


async def test_waiting_for_a_pooled_connection_is_bounded(cms_database_url: str) -> None:
    async with api(cms_database_url, acquire_timeout=0.2) as (gql, _):
        database = gql.services.adapter.database
        healthz = await gql.client.get("/healthz")
        assert (healthz.status_code, healthz.json()) == (200, {"status": "ok"})
        # Both connections of the pool, any it holds since the last request among them.
        async with database.session(), database.session():
            # The health check has a connection of its own: busy, not down.
            healthz = await gql.client.get("/healthz")
            assert (healthz.status_code, healthz.json()) == (200, {"status": "degraded"})
            async with asyncio.timeout(GUARD_SECONDS):
                response = await gql.post(COMPILED)
        assert (response.status_code, code(response)) == (503, "SERVICE_UNAVAILABLE")
        assert response.headers["Retry-After"] == "2"
        healthz = await gql.client.get("/healthz")
        assert (healthz.status_code, healthz.json()) == (200, {"status": "ok"})


async def test_waiting_for_a_read_pool_connection_is_bounded(cms_database_url: str) -> None:
    """A caller met before reads on the read pool: when all of its connections are taken, its
    read waits no longer than for any pooled connection, and the health check says so."""
    async with api(cms_database_url, acquire_timeout=0.2) as (gql, _):
        for _ in range(2):  # the full opening, then a known caller's read on the read pool
            assert "errors" not in (await gql.post(COMPILED)).json()
        database = gql.services.adapter.database
        role = database._reads_role
        # Both connections of the read pool, the one kept since the last read among them.
        async with await database.read_session(role), await database.read_session(role):
            healthz = await gql.client.get("/healthz")
            assert (healthz.status_code, healthz.json()) == (200, {"status": "degraded"})
            async with asyncio.timeout(GUARD_SECONDS):
                response = await gql.post(COMPILED)
        assert (response.status_code, code(response)) == (503, "SERVICE_UNAVAILABLE")
        assert "errors" not in (await gql.post(COMPILED)).json()
        healthz = await gql.client.get("/healthz")
        assert (healthz.status_code, healthz.json()) == (200, {"status": "ok"})
