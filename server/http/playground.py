"""GraphiQL for browsers at `GET /graphql`, served from our own static files, never a CDN.

The vendored bundles live in `server/static/graphiql/` (refreshed by `scripts/vendor-graphiql`); the
page loads them with a content hash in the URL, so they can be cached for long and still change with
an upgrade. The page's Content-Security-Policy keeps every request on this origin.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from functools import cache
from html import escape
from pathlib import Path

from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
STATIC_PATH = "/static"

_STYLES = ("graphiql/graphiql.min.css",)
# In load order: GraphiQL's UMD bundle expects the React globals, our start-up script all three.
_SCRIPTS = (
    "graphiql/react.production.min.js",
    "graphiql/react-dom.production.min.js",
    "graphiql/graphiql.min.js",
    "playground.js",
)

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        # GraphiQL and its editor set inline styles.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>GraphiQL · Content API</title>
<link rel="icon" href="data:,">
{styles}
<style>html, body, #graphiql {{ height: 100%; margin: 0; }}</style>
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<script id="graphiql-config" type="application/json">{config}</script>
{scripts}
</body>
</html>
"""


@cache
def asset_url(name: str) -> str:
    """The URL of a static file, versioned by its content."""
    digest = hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]
    return f"{STATIC_PATH}/{name}?v={digest}"


def _script_json(value: object) -> str:
    # Inside <script>, only "</script" could end the element early; escaping <, > and & as JSON
    # unicode escapes rules that out whatever the strings hold.
    text = json.dumps(value)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def playground_page(
    *, endpoint: str, headers: Mapping[str, str] | None = None, query: str | None = None
) -> str:
    """The GraphiQL page, posting to `endpoint`, with `headers` and `query` filled in if given."""
    config = {"endpoint": endpoint, "headers": dict(headers) if headers else None, "query": query}
    return _PAGE.format(
        styles="\n".join(f'<link rel="stylesheet" href="{escape(asset_url(s))}">' for s in _STYLES),
        config=_script_json(config),
        scripts="\n".join(f'<script src="{escape(asset_url(s))}"></script>' for s in _SCRIPTS),
    )


def playground_response(
    *, endpoint: str, headers: Mapping[str, str] | None = None, query: str | None = None
) -> HTMLResponse:
    page = playground_page(endpoint=endpoint, headers=headers, query=query)
    return HTMLResponse(
        page,
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            # In demo mode the page holds a key: keep it out of every cache.
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
            "Vary": "Accept",
        },
    )


class StaticAssets(StaticFiles):
    """Static files with cache headers: a year for the page's versioned URLs, an hour otherwise.

    Either way the ETag and Last-Modified that StaticFiles sends let a browser revalidate cheaply.
    """

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            versioned = b"v=" in scope.get("query_string", b"")
            response.headers["Cache-Control"] = (
                "public, max-age=31536000, immutable" if versioned else "public, max-age=3600"
            )
            response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def static_assets() -> StaticAssets:
    return StaticAssets(directory=STATIC_DIR)
