"""A pytest plugin for projects built on this API (and this project's own tests).

Enable it in a `conftest.py` with `pytest_plugins = ["server.pytest_plugin"]`, or with
`-p server.pytest_plugin` (pytest-asyncio in auto mode, session-scoped event loop). Then:

    async def test_my_frontend_query(cms_api):
        data = await cms_api.data('{ allPost { title } }')

Fixtures:
    cms_server_url (session) DATABASE_URL (DATABASE_DIRECT_URL behind a transaction pooler), or a
                             throwaway embedded PostgreSQL 18
    cms_databases  (session) throwaway databases on it, copied from migrated templates
    cms_database_url         a fresh migrated database for one test (Row-Level Security not yet set
                             up: what a first start-up finds)
    cms_adapter              a connected `PostgresAdapter` on a fresh database with Row-Level Security
                             and the hierarchy on, as the server runs by default
    cms_api                  the API on `cms_adapter`: the content model of `SCHEMA_DIR`, an
                             organization, an owner API key and an httpx client
                             (`server.testing.GraphQLClient`); `cms_api.key_for(...)` makes more keys
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from server.engine.postgres import PostgresAdapter
from server.testing import GraphQLClient, TestDatabases, pooled_settings, running_api, server_url


@pytest.fixture(scope="session")
def cms_server_url() -> str:
    # Synchronous: starting the embedded server runs an event loop of its own.
    return server_url()


@pytest.fixture(scope="session")
async def cms_databases(cms_server_url: str) -> AsyncIterator[TestDatabases]:
    databases = TestDatabases(cms_server_url)
    await databases.prepare()
    yield databases
    await databases.drop_all()


@pytest.fixture
async def cms_database_url(cms_databases: TestDatabases) -> AsyncIterator[str]:
    url = await cms_databases.create()
    yield url
    await cms_databases.drop(url)


@pytest.fixture
async def cms_adapter(cms_databases: TestDatabases) -> AsyncIterator[PostgresAdapter]:
    url = await cms_databases.create(rls=True)
    reach = pooled_settings(url)
    adapter = PostgresAdapter(
        reach["database_url"],
        direct_url=reach.get("database_direct_url"),
        pool_mode=reach.get("database_pool_mode", "session"),
        pool_size=4,
        run_migrations=False,
    )
    await adapter.connect()
    try:
        yield adapter
    finally:
        await adapter.disconnect()
        await cms_databases.drop(url)


@pytest.fixture
async def cms_api(cms_adapter: PostgresAdapter) -> AsyncIterator[GraphQLClient]:
    async with running_api(adapter=cms_adapter) as client:
        yield client
