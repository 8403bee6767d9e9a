"""Depth-limited, cycle-skipping reference resolution, batched per depth level.

A reference is stored as `{"_type": "reference", "_ref": "<id>"}`. Resolving to depth n inlines the
referenced document (in the same perspective), then its references to depth n - 1, and so on. A
reference stays as it is (a stub with `_ref`) when:

- the remaining depth is zero;
- its target already appears on the path from the root (A -> B -> A, self-references, longer loops);
- the target cannot be read: another tenant's, missing, or unpublished under the published perspective.
  Row-Level Security and the perspective condition decide this in the fetch itself;
- the target's type is not one the reference's field takes (`to`, by the schema registered now:
  `server/model/reference_paths.py`), whatever stored it there.

Fetching is breadth-first: every id needed at one depth level is loaded by one statement
(`id = ANY($1)`), so a whole result set costs at most `depth` extra statements however many documents
and references it holds. The image and file objects' inner `asset` references point at assets, not
documents, and are left alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

from server.content.documents import DOCUMENT_COLUMNS, DocumentRow
from server.content.filters import perspective_condition
from server.db.pool import Tx
from server.model.reading import Perspective
from server.model.reference_paths import Node, Paths, fields_of, item_of, takes

_ASSET_TYPES = frozenset({"image", "file"})

Render = Callable[[DocumentRow, dict[str, Any]], dict[str, Any]]


class InlinedDocument(dict[str, Any]):
    """A rendered document standing where a reference was; `reference` keeps the stored value.

    It serialises as the plain document; readers that must check the target's type against the
    field's (GraphQL) use `reference` to fall back to a stub.
    """

    __slots__ = ("reference",)

    def __init__(self, document: dict[str, Any], reference: dict[str, Any]) -> None:
        super().__init__(document)
        self.reference = reference


def iter_reference_ids(value: Any) -> Iterator[str]:
    """Every document id referenced anywhere in `value` (asset references excluded)."""
    if isinstance(value, dict):
        ref = value.get("_ref")
        if isinstance(ref, str) and value.get("_type", "reference") == "reference":
            yield ref
            return
        skip_asset = _holds_asset(value)
        for key, item in value.items():
            if not (skip_asset and key == "asset"):
                yield from iter_reference_ids(item)
    elif isinstance(value, list):
        for item in value:
            yield from iter_reference_ids(item)


def _holds_asset(value: dict[str, Any]) -> bool:
    """An image or file object, whose `asset` points at an asset (any `_type` may be stored)."""
    kind = value.get("_type")
    return isinstance(kind, str) and kind in _ASSET_TYPES


def data_of(row: DocumentRow, perspective: Perspective) -> dict[str, Any]:
    data = row.published_data if perspective == "published" else row.draft_data
    return data or {}


def _as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def fetch_documents(
    tx: Tx, ids: list[uuid.UUID], perspective: Perspective
) -> dict[str, DocumentRow]:
    """The readable documents among `ids`, in one statement."""
    condition = perspective_condition(perspective, "d")
    rows = await tx.fetch(
        f"SELECT {DOCUMENT_COLUMNS} FROM cms_documents d"
        f" WHERE d.id = ANY($1::uuid[]){f' AND {condition}' if condition else ''}",
        ids,
    )
    return {str(row["id"]): DocumentRow.from_record(row) for row in rows}


async def resolve_references(
    tx: Tx,
    roots: list[DocumentRow],
    *,
    depth: int,
    perspective: Perspective,
    render: Render,
    paths: Paths,
) -> list[dict[str, Any]]:
    """Render `roots` with their references inlined to `depth`.

    Args:
        tx: the org-scoped transaction (RLS decides what can be inlined).
        roots: the documents to render, already fetched.
        depth: 0 to 5.
        perspective: "published" or "draft"; it holds at every level.
        render: turns a row and its (resolved) data into the output document.
        paths: `reference_paths` of the registry: the types each declared reference may lead to.

    Returns:
        One output document per root, in order.
    """
    known: dict[str, DocumentRow] = {str(row.id): row for row in roots}
    frontier = list(roots)
    for _ in range(depth):
        wanted: set[str] = set()
        for row in frontier:
            wanted.update(iter_reference_ids(data_of(row, perspective)))
        missing = [uid for ref in wanted - known.keys() if (uid := _as_uuid(ref)) is not None]
        if not missing:
            break
        fetched = await fetch_documents(tx, missing, perspective)
        known.update(fetched)
        # Only documents new at this level can lead further down.
        frontier = list(fetched.values())

    def inline(value: Any, remaining: int, path: frozenset[str], node: Node | None) -> Any:
        if isinstance(value, dict):
            ref = value.get("_ref")
            if isinstance(ref, str) and value.get("_type", "reference") == "reference":
                target = known.get(ref)
                if remaining <= 0 or target is None or ref in path or not takes(node, target.type):
                    return value
                return InlinedDocument(document(target, remaining - 1, path | {ref}), value)
            skip_asset = _holds_asset(value)
            fields = fields_of(paths, node) or {}
            return {
                key: item
                if (skip_asset and key == "asset")
                else inline(item, remaining, path, fields.get(key))
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [inline(item, remaining, path, item_of(node, item)) for item in value]
        return value

    def document(row: DocumentRow, remaining: int, path: frozenset[str]) -> dict[str, Any]:
        # Key by key: the data itself is never a reference, whatever keys it holds.
        fields = paths.get(row.type, {})
        data = {
            key: inline(item, remaining, path, fields.get(key))
            for key, item in data_of(row, perspective).items()
        }
        return render(row, data)

    return [document(row, depth, frozenset({str(row.id)})) for row in roots]
