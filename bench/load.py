"""Loading the dataset into a fresh database: migrations, organizations and an API key through the
adapter, then every document, version and reference row by COPY.

The rows are what the API itself would have written: a draft version (1) for every document and a
publish version (2) for the published ones, hashes from `server.content.hash`, and the reference
index for each plane the document has.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from bench.dataset import ORGANIZATIONS, SCENARIO_ORG, Dataset, Document
from server.content.hash import content_hash
from server.engine.postgres import PostgresAdapter
from server.testing import with_database

BATCH = 20_000
ACTOR = "bench"

DOCUMENT_COLUMNS = (
    "id",
    "organization_id",
    "type",
    "status",
    "draft_data",
    "published_data",
    "published_hash",
    "draft_hash",
    "revision",
    "created_by",
    "updated_by",
    "published_at",
    "created_at",
    "updated_at",
)
VERSION_COLUMNS = (
    "document_id",
    "organization_id",
    "version_number",
    "event_type",
    "data",
    "created_by",
    "created_at",
)
REFERENCE_COLUMNS = ("referencer_id", "ref_id", "plane", "organization_id", "created_at")


@dataclass(frozen=True)
class Loaded:
    """What the scenarios need to know about a loaded database."""

    url: str
    posts: int
    seed: int
    organizations: dict[str, uuid.UUID]
    api_key: str
    seconds: float

    @property
    def organization_id(self) -> uuid.UUID:
        return self.organizations[SCENARIO_ORG]


async def recreate_database(admin_url: str, name: str, *, template: str | None = None) -> str:
    """Drop and create database `name` (a copy of `template` if given); returns its URL."""
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        suffix = f' TEMPLATE "{template}"' if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{suffix}')
    finally:
        await conn.close()
    return with_database(admin_url, name)


async def single_tenant_copy(admin_url: str, name: str, organization_id: uuid.UUID) -> str:
    """`name`_rls_off, a copy of database `name` that keeps only what `organization_id` may read
    (`keep_one_tenant`): what the API with Row-Level Security off is measured on. Its URL."""
    url = await recreate_database(admin_url, f"{name}_rls_off", template=name)
    await keep_one_tenant(url, organization_id)
    return url


async def keep_one_tenant(url: str, organization_id: uuid.UUID) -> None:
    """Delete every document `organization_id` cannot read (its versions and references go with
    them): the single-tenant database the API with Row-Level Security off is measured on, so that
    it reads exactly the rows the API with it on may read, and answers the same."""
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute("select set_config('app.override_access', 'true', true)")
            await conn.execute(
                "DELETE FROM cms_documents WHERE organization_id <> ALL(cms_org_tree($1, true))",
                organization_id,
            )
    finally:
        await conn.close()
    await vacuum(url)


async def vacuum(url: str) -> None:
    """`VACUUM (ANALYZE)` the content tables: no dead rows, the visibility map and statistics up
    to date. Each run does it to its database before measuring, as to the single-tenant copy, so
    that the two start alike whatever an earlier run wrote (W1) or the load left (as pgbench
    vacuums its tables before each run)."""
    conn = await asyncpg.connect(url)
    try:
        for table in ("cms_documents", "cms_document_versions", "cms_document_references"):
            await conn.execute(f"VACUUM (ANALYZE) {table}")
    finally:
        await conn.close()


async def drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def load(admin_url: str, name: str, dataset: Dataset) -> Loaded:
    """A fresh database `name` holding `dataset`, analysed and ready to serve."""
    started = time.perf_counter()
    url = await recreate_database(admin_url, name)
    adapter = PostgresAdapter(url, pool_size=2)
    await adapter.connect()  # migrates and installs Row-Level Security
    try:
        organizations, key = await _organizations(adapter)
    finally:
        await adapter.disconnect()
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            # The system context's switch: passes the policies even for a role that is not a
            # superuser (FORCE ROW LEVEL SECURITY applies to the tables' owner too).
            await conn.execute("select set_config('app.override_access', 'true', true)")
            await _copy(conn, dataset.author_documents(), organizations)
            await _copy(conn, dataset.category_documents(), organizations)
            await _copy_posts(conn, dataset, organizations)
        await conn.execute("VACUUM (ANALYZE) cms_documents")
        await conn.execute("VACUUM (ANALYZE) cms_document_versions")
        await conn.execute("VACUUM (ANALYZE) cms_document_references")
    finally:
        await conn.close()
    return Loaded(
        url=url,
        posts=dataset.posts,
        seed=dataset.seed,
        organizations=organizations,
        api_key=key,
        seconds=time.perf_counter() - started,
    )


async def _organizations(adapter: PostgresAdapter) -> tuple[dict[str, uuid.UUID], str]:
    ids: dict[str, uuid.UUID] = {}
    async with adapter.system_context() as tx:
        for slug, parent, _ in ORGANIZATIONS:
            org = await adapter.create_organization(
                tx,
                name=slug,
                slug=slug,
                created_by=ACTOR,
                parent_organization_id=ids[parent] if parent else None,
            )
            ids[slug] = org.id
        _, secret = await adapter.create_api_key(
            tx, organization_id=ids[SCENARIO_ORG], name=ACTOR, role="owner", created_by=ACTOR
        )
    return ids, secret


async def _copy_posts(
    conn: asyncpg.Connection[Any], dataset: Dataset, organizations: dict[str, uuid.UUID]
) -> None:
    # Building rows (hashing, JSON) is Python work and COPY is PostgreSQL work: overlap them.
    def rows(start: int) -> tuple[list[tuple[Any, ...]], ...]:
        return _rows(dataset.post_documents(start, start + BATCH), organizations)

    pending = asyncio.create_task(asyncio.to_thread(rows, 0))
    for start in range(0, dataset.posts, BATCH):
        batch = await pending
        if start + BATCH < dataset.posts:
            pending = asyncio.create_task(asyncio.to_thread(rows, start + BATCH))
        await _copy_rows(conn, batch)


async def _copy(
    conn: asyncpg.Connection[Any],
    documents: Iterable[Document],
    organizations: dict[str, uuid.UUID],
) -> None:
    await _copy_rows(conn, _rows(documents, organizations))


async def _copy_rows(
    conn: asyncpg.Connection[Any], rows: tuple[list[tuple[Any, ...]], ...]
) -> None:
    documents, versions, references = rows
    await conn.copy_records_to_table("cms_documents", records=documents, columns=DOCUMENT_COLUMNS)
    await conn.copy_records_to_table(
        "cms_document_versions", records=versions, columns=VERSION_COLUMNS
    )
    await conn.copy_records_to_table(
        "cms_document_references", records=references, columns=REFERENCE_COLUMNS
    )


def _rows(
    documents: Iterable[Document], organizations: dict[str, uuid.UUID]
) -> tuple[list[tuple[Any, ...]], ...]:
    """The COPY records of `documents`: (documents, versions, references)."""
    document_rows: list[tuple[Any, ...]] = []
    versions: list[tuple[Any, ...]] = []
    references: list[tuple[Any, ...]] = []
    for doc in documents:
        org = organizations[doc.organization]
        # The default jsonb codec takes JSON text.
        data = orjson.dumps(doc.data).decode()
        digest = content_hash(doc.data)
        published_at = doc.updated_at if doc.published else None
        document_rows.append(
            (
                doc.id,
                org,
                doc.type,
                "published" if doc.published else "draft",
                data,
                data if doc.published else None,
                digest if doc.published else None,
                digest,
                1,
                ACTOR,
                ACTOR,
                published_at,
                doc.created_at,
                doc.updated_at,
            )
        )
        versions.append((doc.id, org, 1, "draft", data, ACTOR, doc.created_at))
        planes = ["draft"]
        if doc.published:
            versions.append((doc.id, org, 2, "publish", data, ACTOR, doc.updated_at))
            planes.append("published")
        for target in doc.references:
            for plane in planes:
                references.append((doc.id, target, plane, org, doc.created_at))
    return document_rows, versions, references
