"""Read replicas: which server a published read may go to, decided without a round trip.

Each replica (`DATABASE_REPLICA_URLS`) has a small pool of its own. A background task polls, every
`REPLICA_CHECK_MS`, the primary's WAL position and each replica's replay position
(`pg_last_wal_replay_lsn()`), on connections of its own, so a request's routing is a look at
the last poll: no extra round trip. A replica is

- `down` when it does not answer, is not a standby (a promoted or misconfigured server), or a
  request on it just lost its connection (until the next poll finds it again);
- `lagging` when it still misses WAL the primary had written more than `REPLICA_MAX_LAG_MS` ago
  (measured against the primary positions polled before: an idle primary makes no lag);
- `ok` otherwise, and only then may it serve.

Requests carrying a consistency token (`X-Consistency-Token`: the WAL position a mutation's commit
reached, `extensions.consistencyToken` of its response) go to a replica only once the last poll
saw it replay that position, else to the primary. When unsure, the primary: the replicas only
ever take load off it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import asyncpg

from server.config import PoolMode
from server.db.consistency import parse_lsn
from server.db.pool import HEALTH_TIMEOUT_SECONDS, Database
from server.errors import UnavailableError

log = logging.getLogger(__name__)

ReplicaStatus = Literal["ok", "lagging", "down"]

# The primary's positions kept for measuring lag: at least this long, and at least the lag limit.
_HISTORY_SECONDS = 10.0


@dataclass
class Replica:
    """One replica: its pool, and what the last poll found."""

    url: str
    database: Database
    status: ReplicaStatus = "down"
    replay_lsn: int | None = None
    lag_seconds: float | None = None
    reason: str = "not checked yet"
    _monitor: asyncpg.Connection[Any] | None = None

    @property
    def name(self) -> str:
        """The URL without credentials, for logs and /healthz."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{host}{port}{parts.path}"

    def report(self) -> dict[str, Any]:
        report: dict[str, Any] = {"name": self.name, "status": self.status}
        if self.lag_seconds is not None:
            report["lagMs"] = round(self.lag_seconds * 1000)
        if self.status != "ok":
            report["reason"] = self.reason
        return report


class Replicas:
    """The replicas of one server process, and the task that keeps their state.

    Args:
        urls: the replicas' URLs.
        primary_url: PostgreSQL itself (not a pooler): where the WAL position is polled.
        max_lag: seconds of lag beyond which a replica is skipped.
        check_interval: seconds between polls.
    """

    def __init__(
        self,
        urls: tuple[str, ...],
        *,
        primary_url: str,
        max_lag: float = 2.0,
        check_interval: float = 0.5,
        pool_mode: PoolMode = "session",
        pool_size: int = 10,
        read_pool_size: int | None = None,
        idle_timeout: float = 20.0,
        acquire_timeout: float = 5.0,
    ) -> None:
        self.primary_url = primary_url
        self.max_lag = max_lag
        self.check_interval = check_interval
        self.replicas = [
            Replica(
                url,
                Database(
                    url,
                    pool_mode=pool_mode,
                    pool_size=pool_size,
                    read_pool_size=read_pool_size,
                    idle_timeout=idle_timeout,
                    acquire_timeout=acquire_timeout,
                ),
            )
            for url in urls
        ]
        self._by_database = {id(replica.database): replica for replica in self.replicas}
        self._turns = itertools.count()
        # (monotonic time, primary WAL position) of recent polls, oldest first.
        self._history: deque[tuple[float, int]] = deque()
        self._primary: asyncpg.Connection[Any] | None = None
        # Whether the last check reached the primary (its loss is logged once, not every check).
        self._primary_reached = True
        self._task: asyncio.Task[None] | None = None

    def __bool__(self) -> bool:
        return bool(self.replicas)

    async def start(self) -> None:
        """Poll once (so routing starts informed), then keep polling in the background."""
        if not self.replicas or self._task is not None:
            return
        await self.check()
        self._task = asyncio.create_task(self._run(), name="replica checks")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for replica in self.replicas:
            await _close(replica._monitor)
            replica._monitor = None
            await replica.database.disconnect()
        await _close(self._primary)
        self._primary = None

    def for_read(self, token: int | None = None) -> Database | None:
        """A replica's pool for a published read (taking turns), or None: the primary's.

        Args:
            token: the WAL position the caller must see (`X-Consistency-Token`), if any.
        """
        eligible = [
            replica
            for replica in self.replicas
            if replica.status == "ok"
            and (token is None or (replica.replay_lsn is not None and replica.replay_lsn >= token))
        ]
        if not eligible:
            return None
        return eligible[next(self._turns) % len(eligible)].database

    def failed(self, database: Database, exc: BaseException) -> None:
        """A read on `database` failed: when it lost its server, skip it until the next poll
        finds it again. Other failures (a refused or unknown credential the replica has not
        replayed yet, a conflict with recovery) leave it in service: the primary serves that one."""
        replica = self._by_database.get(id(database))
        if replica is None:
            return
        if isinstance(exc, UnavailableError):
            self._set(replica, "down", f"a request failed: {exc}")
        else:
            log.info("replica %s could not serve a read (%s); the primary did", replica.name, exc)

    def report(self) -> list[dict[str, Any]]:
        return [replica.report() for replica in self.replicas]

    async def check(self) -> None:
        """Poll the primary's WAL position and every replica's replay position, once."""
        now = time.monotonic()
        primary_lsn = await self._primary_position()
        if primary_lsn is not None:
            self._history.append((now, primary_lsn))
        keep = max(_HISTORY_SECONDS, self.max_lag * 2)
        while self._history and self._history[0][0] < now - keep:
            self._history.popleft()
        await asyncio.gather(*(self._check(replica, now) for replica in self.replicas))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.check_interval)
            try:
                await self.check()
            except Exception:
                log.exception("checking the read replicas failed")

    async def _primary_position(self) -> int | None:
        try:
            if self._primary is None or self._primary.is_closed():
                self._primary = await asyncpg.connect(
                    self.primary_url,
                    timeout=HEALTH_TIMEOUT_SECONDS,
                    server_settings={"application_name": "content-api replica check"},
                )
            text = await self._primary.fetchval(
                "select pg_current_wal_lsn()::text", timeout=HEALTH_TIMEOUT_SECONDS
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # Without the primary's position no lag can be measured: the replicas keep their state.
            if self._primary_reached:
                log.warning("cannot read the primary's WAL position: %s", exc)
            self._primary_reached = False
            await _close(self._primary)
            self._primary = None
            return None
        if not self._primary_reached:
            log.info("the primary's WAL position is read again")
            self._primary_reached = True
        return parse_lsn(text)

    async def _check(self, replica: Replica, now: float) -> None:
        try:
            if replica._monitor is None or replica._monitor.is_closed():
                replica._monitor = await asyncpg.connect(
                    replica.url,
                    timeout=HEALTH_TIMEOUT_SECONDS,
                    server_settings={"application_name": "content-api replica check"},
                    statement_cache_size=0 if replica.database.transaction_pooled else 100,
                )
            row = await replica._monitor.fetchrow(
                "select pg_is_in_recovery() as standby, pg_last_wal_replay_lsn()::text as replayed",
                timeout=HEALTH_TIMEOUT_SECONDS,
            )
            if not replica.database.connected:
                # Only once the server answered: opening a pool has no timeout of its own.
                async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS * 2):
                    await replica.database.connect()
        except (
            OSError,
            TimeoutError,
            UnavailableError,
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
        ) as exc:
            await _close(replica._monitor)
            replica._monitor = None
            replica.replay_lsn = replica.lag_seconds = None
            self._set(replica, "down", f"does not answer: {exc}")
            return
        assert row is not None
        if not row["standby"] or row["replayed"] is None:
            replica.replay_lsn = replica.lag_seconds = None
            self._set(replica, "down", "not a standby (promoted, or not a replica)")
            return
        replica.replay_lsn = parse_lsn(row["replayed"])
        replica.lag_seconds = self._lag(replica.replay_lsn, now)
        if replica.lag_seconds is None:
            self._set(replica, "lagging", "behind the oldest primary position checked")
        elif replica.lag_seconds > self.max_lag:
            self._set(replica, "lagging", f"{replica.lag_seconds * 1000:.0f} ms behind")
        else:
            self._set(replica, "ok", "")

    def _lag(self, replayed: int, now: float) -> float | None:
        """How long ago the primary had written the oldest WAL the replica has not replayed.

        None when the replica is behind even the oldest position kept: how long it has been
        missing that WAL is unknown (a replica found far behind at start-up, or stuck for
        longer than the history), so it is not trusted until it catches up with a checked
        position. Without any position (the primary unreachable), nothing says it lags: it goes on
        serving what it has.
        """
        for index, (polled_at, position) in enumerate(self._history):
            if position > replayed:
                return now - polled_at if index > 0 else None
        return 0.0

    def _set(self, replica: Replica, status: ReplicaStatus, reason: str) -> None:
        if status != replica.status:
            if status == "ok":
                log.info("replica %s is in service", replica.name)
            else:
                log.warning("replica %s is %s (%s): skipped", replica.name, status, reason)
        replica.status, replica.reason = status, reason


async def _close(connection: asyncpg.Connection[Any] | None) -> None:
    if connection is not None and not connection.is_closed():
        # Not a polite close: it may be a connection that just timed out.
        connection.terminate()
