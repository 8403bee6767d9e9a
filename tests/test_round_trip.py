"""A compiled read in one round trip (`server/query/round_trip.py`, `cms_read` of migration 0006).

The HTTP-level behaviour (same answers as the resolvers, Row-Level Security at every depth, one
statement per request) is tested in tests/test_compiled_reads.py and tests/test_statement_counts.py;
these tests hold what only this module knows: the text form of the arguments, the session left
clean, and prepared reads that the session lost.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import orjson
import pytest

from server.access.auth import parse_credential, principal_from_text
from server.access.opening import opening_arguments
from server.db.pool import Database
from server.errors import UnauthenticatedError
from server.query import round_trip, run
from server.query.round_trip import text_argument
from tests.conftest import GraphQLClient

HOSTILE = ['a"b', "back\\slash", "{}", "NULL", "comma, here", "", " spaced ", "quote'", "ünï"]


CREATE = "mutation($data: PostDataInput!) { createPost(data: $data, publish: true) { id } }"


async def publish_post(gql: GraphQLClient, title: str) -> None:
    await gql.data(CREATE, {"data": {"title": title, "slug": uuid.uuid4().hex}})


# What a session holds after a read: its own role, no organization, no caller, read-write.
CLEAN_SESSION = {"own_role": True, "org": "", "principal": "", "read_only": "off"}


async def _session_state(conn: Any, extra: str, *args: Any) -> dict[str, Any]:
    """`CLEAN_SESSION`'s settings of the session, and the `extra` column."""
    row = await conn.fetchrow(
        "SELECT current_user = session_user AS own_role,"
        " coalesce(current_setting('app.organization_id', true), '') AS org,"
        " coalesce(current_setting('app.principal', true), '') AS principal,"
        " current_setting('transaction_read_only') AS read_only," + extra,
        *args,
    )
    assert row is not None
    return dict(row)


@pytest.fixture
async def one_connection(cms_api: GraphQLClient) -> AsyncIterator[Database]:
    """A pool of one connection on the test database, so every call meets the same session."""
    # The session path, so PostgreSQL itself, even when the run goes through a pooler.
    database = Database(cms_api.services.adapter.database.direct_url, pool_size=1)
    await database.connect()
    try:
        yield database
    finally:
        await database.disconnect()


@pytest.mark.parametrize(
    ("value", "sql_type"),
    [
        (HOSTILE, "text[]"),
        ([None, "x", None], "text[]"),
        ([], "text[]"),
        ([uuid.UUID(int=1), uuid.UUID(int=2)], "uuid[]"),
        ([1.5, -2, 10**20], "numeric[]"),
        ([True, False], "boolean[]"),
        ([date(2025, 1, 2), date(1, 1, 1)], "date[]"),
        ([datetime(2025, 1, 2, 3, 4, 5, 600, tzinfo=UTC)], "timestamptz[]"),
        ([datetime.max.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC)], "timestamptz[]"),
        ([date.max, date.min], "date[]"),
        ("it's", "text"),
        (True, "boolean"),
        (12345678901234567890, "numeric"),
        (0.1, "float8"),
        (1e300, "float8"),
        (uuid.UUID(int=7), "uuid"),
        (date(9999, 12, 31), "date"),
        (datetime(2025, 6, 1, 12, 0, tzinfo=UTC), "timestamptz"),
    ],
)
async def test_an_argument_as_text_reads_back_as_the_same_value(
    one_connection: Database, value: Any, sql_type: str
) -> None:
    async with one_connection.session() as conn:
        same = await conn.fetchval(
            f"SELECT $1::text::{sql_type} IS NOT DISTINCT FROM $2::{sql_type}",
            text_argument(value),
            value,
        )
    assert same is True


def test_none_is_null_and_other_types_are_refused() -> None:
    assert text_argument(None) is None
    with pytest.raises(TypeError):
        text_argument(object())


@pytest.mark.parametrize(
    "arguments",
    [HOSTILE, [None, "x", None], [], ["\\", "'\\'", '{"a\\"b"}', "E'x'", "');--"]],
)
async def test_the_execute_text_quotes_as_postgresql_does(
    one_connection: Database, arguments: list[str | None]
) -> None:
    """`EXECUTE name(...)` as migration 0006 writes it in SQL, whatever `standard_conforming_strings`."""
    name = "cms_read_0123abcd"
    async with one_connection.session() as conn:
        for conforming in ("on", "off"):
            async with conn.transaction():
                await conn.execute(f"SET LOCAL standard_conforming_strings = {conforming}")
                expected = await conn.fetchval(
                    "SELECT format('EXECUTE %I', $1::text) || CASE WHEN cardinality($2::text[]) > 0"
                    " THEN (SELECT '(' || string_agg(quote_nullable(a.value), ', ' ORDER BY a.n)"
                    " || ')' FROM unnest($2::text[]) WITH ORDINALITY AS a(value, n)) ELSE '' END",
                    name,
                    arguments,
                )
                assert round_trip.execute_text(name, arguments) == expected
                # And PostgreSQL reads each literal back as the text it was.
                if arguments:
                    written = round_trip.execute_text(name, arguments)
                    literals = written.removeprefix(f"EXECUTE {name}(").removesuffix(")")
                    back = await conn.fetchval(f"SELECT ARRAY[{literals}]::text[]")
                    assert back == arguments


def test_the_execute_text_takes_only_a_reads_name() -> None:
    with pytest.raises(ValueError, match="not the name of a compiled read"):
        round_trip.execute_text("cms_read_x; DROP TABLE cms_documents", [])


def _statement(gql: GraphQLClient, query: str, variables: dict[str, Any]) -> run.Statement:
    built = gql.app.state.graphql.current()
    plan = built.planner.plan(query, None)
    assert plan is not None
    return run.bind(built.planner, plan, variables, max_page_size=100)


async def test_a_read_is_its_own_transaction_and_leaves_the_session_clean(
    cms_api: GraphQLClient, one_connection: Database
) -> None:
    await publish_post(cms_api, 'A "quoted" post')
    await publish_post(cms_api, "Another")
    statement = _statement(
        cms_api,
        "query($titles: [String!]!) {"
        ' allPost(where: {title: {in: $titles}}, sort: ["title"]) { title } }',
        {"titles": ['A "quoted" post', "Another", *HOSTILE]},
    )
    credential = parse_credential(f"Bearer {cms_api.key}", None)
    opening = opening_arguments(credential, cms_api.services.adapter.tenancy)

    facts, values = await round_trip.fetch(one_connection, opening, statement, cancel_after=5)
    assert principal_from_text(facts).organization_id == cms_api.org
    assert orjson.loads(run.body(statement, values)) == {
        "data": {"allPost": [{"title": 'A "quoted" post'}, {"title": "Another"}]}
    }
    async with one_connection.session() as conn:
        assert statement.name in conn.prepared_reads
        state = await _session_state(
            conn,
            " EXISTS (SELECT 1 FROM pg_prepared_statements WHERE name = $1) AS prepared",
            statement.name,
        )
    assert state == {**CLEAN_SESSION, "prepared": True}


async def test_a_known_callers_prepared_read_answers_the_same_and_leaves_the_session_clean(
    cms_api: GraphQLClient, one_connection: Database
) -> None:
    """A caller met moments ago, a read the connection has prepared: `cms_read_known_run`
    (migration 0020), its `EXECUTE` written by the server with hostile arguments."""
    await publish_post(cms_api, 'A "quoted" post')
    await publish_post(cms_api, "back\\slash")
    statement = _statement(
        cms_api,
        "query($titles: [String!]!) {"
        ' allPost(where: {title: {in: $titles}}, sort: ["title"]) { title } }',
        {"titles": ['A "quoted" post', *HOSTILE]},
    )
    credential = parse_credential(f"Bearer {cms_api.key}", None)
    opening = opening_arguments(credential, cms_api.services.adapter.tenancy)
    facts, values = await round_trip.fetch(one_connection, opening, statement, cancel_after=5)
    known, again = await round_trip.fetch(
        one_connection, opening, statement, cancel_after=5, lock_timeout_ms=1000, known=facts
    )
    assert (known, again) == (facts, values)
    assert orjson.loads(run.body(statement, again)) == {
        "data": {"allPost": [{"title": 'A "quoted" post'}, {"title": "back\\slash"}]}
    }
    async with one_connection.session() as conn:
        state = await _session_state(conn, " current_setting('lock_timeout') AS lock_timeout")
    assert state == {**CLEAN_SESSION, "lock_timeout": "0"}


async def test_a_read_the_session_lost_is_prepared_again(
    cms_api: GraphQLClient, one_connection: Database
) -> None:
    await publish_post(cms_api, "Kept")
    statement = _statement(cms_api, "{ allPost { title } }", {})
    opening = opening_arguments(
        parse_credential(f"Bearer {cms_api.key}", None), cms_api.services.adapter.tenancy
    )
    first = await round_trip.fetch(one_connection, opening, statement, cancel_after=None)
    async with one_connection.session() as conn:
        await conn.execute(f"DEALLOCATE {statement.name}")
    with pytest.raises(round_trip.ReadNotPrepared):
        await round_trip.fetch(one_connection, opening, statement, cancel_after=None)
    assert await round_trip.fetch(one_connection, opening, statement, cancel_after=None) == first
    # An earlier call that prepared the read and failed afterwards: prepared, though not noted.
    async with one_connection.session() as conn:
        conn.prepared_reads.clear()
    assert await round_trip.fetch(one_connection, opening, statement, cancel_after=None) == first


async def test_past_the_limit_a_session_forgets_its_reads_and_keeps_the_drivers(
    cms_api: GraphQLClient, one_connection: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(round_trip, "PREPARED_PER_CONNECTION", 1)
    await publish_post(cms_api, "Kept")
    opening = opening_arguments(
        parse_credential(f"Bearer {cms_api.key}", None), cms_api.services.adapter.tenancy
    )
    titles = _statement(cms_api, "{ allPost { title } }", {})
    ids = _statement(cms_api, "{ allPost { id } }", {})
    for statement in (titles, ids, titles):
        _, values = await round_trip.fetch(one_connection, opening, statement, cancel_after=None)
        assert (values[0] or "").startswith("[{")
    async with one_connection.session() as conn:
        assert conn.prepared_reads == {titles.name}
        names = await conn.fetch("SELECT name FROM pg_prepared_statements WHERE name LIKE 'cms_%'")
    assert [row["name"] for row in names] == [titles.name]


async def test_a_refused_credential_is_the_domain_error(
    cms_api: GraphQLClient, one_connection: Database
) -> None:
    statement = _statement(cms_api, "{ allPost { title } }", {})
    opening = opening_arguments(
        parse_credential("Bearer cms_unknown_key", None), cms_api.services.adapter.tenancy
    )
    with pytest.raises(UnauthenticatedError):
        await round_trip.fetch(one_connection, opening, statement, cancel_after=None)
