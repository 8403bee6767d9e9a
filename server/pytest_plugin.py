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
    cms_adapter              a connected adapter (`PostgresAdapter`) on that database, with Row-Level Security
                             set up and the hierarchy on, as the server runs by default
    cms_api                  the API on `cms_adapter`: the content model of `SCHEMA_DIR`, an
                             organization, an owner API key and an httpx client
                             (`server.testing.GraphQLClient`); `cms_api.key_for(...)` makes more keys
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from server.engine.adapter import DatabaseAdapter
from server.services import database_adapter
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
async def cms_database_url(
    cms_databases: TestDatabases, request: pytest.FixtureRequest
) -> AsyncIterator[str]:
    # With `cms_adapter` the test meets the database only after the adapter set up RLS on it:
    # a copy of the template where that is done already saves the work.
    url = await cms_databases.create(rls="cms_adapter" in request.fixturenames)
    yield url
    await cms_databases.drop(url)


@pytest.fixture
async def cms_adapter(cms_database_url: str) -> AsyncIterator[DatabaseAdapter]:
    reach = pooled_settings(cms_database_url)
    adapter = database_adapter(
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
async def cms_api(cms_adapter: DatabaseAdapter) -> AsyncIterator[GraphQLClient]:
    async with running_api(adapter=cms_adapter) as client:
        yield client
