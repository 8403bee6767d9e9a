"""The API behind a real PgBouncer in transaction mode (`DATABASE_POOL_MODE=transaction`).

PgBouncer gets ONE server connection per database, so consecutive transactions of every client,
whichever tenant they serve, run on the same PostgreSQL session: any setting or role one request
left on it would reach the next. Compiled reads stay prepared on it on purpose (migration 0014):
a read's text is parametrised and tenant-neutral, and its name is a digest of that text. The
server's own pool has several connections (PgBouncer's clients); LISTEN and start-up work go to
the database directly (`DATABASE_DIRECT_URL`).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest

from bench.pgbouncer import Upstream
from server.db.kept import KEPT_PER_SESSION, kept_name
from server.engine.postgres import PostgresAdapter
from server.query import round_trip
from server.testing import GraphQLClient, running_api
from tests.pgbouncer import Bouncer, pgbouncer
from tests.wire import Wire, counting_proxy

CREATE = (
    "mutation($t: String!, $s: String!) {"
    " createPost(data: {title: $t, slug: $s}, publish: true) { id revision } }"
)
UPDATE = "mutation($id: ID!, $v: Int!) { updatePost(id: $id, data: {views: $v}) { id revision } }"
TITLES = "{ allPost(limit: 100) { title } }"
DRAFT_TITLES = '{ allPost(limit: 100, perspective: "draft") { title views } }'
# What a server session holds between transactions: nothing of any request.
PROBE = """select current_setting('app.organization_id', true) as org,
                  current_setting('app.principal', true) as principal,
                  current_setting('app.readable_orgs', true) as readable,
                  current_user as role,
                  current_setting('transaction_read_only') as read_only,
                  current_setting('lock_timeout') as lock_timeout,
                  current_setting('statement_timeout') as statement_timeout,
                  (select coalesce(array_agg(name order by name), '{}')
                   from pg_prepared_statements) as prepared,
                  pg_backend_pid() as pid"""
RECIPE = {
    "type": "document",
    "name": "recipe",
    "title": "Recipe",
    "fields": [{"name": "title", "type": "string", "required": True}],
}
REGISTER = "mutation($d: JSON!) { registerSchemaType(definition: $d) { name } }"


@pytest.fixture(scope="module")
async def bouncer(cms_server_url: str) -> AsyncIterator[Bouncer]:
    async with pgbouncer(cms_server_url, pool_size=1) as running:
        yield running


@pytest.fixture
async def pooled(bouncer: Bouncer, cms_database_url: str) -> AsyncIterator[PostgresAdapter]:
    """The adapter through PgBouncer; its own pool holds several client connections."""
    adapter = PostgresAdapter(
        bouncer.url(cms_database_url),
        direct_url=cms_database_url,
        pool_mode="transaction",
        pool_size=4,
        run_migrations=False,
    )
    await adapter.connect()
    yield adapter
    await adapter.disconnect()


@pytest.fixture
async def cms_api(pooled: PostgresAdapter) -> AsyncIterator[GraphQLClient]:
    async with running_api(adapter=pooled) as client:
        yield client


async def probe(url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(url, statement_cache_size=0)
    try:
        row = await conn.fetchrow(PROBE)
    finally:
        await conn.close()
    assert row is not None
    return dict(row)


def assert_clean(state: dict[str, Any], fresh: dict[str, Any]) -> None:
    """`state` is what a fresh session (`fresh`) shows: a setting made transaction-local reads back
    as '' once set on a session, and as NULL before."""
    for name in ("org", "principal", "readable"):
        assert state[name] in ("", None), name
    # Not `jit`: asyncpg turns it off for the session while it introspects a type it has not met
    # (an enum), and turns it back on only when it found it on; inside a request it finds the
    # request's transaction-local `off`. No tenant state, and requests turn it off anyway.
    for name in ("role", "read_only", "lock_timeout", "statement_timeout"):
        assert state[name] == fresh[name], name
    # Prepared statements may remain, but only compiled reads and kept writes the server named, no
    # more than their caps, and the call that runs the reads (migration 0018): a read or a write
    # is parametrised text without a tenant in it (each call's org, caller and role are
    # transaction-local settings, applied before it runs), named after a digest of that text, so
    # any client that reaches this session may run it. asyncpg's own statements are unnamed
    # without its statement cache, and end with their transaction.
    assert set(state["prepared"]) - {round_trip.POOLED_CALL_NAME} == {
        *reads(state),
        *kept_writes(state),
    }
    assert len(reads(state)) <= round_trip.PREPARED_PER_CONNECTION
    assert len(kept_writes(state)) <= KEPT_PER_SESSION


def reads(state: dict[str, Any]) -> list[str]:
    """The compiled reads prepared on the probed session."""
    return [name for name in state["prepared"] if name.startswith("cms_read_")]


def for_reads(state: dict[str, Any]) -> list[str]:
    """What the probed session keeps prepared for compiled reads: the reads and their call."""
    return sorted(name for name in state["prepared"] if not name.startswith("cms_kept_"))


def kept_writes(state: dict[str, Any]) -> list[str]:
    """The write statements kept prepared on the probed session (migration 0022)."""
    return [name for name in state["prepared"] if name.startswith("cms_kept_")]


async def titles(client: GraphQLClient, key: str, query: str = TITLES) -> set[str]:
    body = await client(query, key=key)
    assert "errors" not in body, body
    return {post["title"] for post in body["data"]["allPost"]}


async def test_interleaved_tenants_on_one_server_connection_see_only_their_own(
    cms_api: GraphQLClient, pooled: PostgresAdapter, bouncer: Bouncer, cms_database_url: str
) -> None:
    through = bouncer.url(cms_database_url)
    fresh = await probe(through)
    orgs = {"a": cms_api.org, "b": await cms_api.org_named("beta")}
    keys = {"a": cms_api.key, "b": await cms_api.key_for(orgs["b"])}
    compiled = cms_api.app.state.graphql
    async with running_api(adapter=pooled, org_slug="gamma", compiled_reads=False) as resolvers:
        # Writes, interleaved: each tenant creates its posts at the same time as the other.
        created = await asyncio.gather(
            *(
                cms_api.data(CREATE, {"t": f"{tenant}-{n}", "s": f"{tenant}-{n}"}, key=keys[tenant])
                for n in range(8)
                for tenant in ("a", "b")
            )
        )
        ids = {
            tenant: [c["createPost"]["id"] for c in created[i::2]] for i, tenant in enumerate("ab")
        }
        expected = {tenant: {f"{tenant}-{n}" for n in range(8)} for tenant in "ab"}

        served = compiled.compiled_served
        reads: list[Any] = []
        for _ in range(6):
            for tenant in "ab":
                reads.append(titles(cms_api, keys[tenant]))  # the compiled path
                reads.append(titles(resolvers, keys[tenant]))  # the resolvers
                reads.append(titles(cms_api, keys[tenant], DRAFT_TITLES))
            reads.append(probe(through))
        # Direct writes (`updatePost { id revision }`), and each tenant reaching for the other's
        # documents, in the same stream.
        writes = [
            cms_api(UPDATE, {"id": ids[tenant][n], "v": n}, key=keys[tenant])
            for n in range(4)
            for tenant in "ab"
        ]
        trespass = [
            cms_api(UPDATE, {"id": ids["b"][0], "v": 99}, key=keys["a"]),
            resolvers(UPDATE, {"id": ids["a"][0], "v": 99}, key=keys["b"]),
        ]
        results = await asyncio.gather(*reads, *writes, *trespass)
        assert compiled.compiled_served - served == 24
        assert resolvers.app.state.graphql.compiled_served == 0

    answers = results[: len(reads)]
    pids = set()
    for n, answer in enumerate(answers):
        if isinstance(answer, dict):
            assert_clean(answer, fresh)
            pids.add(answer["pid"])
            continue
        tenant = "ab"[(n % 7) // 3]
        assert answer == expected[tenant], (n, answer)
    assert len(pids) == 1, "PgBouncer must have used its one server connection throughout"

    for body in results[len(reads) : len(reads) + len(writes)]:
        assert "errors" not in body, body
    for body in results[len(reads) + len(writes) :]:
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"

    conn = await asyncpg.connect(cms_database_url)
    try:
        rows = await conn.fetch(
            "select organization_id, draft_data->>'title' as title,"
            " (draft_data->>'views')::int as views from cms_documents where type = 'post'"
        )
    finally:
        await conn.close()
    stored = {row["title"]: (row["organization_id"], row["views"]) for row in rows}
    for tenant in "ab":
        for n in range(8):
            org, views = stored[f"{tenant}-{n}"]
            assert org == orgs[tenant]
            assert views == (n if n < 4 else None)
    assert_clean(await probe(through), fresh)


async def test_reads_by_id_sent_at_once_are_batched_through_pgbouncer(
    cms_api: GraphQLClient, bouncer: Bouncer, cms_database_url: str
) -> None:
    """Two tenants read each other's posts at once, on PgBouncer's one server session: their
    reads run in batches (`server/query/batching.py`), each tenant's only with its own, and each
    answer is the one the read gets alone."""
    through = bouncer.url(cms_database_url)
    fresh = await probe(through)
    keys = {"a": cms_api.key, "b": await cms_api.key_for(await cms_api.org_named("beta"))}
    ids = []
    for tenant, key in keys.items():
        for n in range(3):
            created = await cms_api.data(
                CREATE, {"t": f"{tenant}-{n}", "s": f"{tenant}-{n}"}, key=key
            )
            ids.append(created["createPost"]["id"])
    query = "query($id: ID!) { post(id: $id) { title } }"
    for key in keys.values():  # callers the process knows: their reads may be batched
        for _ in range(2):
            await cms_api.post(query, {"id": ids[0]}, key=key)
    expected = {
        tenant: [(await cms_api.post(query, {"id": id_}, key=key)).content for id_ in ids]
        for tenant, key in keys.items()
    }
    assert [b"a-" in body for body in expected["a"]] == [True] * 3 + [False] * 3
    assert [b"b-" in body for body in expected["b"]] == [False] * 3 + [True] * 3
    batches = cms_api.app.state.graphql.reads.batches(cms_api.services.adapter.database)
    before = batches.batched
    rounds = [(tenant, id_) for _ in range(3) for tenant in keys for id_ in ids]
    answers = await asyncio.gather(
        *(cms_api.post(query, {"id": id_}, key=keys[tenant]) for tenant, id_ in rounds)
    )
    for (tenant, id_), answer in zip(rounds, answers, strict=True):
        assert answer.content == expected[tenant][ids.index(id_)], (tenant, id_)
    assert batches.batched > before
    assert_clean(await probe(through), fresh)


async def test_compiled_reads_stay_prepared_on_the_session_and_are_bound_by_name(
    cms_api: GraphQLClient, bouncer: Bouncer, cms_database_url: str, round_trips: list[str]
) -> None:
    through = bouncer.url(cms_database_url)
    endpoint = cms_api.app.state.graphql
    await cms_api.data(CREATE, {"t": "Hello", "s": "hello"})
    round_trips.clear()
    assert await titles(cms_api, cms_api.key) == {"Hello"}
    # The first time, the read's text travels (the caller was met a moment ago:
    # `cms_read_pooled_known`, migrations 0015 and 0018), and the session prepares the read and the
    # call that runs it.
    assert [sql.split("(")[0] for sql in round_trips] == ["SELECT cms_read_pooled_known"]
    served = endpoint.compiled_served
    round_trips.clear()
    for _ in range(3):
        assert await titles(cms_api, cms_api.key) == {"Hello"}
    assert endpoint.compiled_served == served + 3
    assert endpoint.compiled_failures == 0
    # Then one round trip each, to the call the session keeps prepared, without the text.
    assert round_trips == [round_trip.POOLED_CALL_SQL] * 3
    # The one server session keeps the one read and the call, whichever client connection ran them.
    state = await probe(through)
    assert len(reads(state)) == 1
    assert for_reads(state) == [round_trip.POOLED_CALL_NAME, *reads(state)]
    health = await cms_api.client.get("/healthz")
    assert health.status_code == 200, health.text


async def forget(through: str, cms_database_url: str, what: str) -> None:
    """Make PgBouncer's one server session lose `what` it keeps prepared."""
    state = await probe(through)
    if what == "a new session":
        conn = await asyncpg.connect(cms_database_url)
        try:
            await conn.execute("SELECT pg_terminate_backend($1)", state["pid"])
        finally:
            await conn.close()
        for _ in range(100):  # PgBouncer drops the server connection once it sees it closed
            await asyncio.sleep(0.05)
            with contextlib.suppress(asyncpg.PostgresError):
                if (await probe(through))["pid"] != state["pid"]:
                    return
        raise AssertionError("PgBouncer kept its terminated server connection")
    statements = {
        "everything": ["ALL"],
        "the call": [round_trip.POOLED_CALL_NAME],
        "the reads": reads(state),
    }[what]
    conn = await asyncpg.connect(through, statement_cache_size=0)
    try:
        await conn.execute("".join(f"DEALLOCATE {name};" for name in statements))
    finally:
        await conn.close()


@pytest.mark.parametrize("what", ["everything", "the call", "the reads", "a new session"])
async def test_a_session_without_the_call_or_the_read_answers_with_the_text_and_prepares_them(
    cms_api: GraphQLClient,
    bouncer: Bouncer,
    cms_database_url: str,
    round_trips: list[str],
    what: str,
) -> None:
    """A server session that lacks what the prepared call needs (PostgreSQL answers its Bind with
    "no such prepared statement") answers through the call with the text, which prepares what is
    missing there: the next read binds the call again."""
    through = bouncer.url(cms_database_url)
    await cms_api.data(CREATE, {"t": "Hello", "s": "hello"})
    for _ in range(2):
        assert await titles(cms_api, cms_api.key) == {"Hello"}
    kept = for_reads(await probe(through))
    await forget(through, cms_database_url, what)
    round_trips.clear()
    assert await titles(cms_api, cms_api.key) == {"Hello"}
    assert [sql.split("(")[0] for sql in round_trips] == [
        "SELECT cms_read_known_run",
        "SELECT cms_read_pooled_known",
    ]
    assert for_reads(await probe(through)) == kept
    round_trips.clear()
    assert await titles(cms_api, cms_api.key) == {"Hello"}
    assert round_trips == [round_trip.POOLED_CALL_SQL]
    assert cms_api.app.state.graphql.compiled_failures == 0


KEPT_PREPARED = """select name, prepare_time from pg_prepared_statements
                    where starts_with(name, 'cms_kept_')"""


async def kept_on_session(through: str) -> dict[str, Any]:
    conn = await asyncpg.connect(through, statement_cache_size=0)
    try:
        return {row["name"]: row["prepare_time"] for row in await conn.fetch(KEPT_PREPARED)}
    finally:
        await conn.close()


@pytest.mark.parametrize("at_once", [True, False])
async def test_document_writes_stay_prepared_on_the_session(
    cms_api: GraphQLClient,
    bouncer: Bouncer,
    cms_database_url: str,
    round_trips: list[str],
    at_once: bool,
) -> None:
    """A document write's statements are prepared on the server session once (migrations 0022,
    0023) and run by name afterwards: their text is not planned again for each write. At once
    (a known caller's save without a unit of work), the read and the write go through
    `cms_write_known_run`; in a unit of work, the lock and the write through `cms_run_kept`."""
    endpoint = cms_api.app.state.graphql
    endpoint.writes_at_once = at_once
    try:
        through = bouncer.url(cms_database_url)
        post = (await cms_api.data(CREATE, {"t": "Kept", "s": "kept"}))["createPost"]["id"]
        await cms_api.data(UPDATE, {"id": post, "v": 1})
        first = await kept_on_session(through)
        assert len(first) >= 2, first  # at least the read (or the lock) and the draft save
        round_trips.clear()
        for views in (2, 3):
            await cms_api.data(UPDATE, {"id": post, "v": views})
        assert await kept_on_session(through) == first, "nothing prepared again"
        function = "cms_write_known_run" if at_once else "cms_run_kept"
        calls = [sql for sql in round_trips if function in sql]
        # In a unit of work, the lock and the write of each save; at once, the write alone, on
        # the post as this process's previous save left it (`server/content/written.py`).
        assert len(calls) == (2 if at_once else 4), round_trips
    finally:
        endpoint.writes_at_once = True
    body = await cms_api.data(
        'query($id: ID!) { post(id: $id, perspective: "draft") { views } }', {"id": post}
    )
    assert body == {"post": {"views": 3}}


@pytest.mark.parametrize("what", ["everything", "a new session"])
async def test_a_session_that_lost_the_kept_writes_prepares_them_again(
    cms_api: GraphQLClient, bouncer: Bouncer, cms_database_url: str, what: str
) -> None:
    through = bouncer.url(cms_database_url)
    post = (await cms_api.data(CREATE, {"t": "Again", "s": "again"}))["createPost"]["id"]
    await cms_api.data(UPDATE, {"id": post, "v": 1})
    kept = set(await kept_on_session(through))
    await forget(through, cms_database_url, what)
    assert not await kept_on_session(through)
    written = await cms_api.data(UPDATE, {"id": post, "v": 2})
    assert written["updatePost"]["id"] == post
    again = set(await kept_on_session(through))
    # The draft save, prepared again (at once on the post as the previous save left it, so
    # without the read).
    assert len(again) >= 1, again
    assert again <= kept
    body = await cms_api.data(
        'query($id: ID!) { post(id: $id, perspective: "draft") { views } }', {"id": post}
    )
    assert body == {"post": {"views": 2}}


async def test_a_session_keeps_at_most_the_cap_of_kept_statements(
    bouncer: Bouncer, cms_database_url: str
) -> None:
    """`cms_run_kept` deallocates the statements prepared longest ago past its cap, and answers
    the same whether it prepared the statement or found it."""
    through = bouncer.url(cms_database_url)
    conn = await asyncpg.connect(through, statement_cache_size=0)
    try:
        names = []
        for n in range(4):
            text = f"SELECT $1::int + {n} AS total, $2::text AS label"
            name = kept_name(text)
            names.append(name)
            for _ in range(2):  # prepared, then found
                row = await conn.fetchrow(
                    "SELECT * FROM cms_run_kept($1, $2, $3, $4) AS t(total int, label text)",
                    name,
                    text,
                    f"EXECUTE {name}(40, 'it''s')",
                    2,
                )
                assert row is not None
                assert dict(row) == {"total": 40 + n, "label": "it's"}
        left = {row["name"] for row in await conn.fetch(KEPT_PREPARED)}
    finally:
        await conn.close()
    assert left == set(names[-2:])


async def test_facts_that_changed_do_not_send_the_text_but_open_in_full(
    cms_api: GraphQLClient, cms_database_url: str, round_trips: list[str]
) -> None:
    """Only "no such prepared statement" sends the read again with its text: the prepared call's
    other errors are its own, and a caller whose facts changed is opened in full."""
    await cms_api.data(CREATE, {"t": "Hello", "s": "hello"})
    for _ in range(2):
        assert await titles(cms_api, cms_api.key) == {"Hello"}
    conn = await asyncpg.connect(cms_database_url)
    try:
        await conn.execute("UPDATE cms_access_epoch SET epoch = epoch + 1")
    finally:
        await conn.close()
    round_trips.clear()
    assert await titles(cms_api, cms_api.key) == {"Hello"}
    assert [sql.split("(")[0] for sql in round_trips] == [
        "SELECT cms_read_known_run",  # CM007: the facts changed
        "SELECT principal, results FROM cms_read_pooled",
    ]


async def test_a_server_session_keeps_at_most_the_cap_of_reads(
    cms_api: GraphQLClient, bouncer: Bouncer, cms_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the cap, the read prepared longest ago on the session goes; answers do not change."""
    monkeypatch.setattr(round_trip, "PREPARED_PER_CONNECTION", 2)
    through = bouncer.url(cms_database_url)
    await cms_api.data(CREATE, {"t": "Hello", "s": "hello"})
    queries = [
        "{ allPost { title } }",
        "{ allPost { slug } }",
        "{ allPost { title slug } }",
        "{ allPost { title } }",
    ]
    kept = []
    for query in queries:
        assert "errors" not in await cms_api(query)
        kept.append(reads(await probe(through)))
    assert [len(names) for names in kept] == [1, 2, 2, 2]
    assert kept[2][0] not in kept[0], "the third read makes the first go"
    assert set(kept[0]) <= set(kept[3]), "asked again, the first is prepared again"
    assert cms_api.app.state.graphql.compiled_failures == 0


async def test_statement_counts_are_the_same_as_direct(
    cms_api: GraphQLClient, cms_adapter: PostgresAdapter, round_trips: list[str]
) -> None:
    """The pooled path runs the statements that the direct one does, and once its connections
    have met them (a description each: asyncpg's statement cache takes as many direct), the same
    round trips."""
    async with running_api(adapter=cms_adapter, org_slug="direct") as direct:
        counts = []
        for client in (direct, cms_api):
            database = client.services.adapter.database
            passes = []
            for turn in range(2):
                seen = []
                created = await client.data(
                    CREATE, {"t": f"Counted {turn}", "s": f"counted-{turn}"}
                )
                post = created["createPost"]["id"]
                for query, variables in [
                    (TITLES, None),
                    (TITLES, None),
                    (DRAFT_TITLES, None),
                    ("query($id: ID!) { post(id: $id) { title author { name } } }", {"id": post}),
                    (UPDATE, {"id": post, "v": 3}),
                    ("mutation($id: ID!) { publishPost(id: $id) { id title } }", {"id": post}),
                    (CREATE, {"t": f"More {turn}", "s": f"more-{turn}"}),
                ]:
                    statements, sent = database.statements, len(round_trips)
                    body = await client(query, variables)
                    assert "errors" not in body, body
                    seen.append((database.statements - statements, len(round_trips) - sent))
                passes.append(seen)
            counts.append(passes)
    (direct_first, direct_warm), (pooled_first, pooled_warm) = counts
    assert [s for s, _ in direct_first] == [s for s, _ in pooled_first]
    assert direct_warm == pooled_warm
    assert direct_warm[0] == (1, 1)  # a compiled read: one statement, one round trip


async def test_a_schema_change_reaches_another_instance_through_pgbouncer(
    cms_server_url: str, cms_database_url: str
) -> None:
    # Two server connections: registering a type holds the request's transaction while the
    # change commits in a transaction of its own (docs/scaling.md).
    async with pgbouncer(cms_server_url, pool_size=2) as wider:
        through = wider.url(cms_database_url)
        # Started as a deployment starts: migrations and RLS set-up over the direct URL.
        pooled: dict[str, Any] = {
            "database_pool_mode": "transaction",
            "database_direct_url": cms_database_url,
        }
        async with (
            running_api(through, **pooled) as one,
            running_api(through, org_slug="other", **pooled) as two,
        ):
            assert "recipe" not in two.services.model.registry
            admin = await one.key_for(one.org, instance_admin=True)
            await one.data(REGISTER, {"d": RECIPE}, key=admin)
            for _ in range(20):
                if "recipe" in two.services.model.registry:
                    break
                await asyncio.sleep(0.05)
            assert "recipe" in two.services.model.registry
            await one.data('mutation { createRecipe(data: {title: "Soup"}, publish: true) { id } }')
            # The other instance serves the new type, through PgBouncer, on the compiled path.
            endpoint = two.app.state.graphql
            served = endpoint.compiled_served
            key = await two.key_for(one.org)
            listed = await two.data("{ allRecipe { title } }", key=key)
            assert listed == {"allRecipe": [{"title": "Soup"}]}
            assert endpoint.compiled_served == served + 1

            # asyncpg's unnamed statements (no statement cache, and a compiled read's call
            # described once per connection) hold across the two server connections: many
            # clients, reads and writes at once, and not one error.
            bodies = await asyncio.gather(
                *(two("{ allRecipe { title } }", key=key) for _ in range(20)),
                *(one(CREATE, {"t": f"Post {n}", "s": f"post-{n}"}) for n in range(10)),
                *(one(TITLES) for _ in range(10)),
            )
            assert [body for body in bodies if "errors" in body] == []


async def test_the_probe_sees_what_a_session_setting_leaves(
    bouncer: Bouncer, cms_database_url: str
) -> None:
    """The leak check can fail: a session-level setting shows on PgBouncer's one server session."""
    through = bouncer.url(cms_database_url)
    fresh = await probe(through)
    conn = await asyncpg.connect(through, statement_cache_size=0)
    try:
        await conn.execute("select set_config('app.organization_id', $1, false)", str(uuid.uuid4()))
        with pytest.raises(AssertionError, match="org"):
            assert_clean(await probe(through), fresh)
    finally:
        await conn.close()


def via(wire: Wire, upstream: Upstream, database: str = "") -> str:
    """A URL for `upstream`'s user (and password) and `database`, through the proxy `wire`."""
    password = f":{quote(upstream.password, safe='')}" if upstream.password else ""
    user = quote(upstream.user, safe="")
    return f"postgresql://{user}{password}@{wire.host}:{wire.port}/{database}"


@asynccontextmanager
async def api_on(url: str, org_slug: str = "acme", **options: Any) -> AsyncIterator[GraphQLClient]:
    """The API on one pooled connection to `url`, without a scheduler polling in between."""
    adapter = PostgresAdapter(url, pool_size=1, run_migrations=False, **options)
    await adapter.connect()
    try:
        async with running_api(
            adapter=adapter, org_slug=org_slug, scheduler_enabled=False
        ) as client:
            yield client
    finally:
        await adapter.disconnect()


async def five_reads(client: GraphQLClient, *wires: Wire) -> None:
    """Five compiled reads, counted on `wires`, after three that describe the call (once per
    client connection) and prepare the read on the server session (once per session)."""
    await client.data(CREATE, {"t": "Hello", "s": "hello"})
    for _ in range(3):
        assert await titles(client, client.key) == {"Hello"}
    for wire in wires:
        wire.clear()
    for _ in range(5):
        assert await titles(client, client.key) == {"Hello"}


@asynccontextmanager
async def api_behind_counted_pgbouncer(
    cms_server_url: str, cms_database_url: str
) -> AsyncIterator[tuple[GraphQLClient, Wire, Wire]]:
    """The API through PgBouncer (one server connection), with what the API sends the pooler and
    what the pooler sends the server counted: (the API, to the pooler, to the server)."""
    server = Upstream.of(cms_server_url)
    # The API reaches PgBouncer through one proxy, PgBouncer the server through the other.
    async with (
        counting_proxy(server.host, server.port) as to_server,
        pgbouncer(via(to_server, server), pool_size=1) as bouncer,
        counting_proxy("127.0.0.1", bouncer.port) as to_pooler,
    ):
        pooler = Upstream.of(bouncer.url(cms_database_url))
        through = via(to_pooler, pooler, pooler.database)
        async with api_on(through, direct_url=cms_database_url, pool_mode="transaction") as client:
            yield client, to_pooler, to_server


async def test_a_compiled_read_is_one_round_trip_on_each_side_of_pgbouncer(
    cms_server_url: str, cms_database_url: str
) -> None:
    """On the wire: a compiled read sends the pooler one Bind, Execute and Sync of the call the
    server session keeps prepared (no Parse, no text), and the pooler sends the server the same
    and nothing more (no `SET client_encoding` of its own before the transaction), as a direct
    connection's read is one round trip to the server."""
    async with api_behind_counted_pgbouncer(cms_server_url, cms_database_url) as (
        client,
        to_pooler,
        to_server,
    ):
        await five_reads(client, to_pooler, to_server)
        one_each = {"B": 5, "E": 5, "S": 5}
        assert to_pooler.counts == one_each, to_pooler.sent
        assert to_server.counts == one_each, to_server.sent
        assert to_pooler.round_trips == to_server.round_trips == 5
        for wire in (to_pooler, to_server):
            assert round_trip.POOLED_CALL_NAME.encode() in wire.data
            assert b"cms_documents" not in wire.data  # the read's text
            assert b"cms_read_pooled" not in wire.data  # the call's
            assert b"cms_read_known_run" not in wire.data


async def test_a_compiled_read_is_one_round_trip_direct(cms_database_url: str) -> None:
    """The same read on a session of its own: Bind, Execute and Sync of the prepared call."""
    server = Upstream.of(cms_database_url)
    async with (
        counting_proxy(server.host, server.port) as wire,
        api_on(via(wire, server, server.database)) as client,
    ):
        await five_reads(client, wire)
        assert wire.counts == {"B": 5, "E": 5, "S": 5}, wire.sent
        assert wire.round_trips == 5


async def updates(client: GraphQLClient, *wires: Wire) -> None:
    """Two saves of a draft, counted on `wires`, after three that describe their statements."""
    post = (await client.data(CREATE, {"t": "Saved", "s": "saved"}))["createPost"]["id"]
    for views in range(3):
        await client.data(UPDATE, {"id": post, "v": views})
    for wire in wires:
        wire.clear()
    for views in range(3, 5):
        assert (await client.data(UPDATE, {"id": post, "v": views}))["updatePost"]["id"] == post


async def test_a_write_takes_the_round_trips_through_pgbouncer_it_takes_direct(
    cms_server_url: str, cms_database_url: str
) -> None:
    """Outside a compiled read, each statement through the pooler is one round trip once its
    description is kept (no Parse, Describe and Sync of its own first): a save costs the server
    the round trips it costs direct."""
    async with api_behind_counted_pgbouncer(cms_server_url, cms_database_url) as (
        client,
        to_pooler,
        to_server,
    ):
        await updates(client, to_pooler, to_server)
        pooled = to_pooler.round_trips
        assert to_pooler.counts["D"] == 0, to_pooler.sent  # nothing described again
        assert to_server.round_trips == pooled
    direct_server = Upstream.of(cms_database_url)
    async with (
        counting_proxy(direct_server.host, direct_server.port) as wire,
        api_on(via(wire, direct_server, direct_server.database), org_slug="direct") as client,
    ):
        await updates(client, wire)
        assert pooled == wire.round_trips, (to_pooler.sent, wire.sent)
