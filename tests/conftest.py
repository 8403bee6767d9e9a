"""Shared fixtures: a real PostgreSQL for every test that touches data.

The server is DATABASE_URL when set, else an embedded PostgreSQL 18. Each test gets its own database,
copied from a template migrated once per session.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from server.config import PROJECT_ROOT
from server.content_model import ContentModel
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
    from server.local_api import LocalAPI

    model = ContentModel(adapter, adapter.instance_transaction)
    await model.sync_dir(PROJECT_ROOT / "schema")
    return CMS(adapter=adapter, model=model, api=LocalAPI(adapter, model))


@dataclass
class GraphQLClient:
    """The app over httpx (ASGI transport), with an owner API key of one organization."""

    services: Any  # server.app.Services
    client: httpx.AsyncClient
    org: uuid.UUID
    key: str

    async def key_for(
        self,
        org: uuid.UUID,
        *,
        role: str = "owner",
        instance_admin: bool = False,
        published_only: bool = False,
    ) -> str:
        async with self.services.adapter.instance_transaction() as tx:
            _, secret = await self.services.adapter.create_api_key(
                tx,
                organization_id=org,
                name="test",
                role=role,
                instance_admin=instance_admin,
                published_only=published_only,
            )
        return str(secret)

    async def org_named(self, slug: str, parent: uuid.UUID | None = None) -> uuid.UUID:
        async with self.services.adapter.instance_transaction() as tx:
            org = await self.services.adapter.create_organization(
                tx, name=slug, slug=slug, created_by="test", parent_organization_id=parent
            )
        return uuid.UUID(str(org.id))

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        key: str | None = "default",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = dict(headers or {})
        token = self.key if key == "default" else key
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        return await self.client.post("/graphql", json=body, headers=sent)

    async def __call__(
        self, query: str, variables: dict[str, Any] | None = None, *, key: str | None = "default"
    ) -> dict[str, Any]:
        response = await self.post(query, variables, key=key)
        payload: dict[str, Any] = response.json()
        return payload

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, *, key: str | None = "default"
    ) -> dict[str, Any]:
        payload = await self(query, variables, key=key)
        assert "errors" not in payload, payload["errors"]
        data: dict[str, Any] = payload["data"]
        return data


@pytest.fixture
async def gql(adapter: PostgresAdapter) -> AsyncIterator[GraphQLClient]:
    from server.app import Services, create_app
    from server.config import Settings

    settings = Settings(database_url=adapter.database.url)
    services = Services.create(settings, adapter)
    await services.start(connect=False)
    app = create_app(settings, services=services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        helper = GraphQLClient(services=services, client=client, org=uuid.uuid4(), key="")
        helper.org = await helper.org_named("acme")
        helper.key = await helper.key_for(helper.org)
        yield helper
    await services.model.close()
