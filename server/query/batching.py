"""Reads of documents by id that one caller sends at once, run as one statement.

Setting up a compiled read costs PostgreSQL more than running it: for a read of one post with its
author and categories, about 50 µs of its 70 go to the executor's start-up of a large SELECT list,
the privilege check of each function in it and the policies' InitPlans, and only about 20 to the
rows. When a caller's requests for documents by id arrive together (a page's components, a static
site's build, a frontend under load), each reaches the database in the same turn of the event
loop; `ReadBatches` runs those of one read (one text) as one read of its own, the read joined
laterally to the rows of its arguments, its texts in one array, row after row:

    SELECT ARRAY(SELECT cms_t.text
      FROM unnest((SELECT $1::uuid[])) WITH ORDINALITY AS cms_b(p1, cms_i)
      CROSS JOIN LATERAL (<the read, with cms_b.p1 for $1>) AS cms_batched(results)
      CROSS JOIN LATERAL unnest(cms_batched.results) WITH ORDINALITY AS cms_t(text, n)
      ORDER BY cms_b.cms_i, cms_t.n)

so the start-up is paid once for the batch: 49 µs a read for two, 36 for four, 29 for eight
(PostgreSQL's CPU as the request role, `bench/`'s Q4), and the worker makes one call where it made
several. (The arrays go through a scalar subquery so that PostgreSQL cannot count their elements
while planning: it then estimates every batch alike and keeps one generic plan, where a plan for
each length would be planned again at every execution.)

The batch is a compiled read like any other (`round_trip.fetch`): the caller's facts checked and
its organization scoped in the same statement, on a session scoped to it or through a transaction
pooler, Row-Level Security applying to every row as the caller; so one transaction and one
snapshot for the reads in it. What may join a batch: reads of the same text, by the same known
caller with the same facts and settings (`round_trip.scope_name`), with the same statement
timeout, whose roots are each one document by id (`Statement.id_arguments`, no list) and whose
arguments are all scalars. A list is not batched: a page is not dominated by its start-up, and
reads that PostgreSQL spends long on run better side by side on the server's cores than one after
the other in one backend.

A batch forms around its first read, which yields to the event loop once, so that the reads
already received run up to the same point and join it. When no read of its kind (the same text,
caller and settings) is running in this process, it then departs; when one is, it waits for that
one to land, at most `wait` seconds (`READ_BATCH_WAIT_MS`, 2 ms), gathering the reads that arrive
meanwhile, up to `most` (a full batch departs at once). So under load one statement of a kind is
in PostgreSQL at a time per process and the next one carries everything that came while it ran,
as a database's group commit does; an idle server waits for nothing. (A read that waited still
runs in a statement that began after it arrived, so it sees every write answered before it was
sent.) Departing at once, batches stay small under load, the smaller the more workers share the
requests, and each pays the start-up again (`bench/`'s Q4, 10,000 posts, six alternating turns
of 3 s against the floor: 1.11 of the floor with one worker and 1.19 with two departing at once,
1.18 and 1.32 waiting).

Whatever keeps a batch from answering every read (changed facts, an error, a timeout) makes each
read run alone, as it would have without the batch, which then answers as it always did.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from server.query import round_trip
from server.query.round_trip import PREPARED_PER_CONNECTION, scope_name
from server.query.run import Statement, read_name

if TYPE_CHECKING:
    from server.db.pool import Database

# A placeholder outside the statement's string literals (the compiler writes no other quoting).
_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\$(\d+)")


class ReadBatches:
    """The batches of one database (the primary or a replica) forming in this event loop."""

    def __init__(self, database: Database, most: int, wait: float = 0.0) -> None:
        self.database = database
        # The most reads one statement runs; 0 or 1: none is batched.
        self.most = most
        # The longest a batch waits for the running read of its kind to land (seconds); 0: none.
        self.wait = wait
        self._forming: dict[_Key, _Batch] = {}
        # The reads (alone or batched) of each kind now running, and so in PostgreSQL.
        self._running: dict[_Key, int] = {}
        # Each read's parameter types as `unnest` takes them, or None when not all are scalars.
        self._types: OrderedDict[str, tuple[str, ...] | None] = OrderedDict()
        # Reads that ran in a batch of two or more, and the batches that ran them (for tests).
        self.batched = 0
        self.batches = 0

    def may_batch(self, statement: Statement) -> bool:
        """Whether `statement` may join a batch: a read of documents by id, no root a list."""
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
        *,
        cancel_after: float | None,
        lock_timeout_ms: int,
    ) -> list[str | None] | None:
        """The read's texts, run alone or in a batch; None when a batch could not answer it: run it
        alone.

        The arguments are `round_trip.fetch`'s for a known caller: `known` its facts
        (`server.access.opening.KnownCallers.fresh`), `opening`
        `server.access.opening.opening_arguments(...)`.
        """
        hierarchy, _, role = opening[5:]
        scope = scope_name(known, hierarchy, role, lock_timeout_ms)
        key = (scope, statement.name, cancel_after)
        forming = self._forming.get(key)
        if forming is not None:
            answer: asyncio.Future[list[str | None] | None] = (
                asyncio.get_running_loop().create_future()
            )
            forming.members.append(_Member(statement.args, answer))
            if len(forming.members) >= self.most:
                del self._forming[key]
                forming.depart()
            return await answer
        batch = self._forming[key] = _Batch(_Member(statement.args, None))
        members = batch.members
        answers: list[list[str | None]] | None = None
        try:
            # The reads already received run up to here and join.
            await asyncio.sleep(0)
            if self.wait and self._running.get(key) and self._forming.get(key) is batch:
                await batch.departure(self.wait)
            if self._forming.get(key) is batch:
                del self._forming[key]
            self._running[key] = self._running.get(key, 0) + 1
            try:
                if len(members) == 1:
                    return await self._fetch(
                        known, opening, statement, cancel_after, lock_timeout_ms
                    )
                answers = await self._run(
                    known, opening, statement, members, cancel_after, lock_timeout_ms
                )
            finally:
                self._landed(key)
        finally:
            if self._forming.get(key) is batch:
                del self._forming[key]
            # Each joined read gets its texts, or None to run alone, whatever happened here.
            for n, member in enumerate(members[1:], start=1):
                if member.answer is not None and not member.answer.done():
                    member.answer.set_result(answers[n] if answers is not None else None)
        return answers[0] if answers is not None else None

    def _landed(self, key: _Key) -> None:
        """A read of kind `key` answered: the batch of its kind waiting for it departs."""
        running = self._running[key] - 1
        if running:
            self._running[key] = running
        else:
            del self._running[key]
        forming = self._forming.get(key)
        if forming is not None:
            forming.depart()

    async def _run(
        self,
        known: str,
        opening: tuple[Any, ...],
        statement: Statement,
        members: list[_Member],
        cancel_after: float | None,
        lock_timeout_ms: int,
    ) -> list[list[str | None]] | None:
        try:
            types = await self._parameter_types(statement)
            if types is None:
                return None
            batch = batch_statement(statement, types, [member.args for member in members])
            texts = await self._fetch(known, opening, batch, cancel_after, lock_timeout_ms)
        except Exception:
            # Each read alone answers what went wrong with it, as it would have without the batch.
            return None
        count = len(texts) // len(members)
        if count * len(members) != len(texts):
            return None
        self.batches += 1
        self.batched += len(members)
        return [texts[n * count : (n + 1) * count] for n in range(len(members))]

    async def _fetch(
        self,
        known: str,
        opening: tuple[Any, ...],
        statement: Statement,
        cancel_after: float | None,
        lock_timeout_ms: int,
    ) -> list[str | None]:
        _, texts = await round_trip.fetch(
            self.database,
            opening,
            statement,
            cancel_after=cancel_after,
            lock_timeout_ms=lock_timeout_ms,
            known=known,
        )
        return texts

    async def _parameter_types(self, statement: Statement) -> tuple[str, ...] | None:
        name = statement.name
        if name in self._types:
            self._types.move_to_end(name)
            return self._types[name]
        # Described once per read and process: the types do not change while the schema does not.
        async with self.database.session() as conn:
            parameters = (await conn.prepare(statement.sql)).get_parameters()
        types: tuple[str, ...] | None = tuple(
            f'"{p.schema}"."{p.name}"' for p in parameters if p.kind == "scalar"
        )
        if not parameters or len(types or ()) != len(parameters):
            types = None
        self._types[name] = types
        if len(self._types) > PREPARED_PER_CONNECTION:
            self._types.popitem(last=False)
        return types


_Key = tuple[str, str, float | None]


class _Batch:
    """The reads of one kind that will run as one statement, the first read's among them."""

    __slots__ = ("_departing", "members")

    def __init__(self, first: _Member) -> None:
        self.members = [first]
        # Set while the first read waits for the running read of its kind to land.
        self._departing: asyncio.Future[None] | None = None

    async def departure(self, wait: float) -> None:
        """Until `depart()` is called (the running read landed, or the batch is full), at most
        `wait` seconds."""
        loop = asyncio.get_running_loop()
        departing = self._departing = loop.create_future()
        timer = loop.call_later(wait, self.depart)
        try:
            await departing
        finally:
            timer.cancel()
            self._departing = None

    def depart(self) -> None:
        if self._departing is not None and not self._departing.done():
            self._departing.set_result(None)


class _Member:
    __slots__ = ("answer", "args")

    def __init__(self, args: list[Any], answer: asyncio.Future[Any] | None) -> None:
        self.args = args
        # Set by the batch's first read: the texts, or None to run alone. None for the first.
        self.answer = answer


def batch_statement(
    statement: Statement, types: tuple[str, ...], rows: list[list[Any]]
) -> Statement:
    """One statement for `statement` with each of `rows` as its arguments: a read like any other
    (one array per parameter its arguments), whose one column is the texts of every row's read, in
    the rows' order."""
    sql, name = _batched(statement.sql, types)
    columns = [list(values) for values in zip(*rows, strict=True)]
    return Statement(sql=sql, args=columns, keys=[], name=name)


@functools.lru_cache(maxsize=PREPARED_PER_CONNECTION)
def _batched(read_sql: str, types: tuple[str, ...]) -> tuple[str, str]:
    sql = batched_sql(read_sql, types)
    return sql, read_name(sql)


def batched_sql(read_sql: str, types: tuple[str, ...]) -> str:
    """`read_sql` for every row of arguments, its texts one after the other in one array."""
    count = len(types)
    arrays = ", ".join(f"(SELECT ${n}::{t}[])" for n, t in enumerate(types, start=1))
    columns = ", ".join(f"p{n}" for n in range(1, count + 1))
    read = _PLACEHOLDER.sub(lambda m: f"cms_b.p{m[1]}" if m[1] else m[0], read_sql)
    return (
        "SELECT ARRAY(SELECT cms_t.text"
        f" FROM unnest({arrays}) WITH ORDINALITY AS cms_b({columns}, cms_i)"
        f" CROSS JOIN LATERAL ({read}) AS cms_batched(results)"
        " CROSS JOIN LATERAL unnest(cms_batched.results) WITH ORDINALITY AS cms_t(text, n)"
        " ORDER BY cms_b.cms_i, cms_t.n)"
    )
