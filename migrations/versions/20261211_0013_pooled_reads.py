"""Compiled reads through a transaction pooler: `cms_read_text`, which leaves no session state.

`cms_read` (migration 0006) prepares a read on the connection's session the first time, and the
server sends only its name afterwards. Behind a transaction pooler (PgBouncer in transaction mode)
the next call may reach another server session, which never saw that `PREPARE`. `cms_read_text`
takes the same arguments and opens the request the same way, but is always given the read's text:
it prepares the read, executes it and deallocates it within the call, so the server session is left
as it was found. The read is still prepared (not pasted together with its arguments) so that each
placeholder takes the type PostgreSQL infers for it, exactly as on the session path, and both paths
give byte-identical answers.

`PREPARE` is not undone when the transaction fails, so a call that failed between `PREPARE` and
`DEALLOCATE` (a cancelled read) leaves the statement on that server session; the next call of the
same read there deallocates it first.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-11 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

READ_TEXT = """
CREATE FUNCTION cms_read_text(
  credential_kind text, credential_digest text, requested_org uuid,
  key_resolution_secs integer, admin_roles text[],
  hierarchy boolean, statement_timeout_ms integer, request_role text, lock_timeout_ms integer,
  statement_name text, statement_sql text, arguments text[],
  OUT principal text, OUT results text[]
)
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM cms_open_request(
    credential_kind, credential_digest, requested_org, key_resolution_secs, admin_roles,
    hierarchy, statement_timeout_ms, request_role, true);
  PERFORM set_config('lock_timeout', lock_timeout_ms::text, true);
  principal := current_setting('app.principal');
  IF EXISTS (SELECT 1 FROM pg_prepared_statements p WHERE p.name = statement_name) THEN
    EXECUTE format('DEALLOCATE %I', statement_name);
  END IF;
  EXECUTE format('PREPARE %I AS %s', statement_name, statement_sql);
  IF cardinality(arguments) > 0 THEN
    EXECUTE format('EXECUTE %I(%s)', statement_name, (
      SELECT string_agg(quote_nullable(a.value), ', ' ORDER BY a.n)
      FROM unnest(arguments) WITH ORDINALITY AS a(value, n)))
    INTO results;
  ELSE
    EXECUTE format('EXECUTE %I', statement_name) INTO results;
  END IF;
  EXECUTE format('DEALLOCATE %I', statement_name);
END
$$
"""


def upgrade() -> None:
    op.execute(READ_TEXT)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION cms_read_text(text, text, uuid, integer, text[], boolean, integer, text,"
        " integer, text, text, text[])"
    )
