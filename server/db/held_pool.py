"""A pool's connections between uses: held by the process, not given back to asyncpg each time.

A request takes a connection for its unit of work (a transaction of the main pool) or its one
statement (a compiled read, on the read pool: `Database.read_session`). Taking it from asyncpg's
pool and giving it back costs more than the rest of a read's bookkeeping together: the
acquisition's queue and timeout timer, and at release a task (asyncpg shields the release), the
holder's idle timer and the queue again. Measured in process on one post read at a time, the
worker's CPU per read fell from about 258 µs to 182 once the read pool kept its connections.

So a use that ends well leaves its connection here (`put`), and the next takes it back (`take_or_acquire`)
without awaiting anything. With every connection taken, a request waits here, in turn, and the
use that ends next hands its connection straight to it: under load that is most requests (a
worker serves more requests at once than it has connections), and giving each connection back
to asyncpg's pool only for the waiting request to take it out again took about 7% of the
worker's samples under reads of one post (the release's task, the pool's queue, its timers), the
hand-over less than half of that per request. A use
that fails gives its connection back to asyncpg's pool, which waits out a cancelled statement,
rolls back a transaction left open and closes a connection in doubt, and the request waiting
first takes one there. Connections held idle longer than their idle timeout go back to
asyncpg's pool, which closes them after its own: the database gives each half of
`DB_IDLE_TIMEOUT`, so an idle process holds no connection longer.

Everything here runs on the event loop without awaiting between a check and its use, so no lock
is needed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import asyncpg

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    # What asyncpg's pool hands out; callers know it by their own connection class.
    Connection = PoolConnectionProxy[Any] | Any

log = logging.getLogger(__name__)

# How a connection is waited for, given how to get it (`HeldPool.take_or_acquire`): the database's
# timeout and errors around it.
Acquire = Callable[[Callable[[], Awaitable["Connection"]]], Awaitable["Connection"]]

# Every so many uses a connection goes back to asyncpg's pool all the same, which checks there
# whether it has run its `max_queries` (then closes it and opens another): a connection held
# while busy without a pause would otherwise never be replaced.
GIVE_BACK_EVERY = 1000


class HeldPool:
    """asyncpg's pool, and the connections this process holds taken from it between uses (the
    most recently used last)."""

    def __init__(self, pool: asyncpg.Pool[Any], idle_timeout: float) -> None:
        self.pool = pool
        self.idle_timeout = idle_timeout
        self._idle: list[tuple[Connection, float]] = []
        # Requests waiting for asyncpg's pool: a use that ends gives its connection to them.
        self.waiting = 0
        # Requests waiting here, first come first: a use that ends hands its connection to the
        # first (None: a turn to take one from asyncpg's pool, where a failed use gave its own).
        self._waiters: deque[asyncio.Future[Connection | None]] = deque()
        # Of those, the ones given a turn at asyncpg's pool that have not taken their connection
        # there yet: until they have, a new request waits here too, or it could take the
        # connection the turn was given for.
        self._turns = 0
        self._expiry: asyncio.TimerHandle | None = None
        self._closed = False
        self._giving_back: set[asyncio.Task[None]] = set()
        self._uses = 0

    @property
    def idle(self) -> int:
        """Connections free now: held here, or idle in asyncpg's pool."""
        return len(self._idle) + self.pool.get_idle_size()

    @property
    def saturated(self) -> bool:
        """Every connection is in use, and the pool may open no more."""
        return (
            not self._idle
            and self.pool.get_idle_size() == 0
            and self.pool.get_size() >= self.pool.get_max_size()
        )

    def _take(self) -> Connection | None:
        """The connection the last use left, if one waits here still open."""
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

    def _reusable(self, conn: Connection) -> bool:
        """Whether `conn`, whose use ended well, may serve the next use; False when it must go back
        to asyncpg's pool instead: the pool is closing, it is the `GIVE_BACK_EVERY`th use, or the
        use left the connection closed or in a transaction (asyncpg's pool rolls that back)."""
        self._uses += 1
        if self._closed or self._uses % GIVE_BACK_EVERY == 0:
            return False
        try:
            return not (conn.is_closed() or conn.is_in_transaction())
        except asyncpg.InterfaceError:
            # Its server session ended during the use: asyncpg's pool took it back then.
            return False

    def _pass_on(self, conn: Connection) -> bool:
        """Hand the reusable `conn` to the first request waiting here, else hold it for the next
        use; False when it must go back to asyncpg's pool, where requests wait for one: they came
        first (while the pool opened its connections, or with a turn), and a connection handed
        on here would leave them waiting there as long as anyone waits here."""
        if self.waiting:
            return False
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        loop = asyncio.get_running_loop()
        self._idle.append((conn, loop.time()))
        if self._expiry is None:
            self._expiry = loop.call_at(loop.time() + self.idle_timeout, self._expire)
        return True

    def _next_turn(self) -> None:
        """A connection went back to asyncpg's pool: the first request waiting here takes one
        there."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._turns += 1
                return

    async def give_back(self, conn: Connection) -> None:
        """Give `conn` back to asyncpg's pool (after a use that failed, or to close it); the
        request waiting here first then takes a turn there."""
        try:
            await self.pool.release(conn)
        finally:
            self._next_turn()

    async def take_or_acquire(self, acquire: Acquire) -> Connection:
        """The connection the last use left, else the one the next use to end hands over when
        every connection is taken, else one from asyncpg's pool; `acquire` waits for it (with the
        database's timeout)."""
        conn = self._take()
        if conn is not None:
            return conn
        if self._waiters or self._turns or self.saturated:
            return await acquire(self._handed)
        return await acquire(self._from_pool)

    async def _from_pool(self) -> Connection:
        """A connection from asyncpg's pool, counted among the requests waiting there."""
        self.waiting += 1
        try:
            return await self.pool.acquire()
        finally:
            self.waiting -= 1

    async def _handed(self) -> Connection:
        """The connection a use that ends hands over, in turn (or one from asyncpg's pool when
        that use gave its own back there)."""
        waiter: asyncio.Future[Connection | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            conn = await waiter
        except BaseException:
            # Cancelled or timed out, perhaps just after a connection (or a turn) was handed
            # over: on to the next request, so that none is lost.
            if waiter.done() and not waiter.cancelled():
                handed = waiter.result()
                if handed is None:
                    self._turns -= 1
                    self._next_turn()
                elif not self._pass_on(handed):
                    self._give_back(handed)
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise
        if conn is None:
            try:
                conn = await self._from_pool()
            except BaseException:
                # The connection the turn was for waits in asyncpg's pool: the next takes it.
                self._turns -= 1
                self._next_turn()
                raise
            self._turns -= 1
        return conn

    async def put(self, conn: Connection, *, ok: bool) -> None:
        """Done with `conn`: handed to the request waiting first, or held for the next use, when
        its use ended well (`ok`) and it may serve again, else given back to asyncpg's pool."""
        if ok and self._reusable(conn) and self._pass_on(conn):
            return
        await self.give_back(conn)

    async def drain(self) -> None:
        """Give every held connection back to asyncpg's pool (whose connections may have been
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
        """Close the pool: first give back what is held here, and what uses in flight leave."""
        self._closed = True
        # Whoever waits here takes a turn at asyncpg's pool, which refuses them as it closes.
        while self._waiters:
            self._next_turn()
        await self.drain()
        await self.pool.close()

    def _expire(self) -> None:
        """Give back the connections held idle longer than the idle timeout (the oldest first in
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
            log.warning("could not give a connection back to the pool: %s", task.exception())
