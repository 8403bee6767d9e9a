"""Migrations: no drift between `server/db/tables.py` and the first migration, and a clean round trip."""

from __future__ import annotations

import asyncio

import asyncpg

from server.db import migrate
from server.testing import TestDatabases


async def test_alembic_check_reports_no_drift(cms_database_url: str) -> None:
    await asyncio.to_thread(migrate.check, cms_database_url)
    assert await asyncio.to_thread(migrate.pending_changes, cms_database_url) == []


async def _objects(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        return {
            "tables": await conn.fetchval(
                "select count(*) from pg_tables where schemaname = 'public'"
                " and tablename <> 'alembic_version'"
            ),
            "policies": await conn.fetchval("select count(*) from pg_policies"),
            "types": await conn.fetchval(
                "select count(*) from pg_type t join pg_namespace n on n.oid = t.typnamespace"
                " where n.nspname = 'public' and t.typtype = 'e'"
            ),
            "functions": await conn.fetchval(
                "select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
                " where n.nspname = 'public' and p.proname like 'cms\\_%'"
            ),
        }
    finally:
        await conn.close()


async def _request_role_exists(url: str) -> bool:
    conn = await asyncpg.connect(url)
    try:
        return bool(await conn.fetchval("select true from pg_roles where rolname = 'cms_request'"))
    finally:
        await conn.close()


async def test_upgrade_downgrade_upgrade_round_trip(cms_databases: TestDatabases) -> None:
    url = await cms_databases.create(empty=True)
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        migrated = await _objects(url)
        assert migrated["tables"] == 23
        # Four per tenant table for its owner, and four for the request role once it exists.
        assert migrated["policies"] == 36 * (2 if await _request_role_exists(url) else 1)

        await asyncio.to_thread(migrate.downgrade, url, "base")
        assert await _objects(url) == {"tables": 0, "policies": 0, "types": 0, "functions": 0}

        await asyncio.to_thread(migrate.upgrade, url)
        assert await _objects(url) == migrated
        assert await asyncio.to_thread(migrate.current_revision, url) == migrate.head_revision()
        await asyncio.to_thread(migrate.check, url)
    finally:
        await cms_databases.drop(url)


async def test_push_syncs_a_database_without_writing_a_file(cms_databases: TestDatabases) -> None:
    url = await cms_databases.create(empty=True)
    try:
        assert await asyncio.to_thread(migrate.push, url) == []  # migrations cover everything
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("alter table cms_documents drop column search_text")
            await conn.execute("drop index idx_documents_status")
        finally:
            await conn.close()
        applied = await asyncio.to_thread(migrate.push, url)
        assert sorted(applied) == [
            "AddColumn cms_documents.search_text",
            "CreateIndex cms_documents.idx_documents_status",
        ]
        assert await asyncio.to_thread(migrate.pending_changes, url) == []
    finally:
        await cms_databases.drop(url)
