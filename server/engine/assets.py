"""The local API for assets: upload, read, list, describe and delete, with capability checks.

    assets = AssetsAPI(local_api, LocalStorage(folder, "/assets"), max_upload_bytes=25 * 2**20)
    async with local_api.context(org_id, user_id="u1", capabilities=caps) as ctx:
        asset = await assets.upload(ctx, data, filename="cat.png", content_type="image/png")

Capabilities: `asset.read` to read, `asset.upload` to upload and to change an asset's descriptive
fields, `asset.delete` to delete.

Files and transactions: an upload stores its file before the row is inserted, and a delete removes the
row while the file stays. Which of the two wins is settled only when the caller's transaction ends, so
each upload and delete takes a transaction-scoped advisory lock on the asset and starts a background
task that waits for that lock in a transaction of its own (org-scoped, like the request). Once the
caller's transaction has ended, the task looks for the row: when there is none (a committed delete, or
a rolled-back upload) it removes the file. So a file is deleted only after its delete commits, and an
upload that rolls back leaves no file behind. `settle()` waits for these tasks.

A forced delete of an asset in use removes its image and file values from the *drafts* that hold them
(found through the reference index, at the indexed paths): an object field loses the key, an array
loses the item. Each such draft is saved as a new draft revision with a version, so editors and
concurrent autosaves see the change. Published data is left as it is: published content changes only
by publishing, so the published document keeps a reference that no longer resolves (an `Image` whose
`asset` is null, as with a reference to a deleted document) and shows unpublished changes until the
cleaned draft is published.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import logging
import uuid
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from typing import IO, Protocol

from server.assets.cleanup import draft_references, remove_asset_values
from server.assets.file_types import Detected, detect
from server.assets.storage import CHUNK_SIZE, StorageAdapter, storage_name
from server.assets.store import (
    AssetRow,
    AssetUsage,
    check_text,
    clean_filename,
    receive,
)
from server.config import DEFAULT_MAX_UPLOAD_BYTES
from server.content.hash import content_hash
from server.engine.adapter import Assets, Documents, Transactions
from server.engine.context import Context, parse_id
from server.engine.local_api import LocalAPI
from server.model.pages import Page
from server.model.unset import UNSET, Unset

# The rows this service returns, for its callers.
__all__ = ["AssetRow", "AssetUsage", "AssetsAPI", "Readable", "assets_of", "chunks"]

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 20


class Readable(Protocol):
    """An uploaded file as a web framework hands it over."""

    async def read(self, size: int = -1) -> bytes: ...


async def chunks(upload: Readable) -> AsyncIterator[bytes]:
    """An uploaded file's bytes in the storage's chunks, for `AssetsAPI.upload`."""
    while chunk := await upload.read(CHUNK_SIZE):
        yield chunk


class AssetAdapter(Assets, Documents, Transactions, Protocol):
    """What the asset service needs: assets, the drafts a forced delete cleans, and a transaction
    of its own to wait in."""


class AssetsAPI:
    """Assets for local API callers, on their org-scoped transaction."""

    def __init__(
        self,
        api: LocalAPI,
        storage: StorageAdapter,
        *,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    ) -> None:
        self.api = api
        self.adapter: AssetAdapter = api.adapter
        self.storage = storage
        self.max_upload_bytes = max_upload_bytes
        self._pending: set[asyncio.Task[None]] = set()

    # Reading

    async def find_by_ids(self, ctx: Context, ids: Sequence[str]) -> dict[str, AssetRow]:
        """The readable assets among `ids` by id, in one statement (ids that are not UUIDs find
        nothing): what an image or file field's `asset` loads for a whole response."""
        ctx.require("asset.read")
        valid = []
        for value in ids:
            try:
                valid.append(uuid.UUID(value))
            except ValueError:
                continue
        rows = await self.adapter.find_assets_by_id(ctx.tx, ids=valid)
        return {str(row.id): row for row in rows}

    async def find_by_id(self, ctx: Context, id: str | uuid.UUID) -> AssetRow | None:
        """The asset, or None when it is absent or not readable (another tenant's)."""
        ctx.require("asset.read")
        return await self.adapter.find_asset(ctx.tx, id=parse_id(id))

    async def find(
        self,
        ctx: Context,
        *,
        asset_type: str | None = None,
        mime_type: str | None = None,
        search: str | None = None,
        usage: str | None = None,
        sort: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
    ) -> Page[AssetRow]:
        """A page of assets; the filters are those of `AssetStore.find_assets`."""
        ctx.require("asset.read")
        return await self.adapter.find_assets(
            ctx.tx,
            asset_type=asset_type,
            mime_type=mime_type,
            search=search,
            usage=usage,
            sort=sort,
            limit=limit,
            offset=offset,
            max_limit=self.api.max_page_size,
        )

    async def documents_using(self, ctx: Context, id: str | uuid.UUID) -> list[AssetUsage]:
        """Where the asset is used: document, plane and field path, from the reference index."""
        ctx.require("asset.read")
        asset = await self.adapter.find_asset(ctx.tx, id=parse_id(id))
        if asset is None:
            return []
        return await self.adapter.documents_using_asset(ctx.tx, asset_id=asset.id)

    # Writing

    async def upload(
        self,
        ctx: Context,
        content: bytes | IO[bytes] | AsyncIterable[bytes],
        *,
        filename: str | None = None,
        content_type: str | None = None,
        title: str | None = None,
        alt: str | None = None,
        description: str | None = None,
        credit_line: str | None = None,
    ) -> AssetRow:
        """Check and store an uploaded file, and create its asset.

        Args:
            ctx: the unit of work.
            content: the file's bytes, a binary file, or chunks.
            filename: the client's name for the file; kept as `original_filename`, never used to name
                the stored file.
            content_type: the client's declared type; checked against the detected one.
            title: a title for people.
            alt: the alternative text of an image.
            description: a longer description.
            credit_line: who to credit.

        Returns:
            The new asset.

        Raises:
            PayloadTooLargeError: the file is larger than `max_upload_bytes`.
            InvalidInputError: the file is empty, damaged, or not of its declared type.
            ForbiddenError: the caller lacks `asset.upload`.
        """
        ctx.require("asset.upload")
        original = clean_filename(filename)
        check_text(title=title, alt=alt, description=description, credit_line=credit_line)
        spool = await receive(content, limit=self.max_upload_bytes)
        try:
            detected, size, digest = await asyncio.to_thread(_inspect, spool, content_type)
            asset_id = uuid.uuid4()
            name = storage_name(asset_id, detected.extension)
            await self._collect_when_done(ctx, asset_id, name)
            path = await self.storage.save(spool, filename=name)
        finally:
            spool.close()
        return await self.adapter.create_asset(
            ctx.tx,
            id=asset_id,
            asset_type=detected.asset_type,
            filename=name,
            original_filename=original,
            mime_type=detected.mime_type,
            size=size,
            url=self.storage.url_for(path),
            path=path,
            storage_adapter=self.storage.name,
            width=detected.width,
            height=detected.height,
            metadata={**detected.metadata, "sha256": digest},
            title=title,
            description=description,
            alt=alt,
            credit_line=credit_line,
            created_by=ctx.user_id,
        )

    async def update(
        self,
        ctx: Context,
        id: str | uuid.UUID,
        *,
        title: str | Unset | None = UNSET,
        alt: str | Unset | None = UNSET,
        description: str | Unset | None = UNSET,
        credit_line: str | Unset | None = UNSET,
    ) -> AssetRow:
        """Change the descriptive fields: `UNSET` (the default) leaves one alone, None clears it."""
        ctx.require("asset.upload")
        return await self.adapter.update_asset(
            ctx.tx,
            id=parse_id(id),
            updated_by=ctx.user_id,
            title=title,
            alt=alt,
            description=description,
            credit_line=credit_line,
        )

    async def delete(self, ctx: Context, id: str | uuid.UUID, *, force: bool = False) -> AssetRow:
        """Delete an asset of the current organization; its file goes once the transaction commits.

        Raises:
            ConflictError: a document (draft or published) uses the asset and `force` is false.
            NotFoundError: no readable asset has this id.
            ForbiddenError: the caller lacks `asset.delete`, or the asset is another org's.
        """
        ctx.require("asset.delete")
        asset_id = parse_id(id)
        adapter = self.adapter
        if force:
            await adapter.lock_asset(ctx.tx, id=asset_id)
            usages = await adapter.documents_using_asset(ctx.tx, asset_id=asset_id)
            await self._remove_from_drafts(ctx, asset_id, usages)
        asset = await adapter.delete_asset(ctx.tx, id=asset_id, force=force)
        await self._collect_when_done(ctx, asset_id, asset.path)
        return asset

    async def settle(self) -> None:
        """Wait for the file clean-ups of finished transactions (tests, shutdown)."""
        while self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    # Files after the transaction

    async def _collect_when_done(self, ctx: Context, asset_id: uuid.UUID, path: str) -> None:
        await self.adapter.lock_asset_mutation(ctx.tx, id=asset_id)
        task = asyncio.create_task(self._collect(ctx.organization_id, asset_id, path))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _collect(self, organization_id: uuid.UUID, asset_id: uuid.UUID, path: str) -> None:
        adapter = self.adapter
        try:
            async with adapter.with_org_context(organization_id) as tx:
                exists = await adapter.wait_for_asset_mutations(tx, id=asset_id)
            if not exists:
                await self.storage.delete(path)
        except Exception:
            # The file stays; it is unreachable without its row, so this costs disk space only.
            log.warning("could not tidy up the file %s of asset %s", path, asset_id, exc_info=True)

    # Forced deletes

    async def _remove_from_drafts(
        self, ctx: Context, asset_id: uuid.UUID, usages: list[AssetUsage]
    ) -> None:
        paths: dict[uuid.UUID, list[str]] = {}
        for usage in usages:
            if usage.plane == "draft":
                paths.setdefault(usage.document_id, []).append(usage.field_path)
        adapter = self.adapter
        for document_id, field_paths in paths.items():
            row = await adapter.lock_document(ctx.tx, id=document_id)
            data = copy.deepcopy(row.draft_data or {})
            if not remove_asset_values(data, field_paths, str(asset_id)):
                continue
            await adapter.update_draft(
                ctx.tx,
                document=row,
                data=data,
                draft_hash=content_hash(data),
                references=draft_references(ctx.registry, row.type, data),
                updated_by=ctx.user_id,
            )


def _inspect(spool: IO[bytes], declared: str | None) -> tuple[Detected, int, str]:
    """Detection, size and SHA-256 in one pass of a worker thread (all of it is blocking I/O)."""
    detected = detect(spool, declared)
    spool.seek(0)
    digest = hashlib.sha256()
    size = 0
    while chunk := spool.read(64 * 1024):
        digest.update(chunk)
        size += len(chunk)
    return detected, size, digest.hexdigest()


# The asset service of each local API, attached by the app once storage is configured
# (`server.asset_files`). Kept here rather than on the local API, which knows nothing of assets.
_ATTACHED: weakref.WeakKeyDictionary[LocalAPI, AssetsAPI] = weakref.WeakKeyDictionary()


def attach_assets(api: LocalAPI, assets: AssetsAPI) -> AssetsAPI:
    """Make `assets` the asset service of `api` (what `assets_of(api)` returns)."""
    _ATTACHED[api] = assets
    return assets


def assets_of(api: LocalAPI) -> AssetsAPI:
    """The asset service attached to `api`."""
    assets = _ATTACHED.get(api)
    if assets is None:
        raise RuntimeError("no asset service is attached to this local API")
    return assets
