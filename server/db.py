"""The connection pool, transactions, and the one place where asyncpg errors become domain errors.

All runtime SQL goes through a `Tx`: one transaction on one connection. It counts its statements (the
cost that matters, asserted by tests and reported by the benchmarks) and translates driver errors, so
no raw SQL error ever reaches a client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg
import orjson

from server.errors import (
    CMSError,
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    QueryTooComplexError,
    UnavailableError,
)

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection: TypeAlias = asyncpg.Connection[Any] | PoolConnectionProxy[Any]

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


async def _init_connection(conn: asyncpg.Connection[Any]) -> None:
    # JSON travels as text both ways; orjson is the fastest correct codec for the JSONB-heavy load.
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, schema="pg_catalog", encoder=_dumps, decoder=orjson.loads, format="text"
        )


async def _keep_session(conn: asyncpg.Connection[Any]) -> None:
    # asyncpg's default reset (RESET ALL, UNLISTEN *, CLOSE ALL, advisory unlocks) costs a round
    # trip at every release. Nothing here leaves session state behind: settings are transaction-
    # local, LISTEN has a connection of its own, advisory locks are transaction locks. A transaction
    # still open at release is rolled back by asyncpg before this runs.
    return None


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class Tx:
    """One transaction on one connection: every statement of a unit of work goes through it."""

    def __init__(self, conn: Connection, database: Database) -> None:
        self.conn = conn
        self.database = database
        self.statements = 0
        # GraphQL resolves sibling fields concurrently; one connection runs one statement at a time.
        self._lock = asyncio.Lock()

    def _count(self) -> None:
        self.statements += 1
        self.database.statements += 1

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        self._count()
        async with self._lock:
            with translate_errors():
                return await self.conn.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        self._count()
        async with self._lock:
            with translate_errors():
                return await self.conn.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        self._count()
        async with self._lock:
            with translate_errors():
                return await self.conn.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> str:
        self._count()
        async with self._lock:
            with translate_errors():
                return await self.conn.execute(sql, *args)

    async def executemany(self, sql: str, args: list[tuple[Any, ...]]) -> None:
        self._count()
        async with self._lock:
            with translate_errors():
                await self.conn.executemany(sql, args)


class Database:
    """The asyncpg pool of one server process."""

    def __init__(self, url: str, *, pool_size: int = 10, idle_timeout: float = 20.0) -> None:
        self.url = url
        self.pool_size = pool_size
        self.idle_timeout = idle_timeout
        self._pool: asyncpg.Pool[Any] | None = None
        # Total statements run through this database's transactions, for tests and benchmarks.
        self.statements = 0

    async def connect(self) -> None:
        if self._pool is not None:
            return
        try:
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=min(2, self.pool_size),
                max_size=self.pool_size,
                max_inactive_connection_lifetime=self.idle_timeout,
                init=_init_connection,
                reset=_keep_session,
                # A transaction left open by a crashed handler must not hold locks forever.
                server_settings={"idle_in_transaction_session_timeout": "60000"},
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise UnavailableError(f"cannot connect to PostgreSQL: {exc}") from exc

    async def disconnect(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @property
    def pool(self) -> asyncpg.Pool[Any]:
        if self._pool is None:
            raise UnavailableError("the database is not connected")
        return self._pool

    async def is_healthy(self) -> bool:
        if self._pool is None:
            return False
        try:
            async with self._pool.acquire(timeout=2) as conn:
                return bool(await conn.fetchval("select 1", timeout=2) == 1)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False

    @asynccontextmanager
    async def transaction(
        self, *, read_only: bool = False, opening: str | None = None
    ) -> AsyncIterator[Tx]:
        """A bare transaction as the connecting role, with no org context.

        Used for instance-level work (migrations, RLS set-up, credential lookups). Tenant data is reached
        only through `server.tenancy`, which adds the org context and the request role.

        Args:
            read_only: a READ ONLY transaction.
            opening: SQL to run in the same round trip as `BEGIN` (the simple query protocol, so it
                takes no parameters: every value in it must be a checked literal). It counts as one
                statement; when it fails, the transaction is rolled back and the error raised as is.
        """
        try:
            conn_cm = self.pool.acquire()
            conn = await conn_cm.__aenter__()
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            raise UnavailableError(f"cannot reach PostgreSQL: {exc}") from exc
        try:
            tx = Tx(conn, self)
            commit: Callable[[], Awaitable[object]]
            rollback: Callable[[], Awaitable[object]]
            if opening is None:
                with translate_errors():
                    tr = conn.transaction(readonly=read_only)
                    await tr.start()
                commit, rollback = tr.commit, tr.rollback
            else:
                commit, rollback = _statement(conn, "COMMIT"), _statement(conn, "ROLLBACK")
                try:
                    await tx.execute(f"BEGIN{' READ ONLY' if read_only else ''}; {opening}")
                except BaseException:
                    await rollback()
                    raise
            try:
                yield tx
            except BaseException:
                await rollback()
                raise
            else:
                with translate_errors():
                    await commit()
        finally:
            await conn_cm.__aexit__(None, None, None)


def _statement(conn: Connection, sql: str) -> Callable[[], Awaitable[object]]:
    async def run() -> None:
        await conn.execute(sql)

    return run


@contextmanager
def translate_errors() -> Iterator[None]:
    """Map asyncpg errors to the domain hierarchy; anything unexpected stays an error to log."""
    try:
        yield
    except CMSError:
        raise
    except asyncpg.UniqueViolationError as exc:
        raise ConflictError(_constraint_message(exc, "the value is already taken")) from exc
    except asyncpg.InsufficientPrivilegeError as exc:
        # Raised by Row-Level Security WITH CHECK failures: a write outside the current organization.
        raise ForbiddenError(
            "not allowed: writes are only permitted in the current organization"
        ) from exc
    except asyncpg.ForeignKeyViolationError as exc:
        raise NotFoundError(_constraint_message(exc, "a referenced row does not exist")) from exc
    except asyncpg.CheckViolationError as exc:
        raise InvalidInputError(_constraint_message(exc, "a value is not allowed")) from exc
    except asyncpg.QueryCanceledError as exc:
        raise QueryTooComplexError("the query took too long and was cancelled") from exc
    except asyncpg.SerializationError as exc:
        raise ConflictError("a concurrent change conflicted; try again") from exc
    except asyncpg.DeadlockDetectedError as exc:
        raise ConflictError("a concurrent change conflicted; try again") from exc
    except asyncpg.DataError as exc:
        # Invalid text for a type (a malformed uuid or timestamp), out-of-range numbers, and so on.
        raise InvalidInputError(f"invalid value: {exc.args[0] if exc.args else exc}") from exc
    except (OSError, asyncpg.ConnectionDoesNotExistError, asyncpg.CannotConnectNowError) as exc:
        raise UnavailableError(f"lost the connection to PostgreSQL: {exc}") from exc


def _constraint_message(exc: asyncpg.PostgresError, default: str) -> str:
    name = getattr(exc, "constraint_name", None) or ""
    return CONSTRAINT_MESSAGES.get(name, default)
