"""What one operation may ask for (depth, aliases, introspection), and who may introspect."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from graphql import get_introspection_query

from server.engine.postgres import PostgresAdapter
from server.testing import GraphQLClient, running_api

# What GraphiQL and code generators send: every option on.
STANDARD = get_introspection_query(
    descriptions=True,
    specified_by_url=True,
    directive_is_repeatable=True,
    schema_description=True,
    input_value_deprecation=True,
)
DEEP_SCHEMA = "__schema { types { name fields { name type { name ofType { name } } } } }"


def code(payload: dict[str, Any]) -> str:
    assert "errors" in payload, payload
    value: str = payload["errors"][0]["extensions"]["code"]
    return value


async def test_the_standard_query_needs_no_key(cms_api: GraphQLClient) -> None:
    schema = (await cms_api.data(STANDARD, key=None))["__schema"]
    assert schema["queryType"] == {"name": "Query", "kind": "OBJECT"}
    assert any(t["name"] == "Post" for t in schema["types"])


@pytest.mark.parametrize(
    "query",
    [
        # The hostile tester's request: many aliases of a deep `__schema` selection.
        "{ " + " ".join(f"a{n}: {DEEP_SCHEMA}" for n in range(49)) + " }",
        # The same field twice through fragments, without an alias.
        "{ ...A ...B } fragment A on Query { __schema { types { name } } }"
        " fragment B on Query { __schema { directives { name } } }",
        # The type graph's cycle: a type's fields' types' fields ...
        "{ __schema { types { fields { type { fields { type { name } } } } } } }",
        '{ __type(name: "Post") { fields { name } a: fields { name } } }',
        '{ __type(name: "Post") { interfaces { possibleTypes { name } interfaces { name } } } }',
        # Deeper than any query may be.
        '{ __type(name: "Post") { ' + "ofType { " * 16 + "name" + " }" * 16 + " } }",
    ],
    ids=["aliases", "fragments", "fields cycle", "aliased list", "interfaces twice", "depth"],
)
async def test_introspection_beyond_the_limits_is_too_complex(
    cms_api: GraphQLClient, query: str
) -> None:
    payload = await cms_api(query, key=None)
    assert code(payload) == "QUERY_TOO_COMPLEX"
    assert "data" not in payload


def layered_fragments(on: str, field: str, layers: int) -> str:
    """Fragments that each spread the one below twice: 2**layers selections, expanded."""
    fragments = [f"fragment F0 on {on} {{ {field} }}"] + [
        f"fragment F{n} on {on} {{ ...F{n - 1} ... on {on} {{ ...F{n - 1} }} }}"
        for n in range(1, layers + 1)
    ]
    return " ".join(fragments)


@pytest.mark.parametrize("compiled", [True, False])
async def test_fragments_are_measured_once_each(cms_api: GraphQLClient, compiled: bool) -> None:
    """The limits measure each fragment once; expanding every spread would never finish."""
    cms_api.app.state.graphql.compiled_reads = compiled
    query = "{ allPost { ...F40 } } " + layered_fragments("Post", "title", 40)
    assert await cms_api(query) == {"data": {"allPost": []}}
    query = '{ __type(name: "Post") { ...F40 } } ' + layered_fragments("__Type", "name", 40)
    assert await cms_api(query, key=None) == {"data": {"__type": {"name": "Post"}}}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("{ allPost { " + "author { " * 15 + "name" + " }" * 15 + " } }", "operation depth"),
        ("{ " + " ".join(f"a{n}: allPost {{ title }}" for n in range(51)) + " }", "51 aliases"),
    ],
    ids=["depth", "aliases"],
)
async def test_depth_and_aliases_stay_limited(
    cms_api: GraphQLClient, query: str, message: str
) -> None:
    payload = await cms_api(query)
    assert code(payload) == "QUERY_TOO_COMPLEX"
    assert message in payload["errors"][0]["message"]


@pytest.fixture
async def authenticated(cms_adapter: PostgresAdapter) -> AsyncIterator[GraphQLClient]:
    async with running_api(adapter=cms_adapter, introspection="authenticated") as client:
        yield client


async def test_authenticated_introspection_needs_a_valid_key(
    authenticated: GraphQLClient,
) -> None:
    assert code(await authenticated(STANDARD, key=None)) == "UNAUTHENTICATED"
    assert code(await authenticated(STANDARD, key="cms_not-a-key")) == "UNAUTHENTICATED"
    schema = (await authenticated.data(STANDARD))["__schema"]
    assert schema["queryType"]["name"] == "Query"
    # `__typename` is not introspection.
    assert await authenticated("{ __typename }", key=None) == {"data": {"__typename": "Query"}}


async def test_nobody_may_introspect(cms_adapter: PostgresAdapter) -> None:
    async with running_api(adapter=cms_adapter, introspection="nobody") as client:
        payload = await client('{ __type(name: "Post") { name } }')
        assert code(payload) == "GRAPHQL_VALIDATION_FAILED"
        assert await client.data("{ allPost { title } }") == {"allPost": []}
