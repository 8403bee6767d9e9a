"""SQL statements per request for the benchmark's scenarios (bench/scenarios.py), so an N+1 fails CI.

Counted through the GraphQL endpoint in process: `Database.statements` counts every statement a
request runs. A read is one statement in all, whatever the depth and the page size: `cms_read`
checks the API key, scopes the organization and runs the compiled read (`server/query/`), its own
transaction. Writes run through the resolvers in a transaction: the opening (`BEGIN`, the key check
and the organization scope in one round trip; it also checks that the caller's facts are the ones
the process kept from its last request, so they need no reading back), then a fixed number.
`COMMIT` is the one round trip not counted.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import orjson
import pytest

from bench.scenarios import BY_NAME, Scenario, update_variables
from server.access.opening import known_callers
from tests.conftest import GraphQLClient

READ = 1  # a whole read request: the credential check, the organization scope and the read
OPENING = 1  # a write's BEGIN, the credential check and the organization scope: one round trip
AUTHORS = 12  # one mentor loop: longer than the deepest depth
POSTS = 40


def ref(target: uuid.UUID, key: str | None = None) -> dict[str, str]:
    value = {"_type": "reference", "_ref": str(target)}
    return {**value, "_key": key} if key else value


@pytest.fixture
async def blog(cms_api: GraphQLClient) -> list[str]:
    """Authors in a 12-long mentor loop, two parent categories with four children below them, and
    posts referencing an author and two child categories: all published."""
    # All are created in one transaction, so they share `updated_at` and the default sort
    # (-updatedAt, then id) lists the authors in id order.
    authors = sorted(uuid.uuid4() for _ in range(AUTHORS))
    categories = [uuid.uuid4() for _ in range(6)]
    posts = []
    async with cms_api.services.api.system_context(cms_api.org) as ctx:
        collections = cms_api.services.api.collections
        for n, author in enumerate(authors):
            mentor = ref(authors[(n + 1) % AUTHORS])
            data = {"name": f"Author {n}", "mentor": mentor}
            await collections.author.create(ctx, data, id=author, publish=True)
        for n, category in enumerate(categories):
            data = {"title": f"Category {n}"}
            if n >= 2:
                data["parent"] = ref(categories[n % 2])
            await collections.category.create(ctx, data, id=category, publish=True)
        for n in range(POSTS):
            doc = await collections.post.create(
                ctx,
                {
                    "title": f"Post {n} about a thing",
                    "slug": f"post-{n}",
                    "views": 100 * n,
                    "rating": 2.5,
                    "tags": ["t"],
                    "publishedDate": f"2025-01-{n % 28 + 1:02d}T10:00:00+00:00",
                    "author": ref(authors[n % AUTHORS]),
                    # Child categories only: their parents are reached at depth 2 alone.
                    "categories": [
                        ref(categories[2 + n % 4], "c0"),
                        ref(categories[2 + (n + 1) % 4], "c1"),
                    ],
                },
                publish=True,
            )
            posts.append(doc["id"])
    return posts


async def meet(gql: GraphQLClient) -> None:
    """A first request, after which the process knows the caller's facts."""
    await statements(gql, orjson.dumps({"query": "{ allPost(limit: 1) { id } }"}))


async def statements(gql: GraphQLClient, body: bytes) -> tuple[int, dict[str, Any]]:
    """The statements one request ran, and its data."""
    database = gql.services.adapter.database
    before = database.statements
    response = await gql.client.post(
        "/graphql",
        content=body,
        headers={"Authorization": f"Bearer {gql.key}", "Content-Type": "application/json"},
    )
    payload: dict[str, Any] = response.json()
    assert "errors" not in payload, payload
    return database.statements - before, payload["data"]


def with_limit(scenario: Scenario, limit: int) -> bytes:
    assert "limit: 20" in scenario.query
    return replace(scenario, query=scenario.query.replace("limit: 20", f"limit: {limit}")).body()


@pytest.mark.parametrize("name", ["Q1", "Q2", "Q3"])
async def test_a_post_list_is_one_statement_whatever_its_depth_and_size(
    cms_api: GraphQLClient, blog: list[str], name: str
) -> None:
    scenario = BY_NAME[name]
    counts = {}
    for limit in (5, 40):
        counts[limit], data = await statements(cms_api, with_limit(scenario, limit))
        matching = POSTS if name != "Q3" else sum(1 for n in range(POSTS) if 100 * n > 500)
        assert len(data["allPost"]) == min(limit, matching)
    assert counts == {5: READ, 40: READ}


async def test_the_deepest_list_is_one_statement(cms_api: GraphQLClient, blog: list[str]) -> None:
    scenario = BY_NAME["Q5"]
    for limit in (5, 50):
        count, data = await statements(cms_api, with_limit(scenario, limit))
        assert len(data["allAuthor"]) == min(limit, AUTHORS)
        # Five levels of mentors below each author, each one resolved.
        mentor = data["allAuthor"][0]
        for _ in range(scenario.depth):
            mentor = mentor["mentor"]
            assert mentor["name"] is not None
        assert count == READ


async def test_a_post_by_id_is_one_statement(cms_api: GraphQLClient, blog: list[str]) -> None:
    scenario = BY_NAME["Q4"]
    for post_id in blog[:5]:
        count, data = await statements(cms_api, scenario.body({"id": post_id}))
        assert data["post"]["author"]["name"] is not None
        assert count == READ


async def test_several_root_fields_share_one_statement(
    cms_api: GraphQLClient, blog: list[str]
) -> None:
    query = (
        "query($id: ID!) { one: post(id: $id, depth: 1) { title author { name } }"
        " all: allPost(limit: 3) { id } page: allPostPage(limit: 2) { totalDocs docs { slug } }"
        ' documents(type: "author", limit: 2) { totalDocs docs } }'
    )
    body = orjson.dumps({"query": query, "variables": {"id": blog[0]}})
    count, data = await statements(cms_api, body)
    assert list(data) == ["one", "all", "page", "documents"]
    assert data["page"]["totalDocs"] == POSTS
    assert count == READ


async def test_back_references_of_a_whole_list_are_one_statement(
    cms_api: GraphQLClient, blog: list[str]
) -> None:
    query = (
        "{ allAuthor(limit: 50) { name referencedBy(limit: 2, depth: 1) { totalDocs"
        " docs { ... on Post { title author { name referencedBy { totalDocs } } } } } } }"
    )
    count, data = await statements(cms_api, orjson.dumps({"query": query}))
    # Every post references its author (and some authors a mentor).
    assert sum(a["referencedBy"]["totalDocs"] for a in data["allAuthor"]) > POSTS
    assert max(len(a["referencedBy"]["docs"]) for a in data["allAuthor"]) == 2
    assert count == READ


async def test_a_draft_save_and_a_publish_cost_a_fixed_number_of_statements(
    cms_api: GraphQLClient, blog: list[str]
) -> None:
    scenario = BY_NAME["W1"]
    post_id = blog[0]
    revision = 1
    await meet(cms_api)
    for step in range(3):
        variables = update_variables(post_id, revision, step / 10)
        update, data = await statements(cms_api, scenario.body(variables))
        revision = data["updatePost"]["revision"]
        publish, _ = await statements(cms_api, scenario.body({"id": post_id}, second=True))
        # The first save: a read of the post, then the write with its version and reference
        # index, which goes ahead only while the post is the version read; the publish of the
        # draft the save left, which checks the draft is still that one. Each is one statement in
        # all that opens the request and commits (`read_for_save_at_once`, `save_draft_at_once`,
        # `publish_saved_draft_at_once`). The next saves write at once on the post as this
        # process left it (`server/content/written.py`). The answer selects no reference, so
        # none is inlined (`resolvers.reference_depth`).
        assert (update, publish) == (1 if step else 2, 1)
    assert revision == 4


async def test_a_write_inlines_only_the_references_its_answer_selects(
    cms_api: GraphQLClient, blog: list[str]
) -> None:
    post_id = blog[0]
    base = "mutation($id: ID!) { publishPost(id: $id) { id %s } }"
    await meet(cms_api)
    for selection, levels in [
        ("revision", 0),
        ("author { name }", 1),
        ("author { mentor { name } }", 2),
        ("categories { parent { title } }", 2),
        ("author { mentor { mentor { name } } }", 2),  # the default depth is the most
        ("_raw", 2),
    ]:
        body = orjson.dumps({"query": base % selection, "variables": {"id": post_id}})
        count, data = await statements(cms_api, body)
        assert count == OPENING + 2 + levels, selection
        assert data["publishPost"]["id"] == post_id
    count, data = await statements(
        cms_api,
        orjson.dumps(
            {
                "query": base % "author { mentor { name } }",
                "variables": {"id": post_id},
            }
        ),
    )
    assert data["publishPost"]["author"]["mentor"]["name"].startswith("Author")


async def test_a_read_request_is_one_round_trip(
    cms_api: GraphQLClient, blog: list[str], round_trips: list[str]
) -> None:
    """No `BEGIN`, no `COMMIT`: the statement is the request's transaction."""
    sent = round_trips
    body = with_limit(BY_NAME["Q1"], 5)
    await statements(cms_api, body)  # meets the caller, and prepares the read on the connection
    # A caller met reads on the read pool (`Database.read_session`): prepare it there too.
    await statements(cms_api, body)
    sent.clear()
    count, _ = await statements(cms_api, body)
    assert count == READ
    assert len(sent) == 1
    # A caller met moments ago: its facts are checked by the access counter (migration 0015).
    # On a session of the read pool, `cms_read_known_scoped` checks them and scopes the session
    # to the caller, and the reads after it there are the read's own statement, gated by the same
    # checks (migration 0025); through a transaction pooler (`DATABASE_POOL_MODE=transaction`)
    # `cms_read_pooled_known` with the text, or once this process has sent it, the call the
    # server session keeps prepared (migrations 0018 and 0021: `cms_read_known_run`).
    assert sent[0].startswith(
        (
            "SELECT cms_read_known_scoped(",
            "SELECT scoped.results FROM (",
            "SELECT cms_read_known_run(",
            "SELECT cms_read_pooled_known(",
        )
    )


async def test_a_read_by_a_caller_not_met_yet_is_one_round_trip_too(
    cms_api: GraphQLClient, blog: list[str], round_trips: list[str]
) -> None:
    """The full opening (credential check, tree walk) runs inside the read's one statement."""
    known_callers.clear()
    sent = round_trips
    count, _ = await statements(cms_api, with_limit(BY_NAME["Q1"], 5))
    assert count == READ
    assert len(sent) == 1
    assert sent[0].startswith(
        (
            "SELECT principal, results FROM cms_read(",
            "SELECT principal, results FROM cms_read_pooled(",
        )
    )
