"""A compiled read in one round trip: `cms_read` opens the request and runs the read in one statement.

The transaction path costs three round trips (`BEGIN` with the opening, the read, `COMMIT`).
`cms_read` (migration 0006) does the opening and then executes the read, prepared on the connection's
session, inside its own statement, whose implicit transaction is the request's unit of work; see the
migration for how the role switch and Row-Level Security apply to the read.

What travels: the opening's arguments as bind values, the read's name (a digest of its text), its
text only when this connection has not prepared it yet, and its arguments as text, which
PostgreSQL turns into literals of the placeholders' types. `text_argument` writes each value in
the input syntax of the type the binder gave it (`server/content/filters.py`).

A known caller's reads run on the read pool (`Database.read_session`, migration 0025), whose
sessions run as the request role, read-only, and serve nothing else. There the statement is
`cms_read_known_scoped`, which leaves the session's organization settings made for the caller and
names them in `app.scope`; the caller's next read on that connection is the read's own statement
behind a gate (`scoped_sql`), which reads nothing unless the session is scoped to that caller and
the caller's facts still hold, and then the function scopes it again (`_read_scoped`).

Through a transaction pooler a connection's calls may reach different server sessions, and the
client cannot prepare anything on the one its next call reaches. There the server sessions keep
the reads prepared themselves: `cms_read_pooled` (migration 0014) is given the read's text and
prepares it only when the session it reached lacks it, at most `PREPARED_PER_CONNECTION` per
session. For a known caller, the usual case, each session also keeps the call itself prepared
(`POOLED_CALL_NAME`: `cms_read_known_run`, migrations 0018 and 0021), which any client may bind
by name: the read is then Bind, Execute and Sync of that call with the caller's facts and the
read's `EXECUTE` as on a direct session (`execute_text`), with no read text, nothing for
PostgreSQL to parse or plan, and no exception block. When the session reached lacks the call or
the read, PostgreSQL answers "no such prepared statement" and the read goes again, with its text,
to `cms_read_pooled_known`, which prepares both there; so does a read this process has not sent
yet, which the sessions likely lack too.
"""

from __future__ import annotations

import functools
import hashlib
import re
from typing import TYPE_CHECKING, Any

import asyncpg

from server.access.auth import refusals
from server.access.opening import FactsChanged, facts_changed, kept_facts
from server.db.literals import execute_text as prepared_execute_text
from server.db.literals import text_argument
from server.db.pool import READ_STATEMENT_MAX, connection_lost, translate_errors

if TYPE_CHECKING:
    from asyncpg.prepared_stmt import PreparedStatement

    from server.db.pool import Database, PooledConnection
    from server.query.run import Statement

READ_SQL = (
    "SELECT principal, results"
    " FROM cms_read($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::text[])"
)
# For a caller whose facts a full opening found recently: the read without the credential check
# and the tree walk, while the database finds those facts still hold (migration 0015).
READ_KNOWN_SQL = "SELECT cms_read_known($1, $2, $3, $4, $5, $6, $7, $8::text[])"
# The same for a read the connection has prepared: the facts it checks sent apart, and the
# `EXECUTE` of the read written here (migration 0020), so PostgreSQL parses no JSON and runs no
# query to write it.
READ_KNOWN_RUN_SQL = "SELECT cms_read_known_run($1, $2, $3, $4, $5, $6, $7, $8, $9)"
# The same on a connection of the read pool, leaving its session scoped to the caller (migration
# 0025): the next read there by the same caller runs its statement directly (`scoped_sql`).
READ_KNOWN_SCOPED_SQL = "SELECT cms_read_known_scoped($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
# The same through a transaction pooler (`cms_read_pooled`'s way with the read, migration 0014).
READ_POOLED_KNOWN_SQL = (
    "SELECT cms_read_pooled_known($1, $2, $3, $4, $5, $6, $7, $8::text[], $9) AS results"
)
# The same without the text, as server sessions behind the pooler keep it prepared (migration
# 0018): bound by name, so only Bind, Execute and Sync travel.
POOLED_CALL_NAME = "cms_pooled_call_v2"
POOLED_CALL_SQL = READ_KNOWN_RUN_SQL
# Reads kept prepared per connection; past it, the session forgets them all and starts again.
# Through a transaction pooler, the cap of each server session (the oldest reads go first).
PREPARED_PER_CONNECTION = 256

# Through a transaction pooler: the same call, always with the text, and the server session's cap.
READ_POOLED_SQL = (
    "SELECT principal, results"
    " FROM cms_read_pooled($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::text[], $13)"
)


class ReadNotPrepared(Exception):  # noqa: N818 (a signal: the resolver path answers this one)
    """The session lost a read it had prepared (`DEALLOCATE`); the next call prepares it again."""


# `cms_read_declined` (migration 0024).
DECLINED = "CM009"


class ReadDeclined(Exception):  # noqa: N818 (a signal: the resolver path answers this one)
    """The read met what only the resolvers answer right (`cms_read_declined`, migration 0024)."""


async def fetch(
    database: Database,
    opening: tuple[Any, ...],
    statement: Statement,
    *,
    cancel_after: float | None,
    lock_timeout_ms: int = 0,
    known: str | None = None,
) -> tuple[str, list[str | None]]:
    """Open the request and run `statement` in one statement: the caller's facts and the texts.

    A pooled connection that died since its last use fails at this first statement, before
    anything happened: the call runs once more on a fresh connection.

    Args:
        database: the pool.
        opening: `server.access.opening.opening_arguments(...)`.
        statement: a bound statement of `server.query.run`.
        cancel_after: seconds before the server cancels the statement (the request statement timeout,
            which a setting made inside a statement cannot impose on it); None for no limit.
        lock_timeout_ms: how long the read may wait for a lock (0: as long as it takes).
        known: the caller's facts as a full opening found them recently
            (`server.access.opening.KnownCallers.fresh`): the read then skips the credential check and
            the organization tree, which the database allows only while they still hold.

    Raises:
        CMSError: a refused credential, or a database error in the domain's terms
            (`UnavailableError` when the connection was lost twice).
        ReadNotPrepared: the connection's session had lost the prepared read.
        FactsChanged: `known` no longer holds: open in full (without it).
        TimeoutError: the statement ran longer than `cancel_after` and was cancelled.
    """
    call = None
    if database.transaction_pooled and known is not None:
        with translate_errors():
            call = await database.named_statement(POOLED_CALL_NAME, POOLED_CALL_SQL)
    for attempt in (1, 2):
        if known is None or not database.scoped_reads:
            session = database.session()
        else:
            # A known caller's read: on the read pool, whose sessions may be scoped to it.
            session = await database.read_session(opening[7])
        async with session as conn:
            try:
                return await _fetch_on(
                    conn,
                    database,
                    (*opening, lock_timeout_ms),
                    statement,
                    cancel_after,
                    known,
                    call,
                )
            except Exception as exc:
                if attempt == 2 or not connection_lost(conn, exc):
                    raise
                await database.replace_dead_connections(exc)
    raise AssertionError("unreachable")


async def _fetch_on(
    conn: PooledConnection,
    database: Database,
    opening: tuple[Any, ...],
    statement: Statement,
    cancel_after: float | None,
    known: str | None,
    call: PreparedStatement | None,
) -> tuple[str, list[str | None]]:
    name = statement.name
    if database.transaction_pooled:
        arguments = text_arguments(statement)
        # Each call may reach another server session, which may not have the read yet.
        database.ran(statement.sql, statement.args)
        try:
            with refusals(), translate_errors(conn):
                if known is not None:
                    assert call is not None
                    results = await _read_pooled_known(
                        conn, database, call, known, opening, statement, arguments, cancel_after
                    )
                    return known, results
                row = await conn.fetchrow_described(
                    READ_POOLED_SQL,
                    *opening,
                    name,
                    statement.sql,
                    arguments,
                    PREPARED_PER_CONNECTION,
                    timeout=cancel_after,
                )
        except asyncpg.PostgresError as exc:
            _raise_signal(exc)
            raise
        assert row is not None
        return row["principal"], list(row["results"])
    prepared = conn.prepared_reads
    text: str | None = statement.sql
    if name in prepared:
        text = None
    elif len(prepared) >= PREPARED_PER_CONNECTION:
        # Only the reads: asyncpg keeps its own statements prepared on the session too.
        await conn.execute("; ".join(f"DEALLOCATE {name}" for name in prepared))
        prepared.clear()
    database.ran(statement.sql, statement.args)
    scoped = known is not None and text is None and database.scoped_reads
    # The gated statement binds the values themselves; the functions take them as text.
    arguments = [] if scoped else text_arguments(statement)
    try:
        with refusals(), translate_errors(conn):
            if scoped:
                assert known is not None
                results = await _read_scoped(conn, known, opening, statement, cancel_after)
                principal = known
            elif known is not None and text is None:
                # Without a read pool: the statement's own settings on a shared session.
                results = await conn.fetchval(
                    READ_KNOWN_RUN_SQL,
                    *_run_arguments(known, opening, name, arguments),
                    timeout=cancel_after,
                )
                principal = known
            elif known is not None:
                results = await conn.fetchval(
                    READ_KNOWN_SQL,
                    *_known_arguments(known, opening, name, text, arguments),
                    timeout=cancel_after,
                )
                principal = known
            else:
                row = await conn.fetchrow(
                    READ_SQL, *opening, name, text, arguments, timeout=cancel_after
                )
                assert row is not None
                principal, results = row["principal"], row["results"]
    except asyncpg.InvalidSQLStatementNameError:
        prepared.discard(name)
        raise ReadNotPrepared(name) from None
    except asyncpg.PostgresError as exc:
        _raise_signal(exc)
        raise
    prepared.add(name)
    return principal, list(results)


async def _read_scoped(
    conn: PooledConnection,
    known: str,
    opening: tuple[Any, ...],
    statement: Statement,
    cancel_after: float | None,
) -> list[str | None]:
    """A known caller's prepared read on a connection of the read pool: the read's own statement
    when the session is scoped to the caller, else `cms_read_known_scoped`, which scopes it.

    The gate of `scoped_sql` decides, not `conn.scope`: a session scoped otherwise, or facts
    that changed, make the statement read nothing, and the function then checks the facts
    (`FactsChanged` when they changed) and scopes the session again.
    """
    hierarchy, _, role, lock_timeout_ms = opening[5:]
    scope = scope_name(known, hierarchy, role, lock_timeout_ms)
    sql = scoped_sql(statement.sql, len(statement.args))
    if conn.scope.name == scope and len(sql) <= READ_STATEMENT_MAX:
        _, _, _, epoch, expires = kept_facts(known)
        results = await conn.fetchval(
            sql,
            *statement.args,
            scope,
            role,
            epoch,
            expires,
            timeout=cancel_after,
        )
        if results is not None:
            return results  # type: ignore[no-any-return]
    conn.scope.name = None
    results = await conn.fetchval(
        READ_KNOWN_SCOPED_SQL,
        *_run_arguments(known, opening, statement.name, text_arguments(statement)),
        scope,
        timeout=cancel_after,
    )
    conn.scope.name = scope
    return results  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=1024)
def scope_name(known: str, hierarchy: bool, role: str | None, lock_timeout_ms: int) -> str:
    """The `app.scope` of a session whose settings `cms_read_known_scoped` made for a caller:
    a digest of everything it set them from."""
    text = f"{hierarchy}\x00{role}\x00{lock_timeout_ms}\x00{known}"
    return hashlib.sha256(text.encode()).hexdigest()


# As many as a connection keeps prepared: each is a copy of a read's text with the gate around it.
@functools.lru_cache(maxsize=PREPARED_PER_CONNECTION)
def scoped_sql(read_sql: str, parameters: int) -> str:
    """A compiled read run directly on a session scoped to its caller, gated: it reads nothing
    (no row) unless the session's settings are those of the scope named, it runs as the request
    role (None: the connecting role), and the caller's facts still hold (the access counter and
    the credential's expiry, as `cms_read_known_run` checks them). The gate has no column in
    it, so PostgreSQL checks it once, before the read runs."""
    scope, role, epoch, expires = (f"${parameters + n}::text" for n in range(1, 5))
    return (
        f"SELECT scoped.results FROM ({read_sql}) AS scoped(results)"
        f" WHERE current_setting('app.scope', true) = {scope}"
        f" AND ({role} IS NULL OR current_user::text = {role})"
        f" AND (SELECT e.epoch FROM cms_access_epoch e) = {epoch}::bigint"
        f" AND ({expires} IS NULL OR {expires}::timestamptz > now())"
    )


def text_arguments(statement: Statement) -> list[str | None]:
    """The read's values as text in their types' input syntax, as the functions take them."""
    return [text_argument(value) for value in statement.args]


def _raise_signal(exc: asyncpg.PostgresError) -> None:
    """Raise what a read's failure tells the caller, when it is a signal: changed facts, or a
    declined read. Any other error is the caller's to raise as it is."""
    if facts_changed(exc):
        raise FactsChanged from None
    if exc.sqlstate == DECLINED:
        raise ReadDeclined(str(exc)) from None


async def _read_pooled_known(
    conn: PooledConnection,
    database: Database,
    call: PreparedStatement,
    known: str,
    opening: tuple[Any, ...],
    statement: Statement,
    arguments: list[str | None],
    cancel_after: float | None,
) -> list[str | None]:
    """A known caller's read through a transaction pooler: the prepared call when the server
    session reached has it and the read, else the call with the text, which prepares both there."""
    name = statement.name
    # A read this process has not sent yet is likely new to the sessions too: no call bound to
    # fail first (an error in the server's log, and a round trip more).
    if name in database.pooled_reads:
        try:
            row = await conn.fetchrow_prepared(
                call, *_run_arguments(known, opening, name, arguments), timeout=cancel_after
            )
        except asyncpg.InvalidSQLStatementNameError:
            pass  # the session lacks the call or the read
        else:
            assert row is not None
            return list(row[0])
    row = await conn.fetchrow_described(
        READ_POOLED_KNOWN_SQL,
        *_known_arguments(known, opening, name, statement.sql, arguments),
        PREPARED_PER_CONNECTION,
        timeout=cancel_after,
    )
    assert row is not None
    if len(database.pooled_reads) >= PREPARED_PER_CONNECTION:
        database.pooled_reads.clear()
    database.pooled_reads.add(name)
    return list(row["results"])


def _known_arguments(
    known: str, opening: tuple[Any, ...], name: str, text: str | None, arguments: list[str | None]
) -> tuple[Any, ...]:
    """`cms_read_known`'s arguments: the kept facts in place of the credential (migration 0015)."""
    hierarchy, statement_timeout_ms, role, lock_timeout_ms = opening[5:]
    return (known, hierarchy, statement_timeout_ms, role, lock_timeout_ms, name, text, arguments)


def _run_arguments(
    known: str, opening: tuple[Any, ...], name: str, arguments: list[str | None]
) -> tuple[Any, ...]:
    """`cms_read_known_run`'s arguments, direct or as the pooled call (migrations 0020, 0021)."""
    hierarchy, _, role, lock_timeout_ms = opening[5:]
    return (*kept_facts(known), hierarchy, role, lock_timeout_ms, execute_text(name, arguments))


def execute_text(name: str, arguments: list[str | None]) -> str:
    """`EXECUTE name(...)` of a prepared read (`server.db.literals.execute_text`).

    Raises:
        ValueError: `name` is not a read's name (`server.query.run`), which goes in unquoted.
    """
    if not _READ_NAME.fullmatch(name):
        raise ValueError(f"not the name of a compiled read: {name[:80]!r}")
    return prepared_execute_text(name, arguments)


_READ_NAME = re.compile(r"cms_read_[0-9a-f]+")
