"""Schema types in `cms_schema_types`: global to the instance, so no org and no Row-Level Security."""

from __future__ import annotations

from typing import Any

import asyncpg

from server.db.pool import Tx
from server.model.json_form import parse_schema_type
from server.model.types import SchemaType

_COLUMNS = "name, title, type::text AS kind, description, fields, options"


def _from_row(row: asyncpg.Record) -> SchemaType:
    definition: dict[str, Any] = {
        **row["options"],
        "type": row["kind"],
        "name": row["name"],
        "title": row["title"],
        "fields": row["fields"],
    }
    if row["description"] is not None:
        definition["description"] = row["description"]
    return parse_schema_type(definition)


class SchemaStore:
    async def register_schema_type(self, tx: Tx, *, schema_type: SchemaType) -> bool:
        """Insert or replace a type by name. Returns True when the stored definition changed."""
        definition = schema_type.to_json()
        fields = definition.pop("fields")
        for key in ("type", "name", "title", "description"):
            definition.pop(key, None)
        changed = await tx.fetchval(
            "INSERT INTO cms_schema_types (name, title, type, description, fields, options)"
            " VALUES ($1, $2, $3::schema_type, $4, $5, $6)"
            " ON CONFLICT (name) DO UPDATE SET title = EXCLUDED.title, type = EXCLUDED.type,"
            " description = EXCLUDED.description, fields = EXCLUDED.fields,"
            " options = EXCLUDED.options, updated_at = now()"
            " WHERE (cms_schema_types.title, cms_schema_types.type, cms_schema_types.description,"
            " cms_schema_types.fields, cms_schema_types.options) IS DISTINCT FROM"
            " (EXCLUDED.title, EXCLUDED.type, EXCLUDED.description, EXCLUDED.fields,"
            " EXCLUDED.options)"
            " RETURNING true",
            schema_type.name,
            schema_type.title,
            schema_type.kind,
            schema_type.description,
            fields,
            definition,
        )
        return bool(changed)

    async def get_schema_type(self, tx: Tx, *, name: str) -> SchemaType | None:
        row = await tx.fetchrow(f"SELECT {_COLUMNS} FROM cms_schema_types WHERE name = $1", name)
        return _from_row(row) if row is not None else None

    async def list_schema_types(self, tx: Tx) -> list[SchemaType]:
        rows = await tx.fetch(f"SELECT {_COLUMNS} FROM cms_schema_types ORDER BY name")
        return [_from_row(row) for row in rows]

    async def delete_schema_type(self, tx: Tx, *, name: str) -> bool:
        """Forget a type. Its documents stay; they come back if the type is registered again."""
        return (
            await tx.fetchval("DELETE FROM cms_schema_types WHERE name = $1 RETURNING true", name)
            is not None
        )
