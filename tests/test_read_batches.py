"""Reads of documents by id that one caller sends at once, run as one statement (`batching.py`).

Each test reads concurrently (the requests as tasks of one event loop, as uvicorn runs them) and
compares every answer with the same read sent alone, byte for byte: a batch must answer exactly
what its reads answer one by one, for every caller only what that caller may read.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest

from server.query.batching import ReadBatches, batched_sql
from server.query.run import Statement
from server.testing import GraphQLClient
from tests.test_scoped_reads import SCOPED, api_with, read

pytestmark = pytest.mark.usefixtures("cheap_hashing")

POST = (
    "query($id: ID!) { post(id: $id, depth: 2) { _id title author { name mentor { name } }"
    " categories { title parent { title } } } }"
)
DRAFT_POST = "query($id: ID!) { post(id: $id, perspective: draft) { _id title } }"
MUTATE = "mutation($d: PostDataInput!, $p: Boolean) { createPost(data: $d, publish: $p) { _id } }"


@pytest.fixture
async def api(cms_database_url: str) -> AsyncIterator[GraphQLClient]:
    """The API on PostgreSQL directly, two connections in the read pool."""
    async with api_with(cms_database_url, read_pool_size=2) as client:
        yield client


def batches(gql: GraphQLClient) -> ReadBatches:
    reads = gql.app.state.graphql.reads
    return reads.batches(gql.services.adapter.database)  # type: ignore[no-any-return]


async def create_posts(gql: GraphQLClient, key: str, names: list[str]) -> list[str]:
    """Published posts with an author (whose mentor is the author before) and a category."""
    ids = []
    mentor = None
    for name in names:
        author = {"name": f"{name} author"}
        if mentor is not None:
            author["mentor"] = mentor
        mentor = await _create(gql, key, "Author", author)
        category = await _create(gql, key, "Category", {"title": f"{name} category"})
        ids.append(
            await _create(
                gql,
                key,
                "Post",
                {
                    "title": name,
                    "slug": name,
                    "author": mentor,
                    "categories": [category],
                },
            )
        )
    return ids


async def _create(gql: GraphQLClient, key: str, type_name: str, data: dict[str, Any]) -> str:
    mutation = (
        f"mutation($d: {type_name}DataInput!)"
        f" {{ create{type_name}(data: $d, publish: true) {{ _id }} }}"
    )
    created = await gql.data(mutation, {"d": data}, key=key)
    return str(created[f"create{type_name}"]["_id"])


def _title(body: bytes) -> str | None:
    post = json.loads(body)["data"]["post"]
    return None if post is None else str(post["title"])


async def alone(gql: GraphQLClient, key: str, query: str, ids: list[str]) -> list[bytes]:
    """Each read sent by itself, one after the other: no batch forms."""
    before = batches(gql).batches
    bodies = [(await gql.post(query, {"id": id_}, key=key)).content for id_ in ids]
    assert batches(gql).batches == before
    return bodies


async def together(gql: GraphQLClient, key: str, query: str, ids: list[str]) -> list[bytes]:
    """The reads sent at once, as tasks of this event loop."""
    responses = await asyncio.gather(*(gql.post(query, {"id": id_}, key=key) for id_ in ids))
    assert all(response.status_code == 200 for response in responses)
    return [response.content for response in responses]


async def known(gql: GraphQLClient, round_trips: list[str], key: str) -> None:
    """Read until the caller's reads are the gated statement on a session scoped to it."""
    for _ in range(4):
        _, sent = await read(gql, round_trips, POST, {"id": str(uuid.uuid4())}, key=key)
        if sent == [SCOPED]:
            return
    raise AssertionError(f"never read on a scoped session: {sent}")


async def test_reads_sent_at_once_answer_as_each_alone_in_fewer_statements(
    api: GraphQLClient, round_trips: list[str]
) -> None:
    ids = await create_posts(api, api.key, ["one", "two", "three", "four"])
    draft = (await api.data(MUTATE, {"d": {"title": "draft", "slug": "d"}, "p": False}))[
        "createPost"
    ]["_id"]
    # Found, a draft (null published), missing, and the same ids as other spellings.
    wanted = [*ids, draft, str(uuid.uuid4()), ids[0].upper(), ids[1].replace("-", ""), ids[2]]
    await known(api, round_trips, api.key)
    expected = await alone(api, api.key, POST, wanted)
    posts = [json.loads(body)["data"]["post"] for body in expected]
    assert posts[0]["author"] == {"name": "one author", "mentor": None}
    assert posts[1]["author"]["mentor"] == {"name": "one author"}  # two levels down
    assert posts[4] is None  # a draft, read as published
    assert posts[5] is None  # no such post
    assert posts[6:8] == posts[0:2]
    statements = api.services.adapter.database.statements
    before = batches(api).batched
    assert await together(api, api.key, POST, wanted) == expected
    assert batches(api).batched - before >= 2
    assert api.services.adapter.database.statements - statements < len(wanted)
    # Another read (another text) at the same time: batches of its own.
    mixed = [*wanted, *ids]
    queries = [POST] * len(wanted) + [DRAFT_POST] * len(ids)
    responses = await asyncio.gather(
        *(api.post(q, {"id": id_}) for q, id_ in zip(queries, mixed, strict=True))
    )
    assert [r.content for r in responses[: len(wanted)]] == expected
    assert [r.content for r in responses[len(wanted) :]] == await alone(
        api, api.key, DRAFT_POST, ids
    )


async def test_callers_of_other_organizations_never_share_a_batch(
    api: GraphQLClient, round_trips: list[str]
) -> None:
    """A parent, its child and another tenant read the same ids at once: each sees only what
    it may read (the child nothing of its parent's, at any depth), as when reading alone."""
    child = await api.org_named("child", api.org)
    other = await api.org_named("other")
    keys = {"parent": api.key, "child": await api.key_for(child), "other": await api.key_for(other)}
    ids = await create_posts(api, api.key, ["p1", "p2"])
    ids += await create_posts(api, keys["child"], ["c1", "c2"])
    ids += await create_posts(api, keys["other"], ["o1"])
    for key in keys.values():
        await known(api, round_trips, key)
    expected = {name: await alone(api, key, POST, ids) for name, key in keys.items()}
    seen = {name: [_title(body) for body in bodies] for name, bodies in expected.items()}
    assert seen == {
        "parent": ["p1", "p2", "c1", "c2", None],
        "child": [None, None, "c1", "c2", None],
        "other": [None, None, None, None, "o1"],
    }
    before = batches(api).batched
    # In turns: a caller's second round finds the sessions its first one scoped, and batches.
    for name in [*keys, *keys]:
        for _ in range(2):
            assert await together(api, keys[name], POST, ids) == expected[name], name
    assert batches(api).batched > before
    # All at once, whichever session each batch meets.
    names = list(keys) * 3
    answers = await asyncio.gather(*(together(api, keys[name], POST, ids) for name in names))
    for name, answer in zip(names, answers, strict=True):
        assert answer == expected[name], name


async def test_a_caller_whose_access_changed_is_answered_as_alone(
    api: GraphQLClient, round_trips: list[str]
) -> None:
    """A batch whose caller's facts no longer hold answers nothing: each read then runs alone,
    which finds the facts changed and opens in full."""
    ids = await create_posts(api, api.key, ["one", "two"])
    await known(api, round_trips, api.key)
    expected = await alone(api, api.key, POST, ids * 3)
    async with api.services.api.system_context(api.org) as ctx:
        await ctx.tx.execute("UPDATE cms_access_epoch SET epoch = epoch + 1")
    before = batches(api).batches
    assert await together(api, api.key, POST, ids * 3) == expected
    assert batches(api).batches == before  # the batch found the facts changed: each ran alone


@pytest.mark.parametrize("most", [1, 2])
async def test_read_batch_max_bounds_a_batch(
    api: GraphQLClient, round_trips: list[str], most: int
) -> None:
    ids = await create_posts(api, api.key, ["one", "two", "three"])
    await known(api, round_trips, api.key)
    expected = await alone(api, api.key, POST, ids * 2)
    batcher = batches(api)
    batcher.most = most
    statements = api.services.adapter.database.statements
    assert await together(api, api.key, POST, ids * 2) == expected
    ran = api.services.adapter.database.statements - statements
    assert ran == 6 if most == 1 else 3 <= ran < 6


class LockWaiters:
    """The backends of the test's database that wait for a lock (a separate session, so that
    each count is read afresh)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def count(self) -> int:
        return int(
            await self.conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )

    async def until(self, n: int) -> None:
        for _ in range(500):
            if await self.count() >= n:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"never {n} reads waiting in PostgreSQL")


@asynccontextmanager
async def documents_locked(url: str) -> AsyncIterator[LockWaiters]:
    """`cms_documents` locked by another session until the block ends: every read of it waits
    in PostgreSQL meanwhile."""
    holder = await asyncpg.connect(url)
    watcher = await asyncpg.connect(url)
    try:
        async with holder.transaction():
            await holder.execute("LOCK TABLE cms_documents IN ACCESS EXCLUSIVE MODE")
            yield LockWaiters(watcher)
    finally:
        await holder.close()
        await watcher.close()


async def test_reads_arriving_while_one_of_their_kind_runs_depart_together_when_it_lands(
    api: GraphQLClient, round_trips: list[str], cms_database_url: str
) -> None:
    ids = await create_posts(api, api.key, ["one", "two", "three"])
    await known(api, round_trips, api.key)
    expected = await alone(api, api.key, POST, ids)
    batcher = batches(api)
    batcher.wait = 60.0  # here only the first read's landing ends the wait
    before = (batcher.batches, batcher.batched)
    async with documents_locked(cms_database_url) as waiters:
        first = asyncio.create_task(api.post(POST, {"id": ids[0]}, key=api.key))
        await waiters.until(1)
        rest = [asyncio.create_task(api.post(POST, {"id": id_}, key=api.key)) for id_ in ids[1:]]
        # Long enough for them to reach PostgreSQL too, had they not waited for the first.
        await asyncio.sleep(0.3)
        assert await waiters.count() == 1
    responses = await asyncio.gather(first, *rest)
    assert [response.content for response in responses] == expected
    # The two that waited ran as one batch.
    assert (batcher.batches, batcher.batched) == (before[0] + 1, before[1] + 2)


async def test_a_read_waits_for_the_running_one_of_its_kind_no_longer_than_the_wait(
    api: GraphQLClient, round_trips: list[str], cms_database_url: str
) -> None:
    ids = await create_posts(api, api.key, ["one", "two"])
    await known(api, round_trips, api.key)
    expected = await alone(api, api.key, POST, ids)
    batcher = batches(api)
    batcher.wait = 0.05
    async with documents_locked(cms_database_url) as waiters:
        first = asyncio.create_task(api.post(POST, {"id": ids[0]}, key=api.key))
        await waiters.until(1)
        second = asyncio.create_task(api.post(POST, {"id": ids[1]}, key=api.key))
        # The second reaches PostgreSQL while the first still waits there.
        await waiters.until(2)
    responses = await asyncio.gather(first, second)
    assert [response.content for response in responses] == expected


def test_the_batched_statement_takes_each_parameter_from_its_row() -> None:
    read = "SELECT ARRAY[(SELECT x FROM t WHERE a = $1 AND b = '$2 isn''t $1' AND c = $10)]"
    types = tuple('"pg_catalog"."int4"' for _ in range(10))
    sql = batched_sql(read, types)
    assert "a = cms_b.p1 AND b = '$2 isn''t $1' AND c = cms_b.p10)" in sql
    assert 'unnest((SELECT $1::"pg_catalog"."int4"[]),' in sql
    assert "cms_b(p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, cms_i)" in sql
    # The texts row after row, each row's in its read's order.
    assert sql.endswith("ORDER BY cms_b.cms_i, cms_t.n)")


async def test_reads_that_joined_a_batch_whose_first_read_was_cancelled_run_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first read of a batch runs it for all; cancelled while it does (its client gone), the
    reads that joined it are told at once to run alone, not left waiting."""
    held = asyncio.Event()

    async def run_until_cancelled(*_: Any, **__: Any) -> None:
        held.set()
        await asyncio.Event().wait()

    batches = ReadBatches(database=None, most=16)  # type: ignore[arg-type]
    monkeypatch.setattr(batches, "_run", run_until_cancelled)
    statement = Statement(sql="SELECT ARRAY[$1::text]", args=[], keys=["post"], name="cms_read_x")
    statement.id_arguments.append(("id", 0))
    opening = (None,) * 5 + (True, 1000, "cms_request")

    def read(n: int) -> Any:
        one = Statement(**{**statement.__dict__, "args": [str(n)]})
        return batches.read("facts", opening, one, cancel_after=None, lock_timeout_ms=0)

    first = asyncio.create_task(read(0))
    joined = [asyncio.create_task(read(n)) for n in (1, 2)]
    await held.wait()
    first.cancel()
    assert await asyncio.wait_for(asyncio.gather(*joined), timeout=5) == [None, None]
    with pytest.raises(asyncio.CancelledError):
        await first
