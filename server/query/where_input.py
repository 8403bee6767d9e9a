"""A `<Type>WhereInput` (the GraphQL input object, as Strawberry builds it) as the `where` language.

The resolver path and the compiled read path both turn their `where` argument into the same JSON,
which `server.content.filters` compiles.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import strawberry

from server.errors import InvalidInputError
from server.model.names import field_name_of

_OPERATOR_NAMES = {"in_": "in"}


def given(value: Any) -> bool:
    return value is not strawberry.UNSET


def scalar(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        return [scalar(item) for item in value]
    return value


def attributes(value: Any) -> list[tuple[str, Any]]:
    return [(name, getattr(value, name)) for name in vars(value) if given(getattr(value, name))]


def where_json(value: Any, prefix: str = "") -> dict[str, Any]:
    """A `<Type>WhereInput` (or a nested one) as the `where` language, with dotted paths."""
    conditions: list[dict[str, Any]] = []
    for attr, item in attributes(value):
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
    for attr, item in attributes(value):
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
        operators[_OPERATOR_NAMES.get(attr, attr)] = scalar(item)
    conditions = [{path: operators}] if operators else []
    return conditions + [n for n in nested if n]
