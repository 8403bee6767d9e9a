"""A compiled list page reads each organization's own rows (migration 0027, `tenant_rows`).

The page of each organization the request may read is walked apart, in sort order, and the pages
are merged; a caller whose kept facts give it one organization has its pages read from that one's
walk alone. These tests check the answers of both forms against the order they must follow, which
form a request took (the statement it sent), and that a caller whose tree grew is not left with
the one-organization form.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest

from server.db.tenancy import enter_org
from tests.conftest import GraphQLClient

QUERY = '{ allPost(limit: 3, offset: 1, sort: ["-publishedDate"]) { title } }'


async def _publish_posts(gql: GraphQLClient, org: uuid.UUID, days: list[int]) -> None:
    async with gql.services.api.system_context(org) as ctx:
        for day in days:
            title = f"{org.hex[:4]}-{day}"
            data = {"title": title, "slug": title, "publishedDate": f"2025-01-{day:02d}T10:00:00Z"}
            await gql.services.api.collections.post.create(ctx, data, publish=True)


async def _read(gql: GraphQLClient, key: str, sent: list[str], *, tries: int = 1) -> list[str]:
    """The titles `QUERY` answers for `key`, in `tries` statements; they are appended to `sent`."""
    database = gql.services.adapter.database
    recorded: list[str] = []
    ran = database.ran

    def record(sql: str, args: Any) -> None:
        recorded.append(sql)
        ran(sql, args)

    database.ran = record  # type: ignore[method-assign]
    try:
        response = await gql.post(QUERY, key=key)
    finally:
        database.ran = ran  # type: ignore[method-assign]
    payload = response.json()
    assert "errors" not in payload, payload
    assert len(recorded) == tries
    sent.extend(recorded)
    return [post["title"] for post in payload["data"]["allPost"]]


def _expected(days_by_org: dict[uuid.UUID, list[int]]) -> list[str]:
    """`QUERY`'s titles over these organizations' posts: newest first, from the second on."""
    posts = [(day, f"{org.hex[:4]}-{day}") for org, days in days_by_org.items() for day in days]
    return [title for _, title in sorted(posts, reverse=True)][1:4]


async def test_a_leaf_organization_reads_its_own_page_from_its_own_walk(
    cms_api: GraphQLClient,
) -> None:
    leaf = await cms_api.org_named("leaf")
    neighbour = await cms_api.org_named("neighbour")
    await _publish_posts(cms_api, leaf, [3, 9, 1, 7])
    await _publish_posts(cms_api, neighbour, [8, 4, 6, 2, 5])
    key = await cms_api.key_for(leaf)
    sent: list[str] = []
    first = await _read(cms_api, key, sent)
    second = await _read(cms_api, key, sent)
    assert first == second == _expected({leaf: [3, 9, 1, 7]})
    # The first request opened in full, so it merged; then the caller was known.
    assert "unnest((SELECT cms_readable_orgs()))" in sent[0]
    assert "cms_one_readable_org()" not in sent[0]
    assert "cms_one_readable_org()" in sent[1]
    assert "unnest(" not in sent[1]


async def test_an_organization_with_children_merges_their_pages_in_order(
    cms_api: GraphQLClient,
) -> None:
    parent = await cms_api.org_named("parent")
    child = await cms_api.org_named("child", parent)
    grandchild = await cms_api.org_named("grandchild", child)
    days = {parent: [2, 11, 5], child: [9, 4, 12], grandchild: [10, 3, 8]}
    for org, org_days in days.items():
        await _publish_posts(cms_api, org, org_days)
    key = await cms_api.key_for(parent)
    sent: list[str] = []
    for _ in range(2):
        assert await _read(cms_api, key, sent) == _expected(days)
    assert all("cms_one_readable_org()" not in sql for sql in sent)


async def test_a_caller_whose_tree_grew_reads_the_new_organization_at_once(
    cms_api: GraphQLClient,
) -> None:
    root = await cms_api.org_named("root")
    await _publish_posts(cms_api, root, [1, 5, 3, 7])
    key = await cms_api.key_for(root)
    sent: list[str] = []
    await _read(cms_api, key, sent)
    assert await _read(cms_api, key, sent) == _expected({root: [1, 5, 3, 7]})
    assert "cms_one_readable_org()" in sent[-1]
    branch = await cms_api.org_named("branch", root)
    await _publish_posts(cms_api, branch, [6, 8])
    # The kept facts no longer hold (the tree changed): the one-organization read reads nothing
    # and says so, and the read opens in full and merges.
    titles = await _read(cms_api, key, sent, tries=2)
    assert titles == _expected({root: [1, 5, 3, 7], branch: [6, 8]})
    assert "cms_one_readable_org()" in sent[-2]
    assert "cms_one_readable_org()" not in sent[-1]


async def test_the_one_organization_form_refuses_a_scope_of_more_than_one(
    cms_api: GraphQLClient,
) -> None:
    parent = await cms_api.org_named("upper")
    await cms_api.org_named("lower", parent)
    leaf = await cms_api.org_named("alone")
    tenancy = cms_api.services.adapter.tenancy
    async with cms_api.services.adapter.database.transaction() as tx:
        await enter_org(tx, tenancy, leaf)
        assert await tx.fetchval("SELECT cms_one_readable_org()") == leaf
    async with cms_api.services.adapter.database.transaction() as tx:
        await enter_org(tx, tenancy, parent)
        with pytest.raises(asyncpg.PostgresError) as raised:
            await tx.fetchval("SELECT cms_one_readable_org()")
    assert raised.value.sqlstate == "CM007"
