"""Strawberry types generated from the content model.

For each document type `post`: the object type `Post` (implementing `Document`), `PostWhereInput`,
`PostDataInput` and `PostPage`; for object fields, nested types named after their owner and field
(`PostSeo`); unions for arrays of several object types (`PageSectionsItem`) and for references to several
types (`PostLinkTarget`).

Types refer to each other in cycles (an author's mentor is an author), so they are made in two passes:
every class first, then each field's Strawberry type (`StrawberryOptional`, `StrawberryList`, the class
or union it names). No annotation is a string or a `typing` form, so nothing is evaluated and nothing
lands in a process-wide cache (`typing.Optional[X]` memoises `X`): once a schema is replaced, its types
are garbage. Every content field is nullable: drafts may be incomplete.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import MISSING, dataclass, field
from datetime import date, datetime
from typing import Any

import strawberry
from strawberry.annotation import StrawberryAnnotation
from strawberry.scalars import JSON
from strawberry.types.base import StrawberryList, StrawberryOptional
from strawberry.types.union import StrawberryUnion

from server.graphql import types as static
from server.model.field_kinds import SCALAR_TYPES, VALUE_KINDS, ValueKind
from server.model.names import attribute, field_name_of, graphql_name, to_pascal_case
from server.model.reference_paths import field_json
from server.model.types import Field, Registry, SchemaType
from server.query import kinds
from server.query.kinds import Kind


@dataclass(frozen=True)
class Named:
    """A generated class or union, looked up by its GraphQL name once every class exists."""

    name: str


@dataclass(frozen=True)
class Nullable:
    """`X` or null (`StrawberryOptional`); without it a field is non-null."""

    of: object


@dataclass(frozen=True)
class ListOf:
    """A list of `X` (`StrawberryList`)."""

    of: object


# A field's GraphQL type before the second pass: a Python or static type (`str`, `static.Image`),
# `Named`, or `Nullable` / `ListOf` of one.
Annotation = object

# The scalar field types (`server/model/field_kinds.py`): each kind's GraphQL scalar as a Python
# type, and its filter input. A number is `Int` or `Float` by the field (`_output`).
_PYTHON_SCALARS: dict[str, Annotation] = {
    "String": str,
    "Boolean": bool,
    "Date": date,
    "DateTime": datetime,
}
_KIND_FILTERS: dict[ValueKind, Annotation] = {
    "text": static.StringFilter,
    "number": static.NumberFilter,
    "boolean": static.BooleanFilter,
    "date": static.DateFilter,
    "datetime": static.DateTimeFilter,
}
_SCALARS: dict[str, Annotation] = {
    name: _PYTHON_SCALARS[VALUE_KINDS[t.kind].graphql_scalar]
    for name, t in SCALAR_TYPES.items()
    if t.kind != "number"
}
_FILTERS: dict[str, Annotation] = {name: _KIND_FILTERS[t.kind] for name, t in SCALAR_TYPES.items()}
# The document's own columns, filterable in every WhereInput.
COLUMN_FILTERS: dict[str, Annotation] = {
    "id": static.IDFilter,
    "status": static.StringFilter,
    "createdAt": static.DateTimeFilter,
    "updatedAt": static.DateTimeFilter,
    "publishedAt": static.DateTimeFilter,
    "createdBy": static.StringFilter,
    "updatedBy": static.StringFilter,
}
# GraphQL names the generated types must leave alone: the fixed types and the scalars.
_RESERVED = frozenset(
    {
        # The static types' names (a generic such as `Page[T]` is only a template: the schema
        # holds its named specialisations).
        *(
            name
            for name, value in vars(static).items()
            if hasattr(value, "__strawberry_definition__")
            and not value.__strawberry_definition__.is_graphql_generic
        ),
        *("ID", "String", "Int", "Float", "Boolean", "JSON", "Date", "DateTime"),
    }
)


@dataclass
class ObjectShape:
    """How to turn stored JSON into an instance of a generated output type."""

    cls: type
    # (key in the stored JSON, Python attribute, converter of the stored value)
    fields: list[tuple[str, str, Callable[[Any], Any]]] = field(default_factory=list)


@dataclass
class GeneratedTypes:
    registry: Registry
    documents: dict[str, type] = field(default_factory=dict)  # schema type name -> class
    where_inputs: dict[str, type] = field(default_factory=dict)
    data_inputs: dict[str, type] = field(default_factory=dict)
    pages: dict[str, type] = field(default_factory=dict)
    shapes: dict[str, ObjectShape] = field(default_factory=dict)  # schema type name -> shape
    # Generated class name -> content field name -> its kind: what the compiled read path reads.
    class_fields: dict[str, dict[str, Kind]] = field(default_factory=dict)


def _graphql_names(annotations: dict[str, Annotation]) -> dict[str, str]:
    return {attr: name for attr in annotations if (name := field_name_of(attr)) is not None}


class TypeGenerator:
    """Builds the generated types of one registry. Use `generate(registry)`."""

    def __init__(self, registry: Registry) -> None:
        self.out = GeneratedTypes(registry=registry)
        self.registry = registry
        self._taken: set[str] = set(_RESERVED)
        # Generated GraphQL name -> class (the first pass) or union (the second).
        self._types: dict[str, Any] = {}
        # Union name -> its members; made in the second pass, when every member exists.
        self._unions: dict[str, tuple[Annotation, ...]] = {}
        # Each class with its fields' annotations, given their Strawberry types in the second pass.
        self._classes: list[tuple[type, dict[str, Annotation]]] = []

    # Names

    def _claim(self, name: str) -> str:
        if name in self._taken:
            raise ValueError(f"the generated GraphQL name {name!r} is used twice")
        self._taken.add(name)
        return name

    def _union(self, name: str, members: tuple[Annotation, ...]) -> Named:
        self._unions[name] = members
        return Named(name)

    def _make_class(
        self,
        name: str,
        annotations: dict[str, Annotation],
        *,
        bases: tuple[type, ...] = (),
        is_input: bool = False,
        description: str | None = None,
        renamed: dict[str, str] | None = None,
        required: bool = False,
    ) -> type:
        # Every field is typed `object` until the second pass gives it its GraphQL type.
        body: dict[str, Any] = {
            "__annotations__": dict.fromkeys(annotations, object),
            "__module__": __name__,
        }
        renamed = renamed or {}
        default = MISSING if required else strawberry.UNSET if is_input else None
        for attr in annotations:
            body[attr] = strawberry.field(default=default, name=renamed.get(attr, attr))
        cls = types.new_class(name, bases, {}, lambda ns: ns.update(body))
        decorated: type = (
            strawberry.input(cls, name=name, description=description)
            if is_input
            else strawberry.type(cls, name=name, description=description)
        )
        self._types[name] = decorated
        self._classes.append((decorated, annotations))
        return decorated

    def _resolve(self, annotation: Annotation) -> Any:
        if isinstance(annotation, Nullable):
            return StrawberryOptional(self._resolve(annotation.of))
        if isinstance(annotation, ListOf):
            return StrawberryList(self._resolve(annotation.of))
        if isinstance(annotation, Named):
            return self._types[annotation.name]
        return annotation

    def _complete(self) -> None:
        """The second pass: unions of the classes, then every field's type."""
        for name, members in self._unions.items():
            self._types[name] = StrawberryUnion(
                name=name,
                type_annotations=tuple(StrawberryAnnotation(self._resolve(m)) for m in members),
            )
        for cls, typed in self._classes:
            for f in cls.__strawberry_definition__.fields:  # type: ignore[attr-defined]
                if f.python_name in typed:
                    f.type = self._resolve(typed[f.python_name])

    # Output types

    def build(self) -> GeneratedTypes:
        for schema_type in self.registry.document_types():
            self._claim(graphql_name(schema_type.name))
        for schema_type in self.registry.object_types():
            self._claim(graphql_name(schema_type.name))
        for schema_type in self.registry.object_types():
            self._object_type(
                graphql_name(schema_type.name), schema_type.fields, schema_type.description
            )
        for schema_type in self.registry.document_types():
            self._document_type(schema_type)
        for schema_type in self.registry.document_types():
            self._where_input(schema_type)
            self._data_input(schema_type)
            self._page(schema_type)
        self._complete()
        return self.out

    def _document_type(self, schema_type: SchemaType) -> None:
        name = graphql_name(schema_type.name)
        shape = ObjectShape(cls=type)
        annotations = self._content_fields(name, schema_type.fields, shape)
        description = schema_type.description or schema_type.title
        cls = self._make_class(
            name,
            annotations,
            bases=(static.Document,),
            description=description,
            renamed=_graphql_names(annotations),
        )
        shape.cls = cls
        self.out.documents[schema_type.name] = cls
        self.out.shapes[schema_type.name] = shape

    def _object_type(self, name: str, fields: tuple[Field, ...], description: str | None) -> type:
        shape = ObjectShape(cls=type)
        annotations = self._content_fields(name, fields, shape)
        # Array items carry their `_key` and `_type`; expose them like Sanity does.
        annotations["meta_key"] = Nullable(str)
        annotations["meta_type"] = Nullable(str)
        shape.fields.append(("_key", "meta_key", _text))
        shape.fields.append(("_type", "meta_type", _text))
        renamed = {**_graphql_names(annotations), "meta_key": "_key", "meta_type": "_type"}
        cls = self._make_class(name, annotations, description=description, renamed=renamed)
        shape.cls = cls
        self.out.shapes[f"object:{name}"] = shape
        return cls

    def _content_fields(
        self, owner: str, fields: tuple[Field, ...], shape: ObjectShape
    ) -> dict[str, Annotation]:
        annotations: dict[str, Annotation] = {}
        recorded = self.out.class_fields.setdefault(owner, {})
        for f in fields:
            annotation, convert, kind = self._output(owner, f)
            annotations[attribute(f.name)] = Nullable(annotation)
            shape.fields.append((f.name, attribute(f.name), convert))
            recorded[f.name] = kind
        return annotations

    def _output(self, owner: str, f: Field) -> tuple[Annotation, Callable[[Any], Any], Kind]:
        """The annotation of a field's GraphQL type, the converter of its stored value, its kind."""
        if f.type in _SCALARS:
            return _SCALARS[f.type], _SCALAR_CONVERTERS[f.type], _SCALAR_KINDS[f.type]
        if f.type == "number":
            if f.integer:
                return int, _integer, kinds.Scalar("int")
            return float, _number, kinds.Scalar("float")
        if f.type == "image":
            return static.Image, _image, kinds.Asset("image")
        if f.type == "file":
            return static.FileAsset, _file, kinds.Asset("file")
        if f.is_reference:
            return self._reference(owner, f)
        if f.is_array:
            return self._array(owner, f)
        if f.is_inline_object:
            name = self._claim(f"{owner}{to_pascal_case(f.name)}")
            self._object_type(name, f.fields, f.description)
            return Named(name), self._object_converter(name), kinds.Object(name)
        if f.is_named_object:
            name = graphql_name(f.type)
            return Named(name), self._object_converter(name), kinds.Object(name)
        return JSON, _identity, kinds.Json(field_json(self.registry, f))

    def _reference(self, owner: str, f: Field) -> tuple[Annotation, Callable[[Any], Any], Kind]:
        targets = tuple(Named(graphql_name(t)) for t in f.to)
        if len(targets) == 1:
            annotation = targets[0]
        else:
            name = self._claim(f"{owner}{to_pascal_case(f.name)}Target")
            annotation = self._union(name, targets)
        return annotation, self._reference_converter(f.to), kinds.Reference(f.to)

    def _array(self, owner: str, f: Field) -> tuple[Annotation, Callable[[Any], Any], Kind]:
        if f.is_rich_text:
            return JSON, _identity, kinds.Json(field_json(self.registry, f))
        items = f.of
        if all(item.is_scalar for item in items):
            annotations = {self._output(owner, item)[0] for item in items}
            if len(annotations) == 1:
                annotation, convert, kind = self._output(owner, items[0])
                return ListOf(Nullable(annotation)), _list_of(convert), kinds.ListOf(kind)
            return JSON, _identity, kinds.Json(field_json(self.registry, f))
        if all(item.is_reference for item in items):
            targets = tuple(dict.fromkeys(t for item in items for t in item.to))
            merged = Field(name=f.name, type="reference", to=targets)
            annotation, convert, kind = self._reference(owner, merged)
            return ListOf(Nullable(annotation)), _list_of(convert), kinds.ListOf(kind)
        members: list[tuple[str, Annotation, Callable[[Any], Any], Kind]] = []
        for item in items:
            if item.is_scalar or item.is_reference:
                # scalars and objects mixed: keep it as JSON
                return JSON, _identity, kinds.Json(field_json(self.registry, f))
            if item.is_inline_object:
                name = self._claim(f"{owner}{to_pascal_case(f.name)}{to_pascal_case(item.name)}")
                self._object_type(name, item.fields, item.description)
                converter = self._object_converter(name)
                members.append((item.name, Named(name), converter, kinds.Object(name)))
            else:
                annotation, convert, kind = self._output(owner, item)
                members.append((item.name, annotation, convert, kind))
        if len(members) == 1:
            _, annotation, convert, kind = members[0]
            return ListOf(Nullable(annotation)), _list_of(convert), kinds.ListOf(kind)
        name = self._claim(f"{owner}{to_pascal_case(f.name)}Item")
        union = self._union(name, tuple(annotation for _, annotation, _, _ in members))
        by_type = {item_type: convert for item_type, _, convert, _ in members}
        by_kind = kinds.ByItemType(tuple((item_type, kind) for item_type, _, _, kind in members))
        return ListOf(Nullable(union)), _list_of(_by_item_type(by_type)), kinds.ListOf(by_kind)

    # Converters that need the generated classes (looked up when called: cycles)

    def _object_converter(self, graphql_type: str) -> Callable[[Any], Any]:
        shapes = self.out.shapes

        def convert(value: Any) -> Any:
            if not isinstance(value, dict):
                return None
            shape = shapes[f"object:{graphql_type}"]
            return shape.cls(**{attr: conv(value.get(key)) for key, attr, conv in shape.fields})

        return convert

    def _reference_converter(self, targets: tuple[str, ...]) -> Callable[[Any], Any]:
        out = self.out

        def convert(value: Any) -> Any:
            if not isinstance(value, dict):
                return None
            if "_meta" in value and "id" in value:
                if value["_meta"].get("type") in targets:
                    return document_instance(out, value)
                # A target of another type (its type changed, or a bad reference was stored) is
                # never shown as the wrong type: it reads as the stub of the reference itself.
                reference = getattr(value, "reference", None)
                return stub_instance(out, targets[0], reference) if reference else None
            ref = value.get("_ref")
            if not isinstance(ref, str):
                return None
            return stub_instance(out, targets[0], value)

        return convert

    # Inputs

    def _where_input(self, schema_type: SchemaType) -> None:
        name = self._claim(f"{graphql_name(schema_type.name)}WhereInput")
        annotations: dict[str, Annotation] = {
            column: Nullable(kind) for column, kind in COLUMN_FILTERS.items()
        }
        annotations.update(self._where_fields(name, schema_type.fields))
        annotations["AND"] = Nullable(ListOf(Named(name)))
        annotations["OR"] = Nullable(ListOf(Named(name)))
        annotations["NOT"] = Nullable(Named(name))
        self.out.where_inputs[schema_type.name] = self._make_class(
            name,
            annotations,
            is_input=True,
            description=f"Filters on {schema_type.title} documents",
            renamed=_graphql_names(annotations),
        )

    def _where_fields(self, owner: str, fields: tuple[Field, ...]) -> dict[str, Annotation]:
        annotations: dict[str, Annotation] = {}
        for f in fields:
            kind = self._where_kind(owner, f)
            if kind is not None:
                annotations[attribute(f.name)] = Nullable(kind)
        return annotations

    def _where_kind(self, owner: str, f: Field) -> Annotation | None:
        if f.type in _FILTERS:
            return _FILTERS[f.type]
        if f.is_reference:
            return self._reference_filter(f.to)
        if f.is_array and not f.is_rich_text:
            if all(item.is_scalar for item in f.of):
                kinds = {_FILTERS.get(item.type) for item in f.of}
                return kinds.pop() if len(kinds) == 1 else None
            if all(item.is_reference for item in f.of):
                return self._reference_filter(tuple(t for item in f.of for t in item.to))
            return None
        if f.is_object:
            nested = self.registry.resolve(f)
            name = f"{owner.removesuffix('WhereInput')}{to_pascal_case(f.name)}WhereInput"
            if name not in self._taken:
                self._claim(name)
                annotations = self._where_fields(name, nested)
                if not annotations:
                    return None
                self._make_class(
                    name, annotations, is_input=True, renamed=_graphql_names(annotations)
                )
            return Named(name)
        return None

    def _reference_filter(self, targets: tuple[str, ...]) -> Annotation:
        unique = tuple(dict.fromkeys(targets))
        if len(unique) != 1:
            return static.IDFilter
        target = graphql_name(unique[0])
        name = f"{target}ReferenceFilter"
        if name not in self._taken:
            self._claim(name)
            annotations: dict[str, Annotation] = {
                "equals": Nullable(strawberry.ID),
                "not_equals": Nullable(strawberry.ID),
                "in_": Nullable(ListOf(strawberry.ID)),
                "not_in": Nullable(ListOf(strawberry.ID)),
                "exists": Nullable(bool),
                "where": Nullable(Named(f"{target}WhereInput")),
            }
            self._make_class(
                name,
                annotations,
                is_input=True,
                renamed={"in_": "in"},
                description=f"A reference to {target}: by id, or by the referenced document's fields",
            )
        return Named(name)

    def _data_input(self, schema_type: SchemaType) -> None:
        name = self._claim(f"{graphql_name(schema_type.name)}DataInput")
        annotations = self._data_fields(name, schema_type.fields)
        if not annotations:
            annotations = {"_unused": Nullable(bool)}
        self.out.data_inputs[schema_type.name] = self._make_class(
            name,
            annotations,
            is_input=True,
            renamed=_graphql_names(annotations),
            description=f"A new {schema_type.title}: references as ids, lists of references as lists",
        )

    def _data_fields(self, owner: str, fields: tuple[Field, ...]) -> dict[str, Annotation]:
        return {attribute(f.name): Nullable(self._data_kind(owner, f)) for f in fields}

    def _data_kind(self, owner: str, f: Field) -> Annotation:
        if f.type in _SCALARS:
            return _SCALARS[f.type]
        if f.type == "number":
            return int if f.integer else float
        if f.type == "image":
            return static.ImageInput
        if f.type == "file":
            return static.FileInput
        if f.is_reference:
            return strawberry.ID
        if f.is_array and not f.is_rich_text:
            if all(item.is_reference for item in f.of):
                return ListOf(strawberry.ID)
            if all(item.is_scalar for item in f.of):
                kinds = {self._data_kind(owner, item) for item in f.of}
                return ListOf(kinds.pop()) if len(kinds) == 1 else JSON
            return ListOf(JSON)
        if f.is_object:
            name = f"{owner.removesuffix('DataInput')}{to_pascal_case(f.name)}Input"
            if name not in self._taken:
                self._claim(name)
                annotations = self._data_fields(name, self.registry.resolve(f))
                self._make_class(
                    name, annotations, is_input=True, renamed=_graphql_names(annotations)
                )
            return Named(name)
        return JSON

    def _page(self, schema_type: SchemaType) -> None:
        document = graphql_name(schema_type.name)
        name = self._claim(f"{document}Page")
        annotations: dict[str, Annotation] = {"docs": ListOf(Named(document)), **static.PAGE_TOTALS}
        self.out.pages[schema_type.name] = self._make_class(name, annotations, required=True)


def generate(registry: Registry) -> GeneratedTypes:
    return TypeGenerator(registry).build()


# Instances from the local API's JSON


# The perspective of the document being converted, for the documents inlined in it: references
# are read in their root's perspective (`read_perspective`, `referencedBy`'s default).
_READ_IN: ContextVar[str] = ContextVar("read_perspective", default="published")


def document_instance(
    out: GeneratedTypes, doc: dict[str, Any], perspective: str | None = None
) -> Any:
    """The generated type's instance of a document read in `perspective` (by default, that of
    the document it is inlined in)."""
    meta = doc.get("_meta") or {}
    type_name = meta.get("type")
    shape = out.shapes.get(type_name) if isinstance(type_name, str) else None
    if shape is None:
        return None
    read_in = perspective or _READ_IN.get()
    token = _READ_IN.set(read_in)
    try:
        values = {attr: convert(doc.get(key)) for key, attr, convert in shape.fields}
    finally:
        _READ_IN.reset(token)
    return shape.cls(
        read_perspective=read_in,
        id=doc["id"],
        type=type_name,
        status=meta.get("status", "draft"),
        createdAt=_timestamp(meta.get("createdAt")),
        updatedAt=_timestamp(meta.get("updatedAt")),
        publishedAt=_timestamp(meta.get("publishedAt")),
        revision=meta.get("revision", 0),
        publishedHash=meta.get("publishedHash"),
        hasUnpublishedChanges=bool(meta.get("hasUnpublishedChanges")),
        _resolved=True,
        _raw=doc,
        _id=doc["id"],
        _ref=doc["id"],
        **values,
    )


def stub_instance(out: GeneratedTypes, type_name: str, reference: dict[str, Any]) -> Any:
    """A reference that was not followed: `_ref` and type, `_resolved: false`, no content.

    Its `id` is null, so that client caches never take it for the document (`types.Document`).
    """
    shape = out.shapes[type_name]
    return shape.cls(
        id=None,
        _ref=reference["_ref"],
        type=type_name,
        status="unresolved",
        revision=0,
        hasUnpublishedChanges=False,
        _resolved=False,
        _raw=reference,
    )


def _identity(value: Any) -> Any:
    return value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


_INT_RANGE = range(-(2**31), 2**31)


def _integer(value: Any) -> int | None:
    # GraphQL's Int is 32-bit; a larger stored number cannot be shown as one.
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        return None
    number = int(value)
    return number if number in _INT_RANGE else None


def _boolean(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


# The forms a date or datetime value is read in: ISO 8601 as the validator knows it. Anything else
# (Python's parser alone would take more) reads as null, as in SQL (`cms_read_date`, migration 0005).
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?"
    r"(?:Z|[-+]([0-9]{2}):([0-9]{2}))?"
)


def _date(value: Any) -> date | None:
    if not isinstance(value, str) or _DATE.fullmatch(value) is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or (match := _DATETIME.fullmatch(value)) is None:
        return None
    if match[2] is not None and int(match[2]) > 59:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


# What a stored value of each scalar kind is shown as (numbers: `_integer` and `_number`).
_KIND_CONVERTERS: dict[ValueKind, Callable[[Any], Any]] = {
    "text": _text,
    "boolean": _boolean,
    "date": _date,
    "datetime": _timestamp,
}
_SCALAR_KINDS: dict[str, Kind] = {name: kinds.Scalar(SCALAR_TYPES[name].kind) for name in _SCALARS}
_SCALAR_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    name: _KIND_CONVERTERS[SCALAR_TYPES[name].kind] for name in _SCALARS
}


def _asset_id(value: dict[str, Any]) -> str | None:
    asset = value.get("asset")
    ref = asset.get("_ref") if isinstance(asset, dict) else None
    return ref if isinstance(ref, str) else None


def _image(value: Any) -> static.Image | None:
    if not isinstance(value, dict):
        return None
    return static.Image(
        assetId=_asset_id(value),  # type: ignore[arg-type]
        alt=_text(value.get("alt")),
        caption=_text(value.get("caption")),
        hotspot=value.get("hotspot"),
        crop=value.get("crop"),
    )


def _file(value: Any) -> static.FileAsset | None:
    if not isinstance(value, dict):
        return None
    return static.FileAsset(
        assetId=_asset_id(value),  # type: ignore[arg-type]
        alt=_text(value.get("alt")),
        caption=_text(value.get("caption")),
    )


def _list_of(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def convert_list(value: Any) -> list[Any] | None:
        return [convert(item) for item in value] if isinstance(value, list) else None

    return convert_list


def _by_item_type(converters: dict[str, Callable[[Any], Any]]) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if not isinstance(value, dict):
            return None
        chosen = converters.get(_text(value.get("_type")) or "")
        return chosen(value) if chosen is not None else None

    return convert
