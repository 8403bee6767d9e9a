"""The pooled read's prepared call runs `cms_read_known_run`: `cms_pooled_call_v2`.

Migration 0020 made a known caller's read cheaper on a session of its own: `cms_read_known_run`
takes the four facts it checks apart (no JSON parsed in the database) and the read's `EXECUTE`
written by the server (no query to build it). Through a transaction pooler the read still went
to `cms_read_pooled_call` (migration 0018), which does both the old way, so the pooled path fell
behind the direct one by what 0020 saved (about 30 µs of PostgreSQL's CPU a read).

Each server session now keeps `cms_read_known_run` itself prepared, as `cms_pooled_call_v2`, and
`cms_read_pooled_known` prepares that name where `cms_pooled_call_v1` was prepared before: a new
name, since the arguments are not the old call's. `cms_read_known_run` fails with PostgreSQL's
26000 when the read is not prepared on the session, as `cms_read_pooled_call` did, and the server
then sends the read with its text to `cms_read_pooled_known` (`server/query/round_trip.py`).

During a rolling upgrade, servers of the previous release bind `cms_pooled_call_v1`, which
sessions no longer gain: their reads take the text path (two round trips) until they are
replaced. `cms_read_pooled_call` stays for them.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-19 12:00:00.000000
"""

from __future__ import annotations

import runpy
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The server's name for the prepared call (`server/query/round_trip.py` binds it).
CALL_NAME = "cms_pooled_call_v2"

_FORMER = runpy.run_path(str(Path(__file__).with_name("20261216_0018_pooled_read_call.py")))
FORMER_READ_POOLED_KNOWN = str(_FORMER["READ_POOLED_KNOWN"])
_FORMER_PREPARE = str(_FORMER["_PREPARE_CALL"])
# Dynamic, as plpgsql would take `$1` in a PREPARE of its own for the function's first argument.
_PREPARE_CALL = f"""  IF NOT EXISTS (SELECT FROM pg_prepared_statements p WHERE p.name = '{CALL_NAME}') THEN
    EXECUTE 'PREPARE {CALL_NAME}(text, text, text, text, text, boolean, text, integer, text)'
      ' AS SELECT cms_read_known_run($1, $2, $3, $4, $5, $6, $7, $8, $9)';
  END IF;
"""
READ_POOLED_KNOWN = FORMER_READ_POOLED_KNOWN.replace(_FORMER_PREPARE, _PREPARE_CALL, 1)
if _PREPARE_CALL not in READ_POOLED_KNOWN:
    raise RuntimeError("migration 0018's cms_read_pooled_known is not the text this one changes")


def upgrade() -> None:
    op.execute(READ_POOLED_KNOWN)


def downgrade() -> None:
    op.execute(FORMER_READ_POOLED_KNOWN)
