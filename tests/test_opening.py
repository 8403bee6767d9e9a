"""A request's opening: one round trip that checks the credential and scopes the transaction.

Round trips are counted at the asyncpg connection (the `round_trips` fixture).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from server.access.auth import parse_credential
from server.access.capabilities import ALL_CAPABILITIES, BUILT_IN_ROLES
from server.access.credentials import secret_digest
from server.access.opening import PRINCIPAL_SQL, known_callers, opening_sql
from server.content.content_model import CHANNEL
from server.engine.postgres import PostgresAdapter
from server.errors import ForbiddenError, UnauthenticatedError
from server.graphql.context import RequestContext
from server.testing import running_api
from tests.conftest import GraphQLClient
from tests.test_graphql_access import ME, code, create_post, sign_in, sign_up

ALL_POSTS = '{ allPost(sort: ["title"]) { title } }'

pytestmark = pytest.mark.usefixtures("cheap_hashing")


def request_context(gql: GraphQLClient, key: str | None, **options: Any) -> RequestContext:
    return RequestContext(
        api=gql.services.api,
        generated=gql.app.state.graphql.current().generated,
        authorization=f"Bearer {key}" if key is not None else None,
        **options,
    )


# The opening as Python sees it


async def test_open_checks_and_scopes_in_one_round_trip(
    cms_api: GraphQLClient, round_trips: list[str]
) -> None:
    child = await cms_api.org_named("acme-eu", parent=cms_api.org)
    context = request_context(cms_api, await cms_api.key_for(cms_api.org, role="viewer"))
    round_trips.clear()
    tx = await context.open()
    assert len(round_trips) == 1
    assert round_trips[0].startswith("BEGIN; SELECT cms_open_request(")
    assert await context.open() is tx  # idempotent
    assert tx.statements == 1
    row = await tx.fetchrow(
        "SELECT current_user AS role, current_setting('transaction_read_only') AS read_only,"
        " cms_current_org() AS org, cms_readable_orgs() AS readable,"
        f" current_setting('app.readable_orgs') AS cached, {PRINCIPAL_SQL} AS principal"
    )
    assert row is not None
    assert (row["role"], row["read_only"], row["org"]) == ("cms_request", "on", cms_api.org)
    assert row["readable"] == [cms_api.org, child]
    assert row["cached"] == f"{{{cms_api.org},{child}}}"
    # A data statement brings the principal back with it; no statement of its own is needed.
    unit = context.accept_principal(row["principal"])
    assert (unit.tx, unit.organization_id) == (tx, cms_api.org)
    assert unit.capabilities == BUILT_IN_ROLES["viewer"]
    assert await context.unit() is unit
    assert await context.principal() == context._principal
    assert tx.statements == 2
    await context.finish(commit=True)
    assert round_trips[-1] == "COMMIT"


async def test_unit_opens_then_reads_the_principal(cms_api: GraphQLClient) -> None:
    key = await cms_api.key_for(cms_api.org, role="editor")
    context = request_context(cms_api, key, read_only=False)
    unit = await context.unit()
    assert unit.tx.statements == 2
    assert unit.organization_id == cms_api.org
    assert unit.user_id.startswith("apikey:")  # type: ignore[union-attr]
    assert await unit.tx.fetchval("SELECT current_setting('transaction_read_only')") == "off"
    await context.finish(commit=False)


@pytest.mark.parametrize(
    ("fresh_seconds", "known_opening"),
    [
        # Facts met within the minute: taken as they are while the access counter holds still.
        (60.0, "BEGIN; SELECT cms_open_known"),
        # Older facts: the credential is checked again, and the facts compared by their digest.
        (0.0, "BEGIN; SELECT cms_open_known_request"),
    ],
)
async def test_a_known_caller_opens_in_one_statement_while_its_facts_hold(
    cms_api: GraphQLClient,
    round_trips: list[str],
    monkeypatch: pytest.MonkeyPatch,
    fresh_seconds: float,
    known_opening: str,
) -> None:
    monkeypatch.setattr(known_callers, "fresh_seconds", fresh_seconds)
    key = await cms_api.key_for(cms_api.org, role="editor")
    first = await (context := request_context(cms_api, key, read_only=False)).unit()
    assert first.capabilities == BUILT_IN_ROLES["editor"]
    await context.finish(commit=True)

    round_trips.clear()
    again = await (context := request_context(cms_api, key, read_only=False)).unit()
    assert again.tx.statements == 1
    assert round_trips[0].startswith(f"{known_opening}(")
    assert again.capabilities == first.capabilities
    await context.finish(commit=True)

    # The key's role changes: the opening refuses the kept facts, and the request opens again.
    async with cms_api.services.adapter.instance_transaction() as tx:
        await tx.execute(
            "UPDATE api_keys SET role = 'viewer' WHERE key_hash = $1", secret_digest(key)
        )
    round_trips.clear()
    changed = await (context := request_context(cms_api, key, read_only=False)).unit()
    assert changed.capabilities == BUILT_IN_ROLES["viewer"]
    assert [sql.split("(")[0] for sql in round_trips[:3]] == [
        known_opening,
        "ROLLBACK",
        "BEGIN; SELECT cms_open_request",
    ]
    await context.finish(commit=True)
    known = await (context := request_context(cms_api, key, read_only=False)).unit()
    assert (known.tx.statements, known.capabilities) == (1, BUILT_IN_ROLES["viewer"])
    await context.finish(commit=True)

    # Kept facts never stand in for the credential check.
    async with cms_api.services.adapter.instance_transaction() as tx:
        await tx.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE key_hash = $1", secret_digest(key)
        )
    with pytest.raises(UnauthenticatedError):
        await request_context(cms_api, key, read_only=False).unit()


async def test_a_refused_opening_is_rolled_back_at_once(
    cms_api: GraphQLClient, round_trips: list[str]
) -> None:
    other = await cms_api.org_named("other")
    context = request_context(cms_api, cms_api.key, organization_header=str(other))
    round_trips.clear()
    with pytest.raises(ForbiddenError, match="another organization"):
        await context.open()
    assert round_trips == [round_trips[0], "ROLLBACK"]
    assert context._transaction is None
    with pytest.raises(UnauthenticatedError, match="authentication required"):
        await request_context(cms_api, None).open()
    with pytest.raises(UnauthenticatedError, match="revoked or expired API key"):
        await request_context(cms_api, "not-a-key").open()
    assert len(round_trips) == 2  # neither reached the database


async def test_background_work_is_not_counted_among_a_requests_round_trips(
    cms_api: GraphQLClient, round_trips: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The schema listener reloads in a transaction of its own whenever another process changes a
    # type: a count taken around a request at that moment must not include it.
    model = cms_api.services.model
    reloads: list[None] = []
    reload = model._reload_if_changed

    async def counted_reload() -> None:
        await reload()
        reloads.append(None)

    monkeypatch.setattr(model, "_reload_if_changed", counted_reload)
    async with cms_api.services.adapter.instance_transaction() as tx:
        await tx.execute(f"NOTIFY {CHANNEL}")
    round_trips.clear()
    for _ in range(250):
        if reloads:
            break
        await asyncio.sleep(0.02)
    assert (len(reloads), round_trips) == (1, [])


def test_only_checked_values_are_inlined(cms_api: GraphQLClient) -> None:
    tenancy = cms_api.services.adapter.tenancy
    hostile = "cms_session_x');DROP/**/TABLE/**/users;--"
    credential = parse_credential(f"Bearer {hostile}", None)
    assert credential.digest == secret_digest(hostile)
    sql = opening_sql(credential, tenancy, read_only=True)
    assert "DROP" not in sql
    assert sql.count("'") == 2 * 5  # kind, digest, two admin roles, request role
    header = parse_credential("Bearer cms_abc", str(uuid.UUID(int=7)))
    assert f"'{uuid.UUID(int=7)}'::uuid" in opening_sql(header, tenancy, read_only=False)
    with pytest.raises(ValueError, match="hex SHA-256"):
        opening_sql(credential.__class__("key", "x'", None), tenancy, read_only=True)
    with pytest.raises(ValueError, match="plain word"):
        opening_sql(
            credential,
            tenancy.__class__(request_role="x'; --", enable_rls=True),
            read_only=True,
        )


# Over HTTP: the same rules as before the opening was one round trip


async def test_a_key_of_another_organization_is_forbidden(cms_api: GraphQLClient) -> None:
    other = await cms_api.org_named("other")
    headers = {"X-Organization-Id": str(other)}
    response = await cms_api.post(ME, headers=headers)
    assert code(response.json()) == "FORBIDDEN"
    assert "another organization" in response.json()["errors"][0]["message"]
    own = await cms_api.post(ME, headers={"X-Organization-Id": str(cms_api.org)})
    assert own.json()["data"]["me"]["organization"]["slug"] == "acme"
    bad = await cms_api.post(ME, headers={"X-Organization-Id": "acme"})
    assert code(bad.json()) == "BAD_USER_INPUT"


async def test_a_revoked_or_expired_key_is_unauthenticated(cms_api: GraphQLClient) -> None:
    key = await cms_api.key_for(cms_api.org, role="viewer")
    assert "errors" not in await cms_api(ME, key=key)
    async with cms_api.services.adapter.instance_transaction() as tx:
        await tx.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE key_hash = $1", secret_digest(key)
        )
    revoked = await cms_api(ME, key=key)
    assert code(revoked) == "UNAUTHENTICATED"
    assert revoked["errors"][0]["message"] == "invalid, revoked or expired API key"
    expired = await cms_api.key_for(cms_api.org, role="viewer")
    async with cms_api.services.adapter.instance_transaction() as tx:
        await tx.execute(
            "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE key_hash = $1",
            secret_digest(expired),
        )
    assert code(await cms_api(ME, key=expired)) == "UNAUTHENTICATED"


async def test_an_api_key_use_is_recorded_in_a_read_only_request(cms_api: GraphQLClient) -> None:
    async def last_used() -> Any:
        async with cms_api.services.adapter.instance_transaction() as tx:
            return await tx.fetchval(
                "SELECT last_used_at FROM api_keys WHERE key_hash = $1", secret_digest(cms_api.key)
            )

    assert await last_used() is None
    await cms_api.data(ALL_POSTS)
    first = await last_used()
    assert first is not None
    await cms_api.data(ALL_POSTS)
    assert await last_used() == first  # at most once a minute


async def test_an_expired_session_is_unauthenticated(cms_api: GraphQLClient) -> None:
    await sign_up(cms_api, "ann@example.com", member_of=cms_api.org, role="editor")
    token = await sign_in(cms_api, "ann@example.com")
    assert "errors" not in await cms_api(ME, key=token)
    async with cms_api.services.adapter.instance_transaction() as tx:
        await tx.execute("UPDATE sessions SET expires_at = now() - interval '1 second'")
    expired = await cms_api(ME, key=token)
    assert code(expired) == "UNAUTHENTICATED"
    assert expired["errors"][0]["message"] == "invalid or expired session; sign in again"


async def test_a_session_chooses_its_organization(cms_api: GraphQLClient) -> None:
    other, foreign = await cms_api.org_named("other"), await cms_api.org_named("foreign")
    user_id = await sign_up(cms_api, "ann@example.com", member_of=cms_api.org, role="viewer")
    adapter = cms_api.services.adapter
    async with adapter.instance_transaction() as tx:
        await adapter.add_member(tx, organization_id=other, user_id=user_id, role="editor")
    token = await sign_in(cms_api, "ann@example.com")

    async def me(org: uuid.UUID | None) -> dict[str, Any]:
        headers = {"X-Organization-Id": str(org)} if org is not None else None
        payload: dict[str, Any] = (await cms_api.post(ME, key=token, headers=headers)).json()
        return payload

    # Two memberships and no active organization: the caller must choose.
    assert code(await me(None)) == "FORBIDDEN"
    chosen = (await me(other))["data"]["me"]
    assert chosen["organization"]["slug"] == "other"
    assert set(chosen["capabilities"]) == BUILT_IN_ROLES["editor"]
    assert code(await me(foreign)) == "FORBIDDEN"
    async with adapter.instance_transaction() as tx:
        await adapter.set_active_organization(tx, user_id=user_id, organization_id=cms_api.org)
    assert (await me(None))["data"]["me"]["organization"]["slug"] == "acme"


async def test_an_instance_admin_session_acts_anywhere(cms_api: GraphQLClient) -> None:
    other = await cms_api.org_named("other")
    user_id = await sign_up(cms_api, "root@example.com", member_of=cms_api.org, role="viewer")
    adapter = cms_api.services.adapter
    async with adapter.instance_transaction() as tx:
        await adapter.create_user_profile(tx, user_id=user_id, role="super_admin")
    token = await sign_in(cms_api, "root@example.com")
    for org in (None, other):
        headers = {"X-Organization-Id": str(org)} if org is not None else None
        me = (await cms_api.post(ME, key=token, headers=headers)).json()["data"]["me"]
        assert set(me["capabilities"]) == ALL_CAPABILITIES
        assert me["instanceAdmin"]
    missing = await cms_api.post(ME, key=token, headers={"X-Organization-Id": str(uuid.uuid4())})
    assert code(missing.json()) == "NOT_FOUND"


async def test_a_published_only_key_reads_published_content_only(cms_api: GraphQLClient) -> None:
    public = await cms_api.key_for(cms_api.org, role="viewer", published_only=True)
    await create_post(cms_api, cms_api.key, "hello")
    me = (await cms_api.data(ME, key=public))["me"]
    assert me["publishedOnly"]
    assert (await cms_api.data(ALL_POSTS, key=public))["allPost"] == [{"title": "hello"}]
    drafts = await cms_api('{ allPost(perspective: "draft") { title } }', key=public)
    assert code(drafts) == "FORBIDDEN"


# Tenants taking turns on one pooled connection


@pytest.fixture
async def one_connection(cms_database_url: str) -> AsyncIterator[GraphQLClient]:
    adapter = PostgresAdapter(cms_database_url, pool_size=1, run_migrations=False)
    await adapter.connect()
    try:
        async with running_api(adapter=adapter) as client:
            yield client
    finally:
        await adapter.disconnect()


async def test_tenants_interleaved_on_one_connection_never_see_each_other(
    one_connection: GraphQLClient,
) -> None:
    gql = one_connection
    other = await gql.org_named("other")
    other_key = await gql.key_for(other)
    await create_post(gql, gql.key, "acme-post")
    await create_post(gql, other_key, "other-post")
    foreign = {"X-Organization-Id": str(other)}
    requests = [
        gql.post(ALL_POSTS),
        gql.post(ALL_POSTS, key=other_key),
        gql.post(ALL_POSTS, headers=foreign),  # refused: the key is acme's
        gql.post(ME, key=other_key),
        gql.post(ALL_POSTS, key="cms_00000000_unknown"),
    ] * 4
    responses = [response.json() for response in await asyncio.gather(*requests)]
    for n in range(0, len(responses), 5):
        acme, other_posts, refused, me, unknown = responses[n : n + 5]
        assert acme["data"]["allPost"] == [{"title": "acme-post"}]
        assert other_posts["data"]["allPost"] == [{"title": "other-post"}]
        assert code(refused) == "FORBIDDEN"
        assert me["data"]["me"]["organization"]["slug"] == "other"
        assert code(unknown) == "UNAUTHENTICATED"
    async with gql.services.adapter.database.transaction() as tx:
        left = await tx.fetchrow(
            "SELECT current_user AS role,"
            " current_setting('app.organization_id', true) AS org,"
            " current_setting('app.readable_orgs', true) AS readable,"
            " current_setting('app.principal', true) AS principal"
        )
    assert left is not None
    assert left["role"] != "cms_request"
    assert (left["org"], left["readable"], left["principal"]) == ("", "", "")
