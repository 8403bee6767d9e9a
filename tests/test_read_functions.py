"""The SQL functions of the compiled read path (migration 0005) against their Python counterparts.

A stored date or datetime must read the same in SQL (`cms_read_date`, `cms_read_datetime`) as the
resolvers show it (`typegen._date`, `typegen._timestamp`, then the GraphQL scalar's `isoformat`),
and a timestamp column as Python's `isoformat` of the driver's datetime (`cms_iso_timestamp`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.graphql.typegen import _date, _timestamp

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


@pytest.fixture
async def conn(cms_database_url: str) -> AsyncIterator[asyncpg.Connection[Any]]:
    connection = await asyncpg.connect(cms_database_url)
    yield connection
    await connection.close()


def _python_datetime(value: str) -> str | None:
    parsed = _timestamp(value)
    return parsed.isoformat() if parsed is not None else None


@pytest.mark.parametrize("value", CASES)
async def test_a_datetime_reads_as_the_resolvers_show_it(
    conn: asyncpg.Connection[Any], value: str
) -> None:
    assert await conn.fetchval("SELECT cms_read_datetime($1)", value) == _python_datetime(value)


@pytest.mark.parametrize("value", DATES)
async def test_a_date_reads_as_the_resolvers_show_it(
    conn: asyncpg.Connection[Any], value: str
) -> None:
    parsed = _date(value)
    expected = parsed.isoformat() if parsed is not None else None
    assert await conn.fetchval("SELECT cms_read_date($1)", value) == expected


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


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    # One connection for all examples: the functions keep no state.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(value=_datetimes())
async def test_generated_datetimes_read_alike(conn: asyncpg.Connection[Any], value: str) -> None:
    assert await conn.fetchval("SELECT cms_read_datetime($1)", value) == _python_datetime(value)


async def test_a_timestamp_is_written_as_python_writes_it(conn: asyncpg.Connection[Any]) -> None:
    base = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    for moment in (base, base + timedelta(microseconds=120), base + timedelta(microseconds=500000)):
        written = await conn.fetchval("SELECT cms_iso_timestamp($1)", moment)
        assert written == moment.isoformat()
