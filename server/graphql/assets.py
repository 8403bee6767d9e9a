"""Asset fields: `asset`, `allAsset`, `assetUsage`, `uploadAsset`, `updateAsset` and `deleteAsset`.

Uploads follow the GraphQL multipart request spec (a `multipart/form-data` body with `operations`,
`map` and the file parts). The file is read in chunks and refused with `PAYLOAD_TOO_LARGE` as soon as it
passes `MAX_UPLOAD_BYTES`; its type is detected from its bytes (see `server/assets/file_types.py`).

Capabilities: `asset.read` for the queries, `asset.upload` for `uploadAsset` and `updateAsset`,
`asset.delete` for `deleteAsset`.
"""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from strawberry.file_uploads import Upload

from server.engine.assets import AssetsAPI, assets_of, chunks
from server.engine.context import Context
from server.graphql import types as static
from server.graphql.context import RequestContext, to_asset
from server.model.unset import UNSET


@strawberry.type(description="A page of assets, newest first unless sorted otherwise.")
class AssetPage(static.Page[static.Asset]):
    pass


@strawberry.type(description="A place an asset is used: a document's image or file field.")
class AssetUsage:
    documentId: strawberry.ID
    documentType: str
    plane: str = strawberry.field(description='"draft" or "published"')
    fieldPath: str = strawberry.field(description="e.g. coverImage, body[2], seo.image")


async def _unit(info: strawberry.Info) -> tuple[AssetsAPI, Context]:
    context: RequestContext = info.context
    unit = await context.unit()
    return assets_of(context.api), unit


def _given(value: Any) -> Any:
    # GraphQL's "argument left out" is Strawberry's UNSET; the store's is ours.
    return UNSET if value is strawberry.UNSET else value


@strawberry.type
class AssetQueries:
    @strawberry.field(description="An asset by id (null when absent or not readable)")
    async def asset(self, info: strawberry.Info, id: strawberry.ID) -> static.Asset | None:
        assets, unit = await _unit(info)
        row = await assets.find_by_id(unit, id)
        return to_asset(row) if row is not None else None

    @strawberry.field(
        description="Assets: filtered, sorted, one page, each with its reference count"
    )
    async def allAsset(
        self,
        info: strawberry.Info,
        assetType: Annotated[
            str | None, strawberry.argument(description='"image" or "file"')
        ] = None,
        mimeType: Annotated[
            str | None,
            strawberry.argument(description='an exact type ("image/png") or a family ("image/*")'),
        ] = None,
        search: Annotated[
            str | None, strawberry.argument(description="text in the title or file name, any case")
        ] = None,
        usage: Annotated[
            str | None,
            strawberry.argument(
                description='"in-use" (a draft or published document uses it) or "unused"'
            ),
        ] = None,
        sort: Annotated[
            str | None,
            strawberry.argument(
                description='"newest" (default), "oldest", "name-asc" or "name-desc"'
            ),
        ] = None,
        limit: int | None = 20,
        offset: int | None = 0,
    ) -> AssetPage:
        assets, unit = await _unit(info)
        page = await assets.find(
            unit,
            asset_type=assetType,
            mime_type=mimeType,
            search=search,
            usage=usage,
            sort=sort,
            limit=20 if limit is None else limit,
            offset=offset or 0,
        )
        return AssetPage.of(page, [to_asset(row) for row in page.items])

    @strawberry.field(description="Where an asset is used, draft and published, by field path")
    async def assetUsage(self, info: strawberry.Info, id: strawberry.ID) -> list[AssetUsage]:
        assets, unit = await _unit(info)
        return [
            AssetUsage(
                documentId=strawberry.ID(str(usage.document_id)),
                documentType=usage.document_type,
                plane=usage.plane,
                fieldPath=usage.field_path,
            )
            for usage in await assets.documents_using(unit, id)
        ]


@strawberry.type
class AssetMutations:
    @strawberry.mutation(
        description="Upload a file (GraphQL multipart request); needs asset.upload"
    )
    async def uploadAsset(
        self,
        info: strawberry.Info,
        file: Upload,
        title: str | None = None,
        alt: str | None = None,
        description: str | None = None,
        creditLine: str | None = None,
    ) -> static.Asset:
        assets, unit = await _unit(info)
        upload: Any = file  # a Starlette UploadFile
        row = await assets.upload(
            unit,
            chunks(upload),
            filename=getattr(upload, "filename", None),
            content_type=getattr(upload, "content_type", None),
            title=title,
            alt=alt,
            description=description,
            credit_line=creditLine,
        )
        return to_asset(row)

    @strawberry.mutation(
        description="Change an asset's descriptive fields: a left-out argument stays, null clears it"
    )
    async def updateAsset(
        self,
        info: strawberry.Info,
        id: strawberry.ID,
        title: str | None = strawberry.UNSET,
        alt: str | None = strawberry.UNSET,
        description: str | None = strawberry.UNSET,
        creditLine: str | None = strawberry.UNSET,
    ) -> static.Asset:
        assets, unit = await _unit(info)
        row = await assets.update(
            unit,
            id,
            title=_given(title),
            alt=_given(alt),
            description=_given(description),
            credit_line=_given(creditLine),
        )
        return to_asset(row)

    @strawberry.mutation(
        description="Delete an asset; refused (CONFLICT) while a document uses it, unless force"
    )
    async def deleteAsset(
        self, info: strawberry.Info, id: strawberry.ID, force: bool | None = False
    ) -> static.DeleteResult:
        assets, unit = await _unit(info)
        row = await assets.delete(unit, id, force=bool(force))
        return static.DeleteResult(success=True, id=strawberry.ID(str(row.id)))
