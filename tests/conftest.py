"""Shared fixtures: a real PostgreSQL for every test that touches data.

The server is DATABASE_URL when set, else an embedded PostgreSQL 18. Each test gets its own database,
copied from a template migrated once per session.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from server.config import PROJECT_ROOT
from server.content.content_model import ContentModel
from server.db.pool import PooledConnection
from server.engine.postgres import PostgresAdapter
from server.testing import (
    GraphQLClient,
    TestDatabases,
    pooled_settings,
    running_api,
    server_url,
)

__all__ = ["CMS", "GraphQLClient"]


@pytest.fixture
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The lowest Argon2 cost: the same code paths, without a fifth of a second per hash."""
    from argon2 import PasswordHasher, profiles

    from server.access import passwords

    monkeypatch.setattr(passwords, "_HASHER", PasswordHasher.from_parameters(profiles.CHEAPEST))
    passwords.dummy_hash.cache_clear()
    yield
    passwords.dummy_hash.cache_clear()


@pytest.fixture(scope="session")
def pg_url() -> str:
    return server_url()


@pytest.fixture(scope="session")
async def databases(pg_url: str) -> AsyncIterator[TestDatabases]:
    dbs = TestDatabases(pg_url)
    await dbs.prepare()
    yield dbs
    await dbs.drop_all()


@pytest.fixture
async def db_url(databases: TestDatabases) -> AsyncIterator[str]:
    """A fresh, migrated database (no RLS initialisation yet)."""
    url = await databases.create()
    yield url
    await databases.drop(url)


@pytest.fixture
async def adapter(db_url: str) -> AsyncIterator[PostgresAdapter]:
    """A connected adapter with RLS and hierarchy on: what the server runs with by default."""
    reach = pooled_settings(db_url)
    adapter = PostgresAdapter(
        reach["database_url"],
        direct_url=reach.get("database_direct_url"),
        pool_mode=reach.get("database_pool_mode", "session"),
        pool_size=4,
        run_migrations=False,
    )
    await adapter.connect()
    yield adapter
    await adapter.disconnect()


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQL of every round trip on any connection, in order.

    Each call of a connection's `execute`, `fetch`, `fetchrow`, `fetchval` or `executemany` is one
    round trip once its statement is prepared, and so is asyncpg's own `BEGIN`, `COMMIT` or
    `ROLLBACK`.
    """
    sent: list[str] = []
    for name in ("execute", "fetch", "fetchrow", "fetchval", "executemany"):
        original = getattr(asyncpg.Connection, name)

        def counted(self: Any, query: str, *args: Any, _original: Any = original, **kw: Any) -> Any:
            sent.append(query)
            return _original(self, query, *args, **kw)

        monkeypatch.setattr(asyncpg.Connection, name, counted)
    # One round trip as well: a statement described once, run again (transaction pooling).
    described = PooledConnection.fetchrow_described

    def counted_described(self: Any, query: str, *args: Any, **kw: Any) -> Any:
        sent.append(query)
        return described(self, query, *args, **kw)

    monkeypatch.setattr(PooledConnection, "fetchrow_described", counted_described)
    return sent


@dataclass
class CMS:
    """The content engine on a fresh database, with the example content model registered."""

    adapter: PostgresAdapter
    model: ContentModel
    api: Any  # LocalAPI

    async def org(self, slug: str, parent: uuid.UUID | None = None) -> uuid.UUID:
        async with self.adapter.system_context() as tx:
            org_id: uuid.UUID = await tx.fetchval(
                "insert into cms_organizations (name, slug, parent_organization_id, created_by)"
                " values ($1, $1, $2, 'test') returning id",
                slug,
                parent,
            )
        return org_id


@pytest.fixture
async def cms(adapter: PostgresAdapter) -> CMS:
    from server.engine.local_api import LocalAPI

    model = ContentModel(adapter, adapter.instance_transaction)
    await model.sync_dir(PROJECT_ROOT / "schema")
    return CMS(adapter=adapter, model=model, api=LocalAPI(adapter, model))


@pytest.fixture
async def gql(adapter: PostgresAdapter) -> AsyncIterator[GraphQLClient]:
    """The API over httpx with an owner key of the organization `acme` (see `server.testing`)."""
    async with running_api(adapter=adapter) as client:
        yield client
