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


async def readable_documents(tx: Tx, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Which of `ids` are documents the caller may read (whatever their status)."""
    records = await tx.fetch("SELECT id FROM cms_documents WHERE id = ANY($1::uuid[])", list(ids))
    return {record["id"] for record in records}


async def find_back_references(
    tx: Tx,
    targets: Sequence[uuid.UUID],
    *,
    types: Sequence[str],
    perspective: Perspective,
    planes: Sequence[str],
    limit: int,
    offset: int,
) -> list[Page[DocumentRow]]:
    """For each of `targets`, the documents of `types` whose data in one of `planes` references
    it, readable in `perspective`: most recently updated first, one page, and how many there are
    in all. One statement for every target (a list of documents asking for theirs is one read,
    not one per document); a second only for a page past the end of some target's list."""
    if not targets:
        return []
    where = (
        # A document referencing a target from both planes is one referencing document.
        "FROM (SELECT DISTINCT ref_id, referencer_id FROM cms_document_references"
        "      WHERE ref_id = ANY($1::uuid[]) AND plane = ANY($2::text[])) r"
        " JOIN cms_documents d ON d.id = r.referencer_id"
        f" WHERE d.type = ANY($3::text[]) AND {perspective_condition(perspective)}"
    )
    args = (list(targets), list(planes), list(types))
    records = await tx.fetch(
        f"SELECT * FROM (SELECT r.ref_id AS cms_target, {_COLUMNS},"
        " count(*) OVER target AS cms_total,"
        " row_number() OVER (target ORDER BY d.updated_at DESC, d.id) AS cms_position"
        f" {where} WINDOW target AS (PARTITION BY r.ref_id)) found"
        " WHERE cms_position > $4 AND cms_position <= $4 + $5"
        " ORDER BY cms_target, cms_position",
        *args,
        offset,
        limit,
    )
    rows: dict[uuid.UUID, list[DocumentRow]] = {target: [] for target in targets}
    totals: dict[uuid.UUID, int] = {}
    for record in records:
        rows[record["cms_target"]].append(DocumentRow.from_record(record))
        totals[record["cms_target"]] = record["cms_total"]
    past_the_end = [target for target in rows if target not in totals]
    if offset > 0 and past_the_end:  # no row carried their totals
        for record in await tx.fetch(
            f"SELECT r.ref_id AS cms_target, count(*) AS cms_total {where} GROUP BY r.ref_id",
            past_the_end,
            *args[1:],
        ):
            totals[record["cms_target"]] = record["cms_total"]
    return [
        Page.counted(rows[target], total=totals.get(target, 0), limit=limit, offset=offset)
        for target in targets
    ]
