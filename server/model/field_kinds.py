"""The scalar field types and what each is everywhere it matters: one table.

A scalar field's type (`string`, `text`, `slug`, `url`, `number`, `boolean`, `date`, `datetime`)
decides its GraphQL scalar (`server/graphql/typegen.py`), the `where` operators it takes and the SQL
type its values are compared as (`server/content/filters.py`), how the compiled read shows a stored
value (`server/query/kinds.py`, `server/query/sql.py`) and the rules a saved value must meet
(`server/content/validation.py`). Those modules read this table, so a new scalar type is one row
here plus what is new about it there.

Types share a *value kind*, the shape of the value itself: `text` (a JSON string), `number`,
`boolean`, `date` and `datetime` (JSON strings in ISO 8601). Filters and reads work on value kinds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ValueKind = Literal["text", "number", "boolean", "date", "datetime"]
# A string format a saved value must have, checked on publish (`validation.py`).
Format = Literal["date", "datetime", "url", "slug"]


@dataclass(frozen=True, slots=True)
class ValueKindInfo:
    """What a value kind is to filters and to GraphQL."""

    # The `where` operators a value of this kind takes.
    operators: frozenset[str]
    # The PostgreSQL type values are compared as.
    sql_type: str
    # The kind's name in error messages.
    label: str
    # The GraphQL scalar of a field of this kind (`number` is `Int` or `Float` by the field).
    graphql_scalar: str
    # Whether `equals`/`in` on an array of it can use jsonb containment (GIN-indexable); dates
    # cannot, because the same instant has many spellings.
    containment: bool


@dataclass(frozen=True, slots=True)
class ScalarType:
    """A scalar field type: its value kind and the format its strings must have."""

    kind: ValueKind
    format: Format | None = None

    @property
    def is_string(self) -> bool:
        """Whether its values are JSON strings ("" counts as empty)."""
        return self.kind in ("text", "date", "datetime")


RANGE_OPERATORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal"})
MATCH_OPERATORS = frozenset({"contains", "like", "starts_with", "ends_with"})
BASIC_OPERATORS = frozenset({"equals", "not_equals", "in", "not_in", "exists"})

VALUE_KINDS: dict[ValueKind, ValueKindInfo] = {
    "text": ValueKindInfo(
        BASIC_OPERATORS | MATCH_OPERATORS | RANGE_OPERATORS, "text", "string", "String", True
    ),
    "number": ValueKindInfo(BASIC_OPERATORS | RANGE_OPERATORS, "numeric", "number", "Float", True),
    "boolean": ValueKindInfo(BASIC_OPERATORS, "boolean", "boolean", "Boolean", True),
    "date": ValueKindInfo(BASIC_OPERATORS | RANGE_OPERATORS, "date", "date", "Date", False),
    "datetime": ValueKindInfo(
        BASIC_OPERATORS | RANGE_OPERATORS, "timestamptz", "datetime", "DateTime", False
    ),
}

SCALAR_TYPES: dict[str, ScalarType] = {
    "string": ScalarType("text"),
    "text": ScalarType("text"),
    "slug": ScalarType("text", "slug"),
    "url": ScalarType("text", "url"),
    "number": ScalarType("number"),
    "boolean": ScalarType("boolean"),
    "date": ScalarType("date", "date"),
    "datetime": ScalarType("datetime", "datetime"),
}
