"""Values written into SQL text as literals: what an opening may carry.

A unit of work's opening travels with `BEGIN` over the simple query protocol, which takes no
parameters, so its values are inlined. Each helper accepts only values whose literal means the
same whatever `standard_conforming_strings` says, and raises `ValueError` for anything else.
`text_argument` writes a bind value in its type's input syntax, for the `EXECUTE` of a statement
prepared on the session (compiled reads, and writes kept prepared behind a transaction pooler).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson

_WORD = re.compile(r"[A-Za-z0-9_]+")
# The names the server gives the statements it prepares on a session: a prefix and a digest.
_PREPARED_NAME = re.compile(r"cms_(?:read|kept)_[0-9a-f]+")


def word_literal(value: str) -> str:
    """A plain word (letters, digits, `_`) as a string literal."""
    if not _WORD.fullmatch(value):
        raise ValueError(f"not a plain word: {value!r}")
    return f"'{value}'"


def uuid_literal(value: uuid.UUID | None) -> str:
    """A UUID (checked by parsing it) as a `uuid` literal; None as `NULL::uuid`."""
    return "NULL::uuid" if value is None else f"'{uuid.UUID(str(value))}'::uuid"


def boolean_literal(value: bool) -> str:
    return "true" if value else "false"


def integer_literal(value: int) -> str:
    """An integer (bools refused) as a literal."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"not an integer: {value!r}")
    return str(value)


def text_literal(value: str | None) -> str:
    """Any text as a string literal PostgreSQL reads back as that same text whatever
    `standard_conforming_strings` says (what `quote_nullable` writes): quotes doubled, and a text
    with a backslash written as an escape string with its backslashes doubled; None as `NULL`."""
    if value is None:
        return "NULL"
    quoted = value.replace("'", "''")
    if "\\" in value:
        return "E'" + quoted.replace("\\", "\\\\") + "'"
    return "'" + quoted + "'"


def text_argument(value: Any) -> str | None:
    """A bind value in its type's text input syntax (arrays as array literals)."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return "{" + ",".join(_array_element(item) for item in value) + "}"
    return _scalar(value)


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the same double
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        # As asyncpg sends them: the extremes of Python's range stand for PostgreSQL's infinities.
        utc = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
        return _INFINITIES.get(utc, value.isoformat())
    if isinstance(value, date):
        return _INFINITIES.get(value, value.isoformat())
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"no text form for a bind value of type {type(value).__name__}")


_INFINITIES: dict[date, str] = {
    date.max: "infinity",
    date.min: "-infinity",
    datetime.max: "infinity",
    datetime.min: "-infinity",
}


def _array_element(value: Any) -> str:
    if value is None:
        return "NULL"
    text = _scalar(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def json_text(value: Any) -> str:
    """JSON data as the pool's codec sends a json or jsonb value (`server/db/pool.py`)."""
    return orjson.dumps(value).decode()


def execute_text(name: str, arguments: list[str | None]) -> str:
    """`EXECUTE name(...)` of a statement the server prepared on the session, each argument (its
    type's input syntax, `text_argument`) a literal as PostgreSQL's `quote_nullable` writes it.

    Raises:
        ValueError: `name` is not one the server gives its statements, which goes in unquoted.
    """
    if not _PREPARED_NAME.fullmatch(name):
        raise ValueError(f"not the name of a statement the server prepared: {name[:80]!r}")
    if not arguments:
        return f"EXECUTE {name}"
    return f"EXECUTE {name}({', '.join(map(text_literal, arguments))})"
