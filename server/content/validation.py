"""Document data checked against its type: structure on every save, content rules on publish.

Structural checks run on drafts too, because a draft with a wrong shape would break every reader:
unknown keys (below the top level, keys starting with `_`, such as `_key` and `_type`, are always
allowed; at the top level they are refused, since the engine gives them meaning there), `_type`,
`_key` and `_ref` that are not strings (anywhere, rich text included), the shape of each value, and
no string longer than `MAX_STRING_LENGTH`. Content rules (required, min/max, integer, regex, allowed
values, date / datetime / url / slug formats) only block publishing, since drafts are work in
progress. `regex` patterns run on RE2 (`server.model.patterns`), in time linear in the string.

Stored shapes:

    reference   {"_type": "reference", "_ref": "<uuid>"}                 (`_key` in arrays)
    image/file  {"_type": "image", "asset": {"_type": "reference", "_ref": "<uuid>"},
                 "alt"?: str, "caption"?: str, "hotspot"?: {...}, "crop"?: {...}}   (hotspot, crop: images)
    object      {"field": ..., "_type"?: ..., "_key"?: ...}
    array       [item, ...]; object-like items carry `_type` when the array has several item types

Every problem is reported with a path (`seo.title`, `categories[1]`, `body[2].caption`) and a rule:
`type`, `unknown`, `reserved` (a system key at the top level), `key` (duplicate `_key`), `required`,
`min`, `max`, `integer`, `regex`, `list`, `date`, `datetime`, `url`, `slug`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from server.errors import InvalidInputError
from server.model.field_kinds import SCALAR_TYPES, Format
from server.model.patterns import fullmatch
from server.model.types import STRING_TYPES, Field, Registry, SchemaType

Problem = dict[str, str]

UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_SLUG = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
# The longest string any field holds (about 15,000 words of prose), whatever its own `max`.
MAX_STRING_LENGTH = 100_000
_IMAGE_KEYS = frozenset({"asset", "alt", "caption", "hotspot", "crop"})
_FILE_KEYS = frozenset({"asset", "alt", "caption"})
# The system keys the engine reads wherever they appear in data (`server/content/references.py`).
_SYSTEM_STRINGS = frozenset({"_type", "_key", "_ref"})


def validate_document(registry: Registry, type_name: str, data: object, *, publish: bool) -> None:
    """Check document data against its document type.

    Args:
        registry: the content model.
        type_name: a document type of `registry`.
        data: the document's data (the draft, or the data about to be published).
        publish: also enforce the content rules, which only block publishing.

    Raises:
        InvalidInputError: the type is not a registered document type, or the data has problems. One
            error lists them all: the message joins them, `path` is the first one's, and
            `details["errors"]` holds `{"path", "rule", "message"}` for each.
    """
    problems = document_problems(registry, type_name, data, publish=publish)
    if problems:
        summary = "; ".join(
            f"{p['path']}: {p['message']}" if p["path"] else p["message"] for p in problems
        )
        raise InvalidInputError(
            f"invalid {type_name} document: {summary}",
            path=problems[0]["path"] or None,
            errors=problems,
        )


def document_problems(
    registry: Registry, type_name: str, data: object, *, publish: bool
) -> list[Problem]:
    """The problems `validate_document` would raise, as a list (empty when the data is valid)."""
    schema_type = _document_type(registry, type_name)
    checker = _Checker(registry, publish=publish)
    if isinstance(data, dict):
        for key in data:
            if isinstance(key, str) and key.startswith("_"):
                checker.add(key, "reserved", f"'{key}' is a system key, not document content")
        checker.fields(schema_type.fields, data, "")
        if not _system_keys_are_strings(data):
            checker.system_keys(data, "", {p["path"] for p in checker.problems})
    else:
        checker.add("", "type", "the document data must be an object")
    return checker.problems


def reference_ids(registry: Registry, type_name: str, data: object) -> list[tuple[str, str]]:
    """The document references in `data`, as (path, referenced id), in schema order.

    Only values the schema declares as references count; values of the wrong shape are skipped, and
    so is the content of rich-text blocks.
    """
    return [(path, ref) for path, ref, _ in reference_targets(registry, type_name, data)]


def reference_targets(
    registry: Registry, type_name: str, data: object
) -> list[tuple[str, str, tuple[str, ...]]]:
    """`reference_ids` with the document types each reference may point at (its field's `to`)."""
    return [
        (path, ref, to)
        for kind, path, ref, to in _links(registry, type_name, data)
        if kind == "ref"
    ]


def asset_ids(registry: Registry, type_name: str, data: object) -> list[tuple[str, str]]:
    """The image and file assets in `data`, as (path of the image or file value, asset id)."""
    return [
        (path, ref) for kind, path, ref, _ in _links(registry, type_name, data) if kind == "asset"
    ]


def document_links(
    registry: Registry, type_name: str, data: object
) -> tuple[list[tuple[str, str, tuple[str, ...]]], list[tuple[str, str]]]:
    """`reference_targets` and `asset_ids` together, from one walk over the data (a write needs
    both)."""
    targets: list[tuple[str, str, tuple[str, ...]]] = []
    assets: list[tuple[str, str]] = []
    for kind, path, ref, to in _links(registry, type_name, data):
        if kind == "ref":
            targets.append((path, ref, to))
        else:
            assets.append((path, ref))
    return targets, assets


class _Checker:
    def __init__(self, registry: Registry, *, publish: bool) -> None:
        self.registry = registry
        self.publish = publish
        self.problems: list[Problem] = []

    def add(self, path: str, rule: str, message: str) -> None:
        self.problems.append({"path": path, "rule": rule, "message": message})

    def fields(self, fields: tuple[Field, ...], data: dict[str, Any], path: str) -> None:
        declared = {f.name for f in fields}
        for key in data:
            if key not in declared and not key.startswith("_"):
                self.add(_join(path, key), "unknown", f"unknown field '{key}'")
        for f in fields:
            self.value(f, data.get(f.name), _join(path, f.name))

    def value(self, f: Field, value: Any, path: str) -> None:
        # null means absent, so only `required` can object to it (and only on publish); "" and []
        # are present but empty, so they also fail `required` and skip the other content rules.
        empty = (value == "" and f.type in STRING_TYPES) or (value == [] and f.is_array)
        if value is None or empty:
            if self.publish and f.required:
                self.add(path, "required", "is required")
            if value is None:
                return
        if f.type in STRING_TYPES:
            self.string(f, value, path)
        elif f.type == "number":
            self.number(f, value, path)
        elif f.type == "boolean":
            if not isinstance(value, bool):
                self.add(path, "type", "expected true or false")
        elif f.is_reference:
            self.reference(value, path)
        elif f.is_asset:
            self.asset(f, value, path)
        elif f.is_array:
            self.array(f, value, path)
        elif not isinstance(value, dict):
            self.add(path, "type", "expected an object")
        else:
            self.fields(self.registry.resolve(f), value, path)

    def string(self, f: Field, value: Any, path: str) -> None:
        if not isinstance(value, str):
            self.add(path, "type", "expected a string")
            return
        if len(value) > MAX_STRING_LENGTH:
            # A structural limit (checked on every save): it bounds what any string costs to
            # store, index, hash and check against the content rules.
            self.add(path, "max", f"must be at most {MAX_STRING_LENGTH} characters long")
            return
        if not self.publish or value == "":
            return
        if f.min is not None and len(value) < f.min:
            self.add(path, "min", f"must be at least {f.min} characters long")
        if f.max is not None and len(value) > f.max:
            self.add(path, "max", f"must be at most {f.max} characters long")
        if f.regex is not None and not fullmatch(f.regex, value):
            self.add(path, "regex", f"does not match the pattern {f.regex}")
        if f.allowed is not None and value not in f.allowed:
            self.add(path, "list", f"must be one of {_listing(f.allowed)}")
        form = SCALAR_TYPES[f.type].format
        if form is not None:
            check, message = _FORMATS[form]
            if not check(value):
                self.add(path, form, message)

    def number(self, f: Field, value: Any, path: str) -> None:
        if not _is_number(value):
            self.add(path, "type", "expected a number")
            return
        if not self.publish:
            return
        if f.integer and not float(value).is_integer():
            self.add(path, "integer", "must be a whole number")
        if f.min is not None and value < f.min:
            self.add(path, "min", f"must be at least {f.min}")
        if f.max is not None and value > f.max:
            self.add(path, "max", f"must be at most {f.max}")
        if f.allowed is not None and value not in f.allowed:
            self.add(path, "list", f"must be one of {_listing(f.allowed)}")

    def reference(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            self.add(path, "type", 'expected a reference {"_type": "reference", "_ref": "<id>"}')
            return
        if value.get("_type") != "reference":
            self.add(_join(path, "_type"), "type", "must be 'reference'")
        if not _is_uuid(value.get("_ref")):
            self.add(_join(path, "_ref"), "type", "must be a document id (a lowercase UUID)")
        self.no_other_keys(value, frozenset(), path)

    def asset(self, f: Field, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            self.add(path, "type", f"expected an {f.type} object with an asset reference")
            return
        if value.get("_type") != f.type:
            self.add(_join(path, "_type"), "type", f"must be '{f.type}'")
        asset = value.get("asset")
        if not isinstance(asset, dict):
            self.add(_join(path, "asset"), "type", 'must be {"_type": "reference", "_ref": "<id>"}')
        else:
            self.reference(asset, _join(path, "asset"))
        for key in ("alt", "caption"):
            if value.get(key) is not None and not isinstance(value[key], str):
                self.add(_join(path, key), "type", "expected a string")
        for key in ("hotspot", "crop"):
            nested = value.get(key)
            if nested is not None and not (
                isinstance(nested, dict)
                and all(k.startswith("_") or _is_number(v) for k, v in nested.items())
            ):
                self.add(_join(path, key), "type", "expected an object of numbers")
        self.no_other_keys(value, _IMAGE_KEYS if f.type == "image" else _FILE_KEYS, path)

    def array(self, f: Field, value: Any, path: str) -> None:
        if not isinstance(value, list):
            self.add(path, "type", "expected a list")
            return
        if self.publish and value:
            if f.min is not None and len(value) < f.min:
                self.add(path, "min", f"must have at least {f.min} items")
            if f.max is not None and len(value) > f.max:
                self.add(path, "max", f"must have at most {f.max} items")
        keys: set[str] = set()
        for i, item in enumerate(value):
            item_path = f"{path}[{i}]"
            if f.is_scalar_array:
                self.scalar_item(f.of, item, item_path)
                continue
            if not isinstance(item, dict):
                self.add(item_path, "type", "expected an object with a _type")
                continue
            key = item.get("_key")
            if key is not None and not isinstance(key, str):
                self.add(_join(item_path, "_key"), "type", "must be a string")
            elif key is not None and key in keys:
                self.add(_join(item_path, "_key"), "key", f"duplicate _key '{key}'")
            elif key is not None:
                keys.add(key)
            self.object_item(f.of, item, item_path)

    def scalar_item(self, items: tuple[Field, ...], value: Any, path: str) -> None:
        if value is None:
            self.add(path, "type", "array items cannot be null")
            return
        # The first item type whose rules the value passes wins; else report against the first.
        attempts: list[list[Problem]] = []
        for item in items:
            attempt = _Checker(self.registry, publish=self.publish)
            attempt.value(item, value, path)
            if not attempt.problems:
                return
            attempts.append(attempt.problems)
        shaped = [a for a in attempts if all(p["rule"] != "type" for p in a)]
        if shaped:
            self.problems.extend(shaped[0])
        else:
            self.add(path, "type", f"expected {' or '.join(_kind(i) for i in items)}")

    def object_item(self, items: tuple[Field, ...], value: dict[str, Any], path: str) -> None:
        item_type = value.get("_type")
        if item_type is not None and not isinstance(item_type, str):
            self.add(_join(path, "_type"), "type", "must be a string")
            return
        match = _match_item(items, value)
        if match is None:
            expected = _listing(tuple(i.name for i in items))
            if item_type is None:
                self.add(_join(path, "_type"), "type", f"is required: one of {expected}")
            else:
                self.add(_join(path, "_type"), "type", f"'{item_type}' is not one of {expected}")
        elif match.is_block:
            if item_type is None:
                self.add(_join(path, "_type"), "type", "is required on rich-text blocks")
        else:
            self.value(match, value, path)

    def system_keys(self, value: Any, path: str, reported: set[str]) -> None:
        """`_type`, `_key` and `_ref` are strings wherever they appear, rich text included (the
        paths in `reported` already have a problem)."""
        if isinstance(value, dict):
            for key, item in value.items():
                at = _join(path, key)
                if key in _SYSTEM_STRINGS and not isinstance(item, str):
                    if at not in reported:
                        self.add(at, "type", "must be a string")
                else:
                    self.system_keys(item, at, reported)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                self.system_keys(item, f"{path}[{i}]", reported)

    def no_other_keys(self, value: dict[str, Any], allowed: frozenset[str], path: str) -> None:
        for key in value:
            if key not in allowed and not key.startswith("_"):
                self.add(_join(path, key), "unknown", f"unknown key '{key}'")


def _match_item(items: tuple[Field, ...], value: dict[str, Any]) -> Field | None:
    """The item type of an object in an array: by `_type`, or the only one when `_type` is absent."""
    item_type = value.get("_type")
    if item_type is None:
        return items[0] if len(items) == 1 else None
    for item in items:
        if item.name == item_type:
            return item
    # Rich text keeps any other typed member (custom blocks, marks) as JSON.
    return next((item for item in items if item.is_block), None)


Link = tuple[str, str, str, tuple[str, ...]]  # kind ("ref" or "asset"), path, id, allowed types


def _links(registry: Registry, type_name: str, data: object) -> Iterator[Link]:
    schema_type = _document_type(registry, type_name)
    if isinstance(data, dict):
        yield from _walk_fields(registry, schema_type.fields, data, "")


def _walk_fields(
    registry: Registry, fields: tuple[Field, ...], data: dict[str, Any], path: str
) -> Iterator[Link]:
    for f in fields:
        value = data.get(f.name)
        if value is not None:
            yield from _walk(registry, f, value, _join(path, f.name), f.to)


def _walk(
    registry: Registry, f: Field, value: Any, path: str, to: tuple[str, ...]
) -> Iterator[Link]:
    if f.is_reference and isinstance(value, dict) and _is_uuid(value.get("_ref")):
        yield "ref", path, value["_ref"], to
    elif f.is_asset and isinstance(value, dict):
        asset = value.get("asset")
        if isinstance(asset, dict) and _is_uuid(asset.get("_ref")):
            yield "asset", path, asset["_ref"], ()
    elif f.is_array and isinstance(value, list) and not f.is_scalar_array:
        # The reference items of an array share one `_type`, so any of their targets will do.
        targets = tuple(dict.fromkeys(t for item in f.of if item.is_reference for t in item.to))
        for i, item in enumerate(value):
            match = _match_item(f.of, item) if isinstance(item, dict) else None
            if match is not None and not match.is_block:
                yield from _walk(registry, match, item, f"{path}[{i}]", targets)
    elif f.is_object and isinstance(value, dict):
        yield from _walk_fields(registry, registry.resolve(f), value, path)


def _system_keys_are_strings(value: Any) -> bool:
    """Whether `_Checker.system_keys` would find nothing: the same walk without the paths, which
    it only needs for a problem (writing every path cost a save more than the rest of its checks)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in _SYSTEM_STRINGS:
                if not isinstance(item, str):
                    return False
            elif not (type(item) is str or _system_keys_are_strings(item)):
                return False
        return True
    if isinstance(value, list):
        return all(type(item) is str or _system_keys_are_strings(item) for item in value)
    return True


def _document_type(registry: Registry, type_name: str) -> SchemaType:
    schema_type = registry.get(type_name)
    if schema_type is None or not schema_type.is_document:
        raise InvalidInputError(f"unknown document type '{type_name}'", path="type")
    return schema_type


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_uuid(value: Any) -> bool:
    return isinstance(value, str) and UUID_PATTERN.fullmatch(value) is not None


def _is_date(value: str) -> bool:
    if _DATE.fullmatch(value) is None:
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_datetime(value: str) -> bool:
    if _DATETIME.fullmatch(value) is None:
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_url(value: str) -> bool:
    if any(c.isspace() for c in value):
        return False
    if value.startswith("/"):
        # `//host/path` is a scheme-relative link to another site, not a local path.
        return not value.startswith("//")
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _is_slug(value: str) -> bool:
    return _SLUG.fullmatch(value) is not None


# Each string format of the field-kind table: its check and what a value that fails it must be.
_FORMATS: dict[Format, tuple[Callable[[str], bool], str]] = {
    "date": (_is_date, "must be a date like 2024-12-31"),
    "datetime": (_is_datetime, "must be an ISO 8601 date-time with a time zone"),
    "url": (_is_url, "must be an http(s) URL or a path starting with /"),
    "slug": (_is_slug, "must be lowercase letters, digits and single hyphens"),
}


def _kind(item: Field) -> str:
    return {"number": "a number", "boolean": "true or false"}.get(item.type, "a string")


def _listing(values: tuple[Any, ...]) -> str:
    return ", ".join(repr(v) for v in values)
