"""Serving asset files: `GET {ASSET_URL_PREFIX}/{name}`.

Files are public: anyone with the URL can fetch it, as with a CDN. Names are random (a UUID), so a URL
cannot be guessed; the asset's row, its metadata and the list of assets stay behind authentication.
No database is read here, which keeps the route cheap and free of any tenant context.

The headers make stored files inert in a browser: `X-Content-Type-Options: nosniff`, a sandboxing
Content-Security-Policy, and `Content-Disposition: attachment` for everything but the raster image
formats Pillow verified on upload. The content type comes from the stored name's extension, which the
server chose from the detected type. Names never change their bytes, so responses are cacheable for a
year and marked immutable.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from server.assets.file_types import INLINE_EXTENSIONS, MIME_TYPES, OCTET_STREAM
from server.assets.storage import LocalStorage, StorageAdapter, is_storage_name
from server.config import Settings
from server.engine.assets import AssetsAPI, attach_assets
from server.engine.local_api import LocalAPI

CACHE_CONTROL = "public, max-age=31536000, immutable"
_TEXT = frozenset({"txt", "csv", "tsv", "md", "json"})


def mount_assets(api: LocalAPI, settings: Settings) -> Route:
    """Give `api` its asset service (local storage from `settings`); return the route for the files."""
    storage = LocalStorage(settings.asset_folder, settings.asset_url_prefix)
    attach_assets(api, AssetsAPI(api, storage, max_upload_bytes=settings.max_upload_bytes))
    path = urlsplit(settings.asset_url_prefix).path.rstrip("/")
    return Route(f"{path}/{{name}}", file_endpoint(storage), methods=["GET"])


def file_endpoint(storage: StorageAdapter) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint that serves the stored files of `storage` by name."""

    async def serve(request: Request) -> Response:
        name: str = request.path_params["name"]
        stored = await storage.open(name) if is_storage_name(name) else None
        if stored is None:
            return Response("Not Found", status_code=404, media_type="text/plain")
        headers = file_headers(name)
        etag = headers["ETag"]
        if _etags(request.headers.get("if-none-match", "")) & {etag, "*"}:
            return Response(status_code=304, headers=_without_body(headers))
        headers["Content-Length"] = str(stored.size)
        return StreamingResponse(stored.chunks, headers=headers)

    return serve


def file_headers(name: str) -> dict[str, str]:
    """The response headers of a stored file."""
    extension = name.rsplit(".", 1)[-1]
    mime = MIME_TYPES.get(extension, OCTET_STREAM)
    if extension in _TEXT:
        mime += "; charset=utf-8"
    inline = extension in INLINE_EXTENSIONS
    return {
        "Content-Type": mime,
        "Content-Disposition": f'{"inline" if inline else "attachment"}; filename="{name}"',
        "Cache-Control": CACHE_CONTROL,
        "ETag": f'"{name}"',
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def _without_body(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in ("Content-Type", "Content-Disposition")}
