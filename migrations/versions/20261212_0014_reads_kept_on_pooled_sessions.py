"""Compiled reads through a transaction pooler, kept prepared: `cms_read_pooled`.

`cms_read_text` (migration 0013) prepares, executes and deallocates the read within each call, so
PostgreSQL plans the read again on every call: through PgBouncer a compiled read cost about twice
what it costs on a session of its own. `cms_read_pooled` takes the same arguments plus a cap, is
always given the read's text, and prepares it only when the server session it reached lacks it; the
read then stays prepared on that session for whichever client the pooler sends there next.

That is safe to share. A read's name is a digest of its text (`server/query/round_trip.py`), so one
name means one text on every session; the text is parametrised and carries no tenant: the org
scope, the caller and the request role are transaction-local settings made by the opening, and
the read runs after them, under the request role and Row-Level Security, on every call
(PostgreSQL plans a prepared statement again when the role is not the one it was planned for, and
the policies read the settings when the read executes). What stays on the session is the
statement, never a value of a request.

The cap bounds what piles up: before preparing a read on a session that already holds
`keep_prepared` reads (names starting `cms_read_`), the function deallocates the ones prepared
longest ago. Other prepared statements on the session (not named so) are left alone.

The server no longer calls `cms_read_text`; it stays for servers of the previous release during a
rolling upgrade.

The read runs in a block that catches "no such prepared statement" (a subtransaction, which a
read-only statement enters without an XID), so a call that finds its read prepared, the usual
case, asks nothing else of the session.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-12 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Migration 0006's `cms_read`, with the same arguments and opening, and a cap.
READ_POOLED = """
CREATE FUNCTION cms_read_pooled(
  credential_kind text, credential_digest text, requested_org uuid,
  key_resolution_secs integer, admin_roles text[],
  hierarchy boolean, statement_timeout_ms integer, request_role text, lock_timeout_ms integer,
  statement_name text, statement_sql text, arguments text[], keep_prepared integer,
  OUT principal text, OUT results text[]
)
LANGUAGE plpgsql AS $$
DECLARE
  run text := format('EXECUTE %I', statement_name) || CASE
    WHEN cardinality(arguments) > 0 THEN (
      SELECT '(' || string_agg(quote_nullable(a.value), ', ' ORDER BY a.n) || ')'
      FROM unnest(arguments) WITH ORDINALITY AS a(value, n))
    ELSE '' END;
  stale text;
BEGIN
  PERFORM cms_open_request(
    credential_kind, credential_digest, requested_org, key_resolution_secs, admin_roles,
    hierarchy, statement_timeout_ms, request_role, true);
  PERFORM set_config('lock_timeout', lock_timeout_ms::text, true);
  principal := current_setting('app.principal');
  -- Usually the session has the read already (any client may have prepared it: the name is a
  -- digest of the text). Trying it costs less than asking pg_prepared_statements, which copies
  -- every statement of the session, texts included, on each call.
  BEGIN
    EXECUTE run INTO results;
    RETURN;
  EXCEPTION WHEN invalid_sql_statement_name THEN
    NULL;  -- not prepared on this session yet, or deallocated for the cap
  END;
  FOR stale IN
    SELECT p.name FROM pg_prepared_statements p
    WHERE starts_with(p.name, 'cms_read_')
    ORDER BY p.prepare_time DESC, p.name
    OFFSET greatest(keep_prepared - 1, 0)
  LOOP
    EXECUTE format('DEALLOCATE %I', stale);
  END LOOP;
  EXECUTE format('PREPARE %I AS %s', statement_name, statement_sql);
  EXECUTE run INTO results;
END
$$
"""


def upgrade() -> None:
    op.execute(READ_POOLED)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION cms_read_pooled(text, text, uuid, integer, text[], boolean, integer, text,"
        " integer, text, text, text[], integer)"
    )
