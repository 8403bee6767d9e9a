"""Row-Level Security, tested the way production connects: as a superuser, and as the tables' owner.

The tree: parent -> child -> grandchild, and a sibling tree sibling -> sibling_child. Every org owns one
document, one asset, one version and reference rows; each org must read exactly its own rows and its
descendants', and write only its own.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import pytest

from server.db import migrate
from server.db.pool import Tx
from server.db.rls import initialize_rls
from server.db.tables import RLS_TABLES
from server.engine.postgres import PostgresAdapter
from server.errors import ForbiddenError, InvalidInputError
from server.testing import TestDatabases, with_database

TREE = {
    "parent": None,
    "child": "parent",
    "grandchild": "child",
    "sibling": None,
    "sibling_child": "sibling",
}
DESCENDANTS = {
    "parent": {"parent", "child", "grandchild"},
    "child": {"child", "grandchild"},
    "grandchild": {"grandchild"},
    "sibling": {"sibling", "sibling_child"},
    "sibling_child": {"sibling_child"},
}


@dataclass
class World:
    orgs: dict[str, uuid.UUID]
    documents: dict[str, uuid.UUID]  # org name -> its document
    assets: dict[str, uuid.UUID]

    def org_of_document(self, document_id: uuid.UUID) -> str:
        return next(name for name, doc in self.documents.items() if doc == document_id)


async def build_world(adapter: PostgresAdapter) -> World:
    orgs: dict[str, uuid.UUID] = {}
    documents: dict[str, uuid.UUID] = {}
    assets: dict[str, uuid.UUID] = {}
    async with adapter.system_context() as tx:
        for name, parent in TREE.items():
            orgs[name] = await tx.fetchval(
                "insert into cms_organizations (name, slug, parent_organization_id, created_by)"
                " values ($1, $2, $3, 'test') returning id",
                name,
                name.replace("_", "-"),
                orgs[parent] if parent else None,
            )
        for name, org in orgs.items():
            documents[name] = await _insert_document(tx, org, title=f"doc of {name}")
            assets[name] = await _insert_asset(tx, org)
            await tx.execute(
                "insert into cms_document_versions (document_id, organization_id, version_number,"
                " event_type, data) values ($1, $2, 1, 'draft', '{}')",
                documents[name],
                org,
            )
            await tx.execute(
                "insert into cms_document_schedules (organization_id, document_id, document_type,"
                " action, run_at, revision) values ($1, $2, 'post', 'publish', now(), 1)",
                org,
                documents[name],
            )
        for name, org in orgs.items():
            # Each document references itself and uses its org's asset.
            await tx.execute(
                "insert into cms_document_references (referencer_id, ref_id, plane, organization_id)"
                " values ($1, $1, 'draft', $2)",
                documents[name],
                org,
            )
            await tx.execute(
                "insert into cms_asset_references (document_id, plane, field_path, asset_id,"
                " organization_id, document_type) values ($1, 'draft', 'cover', $2, $3, 'post')",
                documents[name],
                assets[name],
                org,
            )
            # A webhook with one delivery, and an event in the outbox.
            webhook = await tx.fetchval(
                "insert into cms_webhooks (organization_id, name, url, events, secret)"
                " values ($1, 'w', 'https://example.com/', '{document.published}', 'whsec_x')"
                " returning id",
                org,
            )
            event = await tx.fetchval(
                "insert into cms_outbox (organization_id, document_id, document_type, event)"
                " values ($1, $2, 'post', 'document.published') returning id",
                org,
                documents[name],
            )
            await tx.execute(
                "insert into cms_webhook_deliveries (webhook_id, organization_id, event_id, event,"
                " document_id, payload) values ($1, $2, $3, 'document.published', $4, '{}')",
                webhook,
                org,
                event,
                documents[name],
            )
    return World(orgs, documents, assets)


async def _insert_document(tx: Tx, org: uuid.UUID, *, title: str) -> uuid.UUID:
    document_id: uuid.UUID = await tx.fetchval(
        "insert into cms_documents (organization_id, type, draft_data) values ($1, 'post', $2)"
        " returning id",
        org,
        {"title": title},
    )
    return document_id


async def _insert_asset(tx: Tx, org: uuid.UUID) -> uuid.UUID:
    asset_id: uuid.UUID = await tx.fetchval(
        "insert into cms_assets (organization_id, asset_type, filename, original_filename,"
        " mime_type, size, url, path) values ($1, 'image', 'a.png', 'a.png', 'image/png', 1,"
        " '/assets/a.png', 'a.png') returning id",
        org,
    )
    return asset_id


@pytest.fixture
async def world(cms_adapter: PostgresAdapter) -> World:
    return await build_world(cms_adapter)


async def test_the_matrix_runs_as_a_superuser(cms_adapter: PostgresAdapter) -> None:
    async with cms_adapter.database.transaction() as tx:
        assert await tx.fetchval("select rolsuper from pg_roles where rolname = current_user")


async def _visible_orgs(tx: Tx, world: World, table: str) -> set[str]:
    rows = await tx.fetch(f"select organization_id from {table}")
    by_id = {org_id: name for name, org_id in world.orgs.items()}
    return {by_id[row["organization_id"]] for row in rows}


@pytest.mark.parametrize("org", list(TREE))
@pytest.mark.parametrize("table", RLS_TABLES)
async def test_reads_see_own_org_and_every_descendant(
    cms_adapter: PostgresAdapter, world: World, org: str, table: str
) -> None:
    async with cms_adapter.with_org_context(world.orgs[org], read_only=True) as tx:
        assert await _visible_orgs(tx, world, table) == DESCENDANTS[org]


@pytest.mark.parametrize("org", list(TREE))
async def test_writes_succeed_only_in_own_org(
    cms_adapter: PostgresAdapter, world: World, org: str
) -> None:
    for target in TREE:
        async with cms_adapter.with_org_context(world.orgs[org]) as tx:
            if target == org:
                await _insert_document(tx, world.orgs[target], title="mine")
                continue
            with pytest.raises(ForbiddenError, match="current organization"):
                await _insert_document(tx, world.orgs[target], title="intruder")

    for target in TREE:
        if target == org:
            continue
        async with cms_adapter.with_org_context(world.orgs[org]) as tx:
            updated = await tx.execute(
                'update cms_documents set draft_data = \'{"title": "hacked"}\' where id = $1',
                world.documents[target],
            )
            deleted = await tx.execute("delete from cms_assets where id = $1", world.assets[target])
            assert (updated, deleted) == ("UPDATE 0", "DELETE 0")

    async with cms_adapter.system_context() as tx:
        titles = await tx.fetch("select draft_data->>'title' as title from cms_documents")
        assets = await tx.fetchval("select count(*) from cms_assets")
    assert "hacked" not in {row["title"] for row in titles}
    assert assets == len(TREE)


async def test_a_write_cannot_move_a_row_to_another_org(
    cms_adapter: PostgresAdapter, world: World
) -> None:
    async with cms_adapter.with_org_context(world.orgs["parent"]) as tx:
        with pytest.raises(ForbiddenError):
            await tx.execute(
                "update cms_documents set organization_id = $1 where id = $2",
                world.orgs["child"],
                world.documents["parent"],
            )


async def test_no_org_set_sees_nothing_and_writes_nothing(
    cms_adapter: PostgresAdapter, world: World
) -> None:
    async with cms_adapter.database.transaction() as tx:
        await tx.execute("set local role cms_request")
        assert await tx.fetchval("select count(*) from cms_documents") == 0
        with pytest.raises(ForbiddenError):
            await _insert_document(tx, world.orgs["parent"], title="nobody")


async def test_readable_orgs_are_found_once_per_transaction(
    cms_adapter: PostgresAdapter, world: World
) -> None:
    async with cms_adapter.with_org_context(world.orgs["parent"], read_only=True) as tx:
        cached = await tx.fetchval("select current_setting('app.readable_orgs')::uuid[]")
        assert {name for name, org in world.orgs.items() if org in cached} == DESCENDANTS["parent"]
        assert cached[0] == world.orgs["parent"]
        # The policies read the kept list as it is: narrowed by hand, it narrows what is visible.
        await tx.execute(
            "select set_config('app.readable_orgs', $1::uuid[]::text, true)",
            [world.orgs["parent"]],
        )
        assert await _visible_orgs(tx, world, "cms_documents") == {"parent"}


@pytest.mark.parametrize("kept", ["", "{NULL}", "{%(child)s,NULL}"])
async def test_a_missing_or_null_readable_list_reads_no_more_than_it_names(
    cms_adapter: PostgresAdapter, world: World, kept: str
) -> None:
    """A transaction scoped to an organization whose list of readable organizations is missing,
    or holds a NULL, sees the organizations the list names and nothing else (no NULL comparison
    lets a row through)."""
    value = kept % {"child": world.orgs["child"]}
    async with cms_adapter.with_org_context(world.orgs["parent"], read_only=True) as tx:
        await tx.execute("select set_config('app.readable_orgs', $1, true)", value)
        named = {"child"} if "child" in kept else set()
        for table in ("cms_documents", "cms_document_versions", "cms_document_references"):
            assert await _visible_orgs(tx, world, table) <= named
        assert await _visible_orgs(tx, world, "cms_documents") == named


async def test_a_transaction_sees_the_organizations_it_adds_or_moves(
    cms_adapter: PostgresAdapter, world: World
) -> None:
    async with cms_adapter.with_org_context(world.orgs["parent"]) as tx:
        new = await cms_adapter.create_organization(
            tx,
            name="new",
            slug="new",
            created_by="test",
            parent_organization_id=world.orgs["child"],
        )
        assert new.id in await tx.fetchval("select cms_readable_orgs()")
        # A whole tree moved below the current organization, documents and all.
        await tx.execute(
            "update cms_organizations set parent_organization_id = $1 where id = $2",
            world.orgs["grandchild"],
            world.orgs["sibling"],
        )
        assert await _visible_orgs(tx, world, "cms_documents") == set(TREE)
        await tx.execute(
            "update cms_organizations set parent_organization_id = null where id = $1",
            world.orgs["child"],
        )
        assert await _visible_orgs(tx, world, "cms_documents") == {"parent"}


async def test_the_request_role_cannot_switch_on_override(
    cms_adapter: PostgresAdapter, world: World
) -> None:
    async with cms_adapter.with_org_context(world.orgs["grandchild"]) as tx:
        await tx.execute("select set_config('app.override_access', 'true', true)")
        assert await _visible_orgs(tx, world, "cms_documents") == {"grandchild"}


async def test_the_request_roles_policies_have_no_override(cms_adapter: PostgresAdapter) -> None:
    async with cms_adapter.database.transaction() as tx:
        rows = await tx.fetch(
            "select tablename, cmd, coalesce(qual, '') || coalesce(with_check, '') as rule"
            " from pg_policies where roles = '{cms_request}'"
        )
    assert {(row["tablename"], row["cmd"]) for row in rows} == {
        (table, command)
        for table in RLS_TABLES
        for command in ("SELECT", "INSERT", "UPDATE", "DELETE")
    }
    assert all("override" not in row["rule"] for row in rows)


async def test_a_role_of_neither_policy_reads_and_writes_nothing(
    cms_adapter: PostgresAdapter, world: World, cms_server_url: str
) -> None:
    """A role with every privilege on the tables, but neither the owner nor the request role,
    passes no policy, whatever the settings it makes."""
    role = f"cms_other_{uuid.uuid4().hex[:8]}"
    async with cms_adapter.database.transaction() as tx:
        await tx.execute(f"CREATE ROLE {role} NOLOGIN NOBYPASSRLS")
        await tx.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        await tx.execute(f"GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO {role}")
    try:
        async with cms_adapter.database.transaction() as tx:
            orgs = "{" + ",".join(map(str, world.orgs.values())) + "}"
            await tx.execute(
                "select set_config('app.organization_id', $1, true),"
                " set_config('app.readable_orgs', $2, true),"
                " set_config('app.override_access', 'true', true)",
                str(world.orgs["parent"]),
                orgs,
            )
            await tx.execute(f"SET LOCAL ROLE {role}")
            for table in RLS_TABLES:
                assert await _visible_orgs(tx, world, table) == set(), table
            with pytest.raises(ForbiddenError):
                await _insert_document(tx, world.orgs["parent"], title="intruder")
    finally:
        async with cms_adapter.database.transaction() as tx:
            await tx.execute(f"DROP OWNED BY {role}")
            await tx.execute(f"DROP ROLE {role}")


async def test_system_context_sees_everything(cms_adapter: PostgresAdapter, world: World) -> None:
    async with cms_adapter.system_context() as tx:
        assert await _visible_orgs(tx, world, "cms_documents") == set(TREE)


async def test_invalid_org_id_is_an_input_error(cms_adapter: PostgresAdapter) -> None:
    with pytest.raises(InvalidInputError, match="invalid organization id"):
        async with cms_adapter.with_org_context("not-a-uuid"):
            pass


async def test_settings_do_not_leak_to_the_next_transaction(
    cms_adapter: PostgresAdapter, world: World
) -> None:
    async with cms_adapter.with_org_context(world.orgs["parent"]) as tx:
        backend = await tx.fetchval("select pg_backend_pid()")
    # The pool hands the same connection out again; it must carry no org and no role.
    for _ in range(cms_adapter.database.pool_size):
        async with cms_adapter.database.transaction() as tx:
            if await tx.fetchval("select pg_backend_pid()") != backend:
                continue
            assert await tx.fetchval("select current_setting('app.organization_id', true)") == ""
            assert await tx.fetchval("select current_user") != "cms_request"


async def test_hierarchy_off_reads_only_own_org(cms_database_url: str) -> None:
    adapter = PostgresAdapter(
        cms_database_url, pool_size=2, run_migrations=False, enable_hierarchy=False
    )
    await adapter.connect()
    try:
        world = await build_world(adapter)
        for org in TREE:
            async with adapter.with_org_context(world.orgs[org], read_only=True) as tx:
                assert await _visible_orgs(tx, world, "cms_documents") == {org}
    finally:
        await adapter.disconnect()


async def test_rls_off_is_single_tenant(cms_database_url: str) -> None:
    adapter = PostgresAdapter(cms_database_url, pool_size=2, run_migrations=False, enable_rls=False)
    await adapter.connect()
    try:
        world = await build_world(adapter)
        async with adapter.with_org_context(world.orgs["grandchild"]) as tx:
            assert await _visible_orgs(tx, world, "cms_documents") == set(TREE)
            await _insert_document(tx, world.orgs["sibling"], title="anywhere")
        # Switching it back on restores isolation on the same database.
        adapter.tenancy = adapter.tenancy.__class__(enable_rls=True, enable_hierarchy=True)
        await adapter.initialize_rls()
        async with adapter.with_org_context(world.orgs["grandchild"]) as tx:
            assert await _visible_orgs(tx, world, "cms_documents") == {"grandchild"}
    finally:
        await adapter.disconnect()


async def _policies(url: str) -> list[tuple[str, ...]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "select tablename, policyname, roles, cmd, qual, with_check from pg_policies"
            " order by tablename, policyname"
        )
        flags = await conn.fetch(
            "select relname, relrowsecurity, relforcerowsecurity from pg_class"
            " where relname = any($1::text[]) order by relname",
            list(RLS_TABLES),
        )
    finally:
        await conn.close()
    return [tuple(map(str, row.values())) for row in [*rows, *flags]]


@asynccontextmanager
async def _migrated(cms_databases: TestDatabases) -> AsyncIterator[str]:
    """A database migrated afresh, now that the request role exists (the session's set-up made
    it: the template was migrated before, when it may not have)."""
    url = await cms_databases.create(empty=True)
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        yield url
    finally:
        await cms_databases.drop(url)


async def _start_up(url: str) -> None:
    adapter = PostgresAdapter(url, pool_size=2, run_migrations=False)
    await adapter.connect()
    await adapter.disconnect()


async def test_migration_and_initialize_rls_install_the_same_policies(
    cms_databases: TestDatabases,
) -> None:
    async with _migrated(cms_databases) as url:
        from_migration = await _policies(url)
        # The owner's four policies and the request role's four on each table, and each
        # table's flags.
        assert len(from_migration) == 8 * len(RLS_TABLES) + len(RLS_TABLES)
        await _start_up(url)
        assert await _policies(url) == from_migration


async def test_start_up_adds_the_request_roles_policies_a_migration_could_not(
    cms_databases: TestDatabases,
) -> None:
    async with _migrated(cms_databases) as url:
        conn = await asyncpg.connect(url)
        try:
            # As a migration run before the request role existed leaves them.
            for table in RLS_TABLES:
                for command in ("select", "insert", "update", "delete"):
                    await conn.execute(f"DROP POLICY {table}_request_{command} ON {table}")
        finally:
            await conn.close()
        await _start_up(url)
        assert len(await _policies(url)) == 8 * len(RLS_TABLES) + len(RLS_TABLES)


async def _definitions(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "select pg_get_functiondef(p.oid) as definition from pg_proc p"
            " join pg_namespace n on n.oid = p.pronamespace"
            " where n.nspname = 'public' and p.proname like 'cms\\_%' order by p.proname"
        )
        triggers = await conn.fetch(
            "select pg_get_triggerdef(oid) as definition from pg_trigger"
            " where not tgisinternal order by tgname"
        )
    finally:
        await conn.close()
    return [row["definition"] for row in [*rows, *triggers]]


async def test_migration_and_initialize_rls_install_the_same_functions(
    cms_database_url: str,
) -> None:
    from_migration = await _definitions(cms_database_url)
    assert any("app.readable_orgs" in definition for definition in from_migration)
    adapter = PostgresAdapter(cms_database_url, pool_size=2, run_migrations=False)
    await adapter.connect()
    await adapter.disconnect()
    assert await _definitions(cms_database_url) == from_migration


async def test_initialize_rls_is_idempotent_and_repairs_drift(cms_adapter: PostgresAdapter) -> None:
    async def oids() -> list[int]:
        async with cms_adapter.database.transaction() as tx:
            return [row["oid"] for row in await tx.fetch("select oid from pg_policy order by oid")]

    before = await oids()
    await initialize_rls(cms_adapter.database)
    assert await oids() == before  # nothing to do: nothing recreated

    async with cms_adapter.database.transaction() as tx:
        await tx.execute("drop policy cms_documents_select on cms_documents")
        await tx.execute("alter table cms_assets no force row level security")
    await initialize_rls(cms_adapter.database)
    async with cms_adapter.database.transaction() as tx:
        assert await tx.fetchval("select count(*) from pg_policies") == 8 * len(RLS_TABLES)
        assert await tx.fetchval(
            "select relforcerowsecurity from pg_class where relname = 'cms_assets'"
        )


@pytest.fixture
async def owner_url(cms_server_url: str, cms_databases: TestDatabases) -> AsyncIterator[str]:
    """A database owned by a plain login role (no superuser, no BYPASSRLS), migrated as that role."""
    role = f"cms_owner_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(cms_server_url)
    name = f"{cms_databases.prefix}_{role}"
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS")
        await admin.execute(f'CREATE DATABASE "{name}" OWNER {role}')
    finally:
        await admin.close()
    # Keep the rest of the URL (host, socket) but log in as the owner role.
    url = _as_user(with_database(cms_server_url, name), role)
    yield url
    admin = await asyncpg.connect(cms_server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
    finally:
        await admin.close()


def _as_user(url: str, user: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


async def test_isolation_holds_when_connecting_as_the_table_owner(owner_url: str) -> None:
    adapter = PostgresAdapter(owner_url, pool_size=2)  # migrates as the owner
    await adapter.connect()
    try:
        world = await build_world(adapter)
        async with adapter.database.transaction() as tx:
            owner = await tx.fetchval(
                "select tableowner = current_user from pg_tables where tablename = 'cms_documents'"
            )
        assert owner
        for org in TREE:
            async with adapter.with_org_context(world.orgs[org]) as tx:
                assert await _visible_orgs(tx, world, "cms_documents") == DESCENDANTS[org]
                other = "sibling" if org != "sibling" else "parent"
                with pytest.raises(ForbiddenError):
                    await _insert_document(tx, world.orgs[other], title="intruder")
    finally:
        await adapter.disconnect()
