"""Values written into SQL text as literals: what an opening may carry.

A unit of work's opening travels with `BEGIN` over the simple query protocol, which takes no
parameters, so its values are inlined. Each helper accepts only values whose literal means the
same whatever `standard_conforming_strings` says, and raises `ValueError` for anything else.
"""

from __future__ import annotations

import re
import uuid

_WORD = re.compile(r"[A-Za-z0-9_]+")


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
