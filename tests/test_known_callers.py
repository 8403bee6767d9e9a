"""Reads by callers met recently: no credential check or tree walk while nothing they depend on changed.

A compiled read by a caller whose facts a full opening found less than a minute ago runs
`cms_read_known` (migration 0015): the database checks one counter, which triggers move on every
change to credentials, memberships, roles and the organization tree, and the credential's
expiry. These tests make each such change between two reads and require the second read to see
it, after proving that the first ones took the short way.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from server.access.auth import parse_credential
from server.access.credentials import secret_digest
from server.access.opening import KnownCallers, known_callers, opening_sql
from server.db.tenancy import Tenancy
from tests.conftest import GraphQLClient
from tests.test_graphql_access import code, sign_in, sign_up

pytestmark = pytest.mark.usefixtures("cheap_hashing")

TITLES = '{ allPost(sort: ["title"]) { title } }'
CREATE = "mutation($t: String!) { createPost(data: {title: $t, slug: $t}, publish: true) { id } }"
# The short and the full way, on a session and through a transaction pooler (`cms_read_pooled`;
# the short way there with the text, or its prepared call without: `cms_read_known_run`, as on a
# session, migrations 0018 and 0021). On a session of the read pool the short way is
# `cms_read_known_scoped`, and once the session is scoped to the caller the read's own statement,
# gated by the same checks (migration 0025).
KNOWN = (
    "SELECT cms_read_known(",
    "SELECT cms_read_known_run(",
    "SELECT cms_read_known_scoped(",
    "SELECT scoped.results FROM (",
    "SELECT cms_read_pooled_known(",
)
FULL = (
    "SELECT principal, results FROM cms_read(",
    "SELECT principal, results FROM cms_read_pooled(",
)


async def read(
    gql: GraphQLClient, key: str, round_trips: list[str], org: uuid.UUID | None = None
) -> tuple[dict[str, Any], str]:
    """The response to TITLES and the statement that served it (the short or the full way)."""
    headers = {"X-Organization-Id": str(org)} if org is not None else None
    round_trips.clear()
    payload: dict[str, Any] = (await gql.post(TITLES, key=key, headers=headers)).json()
    reads = [sql for sql in round_trips if sql.startswith(KNOWN + FULL)]
    return payload, reads[-1] if reads else ""


async def met(
    gql: GraphQLClient, key: str, round_trips: list[str], org: uuid.UUID | None = None
) -> dict[str, Any]:
    """Read twice: the second time must take the short way."""
    await read(gql, key, round_trips, org)
    payload, statement = await read(gql, key, round_trips, org)
    assert statement.startswith(KNOWN), round_trips
    return payload


async def epoch(gql: GraphQLClient) -> int:
    async with gql.services.adapter.instance_transaction() as tx:
        value: int = await tx.fetchval("SELECT epoch FROM cms_access_epoch")
    return value


async def sql(gql: GraphQLClient, statement: str, *args: Any) -> None:
    async with gql.services.adapter.instance_transaction() as tx:
        await tx.execute(statement, *args)


def titles(payload: dict[str, Any]) -> list[str]:
    assert "errors" not in payload, payload
    return [post["title"] for post in payload["data"]["allPost"]]


async def test_a_caller_met_recently_reads_the_short_way_with_the_same_answer(
    cms_api: GraphQLClient, round_trips: list[str]
) -> None:
    await cms_api.data(CREATE, {"t": "one"})
    known_callers.clear()
    first, statement = await read(cms_api, cms_api.key, round_trips)
    assert statement.startswith(FULL)
    second, statement = await read(cms_api, cms_api.key, round_trips)
    assert statement.startswith(KNOWN)
    assert first == second
    assert titles(second) == ["one"]


async def test_a_revoked_key_is_refused_at_its_next_read(
    cms_api: GraphQLClient, round_trips: list[str]
) -> None:
    key = await cms_api.key_for(cms_api.org, role="viewer")
    await met(cms_api, key, round_trips)
    await sql(
        cms_api, "UPDATE api_keys SET revoked_at = now() WHERE key_hash = $1", secret_digest(key)
    )
    payload, _ = await read(cms_api, key, round_trips)
    assert code(payload) == "UNAUTHENTICATED"


@pytest.mark.slow
async def test_a_key_whose_expiry_passes_is_refused_though_nothing_changed(
    cms_api: GraphQLClient, round_trips: list[str]
) -> None:
    key = await cms_api.key_for(cms_api.org, role="viewer")
    # Long enough for the reads that meet the caller to end before it, on a loaded machine too.
    await sql(
        cms_api,
        "UPDATE api_keys SET expires_at = now() + interval '3 seconds' WHERE key_hash = $1",
        secret_digest(key),
    )
    await met(cms_api, key, round_trips)
    before = await epoch(cms_api)
    left = (
        "SELECT extract(epoch FROM expires_at - clock_timestamp()) FROM api_keys"
        " WHERE expires_at IS NOT NULL"
    )
    async with cms_api.services.adapter.instance_transaction() as tx:
        await asyncio.sleep(max(float(await tx.fetchval(left)), 0) + 0.05)
        assert await tx.fetchval(left) < 0  # expired by the database's clock
    payload, _ = await read(cms_api, key, round_trips)
    assert code(payload) == "UNAUTHENTICATED"
    assert await epoch(cms_api) == before


async def test_a_new_child_organization_is_read_at_once(
    cms_api: GraphQLClient, round_trips: list[str]
) -> None:
    await cms_api.data(CREATE, {"t": "parents"})
    assert titles(await met(cms_api, cms_api.key, round_trips)) == ["parents"]
    child = await cms_api.org_named("child", parent=cms_api.org)
    await cms_api.data(CREATE, {"t": "childs"}, key=await cms_api.key_for(child))
    payload, _ = await read(cms_api, cms_api.key, round_trips)
    assert titles(payload) == ["childs", "parents"]


async def test_an_organization_moved_away_is_no_longer_read(
    cms_api: GraphQLClient, round_trips: list[str]
) -> None:
    child = await cms_api.org_named("child", parent=cms_api.org)
    other = await cms_api.org_named("other")
    await cms_api.data(CREATE, {"t": "childs"}, key=await cms_api.key_for(child))
    assert titles(await met(cms_api, cms_api.key, round_trips)) == ["childs"]
    await sql(
        cms_api,
        "UPDATE cms_organizations SET parent_organization_id = $1 WHERE id = $2",
        other,
        child,
    )
    payload, _ = await read(cms_api, cms_api.key, round_trips)
    assert titles(payload) == []


async def test_a_role_that_loses_the_read_capability_is_refused(
    cms_api: GraphQLClient, round_trips: list[str]
) -> None:
    adapter = cms_api.services.adapter
    async with adapter.instance_transaction() as tx:
        await tx.execute(
            "INSERT INTO cms_organization_roles (organization_id, name, capabilities)"
            " VALUES ($1, 'reader', '[\"document.read\"]')",
            cms_api.org,
        )
    key = await cms_api.key_for(cms_api.org, role="reader")
    await met(cms_api, key, round_trips)
    await sql(
        cms_api,
        "UPDATE cms_organization_roles SET capabilities = '[]'"
        " WHERE organization_id = $1 AND name = 'reader'",
        cms_api.org,
    )
    payload, _ = await read(cms_api, key, round_trips)
    assert code(payload) == "FORBIDDEN"


@pytest.mark.parametrize(
    "change",
    [
        "DELETE FROM cms_organization_members WHERE user_id = $1",
        "DELETE FROM sessions WHERE user_id = $1",
        "UPDATE sessions SET expires_at = now() - interval '1 second' WHERE user_id = $1",
    ],
)
async def test_a_session_loses_what_it_read_by_at_once(
    cms_api: GraphQLClient, round_trips: list[str], change: str
) -> None:
    user_id = await sign_up(cms_api, "ann@example.com", member_of=cms_api.org, role="viewer")
    token = await sign_in(cms_api, "ann@example.com")
    await met(cms_api, token, round_trips, org=cms_api.org)
    await sql(cms_api, change, user_id)
    payload, _ = await read(cms_api, token, round_trips, org=cms_api.org)
    assert code(payload) in ("UNAUTHENTICATED", "FORBIDDEN")


async def test_key_use_sign_ins_and_new_keys_leave_the_counter_alone(
    cms_api: GraphQLClient, round_trips: list[str]
) -> None:
    before = await epoch(cms_api)
    await sql(cms_api, "UPDATE api_keys SET last_used_at = now() - interval '1 hour'")
    await read(cms_api, cms_api.key, round_trips)  # a full opening, which bumps `last_used_at`
    await cms_api.key_for(cms_api.org)
    await sign_up(cms_api, "ann@example.com", member_of=cms_api.org, role="viewer")
    after_sign_up = await epoch(cms_api)
    assert after_sign_up > before  # a membership is a change...
    await sign_in(cms_api, "ann@example.com")
    assert await epoch(cms_api) == after_sign_up  # ...a sign-in and a key's use are not


async def test_the_counter_watches_every_column_of_api_keys_but_last_used_at(
    cms_api: GraphQLClient,
) -> None:
    async with cms_api.services.adapter.instance_transaction() as tx:
        columns = await tx.fetch(
            "SELECT a.attname FROM pg_attribute a"
            " WHERE a.attrelid = 'api_keys'::regclass AND a.attnum > 0 AND NOT a.attisdropped"
        )
        watched = await tx.fetch(
            "SELECT a.attname FROM pg_trigger t"
            " JOIN pg_attribute a ON a.attrelid = t.tgrelid AND a.attnum = ANY (t.tgattr)"
            " WHERE t.tgrelid = 'api_keys'::regclass AND t.tgname LIKE '%access_change'"
        )
    assert {row["attname"] for row in watched} == {row["attname"] for row in columns} - {
        "last_used_at"
    }


@pytest.mark.parametrize(
    "change",
    [
        lambda cms_api: sql(cms_api, "UPDATE api_keys SET role = 'viewer'"),
        lambda cms_api: sql(
            cms_api, "UPDATE cms_organization_roles SET capabilities = capabilities"
        ),
        lambda cms_api: sql(cms_api, "UPDATE cms_user_profiles SET role = role"),
        lambda cms_api: sql(cms_api, "UPDATE cms_user_sessions SET user_id = user_id"),
        lambda cms_api: sql(cms_api, "UPDATE cms_organization_members SET role = role"),
        lambda cms_api: cms_api.org_named("another"),
    ],
)
async def test_each_table_the_opening_reads_moves_the_counter(
    cms_api: GraphQLClient, change: Callable[[GraphQLClient], Awaitable[object]]
) -> None:
    adapter = cms_api.services.adapter
    user_id = await sign_up(cms_api, "ann@example.com", member_of=cms_api.org, role="viewer")
    async with adapter.instance_transaction() as tx:
        await adapter.create_user_profile(tx, user_id=user_id, role="editor")
        await adapter.set_active_organization(tx, user_id=user_id, organization_id=cms_api.org)
    before = await epoch(cms_api)
    await change(cms_api)
    assert await epoch(cms_api) == before + 1


def test_facts_are_fresh_for_a_while_and_only_with_what_the_database_checks() -> None:
    now = [0.0]
    callers = KnownCallers(fresh_seconds=60, clock=lambda: now[0])
    credential = parse_credential("Bearer cms_abc", None)
    callers.remember(credential, '{"kind": "key", "access": {"epoch": 1}}')
    now[0] = 59.0
    assert callers.fresh(credential) is not None
    now[0] = 60.0
    assert callers.fresh(credential) is None
    assert callers.get(credential) is not None  # still a hint for the writes' opening
    callers.remember(credential, '{"kind": "key"}')
    assert callers.fresh(credential) is None


def test_fresh_facts_become_a_literal_only_when_quoting_alone_keeps_their_meaning() -> None:
    credential = parse_credential("Bearer cms_abc", None)
    tenancy = Tenancy()
    quoted = opening_sql(
        credential, tenancy, read_only=True, known_facts='{"name": "O\'Hara"}', fresh=True
    )
    assert quoted.startswith("SELECT cms_open_known('{\"name\": \"O''Hara\"}', ")
    escaped = '{"name": "a \\"quoted\\" word"}'
    fallback = opening_sql(credential, tenancy, read_only=True, known_facts=escaped, fresh=True)
    assert fallback.startswith("SELECT cms_open_known_request(")
    assert "quoted" not in fallback


async def test_a_unit_of_work_that_checks_facts_in_full_makes_them_fresh_again(
    cms_api: GraphQLClient,
) -> None:
    """Past their freshness, a caller's facts open a unit of work with the full credential check
    (`cms_open_known_request`); found unchanged, they count as fresh again, so writes at once and
    short reads go on for a caller that only writes."""
    key = await cms_api.key_for(cms_api.org)
    await cms_api.data(CREATE, {"t": "first"}, key=key)
    credential = parse_credential(f"Bearer {key}", None)
    facts = known_callers.get(credential)
    assert facts is not None
    known_callers._facts[credential] = (facts, time.monotonic() - 3600)  # long ago
    assert known_callers.fresh(credential) is None
    await cms_api.data(CREATE, {"t": "second"}, key=key)
    assert known_callers.fresh(credential) == facts
