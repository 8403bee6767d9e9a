"""The `where` language and `sort`, compiled to parametrised PostgreSQL over a `cms_documents` row.

`compile_where` and `compile_sort` return SQL fragments for the query runner's statement::

    SELECT ... FROM cms_documents d
     WHERE d.type = $1 AND <perspective_condition(...)> AND (<compile_where(...)>)
     ORDER BY <compile_sort(...)> LIMIT ... OFFSET ...

Values never enter the SQL text: they are bound through `SqlParams`. Field and type names come from
the schema and appear as quoted literals (so expression indexes such as `(published_data->>'title')`
can match); a name with any character outside `[A-Za-z0-9_-]` is bound instead.

Comparisons are typed by the schema through the safe-cast functions of migration 0002
(`cms_to_numeric`, `cms_to_boolean`, `cms_to_date`, `cms_to_timestamptz`, `cms_to_uuid`): they read a
malformed stored value as NULL, so no stored draft can turn a query into a SQL error.

Negative operators (`not_equals`, `not_in`, `exists: false`, `not`) are exact complements of their
positive forms: a document without the value matches them, and through a reference or an array they
mean "no referenced document / no element matches". All operators on one path are evaluated against
the same element of an array (or the same referenced document). The user-facing reference is
docs/where-language.md.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal, TypeAlias

from server.errors import InvalidInputError
from server.model.field_kinds import (
    BASIC_OPERATORS,
    RANGE_OPERATORS,
    SCALAR_TYPES,
    VALUE_KINDS,
)
from server.model.reading import Perspective
from server.model.types import Field, Registry

MAX_FILTER_DEPTH = 8  # how deep `and`/`or`/`not` and nested objects may go
MAX_CONDITIONS = 100
MAX_LIST_VALUES = 1000
MAX_PATH_HOPS = 5
MAX_SORT_KEYS = 10
DEFAULT_SORT = "-updatedAt"

OPERATORS = frozenset(
    {
        "equals",
        "not_equals",
        "in",
        "not_in",
        "contains",
        "like",
        "starts_with",
        "ends_with",
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "exists",
    }
)
_RANGE = {
    "greater_than": ">",
    "greater_than_equal": ">=",
    "less_than": "<",
    "less_than_equal": "<=",
}
_RANGE_OPERATORS = RANGE_OPERATORS
_BASIC = BASIC_OPERATORS
_NEGATIVE = {"not_equals": "equals", "not_in": "in"}

# What a path ends on decides the operators, the SQL value expression and the bind type.
Kind = Literal[
    "text", "number", "boolean", "date", "datetime", "reference", "uuid", "status", "presence"
]
# The value kinds of scalar fields come from the field-kind table; the rest are the document's
# own columns and what a path can only be tested for.
_KIND_OPERATORS: dict[Kind, frozenset[str]] = {
    **{kind: info.operators for kind, info in VALUE_KINDS.items()},
    "reference": _BASIC,
    "uuid": _BASIC,
    "status": _BASIC,
    "presence": frozenset({"exists"}),
}
_KIND_LABELS: dict[Kind, str] = {
    **{kind: info.label for kind, info in VALUE_KINDS.items()},
    "reference": "reference",
    "uuid": "id",
    "status": "status",
    "presence": "object, object-array, asset or rich-text",
}
_PG_TYPES: dict[Kind, str] = {
    **{kind: info.sql_type for kind, info in VALUE_KINDS.items()},
    "reference": "text",
    "uuid": "uuid",
    "status": "document_status",
}
_SCALAR_KINDS: dict[str, Kind] = {name: t.kind for name, t in SCALAR_TYPES.items()}
# Kinds whose `equals`/`in` on an array can use jsonb containment (GIN-indexable).
_CONTAINMENT_KINDS = frozenset(
    {*(kind for kind, info in VALUE_KINDS.items() if info.containment), "reference"}
)
_STATUSES = ("draft", "published", "unpublished")
_MAX_INTEGER_BITS = 3000  # about 900 decimal digits
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-]+")
_ALIAS = re.compile(r"[a-z_][a-z0-9_]*")


class SqlParams:
    """Collects bind values for one statement; `add` returns the placeholder (`$1`, `$2`, ...)."""

    __slots__ = ("values",)

    def __init__(self, values: list[Any] | None = None) -> None:
        self.values: list[Any] = list(values) if values else []

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def data_column(perspective: Perspective, alias: str = "d") -> str:
    """The data column a perspective reads: `d.published_data` or `d.draft_data`."""
    _check_alias(alias)
    if perspective == "published":
        return f"{alias}.published_data"
    if perspective == "draft":
        return f"{alias}.draft_data"
    raise InvalidInputError(
        f"perspective: expected 'published' or 'draft', got {_show(perspective)}",
        path="perspective",
    )


def perspective_condition(perspective: Perspective, alias: str = "d") -> str | None:
    """The row condition of a perspective: published rows with published data, or None for drafts."""
    data_column(perspective, alias)
    if perspective == "published":
        return f"{alias}.status = 'published' AND {alias}.published_data IS NOT NULL"
    return None


def compile_where(
    registry: Registry,
    type_name: str,
    where: Mapping[str, Any] | None,
    *,
    params: SqlParams,
    perspective: Perspective,
    alias: str = "d",
) -> str | None:
    """Compile a `where` object into a boolean SQL expression over the row `alias`.

    Args:
        registry: the content model.
        type_name: the document type being queried (its fields give the paths their types).
        where: the filter, in the seed's JSON syntax; None or `{}` means no condition.
        params: receives the bind values; placeholders continue its numbering.
        perspective: `published` compares `published_data`, `draft` compares `draft_data`; paths
            through references read the referenced documents in the same perspective.
        alias: the alias of `cms_documents` in the runner's statement.

    Returns:
        The condition, or None when there is none. It never mentions the organization: Row-Level
        Security limits every row, including referenced documents, to the caller's org tree.

    Raises:
        InvalidInputError: an unknown field, operator or document type, a value of the wrong type,
            a malformed `and`/`or`/`not`, or a filter beyond the size limits; `path` names the
            offending place (`or[1].views.greater_than`) and the message starts with it.
    """
    compiler = _Compiler(registry, type_name, params, perspective, alias)
    if where is None:
        return None
    if not isinstance(where, Mapping):
        raise InvalidInputError(f"where: expected an object, got {_show(where)}", path="where")
    parts = compiler.conditions(where, at="", depth=1)
    return " AND ".join(parts) if parts else None


@dataclasses.dataclass(frozen=True)
class SortKey:
    """One item of an ORDER BY list: a value and how it sorts (`DESC NULLS LAST`, say; empty for
    ascending, the default)."""

    value: str
    direction: str

    def __str__(self) -> str:
        return f"{self.value} {self.direction}" if self.direction else self.value


def compile_sort(
    registry: Registry,
    type_name: str,
    sort: str | Sequence[str] | None,
    *,
    params: SqlParams,
    perspective: Perspective,
    alias: str = "d",
) -> str:
    """Compile a sort specification into an ORDER BY list (without the words ORDER BY): the
    items of `compile_sort_keys`."""
    keys = compile_sort_keys(
        registry, type_name, sort, params=params, perspective=perspective, alias=alias
    )
    return ", ".join(str(key) for key in keys)


def compile_sort_keys(
    registry: Registry,
    type_name: str,
    sort: str | Sequence[str] | None,
    *,
    params: SqlParams,
    perspective: Perspective,
    alias: str = "d",
) -> list[SortKey]:
    """Compile a sort specification into the items of an ORDER BY list.

    Args:
        registry: the content model.
        type_name: the document type being queried.
        sort: a field path or a list of them, `-` in front for descending; None or `[]` means
            `-updatedAt`. Numbers sort numerically, dates and datetimes as timestamps.
        params: receives bind values (only for field names outside `[A-Za-z0-9_-]`).
        perspective: which data column the fields are read from.
        alias: the alias of `cms_documents` in the runner's statement.

    Returns:
        The items, always ending with the `id` tiebreaker. Missing or malformed values sort last
        in both directions (`NULLS LAST`).

    Raises:
        InvalidInputError: an unknown field, or a field that cannot be sorted (array, object,
            reference, a path through a reference); `path` names the field.
    """
    compiler = _Compiler(registry, type_name, params, perspective, alias)
    return compiler.order_by(_sort_keys(sort))


# --- Resolved paths --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Column:
    """One of the document's own columns."""

    name: str
    kind: Kind
    nullable: bool


@dataclasses.dataclass(frozen=True, slots=True)
class _Leaf:
    """The value a path ends on, `keys` below the current data root (document or array element)."""

    keys: tuple[str, ...]
    kind: Kind
    array: bool = False  # conditions hold for any element; `exists` means non-empty


@dataclasses.dataclass(frozen=True, slots=True)
class _Hop:
    """A reference, an array of references or an array of objects that the path passes through.

    Each branch is (target document type, or `_type` of the array item, or None when the array has
    one item kind; the rest of the path below it).
    """

    keys: tuple[str, ...]
    via: Literal["reference", "references", "objects"]
    branches: tuple[tuple[str | None, _Node], ...]


_Node: TypeAlias = _Column | _Leaf | _Hop

_COLUMNS = {
    "id": _Column("id", "uuid", nullable=False),
    "status": _Column("status", "status", nullable=False),
    "createdAt": _Column("created_at", "datetime", nullable=False),
    "updatedAt": _Column("updated_at", "datetime", nullable=False),
    "publishedAt": _Column("published_at", "datetime", nullable=True),
    "createdBy": _Column("created_by", "text", nullable=True),
    "updatedBy": _Column("updated_by", "text", nullable=True),
}


class _PathError(Exception):
    """A path the schema does not have; the compiler adds where it was written."""


# Resolved `where` paths are kept with their registry (`Registry.memo`), up to this many: a
# frontend's few paths are resolved once, and unusual ones cannot grow the memo without bound.
PATHS_PER_REGISTRY = 4096


def _resolve(registry: Registry, type_name: str, path: str) -> _Node:
    paths: dict[tuple[str, str], _Node] = registry.memo.setdefault(_resolve, {})
    node = paths.get((type_name, path))
    if node is None:
        node = _resolve_uncached(registry, type_name, path)
        if len(paths) < PATHS_PER_REGISTRY:
            paths[type_name, path] = node
    return node


def _resolve_uncached(registry: Registry, type_name: str, path: str) -> _Node:
    column = _COLUMNS.get(path.removeprefix("_meta."))
    if column is not None:
        return column
    segments = path.split(".")
    if "" in segments:
        raise _PathError("empty path segment")
    return _resolve_in(registry, registry[type_name].fields, type_name, segments, (), 0)


def _resolve_in(
    registry: Registry,
    fields: tuple[Field, ...],
    owner: str,
    segments: Sequence[str],
    keys: tuple[str, ...],
    hops: int,
) -> _Node:
    name, rest = segments[0], segments[1:]
    field = next((f for f in fields if f.name == name), None)
    if field is None:
        raise _PathError(f"unknown field '{name}' in {owner}")
    keys = (*keys, name)
    if field.is_reference:
        return _through_references(registry, name, field.to, rest, keys, hops, many=False)
    if field.is_array:
        return _array(registry, field, rest, keys, hops)
    if field.is_object:
        if not rest:
            return _Leaf(keys, "presence")
        return _resolve_in(registry, registry.resolve(field), name, rest, keys, hops)
    if rest:
        raise _PathError(f"'{name}' is a {field.type} field; it has no field '{rest[0]}'")
    return _Leaf(keys, _SCALAR_KINDS.get(field.type, "presence"))


def _through_references(
    registry: Registry,
    name: str,
    targets: Sequence[str],
    rest: Sequence[str],
    keys: tuple[str, ...],
    hops: int,
    *,
    many: bool,
) -> _Node:
    if not rest or (len(rest) == 1 and rest[0] in ("_ref", "id")):
        return _Leaf(keys, "reference", array=many)
    if rest[0] in ("_ref", "id"):
        raise _PathError(f"'{name}.{rest[0]}' is the referenced id; it has no field '{rest[1]}'")
    if hops >= MAX_PATH_HOPS:
        raise _PathError(f"a path may pass through at most {MAX_PATH_HOPS} references or arrays")
    branches: list[tuple[str | None, _Node]] = []
    for target in targets:
        schema_type = registry.get(target)
        if schema_type is not None and schema_type.field(rest[0]) is not None:
            node = _resolve_in(registry, schema_type.fields, target, rest, (), hops + 1)
            branches.append((target, node))
    if not branches:
        raise _PathError(f"unknown field '{rest[0]}' in {' or '.join(targets)}")
    return _Hop(keys, "references" if many else "reference", tuple(branches))


def _array(
    registry: Registry, field: Field, rest: Sequence[str], keys: tuple[str, ...], hops: int
) -> _Node:
    items = field.of
    if items and all(item.is_reference for item in items):
        targets = tuple(dict.fromkeys(t for item in items for t in item.to))
        return _through_references(registry, field.name, targets, rest, keys, hops, many=True)
    if not rest:
        kinds = {_SCALAR_KINDS.get(item.type, "presence") for item in items}
        return _Leaf(keys, kinds.pop() if len(kinds) == 1 else "presence", array=True)
    if not items or not all(item.is_object for item in items):
        raise _PathError(f"'{field.name}' is an array of values; it has no field '{rest[0]}'")
    if hops >= MAX_PATH_HOPS:
        raise _PathError(f"a path may pass through at most {MAX_PATH_HOPS} references or arrays")
    branches: list[tuple[str | None, _Node]] = []
    for item in items:
        item_fields = registry.resolve(item)
        if any(f.name == rest[0] for f in item_fields):
            node = _resolve_in(registry, item_fields, field.name, rest, (), hops + 1)
            branches.append((item.name if len(items) > 1 else None, node))
    if not branches:
        raise _PathError(f"unknown field '{rest[0]}' in {field.name}")
    return _Hop(keys, "objects", tuple(branches))


# --- Operators -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Op:
    name: str  # after shorthand and null rewriting; `exists` carries True or False
    value: Any
    loc: str  # where it was written, for errors
    given: str  # the operator as written, for errors

    @property
    def negative(self) -> bool:
        return self.name in _NEGATIVE or (self.name == "exists" and self.value is False)

    def positive(self) -> _Op:
        if self.name == "exists":
            return dataclasses.replace(self, value=True)
        return dataclasses.replace(self, name=_NEGATIVE.get(self.name, self.name))


def _operators(value: Any, loc: str) -> list[_Op]:
    """The operators of one field entry, with the shorthands spelled out."""
    if value is None:
        return [_Op("exists", False, loc, "equals")]
    if isinstance(value, list | tuple):
        return [_Op("in", value, loc, "in")]
    if not isinstance(value, Mapping):
        return [_Op("equals", value, loc, "equals")]
    if not value:
        raise InvalidInputError(f"{loc}: expected at least one operator", path=loc)
    ops = []
    for name, operand in value.items():
        op_loc = f"{loc}.{name}"
        if name not in OPERATORS:
            raise InvalidInputError(f"{op_loc}: unknown operator {_show(name)}", path=op_loc)
        if name == "exists" and not isinstance(operand, bool):
            raise _bad_value(op_loc, "true or false", operand)
        if operand is None and name in ("equals", "not_equals"):
            ops.append(_Op("exists", name == "not_equals", op_loc, name))
        else:
            ops.append(_Op(name, operand, op_loc, name))
    return ops


# --- The compiler --------------------------------------------------------------------------------


class _Compiler:
    """One compilation: the bind parameters, the condition count and the subquery aliases."""

    def __init__(
        self,
        registry: Registry,
        type_name: str,
        params: SqlParams,
        perspective: Perspective,
        alias: str,
    ) -> None:
        self.data = data_column(perspective, alias)
        schema_type = registry.get(type_name)
        if schema_type is None or not schema_type.is_document:
            raise InvalidInputError(f"unknown document type {_show(type_name)}", path="type")
        self.registry = registry
        self.type_name = type_name
        self.params = params
        self.perspective = perspective
        self.alias = alias
        self.count = 0
        self.subqueries = 0

    # where

    def conditions(self, where: Mapping[str, Any], *, at: str, depth: int) -> list[str]:
        """The conditions of one where object, to be ANDed."""
        if depth > MAX_FILTER_DEPTH:
            loc = at or "where"
            raise InvalidInputError(
                f"{loc}: the filter is nested more than {MAX_FILTER_DEPTH} levels deep", path=loc
            )
        parts: list[str] = []
        for key, value in where.items():
            if not isinstance(key, str):
                loc = at or "where"
                raise InvalidInputError(f"{loc}: keys must be strings", path=loc)
            loc = f"{at}.{key}" if at else key
            if key == "and":
                for i, item in enumerate(self._list_of_objects(value, loc)):
                    parts.extend(self.conditions(item, at=f"{loc}[{i}]", depth=depth + 1))
            elif key == "or":
                alternatives = [
                    _conjunction(self.conditions(item, at=f"{loc}[{i}]", depth=depth + 1))
                    for i, item in enumerate(self._list_of_objects(value, loc))
                ]
                parts.append(_disjunction(alternatives))
            elif key == "not":
                if not isinstance(value, Mapping):
                    raise InvalidInputError(f"{loc}: expected an object", path=loc)
                inner = _conjunction(self.conditions(value, at=loc, depth=depth + 1))
                parts.append("FALSE" if inner == "TRUE" else f"({inner}) IS NOT TRUE")
            else:
                parts.append(self._field(key, value, loc))
        return parts

    @staticmethod
    def _list_of_objects(value: Any, loc: str) -> list[Mapping[str, Any]]:
        if not isinstance(value, list | tuple):
            raise InvalidInputError(
                f"{loc}: expected a list of conditions, got {_show(value)}", path=loc
            )
        for i, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise InvalidInputError(
                    f"{loc}[{i}]: expected an object, got {_show(item)}", path=f"{loc}[{i}]"
                )
        return list(value)

    def _field(self, path: str, value: Any, loc: str) -> str:
        node = self._node_for(path, loc)
        ops = _operators(value, loc)
        self.count += len(ops)
        if self.count > MAX_CONDITIONS:
            raise InvalidInputError(
                f"{loc}: the filter has more than {MAX_CONDITIONS} conditions", path=loc
            )
        return _conjunction(self._node(node, self.data, ops))

    def _node_for(self, path: str, loc: str, *, label: str | None = None) -> _Node:
        try:
            return _resolve(self.registry, self.type_name, path)
        except _PathError as exc:
            raise InvalidInputError(f"{label or loc}: {exc}", path=loc) from None

    def _node(self, node: _Node, base: str, ops: list[_Op]) -> list[str]:
        if isinstance(node, _Column):
            return [self._column(node, op) for op in ops]
        if isinstance(node, _Leaf):
            return self._leaf(node, base, ops)
        # Negative operators are lifted out of the hop: "no referenced document / element matches".
        positives = [op for op in ops if not op.negative]
        parts = [self._hop(node, base, positives)] if positives else []
        parts.extend(f"NOT {self._hop(node, base, [op.positive()])}" for op in ops if op.negative)
        return parts

    def _column(self, column: _Column, op: _Op) -> str:
        _check_operator(column.kind, op)
        sql = f"{self.alias}.{column.name}"
        if op.name == "exists":
            return f"{sql} IS NOT NULL" if op.value else f"{sql} IS NULL"
        return self._compare(column.kind, sql, op, nullable=column.nullable)

    def _leaf(self, leaf: _Leaf, base: str, ops: list[_Op]) -> list[str]:
        for op in ops:
            _check_operator(leaf.kind, op)
        if leaf.array:
            return self._array_leaf(leaf, base, ops)
        parts = []
        for op in ops:
            if op.name == "exists":
                parts.append(self._exists(leaf, base, present=op.value))
            else:
                parts.append(self._compare(leaf.kind, self._value(leaf.kind, base, leaf.keys), op))
        return parts

    def _exists(self, leaf: _Leaf, base: str, *, present: bool) -> str:
        if leaf.kind == "reference":
            ref = self._text(base, (*leaf.keys, "_ref"))
            return f"{ref} IS NOT NULL" if present else f"{ref} IS NULL"
        # coalesce: a missing key and a JSON null both count as absent, and the result is never NULL.
        value = f"coalesce({self._json(base, leaf.keys)}, 'null'::jsonb)"
        return f"{value} <> 'null'::jsonb" if present else f"{value} = 'null'::jsonb"

    def _array_leaf(self, leaf: _Leaf, base: str, ops: list[_Op]) -> list[str]:
        positives = [op for op in ops if op.name != "exists" and not op.negative]
        parts = [self._elements(leaf, base, positives)] if positives else []
        for op in ops:
            if op.name == "exists":
                empty = f"coalesce({self._json(base, leaf.keys)}, 'null'::jsonb)"
                check = "NOT IN" if op.value else "IN"
                parts.append(f"{empty} {check} ('null'::jsonb, '[]'::jsonb)")
            elif op.negative:
                parts.append(_negate(self._elements(leaf, base, [op.positive()])))
        return parts

    def _elements(self, leaf: _Leaf, base: str, ops: list[_Op]) -> str:
        """Some element of the array satisfies every operator in `ops`."""
        if len(ops) == 1 and ops[0].name in ("equals", "in") and leaf.kind in _CONTAINMENT_KINDS:
            return self._containment(leaf, base, ops[0])
        n = self._subquery()
        element = f"elem{n}.value"
        conditions = " AND ".join(
            self._compare(leaf.kind, self._value(leaf.kind, element, ()), op) for op in ops
        )
        source = _array_elements(self._json(base, leaf.keys))
        return f"EXISTS (SELECT 1 FROM {source} AS elem{n}(value) WHERE {conditions})"

    def _containment(self, leaf: _Leaf, base: str, op: _Op) -> str:
        # `base @> {"tags": ["x"]}` matches any element and can use a GIN index on the data column.
        def document(item: Any) -> str:
            element = {"_ref": item} if leaf.kind == "reference" else item
            return _json_text(_nest(leaf.keys, [element]))

        if op.name == "equals":
            value = _bind_value(leaf.kind, op.value, op.loc)
            return f"{base} @> {self.params.add(document(value))}::text::jsonb"
        values = _bind_list(leaf.kind, op.value, op.loc)
        placeholder = self.params.add([document(v) for v in values])
        return f"{base} @> ANY({placeholder}::text[]::jsonb[])"

    def _hop(self, hop: _Hop, base: str, ops: list[_Op]) -> str:
        n = self._subquery()
        if hop.via == "objects":
            element = f"elem{n}.value"
            source = _array_elements(self._json(base, hop.keys))
            body = self._branches(hop, element, ops, lambda t: f"{element}->>'_type' = {t}")
            return f"EXISTS (SELECT 1 FROM {source} AS elem{n}(value) WHERE {body})"
        ref = f"ref{n}"
        conditions = []
        if hop.via == "reference":
            source = f"cms_documents {ref}"
            ref_id = self._text(base, (*hop.keys, "_ref"))
            conditions.append(f"{ref}.id = cms_to_uuid({ref_id})")
        else:
            elements = _array_elements(self._json(base, hop.keys))
            source = (
                f"{elements} AS elem{n}(value) JOIN cms_documents {ref}"
                f" ON {ref}.id = cms_to_uuid(elem{n}.value->>'_ref')"
            )
        # The perspective holds at every depth: a published read never sees draft data.
        condition = perspective_condition(self.perspective, ref)
        if condition:
            conditions.append(condition)
        data = data_column(self.perspective, ref)
        conditions.append(self._branches(hop, data, ops, lambda t: f"{ref}.type = {t}"))
        return f"EXISTS (SELECT 1 FROM {source} WHERE {' AND '.join(conditions)})"

    def _branches(
        self, hop: _Hop, base: str, ops: list[_Op], discriminate: Callable[[str], str]
    ) -> str:
        alternatives = []
        for name, node in hop.branches:
            parts = self._node(node, base, ops)
            if name is not None:
                parts.insert(0, discriminate(self._literal(name)))
            alternatives.append(" AND ".join(parts))
        if len(alternatives) == 1:
            return alternatives[0]
        return "(" + " OR ".join(f"({a})" for a in alternatives) + ")"

    def _compare(self, kind: Kind, sql: str, op: _Op, *, nullable: bool = True) -> str:
        """One positive or negative operator (not `exists`) on a typed SQL value."""
        if op.name in ("equals", "not_equals"):
            placeholder = self.params.add(_sql_value(_bind_value(kind, op.value, op.loc)))
            if op.name == "equals":
                return f"{sql} = {placeholder}"
            return f"{sql} {'IS DISTINCT FROM' if nullable else '<>'} {placeholder}"
        if op.name in ("in", "not_in"):
            placeholder = self.params.add(
                [_sql_value(v) for v in _bind_list(kind, op.value, op.loc)]
            )
            array = f"{placeholder}::{_PG_TYPES[kind]}[]"
            if op.name == "in":
                return f"{sql} = ANY({array})"
            return f"({sql} = ANY({array})) IS NOT TRUE" if nullable else f"{sql} <> ALL({array})"
        if op.name in _RANGE:
            placeholder = self.params.add(_sql_value(_bind_value(kind, op.value, op.loc)))
            return f"{sql} {_RANGE[op.name]} {placeholder}"
        if op.name == "like":
            return f"{sql} LIKE {self.params.add(_like_pattern(op.value, op.loc))}"
        text = escape_like(_string(op.value, op.loc))
        pattern = {"contains": f"%{text}%", "starts_with": f"{text}%", "ends_with": f"%{text}"}
        return f"{sql} ILIKE {self.params.add(pattern[op.name])}"

    # sort

    def order_by(self, keys: list[tuple[str, bool]]) -> list[SortKey]:
        items = []
        has_id = False
        for path, descending in keys:
            node = self._node_for(path, path, label=f"sort {path}")
            sql, nullable = self._sort_value(node, path)
            has_id = has_id or node == _COLUMNS["id"]
            direction = "DESC" if descending else "ASC"
            items.append(SortKey(sql, f"{direction} NULLS LAST" if nullable else direction))
        if not has_id:
            items.append(SortKey(f"{self.alias}.id", ""))
        return items

    def _sort_value(self, node: _Node, path: str) -> tuple[str, bool]:
        if isinstance(node, _Column):
            return f"{self.alias}.{node.name}", node.nullable
        if isinstance(node, _Hop):
            problem = "sorting through a reference or an array is not supported"
        elif node.array:
            problem = "cannot sort by an array field"
        elif node.kind == "reference":
            problem = "cannot sort by a reference field"
        elif node.kind == "presence":
            problem = "cannot sort by an object, asset or rich-text field"
        else:
            return self._value(node.kind, self.data, node.keys), True
        raise InvalidInputError(f"sort {path}: {problem}", path=path)

    # SQL pieces

    def _value(self, kind: Kind, base: str, keys: tuple[str, ...]) -> str:
        """The typed SQL value at `keys`; NULL when absent or malformed, never an error."""
        if kind == "number":
            return f"cms_to_numeric({self._json(base, keys)})"
        if kind == "boolean":
            return f"cms_to_boolean({self._json(base, keys)})"
        if kind == "date":
            return f"cms_to_date({self._text(base, keys)})"
        if kind == "datetime":
            return f"cms_to_timestamptz({self._text(base, keys)})"
        if kind == "reference":
            return self._text(base, (*keys, "_ref"))
        return self._text(base, keys)

    def _json(self, base: str, keys: tuple[str, ...]) -> str:
        return base + "".join(f"->{self._literal(k)}" for k in keys)

    def _text(self, base: str, keys: tuple[str, ...]) -> str:
        if not keys:
            return f"{base} #>> '{{}}'"
        return f"{self._json(base, keys[:-1])}->>{self._literal(keys[-1])}"

    def _literal(self, name: str) -> str:
        """A schema name as a SQL literal; anything unusual is bound instead."""
        if _SAFE_NAME.fullmatch(name):
            return f"'{name}'"
        return self.params.add(name)

    def _subquery(self) -> int:
        self.subqueries += 1
        return self.subqueries


def _check_operator(kind: Kind, op: _Op) -> None:
    if op.name not in _KIND_OPERATORS[kind]:
        label = _KIND_LABELS[kind]
        hint = (
            "; only 'exists' does (compare nested fields with a dotted path)"
            if kind == "presence"
            else ""
        )
        raise InvalidInputError(
            f"{op.loc}: operator '{op.given}' does not apply to {label} fields{hint}", path=op.loc
        )


def _conjunction(parts: list[str]) -> str:
    if not parts:
        return "TRUE"
    return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"


def _disjunction(alternatives: list[str]) -> str:
    if not alternatives:
        return "FALSE"
    return alternatives[0] if len(alternatives) == 1 else "(" + " OR ".join(alternatives) + ")"


def _negate(sql: str) -> str:
    if sql.startswith("EXISTS ("):
        return f"NOT {sql}"
    return f"({sql}) IS NOT TRUE"


def _array_elements(json_sql: str) -> str:
    # jsonb_array_elements raises on a non-array; a malformed stored value yields no elements instead.
    return f"jsonb_array_elements(CASE WHEN jsonb_typeof({json_sql}) = 'array' THEN {json_sql} END)"


def _nest(keys: tuple[str, ...], value: Any) -> Any:
    for key in reversed(keys):
        value = {key: value}
    return value


def _json_text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# --- Values --------------------------------------------------------------------------------------


def _bind_value(kind: Kind, value: Any, loc: str) -> Any:
    """The Python value to bind for one operand, or an input error naming `loc`."""
    if kind == "text":
        return _string(value, loc)
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad_value(loc, "a number", value)
        if isinstance(value, float) and not math.isfinite(value):
            raise _bad_value(loc, "a finite number", value)
        # Python refuses to turn much longer integers into text, which the driver needs.
        if isinstance(value, int) and value.bit_length() > _MAX_INTEGER_BITS:
            raise InvalidInputError(f"{loc}: the number is too large", path=loc)
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _bad_value(loc, "true or false", value)
        return value
    if kind == "date":
        return _date(value, loc)
    if kind == "datetime":
        return _datetime(value, loc)
    if kind == "status":
        if value not in _STATUSES:
            raise _bad_value(loc, "one of " + ", ".join(_STATUSES), value)
        return value
    parsed = _uuid(value, loc)
    return parsed if kind == "uuid" else str(parsed)


def _sql_value(value: Any) -> Any:
    """A bound value as an SQL parameter: a float as the number written (the shortest text that
    reads back as the same float). Bound as a float, 0.1 would be compared as its binary
    expansion, 0.1000000000000000055..., which equals no stored 0.1. (JSON documents, for
    containment, write floats that way already.)"""
    return Decimal(repr(value)) if isinstance(value, float) else value


def _bind_list(kind: Kind, value: Any, loc: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise _bad_value(loc, "a list", value)
    if len(value) > MAX_LIST_VALUES:
        raise InvalidInputError(f"{loc}: more than {MAX_LIST_VALUES} values", path=loc)
    return [_bind_value(kind, item, f"{loc}[{i}]") for i, item in enumerate(value)]


def _string(value: Any, loc: str) -> str:
    if not isinstance(value, str):
        raise _bad_value(loc, "a string", value)
    # PostgreSQL text cannot hold NUL, and lone surrogates cannot be encoded: refuse them here
    # rather than fail in the driver.
    if "\x00" in value or (not value.isascii() and not _encodable(value)):
        raise InvalidInputError(f"{loc}: the string contains characters text cannot hold", path=loc)
    return value


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _like_pattern(value: Any, loc: str) -> str:
    pattern = _string(value, loc)
    trailing = len(pattern) - len(pattern.rstrip("\\"))
    if trailing % 2:
        raise InvalidInputError(f"{loc}: the pattern ends with an unfinished escape '\\'", path=loc)
    return pattern


def escape_like(text: str) -> str:
    """`text` as a literal in a LIKE pattern (with the default escape character)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _date(value: Any, loc: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _bad_value(loc, "a date (YYYY-MM-DD)", value)


def _datetime(value: Any, loc: str) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(value)  # a TypeError for anything but a string
        except (TypeError, ValueError):
            raise _bad_value(loc, "an ISO 8601 date-time", value) from None
    if parsed.tzinfo is None:
        # Stored values without an offset are read as UTC (cms_to_timestamptz); so are filters.
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise _bad_value(loc, "a date-time within the years 1 to 9999", value) from None


def _uuid(value: Any, loc: str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise _bad_value(loc, "a UUID", value)


def _bad_value(loc: str, expected: str, value: Any) -> InvalidInputError:
    return InvalidInputError(f"{loc}: expected {expected}, got {_show(value)}", path=loc)


def _show(value: Any) -> str:
    try:
        shown = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


# --- Sort keys -----------------------------------------------------------------------------------


def _sort_keys(sort: str | Sequence[str] | None) -> list[tuple[str, bool]]:
    """(path, descending) pairs; the default when nothing is given."""
    if sort is None:
        sort = [DEFAULT_SORT]
    elif isinstance(sort, str):
        sort = [sort]
    elif not isinstance(sort, list | tuple):
        raise InvalidInputError(
            f"sort: expected a field or a list of fields, got {_show(sort)}", path="sort"
        )
    if not sort:
        sort = [DEFAULT_SORT]
    if len(sort) > MAX_SORT_KEYS:
        raise InvalidInputError(f"sort: more than {MAX_SORT_KEYS} fields", path="sort")
    keys = []
    for i, key in enumerate(sort):
        if not isinstance(key, str):
            raise InvalidInputError(
                f"sort[{i}]: expected a field name, got {_show(key)}", path=f"sort[{i}]"
            )
        descending = key.startswith("-")
        path = key[1:] if descending else key
        if not path:
            raise InvalidInputError(f"sort[{i}]: empty field name", path=f"sort[{i}]")
        keys.append((path, descending))
    return keys


def _check_alias(alias: str) -> None:
    if not _ALIAS.fullmatch(alias):
        raise ValueError(f"invalid table alias {alias!r}")
