"""Read replicas against a real streaming replica (`tests/replication.py`): routing, the
consistency token, lag and failure.

Which server answered is proven two ways: each pool counts the statements run through it, and
with the replica's replay paused the two servers hold different data, so the answer itself tells.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import asyncpg
import pytest

from server.access.auth import parse_credential
from server.db.consistency import parse_lsn
from server.testing import GraphQLClient, running_api
from tests.replication import Pair, streaming_pair

CREATE = (
    "mutation($t: String!, $s: String!) {"
    " createPost(data: {title: $t, slug: $s}, publish: true) { id revision } }"
)
# A document mutation answered without Strawberry (`server/graphql/direct_writes.py`).
RETITLE = (
    "mutation($id: ID!, $t: String!) {"
    " updatePost(id: $id, data: {title: $t}, publish: true) { id revision } }"
)
TITLES = "{ allPost(limit: 100) { title } }"
DRAFT_TITLES = '{ allPost(limit: 100, perspective: "draft") { title } }'
ME_AND_TITLES = "{ me { kind } allPost(limit: 100) { title } }"
VERSIONS = "query($id: ID!) { documentVersions(id: $id) { totalVersions } }"
RECIPE = {
    "type": "document",
    "name": "recipe",
    "title": "Recipe",
    "fields": [{"name": "title", "type": "string", "required": True}],
}
REGISTER = "mutation($d: JSON!) { registerSchemaType(definition: $d) { name } }"
SOUP = 'mutation { createRecipe(data: {title: "Soup"}, publish: true) { id } }'
RECIPES = "{ allRecipe { title } }"
# Long enough that a replica paused by a test stays in service while the test looks at it.
# A primary and a streaming replica of its own for the module: seconds in all, so it runs first.
pytestmark = pytest.mark.slow

PATIENT_LAG_MS = 30_000
CHECK_MS = 50


@pytest.fixture(scope="module")
async def pair() -> AsyncIterator[Pair]:
    async with streaming_pair() as running:
        yield running


@pytest.fixture
async def cms_api(pair: Pair, request: pytest.FixtureRequest) -> AsyncIterator[GraphQLClient]:
    """The API on the primary with the replica, patient with lag; its own organization."""
    async with running_api(
        pair.primary.url(),
        org_slug=request.node.name.replace("_", "-")[:60],
        database_replica_urls=(pair.replica.url(),),
        replica_max_lag_ms=PATIENT_LAG_MS,
        replica_check_ms=CHECK_MS,
    ) as client:
        await caught_up(client)
        yield client


async def replica(pair: Pair) -> asyncpg.Connection[Any]:
    return await asyncpg.connect(pair.replica.url())


async def caught_up(client: GraphQLClient, token: str | None = None) -> None:
    """Wait until the replica is in service and has replayed `token` (default: everything)."""
    replicas = client.services.replicas
    if token is None:
        async with client.services.adapter.database.transaction() as tx:
            token = await tx.fetchval("select pg_current_wal_insert_lsn()::text")
    assert token is not None
    for _ in range(500):
        if replicas.for_read(parse_lsn(token)) is not None:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the replica did not replay {token}: {replicas.report()}")


def served(client: GraphQLClient) -> tuple[int, int, int]:
    """(reads a replica served, statements on the primary, statements on the replica)."""
    services = client.services
    return (
        client.app.state.graphql.replica_served,
        services.adapter.database.statements,
        services.replicas.replicas[0].database.statements,
    )


async def titles(client: GraphQLClient, query: str = TITLES, **headers: str) -> set[str]:
    response = await client.post(query, headers=headers)
    body = response.json()
    assert response.status_code == 200
    assert "errors" not in body, body
    return {post["title"] for post in body["data"]["allPost"]}


async def create(client: GraphQLClient, title: str) -> tuple[str, str]:
    """A published post: its id and the mutation's consistency token."""
    body = await client(CREATE, {"t": title, "s": title})
    assert "errors" not in body, body
    return body["data"]["createPost"]["id"], body["extensions"]["consistencyToken"]


async def test_published_reads_go_to_the_replica_the_rest_to_the_primary(
    cms_api: GraphQLClient,
) -> None:
    _, token = await create(cms_api, "first")
    await caught_up(cms_api, token)
    before = served(cms_api)
    assert await titles(cms_api) == {"first"}
    after = served(cms_api)
    assert after[0] == before[0] + 1
    assert after[1] == before[1], "the primary ran nothing"
    assert after[2] == before[2] + 1

    before = served(cms_api)
    assert await titles(cms_api, DRAFT_TITLES) == {"first"}
    after = served(cms_api)
    assert after[0] == before[0]
    assert after[2] == before[2]


async def test_a_key_whose_last_use_is_due_is_served_by_the_primary(cms_api: GraphQLClient) -> None:
    await create(cms_api, "used")
    fresh = replace(cms_api, key=await cms_api.key_for(cms_api.org, published_only=True))
    await caught_up(cms_api)
    # The opening bumps an API key's `last_used_at` (at most once a minute): a replica cannot
    # write, so the primary serves that request, and writes it.
    before = served(cms_api)
    assert await titles(fresh) == {"used"}
    after = served(cms_api)
    assert after[0] == before[0]
    assert after[1] > before[1]
    digest = parse_credential(f"Bearer {fresh.key}", None).digest
    async with cms_api.services.adapter.database.transaction() as tx:
        used = await tx.fetchval("select last_used_at from api_keys where key_hash = $1", digest)
    assert used is not None
    await caught_up(cms_api)
    assert await titles(fresh) == {"used"}
    assert served(cms_api)[0] == before[0] + 1


async def test_rls_holds_on_the_replica(cms_api: GraphQLClient) -> None:
    await create(cms_api, "mine")
    other = await cms_api.org_named("other-tenant")
    stranger = replace(cms_api, org=other, key=await cms_api.key_for(other))
    await titles(stranger)  # the new key's `last_used_at`, on the primary
    await titles(cms_api)
    await caught_up(cms_api)
    before = served(cms_api)
    assert await titles(stranger) == set()
    assert await titles(cms_api) == {"mine"}
    assert served(cms_api)[0] == before[0] + 2


async def test_the_token_waits_for_the_replica_to_replay_the_write(
    cms_api: GraphQLClient, pair: Pair
) -> None:
    post, _ = await create(cms_api, "old")
    await titles(cms_api)  # the key's `last_used_at`, on the primary
    await caught_up(cms_api)
    standby = await replica(pair)
    try:
        await standby.execute("select pg_wal_replay_pause()")
        body = await cms_api(RETITLE, {"id": post, "t": "new"})
        assert "errors" not in body, body
        token = body["extensions"]["consistencyToken"]
        parse_lsn(token)

        # Without the token, the paused replica answers: it has not seen the write.
        assert await titles(cms_api) == {"old"}
        # With it, the primary does, until the replica has replayed it.
        before = served(cms_api)
        assert await titles(cms_api, **{"X-Consistency-Token": token}) == {"new"}
        assert served(cms_api)[0] == before[0]
    finally:
        await standby.execute("select pg_wal_replay_resume()")
        await standby.close()
    await caught_up(cms_api, token)
    before = served(cms_api)
    assert await titles(cms_api, **{"X-Consistency-Token": token}) == {"new"}
    assert served(cms_api)[0] == before[0] + 1


async def test_every_mutation_carries_a_token(cms_api: GraphQLClient) -> None:
    post, created = await create(cms_api, "tokens")
    body = await cms_api(RETITLE, {"id": post, "t": "tokens 2"})
    assert "errors" not in body, body
    written = body["extensions"]["consistencyToken"]
    assert parse_lsn(written) > parse_lsn(created)
    # Queries carry none, and neither does a mutation that failed (nothing was committed).
    assert "extensions" not in await cms_api(TITLES)
    failed = await cms_api(RETITLE, {"id": "00000000-0000-0000-0000-000000000000", "t": "x"})
    assert failed["errors"]
    assert "consistencyToken" not in failed.get("extensions", {})
    # Version history reads the primary, which is not a replica's business.
    before = served(cms_api)
    versions = await cms_api.data(VERSIONS, {"id": post})
    assert versions["documentVersions"]["totalVersions"] >= 2
    assert served(cms_api)[0] == before[0]


async def test_a_malformed_token_is_a_bad_request(cms_api: GraphQLClient) -> None:
    response = await cms_api.post(TITLES, headers={"X-Consistency-Token": "yesterday"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_a_lagging_replica_is_skipped_and_reported(pair: Pair) -> None:
    async with running_api(
        pair.primary.url(),
        org_slug="lagging",
        database_replica_urls=(pair.replica.url(),),
        replica_max_lag_ms=200,
        replica_check_ms=CHECK_MS,
    ) as client:
        await create(client, "before")
        await titles(client)  # the key's `last_used_at`, on the primary
        await caught_up(client)
        standby = await replica(pair)
        try:
            await standby.execute("select pg_wal_replay_pause()")
            await create(client, "after")
            health = await wait_for_status(client, "lagging")
            assert health.status_code == 200
            assert health.json()["status"] == "ok"
            before = served(client)
            assert await titles(client) == {"before", "after"}
            assert served(client)[0] == before[0]
        finally:
            await standby.execute("select pg_wal_replay_resume()")
            await standby.close()
        await wait_for_status(client, "ok")
        before = served(client)
        assert await titles(client) == {"before", "after"}
        assert served(client)[0] == before[0] + 1


async def test_a_stopped_replica_is_skipped_and_reported(
    cms_api: GraphQLClient, pair: Pair
) -> None:
    await create(cms_api, "survives")
    await titles(cms_api)
    await caught_up(cms_api)
    await asyncio.to_thread(pair.replica.stop, "immediate")
    try:
        # The request that finds it gone is served by the primary, and the replica skipped.
        before = served(cms_api)
        assert await titles(cms_api) == {"survives"}
        assert await titles(cms_api) == {"survives"}
        assert served(cms_api)[0] == before[0]
        health = await wait_for_status(cms_api, "down")
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
    finally:
        await asyncio.to_thread(pair.replica.start)
    await wait_for_status(cms_api, "ok")
    await caught_up(cms_api)
    before = served(cms_api)
    assert await titles(cms_api) == {"survives"}
    assert served(cms_api)[0] == before[0] + 1


async def wait_for_status(client: GraphQLClient, status: str) -> Any:
    """/healthz, once it reports the replica `status`."""
    for _ in range(500):
        health = await client.client.get("/healthz")
        if health.json()["replicas"][0]["status"] == status:
            return health
        await asyncio.sleep(0.02)
    raise AssertionError(f"the replica never became {status}: {health.json()}")


async def test_the_resolver_path_routes_published_reads_too(pair: Pair) -> None:
    async with running_api(
        pair.primary.url(),
        org_slug="resolvers",
        compiled_reads=False,
        database_replica_urls=(pair.replica.url(),),
        replica_max_lag_ms=PATIENT_LAG_MS,
        replica_check_ms=CHECK_MS,
    ) as client:
        await create(client, "resolved")
        await caught_up(client)
        before = served(client)
        assert await titles(client) == {"resolved"}
        after = served(client)
        assert after[0] == before[0] + 1
        assert after[1] == before[1], "the primary ran nothing"
        assert after[2] > before[2]

        before = served(client)
        assert await titles(client, DRAFT_TITLES) == {"resolved"}
        assert await titles(client, ME_AND_TITLES) == {"resolved"}
        after = served(client)
        assert after[0] == before[0]
        assert after[2] == before[2]

        # A replica gone before the opening: the opening runs on the primary instead.
        await asyncio.to_thread(pair.replica.stop, "immediate")
        try:
            before = served(client)
            assert await titles(client) == {"resolved"}
            assert served(client)[0] == before[0]
        finally:
            await asyncio.to_thread(pair.replica.start)
        await wait_for_status(client, "ok")


async def test_the_token_costs_one_statement_and_only_with_replicas(
    cms_api: GraphQLClient, pair: Pair
) -> None:
    async def statements_of_a_write(client: GraphQLClient, post: str) -> tuple[int, bool]:
        await client.data(RETITLE, {"id": post, "t": "warm"})  # the caller's facts, known
        database = client.services.adapter.database
        before = database.statements
        body = await client(RETITLE, {"id": post, "t": "counted"})
        assert "errors" not in body, body
        return database.statements - before, "extensions" in body

    post, _ = await create(cms_api, "counted")
    async with running_api(pair.primary.url(), org_slug="no-replicas") as plain:
        other, _ = await create_without_token(plain, "counted")
        without, carried = await statements_of_a_write(plain, other)
        assert not carried
    with_replicas, carried = await statements_of_a_write(cms_api, post)
    assert carried
    assert with_replicas == without + 1


async def create_without_token(client: GraphQLClient, title: str) -> tuple[str, None]:
    body = await client(CREATE, {"t": title, "s": title})
    assert "errors" not in body, body
    assert "extensions" not in body
    return body["data"]["createPost"]["id"], None


async def test_a_schema_change_reaches_another_instance_and_replicas_answer_as_replayed(
    pair: Pair,
) -> None:
    """The content model comes from the primary: a type registered on one instance is served by
    another within a second, and a replica behind the change answers with what it has replayed
    (no documents of the new type yet), never with an error."""
    options: dict[str, Any] = {
        "database_replica_urls": (pair.replica.url(),),
        "replica_max_lag_ms": PATIENT_LAG_MS,
        "replica_check_ms": CHECK_MS,
    }
    async with (
        running_api(pair.primary.url(), org_slug="schema-one", **options) as one,
        running_api(pair.primary.url(), org_slug="schema-two", **options) as two,
    ):
        admin = await one.key_for(one.org, instance_admin=True)
        reader = replace(two, org=one.org, key=await two.key_for(one.org))
        await titles(reader)  # the reader's `last_used_at`, on the primary
        await caught_up(two)
        standby = await replica(pair)
        try:
            await standby.execute("select pg_wal_replay_pause()")
            await one.data(REGISTER, {"d": RECIPE}, key=admin)
            for _ in range(20):
                if "recipe" in two.services.model.registry:
                    break
                await asyncio.sleep(0.05)
            assert "recipe" in two.services.model.registry
            body = await one(SOUP)
            assert "errors" not in body, body
            token = body["extensions"]["consistencyToken"]

            before = served(two)
            assert await reader.data(RECIPES) == {"allRecipe": []}
            assert served(two)[0] == before[0] + 1
            response = await reader.post(RECIPES, headers={"X-Consistency-Token": token})
            assert response.json() == {"data": {"allRecipe": [{"title": "Soup"}]}}
            assert served(two)[0] == before[0] + 1
        finally:
            await standby.execute("select pg_wal_replay_resume()")
            await standby.close()
        await caught_up(two, token)
        response = await reader.post(RECIPES, headers={"X-Consistency-Token": token})
        assert response.json() == {"data": {"allRecipe": [{"title": "Soup"}]}}
        assert served(two)[0] == before[0] + 2


async def test_published_reads_go_on_while_the_primary_is_down(
    cms_api: GraphQLClient, pair: Pair
) -> None:
    await create(cms_api, "lasting")
    await titles(cms_api)  # the key's `last_used_at`, on the primary
    await caught_up(cms_api)
    await asyncio.to_thread(pair.primary.stop, "fast")
    try:
        before = served(cms_api)
        assert await titles(cms_api) == {"lasting"}
        assert served(cms_api)[0] == before[0] + 1
        health = await cms_api.client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["replicas"][0]["status"] == "ok"
        # Drafts need the primary.
        response = await cms_api.post(DRAFT_TITLES)
        assert response.status_code == 503
    finally:
        await asyncio.to_thread(pair.primary.start)
