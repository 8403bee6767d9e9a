"""A stored reference to a document of a type its field does not take is never read as that document.

Saves refuse such a reference (`test_document_integrity.py`); these tests cover the ones already
stored: written before saves checked the target's type (here by SQL), or left by a schema change
that narrowed a field's `to`. Every form that shows references reads them as the reference itself
(the stub, as for a missing target): the typed fields, `_raw`, `documents(depth: n)`, JSON fields,
at every depth, in both perspectives, on the compiled path and the resolver path alike (the same
JSON from both), and through the local API. References the schema does not declare (rich-text
mark definitions) still lead to any type.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from server.model.json_form import parse_schema_type
from server.model.reference_paths import reference_paths
from server.model.types import Registry
from tests.conftest import GraphQLClient
from tests.test_graphql_documents import author, post

CREATE_CATEGORY = 'mutation { createCategory(data: {title: "Cat"}, publish: true) { id } }'


def ref(target: str, key: str | None = None) -> dict[str, str]:
    value = {"_type": "reference", "_ref": target}
    return {**value, "_key": key} if key else value


async def store(gql: GraphQLClient, document_id: str, data: dict[str, Any]) -> None:
    """Write `data` into both planes by SQL, past the checks a save makes."""
    async with gql.services.adapter.system_context() as tx:
        await tx.execute(
            "UPDATE cms_documents SET draft_data = draft_data || $2::jsonb,"
            " published_data = published_data || $2::jsonb WHERE id = $1",
            uuid.UUID(document_id),
            data,
        )


async def both(gql: GraphQLClient, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """`data` of the query on the compiled path, after checking the resolvers answer the same."""
    endpoint = gql.app.state.graphql
    before = endpoint.compiled_served
    compiled = await gql.post(query, variables)
    assert endpoint.compiled_served == before + 1, compiled.text
    endpoint.compiled_reads = False
    try:
        reference = await gql.post(query, variables)
    finally:
        endpoint.compiled_reads = True
    assert endpoint.compiled_failures == 0
    decoded = json.loads(compiled.content, object_pairs_hook=list)
    assert decoded == json.loads(reference.content, object_pairs_hook=list)
    payload: dict[str, Any] = compiled.json()
    assert "errors" not in payload, payload
    data: dict[str, Any] = payload["data"]
    return data


def by_id(docs: list[dict[str, Any]], document_id: str) -> dict[str, Any]:
    return next(doc for doc in docs if doc["id"] == document_id)


PERSPECTIVES = ["published", "draft"]


@pytest.mark.parametrize("perspective", PERSPECTIVES)
async def test_a_wrong_type_stored_before_the_check_is_a_stub_in_every_form(
    cms_api: GraphQLClient, perspective: str
) -> None:
    category = (await cms_api.data(CREATE_CATEGORY))["createCategory"]["id"]
    ada = await author(cms_api, "Ada")
    mentee = await author(cms_api, "Mentee", mentor=ada)
    wrong = await post(cms_api, "Wrong", author=ada, categories=[category])
    deep = await post(cms_api, "Deep", author=mentee)
    # As stored before saves checked the target's type:
    await store(
        cms_api,
        wrong,
        {
            "author": ref(category),
            "categories": [ref(ada, "a"), ref(category, "c")],
            "related": [ref(category, "r1"), ref(deep, "r2")],
        },
    )
    await store(cms_api, mentee, {"mentor": ref(category)})  # two levels below `deep`
    await store(cms_api, category, {"parent": ref(ada)})

    variables = {"p": perspective}
    for depth in range(1, 6):
        args = f"depth: {depth}, perspective: $p"
        data = await both(
            cms_api,
            f"query($p: String, $w: ID!, $d: ID!) {{"
            f" wrong: post(id: $w, {args}) {{ _raw author {{ _resolved _ref }}"
            f" categories {{ _resolved _ref }} related {{ _resolved _ref title }} }}"
            f" deep: post(id: $d, {args}) {{ _raw author {{ _resolved mentor {{ _resolved _ref }} }} }}"
            f" all: allPost({args}) {{ id _raw }}"
            f' posts: documents(type: "post", {args}) {{ docs }}'
            f' categories: documents(type: "category", {args}) {{ docs }} }}',
            {**variables, "w": wrong, "d": deep},
        )
        raw = data["wrong"]["_raw"]
        assert raw["author"] == ref(category)
        assert raw["categories"][0] == ref(ada, "a")
        assert raw["categories"][1]["id"] == category  # a category, as the field takes
        assert raw["related"][0] == ref(category, "r1")
        assert raw["related"][1]["id"] == deep  # a post, as the field takes: inlined
        assert data["wrong"]["author"] == {"_resolved": False, "_ref": category}
        assert data["wrong"]["categories"] == [
            {"_resolved": False, "_ref": ada},
            {"_resolved": True, "_ref": category},
        ]
        assert data["wrong"]["related"][0] == {"_resolved": False, "_ref": category, "title": None}
        deep_raw = data["deep"]["_raw"]
        assert deep_raw["author"]["id"] == mentee
        if depth >= 2:
            assert deep_raw["author"]["mentor"] == ref(category)
            assert data["deep"]["author"]["mentor"] == {"_resolved": False, "_ref": category}
        # `documents` and a list show the same document as `_raw` does.
        assert by_id(data["posts"]["docs"], wrong) == raw
        assert by_id(data["all"], wrong)["_raw"] == raw
        assert by_id(data["categories"]["docs"], category)["parent"] == ref(ada)

    # The local API, which Python callers use, reads the same.
    async with cms_api.services.api.system_context(cms_api.org) as ctx:
        found = await cms_api.services.api.collections.post.find_by_id(
            ctx, wrong, depth=3, perspective=perspective
        )
    assert found is not None
    assert found["author"] == ref(category)
    assert found["related"][0] == ref(category, "r1")


SHELF: dict[str, Any] = {
    "type": "document",
    "name": "shelf",
    "title": "Shelf",
    "fields": [
        {"name": "title", "type": "string"},
        {"name": "pick", "type": "reference", "to": [{"type": "author"}, {"type": "category"}]},
        # A mixed array and rich text with a custom object: JSON fields.
        {
            "name": "mixed",
            "type": "array",
            "of": [
                {"type": "reference", "to": [{"type": "author"}, {"type": "category"}]},
                {
                    "type": "object",
                    "name": "note",
                    "fields": [
                        {
                            "name": "about",
                            "type": "reference",
                            "to": [{"type": "author"}, {"type": "category"}],
                        }
                    ],
                },
            ],
        },
        {
            "name": "text",
            "type": "array",
            "of": [
                {"type": "block"},
                {
                    "type": "object",
                    "name": "callout",
                    "fields": [
                        {
                            "name": "see",
                            "type": "reference",
                            "to": [{"type": "author"}, {"type": "category"}],
                        }
                    ],
                },
            ],
        },
        # A JSON field inside a typed object.
        {
            "name": "box",
            "type": "object",
            "fields": [
                {
                    "name": "items",
                    "type": "array",
                    "of": [
                        {"type": "reference", "to": [{"type": "author"}, {"type": "category"}]},
                        {
                            "type": "object",
                            "name": "gap",
                            "fields": [{"name": "n", "type": "string"}],
                        },
                    ],
                }
            ],
        },
    ],
}


def narrowed(definition: Any) -> Any:
    """`definition` with every `to` narrowed to authors."""
    if isinstance(definition, dict):
        return {
            key: [{"type": "author"}] if key == "to" else narrowed(value)
            for key, value in definition.items()
        }
    if isinstance(definition, list):
        return [narrowed(item) for item in definition]
    return definition


@pytest.mark.parametrize("perspective", PERSPECTIVES)
async def test_a_wrong_type_left_by_a_narrowed_to_is_a_stub_in_every_form(
    cms_api: GraphQLClient, perspective: str
) -> None:
    async with cms_api.services.adapter.instance_transaction() as tx:
        await cms_api.services.model.register(tx, SHELF)
    category = (await cms_api.data(CREATE_CATEGORY))["createCategory"]["id"]
    ada = await author(cms_api, "Ada")
    block = {
        "_type": "block",
        "_key": "b",
        "children": [{"_type": "span", "_key": "s", "text": "see", "marks": ["m"]}],
        # A reference the schema does not declare: it may lead to any type.
        "markDefs": [{"_type": "link", "_key": "m", "doc": ref(category)}],
    }
    data = {
        "title": "Shelf",
        "pick": ref(category),
        "mixed": [
            ref(category, "c"),
            ref(ada, "a"),
            {"_type": "note", "_key": "n", "about": ref(category)},
        ],
        "text": [block, {"_type": "callout", "_key": "k", "see": ref(category)}],
        "box": {"items": [ref(category, "c"), ref(ada, "a")]},
    }
    async with cms_api.services.api.system_context(cms_api.org) as ctx:
        created = await cms_api.services.api.collections["shelf"].create(ctx, data, publish=True)
    shelf = created["id"]
    async with cms_api.services.adapter.instance_transaction() as tx:
        await cms_api.services.model.register(tx, narrowed(SHELF))

    selection = "_raw title mixed text box { items } pick { _resolved _ref }"
    for depth in range(1, 4):
        args = f"depth: {depth}, perspective: $p"
        read = await both(
            cms_api,
            f"query($p: String, $id: ID!) {{ one: shelf(id: $id, {args}) {{ {selection} }}"
            f" all: allShelf({args}) {{ {selection} }}"
            f' docs: documents(type: "shelf", {args}) {{ docs }} }}',
            {"p": perspective, "id": shelf},
        )
        [listed] = read["all"]
        [doc] = read["docs"]["docs"]
        for shown in (read["one"], listed):
            assert shown["pick"] == {"_resolved": False, "_ref": category}
            for mixed in (shown["mixed"], shown["_raw"]["mixed"]):
                assert mixed[0] == ref(category, "c")
                assert mixed[1]["id"] == ada
                assert mixed[2] == {"_type": "note", "_key": "n", "about": ref(category)}
            for text in (shown["text"], shown["_raw"]["text"]):
                assert text[1] == {"_type": "callout", "_key": "k", "see": ref(category)}
                assert text[0]["markDefs"][0]["doc"]["id"] == category
            for items in (shown["box"]["items"], shown["_raw"]["box"]["items"]):
                assert items[0] == ref(category, "c")
                assert items[1]["id"] == ada
        assert doc == read["one"]["_raw"]
        assert doc["pick"] == ref(category)


def test_the_reference_map_follows_the_content_model() -> None:
    """Named object types are entries of their own, so a type that contains itself through an
    array is described once; only what leads to a reference is kept."""
    types = [
        {
            "type": "object",
            "name": "node",
            "title": "Node",
            "fields": [
                {"name": "label", "type": "string"},
                {"name": "children", "type": "array", "of": [{"type": "node"}]},
                {"name": "link", "type": "reference", "to": [{"type": "tree"}]},
            ],
        },
        {
            "type": "object",
            "name": "plain",
            "title": "Plain",
            "fields": [{"name": "label", "type": "string"}],
        },
        {
            "type": "document",
            "name": "tree",
            "title": "Tree",
            "fields": [
                {"name": "root", "type": "node"},
                {"name": "extra", "type": "plain"},
                {"name": "many", "type": "array", "of": [{"type": "node"}, {"type": "plain"}]},
                {
                    "name": "mixed",
                    "type": "array",
                    "of": [
                        {"type": "reference", "to": [{"type": "tree"}, {"type": "other"}]},
                        {
                            "type": "object",
                            "name": "pin",
                            "fields": [
                                {"name": "at", "type": "reference", "to": [{"type": "other"}]}
                            ],
                        },
                    ],
                },
            ],
        },
        {
            "type": "document",
            "name": "other",
            "title": "Other",
            "fields": [{"name": "title", "type": "string"}],
        },
    ]
    registry = Registry(parse_schema_type(t) for t in types)
    registry.check()
    assert reference_paths(registry) == {
        "node": {"children": {"each": {"type": "node"}}, "link": {"to": ["tree"]}},
        "tree": {
            "root": {"type": "node"},
            "many": {"of": {"node": {"type": "node"}}},
            "mixed": {
                "of": {
                    "reference": {"to": ["tree", "other"]},
                    "pin": {"fields": {"at": {"to": ["other"]}}},
                }
            },
        },
    }
