"""Query functions: safe casts that the `where` and `sort` compilers (`server/content/filters.py`) use.

Each function returns NULL for a value it cannot read instead of raising, so a malformed value stored
in a draft (a number field holding "lots", a datetime field holding "soon") never turns a query into a
SQL error. All are IMMUTABLE, truthfully: the timestamp parser accepts ISO 8601 only and reads a value
without an offset as UTC, so no session setting (TimeZone, DateStyle) changes a result. That also lets
a later migration build expression indexes on them, e.g. `cms_to_numeric(published_data->'views')`.

The SQL-language functions are simple enough for the planner to inline; the two parsers are PL/pgSQL
without exception blocks (an exception block would start a subtransaction on every call).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 16:02:11.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# op.execute reads `:name` as a bind parameter, so no colon in these bodies is followed by a letter or
# digit (hence `(?:[0][0-9]...` in the offset pattern).
FUNCTIONS = (
    """
CREATE FUNCTION cms_to_numeric(value jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN jsonb_typeof(value) = 'number' THEN value::numeric END
$$
""",
    """
CREATE FUNCTION cms_to_boolean(value jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN jsonb_typeof(value) = 'boolean' THEN value::boolean END
$$
""",
    """
CREATE FUNCTION cms_to_uuid(value text) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN value ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN value::uuid
  END
$$
""",
    # The regular expression rules out month 13, day 32, hour 24 and the like; the day count per
    # month (and leap years) is checked by hand so that make_date can never raise.
    """
CREATE FUNCTION cms_to_date(value text) RETURNS date
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  parts text[] := regexp_match(value, '^([0-9]{4})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$');
  y int;
  m int;
  d int;
  last_day int;
BEGIN
  IF parts IS NULL THEN
    RETURN NULL;
  END IF;
  y := parts[1]::int;
  m := parts[2]::int;
  d := parts[3]::int;
  last_day := CASE
    WHEN m = 2 THEN CASE WHEN y % 4 = 0 AND (y % 100 <> 0 OR y % 400 = 0) THEN 29 ELSE 28 END
    WHEN m IN (4, 6, 9, 11) THEN 30
    ELSE 31
  END;
  IF y = 0 OR d > last_day THEN
    RETURN NULL;
  END IF;
  RETURN make_date(y, m, d);
END
$$
""",
    # A date alone means midnight UTC; a date-time without an offset is UTC. With the offset always
    # explicit, the text-to-timestamptz cast no longer depends on the session's TimeZone.
    """
CREATE FUNCTION cms_to_timestamptz(value text) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  parts text[] := regexp_match(value,
    '^([0-9]{4}-[0-9]{2}-[0-9]{2})'
    || '(?:[Tt ]([01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:[.][0-9]{1,20})?)?'
    || '([Zz]|[+-](?:[0][0-9]|[1][0-5])(?::?[0-5][0-9])?)?)?$');
BEGIN
  IF parts IS NULL OR cms_to_date(parts[1]) IS NULL THEN
    RETURN NULL;
  END IF;
  IF parts[2] IS NULL THEN
    RETURN (value || 'T00:00:00+00')::timestamptz;
  END IF;
  IF parts[3] IS NULL THEN
    RETURN (value || '+00')::timestamptz;
  END IF;
  RETURN value::timestamptz;
END
$$
""",
)

# In reverse order of creation: cms_to_timestamptz calls cms_to_date.
SIGNATURES = (
    "cms_to_timestamptz(text)",
    "cms_to_date(text)",
    "cms_to_uuid(text)",
    "cms_to_boolean(jsonb)",
    "cms_to_numeric(jsonb)",
)


def upgrade() -> None:
    for statement in FUNCTIONS:
        op.execute(statement)


def downgrade() -> None:
    for signature in SIGNATURES:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
