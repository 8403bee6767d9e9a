"""Testing support, here and in downstream projects: throwaway databases and a running API.

`TestDatabases` migrates one template database per test session (and keeps a copy of it with
Row-Level Security set up) and hands each test a fresh copy (`CREATE DATABASE ... TEMPLATE`), made
while the previous test ran. The server is `DATABASE_URL` when set, else an embedded PostgreSQL 18
in a temporary folder, run without fsync.

With `DATABASE_POOL_MODE=transaction` the run goes through a transaction pooler: `DATABASE_URL` is
the pooler (PgBouncer forwarding every database name to the server, `* = host=... port=...`) and
`DATABASE_DIRECT_URL` the server itself. Test databases are made, and handed out, on the server;
the API under test reaches them through the pooler (`pooled_settings`, `pooled_environment`), as a
deployment behind PgBouncer does.

`running_api()` starts the API on such a database with an organization and an owner API key, and
gives a `GraphQLClient` (httpx over the ASGI app); APIs started on the same content model share one
GraphQL schema. The pytest plugin `server.pytest_plugin` wraps both as fixtures, for this project's
tests as for downstream ones.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from server.db import migrate
from server.db.embedded import start_embedded
from server.db.pool import Database, keep_session
from server.db.rls import initialize_rls

if TYPE_CHECKING:
    from server.engine.adapter import DatabaseAdapter
    from server.graphql.schema import BuiltSchema
    from server.http.endpoint import GraphQLEndpoint
    from server.services import Services


def server_url() -> str:
    """The test server's URL: DATABASE_URL (DATABASE_DIRECT_URL behind a transaction pooler), or
    a fresh embedded server that stops at exit."""
    pooler = _pooler()
    if pooler is not None:
        return pooler[1]
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    folder = Path(tempfile.mkdtemp(prefix="cms-test-"))
    url = start_embedded(folder, database="postgres", keep_running=False)
    asyncio.run(_without_durability(url))
    return url


async def _without_durability(url: str) -> None:
    """A throwaway server need not survive a crash: no fsync, no full-page images after the
    checkpoints each `CREATE DATABASE ... STRATEGY FILE_COPY` forces."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("ALTER SYSTEM SET fsync = off")
        await conn.execute("ALTER SYSTEM SET full_page_writes = off")
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _pooler() -> tuple[str, str] | None:
    """The transaction pooler this test run goes through and the server behind it, if any."""
    if os.environ.get("DATABASE_POOL_MODE", "").strip().lower() != "transaction":
        return None
    pooler, direct = os.environ.get("DATABASE_URL"), os.environ.get("DATABASE_DIRECT_URL")
    if not pooler or not direct:
        raise RuntimeError(
            "DATABASE_POOL_MODE=transaction needs DATABASE_URL and DATABASE_DIRECT_URL"
        )
    return pooler, direct


def _through_pooler(url: str) -> str | None:
    """`url`'s database through the run's pooler, when `url` is on the server behind it."""
    pooler = _pooler()
    if pooler is None:
        return None
    server, target = urlsplit(pooler[1]), urlsplit(url)
    if (target.hostname, target.port) != (server.hostname, server.port):
        return None  # another server, or a pooler a test started itself
    return with_database(pooler[0], target.path.lstrip("/"))


def pooled_settings(url: str) -> dict[str, Any]:
    """`Settings` fields (and `PostgresAdapter` arguments, without the `database_` prefix) that
    reach the database of `url` as this test run asks: through its pooler, else directly."""
    through = _through_pooler(url)
    if through is None:
        return {"database_url": url}
    return {
        "database_url": through,
        "database_pool_mode": "transaction",
        "database_direct_url": url,
    }


def pooled_environment(url: str) -> dict[str, str]:
    """`pooled_settings` as the environment of a server process."""
    return {
        name.upper(): value for name, value in pooled_settings(url).items() if value is not None
    }


class TestDatabases:
    """Creates databases from migrated templates on one server.

    Two templates are made once: one migrated, and a copy of it with Row-Level Security installed
    as `initialize_rls()` leaves it (an API started on it only checks the policies). While a test
    runs, the next copy of the template it used is already being made, and a dropped database goes
    in the background: a test waits for neither. On a server that syncs to disk (fsync on) a copy
    goes through the WAL, and commits in it do not wait for the disk.
    """

    __test__ = False  # not a pytest class

    def __init__(self, url: str) -> None:
        self.url = url
        self.prefix = f"cmst_{uuid.uuid4().hex[:8]}"
        self.template = f"{self.prefix}_template"
        self.rls_template = f"{self.prefix}_rls"
        self._counter = itertools.count(1)
        self._created: list[str] = []
        # The next copy of each template, made while the current test runs.
        self._ahead: dict[str, asyncio.Task[str]] = {}
        self._dropping: set[asyncio.Task[None]] = set()
        # Sessions for CREATE and DROP DATABASE, kept open on the event loop that prepared the
        # templates (a copy ahead and a drop may run at once): no new backend for each of them.
        self._sessions: asyncpg.Pool | None = None
        self._sessions_loop: asyncio.AbstractEventLoop | None = None
        # Whether the server syncs to disk (prepare() asks): DATABASE_URL's, as a rule, not the
        # embedded one.
        self._durable = False

    async def _admin(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.url)

    def _kept_sessions(self) -> asyncpg.Pool | None:
        sessions = self._sessions
        if sessions is None or self._sessions_loop is not asyncio.get_running_loop():
            return None  # none yet, or a test loop other than the one that made them
        return sessions

    async def _execute(self, sql: str) -> None:
        sessions = self._kept_sessions()
        if sessions is not None:
            async with sessions.acquire() as session:
                await session.execute(sql)
            return
        conn = await self._admin()
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def prepare(self) -> None:
        """Create and migrate the template database, then its copy with RLS (once per session)."""
        # Enough that a statement never waits for another's session: one begun late could run
        # while the next test counts the statements its process sends.
        self._sessions = await asyncpg.create_pool(
            # CREATE and DROP DATABASE leave no session state: nothing to reset at release
            # (asyncpg's default query would land among a test's counted round trips).
            self.url,
            min_size=1,
            max_size=6,
            reset=keep_session,
        )
        self._sessions_loop = asyncio.get_running_loop()
        async with self._sessions.acquire() as session:
            self._durable = await session.fetchval("SHOW fsync") == "on"
        await self._execute(f'CREATE DATABASE "{self.template}"')
        self._created.append(self.template)
        await asyncio.to_thread(migrate.upgrade, with_database(self.url, self.template))
        await self._copy(self.template, self.rls_template)
        database = Database(with_database(self.url, self.rls_template), pool_size=1)
        await database.connect()
        try:
            await initialize_rls(database)
        finally:
            await database.disconnect()

    async def create(self, *, empty: bool = False, rls: bool = False) -> str:
        """A fresh database: a copy of the migrated template (`rls`: of the one with Row-Level
        Security installed), or an empty one."""
        if empty:
            name = self._name()
            await self._execute(f'CREATE DATABASE "{name}"')
            self._created.append(name)
            return with_database(self.url, name)
        template = self.rls_template if rls else self.template
        ahead = self._ahead.pop(template, None)
        if ahead is not None and ahead.get_loop() is asyncio.get_running_loop():
            name = await ahead
        else:
            # The first copy, or one begun on an event loop that is gone (a test loop per test):
            # drop_all() drops whatever it made.
            name = await self._copy(template, self._name())
        if self._durable:
            # A commit in a test database does not wait for the disk: a throwaway database need
            # not survive a crash, and what a commit makes visible, and when, is the same. (Set
            # here, before the test, not by the copy made ahead, which may still be running
            # while a test counts the statements its process sends.)
            await self._execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        self._ahead[template] = asyncio.create_task(self._copy(template, self._name()))
        return with_database(self.url, name)

    def _name(self) -> str:
        return f"{self.prefix}_{next(self._counter)}"

    async def _copy(self, template: str, name: str) -> str:
        self._created.append(name)
        # FILE_COPY's two checkpoints cost little without fsync (the embedded server); with it
        # they write the server's dirty pages out and sync them, and a copy through the WAL is
        # cheaper.
        strategy = "WAL_LOG" if self._durable else "FILE_COPY"
        await self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY {strategy}')
        return name

    async def drop(self, url: str) -> None:
        """Drop the database of `url` in the background (drop_all() waits for it)."""
        name = urlsplit(url).path.lstrip("/")
        task = asyncio.create_task(self._drop(name))
        self._dropping.add(task)
        task.add_done_callback(self._dropping.discard)

    async def _drop(self, name: str) -> None:
        await self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self._created:
            self._created.remove(name)

    async def drop_all(self) -> None:
        running = asyncio.get_running_loop()
        waiting = [t for t in (*self._ahead.values(), *self._dropping) if t.get_loop() is running]
        # A failed copy or drop still leaves its name to drop below.
        await asyncio.gather(*waiting, return_exceptions=True)
        self._ahead.clear()
        conn = await self._admin()
        try:
            for name in reversed(self._created):
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
        self._created.clear()
        sessions, self._sessions = self._sessions, None
        if sessions is not None:
            if self._sessions_loop is running:
                await sessions.close()
            else:
                sessions.terminate()


@dataclass
class GraphQLClient:
    """The API over httpx (ASGI transport), with an owner API key of one organization.

    `await client(query, variables)` returns the response body; `client.data(...)` asserts there
    were no errors and returns `data`.
    """

    services: Services
    client: httpx.AsyncClient
    org: uuid.UUID
    key: str
    app: Any = None  # the Starlette app; `app.state.graphql` is the GraphQL endpoint

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


# GraphQL schemas built by the APIs started so far, with their introspection setting: an API on
# the same content model serves one of these instead of building its own.
_SCHEMAS: list[tuple[str, BuiltSchema]] = []
_SCHEMAS_KEPT = 8


def _share_schema(endpoint: GraphQLEndpoint) -> None:
    registry = endpoint.api.model.registry
    for introspection, built in _SCHEMAS:
        if introspection == endpoint.introspection and built.registry.same_as(registry):
            endpoint.reuse(built)
            return
    try:
        built = endpoint.current()
    except (ValueError, TypeError):
        return  # a model that cannot be served: its requests say so
    _SCHEMAS.append((endpoint.introspection, built))
    del _SCHEMAS[:-_SCHEMAS_KEPT]


@asynccontextmanager
async def running_api(
    url: str | None = None,
    *,
    adapter: DatabaseAdapter | None = None,
    org_slug: str = "acme",
    schema_dir: Path | None = None,
    **settings_changes: Any,
) -> AsyncIterator[GraphQLClient]:
    """The API on a migrated database (`url`, or a connected `adapter`), with an owner key of a new
    organization `org_slug`; `settings_changes` replace fields of its `Settings`."""
    from server.app import create_app
    from server.config import Settings
    from server.services import Services

    if adapter is not None:
        database: dict[str, Any] = {
            "database_url": adapter.database.url,
            "database_pool_mode": adapter.database.pool_mode,
            "database_direct_url": adapter.database.direct_url,
        }
    elif url is not None:
        database = pooled_settings(url)
    else:
        raise ValueError("running_api needs a database url or a connected adapter")
    # No outbox worker in the background: a test that wants deliveries runs a pass itself
    # (`services.delivery.worker.run_once()`) or asks for one with `delivery_worker=True`.
    settings = Settings(**database, delivery_worker=False)
    if schema_dir is not None:
        settings_changes["schema_dir"] = schema_dir
    if settings_changes:
        from dataclasses import replace

        settings = replace(settings, **settings_changes)
    services = Services.create(settings, adapter)
    await services.start(connect=adapter is None)
    app = create_app(settings, services=services)
    _share_schema(app.state.graphql)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            client = GraphQLClient(
                services=services, client=http, org=uuid.uuid4(), key="", app=app
            )
            client.org = await client.org_named(org_slug)
            client.key = await client.key_for(client.org)
            yield client
    finally:
        if adapter is None:
            await services.stop()
        else:
            await services.delivery.stop()
            await services.model.close()
