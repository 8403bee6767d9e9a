"""Strawberry types generated from the content model.

For each document type `post`: the object type `Post` (implementing `Document`), `PostWhereInput`,
`PostDataInput` and `PostPage`; for object fields, nested types named after their owner and field
(`PostSeo`); unions for arrays of several object types (`PageSectionsItem`) and for references to several
types (`PostLinkTarget`).

Types refer to each other in cycles (an author's mentor is an author), so their annotations are strings
resolved in a module made for each generated schema; Strawberry resolves them when the schema is built.
Every content field is nullable: drafts may be incomplete.
"""

from __future__ import annotations

import itertools
import re
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Any, Optional, Union

import strawberry
from strawberry.scalars import JSON

from server.graphql import types as static
from server.names import to_pascal_case
from server.query import kinds
from server.query.kinds import Kind
from server.schema_types import Field, Registry, SchemaType

_module_counter = itertools.count(1)

_SCALARS: dict[str, str] = {
    "string": "str",
    "text": "str",
    "slug": "str",
    "url": "str",
    "boolean": "bool",
    "date": "date",
    "datetime": "datetime",
}
_FILTERS: dict[str, str] = {
    "string": "StringFilter",
    "text": "StringFilter",
    "slug": "StringFilter",
    "url": "StringFilter",
    "number": "NumberFilter",
    "boolean": "BooleanFilter",
    "date": "DateFilter",
    "datetime": "DateTimeFilter",
}
# The document's own columns, filterable in every WhereInput.
COLUMN_FILTERS: dict[str, str] = {
    "id": "IDFilter",
    "status": "StringFilter",
    "createdAt": "DateTimeFilter",
    "updatedAt": "DateTimeFilter",
    "publishedAt": "DateTimeFilter",
    "createdBy": "StringFilter",
    "updatedBy": "StringFilter",
}


@dataclass
class ObjectShape:
    """How to turn stored JSON into an instance of a generated output type."""

    cls: type
    # (key in the stored JSON, Python attribute, converter of the stored value)
    fields: list[tuple[str, str, Callable[[Any], Any]]] = field(default_factory=list)


@dataclass
class GeneratedTypes:
    registry: Registry
    module: types.ModuleType
    documents: dict[str, type] = field(default_factory=dict)  # schema type name -> class
    where_inputs: dict[str, type] = field(default_factory=dict)
    data_inputs: dict[str, type] = field(default_factory=dict)
    pages: dict[str, type] = field(default_factory=dict)
    shapes: dict[str, ObjectShape] = field(default_factory=dict)  # schema type name -> shape
    # Generated class name -> content field name -> its kind: what the compiled read path reads.
    class_fields: dict[str, dict[str, Kind]] = field(default_factory=dict)

    @property
    def namespace(self) -> dict[str, Any]:
        return self.module.__dict__


def graphql_name(schema_type_name: str) -> str:
    return to_pascal_case(schema_type_name)


# Content fields live under prefixed Python attributes, so no field name (`from`, `self`, ...) can
# clash with Python or with the fixed attributes; GraphQL sees the field's own name.
ATTRIBUTE_PREFIX = "f_"


def attribute(field_name: str) -> str:
    return ATTRIBUTE_PREFIX + field_name


def field_name_of(attr: str) -> str | None:
    return attr[len(ATTRIBUTE_PREFIX) :] if attr.startswith(ATTRIBUTE_PREFIX) else None


def _graphql_names(annotations: dict[str, str]) -> dict[str, str]:
    return {attr: name for attr in annotations if (name := field_name_of(attr)) is not None}


class TypeGenerator:
    """Builds the generated types of one registry. Use `generate(registry)`."""

    def __init__(self, registry: Registry) -> None:
        module = types.ModuleType(f"server.graphql._generated_{next(_module_counter)}")
        module.__dict__.update(
            {
                "Optional": Optional,
                "Union": Union,
                "Annotated": Annotated,
                "strawberry": strawberry,
                "JSON": JSON,
                "date": date,
                "datetime": datetime,
                "list": list,
            }
        )
        for name in dir(static):
            value = getattr(static, name)
            if isinstance(value, type):
                module.__dict__[name] = value
        sys.modules[module.__name__] = module
        self.out = GeneratedTypes(registry=registry, module=module)
        self.registry = registry
        self._taken: set[str] = set(module.__dict__)

    # Names

    def _claim(self, name: str) -> str:
        if name in self._taken:
            raise ValueError(f"the generated GraphQL name {name!r} is used twice")
        self._taken.add(name)
        return name

    def _define(self, name: str, value: Any) -> None:
        self.out.namespace[name] = value

    def _make_class(
        self,
        name: str,
        annotations: dict[str, str],
        *,
        bases: tuple[type, ...] = (),
        is_input: bool = False,
        description: str | None = None,
        renamed: dict[str, str] | None = None,
    ) -> type:
        body: dict[str, Any] = {
            "__annotations__": dict(annotations),
            "__module__": self.out.module.__name__,
        }
        renamed = renamed or {}
        for attr in annotations:
            default = strawberry.UNSET if is_input else None
            body[attr] = strawberry.field(default=default, name=renamed.get(attr, attr))
        cls = types.new_class(name, bases, {}, lambda ns: ns.update(body))
        decorated: type = (
            strawberry.input(cls, name=name, description=description)
            if is_input
            else strawberry.type(cls, name=name, description=description)
        )
        self._define(name, decorated)
        return decorated

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
        annotations["meta_key"] = "Optional[str]"
        annotations["meta_type"] = "Optional[str]"
        shape.fields.append(("_key", "meta_key", _text))
        shape.fields.append(("_type", "meta_type", _text))
        renamed = {**_graphql_names(annotations), "meta_key": "_key", "meta_type": "_type"}
        cls = self._make_class(name, annotations, description=description, renamed=renamed)
        shape.cls = cls
        self.out.shapes[f"object:{name}"] = shape
        return cls

    def _content_fields(
        self, owner: str, fields: tuple[Field, ...], shape: ObjectShape
    ) -> dict[str, str]:
        annotations: dict[str, str] = {}
        recorded = self.out.class_fields.setdefault(owner, {})
        for f in fields:
            annotation, convert, kind = self._output(owner, f)
            annotations[attribute(f.name)] = f"Optional[{annotation}]"
            shape.fields.append((f.name, attribute(f.name), convert))
            recorded[f.name] = kind
        return annotations

    def _output(self, owner: str, f: Field) -> tuple[str, Callable[[Any], Any], Kind]:
        """The annotation of a field's GraphQL type, the converter of its stored value, its kind."""
        if f.type in _SCALARS:
            return _SCALARS[f.type], _SCALAR_CONVERTERS[f.type], _SCALAR_KINDS[f.type]
        if f.type == "number":
            if f.integer:
                return "int", _integer, kinds.Scalar("int")
            return "float", _number, kinds.Scalar("float")
        if f.type == "image":
            return "Image", _image, kinds.Asset("image")
        if f.type == "file":
            return "FileAsset", _file, kinds.Asset("file")
        if f.is_reference:
            return self._reference(owner, f)
        if f.is_array:
            return self._array(owner, f)
        if f.is_inline_object:
            name = self._claim(f"{owner}{to_pascal_case(f.name)}")
            self._object_type(name, f.fields, f.description)
            return name, self._object_converter(name), kinds.Object(name)
        if f.is_named_object:
            name = graphql_name(f.type)
            return name, self._object_converter(name), kinds.Object(name)
        return "JSON", _identity, kinds.Json()

    def _reference(self, owner: str, f: Field) -> tuple[str, Callable[[Any], Any], Kind]:
        targets = [graphql_name(t) for t in f.to]
        if len(targets) == 1:
            annotation = targets[0]
        else:
            annotation = self._claim(f"{owner}{to_pascal_case(f.name)}Target")
            members = ", ".join(targets)
            self._define(
                annotation,
                eval(  # noqa: S307 (names from the validated content model only)
                    f"Annotated[Union[{members}], strawberry.union({annotation!r})]",
                    self.out.namespace,
                ),
            )
        return annotation, self._reference_converter(f.to), kinds.Reference(f.to)

    def _array(self, owner: str, f: Field) -> tuple[str, Callable[[Any], Any], Kind]:
        if f.is_rich_text:
            return "JSON", _identity, kinds.Json()
        items = f.of
        if all(item.is_scalar for item in items):
            annotations = {self._output(owner, item)[0] for item in items}
            if len(annotations) == 1:
                annotation, convert, kind = self._output(owner, items[0])
                return f"list[Optional[{annotation}]]", _list_of(convert), kinds.ListOf(kind)
            return "JSON", _identity, kinds.Json()
        if all(item.is_reference for item in items):
            targets = tuple(dict.fromkeys(t for item in items for t in item.to))
            merged = Field(name=f.name, type="reference", to=targets)
            annotation, convert, kind = self._reference(owner, merged)
            return f"list[Optional[{annotation}]]", _list_of(convert), kinds.ListOf(kind)
        members: list[tuple[str, str, Callable[[Any], Any], Kind]] = []
        for item in items:
            if item.is_scalar or item.is_reference:
                # scalars and objects mixed: keep it as JSON
                return "JSON", _identity, kinds.Json()
            if item.is_inline_object:
                name = self._claim(f"{owner}{to_pascal_case(f.name)}{to_pascal_case(item.name)}")
                self._object_type(name, item.fields, item.description)
                members.append((item.name, name, self._object_converter(name), kinds.Object(name)))
            else:
                annotation, convert, kind = self._output(owner, item)
                members.append((item.name, annotation, convert, kind))
        if len(members) == 1:
            _, annotation, convert, kind = members[0]
            return f"list[Optional[{annotation}]]", _list_of(convert), kinds.ListOf(kind)
        union = self._claim(f"{owner}{to_pascal_case(f.name)}Item")
        names = ", ".join(annotation for _, annotation, _, _ in members)
        self._define(
            union,
            eval(  # noqa: S307 (names from the validated content model only)
                f"Annotated[Union[{names}], strawberry.union({union!r})]", self.out.namespace
            ),
        )
        by_type = {item_type: convert for item_type, _, convert, _ in members}
        by_kind = kinds.ByItemType(tuple((item_type, kind) for item_type, _, _, kind in members))
        return f"list[Optional[{union}]]", _list_of(_by_item_type(by_type)), kinds.ListOf(by_kind)

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
        annotations = {column: f"Optional[{kind}]" for column, kind in COLUMN_FILTERS.items()}
        annotations.update(self._where_fields(name, schema_type.fields))
        annotations["AND"] = f"Optional[list[{name}]]"
        annotations["OR"] = f"Optional[list[{name}]]"
        annotations["NOT"] = f"Optional[{name}]"
        self.out.where_inputs[schema_type.name] = self._make_class(
            name,
            annotations,
            is_input=True,
            description=f"Filters on {schema_type.title} documents",
            renamed=_graphql_names(annotations),
        )

    def _where_fields(self, owner: str, fields: tuple[Field, ...]) -> dict[str, str]:
        annotations: dict[str, str] = {}
        for f in fields:
            kind = self._where_kind(owner, f)
            if kind is not None:
                annotations[attribute(f.name)] = f"Optional[{kind}]"
        return annotations

    def _where_kind(self, owner: str, f: Field) -> str | None:
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
            return name
        return None

    def _reference_filter(self, targets: tuple[str, ...]) -> str:
        unique = tuple(dict.fromkeys(targets))
        if len(unique) != 1:
            return "IDFilter"
        target = graphql_name(unique[0])
        name = f"{target}ReferenceFilter"
        if name not in self._taken:
            self._claim(name)
            annotations = {
                "equals": "Optional[strawberry.ID]",
                "not_equals": "Optional[strawberry.ID]",
                "in_": "Optional[list[strawberry.ID]]",
                "not_in": "Optional[list[strawberry.ID]]",
                "exists": "Optional[bool]",
                "where": f"Optional[{target}WhereInput]",
            }
            self._make_class(
                name,
                annotations,
                is_input=True,
                renamed={"in_": "in"},
                description=f"A reference to {target}: by id, or by the referenced document's fields",
            )
        return name

    def _data_input(self, schema_type: SchemaType) -> None:
        name = self._claim(f"{graphql_name(schema_type.name)}DataInput")
        annotations = self._data_fields(name, schema_type.fields)
        if not annotations:
            annotations = {"_unused": "Optional[bool]"}
        self.out.data_inputs[schema_type.name] = self._make_class(
            name,
            annotations,
            is_input=True,
            renamed=_graphql_names(annotations),
            description=f"A new {schema_type.title}: references as ids, lists of references as lists",
        )

    def _data_fields(self, owner: str, fields: tuple[Field, ...]) -> dict[str, str]:
        return {attribute(f.name): f"Optional[{self._data_kind(owner, f)}]" for f in fields}

    def _data_kind(self, owner: str, f: Field) -> str:
        if f.type in _SCALARS:
            return _SCALARS[f.type]
        if f.type == "number":
            return "int" if f.integer else "float"
        if f.type == "image":
            return "ImageInput"
        if f.type == "file":
            return "FileInput"
        if f.is_reference:
            return "strawberry.ID"
        if f.is_array and not f.is_rich_text:
            if all(item.is_reference for item in f.of):
                return "list[strawberry.ID]"
            if all(item.is_scalar for item in f.of):
                kinds = {self._data_kind(owner, item) for item in f.of}
                return f"list[{kinds.pop()}]" if len(kinds) == 1 else "JSON"
            return "list[JSON]"
        if f.is_object:
            name = f"{owner.removesuffix('DataInput')}{to_pascal_case(f.name)}Input"
            if name not in self._taken:
                self._claim(name)
                annotations = self._data_fields(name, self.registry.resolve(f))
                self._make_class(
                    name, annotations, is_input=True, renamed=_graphql_names(annotations)
                )
            return name
        return "JSON"

    def _page(self, schema_type: SchemaType) -> None:
        document = graphql_name(schema_type.name)
        name = self._claim(f"{document}Page")
        annotations = {
            "docs": f"list[{document}]",
            "totalDocs": "int",
            "limit": "int",
            "offset": "int",
            "page": "int",
            "totalPages": "int",
            "hasNextPage": "bool",
            "hasPrevPage": "bool",
        }
        body: dict[str, Any] = {
            "__annotations__": annotations,
            "__module__": self.out.module.__name__,
        }
        cls = types.new_class(name, (), {}, lambda ns: ns.update(body))
        self.out.pages[schema_type.name] = strawberry.type(cls, name=name)
        self._define(name, self.out.pages[schema_type.name])


def generate(registry: Registry) -> GeneratedTypes:
    return TypeGenerator(registry).build()


# Instances from the local API's JSON


def document_instance(out: GeneratedTypes, doc: dict[str, Any]) -> Any:
    meta = doc.get("_meta") or {}
    type_name = meta.get("type")
    shape = out.shapes.get(type_name) if isinstance(type_name, str) else None
    if shape is None:
        return None
    values = {attr: convert(doc.get(key)) for key, attr, convert in shape.fields}
    return shape.cls(
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


_SCALAR_KINDS: dict[str, Kind] = {
    "string": kinds.Scalar("text"),
    "text": kinds.Scalar("text"),
    "slug": kinds.Scalar("text"),
    "url": kinds.Scalar("text"),
    "boolean": kinds.Scalar("boolean"),
    "date": kinds.Scalar("date"),
    "datetime": kinds.Scalar("datetime"),
}

_SCALAR_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "string": _text,
    "text": _text,
    "slug": _text,
    "url": _text,
    "boolean": _boolean,
    "date": _date,
    "datetime": _timestamp,
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
