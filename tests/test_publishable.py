"""A save of a published document keeps a publishable draft's references; the publish that follows
skips its walks (`server/content/publishable.py`), and every answer stays what it was."""

from __future__ import annotations

import uuid

import pytest

from server.content.documents import References
from server.content.publishable import PublishableDrafts, publishable_drafts
from server.errors import InvalidInputError
from server.model.types import Registry
from tests.conftest import CMS


@pytest.fixture
async def org(cms: CMS) -> uuid.UUID:
    return await cms.org("acme")


def test_only_exactly_the_same_data_is_found() -> None:
    drafts = PublishableDrafts(size=2)
    found = References(documents=(uuid.uuid4(),))
    drafts.remember("post", {"a": 1, "b": [1, 2]}, found)
    assert drafts.references("post", {"b": [1, 2], "a": 1}) is found  # keys in any order
    assert drafts.references("post", {"a": 1.0, "b": [1, 2]}) is None  # 1 and 1.0 differ
    assert drafts.references("post", {"a": 1, "b": [2, 1]}) is None
    assert drafts.references("page", {"a": 1, "b": [1, 2]}) is None


def test_the_most_recent_drafts_are_kept() -> None:
    drafts = PublishableDrafts(size=2)
    for n in range(3):
        drafts.remember("post", {"n": n}, References())
    assert len(drafts) == 2
    assert drafts.references("post", {"n": 0}) is None
    assert drafts.references("post", {"n": 2}) is not None


def test_each_registry_keeps_its_own() -> None:
    first, second = Registry(), Registry()
    assert publishable_drafts(first) is publishable_drafts(first)
    assert publishable_drafts(first) is not publishable_drafts(second)


async def test_a_save_of_a_published_document_is_published_without_a_second_walk(
    cms: CMS, org: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    post = cms.api.collections.post
    async with cms.api.system_context(org) as ctx:
        author = await cms.api.collections.author.create(ctx, {"name": "Ada"})
        doc = await post.create(ctx, {"title": "A", "slug": "a"})
        await post.publish(ctx, doc["id"])
        drafts = publishable_drafts(ctx.registry)
        data = {"author": {"_type": "reference", "_ref": author["id"]}}
        await post.update_row(ctx, doc["id"], data)
        assert len(drafts) == 1

        def walked(*args: object, **kwargs: object) -> None:
            raise AssertionError("the publish validated the draft again")

        monkeypatch.setattr("server.engine.local_api.validate_document", walked)
        published = await post.publish_row(ctx, doc["id"])
        monkeypatch.undo()
    assert published.is_published
    async with cms.adapter.system_context() as tx:
        refs = await tx.fetch(
            "SELECT ref_id::text, plane FROM cms_document_references WHERE referencer_id = $1",
            uuid.UUID(doc["id"]),
        )
    assert {(r["ref_id"], r["plane"]) for r in refs} == {
        (author["id"], "draft"),
        (author["id"], "published"),
    }


async def test_a_draft_that_breaks_a_content_rule_saves_and_is_refused_as_before(
    cms: CMS, org: uuid.UUID
) -> None:
    post = cms.api.collections.post
    async with cms.api.system_context(org) as ctx:
        doc = await post.create(ctx, {"title": "A", "slug": "a"})
        await post.publish(ctx, doc["id"])
        saved = await post.update_row(ctx, doc["id"], {"title": None, "rating": 9})
        assert saved.revision == 2
        assert len(publishable_drafts(ctx.registry)) == 0
    with pytest.raises(InvalidInputError) as caught:
        async with cms.api.system_context(org) as ctx:
            await post.publish_row(ctx, doc["id"])
    errors = {(e["path"], e["rule"]) for e in caught.value.details["errors"]}
    assert errors == {("title", "required"), ("rating", "max")}


async def test_a_structural_problem_is_answered_as_before(cms: CMS, org: uuid.UUID) -> None:
    post = cms.api.collections.post
    async with cms.api.system_context(org) as ctx:
        doc = await post.create(ctx, {"title": "A", "slug": "a"})
        await post.publish(ctx, doc["id"])
    with pytest.raises(InvalidInputError) as caught:
        async with cms.api.system_context(org) as ctx:
            await post.update_row(ctx, doc["id"], {"titel": "typo", "views": "9", "rating": 9})
    errors = [(e["path"], e["rule"]) for e in caught.value.details["errors"]]
    # The draft's checks only: the content rule `rating` breaks is not among them.
    assert errors == [("titel", "unknown"), ("views", "type")]
