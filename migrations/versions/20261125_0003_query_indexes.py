"""Indexes for the list queries: the default sort, and the example model's sort by publishedDate.

Row-Level Security filters rows by `organization_id = ANY(<readable orgs>)`, an array known only at
run time, so the existing `(organization_id, type, updated_at)` index cannot deliver rows in order:
without these indexes every page sorts all documents of its type (seconds at 1M posts). Both lead
with `type`, then the sort key, then the `id` tiebreaker, exactly as `server/content/filters.py` spells the
ORDER BY, so a page is an index scan that stops after `limit + 1` visible rows:

- `idx_documents_type_updated_at`: `updated_at DESC, id`, the default sort (`-updatedAt`) of every
  list, in both perspectives (Q3 and Q5 of bench/).
- `idx_documents_published_date`: `cms_to_timestamptz(published_data->>'publishedDate') DESC NULLS
  LAST, id` over published rows, for `sort: "-publishedDate"` (Q1 and Q2 of bench/).

PostgreSQL 17 and later run index builds and ANALYZE with `search_path = pg_catalog, pg_temp`, where
`cms_to_timestamptz` cannot find `cms_to_date`; it now keeps the search path it was installed with.

Indexes measured and left out: one on `cms_to_numeric(published_data->'views')` (the planner walks
the updated_at index for Q3's `views > 500` instead: about 2% of posts match, and the first 21 come
sooner in sort order), and a trigram index for `contains` (a one-letter pattern has no trigram).

Building them blocks writes to `cms_documents` for the duration (about 30 s at a million documents).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 17:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same indexes are declared in `server/db/tables.py`, so autogenerate sees them as part of the model.
INDEXES = {
    "idx_documents_type_updated_at": "CREATE INDEX idx_documents_type_updated_at"
    " ON cms_documents (type, updated_at DESC, id)",
    "idx_documents_published_date": "CREATE INDEX idx_documents_published_date ON cms_documents"
    " (type, cms_to_timestamptz(published_data ->> 'publishedDate') DESC NULLS LAST, id)"
    " WHERE status = 'published' AND published_data IS NOT NULL",
}


def upgrade() -> None:
    op.execute("ALTER FUNCTION cms_to_timestamptz(text) SET search_path FROM CURRENT")
    for statement in INDEXES.values():
        op.execute(statement)


def downgrade() -> None:
    for name in reversed(INDEXES):
        op.execute(f"DROP INDEX {name}")
    op.execute("ALTER FUNCTION cms_to_timestamptz(text) RESET search_path")
