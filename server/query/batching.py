"""Reads of documents by id that one caller sends at once, run as one statement.

Setting up a compiled read costs PostgreSQL more than running it: for a read of one post with its
author and categories, about 50 µs of its 70 go to the executor's start-up of a large SELECT list,
the privilege check of each function in it and the policies' InitPlans, and only about 20 to the
rows. When a caller's requests for documents by id arrive together (a page's components, a static
site's build, a frontend under load), each reaches the database in the same turn of the event
loop; `ReadBatches` runs those of one read (one text) as one statement, the read joined laterally
to the rows of its arguments:

    SELECT cms_b.cms_i, cms_batched.results
    FROM unnest((SELECT $1::uuid[])) WITH ORDINALITY AS cms_b(p1, cms_i)
    CROSS JOIN LATERAL (<the read, with cms_b.p1 for $1>) AS cms_batched(results)
    WHERE <the gate of a session scoped to the caller>

so the start-up is paid once for the batch: 49 µs a read for two, 36 for four, 29 for eight
(PostgreSQL's CPU as the request role, `bench/`'s Q4), and the worker makes one call where it made
several. (The arrays go through a scalar subquery so that PostgreSQL cannot count their elements
while planning: it then estimates every batch alike and keeps one generic plan, where a plan for
each length would be planned again at every execution.)

What may join a batch: reads of the same text, by the same caller with the same facts (one
`app.scope`, `server/query/round_trip.py`), with the same statement timeout, whose roots are each
one document by id (`Statement.id_arguments`, no list) and whose arguments are all scalars. A list
is not batched: a page is not dominated by its start-up, and reads that PostgreSQL spends long on
run better side by side on the server's cores than one after the other in one backend.

A batch is formed without waiting for anything: its first read yields to the event loop once, so
that the reads already received run up to the same point and join it, and then runs it; alone, it
runs as it would have. The batch runs in one statement, so one transaction and one snapshot, on a
session of the read pool scoped to the caller, behind the same gate as the caller's single reads
(Row-Level Security applies to every row of it, as the caller). Whatever keeps a batch from
answering every read (a session scoped to another caller, changed facts, an error, a timeout) makes
each read run alone, as it would have without the batch, which then answers as it always did.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from server.access.opening import kept_facts
from server.db.pool import READ_STATEMENT_MAX
from server.query.round_trip import PREPARED_PER_CONNECTION, gate, scope_name

if TYPE_CHECKING:
    from server.db.pool import Database, PooledConnection
    from server.query.run import Statement

# A placeholder outside the statement's string literals (the compiler writes no other quoting).
_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\$(\d+)")


class ReadBatches:
    """The batches of one database (the primary or a replica) forming in this event loop."""

    def __init__(self, database: Database, most: int) -> None:
        self.database = database
        # The most reads one statement runs; 0 or 1: none is batched.
        self.most = most
        self._forming: dict[tuple[str, str, float | None], list[_Member]] = {}
        # Each read's parameter types as `unnest` takes them, or None when not all are scalars.
        self._types: OrderedDict[str, tuple[str, ...] | None] = OrderedDict()
        # Reads that ran in a batch of two or more, and the batches that ran them (for tests).
        self.batched = 0
        self.batches = 0

    def may_batch(self, statement: Statement) -> bool:
        """Whether `statement` may join a batch: its roots each one document by id."""
        return (
            self.most > 1
            and bool(statement.id_arguments)
            and not statement.list_types
            and not statement.reads_back_references
        )

    async def read(
        self,
        known: str,
        opening: tuple[Any, ...],
        statement: Statement,
        cancel_after: float | None,
    ) -> list[str | None] | None:
        """The read's texts from a batch, or None: run it alone.

        `opening` is `server.access.opening.opening_arguments(...)` with the lock timeout after it
        (as `round_trip.fetch` hands it on); `known` the caller's facts
        (`server.access.opening.KnownCallers.fresh`).
        """
        hierarchy, _, role, lock_timeout_ms = opening[5:]
        scope = scope_name(known, hierarchy, role, lock_timeout_ms)
        key = (scope, statement.name, cancel_after)
        forming = self._forming.get(key)
        if forming is not None:
            answer: asyncio.Future[list[str | None] | None] = (
                asyncio.get_running_loop().create_future()
            )
            forming.append(_Member(statement.args, answer))
            if len(forming) >= self.most:
                del self._forming[key]
            return await answer
        first = _Member(statement.args, None)
        members = self._forming[key] = [first]
        answers: list[list[str | None]] | None = None
        try:
            # The reads already received run up to here and join.
            await asyncio.sleep(0)
            if self._forming.get(key) is members:
                del self._forming[key]
            if len(members) > 1:
                answers = await self._run(scope, known, role, statement, members, cancel_after)
        finally:
            if self._forming.get(key) is members:
                del self._forming[key]
            # Each joined read gets its texts, or None to run alone, whatever happened here.
            for n, member in enumerate(members[1:], start=1):
                if member.answer is not None and not member.answer.done():
                    member.answer.set_result(answers[n] if answers is not None else None)
        return answers[0] if answers is not None else None

    async def _run(
        self,
        scope: str,
        known: str,
        role: str | None,
        statement: Statement,
        members: list[_Member],
        cancel_after: float | None,
    ) -> list[list[str | None]] | None:
        try:
            async with await self.database.read_session(role) as conn:
                if conn.scope.name != scope:
                    return None  # the single read scopes the session (`_read_scoped`)
                types = await self._parameter_types(conn, statement)
                if types is None:
                    return None
                sql = batched_sql(statement.sql, types)
                if len(sql) > READ_STATEMENT_MAX:
                    return None  # asyncpg would not keep it prepared
                columns = [list(values) for values in zip(*(m.args for m in members), strict=True)]
                _, _, _, epoch, expires = kept_facts(known)
                self.database.ran(sql, columns)
                rows = await conn.fetch(
                    sql, *columns, scope, role, epoch, expires, timeout=cancel_after
                )
        except Exception:
            # Each read alone answers what went wrong with it, as it would have without the batch.
            return None
        if len(rows) != len(members):
            return None  # the gate: the facts changed, or the session's scope
        self.batches += 1
        self.batched += len(members)
        ordered = sorted(rows, key=lambda row: row[0])
        return [list(row[1]) for row in ordered]

    async def _parameter_types(
        self, conn: PooledConnection, statement: Statement
    ) -> tuple[str, ...] | None:
        name = statement.name
        if name in self._types:
            self._types.move_to_end(name)
            return self._types[name]
        # Described once per read and process: the types do not change while the schema does not.
        described = await conn.prepare(statement.sql)
        parameters = described.get_parameters()
        types: tuple[str, ...] | None = tuple(
            f'"{p.schema}"."{p.name}"' for p in parameters if p.kind == "scalar"
        )
        if not parameters or len(types or ()) != len(parameters):
            types = None
        self._types[name] = types
        if len(self._types) > PREPARED_PER_CONNECTION:
            self._types.popitem(last=False)
        return types


class _Member:
    __slots__ = ("answer", "args")

    def __init__(self, args: list[Any], answer: asyncio.Future[Any] | None) -> None:
        self.args = args
        # Set by the batch's first read: the texts, or None to run alone. None for the first.
        self.answer = answer


@functools.lru_cache(maxsize=PREPARED_PER_CONNECTION)
def batched_sql(read_sql: str, types: tuple[str, ...]) -> str:
    """`read_sql` for every row of arguments, behind the gate of a session scoped to its caller
    (`round_trip.scoped_sql`); the rows' arguments as one array per parameter, then the gate's."""
    count = len(types)
    arrays = ", ".join(f"(SELECT ${n}::{t}[])" for n, t in enumerate(types, start=1))
    columns = ", ".join(f"p{n}" for n in range(1, count + 1))
    read = _PLACEHOLDER.sub(lambda m: f"cms_b.p{m[1]}" if m[1] else m[0], read_sql)
    return (
        "SELECT cms_b.cms_i, cms_batched.results"
        f" FROM unnest({arrays}) WITH ORDINALITY AS cms_b({columns}, cms_i)"
        f" CROSS JOIN LATERAL ({read}) AS cms_batched(results)"
        f" WHERE {gate(count)}"
    )
