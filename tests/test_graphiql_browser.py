"""GraphiQL: the page and its assets, then a real run in headless Chromium.

The browser test starts a server process in demo mode on a fresh database, opens `/graphql` in
Chromium (Debian's `chromium`, driven over the DevTools protocol), runs a query with the execute
button and reads the seeded content in the result pane. Every request the page makes is recorded: it
fails on a request to another origin, a failed one to ours, a script error or a console error (a
Content-Security-Policy violation is one).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from websockets.asyncio.client import ClientConnection, connect

from server.http.playground import CONTENT_SECURITY_POLICY, asset_url
from server.testing import pooled_environment
from tests.conftest import GraphQLClient
from tests.live_server import Output, live_server, require_tool, server_env

BROWSER_HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--remote-debugging-port=0",
)

# How long the page may take to render, or to show a result.
WAIT_SECONDS = 20

QUERY = '{ allPost(sort: ["title"]) { title author { name } } }'


async def test_the_page_is_served_to_browsers_only(cms_api: GraphQLClient) -> None:
    page = await cms_api.client.get("/graphql", headers={"Accept": BROWSER_HTML})
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert page.headers["cache-control"] == "no-store"
    assert asset_url("graphiql/graphiql.min.js") in page.text
    # Not the demo: no key, and the page never holds an Authorization header.
    assert "Authorization" not in page.text
    assert "Bearer" not in page.text
    api = await cms_api.client.get("/api/graphql", headers={"Accept": BROWSER_HTML})
    assert '"endpoint": "/api/graphql"' in api.text

    with_query = await cms_api.client.get(
        "/graphql", params={"query": "{ __typename }"}, headers={"Accept": BROWSER_HTML}
    )
    assert with_query.json() == {"data": {"__typename": "Query"}}
    client = await cms_api.client.get("/graphql", headers={"Accept": "application/json"})
    assert client.status_code == 400


async def test_assets_are_served_with_cache_headers(cms_api: GraphQLClient) -> None:
    for name in (
        "graphiql/graphiql.min.js",
        "graphiql/graphiql.min.css",
        "graphiql/react.production.min.js",
        "graphiql/react-dom.production.min.js",
        "playground.js",
    ):
        versioned = await cms_api.client.get(asset_url(name))
        assert versioned.status_code == 200, name
        assert versioned.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert "etag" in versioned.headers
        revalidated = await cms_api.client.get(
            asset_url(name), headers={"If-None-Match": versioned.headers["etag"]}
        )
        assert revalidated.status_code == 304
    plain = await cms_api.client.get("/static/playground.js")
    assert plain.headers["cache-control"] == "public, max-age=3600"
    assert (await cms_api.client.get("/static/graphiql/missing.js")).status_code == 404
    for license_file in ("LICENSE.graphiql", "LICENSE.react", "LICENSE.react-dom"):
        assert (await cms_api.client.get(f"/static/graphiql/{license_file}")).status_code == 200


def _chromium() -> str | None:
    return (
        os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )


@pytest.mark.slow
async def test_graphiql_runs_a_query_in_headless_chromium(
    cms_database_url: str, tmp_path: Path
) -> None:
    chromium = _chromium()
    require_tool(chromium is not None, "chromium", "install it with `apt-get install -y chromium`")
    assert chromium is not None
    env = server_env(tmp_path / "data", **pooled_environment(cms_database_url))
    async with live_server(env | {"DEMO_URL": "http://127.0.0.1"}) as server:
        key = (tmp_path / "data" / "dev-api-key").read_text().strip()
        async with browser(chromium, tmp_path / "profile") as page:
            await page.open(f"{server.url}/graphql")
            await page.wait_for("!!document.querySelector('.graphiql-query-editor .CodeMirror')")
            headers = await page.evaluate(_EDITOR_TEXT.format(selector=HEADERS_EDITOR))
            assert f"Bearer {key}" in headers

            await page.evaluate(_SELECT_QUERY_EDITOR)
            await page.send("Input.insertText", {"text": QUERY})
            assert (
                await page.evaluate(_EDITOR_TEXT.format(selector=".graphiql-query-editor")) == QUERY
            )
            # GraphiQL re-reads the operation name from the editor after a short debounce; a click
            # before that would send the default query's name (as no person could click so fast).
            await asyncio.sleep(1)
            await page.click(".graphiql-execute-button")
            result = await page.wait_for(
                "(" + _EDITOR_TEXT.format(selector=".graphiql-response") + ").includes('Grace')"
            )
            assert result is True
            shown = json.loads(
                await page.evaluate(_EDITOR_TEXT.format(selector=".graphiql-response"))
            )
            titles = [post["title"] for post in shown["data"]["allPost"]]
            assert "Welcome to the demo" in titles
            page.check_requests(server.url, server.output)


# The text of the CodeMirror editor inside `selector` (GraphiQL 3 uses CodeMirror 5).
# The visible one of the editor tools (variables, headers): the headers, in demo mode.
HEADERS_EDITOR = ".graphiql-editor-tool .graphiql-editor:not(.hidden)"
_EDITOR_TEXT = "document.querySelector('{selector} .CodeMirror').CodeMirror.getValue()"
_SELECT_QUERY_EDITOR = """(() => {
  const editor = document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror;
  editor.focus();
  editor.execCommand('selectAll');
})()"""


class Page:
    """One tab, driven over the DevTools protocol (the flattened session of its target)."""

    def __init__(self, socket: ClientConnection, session: str) -> None:
        self.socket = socket
        self.session = session
        self.requests: dict[str, str] = {}
        self.problems: list[str] = []
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._loaded = asyncio.Event()

    async def listen(self) -> None:
        async for raw in self.socket:
            message = json.loads(raw)
            if "id" in message:
                future = self._pending.pop(message["id"], None)
                if future is not None and not future.done():
                    future.set_result(message)
            elif message.get("sessionId") == self.session:
                self._event(message["method"], message.get("params", {}))

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Network.requestWillBeSent":
            self.requests[params["requestId"]] = params["request"]["url"]
        elif method == "Network.responseReceived" and params["response"]["status"] >= 400:
            response = params["response"]
            self.problems.append(f"HTTP {response['status']} for {response['url']}")
        elif method == "Network.loadingFailed":
            url = self.requests.get(params["requestId"], "?")
            self.problems.append(f"failed to load {url}: {params.get('errorText')}")
        elif method == "Runtime.exceptionThrown":
            self.problems.append(f"script error: {params['exceptionDetails']}")
        elif method == "Runtime.consoleAPICalled" and params["type"] == "error":
            self.problems.append(f"console error: {params['args']}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.problems.append(f"browser error: {params['entry']['text']}")
        elif method == "Page.loadEventFired":
            self._loaded.set()

    async def send(
        self, method: str, params: dict[str, Any] | None = None, *, session: bool = True
    ) -> dict[str, Any]:
        message_id = next(self._ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        await self.socket.send(json.dumps(message))
        reply = await asyncio.wait_for(future, 30)
        assert "error" not in reply, reply
        result: dict[str, Any] = reply["result"]
        return result

    async def open(self, url: str) -> None:
        for domain in ("Network", "Page", "Runtime", "Log"):
            await self.send(f"{domain}.enable")
        self._loaded.clear()
        await self.send("Page.navigate", {"url": url})
        await asyncio.wait_for(self._loaded.wait(), 30)

    async def evaluate(self, expression: str) -> Any:
        reply = await self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}
        )
        assert "exceptionDetails" not in reply, reply["exceptionDetails"]
        return reply["result"].get("value")

    async def wait_for(self, expression: str) -> Any:
        """Poll `expression` until it is truthy (and does not throw)."""
        deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
        while True:
            reply = await self.send(
                "Runtime.evaluate", {"expression": expression, "returnByValue": True}
            )
            value = reply["result"].get("value")
            if "exceptionDetails" not in reply and value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for {expression}; {self.problems}")
            await asyncio.sleep(0.1)

    async def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element."""
        box = await self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        x, y = box
        for kind in ("mousePressed", "mouseReleased"):
            await self.send(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
            )

    def check_requests(self, origin: str, server_output: Output) -> None:
        ours = urlsplit(origin)
        foreign = [
            url
            for url in self.requests.values()
            if urlsplit(url).scheme in ("http", "https", "ws", "wss")
            and urlsplit(url)[:2] != ours[:2]
        ]
        assert not foreign, f"requests to other origins: {foreign}"
        assert any("/static/graphiql/graphiql.min.js" in url for url in self.requests.values())
        assert not self.problems, f"{self.problems}\nserver output:\n{server_output.text}"


@asynccontextmanager
async def browser(chromium: str, profile: Path) -> AsyncIterator[Page]:
    """Headless Chromium with a fresh profile, and a new tab in it."""
    process = await asyncio.create_subprocess_exec(
        chromium,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    output = Output()
    reader = asyncio.create_task(output.collect(process.stderr))
    try:
        endpoint = await _devtools_endpoint(profile, process, output)
        async with connect(endpoint, max_size=None) as socket:
            page = Page(socket, session="")
            listener = asyncio.create_task(page.listen())
            target = await page.send("Target.createTarget", {"url": "about:blank"}, session=False)
            attached = await page.send(
                "Target.attachToTarget",
                {"targetId": target["targetId"], "flatten": True},
                session=False,
            )
            page.session = attached["sessionId"]
            try:
                yield page
            finally:
                with suppress(Exception):
                    await page.send("Browser.close", session=False)
                listener.cancel()
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        reader.cancel()


async def _devtools_endpoint(
    profile: Path, process: asyncio.subprocess.Process, output: Output
) -> str:
    # Chromium writes the port it chose, and the browser target's path, into the profile.
    active = profile / "DevToolsActivePort"
    for _ in range(300):
        if process.returncode is not None:
            break
        if active.exists():
            lines = active.read_text().split()
            if len(lines) == 2:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        await asyncio.sleep(0.1)
    raise AssertionError(f"chromium did not start:\n{output.text}")
