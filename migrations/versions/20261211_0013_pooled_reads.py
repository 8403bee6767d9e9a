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

import runpy
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Migration 0006's `cms_read` with the same arguments and opening; only the read's handling differs.
_FORMER: dict[str, str] = runpy.run_path(
    str(Path(__file__).with_name("20261202_0006_one_statement_reads.py"))
)  # type: ignore[assignment]
_READ = _FORMER["READ"]
_PREPARE_IF_MISSING = _READ[
    _READ.index("  -- A read the server believes") : _READ.index("  IF cardinality(arguments)")
]
_PREPARE_AFRESH = """  IF EXISTS (SELECT 1 FROM pg_prepared_statements p WHERE p.name = statement_name) THEN
    EXECUTE format('DEALLOCATE %I', statement_name);
  END IF;
  EXECUTE format('PREPARE %I AS %s', statement_name, statement_sql);
"""
_END = "  END IF;\nEND\n$$"
READ_TEXT = (
    _READ.replace("CREATE FUNCTION cms_read(", "CREATE FUNCTION cms_read_text(", 1)
    .replace(_PREPARE_IF_MISSING, _PREPARE_AFRESH, 1)
    .replace(_END, "  END IF;\n  EXECUTE format('DEALLOCATE %I', statement_name);\nEND\n$$", 1)
)
if READ_TEXT.count("DEALLOCATE") != 2 or "cms_read_text(" not in READ_TEXT:
    raise RuntimeError("migration 0006's cms_read is not the text this migration rewrites")


def upgrade() -> None:
    op.execute(READ_TEXT)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION cms_read_text(text, text, uuid, integer, text[], boolean, integer, text,"
        " integer, text, text, text[])"
    )
