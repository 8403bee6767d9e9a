"""The outbox wakes its worker from the writing statement, not from a trigger.

Migration 0011 notified `cms_outbox` from a statement-level trigger on `cms_outbox`. A statement
trigger fires even when the statement inserts no row, so every draft save notified too (its
`outbox` CTE inserts a row only when a webhook listens for draft saves), and PostgreSQL serialises
the commits of all notifying transactions (`NOTIFY` holds a cluster-wide lock from its commit's
start to its end, WAL flush included). Writes now say themselves whether they queued an event
(`server/content/documents.py`): a process that runs the outbox worker wakes it in process after
the commit, and only a process without one has the write statement notify, for the event it
queued.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-14 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS cms_outbox_notify ON cms_outbox")
    op.execute("DROP FUNCTION IF EXISTS cms_outbox_notify()")


def downgrade() -> None:
    op.execute(
        "CREATE OR REPLACE FUNCTION cms_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN PERFORM pg_notify('cms_outbox', ''); RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER cms_outbox_notify AFTER INSERT ON cms_outbox"
        " FOR EACH STATEMENT EXECUTE FUNCTION cms_outbox_notify()"
    )
