"""Per-request state for resolvers: the unit of work (`server.engine.request.RequestUnit`: the
caller and one org-scoped transaction, opened on first use), the generated types, and loaders.

`UnitOfWork` (an extension) commits the unit after execution, or rolls it back when the result has
errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import strawberry
from strawberry.dataloader import DataLoader

from server.engine.access import Mailer
from server.engine.assets import assets_of
from server.engine.request import RequestUnit
from server.engine.webhooks import WebhooksAPI
from server.errors import NotFoundError
from server.graphql import types as static
from server.graphql.typegen import document_instance

if TYPE_CHECKING:
    from server.engine.assets import AssetRow
    from server.graphql.typegen import GeneratedTypes
    from server.model.pages import Page
    from server.model.types import Registry

# `referencedBy`'s arguments: the document's id, the perspective, limit, offset and depth.
BackReferenceKey = tuple[str, str, int, int, int]


@dataclass(kw_only=True)
class RequestContext(RequestUnit):
    """The request's unit of work (`RequestUnit`), the generated types its schema was built from,
    and what resolvers load through it."""

    generated: GeneratedTypes
    mailer: Mailer | None = None
    # Webhooks and persisted query registration; None in contexts made without content delivery.
    webhooks: WebhooksAPI | None = None
    assets: DataLoader[str, static.Asset | None] = field(init=False)
    # `referencedBy` of every document of a response together: (id, perspective, limit, offset,
    # depth) -> its page.
    back_references: DataLoader[BackReferenceKey, static.BackReferencePage] = field(init=False)

    def __post_init__(self) -> None:
        self.assets = DataLoader(load_fn=self._load_assets)
        self.back_references = DataLoader(load_fn=self._load_back_references)

    def registry(self) -> Registry:
        return self.generated.registry

    async def referenced_by(
        self,
        document_id: str | None,
        *,
        perspective: str,
        limit: int,
        offset: int,
        depth: int,
    ) -> static.BackReferencePage:
        """`referencedBy` of a document: the local API's back-references as GraphQL types. Always
        served by the resolvers (the planner leaves operations that read it to them)."""
        if document_id is None:
            # A stub stands for a reference that was not followed: nothing is said about its target.
            return static.BackReferencePage(
                docs=[],
                totalDocs=0,
                limit=limit,
                offset=offset,
                page=1,
                totalPages=0,
                hasNextPage=False,
                hasPrevPage=offset > 0,
            )
        return await self.back_references.load((document_id, perspective, limit, offset, depth))

    async def _load_back_references(
        self, keys: list[BackReferenceKey]
    ) -> list[static.BackReferencePage | BaseException]:
        # One batch per set of arguments: the documents asking with the same ones are one read.
        batches: dict[tuple[str, int, int, int], list[str]] = {}
        for document_id, perspective, limit, offset, depth in keys:
            batches.setdefault((perspective, limit, offset, depth), []).append(document_id)
        answers: dict[BackReferenceKey, static.BackReferencePage | BaseException] = {}
        unit = await self.unit()
        for (perspective, limit, offset, depth), ids in batches.items():
            try:
                pages = await self.api.back_references_of(
                    unit, ids, perspective=perspective, limit=limit, offset=offset, depth=depth
                )
            except Exception as exc:  # each document's field answers with the error
                for document_id in ids:
                    answers[(document_id, perspective, limit, offset, depth)] = exc
                continue
            for document_id, page in zip(ids, pages, strict=True):
                answers[(document_id, perspective, limit, offset, depth)] = (
                    NotFoundError(f"document {document_id} not found")
                    if page is None
                    else self.back_reference_page(page, perspective)
                )
        return [answers[key] for key in keys]

    def back_reference_page(
        self, result: Page[dict[str, Any]], perspective: str
    ) -> static.BackReferencePage:
        docs = [document_instance(self.generated, doc, perspective) for doc in result.items]
        return static.BackReferencePage.of(result, [doc for doc in docs if doc is not None])

    async def _load_assets(self, ids: list[str]) -> list[static.Asset | None]:
        unit = await self.unit()
        found = await assets_of(self.api).find_by_ids(unit, ids)
        return [to_asset(found[value]) if value in found else None for value in ids]


def to_asset(row: AssetRow) -> static.Asset:
    """An asset row as the GraphQL `Asset`."""
    return static.Asset(
        id=strawberry.ID(str(row.id)),
        assetType=row.asset_type,
        filename=row.filename,
        originalFilename=row.original_filename,
        mimeType=row.mime_type,
        size=row.size,
        url=row.url,
        width=row.width,
        height=row.height,
        title=row.title,
        description=row.description,
        alt=row.alt,
        creditLine=row.credit_line,
        metadata=row.metadata,
        referenceCount=row.reference_count,
        createdAt=row.created_at,
        updatedAt=row.updated_at,
    )
