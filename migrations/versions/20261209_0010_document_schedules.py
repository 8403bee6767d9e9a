"""Scheduled publishing and unpublishing: `cms_document_schedules` and the `document.schedule`
capability.

- `cms_document_schedules`: a publish or unpublish of one document at a time, with its status
  (`pending`, `succeeded`, `failed`, `cancelled`), why it failed, and for a publish the draft
  revision it pins. Under the same Row-Level Security as the documents (read down the tree, write
  only the current organization), written by hand as in `0001`; `server/db/rls.py` repairs it.
- The built-in roles that hold every document capability (owner, admin, editor) gain
  `document.schedule`, next to `document.unpublish` as in `server/access/capabilities.py`.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-09 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "cms_document_schedules"

_READ = (
    "(select cms_override_access()) OR organization_id = ANY ((select cms_readable_orgs())::uuid[])"
)
_WRITE = "(select cms_override_access()) OR organization_id = (select cms_current_org())"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("document_id", sa.UUID(), nullable=False),
        sa.Column("document_type", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("run_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=True),
        sa.Column(
            "status", sa.String(length=16), server_default=sa.text("'pending'"), nullable=False
        ),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("retry_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("error_code", sa.String(length=40), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("cancelled_by", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("completed_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.CheckConstraint(
            "action IN ('publish', 'unpublish')", name=op.f("ck_cms_document_schedules_action")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'succeeded', 'failed', 'cancelled')",
            name=op.f("ck_cms_document_schedules_status"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["cms_organizations.id"],
            name=op.f("fk_cms_document_schedules_organization_id_cms_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cms_document_schedules")),
    )
    op.create_index(
        "idx_document_schedules_due",
        TABLE,
        [sa.text("coalesce(retry_at, run_at)")],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index("idx_document_schedules_document", TABLE, ["document_id", "run_at"])
    op.create_index("idx_document_schedules_org", TABLE, ["organization_id", "run_at"])
    for statement in (
        f"CREATE POLICY {TABLE}_select ON {TABLE} FOR SELECT USING ({_READ})",
        f"CREATE POLICY {TABLE}_insert ON {TABLE} FOR INSERT WITH CHECK ({_WRITE})",
        f"CREATE POLICY {TABLE}_update ON {TABLE} FOR UPDATE USING ({_WRITE}) WITH CHECK ({_WRITE})",
        f"CREATE POLICY {TABLE}_delete ON {TABLE} FOR DELETE USING ({_WRITE})",
        f"ALTER TABLE {TABLE} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {TABLE} FORCE ROW LEVEL SECURITY",
    ):
        op.execute(statement)
    # Right after document.unpublish, the canonical order the roles store capabilities in.
    op.execute(
        """UPDATE cms_organization_roles r SET updated_at = now(), capabilities = (
               SELECT jsonb_agg(c.value ORDER BY c.position) FROM (
                   SELECT value, position::numeric AS position
                     FROM jsonb_array_elements(r.capabilities) WITH ORDINALITY AS e(value, position)
                   UNION ALL
                   SELECT '"document.schedule"'::jsonb, position + 0.5
                     FROM jsonb_array_elements(r.capabilities) WITH ORDINALITY AS e(value, position)
                    WHERE value = '"document.unpublish"'
               ) AS c)
            WHERE r.is_built_in AND r.name IN ('owner', 'admin', 'editor')
              AND r.capabilities ? 'document.unpublish'
              AND NOT r.capabilities ? 'document.schedule'"""
    )


def downgrade() -> None:
    for table, column in (("cms_organization_roles", "capabilities"), ("api_keys", "capabilities")):
        op.execute(
            f"UPDATE {table} SET {column} = {column} - 'document.schedule'"
            f" WHERE {column} ? 'document.schedule'"
        )
    op.drop_index("idx_document_schedules_org", table_name=TABLE)
    op.drop_index("idx_document_schedules_document", table_name=TABLE)
    op.drop_index("idx_document_schedules_due", table_name=TABLE)
    op.drop_table(TABLE)
