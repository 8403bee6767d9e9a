"""Compiled reads through a transaction pooler, kept prepared: `cms_read_pooled`.

`cms_read_text` (migration 0013) prepares, executes and deallocates the read within each call, so
PostgreSQL plans the read again on every call: through PgBouncer a compiled read cost about twice
what it costs on a session of its own. `cms_read_pooled` takes the same arguments plus a cap, is
always given the read's text, and prepares it only when the server session it reached lacks it; the
read then stays prepared on that session for whichever client the pooler sends there next.

That is safe to share. A read's name is a digest of its text (`server/query/round_trip.py`), so one
name means one text on every session; the text is parametrised and carries no tenant: the org
scope, the caller and the request role are transaction-local settings made by the opening, and
the read is planned and run after them, under the request role and Row-Level Security, on every
call. What stays on the session is the statement, never a value of a request.

The cap bounds what piles up: before preparing a read on a session that already holds
`keep_prepared` reads (names starting `cms_read_`), the function deallocates the ones prepared
longest ago. Statements that other clients of the pooler prepared are left alone.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-12 12:00:00.000000
"""

from __future__ import annotations

import runpy
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Migration 0006's `cms_read` with the same opening; the read's preparation is capped here.
_FORMER: dict[str, str] = runpy.run_path(
    str(Path(__file__).with_name("20261202_0006_one_statement_reads.py"))
)  # type: ignore[assignment]
_READ = _FORMER["READ"]
_PREPARE_IF_MISSING = _READ[
    _READ.index("  -- A read the server believes") : _READ.index("  IF cardinality(arguments)")
]
_PREPARE_CAPPED = """  -- The name is a digest of the text: a read prepared here by any client is this read.
  IF NOT EXISTS (SELECT 1 FROM pg_prepared_statements p WHERE p.name = statement_name) THEN
    FOR stale IN
      SELECT p.name FROM pg_prepared_statements p
      WHERE starts_with(p.name, 'cms_read_')
      ORDER BY p.prepare_time DESC, p.name
      OFFSET greatest(keep_prepared - 1, 0)
    LOOP
      EXECUTE format('DEALLOCATE %I', stale);
    END LOOP;
    EXECUTE format('PREPARE %I AS %s', statement_name, statement_sql);
  END IF;
"""
READ_POOLED = (
    _READ.replace("CREATE FUNCTION cms_read(", "CREATE FUNCTION cms_read_pooled(", 1)
    .replace(
        "arguments text[],\n",
        "arguments text[],\n  keep_prepared integer,\n",
        1,
    )
    .replace(
        "LANGUAGE plpgsql AS $$\nBEGIN\n",
        "LANGUAGE plpgsql AS $$\nDECLARE\n  stale text;\nBEGIN\n",
        1,
    )
    .replace(_PREPARE_IF_MISSING, _PREPARE_CAPPED, 1)
)
if "keep_prepared integer" not in READ_POOLED or "stale text" not in READ_POOLED:
    raise RuntimeError("migration 0006's cms_read is not the text this migration rewrites")


def upgrade() -> None:
    op.execute(READ_POOLED)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION cms_read_pooled(text, text, uuid, integer, text[], boolean, integer, text,"
        " integer, text, text, text[], integer)"
    )
