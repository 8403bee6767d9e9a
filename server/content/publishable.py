"""Drafts a save found publishable, with their references: the publish that follows walks none again.

An editor's autosave of a published document is followed by its publish, which checks the same
data against the content rules (`validate_document(..., publish=True)`) and walks it for its
references, as the save had just walked it. Both are functions of the content model and the data
alone, so a save of a published document checks its data with the content rules at once (a draft
that passes them passes the structural checks as well: those are a subset), and when nothing is
wrong keeps what it found here, under the data's exact JSON. A publish of that very data then takes
the references from here and skips both walks; anything else is checked as always.

The save of such data also notes the document's revision and draft hash after it
(`remember_saved`): a publish of that document can then write it in one statement that checks it is
still that draft (`DocumentStore.publish_saved_draft`), without locking and reading it first.

What is kept hangs off the registry (`Registry.memo`), so a schema change starts afresh, and it is
bounded (the most recent drafts). Nothing here depends on a transaction: a save rolled back leaves
an entry that is as true as before.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from server.content.documents import PlaneIndex, References
from server.model.types import Registry

# How many drafts a registry keeps: the saves a process expects to be published soon after.
SIZE = 512


@dataclass(frozen=True)
class SavedDraft:
    """A document's draft as a save of publishable data left it."""

    revision: int
    draft_hash: str
    references: References
    # The published hash the save found, and what the reference index then held for the published
    # plane (None: not known), for the publish to check and to write only what changes.
    published_hash: str | None
    published_index: PlaneIndex | None


class PublishableDrafts:
    """(document type, a digest of the data's JSON with sorted keys) -> the data's references,
    and (document type, id) -> the draft a save left, most recent last. Only data that passed every
    content rule is ever kept."""

    def __init__(self, size: int = SIZE) -> None:
        self.size = size
        self._drafts: OrderedDict[tuple[str, bytes], References] = OrderedDict()
        self._saved: OrderedDict[tuple[str, uuid.UUID], SavedDraft] = OrderedDict()

    def remember_saved(self, type_name: str, id: uuid.UUID, draft: SavedDraft) -> None:
        """Note the draft a save of publishable data wrote (committed or not: a publish checks
        the row is still that draft)."""
        key = (type_name, id)
        self._saved[key] = draft
        self._saved.move_to_end(key)
        if len(self._saved) > self.size:
            self._saved.popitem(last=False)

    def saved(self, type_name: str, id: uuid.UUID) -> SavedDraft | None:
        """The draft a save of this process last left on the document, if its data was
        publishable; taken out (a publish that finds the document changed need not find it
        again)."""
        return self._saved.pop((type_name, id), None)

    def remember(self, type_name: str, data: Mapping[str, Any], references: References) -> None:
        key = (type_name, _exact(data))
        self._drafts[key] = references
        self._drafts.move_to_end(key)
        if len(self._drafts) > self.size:
            self._drafts.popitem(last=False)

    def references(self, type_name: str, data: Mapping[str, Any]) -> References | None:
        """The references of `data` if a save found exactly this data publishable, else None."""
        return self._drafts.get((type_name, _exact(data)))

    def __len__(self) -> int:
        return len(self._drafts)


def publishable_drafts(registry: Registry) -> PublishableDrafts:
    """The registry's drafts (made on first use)."""
    return registry.memoised(PublishableDrafts, PublishableDrafts)


def _exact(data: Mapping[str, Any]) -> bytes:
    # Exactly the same JSON, keys in any order (1 and 1.0 differ): what validation and the
    # reference walk see. Both follow the schema's field order and the arrays' item order, never
    # the order of an object's keys. Kept as a digest, so the drafts of large documents cost the
    # process 16 bytes each, not their size.
    return hashlib.blake2b(orjson.dumps(data, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()
