"""A JSON POST read straight from the ASGI scope (`server/http/json_post.py`) against the usual way.

Each request is sent twice, with `GraphQLEndpoint.direct_posts` on and off: the status, the
headers and the body must be the same bytes. The requests cover what the direct way serves (a
compiled read) and everything it hands on: refusals of the body or its headers (replayed to the
usual way), reads the compiled path turns down, mutations, persisted queries.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from server.testing import GraphQLClient

GRAPHQL_RESPONSE = "application/graphql-response+json"
READ = "query($id: ID!) { post(id: $id) { id title views author { name } } }"
PAGE = '{ allPost(sort: "title") { title views } }'


def _json(query: str, variables: dict[str, Any] | None = None, **extra: Any) -> bytes:
    body: dict[str, Any] = {"query": query, **extra}
    if variables is not None:
        body["variables"] = variables
    return json.dumps(body).encode()


def _requests(post_id: str) -> Iterator[tuple[str, dict[str, str], Any]]:
    """(what, headers, body): the body as bytes, or as a list of chunks streamed in turn."""
    json_type = {"Content-Type": "application/json"}
    yield "compiled read", json_type, _json(READ, {"id": post_id})
    yield "compiled page", {"Content-Type": "application/json; charset=utf-8"}, _json(PAGE)
    yield "no charset space", {"Content-Type": "application/json;charset=utf-8"}, _json(PAGE)
    yield "quoted charset", {"Content-Type": 'application/json; charset="utf-8"'}, _json(PAGE)
    yield "upper case type", {"Content-Type": "Application/JSON"}, _json(PAGE)
    yield "latin-1", {"Content-Type": "application/json; charset=latin-1"}, _json(PAGE)
    yield "no content type", {}, _json(PAGE)
    yield "text/plain", {"Content-Type": "text/plain"}, _json(PAGE)
    yield "graphql response", {**json_type, "Accept": GRAPHQL_RESPONSE}, _json(PAGE)
    yield "both accepted", {**json_type, "Accept": f"{GRAPHQL_RESPONSE}, */*;q=0.5"}, _json(PAGE)
    yield "not acceptable", {**json_type, "Accept": "text/html"}, _json(PAGE)
    yield "streamed", json_type, [_json(PAGE)[:10], _json(PAGE)[10:]]
    yield "too large", json_type, _json(PAGE + " " * 2048)
    yield "too large streamed", json_type, [b'{"query": "', b" " * 2048, b'{ __typename }"}']
    yield "empty", json_type, b""
    yield "blank", json_type, b"  \n"
    yield "not json", json_type, b"{nope"
    yield "a batch", json_type, b"[" + _json(PAGE) + b"]"
    yield "no query", json_type, b'{"variables": {}}'
    yield "bad variables", json_type, b'{"query": "{ allPost { id } }", "variables": []}'
    yield "parse error", json_type, _json("{ allPost {")
    yield "parse error, new media", {**json_type, "Accept": GRAPHQL_RESPONSE}, _json("{")
    yield "validation error", json_type, _json("{ allPost { nope } }")
    yield "wrong variable", json_type, _json(READ, {"id": 7})
    yield "bad id", json_type, _json(READ, {"id": "not-an-id"})
    yield "missing", json_type, _json(READ, {"id": "00000000-0000-4000-8000-000000000000"})
    yield "introspection", json_type, _json("{ __schema { queryType { name } } }")
    yield "typename", json_type, _json("{ __typename }")
    yield "two operations", json_type, _json("query A { __typename } query B { __typename }")
    yield (
        "named of two",
        json_type,
        _json("query A { allPost { title } } query B { __typename }", operationName="A"),
    )
    yield "unknown operation", json_type, _json(PAGE, operationName="Nope")
    yield (
        "persisted, unknown",
        json_type,
        _json("", extensions={"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}),
    )
    yield (
        "failing mutation",
        json_type,
        _json(
            'mutation { updatePost(id: "00000000-0000-4000-8000-000000000000", data: {}) { id } }'
        ),
    )
    yield "organization header", {**json_type, "X-Organization-Id": "nope"}, _json(PAGE)
    other = {**json_type, "X-Organization-Id": "00000000-0000-4000-8000-000000000000"}
    yield "other organization", other, _json(PAGE)
    yield "consistency token", {**json_type, "X-Consistency-Token": "0/0"}, _json(PAGE)
    yield "bad token", {**json_type, "X-Consistency-Token": "soon"}, _json(PAGE)
    yield "no key", {**json_type, "Authorization": ""}, _json(PAGE)
    yield "wrong key", {**json_type, "Authorization": "Bearer cms_nope"}, _json(PAGE)


async def _chunks(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _send(client: GraphQLClient, headers: dict[str, str], body: Any) -> httpx.Response:
    sent = {"Authorization": f"Bearer {client.key}", **headers}
    if not sent["Authorization"]:
        del sent["Authorization"]
    content = _chunks(body) if isinstance(body, list) else body
    return await client.client.post("/graphql", content=content, headers=sent)


@pytest.fixture
async def small_bodies(cms_api: GraphQLClient) -> AsyncIterator[GraphQLClient]:
    endpoint = cms_api.app.state.graphql
    limit, endpoint.max_body_bytes = endpoint.max_body_bytes, 1024
    try:
        yield cms_api
    finally:
        endpoint.max_body_bytes = limit


async def test_a_json_post_is_answered_as_the_usual_way_answers_it(
    small_bodies: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = small_bodies
    endpoint = client.app.state.graphql
    handled = 0
    handle = endpoint.handle

    async def counted(*args: Any) -> Any:
        nonlocal handled
        handled += 1
        return await handle(*args)

    monkeypatch.setattr(endpoint, "handle", counted)
    author = await client.data('mutation { createAuthor(data: {name: "Ann"}) { id } }')
    created = await client.data(
        "mutation($data: PostDataInput!) { createPost(data: $data, publish: true) { id } }",
        {
            "data": {
                "title": "One",
                "slug": "one",
                "views": 2,
                "author": author["createAuthor"]["id"],
            }
        },
    )
    post_id = created["createPost"]["id"]
    served = []
    for what, headers, body in _requests(post_id):
        answers = []
        for direct in (True, False):
            endpoint.direct_posts = direct
            before = endpoint.compiled_served, handled
            response = await _send(client, headers, body)
            if direct and (endpoint.compiled_served, handled) == (before[0] + 1, before[1]):
                served.append(what)
            answers.append((response.status_code, response.headers.raw, response.content))
        endpoint.direct_posts = True
        assert answers[0] == answers[1], what
    # The compiled reads among them were served the direct way, and nothing else was.
    assert served == [
        "compiled read",
        "compiled page",
        "no charset space",
        "upper case type",
        "graphql response",
        "both accepted",
        "streamed",
        "missing",
        "named of two",
    ]


async def test_a_compiled_read_takes_the_direct_way_and_the_rest_the_usual_one(
    cms_api: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `handle` (the usual way in) out of order, a compiled read is still answered, and a
    request the compiled path turns down reaches the usual way past the compiled read only."""
    endpoint = cms_api.app.state.graphql
    calls: list[str] = []

    async def refuse(*args: Any) -> Any:
        raise AssertionError("the usual way was taken")

    compiled = endpoint._compiled

    async def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append("compiled")
        return await compiled(*args, **kwargs)

    monkeypatch.setattr(endpoint, "handle", refuse)
    monkeypatch.setattr(endpoint, "_compiled", counted)
    assert await cms_api.data("{ allPost { id } }") == {"allPost": []}
    assert calls == ["compiled"]
    created = await cms_api.data('mutation { createPost(data: {title: "A"}) { title } }')
    assert created == {"createPost": {"title": "A"}}
    assert calls == ["compiled", "compiled"]  # tried once, then the resolvers


async def test_a_compiled_read_answers_alike_however_its_id_and_headers_are_spelled(
    cms_api: GraphQLClient,
) -> None:
    """What the compiled path keeps per request (the id's text, the credential, the Accept
    header's answer) answers as reading each afresh would."""
    client = cms_api
    endpoint = client.app.state.graphql
    created = await client.data(
        "mutation($data: PostDataInput!) { createPost(data: $data, publish: true) { id } }",
        {"data": {"title": "One", "slug": "one", "views": 2}},
    )
    post_id = created["createPost"]["id"]
    json_type = {"Content-Type": "application/json"}

    async def read(post_id: str, **headers: str) -> httpx.Response:
        return await _send(client, {**json_type, **headers}, _json(READ, {"id": post_id}))

    served = endpoint.compiled_served
    canonical = await read(post_id)
    assert canonical.status_code == 200
    assert [name for name, _ in canonical.headers.raw] == [
        b"content-length",
        b"content-type",
        b"vary",
    ]
    assert canonical.headers["content-type"] == "application/json; charset=utf-8"
    assert json.loads(canonical.content)["data"]["post"]["id"] == post_id
    for spelling in (post_id.upper(), "{" + post_id + "}", post_id.replace("-", "")):
        other = await read(spelling)
        assert (other.status_code, other.headers.raw, other.content) == (
            canonical.status_code,
            canonical.headers.raw,
            canonical.content,
        ), spelling
    assert endpoint.compiled_served == served + 4
    bad = await read(post_id + "0")
    assert json.loads(bad.content)["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"

    # Accept headers: short ones (kept) and a long one (read each time) answer alike.
    long_accept = ", ".join(f"text/x-{n}" for n in range(40)) + f", {GRAPHQL_RESPONSE}"
    for accept, media in (
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        ("application/json", "application/json"),
        (long_accept, GRAPHQL_RESPONSE),
        (long_accept, GRAPHQL_RESPONSE),
        ("text/html", None),
    ):
        response = await read(post_id, Accept=accept)
        if media is None:
            assert response.status_code == 406
        else:
            assert response.headers["content-type"] == f"{media}; charset=utf-8"
            assert response.content == canonical.content

    # A refused credential is refused every time, before and after an accepted one.
    for authorization in ("Bearer a b", f"Bearer {client.key}", "Bearer a b", "Bearer cms_nope"):
        response = await read(post_id, Authorization=authorization)
        if authorization.endswith(client.key):
            assert response.content == canonical.content
        else:
            body = json.loads(response.content)
            assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", authorization
