"""The GraphQL types that do not depend on the content model: the `Document` interface, assets,
filters, pages, versions and results.

The schema uses `auto_camel_case=False`: Python attribute names are the GraphQL names, so content
fields keep exactly the keys of the stored JSON.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Generic, Self, TypeVar, get_type_hints

import strawberry

from server.graphql.scalars import JSON
from server.model import pages

T = TypeVar("T")


@strawberry.type
class Page(Generic[T]):
    """One page of a list with its totals: the shape of every `docs` page (documents of a type,
    documents of any type, back-references, assets)."""

    docs: list[T]
    totalDocs: int
    limit: int
    offset: int
    page: int
    totalPages: int
    hasNextPage: bool
    hasPrevPage: bool

    @classmethod
    def of(cls, page: pages.Page[Any], docs: list[T]) -> Self:
        return cls(**page_fields(page, docs))


def page_fields(page: pages.Page[Any], docs: list[Any]) -> dict[str, Any]:
    """The GraphQL fields of a page holding `docs` (the page's items in their GraphQL form)."""
    return {
        "docs": docs,
        "totalDocs": page.total or 0,
        "limit": page.limit,
        "offset": page.offset,
        "page": page.page,
        "totalPages": page.total_pages or 0,
        "hasNextPage": page.has_next,
        "hasPrevPage": page.has_prev,
    }


# A page's fields beside `docs`, for the generated `<Type>Page` types (`typegen.py`).
PAGE_TOTALS: dict[str, type] = {
    name: hint for name, hint in get_type_hints(Page).items() if name != "docs"
}


@strawberry.interface(description="Fields every document has, whatever its type.")
class Document:
    # A stub's `id` is null: normalized client caches (Apollo's InMemoryCache, urql's graphcache)
    # key objects by `__typename` and `id` (or `_id`), so a stub with its target's id would be
    # merged into the full document. Its target's id is in `_ref`.
    id: strawberry.ID | None = strawberry.field(
        description="the document's id; null on a reference stub (see `_ref`)"
    )
    type: str
    status: str = strawberry.field(
        description='"draft" or "published"; "unresolved" on a reference stub'
    )
    createdAt: datetime | None = None
    updatedAt: datetime | None = None
    publishedAt: datetime | None = None
    revision: int = 0
    publishedHash: str | None = None
    hasUnpublishedChanges: bool = False
    _resolved: bool = strawberry.field(
        default=True,
        name="_resolved",
        description="false on a stub: a reference beyond the depth, on a cycle, or not readable",
    )
    _raw: JSON | None = strawberry.field(
        default=None, name="_raw", description="the document as the local API returns it"
    )
    _id: strawberry.ID | None = strawberry.field(
        default=None, name="_id", description="the same as `id`: null on a reference stub"
    )
    _ref: strawberry.ID = strawberry.field(
        default="",
        name="_ref",
        description="the document's id, on a reference stub too (the id of its target)",
    )
    # The perspective the document was read in: `referencedBy`'s default.
    read_perspective: strawberry.Private[str] = "published"

    @strawberry.field(
        description="The documents that reference this one (those you may read), most recently"
        " updated first: in the perspective given, else the one this document was read in"
        " (published documents whose published data references it, or drafts whose draft does)."
        " Empty on a reference stub."
    )
    async def referencedBy(
        self,
        info: strawberry.Info,
        perspective: str | None = None,
        limit: int | None = 20,
        offset: int | None = 0,
        depth: int | None = 0,
    ) -> BackReferencePage:
        # The request's context serves it (`RequestContext.referenced_by`), so this module, which
        # every other GraphQL module builds on, imports none of them.
        page: BackReferencePage = await info.context.referenced_by(
            None if self.id is None else str(self.id),
            perspective=perspective or self.read_perspective,
            limit=20 if limit is None else limit,
            offset=offset or 0,
            depth=depth or 0,
        )
        return page


@strawberry.type(description="Documents that reference a document: one page, with its totals.")
class BackReferencePage(Page[Document]):
    docs: list[Document] = strawberry.field(
        description="each as its own type: select fields with `... on <Type>`"
    )


@strawberry.type(description="An uploaded image or file.")
class Asset:
    id: strawberry.ID
    assetType: str
    filename: str
    originalFilename: str
    mimeType: str
    size: int
    url: str
    width: int | None = None
    height: int | None = None
    title: str | None = None
    description: str | None = None
    alt: str | None = None
    creditLine: str | None = None
    metadata: JSON | None = None
    referenceCount: int = 0
    createdAt: datetime | None = None
    updatedAt: datetime | None = None


@strawberry.type(
    description="An image field: the asset reference, resolved, plus its own settings."
)
class Image:
    _type: str = strawberry.field(default="image", name="_type")
    assetId: strawberry.ID | None = None
    alt: str | None = None
    caption: str | None = None
    hotspot: JSON | None = None
    crop: JSON | None = None

    @strawberry.field(description="the referenced asset (null when it is missing or not readable)")
    async def asset(self, info: strawberry.Info) -> Asset | None:
        if self.assetId is None:
            return None
        loaded: Asset | None = await info.context.assets.load(str(self.assetId))
        return loaded

    @strawberry.field(description="the asset's public URL")
    async def url(self, info: strawberry.Info) -> str | None:
        asset = await self.asset(info)
        return asset.url if asset is not None else None

    @strawberry.field
    async def width(self, info: strawberry.Info) -> int | None:
        asset = await self.asset(info)
        return asset.width if asset is not None else None

    @strawberry.field
    async def height(self, info: strawberry.Info) -> int | None:
        asset = await self.asset(info)
        return asset.height if asset is not None else None


@strawberry.type(description="A file field: the asset reference, resolved.")
class FileAsset:
    _type: str = strawberry.field(default="file", name="_type")
    assetId: strawberry.ID | None = None
    alt: str | None = None
    caption: str | None = None

    @strawberry.field(description="the referenced asset (null when it is missing or not readable)")
    async def asset(self, info: strawberry.Info) -> Asset | None:
        if self.assetId is None:
            return None
        loaded: Asset | None = await info.context.assets.load(str(self.assetId))
        return loaded

    @strawberry.field(description="the asset's public URL")
    async def url(self, info: strawberry.Info) -> str | None:
        asset = await self.asset(info)
        return asset.url if asset is not None else None


@strawberry.input(description="An image field's value: an uploaded asset and its settings.")
class ImageInput:
    assetId: strawberry.ID
    alt: str | None = None
    caption: str | None = None
    hotspot: JSON | None = None
    crop: JSON | None = None


@strawberry.input(description="A file field's value.")
class FileInput:
    assetId: strawberry.ID
    alt: str | None = None
    caption: str | None = None


@strawberry.type
class DeleteResult:
    success: bool
    id: strawberry.ID | None = None
    referencedBy: BackReferencePage | None = strawberry.field(
        default=None,
        description="On a document's delete: the documents (those you may read) whose draft or"
        " published data referenced it, in the draft perspective, first page; those references"
        " now read as stubs. Null for other deletes.",
    )


@strawberry.type(description="A page of documents as the local API returns them (JSON).")
class DocumentPage(Page[JSON]):
    pass


@strawberry.type
class DocumentVersion:
    versionNumber: int
    eventType: str  # draft, publish or restore
    data: JSON
    createdAt: datetime
    createdBy: str | None = None
    restoredFrom: int | None = strawberry.field(
        default=None, description="For a restore: the version it made the draft again"
    )


@strawberry.type
class DocumentVersionPage:
    versions: list[DocumentVersion]
    totalVersions: int
    limit: int
    offset: int


@strawberry.type(description="A registered schema type, in its JSON form.")
class SchemaTypeInfo:
    name: str
    title: str
    kind: str
    description: str | None
    definition: JSON


# Filter inputs. Operator names are snake_case, as in the `where` language they compile to.


@strawberry.input(
    description="Operators for text fields (contains, starts_with, ends_with: any case)."
)
class StringFilter:
    equals: str | None = strawberry.UNSET
    not_equals: str | None = strawberry.UNSET
    in_: list[str] | None = strawberry.field(default=strawberry.UNSET, name="in")
    not_in: list[str] | None = strawberry.UNSET
    contains: str | None = strawberry.UNSET
    starts_with: str | None = strawberry.UNSET
    ends_with: str | None = strawberry.UNSET
    like: str | None = strawberry.UNSET
    exists: bool | None = strawberry.UNSET


@strawberry.input(description="Operators for number fields.")
class NumberFilter:
    equals: float | None = strawberry.UNSET
    not_equals: float | None = strawberry.UNSET
    in_: list[float] | None = strawberry.field(default=strawberry.UNSET, name="in")
    not_in: list[float] | None = strawberry.UNSET
    greater_than: float | None = strawberry.UNSET
    greater_than_equal: float | None = strawberry.UNSET
    less_than: float | None = strawberry.UNSET
    less_than_equal: float | None = strawberry.UNSET
    exists: bool | None = strawberry.UNSET


@strawberry.input(description="Operators for boolean fields.")
class BooleanFilter:
    equals: bool | None = strawberry.UNSET
    not_equals: bool | None = strawberry.UNSET
    exists: bool | None = strawberry.UNSET


@strawberry.input(description="Operators for datetime fields and timestamps.")
class DateTimeFilter:
    equals: datetime | None = strawberry.UNSET
    not_equals: datetime | None = strawberry.UNSET
    greater_than: datetime | None = strawberry.UNSET
    greater_than_equal: datetime | None = strawberry.UNSET
    less_than: datetime | None = strawberry.UNSET
    less_than_equal: datetime | None = strawberry.UNSET
    exists: bool | None = strawberry.UNSET


@strawberry.input(description="Operators for date fields.")
class DateFilter:
    equals: date | None = strawberry.UNSET
    not_equals: date | None = strawberry.UNSET
    greater_than: date | None = strawberry.UNSET
    greater_than_equal: date | None = strawberry.UNSET
    less_than: date | None = strawberry.UNSET
    less_than_equal: date | None = strawberry.UNSET
    exists: bool | None = strawberry.UNSET


@strawberry.input(description="Operators for ids, and for references by the referenced id.")
class IDFilter:
    equals: strawberry.ID | None = strawberry.UNSET
    not_equals: strawberry.ID | None = strawberry.UNSET
    in_: list[strawberry.ID] | None = strawberry.field(default=strawberry.UNSET, name="in")
    not_in: list[strawberry.ID] | None = strawberry.UNSET
    exists: bool | None = strawberry.UNSET


STATIC_TYPES: tuple[Any, ...] = (Asset, Image, FileAsset)
