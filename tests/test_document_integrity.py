"""What document data may hold, over GraphQL: system keys, reference targets, no-op saves."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import GraphQLClient
from tests.test_graphql_documents import post

UPDATE_POST = """
mutation($id: ID!, $data: JSON!) { updatePost(id: $id, data: $data) { id title revision } }"""
DRAFT = 'query($id: ID!) { post(id: $id, perspective: "draft", depth: 1) { id title _raw } }'


def refusal(result: dict[str, Any]) -> dict[str, Any]:
    """The one error of a refused operation (nothing written, no internal error)."""
    assert not any((result.get("data") or {}).values()), result
    [error] = result["errors"]
    extensions: dict[str, Any] = error["extensions"]
    return extensions


# System keys


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"_type": []}, "_type"),
        ({"title": "P", "seo": {"title": "S", "_type": {"a": 1}}}, "seo._type"),
        (
            {"body": [{"_type": "block", "_key": "k", "children": [{"_type": [], "text": "x"}]}]},
            "body[0].children[0]._type",
        ),
        ({"body": [{"_type": "block", "_key": ["k"], "children": []}]}, "body[0]._key"),
        ({"body": [{"_type": "block", "markDefs": [{"_ref": 5}]}]}, "body[0].markDefs[0]._ref"),
    ],
)
async def test_a_system_key_that_is_not_a_string_is_bad_input(
    gql: GraphQLClient, data: dict[str, Any], field: str
) -> None:
    doc = await post(gql, "P", publish=False)
    extensions = refusal(await gql(UPDATE_POST, {"id": doc, "data": data}))
    assert extensions["code"] == "BAD_USER_INPUT"
    assert extensions["field"] == field
    assert [e["path"] for e in extensions["errors"]] == [field]
    created = await gql(
        'mutation($body: JSON) { createPost(data: {title: "P", body: $body}) { id } }',
        {"body": data.get("body")},
    )
    if "body" in data:
        assert refusal(created)["field"] == field
    after = await gql.data(DRAFT, {"id": doc})
    assert after["post"]["_raw"]["_meta"]["revision"] == 1


@pytest.mark.parametrize("key", ["_ref", "_id", "_type", "_meta", "_key", "_anything"])
async def test_a_system_key_at_the_top_level_is_refused(gql: GraphQLClient, key: str) -> None:
    target = await post(gql, "Target")
    doc = await post(gql, "D", publish=False)
    extensions = refusal(await gql(UPDATE_POST, {"id": doc, "data": {key: target}}))
    assert extensions["code"] == "BAD_USER_INPUT"
    assert extensions["field"] == key
    read = await gql.data(DRAFT, {"id": doc})
    assert read["post"]["id"] == doc
    assert read["post"]["title"] == "D"
    assert key not in read["post"]["_raw"] or key == "_meta"
