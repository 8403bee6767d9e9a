"""Statements kept prepared on the server sessions behind a transaction pooler (migration 0022).

Through PgBouncer in transaction mode asyncpg has no statement cache, so PostgreSQL parses and
plans every statement on every call: for a document write's statement, planning costs more than
running it. `Tx.fetchrow_kept` sends such a statement as a call of `cms_run_kept` instead, which
runs it prepared on the server session the transaction reached (preparing it there the first
time): the statement's name (a digest of its text), its text, and the `EXECUTE` with each bind
value written as a literal of its type's input syntax, as compiled reads send theirs. The row
comes back with the column types the statement's description gave, so the caller reads the same
record as from the statement itself.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from server.db.literals import execute_text, json_text, text_argument

if TYPE_CHECKING:
    from asyncpg.prepared_stmt import PreparedStatement
    from asyncpg.types import Type

# Statements kept per server session; past it the oldest are deallocated (`cms_run_kept`).
KEPT_PER_SESSION = 64
# Statements whose shape a process remembers (the writes' texts are a small, fixed set).
SHAPES_PER_PROCESS = 256
_JSON_TYPES = frozenset({"json", "jsonb"})


@dataclass(frozen=True)
class KeptStatement:
    """How to run one statement kept prepared: its name, and `cms_run_kept`'s call for it."""

    name: str
    # The call, with the row's column definitions from the statement's description.
    call: str
    # A known caller's call that opens the request and runs the statement in one statement
    # (`cms_write_known_run`, migration 0023), with the same column definitions.
    call_at_once: str
    # Per parameter: whether it is json or jsonb (written as the pool's codec writes it, `json_text`).
    json_parameters: tuple[bool, ...]

    def run(self, args: tuple[Any, ...]) -> str | None:
        """`EXECUTE name(literals)` for these arguments, or None when one has no text form here
        (bytes, say): the statement is then sent as it is."""
        if len(args) != len(self.json_parameters):
            return None
        try:
            texts = [
                (None if value is None else json_text(value)) if is_json else text_argument(value)
                for value, is_json in zip(args, self.json_parameters, strict=True)
            ]
        except TypeError:
            return None
        return execute_text(self.name, texts)


class KeptStatements:
    """The shapes of the statements a process has kept, by text: found once, from a description."""

    def __init__(self) -> None:
        self._found: OrderedDict[str, KeptStatement] = OrderedDict()

    def get(self, sql: str) -> KeptStatement | None:
        found = self._found.get(sql)
        if found is not None:
            self._found.move_to_end(sql)
        return found

    def learn(self, sql: str, described: PreparedStatement) -> KeptStatement:
        """The statement's shape from its description (its parameter and column types)."""
        columns = ", ".join(
            f"{_identifier(attribute.name)} {_type(attribute.type)}"
            for attribute in described.get_attributes()
        )
        kept = KeptStatement(
            name=kept_name(sql),
            call=f"SELECT * FROM cms_run_kept($1, $2, $3, $4) AS t({columns})",
            call_at_once=(
                "SELECT * FROM cms_write_known_run($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
                f" $12, $13, $14) AS t({columns})"
            ),
            json_parameters=tuple(p.name in _JSON_TYPES for p in described.get_parameters()),
        )
        self._found[sql] = kept
        if len(self._found) > SHAPES_PER_PROCESS:
            self._found.popitem(last=False)
        return kept


def kept_name(sql: str) -> str:
    """The statement's name on every session: a digest of its text."""
    return "cms_kept_" + hashlib.blake2b(sql.encode(), digest_size=12).hexdigest()


def _type(found: Type) -> str:
    """A column's type as SQL, from asyncpg's description (which names an array `element[]`)."""
    name, dimensions = found.name, ""
    while name.endswith("[]"):
        name, dimensions = name[:-2], dimensions + "[]"
    return f"{_identifier(found.schema)}.{_identifier(name)}{dimensions}"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
