"""Normalized client caches never mix a reference stub with the document it points to.

A stub (`_resolved: false`) carries no `id`, so Apollo Client's InMemoryCache and urql's graphcache,
with their default settings, keep it inside its parent instead of merging it into the document of
the same `__typename` and id (which would blank the author's name, or show a stub as resolved).
The checks run in Node with the real packages (tests/client_caches), against a real server.
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

from server.config import PROJECT_ROOT
from server.testing import pooled_environment
from tests.live_server import live_server, owner_key, require_node_packages, run, server_env

CACHES_DIR = PROJECT_ROOT / "tests" / "client_caches"
AUTHOR = "mutation($d: AuthorDataInput!) { created: createAuthor(data: $d, publish: true) { id } }"
POST = "mutation($d: PostDataInput!) { created: createPost(data: $d, publish: true) { id } }"


async def create(client: httpx.AsyncClient, mutation: str, data: dict[str, str]) -> str:
    response = await client.post("/graphql", json={"query": mutation, "variables": {"d": data}})
    body = response.json()
    assert "errors" not in body, body
    created: str = body["data"]["created"]["id"]
    return created


@pytest.mark.slow
async def test_client_caches_keep_stubs_apart_from_documents(
    cms_database_url: str, tmp_path: Path
) -> None:
    node = require_node_packages(CACHES_DIR, "@apollo/client")
    env = server_env(tmp_path, **pooled_environment(cms_database_url))
    key = await owner_key(env, "caches")
    headers = {"Authorization": f"Bearer {key}"}
    serve = (sys.executable, "-m", "server", "serve")
    async with live_server(env, serve) as server:
        async with httpx.AsyncClient(base_url=server.url, headers=headers) as client:
            for name in ("Ada Lovelace", "Charles Babbage"):
                author = await create(client, AUTHOR, {"name": name})
                await create(
                    client, POST, {"title": name, "slug": f"post-{author}", "author": author}
                )
        code, report = await run(
            {**env, "CACHES_AUTHORIZATION": f"Bearer {key}"},
            node,
            str(CACHES_DIR / "caches.mjs"),
            f"{server.url}/graphql",
        )
    assert code == 0, report
    assert report.splitlines()[-1] == "8 of 8 checks passed", report
