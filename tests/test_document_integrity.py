"""What document data may hold, over GraphQL: system keys, reference targets, no-op saves."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import GraphQLClient
from tests.test_graphql_documents import author, post

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
    cms_api: GraphQLClient, data: dict[str, Any], field: str
) -> None:
    doc = await post(cms_api, "P", publish=False)
    extensions = refusal(await cms_api(UPDATE_POST, {"id": doc, "data": data}))
    assert extensions["code"] == "BAD_USER_INPUT"
    assert extensions["field"] == field
    assert [e["path"] for e in extensions["errors"]] == [field]
    created = await cms_api(
        'mutation($body: JSON) { createPost(data: {title: "P", body: $body}) { id } }',
        {"body": data.get("body")},
    )
    if "body" in data:
        assert refusal(created)["field"] == field
    after = await cms_api.data(DRAFT, {"id": doc})
    assert after["post"]["_raw"]["_meta"]["revision"] == 1


@pytest.mark.parametrize("key", ["_ref", "_id", "_type", "_meta", "_key", "_anything"])
async def test_a_system_key_at_the_top_level_is_refused(cms_api: GraphQLClient, key: str) -> None:
    target = await post(cms_api, "Target")
    doc = await post(cms_api, "D", publish=False)
    extensions = refusal(await cms_api(UPDATE_POST, {"id": doc, "data": {key: target}}))
    assert extensions["code"] == "BAD_USER_INPUT"
    assert extensions["field"] == key
    read = await cms_api.data(DRAFT, {"id": doc})
    assert read["post"]["id"] == doc
    assert read["post"]["title"] == "D"
    assert key not in read["post"]["_raw"] or key == "_meta"


# Reference targets

CREATE_CATEGORY = 'mutation { createCategory(data: {title: "Cat"}, publish: true) { id } }'


async def test_a_reference_to_a_document_of_another_type_is_refused(cms_api: GraphQLClient) -> None:
    category = (await cms_api.data(CREATE_CATEGORY))["createCategory"]["id"]
    ada = await author(cms_api, "Ada")
    created = await cms_api(
        'mutation($a: ID, $c: [ID!]) { createPost(data: {title: "x", author: $a,'
        " categories: $c}) { id } }",
        {"a": category, "c": [category]},
    )
    extensions = refusal(created)
    assert extensions["code"] == "BAD_USER_INPUT"
    assert extensions["field"] == "author"
    assert [(e["path"], e["rule"]) for e in extensions["errors"]] == [("author", "reference")]
    assert "category" in extensions["errors"][0]["message"]

    doc = await post(cms_api, "P", author=ada, categories=[category])
    for data, field in [
        ({"author": {"_type": "reference", "_ref": category}}, "author"),
        ({"categories": [{"_type": "reference", "_ref": ada, "_key": "k"}]}, "categories[0]"),
        (
            {
                "related": [
                    {"_type": "reference", "_ref": doc, "_key": "a"},
                    {"_type": "reference", "_ref": ada, "_key": "b"},
                ]
            },
            "related[1]",
        ),
    ]:
        extensions = refusal(await cms_api(UPDATE_POST, {"id": doc, "data": data}))
        assert (extensions["code"], extensions["field"]) == ("BAD_USER_INPUT", field)
    read = await cms_api.data(
        'query($id: ID!) { post(id: $id, perspective: "draft") { revision author { name }'
        " categories { title } } }",
        {"id": doc},
    )
    assert read["post"] == {
        "revision": 1,
        "author": {"name": "Ada"},
        "categories": [{"title": "Cat"}],
    }


async def test_a_reference_to_an_unreadable_or_missing_document_is_kept(
    cms_api: GraphQLClient,
) -> None:
    other = await cms_api.org_named("other")
    other_key = await cms_api.key_for(other)
    hidden = (await cms_api.data(CREATE_CATEGORY, key=other_key))["createCategory"]["id"]
    missing = "4b1f1f3c-0000-4000-8000-000000000000"
    doc = await post(cms_api, "P", author=hidden, categories=[missing])
    read = await cms_api.data(
        "query($id: ID!) { post(id: $id) {"
        " author { _ref _resolved } categories { _ref _resolved } } }",
        {"id": doc},
    )
    assert read["post"] == {
        "author": {"_ref": hidden, "_resolved": False},
        "categories": [{"_ref": missing, "_resolved": False}],
    }


# Versions, restores and no-op saves

VERSIONS = """query($id: ID!) { documentVersions(id: $id) { totalVersions
  versions { versionNumber eventType restoredFrom data } } }"""
RESTORE = """mutation($id: ID!, $n: Int!) {
  restoreDocumentVersion(id: $id, versionNumber: $n) { ... on Post { title revision } } }"""


async def events(gql: GraphQLClient, doc: str) -> list[tuple[int, str, int | None]]:
    versions = (await gql.data(VERSIONS, {"id": doc}))["documentVersions"]["versions"]
    return [(v["versionNumber"], v["eventType"], v["restoredFrom"]) for v in versions]


async def test_a_restore_is_recorded_as_a_restore_of_its_version(cms_api: GraphQLClient) -> None:
    doc = await post(cms_api, "v1", publish=False)
    await cms_api.data(UPDATE_POST, {"id": doc, "data": {"title": "v2"}})
    restored = await cms_api.data(RESTORE, {"id": doc, "n": 1})
    assert restored["restoreDocumentVersion"] == {"title": "v1", "revision": 3}
    assert await events(cms_api, doc) == [(3, "restore", 1), (2, "draft", None), (1, "draft", None)]
    # The draft is version 1's data already: nothing to record.
    again = await cms_api.data(RESTORE, {"id": doc, "n": 3})
    assert again["restoreDocumentVersion"] == {"title": "v1", "revision": 3}
    assert len(await events(cms_api, doc)) == 3


async def test_a_save_that_changes_nothing_writes_nothing(cms_api: GraphQLClient) -> None:
    doc = await post(cms_api, "Same", publish=False, views=3)
    for data in [{}, {"title": "Same"}, {"views": 3, "excerpt": None}]:
        answer = await cms_api.data(UPDATE_POST, {"id": doc, "data": data})
        assert answer["updatePost"] == {"id": doc, "title": "Same", "revision": 1}
    assert await events(cms_api, doc) == [(1, "draft", None)]
    stale = await cms_api(
        "mutation($id: ID!) { updatePost(id: $id, data: {}, expectedRevision: 7) { id } }",
        {"id": doc},
    )
    assert refusal(stale)["code"] == "CONFLICT"
    published = await cms_api.data(
        "mutation($id: ID!) { updatePost(id: $id, data: {}, publish: true) { status revision } }",
        {"id": doc},
    )
    assert published["updatePost"] == {"status": "published", "revision": 1}
    assert await events(cms_api, doc) == [(2, "publish", None), (1, "draft", None)]
    changed = await cms_api.data(UPDATE_POST, {"id": doc, "data": {"views": 3.5}})
    assert changed["updatePost"]["revision"] == 2


# Published-only keys and what an id gives away

ID_OPERATIONS = [
    "query($id: ID!) { documentVersions(id: $id) { totalVersions } }",
    RESTORE.replace("$n: Int!", "$n: Int! = 1"),
    "mutation($id: ID!) { updatePost(id: $id, data: {}) { id title } }",
    "mutation($id: ID!) { publishPost(id: $id) { id title } }",
    "mutation($id: ID!) { unpublishPost(id: $id) { id } }",
    "mutation($id: ID!) { deletePost(id: $id) { success } }",
]


def answer(result: dict[str, Any], ids: dict[str, str]) -> str:
    """The response with the ids replaced by their roles: what a caller learns from it."""
    text = str(result)
    for role, value in ids.items():
        text = text.replace(value, role)
    return text


@pytest.mark.parametrize("operation", ID_OPERATIONS)
async def test_what_a_caller_cannot_read_answers_as_an_absent_id(
    cms_api: GraphQLClient, operation: str
) -> None:
    ids = {
        "draft": await post(cms_api, "Draft", publish=False),
        "published": await post(cms_api, "Published"),
        "absent": "4b1f1f3c-0000-4000-8000-000000000000",
    }
    other = await cms_api.org_named("other")
    other_key = await cms_api.key_for(other)
    ids["other"] = (
        await cms_api.data(
            'mutation { createPost(data: {title: "Theirs", slug: "t"}, publish: true) { id } }',
            key=other_key,
        )
    )["createPost"]["id"]
    callers = {
        "published-only owner": await cms_api.key_for(cms_api.org, published_only=True),
        "published-only viewer": await cms_api.key_for(
            cms_api.org, role="viewer", published_only=True
        ),
        "owner": cms_api.key,
    }
    for caller, key in callers.items():
        absent = answer(
            await cms_api(operation, {"id": ids["absent"]}, key=key), {"X": ids["absent"]}
        )
        hidden = ["other"] if caller == "owner" else ["draft", "published", "other"]
        for role in hidden:
            result = await cms_api(operation, {"id": ids[role]}, key=key)
            assert answer(result, {"X": ids[role]}) == absent, (caller, role)
    # Nothing was written by the callers that may not write.
    read = await cms_api.data(
        'query($id: ID!) { post(id: $id, perspective: "draft") { revision status } }',
        {"id": ids["draft"]},
    )
    assert read["post"] is None or read["post"]["revision"] == 1


async def test_a_published_only_key_cannot_write_documents(cms_api: GraphQLClient) -> None:
    doc = await post(cms_api, "Draft only", publish=False)
    public = await cms_api.key_for(cms_api.org, published_only=True)
    result = await cms_api(UPDATE_POST, {"id": doc, "data": {}}, key=public)
    assert refusal(result)["code"] == "FORBIDDEN"
    assert "Draft only" not in str(result)
    me = await cms_api.data("{ me { capabilities publishedOnly } }", key=public)
    assert me["me"]["publishedOnly"] is True
    assert not [
        c for c in me["me"]["capabilities"] if c.startswith("document.") and c != "document.read"
    ]
    create_key = (
        'mutation($c: [String!]) { createApiKey(name: "site", capabilities: $c,'
        " publishedOnly: true) { secret } }"
    )
    refused = await cms_api(create_key, {"c": ["document.read", "document.update"]})
    assert (refusal(refused)["code"], refusal(refused)["field"]) == (
        "BAD_USER_INPUT",
        "capabilities",
    )
    assert (await cms_api.data(create_key, {"c": ["document.read", "asset.upload"]}))[
        "createApiKey"
    ]
