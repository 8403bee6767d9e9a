"""Singleton types over HTTP: one document per organization, read and written without an id.

`schema/siteSettings.json` is a singleton. Its document lives at an id derived from the
organization and the type (`server/content/singletons.py`, `cms_singleton_id` in SQL); never saved, it reads
as its empty document; reading never creates it.
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import pytest

from server.content.singletons import singleton_id
from tests.conftest import GraphQLClient

READ = """query($p: String, $d: Int) { siteSettings(perspective: $p, depth: $d) {
  __typename id _id _ref type status revision createdAt updatedAt publishedAt publishedHash
  hasUnpublishedChanges _resolved siteName footerText
  mainNav { id title _resolved _ref } socialLinks { platform url _key _type } _raw } }"""
UPDATE = """mutation($data: JSON!, $publish: Boolean, $rev: Int) {
  updateSiteSettings(data: $data, publish: $publish, expectedRevision: $rev) {
    id revision status siteName } }"""


async def both_paths(gql: GraphQLClient, query: str, variables: Any, key: str | None) -> bytes:
    """The body of the compiled path, after checking the resolvers answer the same JSON: the same
    keys in the same order, the same values (as `tests/test_compiled_reads.py` compares them)."""
    endpoint = gql.app.state.graphql
    before = endpoint.compiled_served
    compiled = await gql.post(query, variables, key=key or "default")
    assert endpoint.compiled_served == before + 1, compiled.text
    endpoint.compiled_reads = False
    try:
        reference = await gql.post(query, variables, key=key or "default")
    finally:
        endpoint.compiled_reads = True
    assert exact(compiled.content) == exact(reference.content)
    assert endpoint.compiled_failures == 0
    return compiled.content


def exact(body: bytes) -> Any:
    return json.loads(body, object_pairs_hook=list, parse_float=Decimal, parse_int=Decimal)


async def read(
    gql: GraphQLClient, perspective: str = "published", *, key: str | None = None, depth: int = 1
) -> dict[str, Any]:
    body = await both_paths(gql, READ, {"p": perspective, "d": depth}, key)
    payload = json.loads(body)
    assert "errors" not in payload, payload
    result: dict[str, Any] = payload["data"]["siteSettings"]
    return result


async def test_the_schema_serves_a_singleton_without_ids_or_lists(cms_api: GraphQLClient) -> None:
    fields = '{ __type(name: "%s") { fields { name args { name } type { kind } } } }'
    q = await cms_api.data(fields % "Query")
    m = await cms_api.data(fields % "Mutation")
    queries = {f["name"]: f for f in q["__type"]["fields"]}
    mutations = {f["name"]: f for f in m["__type"]["fields"]}
    assert "allSiteSettings" not in queries
    assert "allSiteSettingsPage" not in queries
    assert [a["name"] for a in queries["siteSettings"]["args"]] == ["perspective", "depth"]
    assert queries["siteSettings"]["type"]["kind"] == "NON_NULL"
    assert [a["name"] for a in mutations["updateSiteSettings"]["args"]] == [
        "data",
        "publish",
        "expectedRevision",
    ]
    assert [a["name"] for a in mutations["publishSiteSettings"]["args"]] == ["expectedRevision"]
    assert mutations["unpublishSiteSettings"]["args"] == []
    assert mutations["deleteSiteSettings"]["args"] == []
    # Other types keep their ids and lists.
    assert "allPost" in queries
    assert queries["post"]["args"][0]["name"] == "id"


async def test_the_id_is_the_same_in_sql_and_python(cms_api: GraphQLClient) -> None:
    async with cms_api.services.adapter.system_context() as tx:
        for org, name in [
            (cms_api.org, "siteSettings"),
            (uuid.uuid4(), "x"),
            (uuid.uuid4(), "é ü"),
        ]:
            in_sql = await tx.fetchval("SELECT cms_singleton_id($1, $2)", org, name)
            assert in_sql == singleton_id(org, name)
            assert in_sql.version == 3


@pytest.mark.parametrize("perspective", ["published", "draft"])
async def test_a_singleton_never_saved_reads_as_its_empty_document(
    cms_api: GraphQLClient, perspective: str
) -> None:
    expected_id = str(singleton_id(cms_api.org, "siteSettings"))
    empty = await read(cms_api, perspective)
    assert empty["id"] == empty["_id"] == empty["_ref"] == expected_id
    assert (empty["status"], empty["revision"], empty["siteName"]) == ("draft", 0, None)
    assert empty["createdAt"] is None
    assert empty["updatedAt"] is None
    assert empty["mainNav"] is None
    assert empty["_raw"]["_meta"]["organizationId"] == str(cms_api.org)
    # Reading created nothing.
    async with cms_api.services.adapter.system_context() as tx:
        assert await tx.fetchval("SELECT count(*) FROM cms_documents") == 0
    # A key that reads published content only sees the same empty document.
    public = await cms_api.key_for(cms_api.org, published_only=True)
    assert await read(cms_api, key=public) == await read(cms_api)


async def test_first_save_creates_publish_shows_it(cms_api: GraphQLClient) -> None:
    expected_id = str(singleton_id(cms_api.org, "siteSettings"))
    page = await cms_api.data(
        'mutation { createPage(data: {title: "Home", slug: "home"}, publish: true) { id } }'
    )
    home = page["createPage"]["id"]
    saved = await cms_api.data(
        UPDATE,
        {
            "data": {
                "siteName": "Acme",
                "mainNav": [{"_type": "reference", "_ref": home, "_key": "a"}],
            },
            "rev": 0,
        },
    )
    assert saved["updateSiteSettings"] == {
        "id": expected_id,
        "revision": 1,
        "status": "draft",
        "siteName": "Acme",
    }
    draft = await read(cms_api, "draft")
    assert (draft["siteName"], draft["revision"]) == ("Acme", 1)
    assert draft["mainNav"] == [{"id": home, "title": "Home", "_resolved": True, "_ref": home}]
    # Not published yet: the published perspective reads the empty document, nothing of the draft.
    published = await read(cms_api)
    assert (published["siteName"], published["revision"], published["createdAt"]) == (None, 0, None)

    stale = await cms_api(UPDATE, {"data": {"footerText": "x"}, "rev": 0})
    assert stale["errors"][0]["extensions"]["code"] == "CONFLICT"

    done = await cms_api.data(
        "mutation { publishSiteSettings(expectedRevision: 1) { id status siteName } }"
    )
    assert done["publishSiteSettings"] == {
        "id": expected_id,
        "status": "published",
        "siteName": "Acme",
    }
    published = await read(cms_api, depth=0)
    assert published["siteName"] == "Acme"
    assert published["mainNav"] == [{"id": None, "title": None, "_resolved": False, "_ref": home}]
    await read(cms_api, "draft", depth=2)

    await cms_api.data("mutation { unpublishSiteSettings { status } }")
    assert (await read(cms_api))["siteName"] is None
    assert (await read(cms_api, "draft"))["siteName"] == "Acme"

    deleted = await cms_api.data("mutation { deleteSiteSettings { success id } }")
    assert deleted["deleteSiteSettings"] == {"success": True, "id": expected_id}
    assert (await read(cms_api, "draft"))["revision"] == 0


async def test_a_second_singleton_is_refused(cms_api: GraphQLClient) -> None:
    create = 'mutation { createSiteSettings(data: {siteName: "One"}) { id siteName } }'
    first = await cms_api.data(create)
    assert first["createSiteSettings"]["id"] == str(singleton_id(cms_api.org, "siteSettings"))
    second = await cms_api(create)
    assert second["errors"][0]["extensions"]["code"] == "SINGLETON_EXISTS"
    # Nor through the local API, with any id.
    api = cms_api.services.api
    async with api.system_context(cms_api.org) as ctx:
        with pytest.raises(Exception, match="singleton") as refused:
            await api.collections.siteSettings.create(ctx, {"siteName": "Two"})
        assert getattr(refused.value, "code", None) == "SINGLETON_EXISTS"
    async with api.system_context(cms_api.org) as ctx:
        with pytest.raises(Exception, match="derived") as wrong:
            await api.collections.siteSettings.create(ctx, {"siteName": "Two"}, id=uuid.uuid4())
        assert getattr(wrong.value, "code", None) == "BAD_USER_INPUT"
    async with cms_api.services.adapter.system_context() as tx:
        assert await tx.fetchval("SELECT count(*) FROM cms_documents") == 1


async def test_publishing_a_singleton_never_saved_checks_its_rules(cms_api: GraphQLClient) -> None:
    refused = await cms_api("mutation { publishSiteSettings { id } }")
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    missing = await cms_api("mutation { unpublishSiteSettings { id } }")
    assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    await cms_api.data(UPDATE, {"data": {"siteName": "Acme"}, "publish": True})
    assert (await read(cms_api))["siteName"] == "Acme"


async def test_a_child_organization_has_its_own_singleton(cms_api: GraphQLClient) -> None:
    await cms_api.data(UPDATE, {"data": {"siteName": "Parent", "footerText": "p"}, "publish": True})
    child = await cms_api.org_named("child", cms_api.org)
    child_key = await cms_api.key_for(child)
    for perspective in ("published", "draft"):
        seen = await read(cms_api, perspective, key=child_key)
        assert seen["id"] == str(singleton_id(child, "siteSettings"))
        assert (seen["siteName"], seen["footerText"], seen["revision"]) == (None, None, 0)
    saved = await cms_api.data(
        UPDATE, {"data": {"siteName": "Child"}, "publish": True}, key=child_key
    )
    assert saved["updateSiteSettings"]["id"] == str(singleton_id(child, "siteSettings"))
    assert (await read(cms_api, key=child_key))["siteName"] == "Child"
    # The parent (which may read its child's documents) still reads its own.
    assert (await read(cms_api))["siteName"] == "Parent"
    # Another tenant, too.
    other = await cms_api.key_for(await cms_api.org_named("other"))
    assert (await read(cms_api, "draft", key=other))["siteName"] is None
    # The child cannot write the parent's singleton by its id either.
    api = cms_api.services.api
    async with api.context(child, capabilities=None) as ctx:
        with pytest.raises(Exception) as refused:
            await api.collections.siteSettings.update(
                ctx, singleton_id(cms_api.org, "siteSettings"), {"siteName": "x"}
            )
        assert getattr(refused.value, "code", None) == "NOT_FOUND"


async def test_the_local_api_gets_a_singleton(cms_api: GraphQLClient) -> None:
    api = cms_api.services.api
    async with api.system_context(cms_api.org) as ctx:
        collection = api.collections.siteSettings
        assert collection.singleton_id(ctx) == singleton_id(cms_api.org, "siteSettings")
        empty = await collection.get(ctx, perspective="draft")
        assert empty["id"] == str(collection.singleton_id(ctx))
        assert empty["_meta"]["revision"] == 0
        await collection.update(ctx, collection.singleton_id(ctx), {"siteName": "Local"})
        assert (await collection.get(ctx, perspective="draft"))["siteName"] == "Local"
        assert "siteName" not in await collection.get(ctx)
        with pytest.raises(Exception, match="not a singleton"):
            await api.collections.post.get(ctx)
