"""An index of each document's draft versions, for the retention's prune on every draft save.

A draft save deletes the drafts beyond the retention (`pruned` in `server/content/documents.py`):
it walks the document's versions from the newest to the first draft past the newest
`retention - 1`, then deletes the drafts up to that one. Publishes are never pruned and sit among
the drafts, so on the unique `(document_id, version_number)` index both walks passed every publish
the document ever had, each a heap fetch, and a document saved and published in turn grew more
expensive to save with every publish. This partial index holds the drafts only: the walk reads
`retention` entries and the delete finds the old drafts directly, whatever the history holds. It
costs one more index entry per draft save.

Building it blocks writes to `cms_document_versions` for the duration.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-17 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Declared in `server/db/tables.py` too, so autogenerate sees it as part of the model.
INDEX = (
    "CREATE INDEX idx_document_versions_drafts ON cms_document_versions"
    " (document_id, version_number) WHERE event_type = 'draft'"
)


def upgrade() -> None:
    op.execute(INDEX)


def downgrade() -> None:
    op.execute("DROP INDEX idx_document_versions_drafts")
