"""Restore versions: `restoreDocumentVersion` records its own event, naming the version it restored.

- `version_event` gains `restore`.
- `cms_document_versions.restored_from`: for a restore, the number of the version it made the draft
  again (NULL for the other events).

Restore versions are kept, as publish versions are: the retention prunes draft saves only.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The new value may not be used in this transaction; nothing here uses it.
    op.execute("ALTER TYPE version_event ADD VALUE IF NOT EXISTS 'restore'")
    op.add_column("cms_document_versions", sa.Column("restored_from", sa.Integer()))


def downgrade() -> None:
    # PostgreSQL cannot drop an enum value: restores become draft saves, and the type is rebuilt.
    op.drop_column("cms_document_versions", "restored_from")
    op.execute("ALTER TYPE version_event RENAME TO version_event_old")
    op.execute("CREATE TYPE version_event AS ENUM ('draft', 'publish')")
    op.execute(
        "ALTER TABLE cms_document_versions ALTER COLUMN event_type TYPE version_event"
        " USING (CASE event_type::text WHEN 'restore' THEN 'draft' ELSE event_type::text END)"
        "::version_event"
    )
    op.execute("DROP TYPE version_event_old")
