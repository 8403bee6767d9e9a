"""GraphQL over HTTP: the graphql-http audit against a real server, and what the audit leaves out.

The audit (tests/http_audit, npm package `graphql-http`) runs against `python -m server serve` on a
fresh database, with an API key made by the CLI; every audit must pass, warnings included.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.exceptions import HTTPException

from server.config import PROJECT_ROOT
from server.testing import pooled_environment
from tests.conftest import GraphQLClient
from tests.live_server import live_server, owner_key, require_node_packages, run, server_env

AUDIT_DIR = PROJECT_ROOT / "tests" / "http_audit"
GRAPHQL_RESPONSE = "application/graphql-response+json"


@pytest.mark.slow
async def test_graphql_http_audit_passes_without_warnings(
    cms_database_url: str, tmp_path: Path
) -> None:
    node = require_node_packages(AUDIT_DIR, "graphql-http")
    env = server_env(tmp_path, **pooled_environment(cms_database_url))
    key = await owner_key(env, "audit")
    serve = (sys.executable, "-m", "server", "serve")
    async with live_server(env, serve) as server:
        code, report = await run(
            {**env, "AUDIT_AUTHORIZATION": f"Bearer {key}"},
            node,
            str(AUDIT_DIR / "audit.mjs"),
            f"{server.url}/graphql",
        )
    assert code == 0, report
    assert " audits passed" in report.splitlines()[-1], report


@pytest.fixture
async def client(cms_api: GraphQLClient) -> httpx.AsyncClient:
    cms_api.client.headers["Authorization"] = f"Bearer {cms_api.key}"
    return cms_api.client


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body["errors"]]


@pytest.mark.parametrize(
    ("query", "code"),
    [("{", "GRAPHQL_PARSE_FAILED"), ("{ nope }", "GRAPHQL_VALIDATION_FAILED")],
)
async def test_request_errors_are_400_without_data_in_graphql_response_json(
    client: httpx.AsyncClient, query: str, code: str
) -> None:
    strict = await client.post(
        "/graphql", json={"query": query}, headers={"Accept": GRAPHQL_RESPONSE}
    )
    assert strict.status_code == 400
    assert strict.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"
    assert "data" not in strict.json()
    assert codes(strict.json()) == [code]
    legacy = await client.post("/graphql", json={"query": query})
    assert (legacy.status_code, codes(legacy.json())) == (200, [code])
    assert legacy.headers["content-type"] == "application/json; charset=utf-8"


async def test_field_errors_keep_data_and_status_200(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql",
        json={
            "query": 'mutation { createPost(data: {title: "x", views: -1}, publish: true) { id } }'
        },
        headers={"Accept": GRAPHQL_RESPONSE},
    )
    assert response.status_code == 200
    assert response.json()["data"] is None
    assert codes(response.json()) == ["BAD_USER_INPUT"]


async def test_get_runs_queries_and_refuses_mutations(client: httpx.AsyncClient) -> None:
    ok = await client.get(
        "/api/graphql",
        params={"query": "query($n: Int) { allPost(limit: $n) { id } }", "variables": '{"n": 1}'},
    )
    assert (ok.status_code, ok.json()) == (200, {"data": {"allPost": []}})
    mutation = 'mutation { createPost(data: {title: "over GET"}) { id } }'
    refused = await client.get("/graphql", params={"query": mutation})
    assert refused.status_code == 405
    assert refused.headers["allow"] == "POST"
    assert codes(refused.json()) == ["METHOD_NOT_ALLOWED"]
    drafts = await client.post(
        "/graphql", json={"query": '{ allPost(perspective: "draft") { id } }'}
    )
    assert drafts.json() == {"data": {"allPost": []}}


@pytest.mark.parametrize(
    ("request_args", "status", "code"),
    [
        ({"content": b'{"query": "{ __typename }"}'}, 415, "UNSUPPORTED_MEDIA_TYPE"),
        (
            {"content": b"query=x", "headers": {"Content-Type": "text/plain"}},
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            {"json": {"query": "{ __typename }"}, "headers": {"Accept": "text/csv"}},
            406,
            "NOT_ACCEPTABLE",
        ),
        ({"content": b"", "headers": {"Content-Type": "application/json"}}, 400, "BAD_REQUEST"),
        ({"content": b"[1", "headers": {"Content-Type": "application/json"}}, 400, "BAD_REQUEST"),
        ({"json": [{"query": "{ __typename }"}]}, 400, "BAD_REQUEST"),
        ({"json": {"query": "{ __typename }", "variables": []}}, 400, "BAD_REQUEST"),
        ({"json": {"query": "{ __typename }", "extensions": "x"}}, 400, "BAD_REQUEST"),
        ({"json": {"query": "{ __typename }", "operationName": 1}}, 400, "BAD_REQUEST"),
        (
            {
                "content": b'{"query": "{ __typename }"}',
                "headers": {"Content-Type": "application/json; charset=latin-1"},
            },
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
    ],
)
async def test_malformed_requests_are_refused_with_a_code(
    client: httpx.AsyncClient, request_args: dict[str, Any], status: int, code: str
) -> None:
    response = await client.post("/graphql", **request_args)
    assert response.status_code == status, response.text
    assert codes(response.json()) == [code]


async def test_other_methods_and_a_missing_query(client: httpx.AsyncClient) -> None:
    put = await client.put("/graphql", json={"query": "{ __typename }"})
    assert (put.status_code, put.headers["allow"]) == (405, "GET, POST")
    bare = await client.get("/graphql", headers={"Accept": "application/json"})
    assert (bare.status_code, codes(bare.json())) == (400, ["BAD_REQUEST"])


async def test_unknown_operation_name_is_a_request_error(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql",
        json={"query": "query A { __typename }", "operationName": "B"},
        headers={"Accept": GRAPHQL_RESPONSE},
    )
    assert response.status_code == 400
    assert codes(response.json()) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_accept_negotiation_follows_weights(client: httpx.AsyncClient) -> None:
    prefers_json = f"{GRAPHQL_RESPONSE};q=0.5, application/json"
    response = await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Accept": prefers_json}
    )
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["vary"] == "Accept"


async def test_a_body_over_the_limit_is_refused_while_it_streams(
    client: httpx.AsyncClient,
) -> None:
    chunks_sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal chunks_sent
        yield b'{"query": "{ __typename }", "pad": "'
        for _ in range(64):  # 4 MiB in all, with no Content-Length to go by
            chunks_sent += 1
            yield b"x" * 65536
        yield b'"}'

    streamed = await client.post(
        "/graphql", content=body(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert codes(streamed.json()) == ["PAYLOAD_TOO_LARGE"]
    assert chunks_sent < 64  # it stopped reading soon after the limit

    declared = await client.post(
        "/graphql",
        content=b"{}",
        headers={"Content-Type": "application/json", "Content-Length": str(2 << 20)},
    )
    assert (declared.status_code, codes(declared.json())) == (413, ["PAYLOAD_TOO_LARGE"])


async def test_multipart_requests_follow_the_multipart_request_spec(
    client: httpx.AsyncClient,
) -> None:
    operations = '{"query": "query($n: Int) { allPost(limit: $n) { id } }", "variables": {"n": 2}}'
    ok = await client.post(
        "/graphql", files={"operations": (None, operations), "map": (None, "{}")}
    )
    assert (ok.status_code, ok.json()) == (200, {"data": {"allPost": []}})

    unmapped = await client.post(
        "/graphql",
        files={
            "operations": (None, operations),
            "map": (None, '{"0": ["variables.file"]}'),
        },
    )
    assert (unmapped.status_code, codes(unmapped.json())) == (400, ["BAD_REQUEST"])
    missing = await client.post("/graphql", files={"map": (None, "{}")})
    assert (missing.status_code, codes(missing.json())) == (400, ["BAD_REQUEST"])


async def _as_json(http: httpx.AsyncClient, path: str) -> httpx.Response:
    return await http.post(path, json={"query": "{ __typename }"})


async def _as_graphql_get(http: httpx.AsyncClient, path: str) -> httpx.Response:
    return await http.get(path, params={"query": "{ __typename }"})


@pytest.mark.parametrize("path", ["/graphql", "/api/graphql"])
async def test_an_unexpected_error_is_a_plain_500_and_reaches_the_server(
    cms_api: GraphQLClient, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """The endpoint is reached without Starlette's middleware (`server.app`), answering as it
    would: a 500 when nothing was sent, the exception raised on to the server; and a Starlette
    `HTTPException` as its status."""
    endpoint = cms_api.app.state.graphql

    # `current` (the schema of the request) is where every request to the endpoint passes,
    # whichever way it is read (`server/http/json_post.py`).
    def fails() -> Any:
        raise LookupError("a fault of the endpoint")

    monkeypatch.setattr(endpoint, "current", fails)
    transport = httpx.ASGITransport(app=cms_api.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        for send in (_as_json, _as_graphql_get):
            response = await send(http, path)
            assert response.status_code == 500
            assert response.text == "Internal Server Error"
            assert response.headers["content-type"].startswith("text/plain")

        def refuses() -> Any:
            raise HTTPException(418, "no tea", headers={"X-Why": "coffee"})

        monkeypatch.setattr(endpoint, "current", refuses)
        for send in (_as_json, _as_graphql_get):
            response = await send(http, path)
            assert (response.status_code, response.text) == (418, "no tea")
            assert response.headers["x-why"] == "coffee"
    monkeypatch.setattr(endpoint, "current", fails)
    with pytest.raises(LookupError):
        await cms_api.client.post(path, json={"query": "{ __typename }"})
