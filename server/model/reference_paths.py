"""Where a stored reference may lead: the `to` of every reference the content model declares.

The JSON forms (`_raw`, `documents`, JSON fields) inline references wherever they appear in the
data (`server/content/references.py`; `cms_inline` in SQL, migration 0009). A reference where the schema
registered now declares one is inlined only when its target's type is one its field takes (`to`);
a target of another type (stored before saves checked it, or left by a schema change that narrowed
`to`) stays the reference itself, as a missing target does. A reference anywhere else (rich-text
mark definitions, keys the schema does not declare) may lead to any type, as before.

Both walkers read one map, built once per registry, so they cannot disagree. Its JSON form::

    {"<type>": {"<field>": node, ...}, ...}     every type (document or object) with references

    node: {"to": ["author"]}                   a reference: the types it may lead to
          {"type": "seoMeta"}                  a named object: its fields are the map's "seoMeta"
          {"fields": {"<field>": node}}        an inline object
          {"each": node}                       an array of one object kind: every item is one
          {"of": {"<_type>": node}}            an array of several kinds: an item by its `_type`
                                               (a reference item, `_type` absent or "reference",
                                               under "reference": the `to` of all its kinds)

Only what leads to a reference is kept. Named object types are entries of their own (an object
type may contain itself through an array), so the map grows with the model, never with its depth.
How an array's items are told apart is how the GraphQL type generator shows them: an array of one
object kind shows every item as that kind, so a JSON field below it has the same node on both
read paths.
"""

from __future__ import annotations

import json
from typing import Any

from server.model.types import Field, Registry

Node = dict[str, Any]
Paths = dict[str, dict[str, Node]]


def reference_paths(registry: Registry) -> Paths:
    """The map of the registry's types (see the module docstring), built once per registry."""
    return registry.memoised(reference_paths, lambda: _build(registry))


def paths_json(registry: Registry) -> str:
    """`reference_paths` as compact JSON text, for the compiled statement."""
    return registry.memoised(paths_json, lambda: _dumps(reference_paths(registry)))


def field_json(registry: Registry, f: Field) -> str | None:
    """The node of the field `f` as JSON text, or None when nothing below it is a reference."""
    node = _field(f, frozenset(reference_paths(registry)))
    return None if node is None else _dumps(node)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _build(registry: Registry) -> Paths:
    # Whether a named object type holds a reference depends on the types it contains, which may
    # contain it in turn (through an array): grow the set of holding types until it is stable.
    holding: frozenset[str] = frozenset()
    while True:
        paths = {
            name: fields
            for name, schema_type in registry.items()
            if (fields := _fields(schema_type.fields, holding))
        }
        if paths.keys() == holding:
            return paths
        holding = frozenset(paths)


def _fields(fields: tuple[Field, ...], holding: frozenset[str]) -> dict[str, Node]:
    return {f.name: node for f in fields if (node := _field(f, holding)) is not None}


def _field(f: Field, holding: frozenset[str]) -> Node | None:
    if f.is_reference:
        return {"to": list(f.to)}
    if f.is_named_object:
        return {"type": f.type} if f.type in holding else None
    if f.is_inline_object:
        fields = _fields(f.fields, holding)
        return {"fields": fields} if fields else None
    if not f.is_array:
        return None
    if len(f.of) == 1 and f.of[0].is_object:
        each = _field(f.of[0], holding)
        return None if each is None else {"each": each}
    # Reference items all carry `_type: "reference"`: any of their kinds' targets will do.
    of: dict[str, Node] = {}
    targets = list(dict.fromkeys(t for item in f.of if item.is_reference for t in item.to))
    if targets:
        of["reference"] = {"to": targets}
    for item in f.of:
        if item.is_object and (node := _field(item, holding)) is not None:
            of.setdefault(item.name, node)
    return {"of": of} if of else None


# Walking data with the map: `server/content/references.py` here, `cms_inline_walk` in SQL.


def takes(node: Node | None, target_type: str) -> bool:
    """Whether a reference at `node` may be inlined as a document of `target_type`."""
    return node is None or "to" not in node or target_type in node["to"]


def fields_of(paths: Paths, node: Node | None) -> dict[str, Node] | None:
    """The nodes of an object's keys, for the object (not a reference) at `node`."""
    if node is None:
        return None
    if "type" in node:
        return paths.get(node["type"])
    fields: dict[str, Node] | None = node.get("fields")
    return fields


def item_of(node: Node | None, item: Any) -> Node | None:
    """The node of one item of the array at `node`."""
    if node is None or not isinstance(item, dict):
        return None
    if "each" in node:
        each: Node = node["each"]
        return each
    kind = item.get("_type", "reference")
    of: dict[str, Node] = node.get("of", {})
    return of.get(kind) if isinstance(kind, str) else None
