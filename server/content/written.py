"""Documents this process wrote last, as it left them: the next save of one need not read it first.

An editor saves the same document again and again (an autosave, then a publish, then more saves),
and a save at once (`Collection.update_at_once`) reads the document before it writes: its draft, to
merge the update into, and what the reference index holds for it, to write only what changes. When
this process wrote the document last, it knows all of that already: the draft it wrote, and the row
version and index its write left (`DocumentStore.written_row`). The save then writes at once,
guarded as always by the row version it expects (`xmin`): every change to the row, its versions or
its index writes a new version of the row, so a save by anyone else in between makes the guarded
write find nothing, write nothing, and the save reads the document after all.

So an entry may be stale, never wrong: it is taken out when used (a second save of the document at
the same time reads it), an entry of another organization's caller is never used, and a write that
would change nothing is not trusted to an entry (the document is read, since the row may be
another's now). This process's writes in a unit of work drop the entry (`Collection._locked`), so
they cost no wasted attempt. What is kept hangs off the registry (`Registry.memo`), so a schema
change starts afresh. It is bounded in entries and in bytes: each keeps its draft as JSON, decoded
when used.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

import orjson

from server.content.documents import DocumentRow
from server.model.types import Registry

# The documents a registry keeps, and the bytes of their drafts: the saves a process expects soon.
SIZE = 1024
BUDGET = 8 * 1024 * 1024


@dataclass(frozen=True)
class _Written:
    row: DocumentRow  # without its data, with `seen` and `index` as the write left them
    draft: bytes


class WrittenDocuments:
    """(organization, document type, id) -> the row and the draft this process's last write of the
    document left, most recent last."""

    def __init__(self, size: int = SIZE, budget: int = BUDGET) -> None:
        self.size = size
        self.budget = budget
        self.bytes = 0
        self._written: OrderedDict[tuple[uuid.UUID, str, uuid.UUID], _Written] = OrderedDict()

    def remember(self, row: DocumentRow, draft: dict[str, Any]) -> None:
        """Note the row a save left (`DocumentStore.written_row`) with the draft it wrote."""
        if row.seen is None:
            return
        self._put(_Written(replace(row, draft_data=None), orjson.dumps(draft)))

    def published(self, row: DocumentRow) -> None:
        """Note the row a publish of the draft this process saved left."""
        key = (row.organization_id, row.type, row.id)
        entry = self._written.get(key)
        if entry is None or row.seen is None or entry.row.revision != row.revision:
            return
        self._put(_Written(replace(row, draft_data=None), entry.draft))

    def peek(self, organization_id: uuid.UUID, type_name: str, id: uuid.UUID) -> DocumentRow | None:
        """The row kept for the document, without its draft (its `index` is what a publish of it
        wants), or None; left in place."""
        entry = self._written.get((organization_id, type_name, id))
        return entry.row if entry is not None else None

    def take(
        self,
        organization_id: uuid.UUID,
        type_name: str,
        id: uuid.UUID,
        expected_revision: int | None,
    ) -> DocumentRow | None:
        """The document as this process's last write of it left it, with its draft, when that was
        at `expected_revision` (None: any); taken out."""
        key = (organization_id, type_name, id)
        entry = self._written.get(key)
        if entry is None or expected_revision not in (None, entry.row.revision):
            return None
        self._drop(key)
        return replace(entry.row, draft_data=orjson.loads(entry.draft))

    def forget(self, organization_id: uuid.UUID, type_name: str, id: uuid.UUID) -> None:
        """Drop what is kept of a document another way of writing it is about to change."""
        self._drop((organization_id, type_name, id))

    def _put(self, entry: _Written) -> None:
        key = (entry.row.organization_id, entry.row.type, entry.row.id)
        self._drop(key)
        if len(entry.draft) > self.budget // 16:
            return  # a draft this large is read again rather than crowd out the others
        self._written[key] = entry
        self.bytes += len(entry.draft)
        while len(self._written) > self.size or self.bytes > self.budget:
            self._drop(next(iter(self._written)))

    def _drop(self, key: tuple[uuid.UUID, str, uuid.UUID]) -> None:
        entry = self._written.pop(key, None)
        if entry is not None:
            self.bytes -= len(entry.draft)

    def __len__(self) -> int:
        return len(self._written)


def written_documents(registry: Registry) -> WrittenDocuments:
    """The registry's written documents (made on first use)."""
    return registry.memoised(WrittenDocuments, WrittenDocuments)
