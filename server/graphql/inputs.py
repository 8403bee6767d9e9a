"""Typed GraphQL inputs to the content engine's JSON: `DataInput` to stored document data (the
`WhereInput` side is `server.query.where_input`, which the compiled read path shares)."""

from __future__ import annotations

import secrets
from typing import Any

import strawberry

from server.model.types import Field, Registry
from server.query.where_input import attributes, given, scalar


def data_json(registry: Registry, fields: tuple[Field, ...], value: Any) -> dict[str, Any]:
    """A `<Type>DataInput` as document data: ids become references, assets become image values."""
    data: dict[str, Any] = {}
    for f in fields:
        item = getattr(value, f"f_{f.name}", strawberry.UNSET)
        if given(item) and item is not None:
            data[f.name] = _data_value(registry, f, item)
    return data


def _reference(ref: Any, *, keyed: bool = False) -> dict[str, Any]:
    value = {"_type": "reference", "_ref": str(ref)}
    if keyed:
        value["_key"] = _key()
    return value


def _key() -> str:
    return secrets.token_hex(6)


def _data_value(registry: Registry, f: Field, value: Any) -> Any:
    if f.is_reference:
        return _reference(value)
    if f.type in ("image", "file"):
        data: dict[str, Any] = {"_type": f.type, "asset": _reference(value.assetId)}
        for attr, item in attributes(value):
            if attr != "assetId" and item is not None:
                data[attr] = item
        return data
    if f.is_array and isinstance(value, list):
        if not f.is_rich_text and all(item.is_reference for item in f.of):
            return [_reference(ref, keyed=True) for ref in value]
        return [scalar(item) for item in value]
    if f.is_object and not isinstance(value, dict):
        return data_json(registry, registry.resolve(f), value)
    return scalar(value)
