"""Document writes stay prepared on the server sessions behind a transaction pooler: `cms_run_kept`.

Through PgBouncer in transaction mode asyncpg keeps no statement cache: every statement is parsed
and planned again on each call, and a document write's statement (the row, its version and the
reference index, in CTEs) costs PostgreSQL about a millisecond to plan, more than it costs to run.
Compiled reads already stay prepared on the sessions (migration 0014). A write cannot take their
way: it runs inside the request's transaction, where an unknown statement name would fail the
transaction, and `EXECUTE` of a prepared statement takes no bind parameters.

`cms_run_kept(name, text, run, keep)` runs `run` (`EXECUTE name(literals)`, written by the server
as for reads) and returns its first row, if any (the statements it serves return one row at most);
when the session lacks `name`, it prepares `text` under it first, keeping at most `keep` such
statements per session (the oldest go). The try runs in a block of its own, so a missing name
only costs the subtransaction; any other error leaves the function as it came, and fails the
transaction as it would have. The caller gives the row's column types (`AS t(...)`), which the
statement's description told it. The name is a digest of the text,
so whichever client prepared a statement on a session, another one's call means the same one: a
text is parametrised and holds nothing of a tenant, whose scope comes from the transaction's
settings as always. It is prepared and run as the role the transaction runs as (`cms_request`),
so Row-Level Security applies to it as to the statement sent whole.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-20 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUN_KEPT = """
CREATE FUNCTION cms_run_kept(statement_name text, statement_sql text, run text, keep integer)
RETURNS SETOF record
LANGUAGE plpgsql AS $$
DECLARE
  stale text;
  found_row record;
  found_rows bigint;
BEGIN
  BEGIN
    EXECUTE run INTO found_row;
    GET DIAGNOSTICS found_rows = ROW_COUNT;
  EXCEPTION WHEN invalid_sql_statement_name THEN
    -- Not prepared on this session yet, or deallocated for the cap.
    FOR stale IN
      SELECT p.name FROM pg_prepared_statements p
      WHERE starts_with(p.name, 'cms_kept_')
      ORDER BY p.prepare_time DESC, p.name
      OFFSET greatest(keep - 1, 0)
    LOOP
      EXECUTE format('DEALLOCATE %I', stale);
    END LOOP;
    EXECUTE format('PREPARE %I AS %s', statement_name, statement_sql);
    EXECUTE run INTO found_row;
    GET DIAGNOSTICS found_rows = ROW_COUNT;
  END;
  -- A dynamic EXECUTE sets ROW_COUNT, not FOUND.
  IF found_rows > 0 THEN
    RETURN NEXT found_row;
  END IF;
END
$$
"""


def upgrade() -> None:
    op.execute(RUN_KEPT)


def downgrade() -> None:
    op.execute("DROP FUNCTION cms_run_kept(text, text, text, integer)")
