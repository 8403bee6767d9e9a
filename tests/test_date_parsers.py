"""The date parsers of the `where` and sort compilers (migration 0016) against their former definitions.

`cms_to_date` and `cms_to_timestamptz` were rewritten for speed (no capture groups, no `SET
search_path`); `cms_to_timestamptz` is the key of `idx_documents_published_date`, so every input
must parse exactly as before or the index would no longer match its rows. The former definitions
(migration 0002) are installed as temporary functions and compared on fixed and generated values.
"""

from __future__ import annotations

import runpy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_MIGRATION = Path(__file__).parents[1] / "migrations/versions/20261125_0002_query_functions.py"

CASES = [
    "2024-01-07",
    "2024-02-29",
    "2023-02-29",
    "1900-02-29",
    "2000-02-29",
    "0000-01-01",
    "0001-01-01",
    "2024-13-01",
    "2024-00-10",
    "2024-04-31",
    "2024-04-30",
    "2024-01-00",
    "2024-01-32",
    "2024-1-07",
    " 2024-01-07",
    "2024-01-07\n",
    "2024-01-07T",
    "2024-01-07T10",
    "2024-01-07T10:00",
    "2024-01-07t10:00:59",
    "2024-01-07 23:59:59.123456789",
    "2024-01-07T24:00",
    "2024-01-07T23:60",
    "2024-01-07T23:59:60",
    "2024-01-07T10:00Z",
    "2024-01-07T10:00z",
    "2024-01-07T10:00:00-05",
    "2024-01-07T10:00:00+0530",
    "2024-01-07T10:00:00+05:30",
    "2024-01-07T10:00:00+05:3",
    "2024-01-07T10:00:00+05:60",
    "2024-01-07T10:00:00+16",
    "2024-01-07T10:00:00+15:59",
    "2024-01-07T10:00:00.5-00:00",
    "2024-01-07T10:00:00.",
    "2024-01-07T10:00:00Z ",
    "2024-01-07T10:00:00ZZ",
    "2024-01-07T10:00:00+-05",
    "9999-12-31T23:59:59.99999999999999999999Z",
    "9999-12-31T23:59:59.999999999999999999999Z",
    "20240107",
    "2024-01-07Z",
    "2024-01-07+01",
    "x",
    "",
]


@pytest.fixture
async def conn(cms_database_url: str) -> AsyncIterator[asyncpg.Connection[Any]]:
    """A connection with the former parsers as `pg_temp.former_to_date` / `former_to_timestamptz`."""
    connection = await asyncpg.connect(cms_database_url)
    statements: tuple[str, ...] = runpy.run_path(str(_MIGRATION))["FUNCTIONS"]
    for statement in statements:
        for name in ("cms_to_date", "cms_to_timestamptz"):
            if f"FUNCTION {name}(" in statement:
                await connection.execute(
                    statement.replace(
                        f"FUNCTION {name}(", f"FUNCTION pg_temp.former_{name[7:]}("
                    ).replace("cms_to_date(parts", "pg_temp.former_date(parts")
                )
    yield connection
    await connection.close()


async def _same(conn: asyncpg.Connection[Any], value: str | None) -> None:
    row = await conn.fetchrow(
        # As text: Python's datetime ends at year 9999, the parsers' answers do not.
        "SELECT cms_to_date($1)::text AS date, pg_temp.former_date($1)::text AS former_date,"
        " cms_to_timestamptz($1)::text AS moment,"
        " pg_temp.former_timestamptz($1)::text AS former_moment",
        value,
    )
    assert row is not None
    assert (row["date"], row["moment"]) == (row["former_date"], row["former_moment"]), value


@pytest.mark.parametrize("value", [*CASES, None])
async def test_a_value_parses_as_before(conn: asyncpg.Connection[Any], value: str | None) -> None:
    await _same(conn, value)


_two = st.integers(0, 99).map(lambda n: f"{n:02d}")


@st.composite
def _values(draw: Any) -> str:
    text = f"{draw(st.integers(0, 2999)):04d}-{draw(_two)}-{draw(_two)}"
    if draw(st.booleans()):
        text += draw(st.sampled_from(["T", "t", " ", "x"])) + f"{draw(_two)}:{draw(_two)}"
        if draw(st.booleans()):
            text += f":{draw(_two)}"
            if draw(st.booleans()):
                text += "." + draw(st.text("0123456789", min_size=0, max_size=22))
        zone = draw(st.sampled_from(["", "Z", "z", "+", "-"]))
        if zone in ("+", "-"):
            zone += draw(_two) + draw(st.sampled_from(["", ":", "::"]))
            zone += draw(st.sampled_from(["", draw(_two), "5"]))
        text += zone
    return text + draw(st.sampled_from(["", "", "", "Z", " ", "0"]))


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    # One connection for all examples: the functions keep no state.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(value=_values())
async def test_generated_values_parse_as_before(conn: asyncpg.Connection[Any], value: str) -> None:
    await _same(conn, value)


async def test_the_parsers_need_no_search_path(conn: asyncpg.Connection[Any]) -> None:
    # As PostgreSQL 17 and later run index builds and ANALYZE: the index on cms_to_timestamptz
    # must still be computable, without a `SET search_path` on the function (which costs every call).
    schema = await conn.fetchval("SELECT current_schema()")
    assert not await conn.fetchval(
        "SELECT bool_or(proconfig IS NOT NULL) FROM pg_proc"
        " WHERE proname IN ('cms_to_date', 'cms_to_timestamptz')"
    )
    async with conn.transaction():
        await conn.execute("SET LOCAL search_path = pg_catalog, pg_temp")
        moment = await conn.fetchval(
            f'SELECT "{schema}".cms_to_timestamptz($1) = $2::text::timestamptz',
            "2024-01-07",
            "2024-01-07T00:00:00+00",
        )
        day = await conn.fetchval(f'SELECT "{schema}".cms_to_date($1)', "2024-02-29")
    assert moment is True
    assert str(day) == "2024-02-29"
