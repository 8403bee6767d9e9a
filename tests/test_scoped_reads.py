"""Reads on sessions scoped to their caller (the read pool, migration 0025).

A known caller's compiled reads run on the read pool (`Database.read_session`), whose sessions
start as the request role and read-only. `cms_read_known_scoped` leaves a session's organization
settings made for its caller, and the caller's next read there is the read's own statement,
gated: it reads nothing unless the session is scoped to that caller and the caller's facts still
hold. These tests run on PostgreSQL directly (a transaction pooler keeps no session's settings,
and there reads go as before, `tests/test_pgbouncer.py`), with one connection in each pool, so
that every read meets the session the one before it left.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest

from server.access.credentials import secret_digest
from server.access.opening import known_callers
from server.db.tenancy import request_role
from server.query import round_trip
from server.services import database_adapter
from server.testing import GraphQLClient, running_api
from tests.both_paths import both_paths, in_order
from tests.test_graphql_access import code

pytestmark = pytest.mark.usefixtures("cheap_hashing")

# The read statements, by how they begin.
SCOPED = "SELECT scoped.results FROM ("
SCOPING = "SELECT cms_read_known_scoped("
KNOWN = "SELECT cms_read_known("
FULL = "SELECT principal, results FROM cms_read("
READS = (SCOPED, SCOPING, KNOWN, FULL)
TITLES = '{ allPost(sort: ["title"]) { title } }'

POSTS = [
    {
        "title": "Alpha",
        "slug": "alpha",
        "views": 10,
        "rating": 0.1,
        "featured": True,
        "tags": ["a", "b,c"],
        "publishedDate": "2024-01-02T03:04:05Z",
        "eventDate": "2024-02-29",
    },
    {
        "title": "Beta",
        "slug": "beta",
        "views": 500,
        "rating": 2.5,
        "featured": False,
        "tags": ["b"],
        "publishedDate": "2025-06-01T00:00:00Z",
        "eventDate": "2025-01-01",
    },
    {"title": "Gamma 'quoted' \\ 100%", "slug": "gamma", "views": 2**31 - 1, "rating": 5},
]
# Every kind of bind value a read sends: numbers (a float whose binary expansion is not its
# text, integers at the edge of int4), booleans, dates, datetimes, ids, lists, text with quotes,
# backslashes and LIKE's wildcards, statuses, and a page.
WHERE = [
    "{ allPost(where: {rating: {equals: 0.1}}) { title rating } }",
    "{ allPost(where: {rating: {in: [0.1, 5]}}) { title } }",
    "{ allPost(where: {rating: {greater_than_equal: 0.1, less_than: 2.5}}) { title } }",
    "{ allPost(where: {views: {greater_than: 499}}) { title views } }",
    "{ allPost(where: {views: {equals: 2147483647}}) { title } }",
    "{ allPost(where: {featured: {equals: false}}) { title } }",
    '{ allPost(where: {eventDate: {equals: "2024-02-29"}}) { title eventDate } }',
    '{ allPost(where: {publishedDate: {greater_than: "2024-01-02T03:04:05+00:00"}}) { title } }',
    '{ allPost(where: {publishedDate: {equals: "2024-01-02T04:04:05+01:00"}}) { title } }',
    '{ allPost(where: {tags: {in: ["b,c"]}}) { title tags } }',
    "{ allPost(where: {title: {contains: \"'quoted' \\\\ 100%\"}}) { title } }",
    '{ allPost(where: {title: {like: "Be%"}}) { title } }',
    '{ allPost(where: {status: {in: ["published", "draft"]},'
    ' createdAt: {less_than: "2999-01-01T00:00:00Z"}}, limit: 2, offset: 1) { title } }',
    "query($id: ID!) { post(id: $id) { title } allPost(where: {id: {in: [$id]}}) { title } }",
]


@pytest.fixture
async def api(cms_database_url: str) -> AsyncIterator[GraphQLClient]:
    """The API on PostgreSQL directly, one connection in each pool; posts of `POSTS` published."""
    async with api_with(cms_database_url, read_pool_size=1) as client:
        yield client


@asynccontextmanager
async def api_with(
    url: str, *, read_pool_size: int, enable_rls: bool = True
) -> AsyncIterator[GraphQLClient]:
    adapter = database_adapter(
        url,
        pool_size=1,
        read_pool_size=read_pool_size,
        enable_rls=enable_rls,
        run_migrations=False,
    )
    await adapter.connect()
    try:
        async with running_api(adapter=adapter) as client:
            async with client.services.api.system_context(client.org) as ctx:
                for data in POSTS:
                    await client.services.api.collections.post.create(ctx, data, publish=True)
            known_callers.clear()
            yield client
    finally:
        await adapter.disconnect()


async def read(
    gql: GraphQLClient,
    round_trips: list[str],
    query: str = TITLES,
    variables: dict[str, Any] | None = None,
    key: str | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The response and the read statements that served it, in order (how each begins)."""
    round_trips.clear()
    response = await gql.post(query, variables, key=gql.key if key is None else key)
    payload: dict[str, Any] = response.json()
    return payload, [start for sql in round_trips for start in READS if sql.startswith(start)]


async def scoped(gql: GraphQLClient, round_trips: list[str], key: str) -> dict[str, Any]:
    """Read `TITLES` until the read is the gated statement on a session scoped to `key`'s caller."""
    for _ in range(4):
        payload, sent = await read(gql, round_trips, key=key)
        if sent == [SCOPED]:
            return payload
    raise AssertionError(f"never read on a scoped session: {sent}")


def titles(payload: dict[str, Any]) -> list[str]:
    assert "errors" not in payload, payload
    return [post["title"] for post in payload["data"]["allPost"]]


async def session_scope(gql: GraphQLClient) -> str:
    """The `app.scope` of the read pool's one session."""
    database = gql.services.adapter.database
    async with await database.read_session(_role(gql)) as conn:
        value: str = await conn.fetchval("SELECT current_setting('app.scope', true)")
    return value


def _role(gql: GraphQLClient) -> str | None:
    """The role the read pool's sessions start as (None: the connecting role)."""
    role = request_role(gql.services.adapter.tenancy)
    return None if role == "none" else role


async def test_the_third_read_of_a_caller_is_the_reads_own_statement(
    api: GraphQLClient, round_trips: list[str]
) -> None:
    """The full opening, then the known caller's first read on the read pool (which prepares the
    read there), then `cms_read_known_scoped`, then the read itself: one statement each time."""
    seen = []
    answers = []
    for _ in range(5):
        payload, sent = await read(api, round_trips)
        seen += sent
        answers.append(titles(payload))
    assert seen == [FULL, KNOWN, SCOPING, SCOPED, SCOPED]
    assert answers == [["Alpha", "Beta", "Gamma 'quoted' \\ 100%"]] * 5


@pytest.mark.parametrize("query", WHERE)
async def test_a_scoped_read_binds_every_value_as_the_other_paths_do(
    api: GraphQLClient, round_trips: list[str], query: str
) -> None:
    """The gated statement binds the read's values as the driver sends them, where the other
    compiled paths write them as literals: every kind finds what they find, and what the
    resolvers find."""
    async with api.services.api.system_context(api.org) as ctx:
        alpha = await api.services.api.collections.post.find(
            ctx, where={"slug": {"equals": "alpha"}}
        )
    variables = {"id": str(alpha.items[0]["id"])} if "$id" in query else None
    answers = []
    for _ in range(4):
        payload, sent = await read(api, round_trips, query, variables)
        answers.append((in_order((await api.post(query, variables)).content), sent))
        assert "errors" not in payload, payload
    assert answers[-1][1] == [SCOPED]
    compiled, reference = await both_paths(api, query, variables, api.key)
    assert in_order(compiled.content) == in_order(reference.content)
    assert all(answer == in_order(compiled.content) for answer, _ in answers)
    data = compiled.json()["data"]
    assert any(value for value in data.values()), data  # each filter finds something


async def test_callers_of_other_organizations_take_turns_on_one_session(
    api: GraphQLClient, round_trips: list[str]
) -> None:
    """Each read sees its own caller's organizations, whoever the session served before."""
    child = await api.org_named("child", api.org)
    sibling = await api.org_named("sibling", api.org)
    other = await api.org_named("other")
    keys = {"acme": api.key}
    for name, org in (("child", child), ("sibling", sibling), ("other", other)):
        keys[name] = await api.key_for(org)
        await api.data(
            "mutation($t: String!) { createPost(data: {title: $t, slug: $t}, publish: true) { id } }",
            {"t": name},
            key=keys[name],
        )
    everything = ["Alpha", "Beta", "Gamma 'quoted' \\ 100%", "child", "sibling"]
    expected = {"acme": everything, "child": ["child"], "sibling": ["sibling"], "other": ["other"]}
    for name in keys:
        assert titles(await scoped(api, round_trips, keys[name])) == expected[name]
    for name in ["child", "acme", "other", "child", "sibling", "sibling", "acme", "acme"]:
        payload, sent = await read(api, round_trips, key=keys[name])
        assert titles(payload) == expected[name], name
        assert len(sent) == 1, sent


async def test_the_gate_not_the_process_decides_which_caller_a_session_serves(
    api: GraphQLClient, round_trips: list[str]
) -> None:
    """A connection this process believes scoped to one caller while its session serves another
    reads nothing through the gate, and is scoped again: the parent's scope on a child's session
    does not widen the child's read, nor the child's narrow the parent's."""
    child = await api.org_named("child", api.org)
    child_key = await api.key_for(child)
    await api.data(
        'mutation { createPost(data: {title: "Child", slug: "child"}, publish: true) { id } }',
        key=child_key,
    )
    parent_titles = titles(await scoped(api, round_trips, api.key))
    parent_scope = await session_scope(api)
    assert titles(await scoped(api, round_trips, child_key)) == ["Child"]
    child_scope = await session_scope(api)
    assert parent_scope != child_scope
    database = api.services.adapter.database
    for believed, key, expected in (
        (parent_scope, api.key, parent_titles),  # the session serves the child
        (child_scope, child_key, ["Child"]),  # the session serves the parent by now
    ):
        async with await database.read_session(_role(api)) as conn:
            conn.scope.name = believed
        payload, sent = await read(api, round_trips, key=key)
        assert sent == [SCOPED, SCOPING], sent
        assert titles(payload) == expected


async def test_a_key_revoked_after_its_session_was_scoped_is_refused(
    api: GraphQLClient, round_trips: list[str]
) -> None:
    key = await api.key_for(api.org, role="viewer")
    await scoped(api, round_trips, key)
    async with api.services.adapter.instance_transaction() as tx:
        await tx.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE key_hash = $1", secret_digest(key)
        )
    payload, sent = await read(api, round_trips, key=key)
    assert code(payload) == "UNAUTHENTICATED"
    # The gate finds the access counter moved, the function refuses the facts, and the full
    # opening refuses the key.
    assert sent == [SCOPED, SCOPING, FULL]


async def test_a_read_pool_session_reads_as_the_request_role_and_writes_nothing(
    api: GraphQLClient, round_trips: list[str]
) -> None:
    await scoped(api, round_trips, api.key)
    adapter = api.services.adapter
    database = adapter.database
    async with await database.read_session(_role(api)) as conn:
        role = await conn.fetchval("SELECT current_user")
        await conn.execute("RESET ROLE")
        assert await conn.fetchval("SELECT current_user") == role
        if adapter.tenancy.request_role is not None:
            assert role == adapter.tenancy.request_role
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await conn.execute(
                "UPDATE cms_documents SET revision = revision + 1 WHERE id = $1", uuid.uuid4()
            )
    payload, sent = await read(api, round_trips)
    assert sent == [SCOPED]
    assert titles(payload) == ["Alpha", "Beta", "Gamma 'quoted' \\ 100%"]


async def test_a_read_too_long_to_keep_prepared_is_scoped_each_time(
    api: GraphQLClient, round_trips: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A statement longer than the read pool keeps prepared would be parsed again with each run,
    a round trip more: such a read runs through `cms_read_known_scoped` every time, one statement."""
    monkeypatch.setattr(round_trip, "READ_STATEMENT_MAX", 100)
    answers = []
    sent = []
    for _ in range(5):
        payload, statements = await read(api, round_trips)
        answers.append(titles(payload))
        sent += statements
    assert sent == [FULL, KNOWN, SCOPING, SCOPING, SCOPING]
    assert answers == [["Alpha", "Beta", "Gamma 'quoted' \\ 100%"]] * 5


async def test_without_a_read_pool_known_callers_read_on_the_shared_pool(
    cms_database_url: str, round_trips: list[str]
) -> None:
    """`DB_READ_POOL_SIZE=0`: a known caller's read is `cms_read_known_run` on the pool every
    request shares, whose settings are the statement's own, and no session is scoped."""
    async with api_with(cms_database_url, read_pool_size=0) as client:
        sent = []
        for _ in range(4):
            payload, _ = await read(client, round_trips)
            assert titles(payload) == ["Alpha", "Beta", "Gamma 'quoted' \\ 100%"]
            sent += [sql.split("(")[0] for sql in round_trips if "cms_read" in sql]
        # One connection. The full opening prepared the read there as it merges organizations'
        # pages; the known caller reads one organization, a text of its own (`tenant_rows`),
        # which its first read prepares, and the next ones run.
        assert sent == [
            "SELECT principal, results FROM cms_read",
            "SELECT cms_read_known",
            "SELECT cms_read_known_run",
            "SELECT cms_read_known_run",
        ]
        async with client.services.adapter.database.session() as conn:
            assert await conn.fetchval("SELECT current_setting('app.scope', true)") in (None, "")


async def test_single_tenant_reads_are_scoped_too(
    cms_database_url: str, round_trips: list[str]
) -> None:
    """`ENABLE_RLS=false`: no request role, so the read pool's sessions keep the connecting role
    (the gate then checks no role), and the reads go the same way."""
    async with api_with(cms_database_url, read_pool_size=1, enable_rls=False) as client:
        assert _role(client) is None
        sent = []
        for _ in range(5):
            payload, statements = await read(client, round_trips)
            assert titles(payload) == ["Alpha", "Beta", "Gamma 'quoted' \\ 100%"]
            sent += statements
        assert sent == [FULL, KNOWN, SCOPING, SCOPED, SCOPED]
        assert client.app.state.graphql.compiled_failures == 0
