"""A known caller's prepared read with less around it: `cms_read_known_run`.

A compiled read by a known caller (migration 0015) cost PostgreSQL about 60 µs more than the read
itself run as the request role. Of that, `cms_read_known` spent a good part on work the server can
do once per caller or per request instead:

- `cms_open_known` parsed the kept facts (`app.principal`'s JSON text, most of a kilobyte) on
  every read to find four values in them: the organization, the readable organizations, the
  access counter and the credential's expiry. The server now sends those four as arguments, the
  texts `->>` finds, taken once per caller from the facts it keeps (`server/access/opening.py`),
  and still sends the facts whole for `app.principal`.
- The `EXECUTE name(literals)` text of the read was built by an SQL subquery (`unnest` and
  `string_agg` of `quote_nullable`), one more query for the executor. The server now sends it
  built: the read's name, which the server made (`cms_read_` and hex digits), and each argument
  as `quote_literal` writes it (`server/query/round_trip.py`'s `execute_text`); the arguments
  are the same texts as before, so PostgreSQL turns them into the same values.
- The opening was a second PL/pgSQL function (`cms_open_known`) called from the first; its checks
  and settings are now in this one function, in one `PERFORM`.
- `statement_timeout` is no longer set: PostgreSQL arms the statement timeout when a statement
  starts, so a value set inside the one statement of a read limits nothing (the server cancels
  the read itself after the request statement timeout, as before).

What a read is allowed to see does not change: the counter and the expiry are checked as
`cms_open_known` checks them (a changed counter, a passed expiry or missing facts raise `CM007`),
the same organization settings are made, and the read runs after the switch to the request role,
read-only. `run` executes as that role, so a text that were anything but the prepared read would
still run under the request role's policies; the server only ever sends `EXECUTE` of a read it
prepared. A read not prepared on the session fails with PostgreSQL's 26000, as with
`cms_read_known`, which still serves a read the connection has not prepared yet (with its text).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-18 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

READ_KNOWN_RUN = """
CREATE FUNCTION cms_read_known_run(
  known text, organization_id text, readable text, facts_epoch text, facts_expires text,
  hierarchy boolean, request_role text, lock_timeout_ms integer, run text, OUT results text[]
)
LANGUAGE plpgsql AS $$
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
          -- Request statements are short; JIT would cost tens of milliseconds (migration 0004).
          set_config('jit', 'off', true),
          set_config('lock_timeout', lock_timeout_ms::text, true),
          set_config('role', coalesce(request_role, 'none'), true),
          set_config('transaction_read_only', 'on', true);
  EXECUTE run INTO results;
END
$$
"""


def upgrade() -> None:
    op.execute(READ_KNOWN_RUN)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION cms_read_known_run(text, text, text, text, text, boolean, text, integer, text)"
    )
