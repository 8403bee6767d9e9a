"""Compiled reads through a transaction pooler without their text: `cms_read_pooled_call`.

Through PgBouncer (1.18, which does not track protocol-level prepared statements) every compiled
read by a known caller called `cms_read_pooled_known` (migration 0015) as an unnamed statement:
PostgreSQL parsed, analysed and planned the outer `SELECT` again on every call, the read's whole
text travelled with each call, and the function entered an exception block (a subtransaction) to
catch a read not prepared on the server session it reached. Short reads through the pooler
served 0.75-0.95 of the requests a second they served direct, and PostgreSQL spent about 45 µs
more on each.

`cms_read_pooled_call` is the same call without the text and without the exception block: it
opens with `cms_open_known` and executes the read, and when the read is not prepared on this
server session, PostgreSQL's own "no such prepared statement" (26000) reaches the client. The
server session keeps the call itself prepared too, as `cms_pooled_call_v1`, made with SQL
`PREPARE`: a client may run a statement prepared that way with a protocol-level Bind of its name,
so a client of the pooler sends only Bind, Execute and Sync, whichever server session its
transaction reaches. A statement the session lacks fails at that Bind with the same 26000, and
the client then calls `cms_read_pooled_known` with the text (`server/query/round_trip.py`).

So `cms_read_pooled_known` now also prepares the call on its server session when missing. It
looks in `pg_prepared_statements` on every call, which costs more than it did, but the server
calls it only after a miss (or for a read it has not sent yet): once per read and server session.
(A server of the previous release, during a rolling upgrade, calls it for every read and pays
that look-up each time.)

The name carries a version because the statement outlives this release on the sessions that hold
it: a later change to the call's arguments takes a new name. It does not start with `cms_read_`,
so the reads' cap (migration 0014) never deallocates it. What stays on a session is the call's
text, as with the reads: no value of any request (migration 0014's reasons apply).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-16 12:00:00.000000
"""

from __future__ import annotations

import runpy
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The server's name for the prepared call (`server/query/round_trip.py` binds it).
CALL_NAME = "cms_pooled_call_v1"

READ_POOLED_CALL = """
CREATE FUNCTION cms_read_pooled_call(
  known text, hierarchy boolean, statement_timeout_ms integer, request_role text,
  lock_timeout_ms integer, statement_name text, arguments text[], OUT results text[]
)
LANGUAGE plpgsql AS $$
DECLARE
  run text := format('EXECUTE %I', statement_name) || CASE
    WHEN cardinality(arguments) > 0 THEN (
      SELECT '(' || string_agg(quote_nullable(a.value), ', ' ORDER BY a.n) || ')'
      FROM unnest(arguments) WITH ORDINALITY AS a(value, n))
    ELSE '' END;
BEGIN
  PERFORM cms_open_known(
    known, hierarchy, statement_timeout_ms, request_role, true, lock_timeout_ms);
  EXECUTE run INTO results;
END
$$
"""

_FORMER = runpy.run_path(str(Path(__file__).with_name("20261213_0015_known_callers.py")))
FORMER_READ_POOLED_KNOWN = str(_FORMER["READ_POOLED_KNOWN"]).replace(
    "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1
)
_OPENING = (
    "  PERFORM cms_open_known(\n"
    "    known, hierarchy, statement_timeout_ms, request_role, true, lock_timeout_ms);\n"
)
# Before the read: a session that has the read (prepared by `cms_read_pooled`, or by this function
# of the previous release) but not the call would otherwise send every read back here.
# Dynamic, as plpgsql would take `$1` in a PREPARE of its own for the function's first argument.
_PREPARE_CALL = f"""  IF NOT EXISTS (SELECT FROM pg_prepared_statements p WHERE p.name = '{CALL_NAME}') THEN
    EXECUTE 'PREPARE {CALL_NAME}(text, boolean, integer, text, integer, text, text[])'
      ' AS SELECT cms_read_pooled_call($1, $2, $3, $4, $5, $6, $7)';
  END IF;
"""
READ_POOLED_KNOWN = FORMER_READ_POOLED_KNOWN.replace(_OPENING, _OPENING + _PREPARE_CALL, 1)
if _PREPARE_CALL not in READ_POOLED_KNOWN:
    raise RuntimeError("migration 0015's cms_read_pooled_known is not the text this one extends")


def upgrade() -> None:
    op.execute(READ_POOLED_CALL)
    op.execute(READ_POOLED_KNOWN)


def downgrade() -> None:
    op.execute(FORMER_READ_POOLED_KNOWN)
    op.execute(
        "DROP FUNCTION cms_read_pooled_call(text, boolean, integer, text, integer, text, text[])"
    )
