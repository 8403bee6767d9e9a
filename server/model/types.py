"""The content model: document and object types, their fields, and the registry that links them.

A type's JSON form is the Sanity / Aphex shape with validation rules as plain keys::

    {"type": "document", "name": "post", "title": "Post", "fields": [
        {"name": "title", "type": "string", "required": true, "max": 120},
        {"name": "author", "type": "reference", "to": [{"type": "author"}]},
        {"name": "tags", "type": "array", "of": [{"type": "string"}]},
        {"name": "seo", "type": "seoMeta"}]}

`server.model.json_form.parse_schema_type` reads one definition into a `SchemaType`; `Registry.check`
verifies the links between types (reference targets, named object types, containment cycles).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, Literal, TypeVar

from server.errors import InvalidInputError, NotFoundError
from server.model import field_kinds
from server.model.names import to_pascal_case

SCALAR_TYPES = frozenset(field_kinds.SCALAR_TYPES)
STRING_TYPES = frozenset(name for name, t in field_kinds.SCALAR_TYPES.items() if t.is_string)
ASSET_TYPES = frozenset({"image", "file"})
BUILTIN_TYPES = SCALAR_TYPES | ASSET_TYPES | {"reference", "array", "object"}
BLOCK = "block"

# Top-level fields of a document type may not use these: the API shows the document's own columns
# under the same names. Names starting with `_` are refused everywhere (they are system keys in data).
RESERVED_FIELD_NAMES = frozenset(
    {
        *("id", "type", "status", "revision", "organizationId", "draftData", "publishedData"),
        *("createdAt", "updatedAt", "publishedAt", "createdBy", "updatedBy"),
        *("publishedHash", "hasUnpublishedChanges", "_resolved", "_raw", "referencedBy"),
    }
)

# A type may not take the name of a field type, nor one whose GraphQL form clashes with a built-in name.
RESERVED_TYPE_NAMES = BUILTIN_TYPES | {BLOCK, "document"}
RESERVED_GRAPHQL_NAMES = frozenset(
    {
        *("Query", "Mutation", "Subscription", "Document", "Upload"),
        *("String", "Int", "Float", "Boolean", "ID", "JSON", "Date", "DateTime"),
    }
)

Kind = Literal["document", "object"]
AllowedValue = str | int | float
_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _empty() -> Mapping[str, Any]:
    return _EMPTY


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Field:
    """One field of a type, or one item type of an array (`of`).

    `type` is a built-in field type, `block` (array items only), or the name of a registered object
    type. For array items, `name` is the value of `_type` that items of this kind carry in data: the
    item's own name for inline objects, the type name otherwise (`reference`, `image`, `seoMeta`, ...).
    """

    name: str
    type: str
    title: str | None = None
    description: str | None = None
    required: bool = False
    min: int | float | None = None
    max: int | float | None = None
    integer: bool = False
    regex: str | None = None
    allowed: tuple[AllowedValue, ...] | None = None
    to: tuple[str, ...] = ()
    of: tuple[Field, ...] = ()
    fields: tuple[Field, ...] = ()
    # Presentation settings kept verbatim for editors: `options` as given (including `list` with its
    # titles), and `extra` for hidden, readOnly, initialValue, group, fieldset, rows, styles, ...
    options: Mapping[str, Any] = dataclasses.field(default_factory=_empty, hash=False)
    extra: Mapping[str, Any] = dataclasses.field(default_factory=_empty, hash=False)

    @property
    def is_scalar(self) -> bool:
        return self.type in SCALAR_TYPES

    @property
    def is_reference(self) -> bool:
        return self.type == "reference"

    @property
    def is_asset(self) -> bool:
        return self.type in ASSET_TYPES

    @property
    def is_array(self) -> bool:
        return self.type == "array"

    @property
    def is_block(self) -> bool:
        return self.type == BLOCK

    @property
    def is_inline_object(self) -> bool:
        return self.type == "object"

    @property
    def is_named_object(self) -> bool:
        """The type names a registered object type (`{"name": "seo", "type": "seoMeta"}`)."""
        return self.type not in BUILTIN_TYPES and self.type != BLOCK

    @property
    def is_object(self) -> bool:
        return self.is_inline_object or self.is_named_object

    @property
    def is_rich_text(self) -> bool:
        """An array of Portable Text blocks (and perhaps images or objects), kept as JSON."""
        return self.is_array and any(item.is_block for item in self.of)

    @property
    def is_scalar_array(self) -> bool:
        """An array of primitive values (strings, numbers, ...) rather than of keyed objects."""
        return self.is_array and all(item.is_scalar for item in self.of)

    def field(self, name: str) -> Field | None:
        """The nested field `name` of an inline object, or None."""
        return next((f for f in self.fields if f.name == name), None)

    def to_json(self, *, item: bool = False) -> dict[str, Any]:
        """The canonical JSON form; `item=True` for array items, whose `name` is implied by the type."""
        out: dict[str, Any] = {}
        if not item or self.is_inline_object:
            out["name"] = self.name
        out["type"] = self.type
        for key in ("title", "description"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.required:
            out["required"] = True
        for key in ("min", "max"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.integer:
            out["integer"] = True
        if self.regex is not None:
            out["regex"] = self.regex
        if self.to:
            out["to"] = [{"type": name} for name in self.to]
        if self.of:
            out["of"] = [f.to_json(item=True) for f in self.of]
        if self.fields:
            out["fields"] = [f.to_json() for f in self.fields]
        if self.options:
            out["options"] = _thaw(self.options)
        out.update(_thaw(self.extra))
        return out


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SchemaType:
    """A document type (stored as documents, queried in the API) or an object type (used by fields)."""

    name: str
    title: str
    kind: Kind
    description: str | None = None
    fields: tuple[Field, ...]
    # The rest of the definition: singleton, icon, preview, orderings, groups, fieldsets, search, ...
    options: Mapping[str, Any] = dataclasses.field(default_factory=_empty, hash=False)

    @property
    def is_document(self) -> bool:
        return self.kind == "document"

    @property
    def singleton(self) -> bool:
        return bool(self.options.get("singleton", False))

    def field(self, name: str) -> Field | None:
        """The top-level field `name`, or None."""
        return next((f for f in self.fields if f.name == name), None)

    def to_json(self) -> dict[str, Any]:
        """The canonical JSON form, which `parse_schema_type` reads back into an equal `SchemaType`."""
        out: dict[str, Any] = {"type": self.kind, "name": self.name, "title": self.title}
        if self.description is not None:
            out["description"] = self.description
        out.update(_thaw(self.options))
        out["fields"] = [f.to_json() for f in self.fields]
        return out


_Derived = TypeVar("_Derived")


class Registry(Mapping[str, SchemaType]):
    """An immutable set of types by name. Changes return a new registry; `check()` validates links."""

    __slots__ = ("__weakref__", "_types", "memo")

    def __init__(self, types: Iterable[SchemaType] = ()) -> None:
        self._types: dict[str, SchemaType] = {}
        # What other modules derive from this registry, kept with it (it never changes) so that it
        # goes when the registry does: no process-wide cache keeps a replaced registry alive.
        self.memo: dict[object, Any] = {}
        for schema_type in types:
            if schema_type.name in self._types:
                raise InvalidInputError(
                    f"type '{schema_type.name}' is defined twice", type=schema_type.name
                )
            self._types[schema_type.name] = schema_type

    def memoised(self, key: object, build: Callable[[], _Derived]) -> _Derived:
        """What `build` derives from this registry, built on first use and kept in `memo`."""
        try:
            derived: _Derived = self.memo[key]
        except KeyError:
            derived = self.memo[key] = build()
        return derived

    def __getitem__(self, name: str) -> SchemaType:
        return self._types[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._types)

    def __len__(self) -> int:
        return len(self._types)

    def __repr__(self) -> str:
        return f"Registry({list(self._types)!r})"

    def same_as(self, other: Registry) -> bool:
        """The same types in the same order (what a GraphQL schema is built from)."""
        return self is other or list(self._types.items()) == list(other._types.items())

    def document_types(self) -> tuple[SchemaType, ...]:
        return tuple(t for t in self._types.values() if t.kind == "document")

    def object_types(self) -> tuple[SchemaType, ...]:
        return tuple(t for t in self._types.values() if t.kind == "object")

    def with_type(self, schema_type: SchemaType) -> Registry:
        """A registry with `schema_type` added, or replacing the type of the same name in place."""
        types = dict(self._types)
        types[schema_type.name] = schema_type
        return Registry(types.values())

    def without(self, name: str) -> Registry:
        """A registry without the type `name`; NotFoundError if there is none."""
        if name not in self._types:
            raise NotFoundError(f"unknown schema type '{name}'", type=name)
        return Registry(t for t in self._types.values() if t.name != name)

    def resolve(self, field: Field) -> tuple[Field, ...]:
        """The nested fields of an object field: its own, or those of the object type it names.

        Raises:
            InvalidInputError: the field is not an object field, or names no registered object type.
        """
        if field.is_inline_object:
            return field.fields
        target = self._types.get(field.type) if field.is_named_object else None
        if target is None or target.kind != "object":
            raise InvalidInputError(
                f"field '{field.name}' of type '{field.type}' has no object fields", path=field.name
            )
        return target.fields

    def check(self) -> None:
        """Verify the links between types.

        Reference targets must be registered document types, named field types registered object
        types, no object type may contain itself unless an array lies in between, and no two types may
        share a GraphQL name (`site-settings` and `siteSettings` both become `SiteSettings`).

        Raises:
            InvalidInputError: listing every problem; `details["errors"]` holds one
                `{"type", "path", "message"}` per problem.
        """
        problems = self.problems()
        if problems:
            lines = [f"{p['type']}: {p['path']}: {p['message']}" for p in problems]
            raise InvalidInputError(
                "invalid content model: " + "; ".join(lines),
                path=problems[0]["path"],
                type=problems[0]["type"],
                errors=problems,
            )

    def problems(self) -> list[dict[str, str]]:
        """What `check()` would report, as `{"type", "path", "message"}` dicts (empty when sound)."""
        problems: list[dict[str, str]] = []
        graphql_names: dict[str, str] = {}
        for schema_type in self._types.values():
            pascal = to_pascal_case(schema_type.name)
            if pascal in graphql_names:
                other = graphql_names[pascal]
                problems.append(
                    _problem(
                        schema_type.name,
                        "name",
                        f"has the same GraphQL name '{pascal}' as type '{other}'",
                    )
                )
            graphql_names.setdefault(pascal, schema_type.name)
            for i, f in enumerate(schema_type.fields):
                problems.extend(self._field_problems(schema_type.name, f, f"fields[{i}]"))
            if schema_type.kind == "object":
                cycle = self._containment_cycle(schema_type.name, schema_type.fields, ())
                if cycle:
                    chain = " -> ".join((schema_type.name, *cycle))
                    problems.append(
                        _problem(
                            schema_type.name,
                            "fields",
                            f"contains itself without an array in between ({chain})",
                        )
                    )
        return problems

    def _field_problems(self, owner: str, f: Field, path: str) -> Iterator[dict[str, str]]:
        for i, target in enumerate(f.to):
            found = self._types.get(target)
            if found is None:
                yield _problem(owner, f"{path}.to[{i}]", f"unknown document type '{target}'")
            elif found.kind != "document":
                yield _problem(
                    owner,
                    f"{path}.to[{i}]",
                    f"'{target}' is an object type; references point to document types",
                )
        if f.is_named_object:
            found = self._types.get(f.type)
            if found is None:
                yield _problem(owner, f"{path}.type", f"unknown field type '{f.type}'")
            elif found.kind != "object":
                yield _problem(
                    owner,
                    f"{path}.type",
                    f"'{f.type}' is a document type; use a reference to point to it",
                )
        for i, item in enumerate(f.of):
            yield from self._field_problems(owner, item, f"{path}.of[{i}]")
        for i, nested in enumerate(f.fields):
            yield from self._field_problems(owner, nested, f"{path}.fields[{i}]")

    def _containment_cycle(
        self, start: str, fields: tuple[Field, ...], chain: tuple[str, ...]
    ) -> tuple[str, ...]:
        """The chain of object types through which `start` contains itself (arrays end a chain)."""
        for f in fields:
            if f.is_inline_object:
                found = self._containment_cycle(start, f.fields, chain)
            elif f.is_named_object and f.type not in chain:
                if f.type == start:
                    return (*chain, start)
                target = self._types.get(f.type)
                if target is None or target.kind != "object":
                    continue
                found = self._containment_cycle(start, target.fields, (*chain, f.type))
            else:
                continue
            if found:
                return found
        return ()


def _problem(type_name: str, path: str, message: str) -> dict[str, str]:
    return {"type": type_name, "path": path, "message": message}


def freeze(value: Any) -> Any:
    """A read-only copy of JSON settings: mappings become MappingProxyType, lists tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value
