"""Content delivery against real processes: Varnish (with xkey) in front of a running server, and
webhook deliveries that survive `kill -9` of the server right after a publish.

Varnish runs with `deploy/varnish.vcl`, the VCL `docs/delivery.md` gives. Locally these tests are
skipped when Varnish is missing (with the command that installs it); in CI they fail instead.
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from server.config import PROJECT_ROOT
from server.testing import pooled_environment
from tests.live_server import cli, free_port, live_server, owner_key, require_tool, server_env
from tests.webhook_receiver import webhook_receiver

VCL = PROJECT_ROOT / "deploy" / "varnish.vcl"
INSTALL = "apt-get install -y varnish varnish-modules"
POST = "query($id: ID!) { post(id: $id) { title } }"
DRAFT = 'query($id: ID!) { post(id: $id, perspective: "draft") { title } }'
ALL_POSTS = "{ allPost { title } }"


def _require_varnish() -> str:
    varnishd = shutil.which("varnishd") or "/usr/sbin/varnishd"
    require_tool(Path(varnishd).exists(), "varnishd", f"install it: {INSTALL}")
    xkey = glob.glob("/usr/lib/*/varnish/vmods/libvmod_xkey.so")
    require_tool(bool(xkey), "the xkey vmod (varnish-modules)", f"install it: {INSTALL}")
    return varnishd


@asynccontextmanager
async def varnish(varnishd: str, port: int, backend_port: int) -> AsyncIterator[str]:
    """Varnish on `port` with the project's VCL, its backend on `backend_port`."""
    # Not under pytest's tmp_path: varnishd's own user must be able to read the VCL.
    workdir = Path(tempfile.mkdtemp(prefix="varnish-test-"))
    workdir.chmod(0o755)  # noqa: ASYNC240
    vcl = workdir / "test.vcl"
    text = VCL.read_text()
    vcl.write_text(text.replace('.port = "8000"', f'.port = "{backend_port}"'))
    vcl.chmod(0o644)
    process = await asyncio.create_subprocess_exec(
        varnishd,
        "-F",
        "-n", str(workdir / "varnish"),
        "-a", f"127.0.0.1:{port}",
        "-f", str(vcl),
        "-s", "malloc,32m",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                try:
                    await client.get(f"{url}/healthz")
                    break
                except httpx.HTTPError:
                    if process.returncode is not None:
                        break
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("varnish did not come up")
        assert process.returncode is None, (await process.stdout.read()).decode()  # type: ignore[union-attr]
        yield url
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


async def _get(
    client: httpx.AsyncClient,
    url: str,
    query: str,
    key: str,
    variables: dict[str, Any] | None = None,
) -> httpx.Response:
    params = {"query": query}
    if variables is not None:
        params["variables"] = json.dumps(variables)
    response = await client.get(
        f"{url}/graphql", params=params, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200, response.text
    return response


async def _post(client: httpx.AsyncClient, url: str, key: str, query: str, **variables: Any) -> Any:
    response = await client.post(
        f"{url}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {key}"},
    )
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


async def _create_post(client: httpx.AsyncClient, url: str, key: str, title: str) -> str:
    data = await _post(
        client,
        url,
        key,
        "mutation($t: String!, $s: String!) { createPost(data: {title: $t, slug: $s},"
        " publish: true) { id } }",
        t=title,
        s=title.lower(),
    )
    return str(data["createPost"]["id"])


async def _outbox_drained(db_url: str, seconds: float = 30) -> None:
    """Wait until the outbox worker has handled every event (it deletes them as it commits)."""
    conn = await asyncpg.connect(db_url)
    try:
        for _ in range(int(seconds * 10)):
            if not await conn.fetchval("SELECT count(*) FROM cms_outbox"):
                return
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    raise AssertionError("the outbox worker left events unhandled")


def _env(tmp_path: Path, db_url: str, **variables: str) -> dict[str, str]:
    return server_env(
        tmp_path, **pooled_environment(db_url), WEBHOOK_ALLOWED_HOSTS="*,127.0.0.1", **variables
    )


@pytest.mark.slow
async def test_varnish_caches_published_reads_and_purges_exactly(
    cms_database_url: str, tmp_path: Path
) -> None:
    varnishd = _require_varnish()
    cache_port = free_port()
    env = _env(tmp_path, cms_database_url, PURGE_URLS=f"http://127.0.0.1:{cache_port}/")
    owner = await owner_key(env, "site")
    public = await cli(
        env, "apikey", "create", "--org", "site", "--role", "viewer", "--published-only"
    )
    async with live_server(env) as api, httpx.AsyncClient(timeout=10) as client:
        backend_port = int(api.url.rsplit(":", 1)[1])
        first = await _create_post(client, api.url, owner, "First")
        second = await _create_post(client, api.url, owner, "Second")
        # The creations' purges (which find no cache yet, and retry) must be over before the
        # cache starts: a late one would purge what the test has just cached.
        await _outbox_drained(cms_database_url)
        async with varnish(varnishd, cache_port, backend_port) as cache:

            async def cached(query: str, key: str, **variables: Any) -> str:
                response = await _get(client, cache, query, key, variables or None)
                return response.headers["x-cache"]

            for query, variables in (
                (POST, {"id": first}),
                (POST, {"id": second}),
                (ALL_POSTS, {}),
            ):
                assert await cached(query, public, **variables) == "MISS"
                assert await cached(query, public, **variables) == "HIT"
            # Drafts, and any answer for a key that may read drafts, are never kept.
            for _ in range(2):
                assert await cached(DRAFT, owner, id=first) == "MISS"
                assert await cached(POST, owner, id=first) == "MISS"

            await _post(
                client,
                api.url,
                owner,
                'mutation($id: ID!) { updatePost(id: $id, data: {title: "First, again"}) { id }'
                " again: publishPost(id: $id) { id } }",
                id=first,
            )
            # The purge follows the commit (the outbox worker, woken by its notification).
            for _ in range(100):
                if await cached(POST, public, id=first) == "MISS":
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the published document was not purged")
            fresh = await _get(client, cache, POST, public, {"id": first})
            assert fresh.json()["data"]["post"]["title"] == "First, again"
            assert await cached(POST, public, id=second) == "HIT"  # not purged: unrelated
            assert await cached(ALL_POSTS, public) == "MISS"  # a list of its type: purged

            # A 304 from the cache when the client has the body already.
            response = await _get(client, cache, POST, public, {"id": second})
            revalidated = await client.get(
                f"{cache}/graphql",
                params={"query": POST, "variables": json.dumps({"id": second})},
                headers={
                    "Authorization": f"Bearer {public}",
                    "If-None-Match": response.headers["etag"],
                },
            )
            assert revalidated.status_code == 304


@pytest.mark.slow
async def test_a_publish_is_delivered_after_kill_9(cms_database_url: str, tmp_path: Path) -> None:
    async with webhook_receiver() as receiver:
        # A lease of 2 x 1 + 5 seconds: the killed process's claim runs out soon.
        env = _env(tmp_path, cms_database_url, WEBHOOK_TIMEOUT="1", WEBHOOK_RETRY_BASE="0.2")
        owner = await owner_key(env, "site")
        # The first request is answered late: the server is killed while it waits for it.
        receiver.delays = [3.0]
        async with live_server(env) as first, httpx.AsyncClient(timeout=10) as client:
            created = await _post(
                client,
                first.url,
                owner,
                'mutation($u: String!) { createWebhook(name: "k", url: $u,'
                ' events: ["document.published"]) { secret } }',
                u=receiver.url,
            )
            secret = created["createWebhook"]["secret"]
            post_id = await _create_post(client, first.url, owner, "Survivor")
            await receiver.wait_for(1)
            os.kill(first.process.pid, signal.SIGKILL)
            await first.process.wait()
        async with live_server(env):
            await receiver.wait_for(2, seconds=60)
        killed, delivered = receiver.received[:2]
        assert delivered.headers["webhook-id"] == killed.headers["webhook-id"]
        payload = delivered.verify(secret)
        assert payload["type"] == "document.published"
        assert payload["data"] == {  # type: ignore[comparison-overlap]
            "id": post_id,
            "type": "post",
            "organizationId": _org_of(payload),
        }


def _org_of(payload: Mapping[str, Any]) -> Any:
    return payload["data"]["organizationId"]
