"""Reference resolution through the local API: depth 0-5, cycles, tenants, perspectives, query counts."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from server.engine.context import Context
from tests.conftest import CMS


def ref(doc_id: str) -> dict[str, str]:
    return {"_type": "reference", "_ref": doc_id}


async def authors(cms: CMS, ctx: Context, names: list[str]) -> dict[str, str]:
    created = {}
    for name in names:
        doc = await cms.api.collections.author.create(ctx, {"name": name}, publish=True)
        created[name] = doc["id"]
    return created


async def mentor(cms: CMS, ctx: Context, who: str, whom: str) -> None:
    await cms.api.collections.author.update(ctx, who, {"mentor": ref(whom)}, publish=True)


def chain(doc: dict[str, Any], depth: int) -> list[str]:
    """Names along the mentor chain, then the stub's id marker."""
    names = []
    node: Any = doc
    for _ in range(depth + 2):
        if not isinstance(node, dict):
            break
        if "_ref" in node:
            names.append("->stub")
            break
        names.append(node["name"])
        node = node.get("mentor")
    return names


@pytest.fixture
async def org(cms: CMS) -> uuid.UUID:
    return await cms.org("refs")


@pytest.mark.parametrize("depth", [0, 1, 2, 3, 4, 5])
async def test_a_long_chain_resolves_exactly_to_depth(cms: CMS, org: uuid.UUID, depth: int) -> None:
    async with cms.api.system_context(org) as ctx:
        ids = await authors(cms, ctx, ["a", "b", "c", "d", "e", "f", "g"])
        for who, whom in zip("abcdef", "bcdefg", strict=True):
            await mentor(cms, ctx, ids[who], ids[whom])
        before = ctx.tx.statements
        doc = await cms.api.collections.author.find_by_id(ctx, ids["a"], depth=depth)
        used = ctx.tx.statements - before
    assert doc is not None
    assert chain(doc, depth) == [*"abcdefg"[: depth + 1], "->stub"]
    assert used == 1 + depth  # the document, then one statement per level


@pytest.mark.parametrize(
    ("loop", "expected"),
    [
        (["a"], ["a", "->stub"]),  # a self-reference
        (["a", "b"], ["a", "b", "->stub"]),  # a 2-cycle
        (["a", "b", "c", "d"], ["a", "b", "c", "d", "->stub"]),  # a longer loop
    ],
)
async def test_cycles_stop_at_the_repeat(
    cms: CMS, org: uuid.UUID, loop: list[str], expected: list[str]
) -> None:
    async with cms.api.system_context(org) as ctx:
        ids = await authors(cms, ctx, loop)
        for i, who in enumerate(loop):
            await mentor(cms, ctx, ids[who], ids[loop[(i + 1) % len(loop)]])
        doc = await cms.api.collections.author.find_by_id(ctx, ids["a"], depth=5)
    assert doc is not None
    assert chain(doc, 5) == expected
    stub = doc
    for _ in range(len(loop)):
        stub = stub["mentor"]
    assert stub == ref(ids["a"])


async def test_unreadable_targets_stay_unresolved(cms: CMS) -> None:
    parent = await cms.org("parent")
    child = await cms.org("child", parent)
    sibling = await cms.org("sibling")
    async with cms.api.system_context(sibling) as ctx:
        foreign = await cms.api.collections.author.create(
            ctx, {"name": "other tenant"}, publish=True
        )
    async with cms.api.system_context(child) as ctx:
        below = await cms.api.collections.author.create(ctx, {"name": "in the child"}, publish=True)
    async with cms.api.system_context(parent) as ctx:
        draft = await cms.api.collections.author.create(ctx, {"name": "never published"})
        missing = str(uuid.uuid4())
        post = await cms.api.collections.post.create(
            ctx,
            {
                "title": "refs",
                "slug": "refs",
                "categories": [],
                "related": [],
                "author": ref(foreign["id"]),
            },
            publish=True,
        )
        for target in (below["id"], draft["id"], missing):
            await cms.api.collections.author.create(
                ctx, {"name": f"points at {target}", "mentor": ref(target)}, publish=True
            )
    async with cms.api.context(parent, capabilities=None) as ctx:
        seen = await cms.api.collections.post.find_by_id(ctx, post["id"], depth=2)
        page = await cms.api.collections.author.find(ctx, depth=1, sort=["name"], limit=10)
    assert seen is not None
    assert seen["author"] == ref(foreign["id"])  # another tenant: not readable
    mentors = {doc["name"]: doc.get("mentor") for doc in page.items}
    assert mentors[f"points at {below['id']}"]["name"] == "in the child"  # readable down the tree
    assert mentors[f"points at {draft['id']}"] == ref(draft["id"])  # unpublished
    assert mentors[f"points at {missing}"] == ref(missing)  # missing

    async with cms.api.context(parent, capabilities=None) as ctx:
        drafts = await cms.api.collections.author.find(
            ctx, depth=1, sort=["name"], limit=10, perspective="draft"
        )
    by_name = {doc["name"]: doc.get("mentor") for doc in drafts.items}
    assert by_name[f"points at {draft['id']}"]["name"] == "never published"


async def test_statements_do_not_grow_with_the_documents(cms: CMS, org: uuid.UUID) -> None:
    async with cms.api.system_context(org) as ctx:
        ids = await authors(cms, ctx, [f"author {n}" for n in range(10)])
        names = list(ids)
        for i, name in enumerate(names):
            await mentor(cms, ctx, ids[name], ids[names[(i + 1) % len(names)]])
        categories = []
        for n in range(5):
            cat = await cms.api.collections.category.create(
                ctx, {"title": f"cat {n}", "slug": f"cat-{n}"}, publish=True
            )
            categories.append(cat["id"])
        for n in range(50):
            await cms.api.collections.post.create(
                ctx,
                {
                    "title": f"post {n}",
                    "slug": f"post-{n}",
                    "author": ref(ids[names[n % 10]]),
                    "categories": [
                        {**ref(categories[(n + k) % 5]), "_key": f"k{k}"} for k in range(3)
                    ],
                },
                publish=True,
            )

    async def cost(limit: int, depth: int) -> tuple[int, int]:
        async with cms.api.system_context(org) as ctx:
            before = ctx.tx.statements
            result = await cms.api.collections.post.find(ctx, limit=limit, depth=depth)
            return ctx.tx.statements - before, len(result.items)

    for depth in range(6):
        small, few = await cost(5, depth)
        large, many = await cost(50, depth)
        assert (few, many) == (5, 50)
        # At most one statement per level, however many documents (a level whose targets are all
        # known already costs nothing).
        assert small <= 1 + depth
        assert large <= 1 + depth
