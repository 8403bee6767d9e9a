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
    target: uuid.UUID,
    *,
    types: Sequence[str],
    perspective: Perspective,
    planes: Sequence[str],
    limit: int,
    offset: int,
) -> Page[DocumentRow]:
    """The documents of `types` whose data in one of `planes` references `target`, readable in
    `perspective`: most recently updated first, one page, and how many there are in all."""
    where = (
        "FROM cms_documents d"
        " WHERE d.id IN (SELECT r.referencer_id FROM cms_document_references r"
        "                 WHERE r.ref_id = $1 AND r.plane = ANY($2::text[]))"
        f" AND d.type = ANY($3::text[]) AND {perspective_condition(perspective)}"
    )
    args = (target, list(planes), list(types))
    records = await tx.fetch(
        f"SELECT {_COLUMNS}, count(*) OVER () AS total {where}"
        " ORDER BY d.updated_at DESC, d.id LIMIT $4 OFFSET $5",
        *args,
        limit,
        offset,
    )
    if records:
        total: int = records[0]["total"]
    elif offset > 0:  # past the end: no row carried the total
        total = await tx.fetchval(f"SELECT count(*) {where}", *args)
    else:
        total = 0
    rows = [DocumentRow.from_record(r) for r in records]
    return Page.counted(rows, total=total, limit=limit, offset=offset)
