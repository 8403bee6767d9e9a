"""A known caller's read that leaves its connection scoped to the caller: `cms_read_known_scoped`.

`cms_read_known_run` (migration 0020) scopes its one statement to the caller: it checks the
caller's facts, makes the organization settings and the role switch local to the statement, and
runs the prepared read with `EXECUTE` from PL/pgSQL. On a connection that keeps serving the same
caller, most of that is the same work every time: of PostgreSQL's time for a read of one post,
the function, its settings and the `EXECUTE` take about a quarter.

The server keeps a second pool for such reads (`server/db/pool.py`, `Database.read_session`),
whose connections start as the request role (`role` given at connection start, so even
`RESET ROLE` returns to it) and read-only (`default_transaction_read_only`). This function is
`cms_read_known_run` for those connections, with the organization settings made for the session
instead of the statement, and `app.scope` set to the server's name for them. The next read on
that connection by the same caller then runs its statement directly, gated by
`app.scope`, the current role, the access counter and the credential's expiry
(`server/query/round_trip.py`, `scoped_sql`); a gate that fails reads nothing, and the server
scopes the connection again with this function, which checks the facts as 0020 does.

Session settings made by a statement that fails are undone with it, so a connection's settings
are those of its last read that succeeded, and `app.scope` names them.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-23 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

READ_KNOWN_SCOPED = """
CREATE FUNCTION cms_read_known_scoped(
  known text, organization_id text, readable text, facts_epoch text, facts_expires text,
  hierarchy boolean, request_role text, lock_timeout_ms integer, run text, scope text,
  OUT results text[]
)
LANGUAGE plpgsql AS $$
BEGIN
  IF known IS NULL
     OR (SELECT e.epoch FROM cms_access_epoch e) IS DISTINCT FROM facts_epoch::bigint
     OR coalesce(facts_expires::timestamptz <= now(), false) THEN
    RAISE EXCEPTION USING ERRCODE = 'CM007', MESSAGE = 'the caller''s facts changed';
  END IF;
  -- For the session: the next reads on this connection by the same caller find them made.
  PERFORM set_config('app.organization_id', organization_id, false),
          set_config('app.hierarchy', CASE WHEN hierarchy THEN 'on' ELSE 'off' END, false),
          set_config('app.readable_orgs', readable, false),
          set_config('app.principal', known, false),
          set_config('lock_timeout', lock_timeout_ms::text, false),
          set_config('app.scope', scope, false),
          -- The connection started as the request role; this statement runs as it in any case.
          set_config('role', coalesce(request_role, 'none'), true),
          set_config('transaction_read_only', 'on', true);
  EXECUTE run INTO results;
END
$$
"""


def upgrade() -> None:
    op.execute(READ_KNOWN_SCOPED)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION cms_read_known_scoped(text, text, text, text, text, boolean, text, integer,"
        " text, text)"
    )
