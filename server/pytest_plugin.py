"""A pytest plugin for projects built on this API.

Enable it in a `conftest.py` with `pytest_plugins = ["server.pytest_plugin"]` (pytest-asyncio in
auto mode). Then:

    async def test_my_frontend_query(cms_api):
        data = await cms_api.data('{ allPost { title } }')

Fixtures:
    cms_databases  (session) throwaway databases on DATABASE_URL, or an embedded PostgreSQL 18
    cms_database_url         a fresh migrated database for one test
    cms_api                  the API on it: an organization, an owner API key and an httpx client
                             (`server.testing.GraphQLClient`); `cms_api.key_for(...)` makes more keys
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from server.testing import GraphQLClient, TestDatabases, running_api, server_url


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
async def cms_api(cms_database_url: str) -> AsyncIterator[GraphQLClient]:
    async with running_api(cms_database_url) as client:
        yield client
