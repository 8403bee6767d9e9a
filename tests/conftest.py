"""Shared fixtures: a real PostgreSQL for every test that touches data.

The server is DATABASE_URL when set, else an embedded PostgreSQL 18. Each test gets its own database,
copied from a template migrated once per session.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from server.postgres import PostgresAdapter
from server.testing import TestDatabases, server_url


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
    adapter = PostgresAdapter(db_url, pool_size=4, run_migrations=False)
    await adapter.connect()
    yield adapter
    await adapter.disconnect()


def new_id() -> uuid.UUID:
    return uuid.uuid4()
