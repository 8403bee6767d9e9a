"""The date parsers without capture groups: `cms_to_date` and `cms_to_timestamptz` about ten times faster.

Both read their value with `regexp_match`, whose capture groups send PostgreSQL's regular
expression engine down its slow path (about 100 microseconds a value; `cms_read_datetime`,
migration 0005, avoids it for the same reason). `cms_to_timestamptz` also carried
`SET search_path` (migration 0003, so that index builds and ANALYZE, which run with
`search_path = pg_catalog, pg_temp` on PostgreSQL 17 and later, find `cms_to_date`), and a
function with a `SET` clause saves and restores the setting on every call.

It is the key of `idx_documents_published_date` and of every sort or filter on a datetime
field, so a page sorted by `-publishedDate` ran it once per row it scanned: about a millisecond
of the 20-post page at depth 2 (Q2 of bench/). Now each parser only asks whether the value
matches (a pattern without capture groups), then reads the fixed positions, and calls no function
of its own, so it needs no search path. The answers are the same for every input
(`tests/test_date_parsers.py` compares them with migration 0002's definitions), so the index
built on `cms_to_timestamptz` stays valid as it is.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-14 12:00:00.000000
"""

from __future__ import annotations

import runpy
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# op.execute reads `:name` as a bind parameter, so no colon in these bodies follows a character
# other than a letter or digit and precedes one (hence `[:]` and `(?:[0]...` in the patterns).
_DATE = "^[0-9]{4}-(?:[0][1-9]|[1][0-2])-(?:[0][1-9]|[12][0-9]|[3][01])"


def _parser(name: str, returns: str, pattern: str, result: str) -> str:
    """A parser of the date at positions 1-10 of any value `pattern` matches, then `result`."""
    return f"""
CREATE OR REPLACE FUNCTION {name}(value text) RETURNS {returns}
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  y int;
  m int;
  last_day int;
BEGIN
  IF value !~ ({pattern}) THEN
    RETURN NULL;
  END IF;
  y := substr(value, 1, 4)::int;
  m := substr(value, 6, 2)::int;
  last_day := CASE
    WHEN m = 2 THEN CASE WHEN y % 4 = 0 AND (y % 100 <> 0 OR y % 400 = 0) THEN 29 ELSE 28 END
    WHEN m IN (4, 6, 9, 11) THEN 30
    ELSE 31
  END;
  IF y = 0 OR substr(value, 9, 2)::int > last_day THEN
    RETURN NULL;
  END IF;
{result}END
$$
"""


TO_DATE = _parser(
    "cms_to_date",
    "date",
    f"'{_DATE}$'",
    "  RETURN make_date(y, m, substr(value, 9, 2)::int);\n",
)

# The pattern is migration 0002's with every group non-capturing and its date part as strict as
# `cms_to_date`'s. A value that matches has its time (if any) from position 12, and a sign or `Z`
# after that position only in its offset.
TO_TIMESTAMPTZ = _parser(
    "cms_to_timestamptz",
    "timestamptz",
    f"'{_DATE}'\n"
    "    '(?:[Tt ](?:[01][0-9]|2[0-3])[:][0-5][0-9](?:[:][0-5][0-9](?:[.][0-9]{1,20})?)?'\n"
    "    '(?:[Zz]|[+-](?:[0][0-9]|[1][0-5])(?:[:]?[0-5][0-9])?)?)?$'",
    """  IF length(value) = 10 THEN
    RETURN (value || 'T00:00:00+00')::timestamptz;
  END IF;
  IF substr(value, 12) !~ '[-+Zz]' THEN
    RETURN (value || '+00')::timestamptz;
  END IF;
  RETURN value::timestamptz;
""",
)

_FORMER = runpy.run_path(str(Path(__file__).with_name("20261125_0002_query_functions.py")))
FORMER_TO_DATE, FORMER_TO_TIMESTAMPTZ = (
    str(statement).replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
    for statement in _FORMER["FUNCTIONS"]
    if "cms_to_date(value text)" in statement or "cms_to_timestamptz(value text)" in statement
)


def upgrade() -> None:
    op.execute(TO_DATE)
    op.execute(TO_TIMESTAMPTZ)


def downgrade() -> None:
    op.execute(FORMER_TO_DATE)
    op.execute(FORMER_TO_TIMESTAMPTZ)
    # As migration 0003 left it.
    op.execute("ALTER FUNCTION cms_to_timestamptz(text) SET search_path FROM CURRENT")
