"""Reading type definitions from their JSON form: files under `schema/`, or a registered definition.

`parse_schema_type` checks one definition on its own and stops at the first problem, naming its exact
path (`fields[2].of[0].to`). Links between types are left to `Registry.check`, so a field may name an
object type that is registered later.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

from server.errors import InvalidInputError
from server.model.names import is_field_name, is_type_name, to_camel_case, to_pascal_case
from server.model.patterns import PatternError, compile_pattern
from server.model.types import (
    BLOCK,
    BUILTIN_TYPES,
    RESERVED_FIELD_NAMES,
    RESERVED_GRAPHQL_NAMES,
    RESERVED_TYPE_NAMES,
    AllowedValue,
    Field,
    Kind,
    Registry,
    SchemaType,
    freeze,
)

# Type-level settings kept in `SchemaType.options`, with the JSON type each must have. Any other key
# (a typo, or Aphex's `hooks` and `access`, which are functions) is refused rather than dropped.
_TYPE_SETTINGS: dict[str, tuple[type, str]] = {
    "singleton": (bool, "true or false"),
    "icon": (str, "a string"),
    "previewUrl": (str, "a string"),
    "preview": (dict, "an object"),
    "orderings": (list, "a list"),
    "groups": (list, "a list"),
    "fieldsets": (list, "a list"),
    "search": (list, "a list"),
}
_TYPE_KEYS = frozenset({"type", "name", "title", "description", "fields"}).union(_TYPE_SETTINGS)
_PRESENTATION_KEYS = ("hidden", "readOnly", "initialValue", "group", "fieldset")
_FIELD_KEYS = frozenset({"name", "type", "title", "description", "options", "required"}).union(
    _PRESENTATION_KEYS
)
_ITEM_KEYS = frozenset({"name", "type", "title", "description", "options"})
_LENGTH_RULES = frozenset({"min", "max", "regex"})
_TYPE_KEYS_BY_FIELD_TYPE: dict[str, frozenset[str]] = {
    "string": _LENGTH_RULES,
    "text": _LENGTH_RULES | {"rows"},
    "slug": _LENGTH_RULES,
    "url": _LENGTH_RULES,
    "number": frozenset({"min", "max", "integer"}),
    "reference": frozenset({"to"}),
    "array": frozenset({"of", "min", "max"}),
    "object": frozenset({"fields"}),
    BLOCK: frozenset({"styles", "lists", "marks"}),
}
_ALL_TYPE_KEYS = frozenset().union(*_TYPE_KEYS_BY_FIELD_TYPE.values())
_LIST_TYPES = frozenset({"string", "text", "slug", "url", "number"})
_EXTRA_KEYS = (*_PRESENTATION_KEYS, "rows", "styles", "lists", "marks")


def parse_schema_type(data: object) -> SchemaType:
    """Read and check one type definition in its JSON form.

    Args:
        data: the decoded JSON object, e.g. `{"type": "document", "name": "post", "fields": [...]}`.

    Returns:
        The `SchemaType`; its `to_json()` gives back the canonical form of the definition.

    Raises:
        InvalidInputError: the first problem found; `path` names where (`fields[2].of[0].to`, or None
            for the definition itself) and the message repeats the path.
    """
    d = _object(data, None, "a type definition")
    for key in d:
        if key not in _TYPE_KEYS:
            _fail(key, f"unknown key '{key}'")
    kind = d.get("type")
    if kind not in ("document", "object"):
        _fail("type", "must be 'document' or 'object'")
    name = _type_name(d.get("name"), "name")
    title = _optional_str(d, "title", None)
    description = _optional_str(d, "description", None)
    options: dict[str, Any] = {}
    for key, (json_type, what) in _TYPE_SETTINGS.items():
        if key in d:
            if not isinstance(d[key], json_type):
                _fail(key, f"must be {what}")
            options[key] = d[key]
    if options.get("singleton") and kind != "document":
        _fail("singleton", "only document types can be singletons")
    fields = _fields(d.get("fields"), "fields", top_level_document=kind == "document")
    return SchemaType(
        name=name,
        title=title if title is not None else _humanize(name),
        kind=_kind(kind),
        description=description,
        fields=fields,
        options=freeze(options),
    )


def load_schema_dir(path: str | os.PathLike[str]) -> Registry:
    """Read every `*.json` file of a folder (one type, or a list of types), sorted by file name.

    Args:
        path: the folder; subfolders and other files are ignored.

    Returns:
        The registry of all types, already checked with `Registry.check()`.

    Raises:
        FileNotFoundError: the folder does not exist.
        InvalidInputError: a file is not valid JSON, a definition is invalid, a type is defined twice,
            or the types do not link up; the message names the file, and `details["file"]` holds it.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"schema folder not found: {folder}")
    types: list[SchemaType] = []
    files: dict[str, str] = {}
    for file in sorted(folder.glob("*.json"), key=lambda p: p.name):
        try:
            content = json.loads(file.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInputError(f"{file.name}: invalid JSON: {exc}", file=file.name) from exc
        entries = content if isinstance(content, list) else [content]
        for i, entry in enumerate(entries):
            where = f"{file.name}[{i}]" if isinstance(content, list) else file.name
            try:
                schema_type = parse_schema_type(entry)
            except InvalidInputError as exc:
                raise InvalidInputError(
                    f"{where}: {exc.message}", path=exc.path, file=file.name
                ) from exc
            if schema_type.name in files:
                raise InvalidInputError(
                    f"{where}: type '{schema_type.name}' is already defined in "
                    f"{files[schema_type.name]}",
                    path="name",
                    file=file.name,
                )
            files[schema_type.name] = file.name
            types.append(schema_type)
    registry = Registry(types)
    problems = registry.problems()
    if problems:
        lines = [f"{files[p['type']]}: {p['path']}: {p['message']}" for p in problems]
        raise InvalidInputError(
            "invalid content model: " + "; ".join(lines),
            path=problems[0]["path"],
            file=files[problems[0]["type"]],
            errors=[{**p, "file": files[p["type"]]} for p in problems],
        )
    return registry


def _fields(value: object, path: str, *, top_level_document: bool) -> tuple[Field, ...]:
    if value is None:
        _fail(path, "is required: a list of fields")
    if not isinstance(value, list) or not value:
        _fail(path, "must be a non-empty list of fields")
    fields: list[Field] = []
    seen: dict[str, str] = {}
    for i, entry in enumerate(value):
        f = _field(entry, f"{path}[{i}]", reserved=top_level_document, item=False)
        # Two names that the API would show alike (`cover_image`, `coverImage`) clash as well.
        for key in dict.fromkeys((f.name, to_camel_case(f.name))):
            if key in seen and seen[key] == f.name:
                _fail(f"{path}[{i}].name", f"duplicate field '{f.name}'")
            if key in seen:
                _fail(f"{path}[{i}].name", f"'{f.name}' clashes with field '{seen[key]}'")
            seen[key] = f.name
        fields.append(f)
    return tuple(fields)


def _field(value: object, path: str, *, reserved: bool, item: bool) -> Field:
    d = _object(value, path, "an array item type" if item else "a field")
    ftype = d.get("type")
    if not isinstance(ftype, str) or not ftype:
        _fail(f"{path}.type", "is required: a field type")
    if ftype == BLOCK and not item:
        _fail(f"{path}.type", "'block' is only allowed as an array item (in `of`)")
    if ftype not in BUILTIN_TYPES and ftype != BLOCK and not _could_name_object_type(ftype):
        _fail(f"{path}.type", f"unknown field type '{ftype}'")
    allowed_keys = _TYPE_KEYS_BY_FIELD_TYPE.get(ftype, frozenset()) | (
        _FIELD_KEYS if not item else _ITEM_KEYS if ftype == "object" else _ITEM_KEYS - {"name"}
    )
    for key in d:
        if key not in allowed_keys:
            _fail(f"{path}.{key}", _why_not_allowed(key, ftype, item=item))
    name = _item_name(d, ftype, path) if item else _field_name(d.get("name"), path, reserved)
    minimum = _bound(d, "min", ftype, path)
    maximum = _bound(d, "max", ftype, path)
    if minimum is not None and maximum is not None and minimum > maximum:
        _fail(f"{path}.min", f"min ({minimum}) is greater than max ({maximum})")
    integer = _optional_bool(d, "integer", path)
    options = d.get("options", {})
    if not isinstance(options, dict):
        _fail(f"{path}.options", "must be an object")
    allowed = _allowed(options, ftype, integer, f"{path}.options") if "list" in options else None
    extra: dict[str, Any] = {}
    for key in _EXTRA_KEYS:
        if key in d:
            extra[key] = _extra(d[key], key, f"{path}.{key}")
    return Field(
        name=name,
        type=ftype,
        title=_optional_str(d, "title", path),
        description=_optional_str(d, "description", path),
        required=_optional_bool(d, "required", path),
        min=minimum,
        max=maximum,
        integer=integer,
        regex=_regex(d, path),
        allowed=allowed,
        to=_targets(d.get("to"), f"{path}.to") if ftype == "reference" else (),
        of=_items(d.get("of"), f"{path}.of") if ftype == "array" else (),
        fields=_fields(d.get("fields"), f"{path}.fields", top_level_document=False)
        if ftype == "object"
        else (),
        options=freeze(options),
        extra=freeze(extra),
    )


def _why_not_allowed(key: str, ftype: str, *, item: bool) -> str:
    if key == "validation":
        return (
            "'validation' functions cannot be stored as JSON; use the rule keys "
            "required, min, max, integer, regex and options.list"
        )
    if item and key == "name":
        return "'name' is only allowed on inline object items"
    if item and key in _FIELD_KEYS:
        return f"'{key}' does not apply to array items"
    if key in _ALL_TYPE_KEYS:
        return f"'{key}' does not apply to {ftype} fields"
    return f"unknown key '{key}'"


def _field_name(value: object, path: str, reserved: bool) -> str:
    if not isinstance(value, str) or not value:
        _fail(f"{path}.name", "is required: a field name")
    if value.startswith("_"):
        _fail(f"{path}.name", f"'{value}': names starting with '_' are reserved for system keys")
    if not is_field_name(value):
        _fail(
            f"{path}.name",
            f"'{value}' is not a valid field name (letters, digits and '_', not starting with a "
            "digit, at most 100 characters)",
        )
    clash = next((n for n in (value, to_camel_case(value)) if n in RESERVED_FIELD_NAMES), None)
    if reserved and clash:
        _fail(f"{path}.name", f"'{value}' is reserved: documents have their own '{clash}' field")
    return value


def _item_name(d: dict[str, Any], ftype: str, path: str) -> str:
    if ftype != "object":
        # The `_type` that items of this kind carry in data.
        return ftype
    if "name" not in d:
        _fail(f"{path}.name", "is required: inline object items are told apart by name (`_type`)")
    return _type_name(d["name"], f"{path}.name")


def _type_name(value: object, path: str) -> str:
    if not isinstance(value, str) or not value:
        _fail(path, "is required: a type name")
    if not is_type_name(value):
        _fail(
            path,
            f"'{value}' is not a valid type name (letters, digits, '_' and '-', starting with a "
            "letter, at most 100 characters)",
        )
    if value in RESERVED_TYPE_NAMES or to_pascal_case(value) in RESERVED_GRAPHQL_NAMES:
        _fail(path, f"'{value}' is reserved")
    return value


def _could_name_object_type(ftype: str) -> bool:
    return is_type_name(ftype) and ftype not in RESERVED_TYPE_NAMES


def _items(value: object, path: str) -> tuple[Field, ...]:
    if value is None:
        _fail(path, "is required: an array needs `of`, the list of its item types")
    if not isinstance(value, list) or not value:
        _fail(path, "must be a non-empty list of item types")
    items: list[Field] = []
    for i, entry in enumerate(value):
        item = _field(entry, f"{path}[{i}]", reserved=False, item=True)
        if item.is_array:
            _fail(
                f"{path}[{i}].type", "arrays cannot hold arrays; wrap the inner array in an object"
            )
        if any(other.name == item.name for other in items):
            _fail(f"{path}[{i}]", f"duplicate item type '{item.name}'")
        items.append(item)
    if any(i.is_scalar for i in items) and not all(i.is_scalar for i in items):
        _fail(path, "an array cannot mix primitive values with objects, references or blocks")
    return tuple(items)


def _targets(value: object, path: str) -> tuple[str, ...]:
    if value is None:
        _fail(path, "is required: a reference needs `to`, the document types it may point to")
    if not isinstance(value, list) or not value:
        _fail(path, 'must be a non-empty list like [{"type": "author"}]')
    targets: list[str] = []
    for i, entry in enumerate(value):
        if isinstance(entry, dict):
            if set(entry) != {"type"}:
                _fail(f"{path}[{i}]", 'must be {"type": "<document type>"}')
            entry = entry["type"]
        target = _type_name(entry, f"{path}[{i}]")
        if target in targets:
            _fail(f"{path}[{i}]", f"duplicate target '{target}'")
        targets.append(target)
    return tuple(targets)


def _bound(d: dict[str, Any], key: str, ftype: str, path: str) -> int | float | None:
    if key not in d:
        return None
    value = d[key]
    if ftype == "number":
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            _fail(f"{path}.{key}", "must be a number")
    elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
        # Lengths of strings and arrays.
        _fail(f"{path}.{key}", "must be a whole number, 0 or more")
    bound: int | float = value
    return bound


def _regex(d: dict[str, Any], path: str) -> str | None:
    pattern = _optional_str(d, "regex", path)
    if pattern is not None:
        try:
            compile_pattern(pattern)
        except PatternError as exc:
            _fail(f"{path}.regex", f"invalid regular expression: {exc}")
    return pattern


def _allowed(
    options: dict[str, Any], ftype: str, integer: bool, path: str
) -> tuple[AllowedValue, ...]:
    if ftype not in _LIST_TYPES:
        _fail(f"{path}.list", f"a list of allowed values does not apply to {ftype} fields")
    entries = options["list"]
    if not isinstance(entries, list) or not entries:
        _fail(f"{path}.list", "must be a non-empty list")
    values: list[AllowedValue] = []
    for i, entry in enumerate(entries):
        where = f"{path}.list[{i}]"
        if isinstance(entry, dict):
            if "value" not in entry or not set(entry) <= {"title", "value"}:
                _fail(where, 'must be a value or {"title": ..., "value": ...}')
            if not isinstance(entry.get("title", ""), str):
                _fail(f"{where}.title", "must be a string")
            entry = entry["value"]
        if ftype == "number":
            is_number = isinstance(entry, int | float) and not isinstance(entry, bool)
            if not is_number or (integer and not float(entry).is_integer()):
                _fail(where, "must be an integer" if integer else "must be a number")
        elif not isinstance(entry, str):
            _fail(where, "must be a string")
        if entry in values:
            _fail(where, f"duplicate value {entry!r}")
        values.append(entry)
    return tuple(values)


def _extra(value: Any, key: str, path: str) -> Any:
    if key in ("hidden", "readOnly") and not isinstance(value, bool):
        _fail(path, "must be true or false")
    if key == "fieldset" and not isinstance(value, str):
        _fail(path, "must be a string")
    if key == "group" and not (
        isinstance(value, str)
        or (isinstance(value, list) and all(isinstance(g, str) for g in value))
    ):
        _fail(path, "must be a group name or a list of them")
    if key == "rows" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        _fail(path, "must be a whole number, 1 or more")
    if key in ("styles", "lists", "marks") and not isinstance(value, list | dict):
        _fail(path, "must be a list or an object")
    return value


def _object(value: object, path: str | None, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        _fail(path, f"must be an object: {what}")
    return value


def _optional_str(d: Mapping[str, Any], key: str, path: str | None) -> str | None:
    value = d.get(key)
    if value is not None and not isinstance(value, str):
        _fail(f"{path}.{key}" if path else key, "must be a string")
    return value


def _optional_bool(d: Mapping[str, Any], key: str, path: str) -> bool:
    value = d.get(key, False)
    if not isinstance(value, bool):
        _fail(f"{path}.{key}", "must be true or false")
    return value


def _kind(value: object) -> Kind:
    return "document" if value == "document" else "object"


def _humanize(name: str) -> str:
    """`siteSettings` / `site-settings` -> `Site Settings`, the default title."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return " ".join(word[:1].upper() + word[1:] for word in re.split(r"[-_\s]+", spaced) if word)


def _fail(path: str | None, problem: str) -> NoReturn:
    raise InvalidInputError(f"{path}: {problem}" if path else problem, path=path)
