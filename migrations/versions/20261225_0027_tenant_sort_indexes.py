"""A list reads each organization's own rows in sort order, not every tenant's.

A compiled list page (`server/query/run.py`, `tenant_rows`) reads the rows of each organization
the request may read apart, each in its sort order and no further than the page's end, and merges
them. Before, it walked `idx_documents_type_updated_at` (or `idx_documents_published_date`), which
hold every tenant's documents of a type in one order, and Row-Level Security dropped the rows of
other organizations one by one after reading them from the heap: an organization with a tenth of
the documents read about ten rows for each one it showed, one with a thousandth a thousand.
PostgreSQL's CPU per statement for `bench/`'s 10% organization, before and after: Q3 (a filtered
list) 6.1 and 2.9 ms, Q1 460 and 395 µs; for its 80% organization the same within 1%.

The indexes of those walks, with the organization first:

- `idx_documents_org_type_updated_at`: `(organization_id, type, updated_at DESC, id)`, the default
  sort (`-updatedAt`). It replaces `idx_documents_org_type` `(organization_id, type, updated_at)`,
  whose every use it serves (a backward walk gives `updated_at` ascending).
- `idx_documents_org_published_date`: `idx_documents_published_date` with the organization first.

A caller whose kept facts (migration 0015) give it one organization to read, the usual case, has
its page read from that organization's walk alone, without the merge (`tenant_rows`'s
`one_organization` form), through `cms_one_readable_org()`: the one organization of
`app.readable_orgs`, or `CM007` (the caller's facts changed, so the server opens the request in
full and reads with the merge) when there are more or none. The facts are checked in the same
statement before that, so this only guards against a caller's facts the server misjudged.

The type-first indexes stay, for the reads that are not compiled (the local API's lists, the
back-references of a document) and take every organization's rows in one walk. Building these
blocks writes to `cms_documents` for the duration (about 30 s at a million documents).

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-25 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same indexes are declared in `server/db/tables.py`, so autogenerate sees them as part of the model.
INDEXES = {
    "idx_documents_org_type_updated_at": "CREATE INDEX idx_documents_org_type_updated_at"
    " ON cms_documents (organization_id, type, updated_at DESC, id)",
    "idx_documents_org_published_date": "CREATE INDEX idx_documents_org_published_date"
    " ON cms_documents (organization_id, type,"
    " cms_to_timestamptz(published_data ->> 'publishedDate') DESC NULLS LAST, id)"
    " WHERE status = 'published' AND published_data IS NOT NULL",
}


FUNCTIONS = (
    # STABLE although it raises: so `cms_one_readable_org` may be, and PostgreSQL inlines it.
    """
CREATE FUNCTION cms_facts_changed() RETURNS uuid
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'CM007', MESSAGE = 'the caller''s facts changed';
END
$$
""",
    """
CREATE FUNCTION cms_one_readable_org() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN cardinality(cms_readable_orgs()) = 1 THEN (cms_readable_orgs())[1]
    ELSE cms_facts_changed() END
$$
""",
)


def upgrade() -> None:
    for statement in INDEXES.values():
        op.execute(statement)
    op.execute("DROP INDEX idx_documents_org_type")
    for function in FUNCTIONS:
        op.execute(function)


def downgrade() -> None:
    op.execute("DROP FUNCTION cms_one_readable_org()")
    op.execute("DROP FUNCTION cms_facts_changed()")
    op.execute(
        "CREATE INDEX idx_documents_org_type ON cms_documents (organization_id, type, updated_at)"
    )
    for name in reversed(INDEXES):
        op.execute(f"DROP INDEX {name}")
