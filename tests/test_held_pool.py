"""The pools' connections between uses (`server/db/held_pool.py`), on the read pool and the main
pool's transactions.

A use that ends well leaves its connection to the process for the next; one that fails gives it
back to asyncpg's pool, which settles a cancelled statement or an open transaction; connections
idle beyond the idle timeout are closed; closing the database waits for uses in flight. On
PostgreSQL directly, with `Database` itself (`tests/test_scoped_reads.py` covers what the reads
do on the read pool's sessions).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from server.db import held_pool
from server.db.pool import Database
from server.errors import InvalidInputError, UnavailableError

GUARD_SECONDS = 10
SLOW_ECHO = "SELECT $1::int FROM pg_sleep(0.02)"


@pytest.fixture
async def database(cms_database_url: str) -> AsyncIterator[Database]:
    database = Database(cms_database_url, pool_size=1, read_pool_size=2, idle_timeout=0.3)
    await database.connect()
    try:
        yield database
    finally:
        await database.disconnect()


async def _backend(database: Database) -> int:
    async with await database.read_session(None) as conn:
        return int(await conn.fetchval("SELECT pg_backend_pid()"))


async def _read(database: Database, *statements: str, cancel_after: float | None = None) -> None:
    async with await database.read_session(None) as conn:
        for sql in statements:
            await conn.execute(sql, timeout=cancel_after)


async def _alive(url: str, pid: int) -> bool:
    conn = await asyncpg.connect(url)
    try:
        return bool(
            await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid)
        )
    finally:
        await conn.close()


async def test_the_next_read_takes_the_connection_the_last_one_left(database: Database) -> None:
    first = await _backend(database)
    assert await _backend(database) == first
    # Two reads at once take two connections; both are kept for the reads after them.
    async with await database.read_session(None) as one, await database.read_session(None) as two:
        both = {
            await one.fetchval("SELECT pg_backend_pid()"),
            await two.fetchval("SELECT pg_backend_pid()"),
        }
    assert len(both) == 2
    assert first in both
    assert await _backend(database) in both


async def test_more_reads_at_once_than_connections_take_turns(cms_database_url: str) -> None:
    """A read waiting for asyncpg's pool gets the connection the read before it leaves: a
    connection kept for later would leave it waiting until its timeout."""

    async def read(database: Database, n: int) -> int:
        async with await database.read_session(None) as conn:
            return int(await conn.fetchval(SLOW_ECHO, n))

    await _in_turns(Database(cms_database_url, pool_size=1, read_pool_size=1), read)


async def test_a_read_that_failed_leaves_nothing_behind_for_the_next(database: Database) -> None:
    with pytest.raises(TimeoutError):
        await _read(database, "SELECT pg_sleep(30)", cancel_after=0.1)
    with pytest.raises(asyncpg.DivisionByZeroError):
        await _read(database, "BEGIN", "SELECT 1 / 0")
    # Both connections went back to asyncpg's pool, which waited for the cancellation and rolled
    # the transaction back: every next read finds its connection ready and outside a transaction.
    async with asyncio.timeout(GUARD_SECONDS):
        for _ in range(3):
            async with await database.read_session(None) as conn:
                assert not conn.is_in_transaction()
                assert await conn.fetchval("SELECT 1") == 1


async def test_a_kept_connection_whose_session_ended_is_not_taken(
    database: Database, cms_database_url: str
) -> None:
    pid = await _backend(database)
    admin = await asyncpg.connect(cms_database_url)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    for _ in range(GUARD_SECONDS * 10):
        if not await _alive(cms_database_url, pid):
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.1)  # asyncpg reads the server's goodbye
    assert await _backend(database) != pid


async def test_read_connections_idle_beyond_the_idle_timeout_are_closed(
    database: Database, cms_database_url: str
) -> None:
    pid = await _backend(database)
    assert await _alive(cms_database_url, pid)
    for _ in range(GUARD_SECONDS * 10):
        if not await _alive(cms_database_url, pid):
            break
        await asyncio.sleep(0.1)
    assert not await _alive(cms_database_url, pid)
    assert database._reads is not None
    assert database._reads.idle == 0
    # The next read opens a connection again.
    assert await _backend(database) != pid


async def test_closing_the_database_waits_for_a_read_in_flight(cms_database_url: str) -> None:
    database = Database(cms_database_url, pool_size=1, read_pool_size=2)
    await database.connect()
    await _backend(database)  # one connection kept, and one about to be taken

    async def slow_read() -> int:
        async with await database.read_session(None) as conn:
            return int(await conn.fetchval("SELECT 7 FROM pg_sleep(0.3)"))

    async with asyncio.timeout(GUARD_SECONDS):
        reading = asyncio.create_task(slow_read())
        await asyncio.sleep(0.05)
        await database.disconnect()
        assert await reading == 7


async def test_the_next_transaction_takes_the_connection_the_last_one_left(
    database: Database,
) -> None:
    async def backend() -> int:
        async with database.transaction() as tx:
            return int(await tx.fetchval("SELECT pg_backend_pid()"))

    first = await backend()
    assert await backend() == first
    # A unit of work that failed gives its connection back to asyncpg's pool, which rolled it
    # back: the next one begins, on that connection, in a transaction of its own.
    with pytest.raises(InvalidInputError):
        async with database.transaction() as tx:
            await tx.fetchval("SELECT 1 / 0")
    async with database.transaction() as tx:
        assert await tx.fetchval("SELECT 2") == 2
    assert await backend() == first


async def test_more_transactions_at_once_than_connections_take_turns(
    cms_database_url: str,
) -> None:
    async def unit(database: Database, n: int) -> int:
        async with database.transaction() as tx:
            return int(await tx.fetchval(SLOW_ECHO, n))

    await _in_turns(Database(cms_database_url, pool_size=1, read_pool_size=0), unit)


async def _in_turns(database: Database, use: Callable[[Database, int], Awaitable[int]]) -> None:
    """Eight uses at once of `database`'s one connection, twice, each answering its number."""
    database.acquire_timeout = 2
    await database.connect()
    try:
        async with asyncio.timeout(GUARD_SECONDS):
            for _ in range(2):
                assert await asyncio.gather(*(use(database, n) for n in range(8))) == list(range(8))
    finally:
        await database.disconnect()


async def test_a_failed_use_hands_its_turn_to_the_request_waiting(cms_database_url: str) -> None:
    """A use that fails gives its connection back to asyncpg's pool, where the request that waits
    for one gets it; and one that gives up waiting leaves the pool as it found it."""
    database = Database(cms_database_url, pool_size=1, read_pool_size=0, acquire_timeout=2)
    await database.connect()

    async def failing() -> None:
        async with database.transaction() as tx:
            await tx.execute("SELECT pg_sleep(0.1)")
            await tx.fetchval("SELECT 1 / 0")

    async def echo(n: int) -> int:
        async with database.transaction() as tx:
            return int(await tx.fetchval("SELECT $1::int", n))

    try:
        async with asyncio.timeout(GUARD_SECONDS):
            failed, served = await asyncio.gather(failing(), echo(1), return_exceptions=True)
            assert isinstance(failed, InvalidInputError)
            assert served == 1
            database.acquire_timeout = 0.1
            async with database.session():
                with pytest.raises(UnavailableError):
                    await echo(2)
            assert await echo(3) == 3
            assert await database.health() == "ok"
    finally:
        await database.disconnect()


async def test_a_connection_goes_back_to_asyncpgs_pool_now_and_then(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every `GIVE_BACK_EVERY`th use, so that asyncpg's pool checks its `max_queries` on it."""
    monkeypatch.setattr(held_pool, "GIVE_BACK_EVERY", 3)
    where = []
    for _ in range(6):
        await _backend(database)
        reads = database._reads
        assert reads is not None
        where.append(reads.pool.get_idle_size())  # 1: given back, 0: held by the process
    assert where.count(1) == 2
    assert where[2::3] == [1, 1]


async def test_a_connection_handed_to_a_request_that_gave_up_goes_on_to_the_next(
    cms_database_url: str,
) -> None:
    """With every connection taken, a request waits for the next use to end; one cancelled
    while it waits (or just as a connection reached it) loses nothing: the others are served in
    turn, and the pool has its one connection afterwards."""
    database = Database(cms_database_url, pool_size=1, read_pool_size=1, acquire_timeout=5)
    await database.connect()

    async def read(n: int) -> int:
        async with await database.read_session(None) as conn:
            return int(await conn.fetchval(SLOW_ECHO, n))

    try:
        async with asyncio.timeout(GUARD_SECONDS):
            for _ in range(3):
                tasks = [asyncio.create_task(read(n)) for n in range(8)]
                await asyncio.sleep(0.03)
                # Some wait for the connection, one may have just been handed it.
                for task in tasks[1:8:2]:
                    task.cancel()
                results = await asyncio.gather(*tasks, return_exceptions=True)
                served = [r for r in results if not isinstance(r, BaseException)]
                assert served == [n for n in range(8) if n % 2 == 0 or not tasks[n].cancelled()]
                assert all(
                    isinstance(r, asyncio.CancelledError) for r in results if r not in served
                )
            assert await read(9) == 9
            reads = database._reads
            assert reads is not None
            assert reads.pool.get_size() == 1
            assert not reads._waiters
    finally:
        await database.disconnect()


async def test_a_turn_at_asyncpgs_pool_is_not_taken_by_a_request_arriving_meanwhile(
    database: Database,
) -> None:
    """A use that gives its connection back to asyncpg's pool gives the request waiting first a
    turn to take it there: a request that arrives before it has waits its turn too. Taking that
    connection, it would leave the first waiting in asyncpg's queue, behind every request the
    process hands a connection to, until its timeout."""
    await _backend(database)
    held = database._reads
    assert held is not None
    first = await held.take_or_acquire(database._acquire)
    second = await held.take_or_acquire(database._acquire)  # the pool's two connections, taken
    served = []

    async def waiting() -> None:
        conn = await held.take_or_acquire(database._acquire)
        served.append("waiting")
        await asyncio.sleep(0.05)
        await held.put(conn, ok=True)

    task = asyncio.create_task(waiting())
    await asyncio.sleep(0.05)
    assert not served
    # A failed use: its connection goes back to asyncpg's pool, and a turn to the request
    # waiting. This one arrives (runs up to its first wait) before that one runs again.
    await held.put(first, ok=False)
    arriving = await held.take_or_acquire(database._acquire)
    served.append("arriving")
    try:
        assert served == ["waiting", "arriving"]
    finally:
        await held.put(arriving, ok=True)
        await held.put(second, ok=True)
        async with asyncio.timeout(GUARD_SECONDS):
            await task
    assert (held._turns, len(held._waiters), held.waiting) == (0, 0, 0)
    assert await _backend(database) > 0
