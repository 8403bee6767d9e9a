"""Content delivery: persisted queries, webhooks, the transactional outbox and the delivery log.

- `cms_persisted_queries`: operations registered ahead of time (trusted documents), by SHA-256.
- `cms_webhooks`: an organization's webhooks (URL, events, document types, signing secret).
- `cms_outbox`: one row per document change that the outside world hears about, written by the
  change's own statement (`server/content/documents.py`), so it commits or rolls back with it. A trigger
  notifies `cms_outbox` at commit, which wakes the delivery worker (`server/delivery/outbox_worker.py`).
- `cms_webhook_deliveries`: one row per (event, webhook): state, attempts, next attempt, last
  status; the delivery log.

The three organization tables get the same Row-Level Security policies as the other tenant tables
(`server/db/rls.py`).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-10 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RLS_TABLES = ("cms_webhooks", "cms_outbox", "cms_webhook_deliveries")

# As in `server/db/rls.py` (and migration 0001).
_READ = (
    "(select cms_override_access()) OR organization_id = ANY ((select cms_readable_orgs())::uuid[])"
)
_WRITE = "(select cms_override_access()) OR organization_id = (select cms_current_org())"

NOTIFY_SQL = """
CREATE OR REPLACE FUNCTION cms_outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('cms_outbox', '');
  RETURN NULL;
END
$$;
---
CREATE TRIGGER cms_outbox_notify AFTER INSERT ON cms_outbox
FOR EACH STATEMENT EXECUTE FUNCTION cms_outbox_notify();
"""


def _policies(table: str) -> list[str]:
    return [
        f"CREATE POLICY {table}_select ON {table} FOR SELECT USING ({_READ})",
        f"CREATE POLICY {table}_insert ON {table} FOR INSERT WITH CHECK ({_WRITE})",
        f"CREATE POLICY {table}_update ON {table} FOR UPDATE USING ({_WRITE}) WITH CHECK ({_WRITE})",
        f"CREATE POLICY {table}_delete ON {table} FOR DELETE USING ({_WRITE})",
    ]


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(
        name,
        postgresql.TIMESTAMP(timezone=True),
        server_default=sa.text("now()"),
        nullable=nullable,
    )


def _org() -> sa.Column[object]:
    return sa.Column("organization_id", sa.UUID(), nullable=False)


def _org_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["organization_id"],
        ["cms_organizations.id"],
        name=op.f(f"fk_{table}_organization_id_cms_organizations"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "cms_persisted_queries",
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=True),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("hash", name=op.f("pk_cms_persisted_queries")),
    )
    op.create_table(
        "cms_webhooks",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        _org(),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("document_types", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        _org_fk("cms_webhooks"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cms_webhooks")),
    )
    op.create_index("idx_webhooks_org", "cms_webhooks", ["organization_id"], unique=False)
    op.create_table(
        "cms_outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        _org(),
        sa.Column("document_id", sa.UUID(), nullable=False),
        sa.Column("document_type", sa.String(length=100), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        _timestamp("occurred_at"),
        _org_fk("cms_outbox"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cms_outbox")),
    )
    op.create_table(
        "cms_webhook_deliveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("webhook_id", sa.UUID(), nullable=False),
        _org(),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("document_id", sa.UUID(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column(
            "state", sa.String(length=16), server_default=sa.text("'pending'"), nullable=False
        ),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _timestamp("next_attempt_at"),
        sa.Column("lease_until", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _timestamp("created_at"),
        sa.Column("delivered_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'delivered', 'failed')",
            name=op.f("ck_cms_webhook_deliveries_state"),
        ),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["cms_webhooks.id"],
            name=op.f("fk_cms_webhook_deliveries_webhook_id_cms_webhooks"),
            ondelete="CASCADE",
        ),
        _org_fk("cms_webhook_deliveries"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cms_webhook_deliveries")),
    )
    op.create_index(
        "idx_webhook_deliveries_log",
        "cms_webhook_deliveries",
        ["webhook_id", sa.text("id DESC")],
        unique=False,
    )
    op.create_index(
        "idx_webhook_deliveries_pending",
        "cms_webhook_deliveries",
        ["webhook_id", "document_id", "id"],
        unique=False,
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_index(
        "idx_webhook_deliveries_due",
        "cms_webhook_deliveries",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("state = 'pending'"),
    )
    for statement in NOTIFY_SQL.split("---"):
        op.execute(statement)
    for table in RLS_TABLES:
        for statement in _policies(table):
            op.execute(statement)
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")


def downgrade() -> None:
    op.drop_table("cms_webhook_deliveries")
    op.drop_table("cms_outbox")
    op.execute("DROP FUNCTION IF EXISTS cms_outbox_notify()")
    op.drop_index("idx_webhooks_org", table_name="cms_webhooks")
    op.drop_table("cms_webhooks")
    op.drop_table("cms_persisted_queries")
