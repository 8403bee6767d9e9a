"""The reference index after writes that leave out the parts that would change nothing.

A write's statement keeps the reference index (`cms_document_references`, `cms_asset_references`)
and prunes old drafts in parts of its own, and leaves each part out when the state read with the
row's lock shows it would change nothing (`IndexWork`, `IndexState`). Whatever a write left out,
the index must be what the data says: checked here after every step of a document's life, when
another writer changed the index while a save waited for the lock, and when a publish of a saved
draft finds the document unpublished since.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from server.assets.storage import LocalStorage
from server.engine.assets import AssetsAPI
from server.services import Services
from server.testing import GraphQLClient
from tests.conftest import CMS, until_a_lock_wait
from tests.test_assets import image, png, upload

Index = tuple[set[tuple[str, str]], set[tuple[str, str, str]]]


def ref(target: str, key: str | None = None) -> dict[str, str]:
    value = {"_type": "reference", "_ref": target}
    return {**value, "_key": key} if key else value


async def index_of(cms: CMS | Services, document: str) -> Index:
    """The index's rows for `document`: (plane, document) and (plane, field path, asset)."""
    async with cms.adapter.system_context() as tx:
        documents = await tx.fetch(
            "SELECT plane, ref_id::text FROM cms_document_references WHERE referencer_id = $1",
            uuid.UUID(document),
        )
        assets = await tx.fetch(
            "SELECT plane, field_path, asset_id::text FROM cms_asset_references"
            " WHERE document_id = $1",
            uuid.UUID(document),
        )
    return {(r[0], r[1]) for r in documents}, {(r[0], r[1], r[2]) for r in assets}


def expected(plane: str, data: dict[str, Any] | None) -> Index:
    """What the index holds for `data` of a post on `plane` (every target here exists)."""
    if data is None:
        return set(), set()
    documents = {(plane, data["author"]["_ref"])} if "author" in data else set()
    documents |= {(plane, item["_ref"]) for item in data.get("categories", [])}
    assets = set()
    if "coverImage" in data:
        assets.add((plane, "coverImage", data["coverImage"]["asset"]["_ref"]))
    for n, item in enumerate(data.get("body", [])):
        if item["_type"] == "image":
            assets.add((plane, f"body[{n}]", item["asset"]["_ref"]))
    return documents, assets


@pytest.fixture
def assets(cms: CMS, tmp_path: Path) -> AssetsAPI:
    return AssetsAPI(cms.api, LocalStorage(tmp_path / "assets", "/assets"), max_upload_bytes=10**6)


async def test_each_write_leaves_the_index_as_the_data_says(
    cms: CMS, assets: AssetsAPI, round_trips: list[str]
) -> None:
    org = await cms.org("acme")
    cover, figure = [(await upload(cms, assets, org, png())).id for _ in range(2)]
    posts = cms.api.collections.post
    async with cms.api.system_context(org) as ctx:
        authors = [
            (await cms.api.collections.author.create(ctx, {"name": name}))["id"]
            for name in ("A", "B")
        ]
        category = (await cms.api.collections.category.create(ctx, {"title": "C"}))["id"]
        post = await posts.create(
            ctx,
            {
                "title": "P",
                "slug": "p",
                "author": ref(authors[0]),
                "categories": [ref(category, "c0")],
                "coverImage": image(cover),
            },
        )
    id = post["id"]
    # (the step, the writes of the reference index it must run)
    steps: list[tuple[Any, set[str]]] = [
        (lambda ctx: posts.update(ctx, id, {"title": "Q"}), set()),
        (lambda ctx: posts.update(ctx, id, {"author": ref(authors[1])}), {"refs"}),
        (lambda ctx: posts.publish(ctx, id), {"refs", "assets"}),
        (lambda ctx: posts.update(ctx, id, {"title": "R"}), set()),
        (lambda ctx: posts.publish(ctx, id), set()),
        (
            lambda ctx: posts.update(
                ctx, id, {"coverImage": None, "body": [image(uuid.UUID(str(figure)), _key="f")]}
            ),
            {"assets"},
        ),
        (lambda ctx: posts.publish(ctx, id), {"assets"}),
        (lambda ctx: posts.unpublish(ctx, id), {"refs", "assets"}),
        (lambda ctx: posts.publish(ctx, id), {"refs", "assets"}),
        (
            lambda ctx: posts.update(ctx, id, {"author": ref(authors[0]), "categories": None}),
            {"refs"},
        ),
        # The publish of a save in the same call writes the row the save returned: what the
        # index holds is not known there, so it writes every part.
        (lambda ctx: posts.update_row(ctx, id, {"title": "S"}, publish=True), {"refs", "assets"}),
    ]
    for n, (step, parts) in enumerate(steps):
        round_trips.clear()
        async with cms.api.system_context(org) as ctx:
            await step(ctx)
        ran = " ".join(round_trips)
        tables = {"refs": "cms_document_references", "assets": "cms_asset_references"}
        assert {part for part, table in tables.items() if f"DELETE FROM {table}" in ran} == parts, n
        async with cms.adapter.system_context() as tx:
            row = await tx.fetchrow(
                "SELECT draft_data, published_data FROM cms_documents WHERE id = $1", uuid.UUID(id)
            )
        assert row is not None
        draft, published = expected("draft", row[0]), expected("published", row[1])
        assert await index_of(cms, id) == (draft[0] | published[0], draft[1] | published[1]), n


async def test_a_save_that_waited_for_the_lock_finds_the_index_anew(cms: CMS) -> None:
    """Another writer changes the author while a save waits for the row's lock, and the save sets
    it back: the index the save's lock statement saw is its snapshot's, the same as the save
    writes, but no longer the document's."""
    org = await cms.org("acme")
    posts = cms.api.collections.post
    async with cms.api.system_context(org) as ctx:
        a, b = [
            (await cms.api.collections.author.create(ctx, {"name": name}))["id"]
            for name in ("A", "B")
        ]
        id = (await posts.create(ctx, {"title": "P", "author": ref(a)}))["id"]

    async with cms.api.system_context(org) as first:
        await posts.update(first, id, {"author": ref(b)})

        async def second() -> None:
            async with cms.api.system_context(org) as ctx:
                await posts.update(ctx, id, {"author": ref(a)})

        waiting = asyncio.create_task(second())
        await until_a_lock_wait(cms.adapter)
    await waiting
    assert await index_of(cms, id) == ({("draft", a)}, set())


async def test_a_publish_of_a_saved_draft_after_an_unpublish_publishes_the_references(
    cms_api: GraphQLClient,
) -> None:
    """A save keeps its draft for the publish that follows, with the published plane's index as it
    found it; an unpublish in between empties that plane, so that publish is the locked one."""
    author = await cms_api.data('mutation { createAuthor(data: {name: "A"}) { id } }')
    author_id = author["createAuthor"]["id"]
    created = await cms_api.data(
        "mutation($data: PostDataInput!) { createPost(data: $data, publish: true) { id } }",
        {"data": {"title": "P", "slug": "p", "author": author_id}},
    )
    id = created["createPost"]["id"]
    await cms_api.data(
        'mutation($id: ID!) { updatePost(id: $id, data: {title: "Q"}) { id } }', {"id": id}
    )
    await cms_api.data("mutation($id: ID!) { unpublishPost(id: $id) { id } }", {"id": id})
    published = await cms_api.data(
        "mutation($id: ID!) { publishPost(id: $id) { status } }", {"id": id}
    )
    assert published["publishPost"]["status"] == "published"
    async with cms_api.services.adapter.system_context() as tx:
        rows = await tx.fetch(
            "SELECT plane, ref_id::text FROM cms_document_references WHERE referencer_id = $1",
            uuid.UUID(id),
        )
    assert {(r[0], r[1]) for r in rows} == {("draft", author_id), ("published", author_id)}


async def test_saves_on_the_row_this_process_kept_leave_the_index_as_the_data_says(
    cms_api: GraphQLClient, tmp_path: Path
) -> None:
    """Saves and publishes of a published post over HTTP, each save after the first written at
    once on the row this process's previous write left (`server/content/written.py`), with the
    index that write said it left: whatever those writes left out, the index is what the data
    says after every step."""
    api = cms_api.services.api
    org = cms_api.org
    store = AssetsAPI(api, LocalStorage(tmp_path / "assets", "/assets"), max_upload_bytes=10**6)
    async with api.context(org, user_id="u1", capabilities=None) as ctx:
        cover, figure = [(await store.upload(ctx, png(), filename="a.png")).id for _ in range(2)]
    async with api.system_context(org) as ctx:
        authors = [
            (await api.collections.author.create(ctx, {"name": name}))["id"] for name in ("A", "B")
        ]
        category = (await api.collections.category.create(ctx, {"title": "C"}))["id"]
        post = await api.collections.post.create(
            ctx,
            {"title": "P", "slug": "p", "author": ref(authors[0]), "coverImage": image(cover)},
            publish=True,
        )
    id = post["id"]
    save = "mutation($id: ID!, $data: JSON!) { updatePost(id: $id, data: $data) { revision } }"
    publish = "mutation($id: ID!) { publishPost(id: $id) { revision } }"
    # A save (data) or a publish (None); references changed and changed back, so that an index
    # taken for the wrong plane or version would leave a part out that must run.
    a, b = (ref(author) for author in authors)
    steps: list[dict[str, Any] | None] = [
        {"title": "Q"},
        {"author": b, "categories": [ref(category, "c0")]},
        {"author": a},
        None,
        {"coverImage": None, "body": [image(figure, _key="f")]},
        {"coverImage": image(cover), "body": None, "title": "Q2"},
        None,
        {"author": b},
        None,
        {"author": a},
        None,
        {"author": None, "categories": None, "coverImage": None},
        None,
        {"author": a, "coverImage": image(cover)},
        None,
    ]
    database = cms_api.services.adapter.database
    await cms_api.data("{ allPost(limit: 1) { id } }")  # the process now knows the caller
    for n, data in enumerate(steps):
        before = database.statements
        if data is None:
            await cms_api.data(publish, {"id": id})
        else:
            await cms_api.data(save, {"id": id, "data": data})
        # The first save reads the post; every other write is one statement.
        assert database.statements - before == (2 if n == 0 else 1), n
        async with cms_api.services.adapter.system_context() as tx:
            row = await tx.fetchrow(
                "SELECT draft_data, published_data FROM cms_documents WHERE id = $1", uuid.UUID(id)
            )
        assert row is not None
        draft, published = expected("draft", row[0]), expected("published", row[1])
        assert await index_of(cms_api.services, id) == (
            draft[0] | published[0],
            draft[1] | published[1],
        ), n
