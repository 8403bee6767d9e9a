"""The SQL functions of the compiled read path (migration 0005) against their Python counterparts.

A stored date or datetime must read the same in SQL (`cms_read_date`, `cms_read_datetime`) as the
resolvers show it (`typegen._date`, `typegen._timestamp`, then the GraphQL scalar's `isoformat`),
and a timestamp column as Python's `isoformat` of the driver's datetime (`cms_iso_timestamp`). So
must the expression a compiled read shows a stored one with (`server.query.sql.scalar`), which
passes values already in the functions' form through as they are. A reference's id is followed
only when it is well formed as the resolvers see it (`server.query.sql.well_formed_id` against
`server.content.validation.UUID_PATTERN`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from server.content.validation import UUID_PATTERN
from server.graphql.typegen import _date, _timestamp
from server.query.sql import AS_IS_DATE, AS_IS_DATETIME, scalar, well_formed_id

CASES = [
    "2025-01-02T03:04:05Z",
    "2025-01-02T03:04:05+00:00",
    "2025-01-02T03:04:05-00:00",
    "2025-01-02T03:04:05.123Z",
    "2025-01-02T03:04:05.1234567+02:00",
    "2025-01-02T03:04:05.000000+02:00",
    "2025-01-02T03:04:05.5",
    "2025-01-02T03:04",
    "2025-01-02T03:04Z",
    "2025-01-02T03:04-05:30",
    "2024-02-29T00:00:00Z",
    "2025-02-29T00:00:00Z",
    "2025-13-01T00:00:00Z",
    "2025-01-02T24:00:00Z",
    "2025-01-02T23:60:00Z",
    "2025-01-02T23:59:60Z",
    "2025-01-02T03:04:05+24:00",
    "2025-01-02T03:04:05+12:60",
    "2025-01-02T03:04:05.",
    "2025-01-02 03:04:05Z",
    "20250102T030405Z",
    "0000-01-02T03:04:05Z",
    "0001-01-01T00:00:00+01:00",
    "2025-01-02",
    "soon",
    "",
]
DATES = ["2025-01-02", "2024-02-29", "2025-02-29", "2025-00-01", "0000-01-01", "20250102", "x"]
# Values in the functions' own form, which a compiled read passes through, and their near misses.
AS_IS = [
    "2024-01-07T03:51:29+00:00",
    "2024-01-07T03:51:29",
    "1000-12-31T23:59:59+23:59",
    "2023-04-30T00:00:00+05:30",
    "2023-04-31T00:00:00+05:30",
    "2023-02-28T00:00:00",
    "2024-02-29T00:00:00",
    "0999-01-01T00:00:00",
    "2023-01-07T03:51:29-00:00",
    "2023-01-07T03:51:29-03:00",
    "2023-01-07T03:51:29.000001+00:00",
    "2023-01-07T03:51:29\n",
]


@pytest.fixture
async def conn(cms_database_url: str) -> AsyncIterator[asyncpg.Connection[Any]]:
    connection = await asyncpg.connect(cms_database_url)
    yield connection
    await connection.close()


def _python_datetime(value: str) -> str | None:
    parsed = _timestamp(value)
    return parsed.isoformat() if parsed is not None else None


def _python_date(value: str) -> str | None:
    parsed = _date(value)
    return parsed.isoformat() if parsed is not None else None


def _examples(count: int) -> settings:
    """Hypothesis settings of the generated cases: repeatable, and one connection for all of
    them (the functions keep no state)."""
    return settings(
        max_examples=count,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )


@pytest.mark.parametrize("value", CASES)
async def test_a_datetime_reads_as_the_resolvers_show_it(
    conn: asyncpg.Connection[Any], value: str
) -> None:
    assert await conn.fetchval("SELECT cms_read_datetime($1)", value) == _python_datetime(value)


@pytest.mark.parametrize("value", DATES)
async def test_a_date_reads_as_the_resolvers_show_it(
    conn: asyncpg.Connection[Any], value: str
) -> None:
    assert await conn.fetchval("SELECT cms_read_date($1)", value) == _python_date(value)


_digits = st.integers(0, 99).map(lambda n: f"{n:02d}")


@st.composite
def _datetimes(draw: Any) -> str:
    text = f"{draw(st.integers(0, 2999)):04d}-{draw(_digits)}-{draw(_digits)}T{draw(_digits)}:"
    text += draw(_digits)
    if draw(st.booleans()):
        text += f":{draw(_digits)}"
        if draw(st.booleans()):
            text += "." + draw(st.text("0123456789", min_size=1, max_size=9))
    zone = draw(st.sampled_from(["", "Z", "+", "-"]))
    if zone in ("+", "-"):
        zone += f"{draw(_digits)}:{draw(_digits)}"
    return text + zone


@_examples(300)
@given(value=_datetimes())
async def test_generated_datetimes_read_alike(conn: asyncpg.Connection[Any], value: str) -> None:
    assert await conn.fetchval("SELECT cms_read_datetime($1)", value) == _python_datetime(value)


def _compiled(kind: str) -> str:
    """How a compiled read shows a stored value of this kind, given as JSON text in `$1`."""
    return f"SELECT {scalar(kind, '$1::jsonb')}"


def _json(value: str) -> str:
    return orjson.dumps(value).decode()


@pytest.mark.parametrize("value", CASES + AS_IS)
async def test_a_compiled_read_shows_a_datetime_as_the_resolvers(
    conn: asyncpg.Connection[Any], value: str
) -> None:
    shown = await conn.fetchval(_compiled("datetime"), _json(value))
    assert shown == _python_datetime(value)


@pytest.mark.parametrize("value", [*DATES, "1000-01-31", "2023-11-30", "2023-11-31", "0999-01-01"])
async def test_a_compiled_read_shows_a_date_as_the_resolvers(
    conn: asyncpg.Connection[Any], value: str
) -> None:
    assert await conn.fetchval(_compiled("date"), _json(value)) == _python_date(value)


async def test_values_in_the_functions_form_pass_through(conn: asyncpg.Connection[Any]) -> None:
    # The way around the functions is taken, and only by what they would give back unchanged.
    passed = await conn.fetchval(
        f"SELECT array_agg(v ORDER BY v) FILTER (WHERE v ~ {AS_IS_DATETIME}) FROM unnest($1::text[]) v",
        AS_IS,
    )
    assert passed == sorted([*AS_IS[:4], "2023-02-28T00:00:00"])
    for value in passed:
        assert _python_datetime(value) == value
    dates = await conn.fetchrow(f"SELECT '2023-11-30' ~ {AS_IS_DATE}, '2024-02-29' ~ {AS_IS_DATE}")
    assert dates is not None
    assert tuple(dates) == (True, False)


@st.composite
def _near_the_form(draw: Any) -> str:
    """Datetimes close to the functions' own form: valid-looking fields at and past their limits."""
    year = draw(st.sampled_from([0, 1, 999, 1000, 1900, 2000, 2023, 2024, 2100, 9999]))
    text = f"{year:04d}-{draw(st.integers(0, 13)):02d}-{draw(st.integers(0, 32)):02d}"
    text += f"T{draw(st.integers(0, 24)):02d}:{draw(st.integers(0, 60)):02d}"
    text += draw(st.sampled_from(["", f":{draw(st.integers(0, 60)):02d}"]))
    text += draw(st.sampled_from(["", ".000000", ".5", ".123456"])) if text.count(":") == 2 else ""
    zone = draw(st.sampled_from(["", "Z", "+", "-"]))
    if zone in ("+", "-"):
        zone += f"{draw(st.integers(0, 24)):02d}:{draw(st.integers(0, 60)):02d}"
    return text + zone


@_examples(300)
@given(value=st.one_of(_datetimes(), _near_the_form()))
async def test_generated_datetimes_show_alike_in_compiled_reads(
    conn: asyncpg.Connection[Any], value: str
) -> None:
    assert await conn.fetchval(_compiled("datetime"), _json(value)) == _python_datetime(value)


@_examples(200)
@given(
    year=st.sampled_from([0, 1, 999, 1000, 1900, 2000, 2023, 2024, 2100]),
    month=st.integers(0, 13),
    day=st.integers(0, 32),
)
async def test_generated_dates_show_alike_in_compiled_reads(
    conn: asyncpg.Connection[Any], year: int, month: int, day: int
) -> None:
    value = f"{year:04d}-{month:02d}-{day:02d}"
    assert await conn.fetchval(_compiled("date"), _json(value)) == _python_date(value)


async def test_a_timestamp_is_written_as_python_writes_it(conn: asyncpg.Connection[Any]) -> None:
    base = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    for moment in (base, base + timedelta(microseconds=120), base + timedelta(microseconds=500000)):
        written = await conn.fetchval("SELECT cms_iso_timestamp($1)", moment)
        assert written == moment.isoformat()


IDS = [
    "0b9a4f1e-6c1d-4c3e-9f2a-7d8e5b6a4c3f",
    "00000000-0000-0000-0000-000000000000",
    "0B9A4F1E-6C1D-4C3E-9F2A-7D8E5B6A4C3F",
    "0b9a4f1e6c1d4c3e9f2a7d8e5b6a4c3f",
    "{0b9a4f1e-6c1d-4c3e-9f2a-7d8e5b6a4c3f}",
    "0b9a4f1e-6c1d-4c3e-9f2a-7d8e5b6a4c3",
    "0b9a4f1e-6c1d-4c3e-9f2a-7d8e5b6a4c3f0",
    "0b9a4f1e-6c1d-4c3e-9f2a-7d8e-b6a4c3f",
    "0b9a4f1e-6c1d-4c3e-9f2a--d8e5b6a4c3f",
    "-b9a4f1e-6c1d-4c3e-9f2a-7d8e5b6a4c3f",
    "0b9a4f1e-6c1d-4c3e-9f2a-7d8e5b6a4c3-",
    "0b9a4f1e_6c1d-4c3e-9f2a-7d8e5b6a4c3f",
    "0b9a4f1e-6c1d-4c3e-9f2a-7d8e5b6a4c3g",
    "0b9a4f1e-6c1d-4c3e-9f2a-7d8e5b6a4c3\u00e9",
    "0b9a4f1e-6c1d-4c3e-9f2a-7d8e5b6a4c3\u0663",
    "0b9a4f1e-6c1d-4c3e-9f2a-7d8e5b6a4c3\n",
    "0b9a4f1e-6c1d-4c3e-9f2a-7d8e5b6a4c3%",
    "",
]


async def _well_formed(conn: asyncpg.Connection[Any], values: list[str]) -> list[bool]:
    found = await conn.fetchval(
        f"SELECT array_agg({well_formed_id('v')} ORDER BY n)"
        " FROM unnest($1::text[]) WITH ORDINALITY AS u(v, n)",
        values,
    )
    return list(found)


async def test_a_reference_id_is_well_formed_as_the_resolvers_see_it(
    conn: asyncpg.Connection[Any],
) -> None:
    expected = [UUID_PATTERN.fullmatch(value) is not None for value in IDS]
    assert expected[:2] == [True, True]
    assert not any(expected[2:])
    assert await _well_formed(conn, IDS) == expected
    assert await conn.fetchval(f"SELECT {well_formed_id('NULL::text')}") is None


@_examples(300)
@given(
    value=st.one_of(
        st.uuids().map(str),
        st.text(alphabet="0123456789abcdefABCDEF-g{}_ ", min_size=30, max_size=40),
        st.lists(st.sampled_from("0f-"), min_size=36, max_size=36).map("".join),
        st.tuples(st.uuids().map(str), st.integers(0, 35), st.characters()).map(
            lambda t: t[0][: t[1]] + t[2] + t[0][t[1] + 1 :]
        ),
    )
)
async def test_generated_ids_are_well_formed_alike(
    conn: asyncpg.Connection[Any], value: str
) -> None:
    assume("\x00" not in value)  # PostgreSQL's text holds no NUL
    assert await _well_formed(conn, [value]) == [UUID_PATTERN.fullmatch(value) is not None]
