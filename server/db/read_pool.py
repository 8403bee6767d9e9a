"""The read pool's connections between reads: kept by the process, not given back to asyncpg.

A known caller's compiled read takes one connection of the read pool for one statement
(`Database.read_session`, `server/query/round_trip.py`). Taking it from asyncpg's pool and giving
it back costs more than the rest of the read's bookkeeping together: the acquisition's queue and
timeout timer, and at release a task (asyncpg shields the release), the holder's idle timer and
the queue again. Measured in process on one post read at a time, about 40 µs of the worker's
~320 µs a read.

So a read that ends well leaves its connection here (`keep`), and the next read takes it back
(`take`) without awaiting anything. Only when no read is waiting for asyncpg's pool: with every
connection taken, a read waits there, and the next connection to come free must go back to the
pool to reach it. A read that fails gives its connection back to asyncpg's pool, which waits out
a cancelled statement and closes a connection in doubt. Connections kept idle
longer than the idle timeout go back to asyncpg's pool, which closes them after its own idle
timeout: an idle process holds no read connection for more than about twice the timeout.

Everything here runs on the event loop without awaiting between a check and its use, so no lock
is needed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import asyncpg

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection = PoolConnectionProxy[Any]

log = logging.getLogger(__name__)


class ReadPool:
    """asyncpg's pool of read connections for one request role, and the connections this process
    keeps taken from it between reads (the most recently used last)."""

    def __init__(self, pool: asyncpg.Pool[Any], role: str | None, idle_timeout: float) -> None:
        self.pool = pool
        self.role = role
        self.idle_timeout = idle_timeout
        self._idle: list[tuple[Connection, float]] = []
        # Reads waiting for asyncpg's pool: a read that ends gives its connection to them.
        self.waiting = 0
        self._expiry: asyncio.TimerHandle | None = None
        self._closed = False
        self._giving_back: set[asyncio.Task[None]] = set()

    @property
    def idle(self) -> int:
        """Connections free for a read now: kept here, or idle in asyncpg's pool."""
        return len(self._idle) + self.pool.get_idle_size()

    def saturated(self, size: int) -> bool:
        """Every connection is taken by a read, and the pool may open no more."""
        return not self._idle and self.pool.get_idle_size() == 0 and self.pool.get_size() >= size

    def take(self) -> Connection | None:
        """The connection the last read left, if one waits here still open."""
        while self._idle:
            conn = self._idle.pop()[0]
            try:
                if not conn.is_closed():
                    return conn
            except asyncpg.InterfaceError:
                # Its server session ended while it waited here: asyncpg's pool took it back
                # then, and opens another in its place at the next acquisition.
                continue
            self._give_back(conn)
        return None

    def keep(self, conn: Connection) -> bool:
        """Keep `conn`, whose read ended well, for the next read; False when it must go back to
        asyncpg's pool instead: reads wait there for a connection, the pool is closing, or the
        read left a transaction open (a read is one statement, but were one left, asyncpg's pool
        would roll it back)."""
        if self.waiting or self._closed or conn.is_in_transaction():
            return False
        loop = asyncio.get_running_loop()
        self._idle.append((conn, loop.time()))
        if self._expiry is None:
            self._expiry = loop.call_at(loop.time() + self.idle_timeout, self._expire)
        return True

    async def give_back(self, conn: Connection) -> None:
        """Give `conn` back to asyncpg's pool (after a read that failed, or to close it)."""
        await self.pool.release(conn)

    async def acquire(self, acquire: Callable[[asyncpg.Pool[Any]], Awaitable[Any]]) -> Any:
        """A connection from asyncpg's pool, by `acquire` (with the database's timeout), counted
        among the reads waiting while it comes."""
        self.waiting += 1
        try:
            return await acquire(self.pool)
        finally:
            self.waiting -= 1

    async def drain(self) -> None:
        """Give every kept connection back to asyncpg's pool (whose connections may have been
        expired), and wait for those on their way back."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        kept, self._idle = self._idle, []
        for conn, _ in kept:
            await self.give_back(conn)
        if self._giving_back:
            await asyncio.gather(*self._giving_back, return_exceptions=True)

    async def close(self) -> None:
        """Close the pool: first give back what is kept here, and what in-flight reads leave."""
        self._closed = True
        await self.drain()
        await self.pool.close()

    def _expire(self) -> None:
        """Give back the connections kept idle longer than the idle timeout (the oldest first in
        the list), and come back when the next one will be."""
        self._expiry = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        stale = 0
        while stale < len(self._idle) and now - self._idle[stale][1] >= self.idle_timeout:
            stale += 1
        expired, self._idle = self._idle[:stale], self._idle[stale:]
        for conn, _ in expired:
            self._give_back(conn)
        if self._idle:
            self._expiry = loop.call_at(self._idle[0][1] + self.idle_timeout, self._expire)

    def _give_back(self, conn: Connection) -> None:
        task = asyncio.get_running_loop().create_task(self.give_back(conn))
        self._giving_back.add(task)
        task.add_done_callback(self._given_back)

    def _given_back(self, task: asyncio.Task[None]) -> None:
        self._giving_back.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("could not give a read connection back: %s", task.exception())
