"""A replaced GraphQL schema is garbage: nothing in the process keeps it, or its types, alive."""

from __future__ import annotations

import gc
import sys
import weakref
from typing import Any

import pytest

from server.graphql.schema import CMSSchema
from tests.conftest import GraphQLClient

REGISTER = "mutation($d: JSON!) { registerSchemaType(definition: $d) { name } }"


# A note type with a union of references and a union of inline objects; each change adds a field.
NOTE: dict[str, Any] = {
    "type": "document",
    "name": "note",
    "title": "Note",
    "fields": [
        {"name": "title", "type": "string"},
        {"name": "seeAlso", "type": "reference", "to": [{"type": "post"}, {"type": "author"}]},
        {
            "name": "blocks",
            "type": "array",
            "of": [
                {"type": "object", "name": "quote", "fields": [{"name": "q", "type": "text"}]},
                {"type": "object", "name": "aside", "fields": [{"name": "a", "type": "text"}]},
            ],
        },
    ],
}


def _note(extra: int) -> dict[str, Any]:
    added = [{"name": f"extra{i}", "type": "number"} for i in range(extra)]
    return {**NOTE, "fields": [*NOTE["fields"], *added]}


async def _serve_reads(gql: GraphQLClient, admin: str) -> None:
    """Requests on both paths, so each holds the schema once: a compiled read, then the resolvers."""
    endpoint = gql.app.state.graphql
    served = endpoint.compiled_served
    compiled = await gql.data(
        '{ allNote(limit: 1, where: {title: {equals: "x"}}) { id title seeAlso { __typename } } }'
    )
    assert compiled == {"allNote": []}
    assert endpoint.compiled_served == served + 1
    created = await gql.data(
        'mutation { createNote(data: {title: "x"}) { title blocks { __typename } } }'
    )
    assert created == {"createNote": {"title": "x", "blocks": None}}
    resolved = await gql.data("{ schemaTypes { name } }", key=admin)
    assert "note" in {t["name"] for t in resolved["schemaTypes"]}


def _live_schemas() -> int:
    return sum(isinstance(o, CMSSchema) for o in gc.get_objects())


def _references(built: Any) -> dict[str, weakref.ref[Any]]:
    generated = built.generated
    return {
        "schema": weakref.ref(built.schema),
        "graphql-core schema": weakref.ref(built.schema._schema),
        "generated types": weakref.ref(generated),
        "planner": weakref.ref(built.planner),
        "registry": weakref.ref(built.registry),
        "document class": weakref.ref(generated.documents["note"]),
        "where input": weakref.ref(generated.where_inputs["note"]),
        "page class": weakref.ref(generated.pages["note"]),
        "object class": weakref.ref(generated.shapes["object:NoteBlocksQuote"].cls),
    }


@pytest.mark.slow
async def test_a_replaced_schema_is_collected(cms_api: GraphQLClient) -> None:
    admin = await cms_api.key_for(cms_api.org, instance_admin=True)
    endpoint = cms_api.app.state.graphql
    await cms_api.data(REGISTER, {"d": _note(0)}, key=admin)
    await _serve_reads(cms_api, admin)
    modules = set(sys.modules)
    gc.collect()
    schemas = _live_schemas()

    replaced = _references(endpoint.current())
    for fields in range(1, 4):
        await cms_api.data(REGISTER, {"d": _note(fields)}, key=admin)
        await _serve_reads(cms_api, admin)
    current = endpoint.current()
    gc.collect()

    alive = [name for name, ref in replaced.items() if ref() is not None]
    assert alive == [], f"still alive after the schema changed: {alive}"
    assert set(sys.modules) == modules
    # Neither the schemas the changes were checked with nor those served in between remain.
    assert _live_schemas() <= schemas
    # The schema being served stays, of course.
    assert "extra2" in current.schema.as_str()
