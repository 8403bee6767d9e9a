"""Typed GraphQL inputs to the content engine's JSON: `WhereInput` to the `where` language, and
`DataInput` to stored document data."""

from __future__ import annotations

import secrets
from datetime import date, datetime
from typing import Any

import strawberry

from server.errors import InvalidInputError
from server.graphql.typegen import field_name_of
from server.model.types import Field, Registry

_COLUMNS = ("id", "status", "createdAt", "updatedAt", "publishedAt", "createdBy", "updatedBy")
_OPERATOR_NAMES = {"in_": "in"}


def _given(value: Any) -> bool:
    return value is not strawberry.UNSET


def _scalar(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        return [_scalar(item) for item in value]
    return value


def _attributes(value: Any) -> list[tuple[str, Any]]:
    return [(name, getattr(value, name)) for name in vars(value) if _given(getattr(value, name))]


def where_json(value: Any, prefix: str = "") -> dict[str, Any]:
    """A `<Type>WhereInput` (or a nested one) as the `where` language, with dotted paths."""
    conditions: list[dict[str, Any]] = []
    for attr, item in _attributes(value):
        if item is None:
            raise InvalidInputError(
                f"{prefix}{attr}: a filter cannot be null", path=f"{prefix}{attr}"
            )
        if attr in ("AND", "OR"):
            conditions.append({attr.lower(): [where_json(part, prefix) for part in item]})
        elif attr == "NOT":
            conditions.append({"not": where_json(item, prefix)})
        else:
            name = field_name_of(attr) or attr
            conditions.extend(_field_conditions(f"{prefix}{name}", item))
    if len(conditions) == 1:
        return conditions[0]
    return {"and": conditions} if conditions else {}


def _field_conditions(path: str, value: Any) -> list[dict[str, Any]]:
    operators: dict[str, Any] = {}
    nested: list[dict[str, Any]] = []
    for attr, item in _attributes(value):
        if attr == "where":
            if item is not None:
                nested.append(where_json(item, f"{path}."))
            continue
        if field_name_of(attr) is not None or attr in ("AND", "OR", "NOT"):
            # A nested object's WhereInput: its fields continue the path.
            return [where_json(value, f"{path}.")]
        if item is None:
            raise InvalidInputError(
                f"{path}.{_OPERATOR_NAMES.get(attr, attr)}: an operator cannot be null; use exists",
                path=path,
            )
        operators[_OPERATOR_NAMES.get(attr, attr)] = _scalar(item)
    conditions = [{path: operators}] if operators else []
    return conditions + [n for n in nested if n]


def data_json(registry: Registry, fields: tuple[Field, ...], value: Any) -> dict[str, Any]:
    """A `<Type>DataInput` as document data: ids become references, assets become image values."""
    data: dict[str, Any] = {}
    for f in fields:
        item = getattr(value, f"f_{f.name}", strawberry.UNSET)
        if _given(item) and item is not None:
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
        for attr, item in _attributes(value):
            if attr != "assetId" and item is not None:
                data[attr] = item
        return data
    if f.is_array and isinstance(value, list):
        if not f.is_rich_text and all(item.is_reference for item in f.of):
            return [_reference(ref, keyed=True) for ref in value]
        return [_scalar(item) for item in value]
    if f.is_object and not isinstance(value, dict):
        return data_json(registry, registry.resolve(f), value)
    return _scalar(value)
