"""A known caller's document write in one statement: `cms_write_known_run`.

A write runs in the request's transaction: `BEGIN` with the opening, its statements, `COMMIT`,
each a round trip. The publish of a draft this process has just saved (`publish_saved_draft` in
`server/content/documents.py`) is one statement that checks for itself that the document is still
that draft, so it needs no transaction around it: this function opens the request for a known
caller as `cms_read_known_run` does (migration 0020: the access counter and the expiry checked,
the organization settings made, the switch to the request role), without making it read-only,
and runs the write as `cms_run_kept` does (migration 0022: prepared on the session under its
name, prepared from its text first when the session lacks it). The statement that calls it is
the unit of work, committed by PostgreSQL when it ends: one round trip in place of three.

With `refuse_wrong` it refuses the write as a whole (SQLSTATE `CM008`, so nothing of it is
committed) when the row says it found references to targets of a type their field does not allow
(`wrong`): the request then runs again in a transaction of its own, which refuses the write with
the error it always gives. A changed counter or a passed expiry raise `CM007`, as for reads.

A draft save runs two such statements: the read of the document (no lock: `refuse_wrong` off),
then the write, which goes ahead only while the row is still the version read (its `xmin`).

Whether the session has the statement prepared is the caller's to say when it knows
(`prepared`: a connection of its own, which keeps the names it prepared), so that the write runs
without an exception block, whose subtransaction would give it a transaction id of its own;
null when it cannot know (behind a transaction pooler), and a missing statement is then prepared
in the block's handler, as `cms_run_kept` does.

The write is the statement the server names and writes (`EXECUTE` of a kept statement, with its
arguments as literals), run as the request role, so Row-Level Security applies to it as to the
statement sent whole.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-21 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PREPARE_KEPT = """
CREATE FUNCTION cms_prepare_kept(statement_name text, statement_sql text, keep integer)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  stale text;
BEGIN
  -- A statement that failed after preparing it was rolled back, but not the PREPARE.
  IF EXISTS (SELECT FROM pg_prepared_statements p WHERE p.name = statement_name) THEN
    RETURN;
  END IF;
  -- As cms_run_kept: at most `keep` kept statements on the session, the oldest go.
  FOR stale IN
    SELECT p.name FROM pg_prepared_statements p
    WHERE starts_with(p.name, 'cms_kept_')
    ORDER BY p.prepare_time DESC, p.name
    OFFSET greatest(keep - 1, 0)
  LOOP
    EXECUTE format('DEALLOCATE %I', stale);
  END LOOP;
  EXECUTE format('PREPARE %I AS %s', statement_name, statement_sql);
END
$$
"""

WRITE_KNOWN_RUN = """
CREATE FUNCTION cms_write_known_run(
  known text, organization_id text, readable text, facts_epoch text, facts_expires text,
  hierarchy boolean, request_role text, lock_timeout_ms integer,
  statement_name text, statement_sql text, run text, keep integer, refuse_wrong boolean,
  prepared boolean
)
RETURNS SETOF record
LANGUAGE plpgsql AS $$
DECLARE
  found_row record;
  found_rows bigint;
BEGIN
  IF known IS NULL
     OR (SELECT e.epoch FROM cms_access_epoch e) IS DISTINCT FROM facts_epoch::bigint
     OR coalesce(facts_expires::timestamptz <= now(), false) THEN
    RAISE EXCEPTION USING ERRCODE = 'CM007', MESSAGE = 'the caller''s facts changed';
  END IF;
  PERFORM set_config('app.organization_id', organization_id, true),
          set_config('app.hierarchy', CASE WHEN hierarchy THEN 'on' ELSE 'off' END, true),
          set_config('app.readable_orgs', readable, true),
          set_config('app.principal', known, true),
          set_config('jit', 'off', true),
          set_config('lock_timeout', lock_timeout_ms::text, true),
          set_config('role', coalesce(request_role, 'none'), true);
  IF prepared THEN
    -- The caller knows the session has it: no block, so no subtransaction for the write.
    EXECUTE run INTO found_row;
    GET DIAGNOSTICS found_rows = ROW_COUNT;
  ELSIF NOT prepared THEN
    -- The caller knows the session lacks it.
    PERFORM cms_prepare_kept(statement_name, statement_sql, keep);
    EXECUTE run INTO found_row;
    GET DIAGNOSTICS found_rows = ROW_COUNT;
  ELSE
    -- Unknown (a transaction pooler's session): try, and prepare when it is missing.
    BEGIN
      EXECUTE run INTO found_row;
      GET DIAGNOSTICS found_rows = ROW_COUNT;
    EXCEPTION WHEN invalid_sql_statement_name THEN
      PERFORM cms_prepare_kept(statement_name, statement_sql, keep);
      EXECUTE run INTO found_row;
      GET DIAGNOSTICS found_rows = ROW_COUNT;
    END;
  END IF;
  IF found_rows > 0 THEN
    -- Nested, so that a row without `wrong` (a read) never has the field looked up.
    IF refuse_wrong THEN
      IF found_row.wrong IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CM008',
          MESSAGE = 'the write found references to targets of a type their field does not allow';
      END IF;
    END IF;
    RETURN NEXT found_row;
  END IF;
END
$$
"""


def upgrade() -> None:
    op.execute(PREPARE_KEPT)
    op.execute(WRITE_KNOWN_RUN)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION cms_write_known_run(text, text, text, text, text, boolean, text, integer,"
        " text, text, text, integer, boolean, boolean)"
    )
    op.execute("DROP FUNCTION cms_prepare_kept(text, text, integer)")
