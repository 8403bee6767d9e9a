"""Back-references: which documents point at a document, read from the reference index.

The engine keeps `cms_document_references` up to date on every write (`server/content/documents.py`): one
row per referencing document, target and plane (`draft`: its draft references it; `published`: its
published data does). Reading it is one statement. Row-Level Security applies to the referencing
documents as to any read, so a caller sees only those it may read: a child organization never sees
its parent's documents, nor a sibling's.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from server.content.documents import DOCUMENT_COLUMNS, DocumentRow
from server.content.queries import perspective_condition
from server.db.pool import Tx
from server.model.pages import Page
from server.model.reading import Perspective

PLANES = ("draft", "published")

_COLUMNS = ", ".join(f"d.{column.strip()}" for column in DOCUMENT_COLUMNS.split(","))


def planes_of(perspective: Perspective) -> tuple[str, ...]:
    """The plane whose references a perspective reads: drafts point with their draft data."""
    return ("published",) if perspective == "published" else ("draft",)


async def find_back_references(
    tx: Tx,
    targets: Sequence[uuid.UUID],
    *,
    types: Sequence[str],
    perspective: Perspective,
    planes: Sequence[str],
    limit: int,
    offset: int,
) -> dict[uuid.UUID, Page[DocumentRow]]:
    """For each of `targets` the caller may read (whatever its status), the documents of `types`
    whose data in one of `planes` references it, readable in `perspective`: most recently updated
    first, one page, and how many there are in all. One statement for every target: a list of
    documents asking for theirs is one read, not one per document. A target the caller may not
    read, or that does not exist, has no page."""
    if not targets:
        return {}
    referencing = (
        # `IN`: a document referencing the target from both planes is one referencing document.
        "FROM cms_documents d WHERE d.id IN (SELECT r.referencer_id FROM cms_document_references r"
        "                                    WHERE r.ref_id = t.id AND r.plane = ANY($2::text[]))"
        f" AND d.type = ANY($3::text[]) AND {perspective_condition(perspective)}"
    )
    records = await tx.fetch(
        # Row-Level Security leaves out the targets the caller may not read.
        f"SELECT t.id AS cms_target, (SELECT count(*) {referencing}) AS cms_total, page.*"
        f" FROM cms_documents t LEFT JOIN LATERAL (SELECT {_COLUMNS} {referencing}"
        "   ORDER BY d.updated_at DESC, d.id LIMIT $5 OFFSET $4) page ON true"
        " WHERE t.id = ANY($1::uuid[])"
        " ORDER BY t.id, page.updated_at DESC, page.id",
        list(dict.fromkeys(targets)),
        list(planes),
        list(types),
        offset,
        limit,
    )
    rows: dict[uuid.UUID, list[DocumentRow]] = {}
    totals: dict[uuid.UUID, int] = {}
    for record in records:
        page = rows.setdefault(record["cms_target"], [])
        totals[record["cms_target"]] = record["cms_total"]
        if record["id"] is not None:  # else a target with nothing on this page
            page.append(DocumentRow.from_record(record))
    return {
        target: Page.counted(page, total=totals[target], limit=limit, offset=offset)
        for target, page in rows.items()
    }
