"""The document lifecycle through the local API, with the database rows checked after each step."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from server.content.hash import content_hash
from server.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from tests.conftest import CMS


async def _row(cms: CMS, document_id: str) -> dict[str, Any] | None:
    async with cms.adapter.system_context() as tx:
        row = await tx.fetchrow(
            "select status::text, draft_data, published_data, published_hash, draft_hash,"
            " revision, published_at, created_by, updated_by from cms_documents where id = $1",
            uuid.UUID(document_id),
        )
    return dict(row) if row is not None else None


async def _versions(cms: CMS, document_id: str) -> list[tuple[int, str]]:
    async with cms.adapter.system_context() as tx:
        rows = await tx.fetch(
            "select version_number, event_type::text from cms_document_versions"
            " where document_id = $1 order by version_number",
            uuid.UUID(document_id),
        )
    return [(row["version_number"], row["event_type"]) for row in rows]


async def _references(cms: CMS, document_id: str) -> set[tuple[str, str]]:
    async with cms.adapter.system_context() as tx:
        rows = await tx.fetch(
            "select ref_id::text, plane from cms_document_references where referencer_id = $1",
            uuid.UUID(document_id),
        )
    return {(row["ref_id"], row["plane"]) for row in rows}


@pytest.fixture
async def org(cms: CMS) -> uuid.UUID:
    return await cms.org("acme")


def ref(document: dict[str, Any]) -> dict[str, str]:
    return {"_type": "reference", "_ref": document["id"]}


async def test_create_starts_as_a_draft(cms: CMS, org: uuid.UUID) -> None:
    async with cms.api.context(org, user_id="u1", capabilities=None) as ctx:
        doc = await cms.api.collections.post.create(ctx, {"title": "Hello", "views": 3})
    assert doc["title"] == "Hello"
    assert doc["_meta"]["status"] == "draft"
    assert doc["_meta"]["revision"] == 1
    row = await _row(cms, doc["id"])
    assert row is not None
    assert row["status"] == "draft"
    assert row["draft_data"] == {"title": "Hello", "views": 3}
    assert row["published_data"] is None
    assert row["published_hash"] is None
    assert row["draft_hash"] == content_hash({"title": "Hello", "views": 3})
    assert (row["created_by"], row["updated_by"]) == ("u1", "u1")
    assert await _versions(cms, doc["id"]) == [(1, "draft")]


async def test_update_merges_keys_and_none_removes_one(cms: CMS, org: uuid.UUID) -> None:
    async with cms.api.system_context(org) as ctx:
        doc = await cms.api.collections.post.create(ctx, {"title": "A", "excerpt": "x", "views": 1})
        updated = await cms.api.collections.post.update(
            ctx, doc["id"], {"views": 2, "excerpt": None}, expected_revision=1
        )
    assert updated["_meta"]["revision"] == 2
    row = await _row(cms, doc["id"])
    assert row is not None
    assert row["draft_data"] == {"title": "A", "views": 2}
    assert await _versions(cms, doc["id"]) == [(1, "draft"), (2, "draft")]


async def test_stale_revision_is_a_conflict_and_changes_nothing(cms: CMS, org: uuid.UUID) -> None:
    async with cms.api.system_context(org) as ctx:
        doc = await cms.api.collections.post.create(ctx, {"title": "A"})
        await cms.api.collections.post.update(ctx, doc["id"], {"title": "B"}, expected_revision=1)
    with pytest.raises(ConflictError, match="expected revision 1, it is at 2"):
        async with cms.api.system_context(org) as ctx:
            await cms.api.collections.post.update(
                ctx, doc["id"], {"title": "C"}, expected_revision=1
            )
    row = await _row(cms, doc["id"])
    assert row is not None
    assert (row["draft_data"], row["revision"]) == ({"title": "B"}, 2)


async def test_structure_is_checked_on_drafts(cms: CMS, org: uuid.UUID) -> None:
    async with cms.api.system_context(org) as ctx:
        with pytest.raises(InvalidInputError) as caught:
            await cms.api.collections.post.create(
                ctx, {"title": "A", "titel": "typo", "views": "9"}
            )
    errors = {(e["path"], e["rule"]) for e in caught.value.details["errors"]}
    assert errors == {("titel", "unknown"), ("views", "type")}


async def test_publish_copies_the_draft_and_records_a_version(cms: CMS, org: uuid.UUID) -> None:
    data = {"title": "Hello", "slug": "hello", "views": 5}
    async with cms.api.system_context(org) as ctx:
        doc = await cms.api.collections.post.create(ctx, data)
        published = await cms.api.collections.post.publish(ctx, doc["id"], expected_revision=1)
    assert published["_meta"]["status"] == "published"
    assert published["_meta"]["hasUnpublishedChanges"] is False
    row = await _row(cms, doc["id"])
    assert row is not None
    assert row["status"] == "published"
    assert row["published_data"] == data
    assert row["published_hash"] == content_hash(data)
    assert row["published_at"] is not None
    assert await _versions(cms, doc["id"]) == [(1, "draft"), (2, "publish")]

    async with cms.api.system_context(org) as ctx:
        changed = await cms.api.collections.post.update(ctx, doc["id"], {"views": 6})
        live = await cms.api.collections.post.find_by_id(ctx, doc["id"])
    assert changed["_meta"]["hasUnpublishedChanges"] is True
    assert live is not None
    assert live["views"] == 5  # the published perspective keeps the published data


async def test_publish_is_refused_while_a_content_rule_is_broken(cms: CMS, org: uuid.UUID) -> None:
    async with cms.api.system_context(org) as ctx:
        doc = await cms.api.collections.post.create(ctx, {"slug": "no-title", "rating": 9})
    with pytest.raises(InvalidInputError) as caught:
        async with cms.api.system_context(org) as ctx:
            await cms.api.collections.post.publish(ctx, doc["id"])
    errors = {(e["path"], e["rule"]) for e in caught.value.details["errors"]}
    assert errors == {("title", "required"), ("rating", "max")}
    row = await _row(cms, doc["id"])
    assert row is not None
    assert (row["status"], row["published_data"]) == ("draft", None)


async def test_publish_does_not_require_published_references(cms: CMS, org: uuid.UUID) -> None:
    async with cms.api.system_context(org) as ctx:
        author = await cms.api.collections.author.create(ctx, {"name": "Ada"})
        post = await cms.api.collections.post.create(
            ctx, {"title": "T", "slug": "t", "author": ref(author)}, publish=True
        )
        found = await cms.api.collections.post.find_by_id(ctx, post["id"], depth=1)
    assert found is not None
    # Under the published perspective the unpublished author stays an unresolved reference.
    assert found["author"] == ref(author)
    assert await _references(cms, post["id"]) == {
        (author["id"], "draft"),
        (author["id"], "published"),
    }


async def test_unpublish_clears_the_published_plane(cms: CMS, org: uuid.UUID) -> None:
    async with cms.api.system_context(org) as ctx:
        author = await cms.api.collections.author.create(ctx, {"name": "Ada"})
        post = await cms.api.collections.post.create(
            ctx, {"title": "T", "slug": "t", "author": ref(author)}, publish=True
        )
        result = await cms.api.collections.post.unpublish(ctx, post["id"])
        assert await cms.api.collections.post.find_by_id(ctx, post["id"]) is None
    assert result["_meta"]["status"] == "draft"
    row = await _row(cms, post["id"])
    assert row is not None
    assert (row["status"], row["published_data"], row["published_hash"]) == ("draft", None, None)
    assert await _references(cms, post["id"]) == {(author["id"], "draft")}


async def test_delete_removes_the_document_and_its_history(cms: CMS, org: uuid.UUID) -> None:
    async with cms.api.system_context(org) as ctx:
        doc = await cms.api.collections.post.create(ctx, {"title": "T", "slug": "t"}, publish=True)
        await cms.api.collections.post.delete(ctx, doc["id"])
    assert await _row(cms, doc["id"]) is None
    assert await _versions(cms, doc["id"]) == []
    with pytest.raises(NotFoundError):
        async with cms.api.system_context(org) as ctx:
            await cms.api.collections.post.delete(ctx, doc["id"])


async def test_version_history_lists_gets_and_restores(cms: CMS, org: uuid.UUID) -> None:
    async with cms.api.system_context(org) as ctx:
        doc = await cms.api.collections.post.create(ctx, {"title": "v1", "slug": "s"})
        await cms.api.collections.post.update(ctx, doc["id"], {"title": "v2"})
        await cms.api.collections.post.publish(ctx, doc["id"])
        await cms.api.collections.post.update(ctx, doc["id"], {"title": "v4"})
        page = await cms.api.collections.post.versions(ctx, doc["id"], limit=2, offset=1)
        one = await cms.api.collections.post.version(ctx, doc["id"], 1)
        restored = await cms.api.collections.post.restore_version(ctx, doc["id"], 1)
        live = await cms.api.collections.post.find_by_id(ctx, doc["id"])
    assert [(v.version_number, v.event_type) for v in page.items] == [
        (3, "publish"),
        (2, "draft"),
    ]
    assert page.total == 4
    assert one.data == {"title": "v1", "slug": "s"}
    assert restored["title"] == "v1"
    assert live is not None
    assert live["title"] == "v2"  # restoring changes the draft only
    assert await _versions(cms, doc["id"]) == [
        (n, e) for n, e in enumerate(["draft", "draft", "publish", "draft", "restore"], start=1)
    ]
    assert restored["_meta"]["revision"] == 4


async def test_retention_bounds_draft_versions_and_keeps_publishes(
    cms: CMS, org: uuid.UUID
) -> None:
    cms.adapter.version_retention = 3
    async with cms.api.system_context(org) as ctx:
        doc = await cms.api.collections.post.create(ctx, {"title": "0", "slug": "s"})
        await cms.api.collections.post.publish(ctx, doc["id"])
        for n in range(1, 6):
            await cms.api.collections.post.update(ctx, doc["id"], {"title": str(n)})
    assert await _versions(cms, doc["id"]) == [
        (2, "publish"),
        (5, "draft"),
        (6, "draft"),
        (7, "draft"),
    ]


async def test_retention_of_one_keeps_only_the_newest_draft(cms: CMS, org: uuid.UUID) -> None:
    cms.adapter.version_retention = 1
    async with cms.api.system_context(org) as ctx:
        doc = await cms.api.collections.post.create(ctx, {"title": "0", "slug": "s"})
        await cms.api.collections.post.publish(ctx, doc["id"])
        for n in range(1, 4):
            await cms.api.collections.post.update(ctx, doc["id"], {"title": str(n)})
    assert await _versions(cms, doc["id"]) == [(2, "publish"), (5, "draft")]


async def test_row_calls_answer_without_the_data_and_write_it_all(cms: CMS, org: uuid.UUID) -> None:
    """`update_row` and `publish_row` read and return no document data (a direct write answers
    from the row's own fields), and store exactly what `update` and `publish` store."""
    post = cms.api.collections.post
    async with cms.api.system_context(org) as ctx:
        doc = await post.create(ctx, {"title": "A", "slug": "a", "views": 1})
        saved = await post.update_row(ctx, doc["id"], {"views": 2}, expected_revision=1)
        assert (saved.draft_data, saved.published_data, saved.is_published) == (None, None, False)
        assert saved.revision == 2
        published = await post.publish_row(ctx, doc["id"], expected_revision=2)
        assert (published.draft_data, published.published_data) == (None, {})
        assert published.is_published
        assert not published.has_unpublished_changes
        again = await post.update_row(ctx, doc["id"], {"views": 3}, publish=True)
        assert again.is_published
        assert again.revision == 3
        same = await post.update_row(ctx, doc["id"], {"views": 3})
        assert same.revision == 3
        assert same.is_published
    row = await _row(cms, doc["id"])
    assert row is not None
    data = {"title": "A", "slug": "a", "views": 3}
    assert (row["draft_data"], row["published_data"]) == (data, data)
    assert row["published_hash"] == row["draft_hash"] == content_hash(data)
    assert await _versions(cms, doc["id"]) == [
        (1, "draft"),
        (2, "draft"),
        (3, "publish"),
        (4, "draft"),
        (5, "publish"),
    ]
    async with cms.api.system_context(org) as ctx:
        rendered = await post.update(ctx, doc["id"], {"views": 4}, publish=True)
    assert rendered["views"] == 4
    assert rendered["_meta"]["status"] == "published"


async def test_concurrent_saves_and_publishes_lose_nothing(cms: CMS, org: uuid.UUID) -> None:
    cms.adapter.version_retention = 0  # keep everything, to check the numbering
    async with cms.api.system_context(org) as ctx:
        doc = await cms.api.collections.post.create(ctx, {"title": "t", "slug": "s", "tags": []})

    async def save(n: int) -> None:
        async with cms.api.system_context(org) as ctx:
            current = await cms.api.collections.post.find_by_id(ctx, doc["id"], perspective="draft")
            assert current is not None
            # A read-modify-write without a revision check would lose tags; the lock keeps them.
            await cms.api.collections.post.update(ctx, doc["id"], {"views": n})

    async def publish() -> None:
        async with cms.api.system_context(org) as ctx:
            await cms.api.collections.post.publish(ctx, doc["id"])

    await asyncio.gather(*[save(n) for n in range(20)], *[publish() for _ in range(5)])
    numbers = [n for n, _ in await _versions(cms, doc["id"])]
    assert numbers == list(range(1, 27))
    row = await _row(cms, doc["id"])
    assert row is not None
    assert row["revision"] == 21


async def test_concurrent_compare_and_swap_lets_exactly_one_win(cms: CMS, org: uuid.UUID) -> None:
    async with cms.api.system_context(org) as ctx:
        doc = await cms.api.collections.post.create(ctx, {"title": "t"})

    async def save(n: int) -> str:
        try:
            async with cms.api.system_context(org) as ctx:
                await cms.api.collections.post.update(
                    ctx, doc["id"], {"title": f"writer {n}"}, expected_revision=1
                )
        except ConflictError:
            return "conflict"
        return "saved"

    results = await asyncio.gather(*[save(n) for n in range(10)])
    assert sorted(results) == ["conflict"] * 9 + ["saved"]
    row = await _row(cms, doc["id"])
    assert row is not None
    assert row["revision"] == 2


async def test_a_parent_cannot_write_a_childs_document(cms: CMS) -> None:
    parent = await cms.org("parent")
    child = await cms.org("child", parent)
    async with cms.api.system_context(child) as ctx:
        doc = await cms.api.collections.post.create(ctx, {"title": "child's"})
    async with cms.api.context(parent, capabilities=None) as ctx:
        seen = await cms.api.collections.post.find_by_id(ctx, doc["id"], perspective="draft")
        assert seen is not None  # parents read down the tree
    collection = cms.api.collections.post
    attempts = {
        "update": lambda ctx: collection.update(ctx, doc["id"], {"title": "parent's"}),
        "publish": lambda ctx: collection.publish(ctx, doc["id"]),
        "unpublish": lambda ctx: collection.unpublish(ctx, doc["id"]),
        "delete": lambda ctx: collection.delete(ctx, doc["id"]),
    }
    for attempt in attempts.values():
        async with cms.api.context(parent, capabilities=None) as ctx:
            with pytest.raises(ForbiddenError, match="another organization"):
                await attempt(ctx)
    row = await _row(cms, doc["id"])
    assert row is not None
    assert row["draft_data"] == {"title": "child's"}


async def test_capabilities_are_checked(cms: CMS, org: uuid.UUID) -> None:
    viewer = frozenset({"document.read"})
    async with cms.api.context(org, capabilities=viewer) as ctx:
        with pytest.raises(ForbiddenError, match=r"document\.create"):
            await cms.api.collections.post.create(ctx, {"title": "x"})
    async with cms.api.context(org, capabilities=viewer, published_only=True) as ctx:
        with pytest.raises(ForbiddenError, match="published perspective"):
            await cms.api.collections.post.find(ctx, perspective="draft")


@pytest.mark.parametrize(
    ("call", "path"),
    [
        ({"depth": 6}, "depth"),
        ({"depth": -1}, "depth"),
        ({"limit": 0}, "limit"),
        ({"limit": 100_000}, "limit"),
        ({"offset": -1}, "offset"),
        ({"perspective": "preview"}, "perspective"),
    ],
)
async def test_find_arguments_are_checked(
    cms: CMS, org: uuid.UUID, call: dict[str, Any], path: str
) -> None:
    async with cms.api.system_context(org) as ctx:
        with pytest.raises(InvalidInputError) as caught:
            await cms.api.collections.post.find(ctx, **call)
    assert caught.value.path == path


async def test_invalid_ids_are_input_errors(cms: CMS, org: uuid.UUID) -> None:
    async with cms.api.system_context(org) as ctx:
        with pytest.raises(InvalidInputError, match="not a UUID"):
            await cms.api.collections.post.find_by_id(ctx, "1; drop table cms_documents")
        assert await cms.api.collections.post.find_by_id(ctx, uuid.uuid4()) is None
        with pytest.raises(InvalidInputError, match="unknown document type"):
            cms.api.collections.nope  # noqa: B018


def test_a_publish_statement_holds_no_prune() -> None:
    """A publish prunes nothing; a prune in its statement would make a plan for the values cheaper
    than the generic plan, and PostgreSQL would then plan every publish afresh."""
    from server.content.documents import FULL_WORK, _draft_save, _publish, _publish_saved

    for texts in _publish(FULL_WORK):
        for text in texts:
            assert "DELETE FROM cms_document_versions" not in text
    for text in _publish_saved(FULL_WORK):
        assert "DELETE FROM cms_document_versions" not in text
    for texts in _draft_save(FULL_WORK):
        for text in texts:
            assert "DELETE FROM cms_document_versions" in text


async def test_a_number_in_a_filter_is_the_number_written(cms: CMS, org: uuid.UUID) -> None:
    """0.1 in a filter finds a stored 0.1: it is compared as written, not as the binary expansion
    of the float it parses to (0.1000000000000000055...)."""
    async with cms.api.system_context(org) as ctx:
        posts = cms.api.collections.post
        for title, rating in (("tenth", 0.1), ("three tenths", 0.3), ("one", 1)):
            data = {"title": title, "slug": title.replace(" ", "-"), "rating": rating}
            await posts.create(ctx, data, publish=True)
        found = {
            name: sorted(doc["title"] for doc in (await posts.find(ctx, where=where)).items)
            for name, where in {
                "equals": {"rating": {"equals": 0.1}},
                "in": {"rating": {"in": [0.3, 2.5]}},
                "range": {"rating": {"greater_than_equal": 0.3, "less_than_equal": 0.3}},
                "not_equals": {"rating": {"not_equals": 0.1}},
            }.items()
        }
    assert found == {
        "equals": ["tenth"],
        "in": ["three tenths"],
        "range": ["three tenths"],
        "not_equals": ["one", "three tenths"],
    }
