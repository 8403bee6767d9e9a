"""Assets in SQL, and the first steps of an upload: receiving the bytes within the size limit.

`AssetStore` is a mixin of `PostgresAdapter`. Every method runs on the caller's org-scoped
transaction, so Row-Level Security applies: an organization sees its own assets (and, with the
hierarchy on, its descendants'), and writes only its own.

Reference counting uses the index `cms_asset_references` (document, plane, field path -> asset),
which `server/content/documents.py` keeps current on every save, publish and unpublish. An asset's
reference count is the number of distinct documents that use it in either plane; "in use" means
any row exists. Nothing here ever scans document JSON for an id.

Deleting an asset that is in use is refused (`CONFLICT`) unless forced. The store only deletes the row;
the local API (`server/engine/assets.py`) first removes the references from the drafts that hold them.
"""

from __future__ import annotations

import re
import tempfile
import unicodedata
import uuid
from collections.abc import AsyncIterable
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, Literal

import asyncpg

from server.content.filters import escape_like
from server.db.pool import Tx
from server.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from server.model.pages import Page
from server.model.reading import check_page
from server.model.unset import UNSET, Unset

# Uploads up to this size stay in memory while they are checked; larger ones go to a temporary file.
_SPOOL_BYTES = 1024 * 1024

ASSET_TYPES = ("image", "file")
USAGES = ("in-use", "unused")
SORTS = {
    "newest": "a.created_at DESC, a.id DESC",
    "oldest": "a.created_at ASC, a.id ASC",
    "name": "lower(coalesce(a.title, a.original_filename)) ASC, a.id ASC",
    "name-asc": "lower(coalesce(a.title, a.original_filename)) ASC, a.id ASC",
    "name-desc": "lower(coalesce(a.title, a.original_filename)) DESC, a.id DESC",
}
# Column lengths of `cms_assets` that a client's text can reach.
_TEXT_LIMITS = {"title": 255, "original_filename": 255}

_COLUMNS = (
    "id, organization_id, asset_type, filename, original_filename, mime_type, size, url, path,"
    " storage_adapter, width, height, metadata, title, description, alt, credit_line, created_by,"
    " updated_by, created_at, updated_at"
)
_SELECT = (
    ", ".join(f"a.{name.strip()}" for name in _COLUMNS.split(","))
    + ", (SELECT count(DISTINCT r.document_id) FROM cms_asset_references r"
    " WHERE r.asset_id = a.id) AS reference_count"
)


class PayloadTooLargeError(InvalidInputError):
    """An upload larger than the configured limit (`MAX_UPLOAD_BYTES`)."""

    code = "PAYLOAD_TOO_LARGE"


@dataclass(frozen=True)
class AssetRow:
    id: uuid.UUID
    organization_id: uuid.UUID
    asset_type: str
    filename: str
    original_filename: str
    mime_type: str
    size: int
    url: str
    path: str
    storage_adapter: str
    width: int | None
    height: int | None
    metadata: dict[str, Any] | None
    title: str | None
    description: str | None
    alt: str | None
    credit_line: str | None
    created_by: str | None
    updated_by: str | None
    created_at: datetime
    updated_at: datetime
    reference_count: int = 0

    @classmethod
    def from_record(cls, row: asyncpg.Record) -> AssetRow:
        return cls(**{name: row[name] for name in _FIELDS}, reference_count=row["reference_count"])


_FIELDS = tuple(name.strip() for name in _COLUMNS.split(","))


@dataclass(frozen=True)
class AssetUsage:
    """One place an asset is used: a document, its plane, and the path of the image or file value."""

    document_id: uuid.UUID
    document_type: str
    plane: Literal["draft", "published"]
    field_path: str


class AssetStore:
    """Asset rows and their reference counts, on the caller's transaction."""

    async def create_asset(
        self,
        tx: Tx,
        *,
        id: uuid.UUID,
        asset_type: str,
        filename: str,
        original_filename: str,
        mime_type: str,
        size: int,
        url: str,
        path: str,
        storage_adapter: str,
        width: int | None = None,
        height: int | None = None,
        metadata: dict[str, Any] | None = None,
        title: str | None = None,
        description: str | None = None,
        alt: str | None = None,
        credit_line: str | None = None,
        created_by: str | None = None,
    ) -> AssetRow:
        """Insert an asset of the current organization."""
        check_text(title=title, original_filename=original_filename)
        row = await tx.fetchrow(
            f"INSERT INTO cms_assets AS a (id, organization_id, asset_type, filename,"
            f" original_filename, mime_type, size, url, path, storage_adapter, width, height,"
            f" metadata, title, description, alt, credit_line, created_by, updated_by)"
            f" VALUES ($1, (select cms_current_org()), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
            f" $12, $13, $14, $15, $16, $17, $17)"
            f" RETURNING {_SELECT}",
            id,
            asset_type,
            filename,
            original_filename,
            mime_type,
            size,
            url,
            path,
            storage_adapter,
            width,
            height,
            metadata,
            title,
            description,
            alt,
            credit_line,
            created_by,
        )
        assert row is not None
        return AssetRow.from_record(row)

    async def find_asset(self, tx: Tx, *, id: uuid.UUID) -> AssetRow | None:
        """A readable asset (the current org's or a descendant's) with its reference count."""
        row = await tx.fetchrow(f"SELECT {_SELECT} FROM cms_assets a WHERE a.id = $1", id)
        return AssetRow.from_record(row) if row is not None else None

    async def find_assets_by_id(self, tx: Tx, *, ids: list[uuid.UUID]) -> list[AssetRow]:
        """The readable assets among `ids`, in no particular order, with their reference counts."""
        rows = await tx.fetch(
            f"SELECT {_SELECT} FROM cms_assets a WHERE a.id = ANY($1::uuid[])", ids
        )
        return [AssetRow.from_record(row) for row in rows]

    async def find_assets(
        self,
        tx: Tx,
        *,
        asset_type: str | None = None,
        mime_type: str | None = None,
        search: str | None = None,
        usage: str | None = None,
        sort: str | None = None,
        limit: int = 20,
        offset: int = 0,
        max_limit: int = 200,
    ) -> Page[AssetRow]:
        """One page of readable assets, filtered and sorted, each with its reference count.

        Args:
            tx: the org-scoped transaction.
            asset_type: `image` or `file`.
            mime_type: an exact type (`image/png`) or a family (`image/*`).
            search: text to find, ignoring case, in the title or the original or stored file name.
            usage: `in-use` (some document uses it, draft or published) or `unused`.
            sort: `newest` (the default), `oldest`, `name` / `name-asc` or `name-desc` (by title,
                else original file name).
            limit: the page size, 1 to `max_limit`.
            offset: how many assets to skip.
            max_limit: the configured maximum page size.

        Returns:
            The page and the total number of matching assets.

        Raises:
            InvalidInputError: a filter value is not one of those above.
        """
        limit, offset = check_page(limit, offset, max_limit=max_limit)
        conditions: list[str] = []
        args: list[Any] = []

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if asset_type is not None:
            if asset_type not in ASSET_TYPES:
                raise InvalidInputError("assetType must be image or file", path="assetType")
            conditions.append(f"a.asset_type = {arg(asset_type)}")
        if mime_type is not None:
            if mime_type.endswith("/*"):
                family = escape_like(mime_type[:-1].lower())
                conditions.append(f"a.mime_type LIKE {arg(family + '%')}")
            else:
                conditions.append(f"a.mime_type = {arg(mime_type.lower())}")
        if search:
            pattern = arg(f"%{escape_like(search)}%")
            conditions.append(
                f"(a.title ILIKE {pattern} OR a.original_filename ILIKE {pattern}"
                f" OR a.filename ILIKE {pattern})"
            )
        if usage is not None:
            if usage not in USAGES:
                raise InvalidInputError("usage must be in-use or unused", path="usage")
            exists = "EXISTS (SELECT 1 FROM cms_asset_references r WHERE r.asset_id = a.id)"
            conditions.append(exists if usage == "in-use" else f"NOT {exists}")
        order = SORTS.get(sort or "newest")
        if order is None:
            raise InvalidInputError(f"sort must be one of {', '.join(SORTS)}", path="sort")
        where = " AND ".join(conditions) or "true"
        rows = await tx.fetch(
            f"SELECT {_SELECT}, count(*) OVER () AS total FROM cms_assets a WHERE {where}"
            f" ORDER BY {order} LIMIT {arg(limit)} OFFSET {arg(offset)}",
            *args,
        )
        if rows:
            total = rows[0]["total"]
        elif offset > 0:
            # Past the last page: the window function had no row to report the total on.
            total = await tx.fetchval(
                f"SELECT count(*) FROM cms_assets a WHERE {where}", *args[:-2]
            )
        else:
            total = 0
        return Page.counted(
            [AssetRow.from_record(row) for row in rows],
            total=int(total),
            limit=limit,
            offset=offset,
        )

    async def update_asset(
        self,
        tx: Tx,
        *,
        id: uuid.UUID,
        updated_by: str | None = None,
        title: str | Unset | None = UNSET,
        alt: str | Unset | None = UNSET,
        description: str | Unset | None = UNSET,
        credit_line: str | Unset | None = UNSET,
    ) -> AssetRow:
        """Change the descriptive fields: `UNSET` (the default) leaves one alone, None clears it."""
        changes = {
            "title": title,
            "alt": alt,
            "description": description,
            "credit_line": credit_line,
        }
        given = {name: value for name, value in changes.items() if value is not UNSET}
        check_text(**given)
        assignments = [f"{name} = ${n}" for n, name in enumerate(given, start=3)]
        row = await tx.fetchrow(
            f"UPDATE cms_assets AS a SET {', '.join([*assignments, 'updated_by = $2'])},"
            f" updated_at = now() WHERE a.id = $1 RETURNING {_SELECT}",
            id,
            updated_by,
            *given.values(),
        )
        if row is None:
            await self._explain_missing_asset(tx, id)
        assert row is not None
        return AssetRow.from_record(row)

    async def lock_asset(self, tx: Tx, *, id: uuid.UUID) -> AssetRow:
        """An asset of the current organization, locked until the transaction ends.

        The lock orders a delete after any document save that is adding a reference to the asset
        (that save holds a key-share lock on the row through the foreign key), so the in-use check
        that follows sees every committed reference.
        """
        row = await tx.fetchrow(
            f"SELECT {_SELECT} FROM cms_assets a"
            f" WHERE a.id = $1 AND a.organization_id = (select cms_current_org()) FOR UPDATE OF a",
            id,
        )
        if row is None:
            await self._explain_missing_asset(tx, id)
        assert row is not None
        return AssetRow.from_record(row)

    async def delete_asset(self, tx: Tx, *, id: uuid.UUID, force: bool = False) -> AssetRow:
        """Delete the asset row; refused with ConflictError while a document uses it, unless `force`.

        With `force` the reference rows go with the asset (foreign-key cascade); the documents' JSON
        is the caller's to clean (see `server/engine/assets.py`).
        """
        asset = await self.lock_asset(tx, id=id)
        if not force:
            usages = await self.documents_using_asset(tx, asset_id=id)
            if usages:
                documents = sorted({f"{u.document_type} {u.document_id}" for u in usages})
                raise ConflictError(
                    f"asset {id} is used by {len(documents)} document(s): {', '.join(documents)};"
                    " remove it from them first, or delete with force",
                    documents=documents,
                )
        await tx.execute("DELETE FROM cms_assets WHERE id = $1", id)
        return asset

    async def asset_reference_counts(
        self, tx: Tx, *, asset_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, int]:
        """How many distinct documents (either plane) use each asset: one query for all of them."""
        rows = await tx.fetch(
            "SELECT asset_id, count(DISTINCT document_id) AS n FROM cms_asset_references"
            " WHERE asset_id = ANY($1::uuid[]) GROUP BY asset_id",
            asset_ids,
        )
        counts = dict.fromkeys(asset_ids, 0)
        counts.update({row["asset_id"]: int(row["n"]) for row in rows})
        return counts

    async def documents_using_asset(self, tx: Tx, *, asset_id: uuid.UUID) -> list[AssetUsage]:
        """Every (document, plane, field path) that uses the asset, from the reference index."""
        rows = await tx.fetch(
            "SELECT document_id, document_type, plane, field_path FROM cms_asset_references"
            " WHERE asset_id = $1 ORDER BY document_id, plane, field_path",
            asset_id,
        )
        return [
            AssetUsage(
                document_id=row["document_id"],
                document_type=row["document_type"],
                plane=row["plane"],
                field_path=row["field_path"],
            )
            for row in rows
        ]

    async def lock_asset_mutation(self, tx: Tx, *, id: uuid.UUID) -> None:
        """Hold the asset's advisory lock until this transaction ends (see `server/engine/assets.py`)."""
        await tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", _lock_key(id))

    async def wait_for_asset_mutations(
        self, tx: Tx, *, id: uuid.UUID, timeout_ms: int = 600_000
    ) -> bool:
        """Wait until no transaction holds the asset's advisory lock; then whether the row exists.

        Run on a transaction of its own: it returns once every transaction that called
        `lock_asset_mutation` for this asset has committed or rolled back.
        """
        await tx.execute("SELECT set_config('statement_timeout', $1, true)", str(timeout_ms))
        await tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", _lock_key(id))
        return bool(await tx.fetchval("SELECT EXISTS (SELECT 1 FROM cms_assets WHERE id = $1)", id))

    async def _explain_missing_asset(self, tx: Tx, id: uuid.UUID) -> None:
        row = await tx.fetchrow(
            "SELECT organization_id = (select cms_current_org()) AS own FROM cms_assets WHERE id = $1",
            id,
        )
        if row is None:
            raise NotFoundError(f"asset {id} not found")
        if not row["own"]:
            raise ForbiddenError(
                f"asset {id} belongs to another organization; writes are only permitted in the"
                " current organization"
            )
        raise InvalidInputError(f"asset {id} cannot be written")


def _lock_key(id: uuid.UUID) -> str:
    return f"cms_asset:{id}"


def check_text(**values: str | None) -> None:
    """Refuse text longer than its column, naming the field."""
    for name, value in values.items():
        limit = _TEXT_LIMITS.get(name)
        if value is not None and not isinstance(value, str):
            raise InvalidInputError(f"{name} must be a string", path=_camel(name))
        if limit is not None and value is not None and len(value) > limit:
            raise InvalidInputError(
                f"{name} is too long: at most {limit} characters", path=_camel(name)
            )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


def clean_filename(name: str | None) -> str:
    """The client's file name as a label only: its last path segment, printable, at most 255 characters.

    It is shown to people (`originalFilename`) and never used to name a stored file.
    """
    text = unicodedata.normalize("NFC", name or "")
    base = re.split(r"[/\\]", text)[-1]
    base = _UNSAFE_NAME.sub("", base).strip()
    if base in ("", ".", ".."):
        return "upload"
    return base[:255]


async def receive(
    source: bytes | IO[bytes] | AsyncIterable[bytes], *, limit: int
) -> tempfile.SpooledTemporaryFile[bytes]:
    """Take in the upload, stopping as soon as it passes `limit` bytes.

    At most `limit + 1` bytes are ever read, and past 1 MiB they go to a temporary file, so a large
    or endless upload costs neither unbounded memory nor time.

    Raises:
        PayloadTooLargeError: the upload has more than `limit` bytes.
    """
    # Returned open: the caller closes it (upload() does, in a finally).
    spool: tempfile.SpooledTemporaryFile[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115
        max_size=_SPOOL_BYTES
    )
    try:
        total = 0
        async for chunk in _chunks(source, limit + 1):
            total += len(chunk)
            if total > limit:
                raise PayloadTooLargeError(
                    f"the file is too large: at most {limit} bytes are accepted",
                    path="file",
                    limit=limit,
                )
            spool.write(chunk)
        if total == 0:
            raise InvalidInputError("the file is empty", path="file")
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


async def _chunks(
    source: bytes | IO[bytes] | AsyncIterable[bytes], budget: int
) -> AsyncIterable[bytes]:
    if isinstance(source, bytes | bytearray | memoryview):
        yield bytes(source[:budget])
    elif isinstance(source, AsyncIterable):
        async for chunk in source:
            yield chunk
    else:
        while budget > 0 and (chunk := source.read(min(64 * 1024, budget))):
            budget -= len(chunk)
            yield chunk
