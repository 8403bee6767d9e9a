"""Taking an asset out of document data: the clean-up behind a forced asset delete.

The reference index (`cms_asset_references`) says which documents use an asset and at which field
paths; the values are removed at exactly those paths, after checking that each still references the
asset. No document JSON is ever searched for the id.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

from server.content.documents import References
from server.content.references import iter_reference_ids
from server.content.validation import UUID_PATTERN, asset_ids, reference_ids
from server.model.types import Registry

# A field path of the reference index: `coverImage`, `seo.image`, `body[3]`, `gallery[0].image`.
_PATH = re.compile(r"[^.\[\]]+(?:\.[^.\[\]]+|\[\d+\])*")
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def draft_references(registry: Registry, type_name: str, data: dict[str, Any]) -> References:
    """The references of a cleaned draft, for the reference index."""
    if registry.get(type_name) is not None:
        documents = [ref for _, ref in reference_ids(registry, type_name, data)]
        assets = [(path, uuid.UUID(ref)) for path, ref in asset_ids(registry, type_name, data)]
    else:
        # The type is no longer registered: read the shapes themselves.
        documents = [ref for ref in iter_reference_ids(data) if UUID_PATTERN.fullmatch(ref)]
        assets = list(_asset_values(data, ""))
    return References(
        documents=tuple(dict.fromkeys(uuid.UUID(ref) for ref in documents)), assets=tuple(assets)
    )


def _asset_values(value: Any, path: str) -> Iterator[tuple[str, uuid.UUID]]:
    if isinstance(value, dict):
        ref = _asset_ref(value)
        if ref is not None:
            yield path, uuid.UUID(ref)
            return
        for key, item in value.items():
            yield from _asset_values(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _asset_values(item, f"{path}[{index}]")


def _asset_ref(value: dict[str, Any]) -> str | None:
    asset = value.get("asset")
    if value.get("_type") in ("image", "file") and isinstance(asset, dict):
        ref = asset.get("_ref")
        if isinstance(ref, str) and UUID_PATTERN.fullmatch(ref):
            return ref
    return None


def remove_asset_values(data: dict[str, Any], paths: list[str], asset_id: str) -> int:
    """Remove the image or file values at `paths` that reference `asset_id`; returns how many.

    Paths are those of the reference index (`coverImage`, `seo.image`, `body[3]`). A value that is
    not there, or references another asset, is left alone. Array items are removed from the highest
    index down, so removing one never shifts another.
    """
    keys: list[tuple[dict[str, Any], str]] = []
    items: list[tuple[list[Any], int]] = []
    for path in paths:
        target = _locate(data, path)
        if target is None:
            continue
        container, key = target
        value = _step(container, key)
        if not isinstance(value, dict) or _asset_ref(value) != asset_id:
            continue
        if isinstance(container, list):
            items.append((container, int(key)))
        else:
            keys.append((container, str(key)))
    for mapping, name in keys:
        mapping.pop(name, None)
    for array, index in sorted(items, key=lambda item: item[1], reverse=True):
        del array[index]
    return len(keys) + len(items)


def _locate(data: Any, path: str) -> tuple[dict[str, Any] | list[Any], str | int] | None:
    """The container holding the value at `path`, and the value's key or index there."""
    if not _PATH.fullmatch(path):
        return None
    parts: list[str | int] = [
        name if name else int(index) for name, index in _PATH_PART.findall(path)
    ]
    container: Any = data
    for part in parts[:-1]:
        container = _step(container, part)
    if _step(container, parts[-1]) is None:
        return None
    return container, parts[-1]


def _step(container: Any, part: str | int) -> Any:
    if isinstance(part, int):
        return container[part] if isinstance(container, list) and part < len(container) else None
    return container.get(part) if isinstance(container, dict) else None
