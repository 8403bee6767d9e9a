"""The connection pool, transactions, and the one place where asyncpg errors become domain errors.

All runtime SQL goes through a `Tx`: one transaction on one connection. It counts its statements (the
cost that matters, asserted by tests and reported by the benchmarks) and translates driver errors, so
no raw SQL error ever reaches a client.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import asyncpg
import orjson
from asyncpg.prepared_stmt import PreparedStatement

from server.config import PoolMode
from server.db.consistency import COMMIT_POSITION_SQL, commit_token
from server.db.held_pool import HeldPool
from server.db.kept import KEPT_PER_SESSION, KeptStatements
from server.db.literals import json_text
from server.errors import (
    CMSError,
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    TimedOutError,
    UnavailableError,
)

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection: TypeAlias = asyncpg.Connection[Any] | PoolConnectionProxy[Any]

Health = Literal["ok", "degraded", "down"]

# The health check's own limit, for connecting and for its one statement.
HEALTH_TIMEOUT_SECONDS = 2.0
HEALTH_APPLICATION_NAME = "content-api health"

# The client encoding as PostgreSQL reports it. asyncpg announces `'utf-8'` (quoted) at start-up,
# which PostgreSQL takes as UTF8; PgBouncer compares the client's text with the server session's
# report, finds them different, and sends `SET client_encoding` to the server session before each
# transaction it lends the client: a round trip between pooler and server on every request.
# Announced again in the server's own spelling (the last value in the start-up packet wins), the
# two are equal and the pooler sends nothing.
CLIENT_ENCODING = {"client_encoding": "UTF8"}

# Messages for the constraints a client can run into; the names follow `tables.metadata`'s convention.
CONSTRAINT_MESSAGES = {
    "uq_cms_organizations_parent_organization_id_slug": (
        "an organization with this slug already exists"
    ),
    "uq_cms_organization_members_organization_id_user_id": "the user is already a member",
    "uq_cms_organization_roles_organization_id_name": "a role with this name already exists",
    "uq_cms_schema_types_name": "a schema type with this name already exists",
    "uq_cms_document_versions_document_id_version_number": "the version number is taken",
    "uq_users_email_lower": "a user with this email already exists",
    "ck_cms_organizations_not_own_parent": "an organization cannot be its own parent",
    "ck_cms_organizations_no_cycle": "the new parent would make a cycle in the organization tree",
    "ck_cms_user_profiles_role": "the instance role must be super_admin, admin, editor or viewer",
    "pk_cms_documents": "a document with this id already exists",
    "pk_cms_assets": "an asset with this id already exists",
}


# Statement descriptions a connection keeps through a transaction pooler, the least recently used
# dropped first: the fixed texts of the request paths fit many times over.
DESCRIBED_PER_CONNECTION = 128


# The longest statement a read pool connection keeps prepared (asyncpg's statement cache; its
# default is 15 KiB, shorter than many a compiled read): a longer one would be parsed and
# described again with each run, a round trip more (`server/query/round_trip.py` runs those
# through `cms_read_known_scoped` instead).
READ_STATEMENT_MAX = 64 * 1024


class SessionScope:
    """The `app.scope` a read pool session's settings were last made for, as far as this
    process knows (None: not known). Mutable, as the pool hands out proxies of its connections."""

    __slots__ = ("name",)

    def __init__(self) -> None:
        self.name: str | None = None


class PooledConnection(asyncpg.Connection):
    """A pool connection, with the names of the reads prepared on its session (`cms_read`)."""

    prepared_reads: set[str]
    # On a connection of the read pool (`Database.read_session`): what its session settings were
    # last made for.
    scope: SessionScope
    # The kept statements (`server/db/kept.py`) prepared on its session by a write at once.
    kept_prepared: set[str]
    # Statement descriptions kept by `described_statement`, by text, oldest use first.
    described: OrderedDict[str, Any]

    async def described_statement(self, query: str) -> PreparedStatement:
        """`query` to run in one round trip on a connection without a statement cache (transaction
        pooling).

        Without its cache asyncpg has every statement described first (Parse, Describe, Sync) and
        then parses it again with its Bind and Execute: two round trips. A text's description (its
        parameter and column types) does not change while the schema does not, so the first use
        keeps it for this connection and later ones send only the second group, in which the
        unnamed statement is parsed again within the call's own Sync: one transaction, one server
        session for a pooler. (A migration that changed a column's type under a running server
        would leave it decoding with the old description: restart servers after such a one, as
        `docs/scaling.md` says.)
        """
        state = self.described.get(query)
        if state is None:
            # Unnamed without a statement cache, and marked to be parsed again with each Bind.
            state = (await self.prepare(query))._state  # type: ignore[attr-defined]
            self.described[query] = state
            if len(self.described) > DESCRIBED_PER_CONNECTION:
                self.described.popitem(last=False)
        else:
            self.described.move_to_end(query)
        # A statement object belongs to one acquisition from the pool; its description does not.
        return PreparedStatement(self, query, state)

    async def fetchrow_described(
        self,
        query: str,
        *args: Any,
        timeout: float | None = None,  # noqa: ASYNC109 (asyncpg's: it cancels on the server)
    ) -> asyncpg.Record | None:
        """`fetchrow` of `query` in one round trip (`described_statement`)."""
        statement = await self.described_statement(query)
        return await statement.fetchrow(*args, timeout=timeout)

    async def fetchrow_prepared(
        self,
        prepared: PreparedStatement,
        *args: Any,
        timeout: float | None = None,  # noqa: ASYNC109 (asyncpg's: it cancels on the server)
    ) -> asyncpg.Record | None:
        """`fetchrow` of a statement the server session holds prepared under `prepared`'s name:
        Bind, Execute and Sync, no Parse and no text (`Database.named_statement`).

        Raises:
            asyncpg.InvalidSQLStatementNameError: the session reached has no statement of that
                name (through a transaction pooler, another session may have it).
        """
        # The description came from another connection; the codecs it chose are asyncpg's
        # built-in ones, which every connection shares.
        state = prepared._state  # type: ignore[attr-defined]
        statement = PreparedStatement(self, prepared._query, state)  # type: ignore[attr-defined]
        return await statement.fetchrow(*args, timeout=timeout)


async def _init_connection(conn: asyncpg.Connection[Any]) -> None:
    if isinstance(conn, PooledConnection):
        conn.prepared_reads = set()
        conn.scope = SessionScope()
        conn.kept_prepared = set()
        conn.described = OrderedDict()
    # JSON travels as text both ways; orjson is the fastest correct codec for the JSONB-heavy load.
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, schema="pg_catalog", encoder=json_text, decoder=orjson.loads, format="text"
        )


async def keep_session(conn: asyncpg.Connection[Any]) -> None:
    """A pool's `reset` for connections that leave no session state: nothing to run at release."""
    # asyncpg's default reset (RESET ALL, UNLISTEN *, CLOSE ALL, advisory unlocks) costs a round
    # trip at every release. Nothing here leaves session state behind: settings are transaction-
    # local, LISTEN has a connection of its own, advisory locks are transaction locks. A transaction
    # still open at release is rolled back by asyncpg before this runs.
    return None


class Tx:
    """One transaction on one connection: every statement of a unit of work goes through it."""

    def __init__(self, conn: Connection, database: Database) -> None:
        self.conn = conn
        self.database = database
        self.statements = 0
        # After a commit asked for it (`Database.transaction(commit_token=True)`): the WAL position
        # a replica must have replayed to show what this transaction wrote (`server/db/replicas.py`).
        self.commit_token: str | None = None
        # GraphQL resolves sibling fields concurrently; one connection runs one statement at a time.
        self._lock = asyncio.Lock()
        # Through a transaction pooler asyncpg keeps no statement cache: each statement would be
        # described in a round trip of its own first (`PooledConnection.described_statement`).
        self._pooled = database.transaction_pooled
        self._after_commit: list[Callable[[], object]] = []

    def after_commit(self, callback: Callable[[], object]) -> None:
        """Run `callback` once this transaction has committed (never if it rolls back): what must
        wait until the change is visible to others, such as swapping in a new registry or sending
        a mail."""
        self._after_commit.append(callback)

    def _committed(self) -> None:
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    def _count(self) -> None:
        self.statements += 1
        self.database.statements += 1

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        self._count()
        async with self._lock:
            with translate_errors(self.conn):
                if self._pooled:
                    return await (await self._described(sql)).fetch(*args)
                return await self.conn.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        self._count()
        async with self._lock:
            with translate_errors(self.conn):
                if self._pooled:
                    return await (await self._described(sql)).fetchrow(*args)
                return await self.conn.fetchrow(sql, *args)

    async def fetchrow_kept(self, sql: str, *args: Any) -> asyncpg.Record | None:
        """`fetchrow` of a statement worth keeping prepared (a document write's): behind a
        transaction pooler it runs prepared on the server session (`server/db/kept.py`) instead
        of being planned again; direct, asyncpg's statement cache keeps it prepared already."""
        if not self._pooled:
            return await self.fetchrow(sql, *args)
        self._count()
        async with self._lock:
            with translate_errors(self.conn):
                kept = self.database.kept.get(sql)
                if kept is None:
                    kept = self.database.kept.learn(sql, await self._described(sql))
                run = kept.run(args)
                if run is None:
                    return await (await self._described(sql)).fetchrow(*args)
                call = await self._described(kept.call)
                return await call.fetchrow(kept.name, sql, run, KEPT_PER_SESSION)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        self._count()
        async with self._lock:
            with translate_errors(self.conn):
                if self._pooled:
                    return await (await self._described(sql)).fetchval(*args)
                return await self.conn.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> str:
        self._count()
        async with self._lock:
            with translate_errors(self.conn):
                if self._pooled and args:
                    statement = await self._described(sql)
                    await statement.fetch(*args)
                    return statement.get_statusmsg() or ""
                # Without arguments asyncpg sends the simple protocol's one message anyway.
                return await self.conn.execute(sql, *args)

    async def _described(self, sql: str) -> PreparedStatement:
        connection: PooledConnection = self.conn  # type: ignore[assignment]
        return await connection.described_statement(sql)

    async def executemany(self, sql: str, args: list[tuple[Any, ...]]) -> None:
        self._count()
        async with self._lock:
            with translate_errors(self.conn):
                await self.conn.executemany(sql, args)


class Database:
    """The asyncpg pool of one server process, and the health check's own connection.

    `url` may lead to a transaction pooler (`pool_mode="transaction"`, e.g. PgBouncer in transaction
    mode), where consecutive transactions of one pooled connection may run on different server
    sessions. Nothing may then rely on session state: asyncpg's statement cache is off (it would
    name prepared statements on a session the next statement may not reach), so each connection
    keeps its statements' descriptions instead, to run each in one round trip
    (`PooledConnection.described_statement`); no setting travels in the start-up packet (PgBouncer
    refuses unknown ones); compiled reads bind a call the server sessions keep prepared
    (`server/query/round_trip.py`). What needs a session of its own (migrations, RLS set-up,
    LISTEN) connects to `direct_url`, PostgreSQL itself.
    """

    def __init__(
        self,
        url: str,
        *,
        direct_url: str | None = None,
        pool_mode: PoolMode = "session",
        pool_size: int = 10,
        read_pool_size: int | None = None,
        idle_timeout: float = 20.0,
        acquire_timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.direct_url = direct_url or url
        self.pool_mode = pool_mode
        self.pool_size = pool_size
        self.read_pool_size = pool_size if read_pool_size is None else read_pool_size
        self.idle_timeout = idle_timeout
        # How long a transaction waits for a pooled connection before SERVICE_UNAVAILABLE (0: as
        # long as it takes).
        self.acquire_timeout = acquire_timeout
        # Both pools hold their connections between uses (`server/db/held_pool.py`).
        self._pool: HeldPool | None = None
        # Known callers' compiled reads, on sessions of the request role (`read_session`).
        self._reads: HeldPool | None = None
        self._reads_role: str | None = None  # what `_reads` was opened for
        self._reads_lock = asyncio.Lock()
        self._health: asyncpg.Connection[Any] | None = None
        self._health_lock = asyncio.Lock()
        # Through a transaction pooler: statements that server sessions keep prepared by name,
        # described once (`named_statement`), and the compiled reads whose text this process has
        # sent to the pooler (`server/query/round_trip.py`).
        self._named: dict[str, PreparedStatement] = {}
        self._naming = asyncio.Lock()
        self.pooled_reads: set[str] = set()
        # The statements `Tx.fetchrow_kept` keeps prepared behind a transaction pooler.
        self.kept = KeptStatements()
        # Total statements run through this database's transactions, for tests and benchmarks.
        self.statements = 0

    @property
    def scoped_reads(self) -> bool:
        """Whether known callers' reads go to the read pool (`read_session`)."""
        return self.read_pool_size > 0 and not self.transaction_pooled

    @property
    def transaction_pooled(self) -> bool:
        """Whether `url` leads to a transaction pooler (see the class)."""
        return self.pool_mode == "transaction"

    def _session_options(self) -> dict[str, Any]:
        if self.transaction_pooled:
            # The pooler's `idle_transaction_timeout` ends a transaction left open instead.
            return {"statement_cache_size": 0, "server_settings": CLIENT_ENCODING}
        # A transaction left open by a crashed handler must not hold locks forever.
        return {
            "server_settings": {**CLIENT_ENCODING, "idle_in_transaction_session_timeout": "60000"}
        }

    async def connect(self) -> None:
        if self._pool is not None:
            return
        pool = await self._create_pool(
            min(2, self.pool_size), self.pool_size, **self._session_options()
        )
        self._pool = HeldPool(pool, self.idle_timeout / 2)

    async def _create_pool(self, min_size: int, max_size: int, **options: Any) -> asyncpg.Pool[Any]:
        """A pool of `PooledConnection`s to `url` (the main pool, or the read pool with `options`
        of its own), which reset nothing at release and close after the idle timeout."""
        try:
            return await asyncpg.create_pool(
                self.url,
                min_size=min_size,
                max_size=max_size,
                # Half in asyncpg's pool, half held by the process (`HeldPool`): a connection
                # idle that long in all is closed.
                max_inactive_connection_lifetime=self.idle_timeout / 2,
                init=_init_connection,
                reset=keep_session,
                connection_class=PooledConnection,
                **options,
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise UnavailableError(f"cannot connect to PostgreSQL: {exc}") from exc

    @asynccontextmanager
    async def direct(self) -> AsyncIterator[Database]:
        """This database on a session of its own (`direct_url`), for start-up work such as RLS
        set-up: this one when its URL is PostgreSQL itself, else a one-connection pool."""
        if not self.transaction_pooled and self.direct_url == self.url:
            yield self
            return
        direct = Database(
            self.direct_url,
            # Without a direct URL of its own, the pooler it is.
            pool_mode=self.pool_mode if self.direct_url == self.url else "session",
            pool_size=1,
            acquire_timeout=self.acquire_timeout,
        )
        await direct.connect()
        try:
            yield direct
        finally:
            await direct.disconnect()

    async def disconnect(self) -> None:
        await self._close_health()
        if self._reads is not None:
            reads, self._reads = self._reads, None
            await reads.close()
        if self._pool is not None:
            held, self._pool = self._pool, None
            await held.close()

    @property
    def connected(self) -> bool:
        return self._pool is not None

    @property
    def pool(self) -> asyncpg.Pool[Any]:
        return self._held().pool

    def _held(self) -> HeldPool:
        if self._pool is None:
            raise UnavailableError("the database is not connected")
        return self._pool

    async def is_healthy(self) -> bool:
        return await self.health() != "down"

    async def health(self) -> Health:
        """`down` when PostgreSQL does not answer, `degraded` when it does but every connection
        of a pool is taken (a new transaction, or a known caller's read, would wait for one),
        else `ok`.

        The check runs on a connection of its own, outside the pool, so a saturated pool does not
        make a reachable database look down.
        """
        if self._pool is None:
            return "down"
        try:
            async with self._health_lock:
                if self._health is None or self._health.is_closed():
                    self._health = await asyncpg.connect(
                        self.url,
                        timeout=HEALTH_TIMEOUT_SECONDS,
                        server_settings=self._health_settings(),
                        statement_cache_size=0 if self.transaction_pooled else 100,
                    )
                await self._health.fetchval("select 1", timeout=HEALTH_TIMEOUT_SECONDS)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            await self._close_health()
            return "down"
        saturated = self._pool.saturated or (self._reads is not None and self._reads.saturated)
        return "degraded" if saturated else "ok"

    def _health_settings(self) -> dict[str, str]:
        if self.transaction_pooled:
            # A pooler sets a client's application_name on each server session it lends it, where
            # it stays for the requests that come next: they would show as the health check.
            return CLIENT_ENCODING
        return {**CLIENT_ENCODING, "application_name": HEALTH_APPLICATION_NAME}

    async def _close_health(self) -> None:
        connection, self._health = self._health, None
        if connection is not None:
            # Not a polite close: it may be the connection that just timed out.
            connection.terminate()

    async def named_statement(self, name: str, query: str) -> PreparedStatement:
        """How to run `query` where server sessions hold it prepared (SQL `PREPARE`) as `name`.

        Behind a transaction pooler the client cannot prepare a statement on the session its next
        transaction reaches, but a statement a session prepared for itself can be bound by name
        from any client (`PooledConnection.fetchrow_prepared`). asyncpg needs its description
        (parameter and column types) for that; it is read once, on a session of its own
        (`direct_url`), under the same name, and kept for every connection of the pool.
        """
        prepared = self._named.get(name)
        if prepared is not None:
            return prepared
        async with self._naming:
            prepared = self._named.get(name)
            if prepared is None:
                conn = await asyncpg.connect(
                    self.direct_url, server_settings=CLIENT_ENCODING, statement_cache_size=0
                )
                try:
                    prepared = await conn.prepare(query, name=name)
                finally:
                    await conn.close()
                # Kept referenced: asyncpg closes a named statement that nothing refers to any
                # more on the connection that last ran it, which here would be a pooled one.
                self._named[name] = prepared
        return prepared

    def ran(self, sql: str, args: Sequence[Any]) -> None:
        """Count a statement that is its own unit of work, run outside a `Tx` (`cms_read`)."""
        self.statements += 1

    async def run_at_once(
        self,
        opening: Sequence[Any],
        sql: str,
        *args: Any,
        cancel_after: float | None,
        refuse_wrong: bool = True,
    ) -> asyncpg.Record | None:
        """A known caller's request opened and the write `sql` run, in one statement that is its
        own transaction (`cms_write_known_run`, migration 0023): its row, or None.

        `sql` runs prepared on the server session, as `Tx.fetchrow_kept` runs it behind a pooler,
        and PostgreSQL commits it as the statement ends.

        Args:
            opening: the known caller's facts and settings (`opening.known_run_arguments`).
            cancel_after: seconds before the statement is cancelled (None: no limit).
            refuse_wrong: refuse (write nothing) when the row's `wrong` is not null; off for a
                statement whose row has no `wrong` (a read).

        Raises:
            NotWritten: PostgreSQL refused the statement (its error is the cause), or a value
                has no text form here: nothing was written, so the write may run another way.
            UnavailableError, TimedOutError: the connection was lost, or the statement ran out
                of time: it may have been committed, so it must not run again.
        """
        self.ran(sql, args)
        async with self.session() as conn:
            with translate_errors(conn):
                kept = self.kept.get(sql)
                if kept is None:
                    # Direct, asyncpg's statement cache keeps the statement (and closes one it
                    # does not keep), so the description is read from it while it is held here.
                    described = (
                        await conn.described_statement(sql)
                        if self.transaction_pooled
                        else await conn.prepare(sql)
                    )
                    kept = self.kept.learn(sql, described)
                run = kept.run(args)
                if run is None:
                    raise NotWritten("a value of the write has no text form")
                call = kept.call_at_once
                # Whether the session has the statement: a pooler's session is not known here.
                prepared = None if self.transaction_pooled else kept.name in conn.kept_prepared
                arguments = (
                    *opening,
                    kept.name,
                    # The text (some kilobytes) travels only when the session may need it.
                    None if prepared else sql,
                    run,
                    KEPT_PER_SESSION,
                    refuse_wrong,
                    prepared,
                )
                try:
                    if self.transaction_pooled:
                        return await conn.fetchrow_described(call, *arguments, timeout=cancel_after)
                    row = await conn.fetchrow(call, *arguments, timeout=cancel_after)
                    conn.kept_prepared.add(kept.name)
                    return row
                except asyncpg.InvalidSQLStatementNameError as exc:
                    # Deallocated for the session's cap since: prepared again next time.
                    conn.kept_prepared.discard(kept.name)
                    raise NotWritten(str(exc)) from exc
                except TimeoutError as exc:
                    # Not a lost connection (translate_errors would take it for one): asyncpg
                    # cancelled the statement, which may have committed all the same.
                    raise TimedOutError(
                        "the statement ran longer than the statement timeout and was cancelled"
                    ) from exc
                except asyncpg.PostgresError as exc:
                    if connection_lost(conn, exc):
                        raise
                    raise NotWritten(str(exc)) from exc

    async def replace_dead_connections(self, exc: BaseException) -> None:
        """A pooled connection was found dead before its first statement did anything: the caller
        tries once more on a fresh one. Its siblings likely died with it (a restart), so they are
        replaced as they come back to the pool."""
        log.warning("a pooled connection was dead (%s); trying again on a fresh one", exc)
        for held in (self._pool, self._reads):
            if held is not None:
                await held.pool.expire_connections()
                await held.drain()

    def session(self) -> Session:
        """A pooled connection outside any transaction: each statement is its own transaction.

        For `cms_read` (server/query/round_trip.py), which opens the request inside its one statement.
        Count each statement run on it (`ran`); driver errors are not translated here. Waiting
        longer than `acquire_timeout` for it is SERVICE_UNAVAILABLE.
        """
        return Session(self, self._held())

    async def read_session(self, role: str | None) -> Session:
        """`session()` on the read pool: connections that serve known callers' compiled reads
        and nothing else, so their session settings may stay scoped to the last caller
        (`cms_read_known_scoped`, migration 0025).

        They start as `role` (None: the connecting role), which even `RESET ROLE` returns to,
        and read-only, with JIT off. Opened on first use, with up to `read_pool_size`
        connections, held by this process between reads (`server/db/held_pool.py`) and closed
        when idle for the idle timeout. Only when `scoped_reads`: not through a
        transaction pooler, which keeps no session's settings for the next call.
        """
        assert self.scoped_reads
        reads = self._reads
        if reads is None or self._reads_role != role:
            reads = await self._open_reads(role)
        return Session(self, reads)

    async def _open_reads(self, role: str | None) -> HeldPool:
        async with self._reads_lock:
            if self._reads is not None and self._reads_role == role:
                return self._reads
            if self._pool is None:
                raise UnavailableError("the database is not connected")
            settings = {
                **self._session_options()["server_settings"],
                "default_transaction_read_only": "on",
                "jit": "off",
            }
            if role is not None:
                settings["role"] = role
            pool = await self._create_pool(
                0,
                self.read_pool_size,
                server_settings=settings,
                max_cacheable_statement_size=READ_STATEMENT_MAX,
            )
            reads = HeldPool(pool, self.idle_timeout / 2)
            previous, self._reads, self._reads_role = self._reads, reads, role
            if previous is not None:
                await previous.close()
            return reads

    @asynccontextmanager
    async def transaction(
        self, *, read_only: bool = False, opening: str | None = None, commit_token: bool = False
    ) -> AsyncIterator[Tx]:
        """A bare transaction as the connecting role, with no org context.

        Used for instance-level work (migrations, RLS set-up, credential lookups). Tenant data is reached
        only through `server.db.tenancy`, which adds the org context and the request role.

        A pooled connection may have died since its last use (a restarted or failed-over server,
        `pg_terminate_backend`): when it fails at the first statement, the transaction begins once
        more on a fresh connection, as nothing has happened yet. A connection lost after that, or
        twice, is SERVICE_UNAVAILABLE, and so is waiting longer than `acquire_timeout` for one.

        Args:
            read_only: a READ ONLY transaction.
            opening: SQL to run in the same round trip as `BEGIN` (the simple query protocol, so it
                takes no parameters: every value in it must be a checked literal). It counts as one
                statement; when it fails, the transaction is rolled back and the error raised as
                `translate_errors` maps it.
            commit_token: after the commit, read the WAL position it reached into
                `tx.commit_token` (one more statement, on the same connection).
        """
        held = self._held()
        tx, commit, rollback = await self._begin(held, read_only=read_only, opening=opening)
        committed = False
        try:
            try:
                yield tx
            except BaseException:
                try:
                    await rollback()
                except Exception as exc:
                    # A dead connection has nothing to roll back: the error to tell is the first.
                    if not connection_lost(tx.conn, exc):
                        raise
                raise
            else:
                with translate_errors(tx.conn):
                    await commit()
                committed = True
                if commit_token:
                    await _read_commit_token(tx)
        finally:
            # Held for the next unit of work only after a commit: asyncpg's pool settles the rest.
            await held.put(tx.conn, ok=committed)
        if committed:
            tx._committed()

    async def _begin(
        self, held: HeldPool, *, read_only: bool, opening: str | None
    ) -> tuple[Tx, End, End]:
        """Take a connection and begin the transaction on it (retried once, see above)."""
        for attempt in (1, 2):
            conn = await held.take_or_acquire(self._acquire)
            tx = Tx(conn, self)
            try:
                if opening is None:
                    tr = conn.transaction(readonly=read_only)
                    await tr.start()
                    return tx, tr.commit, tr.rollback
                tx._count()
                await conn.execute(f"BEGIN{' READ ONLY' if read_only else ''}; {opening}")
                return tx, _statement(conn, "COMMIT"), _statement(conn, "ROLLBACK")
            except Exception as exc:
                lost = connection_lost(conn, exc)
                if not lost and opening is not None:
                    await _statement(conn, "ROLLBACK")()
                await held.give_back(conn)
                if not lost:
                    with translate_errors():
                        raise
                if attempt == 2:
                    raise UnavailableError(
                        "lost the connection to PostgreSQL twice; try again"
                    ) from exc
                await self.replace_dead_connections(exc)
            except BaseException:
                await held.give_back(conn)
                raise
        raise AssertionError("unreachable")

    async def _acquire(self, get: Callable[[], Awaitable[Connection]]) -> Connection:
        """A connection by `get` (`HeldPool.take_or_acquire`: handed over by the use that ends
        next, or from asyncpg's pool), waiting no longer than `acquire_timeout`."""
        # asyncpg's pool's own timeout runs the acquisition in a task of its own (`wait_for`) on
        # every call, idle connection or not; a timeout scope around it costs only a timer.
        try:
            async with asyncio.timeout(self.acquire_timeout or None):
                return await get()
        except TimeoutError as exc:
            raise UnavailableError(
                f"no database connection became free within {self.acquire_timeout:g} s; try again"
            ) from exc
        except (OSError, asyncpg.PostgresError) as exc:
            raise UnavailableError(f"cannot reach PostgreSQL: {exc}") from exc


End: TypeAlias = Callable[[], Awaitable[object]]


class NotWritten(Exception):  # noqa: N818 (a signal: the write may run another way)
    """`Database.run_at_once` wrote nothing: PostgreSQL refused the statement (the cause)."""

    @property
    def sqlstate(self) -> str | None:
        return getattr(self.__cause__, "sqlstate", None)


class Session:
    """`Database.session()` or `read_session()`: one connection for a use outside any
    transaction, held by the process for the next use when this one ends well, else given back to
    asyncpg's pool (`server/db/held_pool.py`). A class rather than a generator, as every compiled
    read takes one and a generator-based context manager costs a few microseconds more each
    time."""

    __slots__ = ("_conn", "_database", "_held")

    def __init__(self, database: Database, held: HeldPool) -> None:
        self._database = database
        self._held = held
        self._conn: Any = None

    async def __aenter__(self) -> PooledConnection:
        self._conn = await self._held.take_or_acquire(self._database._acquire)
        return self._conn  # type: ignore[no-any-return]

    async def __aexit__(self, exc_type: object, *_: object) -> None:
        await self._held.put(self._conn, ok=exc_type is None)


async def _read_commit_token(tx: Tx) -> None:
    tx._count()
    try:
        row = await tx.conn.fetchrow(COMMIT_POSITION_SQL)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        # The commit stands; without a token the client's next read goes wherever reads go.
        log.warning("could not read the commit's WAL position: %s", exc)
        return
    assert row is not None
    tx.commit_token = commit_token(row[0], row[1])


def _statement(conn: Connection, sql: str) -> Callable[[], Awaitable[object]]:
    async def run() -> None:
        await conn.execute(sql)

    return run


def connection_lost(conn: Connection, exc: BaseException) -> bool:
    """Whether `exc` means the connection is gone (the server ended it, or the socket broke).

    Besides the errors that say so, asyncpg may fail with whatever the protocol was doing when
    the server's goodbye arrived (`InternalClientError: cannot switch to state ...`); the
    connection is closed by then.
    """
    if isinstance(exc, OSError | asyncpg.PostgresConnectionError | asyncpg.AdminShutdownError):
        return True
    if isinstance(exc, asyncpg.CrashShutdownError | asyncpg.CannotConnectNowError):
        return True
    try:
        return conn.is_closed()
    except asyncpg.InterfaceError:
        # The pool takes back a pooled connection that closes under it.
        return True


class translate_errors:  # noqa: N801 (used as a function: `with translate_errors(conn):`)
    """Map asyncpg errors to the domain hierarchy; anything unexpected stays an error to log.

    With `conn`, any error that leaves it closed is a lost connection (SERVICE_UNAVAILABLE). A
    class rather than a generator: every compiled read enters it, and a generator-based context
    manager costs a few microseconds more each time.
    """

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection | None = None) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, Exception) and not isinstance(exc, CMSError):
            error = _domain_error(exc, self._conn)
            if error is not None:
                raise error from exc


def _domain_error(exc: Exception, conn: Connection | None = None) -> CMSError | None:
    """The domain error `translate_errors` raises for `exc`; None: `exc` stays as it is."""
    if isinstance(exc, asyncpg.UniqueViolationError):
        return ConflictError(_constraint_message(exc, "the value is already taken"))
    if isinstance(exc, asyncpg.InsufficientPrivilegeError):
        # Raised by Row-Level Security WITH CHECK failures: a write outside the current organization.
        return ForbiddenError("not allowed: writes are only permitted in the current organization")
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return NotFoundError(_constraint_message(exc, "a referenced row does not exist"))
    if isinstance(exc, asyncpg.CheckViolationError):
        return InvalidInputError(_constraint_message(exc, "a value is not allowed"))
    if isinstance(exc, asyncpg.QueryCanceledError):
        return TimedOutError(
            "the statement ran longer than the statement timeout and was cancelled"
        )
    if isinstance(exc, asyncpg.LockNotAvailableError):
        return TimedOutError(
            "waited longer than the lock timeout for data another transaction is changing; try"
            " again"
        )
    if isinstance(exc, asyncpg.SerializationError):
        return ConflictError("a concurrent change conflicted; try again")
    if isinstance(exc, asyncpg.DeadlockDetectedError):
        return ConflictError("a concurrent change conflicted; try again")
    if isinstance(exc, asyncpg.DataError):
        # Invalid text for a type (a malformed uuid or timestamp), out-of-range numbers, and so on.
        return InvalidInputError(f"invalid value: {exc.args[0] if exc.args else exc}")
    if isinstance(
        exc,
        (
            OSError,
            asyncpg.PostgresConnectionError,
            asyncpg.AdminShutdownError,
            asyncpg.CrashShutdownError,
            asyncpg.CannotConnectNowError,
        ),
    ):
        return UnavailableError(f"lost the connection to PostgreSQL: {exc}")
    if conn is not None and connection_lost(conn, exc):
        return UnavailableError(f"lost the connection to PostgreSQL: {exc}")
    return None


def _constraint_message(exc: asyncpg.PostgresError, default: str) -> str:
    name = getattr(exc, "constraint_name", None) or ""
    return CONSTRAINT_MESSAGES.get(name, default)
