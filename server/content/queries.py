"""Finding documents: the `where` language, sorting, pagination and the perspective, as one statement.

The page and its total come from the same statement (`count(*) OVER ()`); a list that needs no total
fetches `limit + 1` rows instead, which tells whether there is a next page without counting.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from server.content import filters
from server.content.documents import DOCUMENT_COLUMNS, DocumentRow
from server.content.filters import SqlParams, compile_sort, compile_where
from server.db.pool import Tx
from server.model.pages import Page
from server.model.reading import Perspective
from server.model.types import Registry

# The document columns, qualified with the alias `d` that the filter compiler uses.
_COLUMNS = ", ".join(f"d.{column.strip()}" for column in DOCUMENT_COLUMNS.split(","))


def perspective_condition(perspective: Perspective, alias: str = "d") -> str:
    """The row condition of a perspective as SQL (`true` for drafts)."""
    return filters.perspective_condition(perspective, alias) or "true"


async def find_documents(
    tx: Tx,
    registry: Registry,
    type_name: str,
    *,
    where: Mapping[str, Any] | None,
    sort: str | Sequence[str] | None,
    limit: int,
    offset: int,
    perspective: Perspective,
    with_total: bool,
) -> Page[DocumentRow]:
    """One page of documents of `type_name`, filtered and sorted, in one statement."""
    params = SqlParams([type_name])
    condition = compile_where(registry, type_name, where, params=params, perspective=perspective)
    order = compile_sort(registry, type_name, sort, params=params, perspective=perspective)
    total_column = ", count(*) OVER () AS total_docs" if with_total else ""
    fetch = limit if with_total else limit + 1
    sql = (
        f"SELECT {_COLUMNS}{total_column} FROM cms_documents d"
        f" WHERE d.type = $1 AND {perspective_condition(perspective)}"
        f"{f' AND ({condition})' if condition else ''}"
        f" ORDER BY {order} LIMIT {params.add(fetch)} OFFSET {params.add(offset)}"
    )
    records = await tx.fetch(sql, *params.values)
    total: int | None = None
    if with_total:
        if records:
            total = records[0]["total_docs"]
        elif offset > 0:
            # Past the end: the window had no row to carry the total.
            count_params = SqlParams([type_name])
            count_condition = compile_where(
                registry, type_name, where, params=count_params, perspective=perspective
            )
            total = await tx.fetchval(
                f"SELECT count(*) FROM cms_documents d WHERE d.type = $1"
                f" AND {perspective_condition(perspective)}"
                f"{f' AND ({count_condition})' if count_condition else ''}",
                *count_params.values,
            )
        else:
            total = 0
    rows = [DocumentRow.from_record(r) for r in records[:limit]]
    has_next = (offset + len(rows) < total) if total is not None else len(records) > limit
    return Page(items=rows, limit=limit, offset=offset, total=total, has_next=has_next)


async def count_documents(
    tx: Tx,
    registry: Registry,
    type_name: str,
    *,
    where: Mapping[str, Any] | None,
    perspective: Perspective,
) -> int:
    params = SqlParams([type_name])
    condition = compile_where(registry, type_name, where, params=params, perspective=perspective)
    count: int = await tx.fetchval(
        f"SELECT count(*) FROM cms_documents d WHERE d.type = $1"
        f" AND {perspective_condition(perspective)}{f' AND ({condition})' if condition else ''}",
        *params.values,
    )
    return count


async def find_document_by_id(
    tx: Tx, type_name: str, document_id: uuid.UUID, *, perspective: Perspective
) -> DocumentRow | None:
    row = await tx.fetchrow(
        f"SELECT {_COLUMNS} FROM cms_documents d"
        f" WHERE d.id = $1 AND d.type = $2 AND {perspective_condition(perspective)}",
        document_id,
        type_name,
    )
    return DocumentRow.from_record(row) if row is not None else None
