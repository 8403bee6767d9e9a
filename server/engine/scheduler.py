"""The runner of scheduled publishes and unpublishes: a background task of each server process.

Each schedule runs in one transaction: claim it (`FOR UPDATE SKIP LOCKED`, so processes never run
the same one, and a process's running schedules are invisible to the others' claims), enter its
organization (the request role: Row-Level Security applies to the publish as to a request), run
the local API's own `publish` or `unpublish` under a savepoint, and record the outcome. A process
that dies on the way commits nothing: the schedule is pending again and the next claim takes it.

A failure the document causes (a content rule, the document deleted, its draft changed since a
publish was scheduled, its type removed) is final: `failed`, with the error's code and message.
One the moment causes (a lock wait or statement timeout, an unexpected error) is retried later, at
most `MAX_ATTEMPTS` times in all, then `failed` as well: no schedule is retried forever.

The publish acts as its scheduler (the version's `created_by`) with just the capability it needs:
capabilities were checked when it was scheduled, and cancelling is how to take it back.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from server.content.schedules import ScheduleRow
from server.db.pool import Tx
from server.db.tenancy import enter_org
from server.engine.adapter import Schedules, Transactions
from server.engine.context import Context
from server.errors import CMSError, ConflictError, TimedOutError, UnavailableError
from server.waiting import finish, set_within

if TYPE_CHECKING:
    from server.engine.local_api import LocalAPI

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
# Seconds before the first retry; each later one waits twice as long.
RETRY_DELAY_SECONDS = 30.0
# The most schedules one run performs, so a backlog never keeps a run from ending.
RUN_LIMIT = 100
# How long stopping waits for a schedule in progress before cancelling it (which rolls it back).
STOP_GRACE_SECONDS = 10.0

_SAVEPOINT = "cms_schedule"
_TRANSIENT = (TimedOutError, UnavailableError)


class SchedulerAdapter(Schedules, Transactions, Protocol):
    """What the runner needs: due schedules, and transactions it enters organizations in."""


class Scheduler:
    """Runs due schedules: `run_due()` on demand, or every `poll_interval` seconds once started."""

    def __init__(self, api: LocalAPI, *, poll_interval: float = 10.0) -> None:
        self.api = api
        self.adapter: SchedulerAdapter = api.adapter
        self.poll_interval = poll_interval
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def run_due(self, *, now: datetime | None = None) -> list[ScheduleRow]:
        """Run every schedule due at `now` (None: the database's clock), one transaction each.

        Returns:
            The schedules run, as recorded after their run (retried ones are still pending).
        """
        ran: list[ScheduleRow] = []
        while len(ran) < RUN_LIMIT:
            row = await self.run_next(now=now)
            if row is None:
                break
            ran.append(row)
        return ran

    async def run_next(self, *, now: datetime | None = None) -> ScheduleRow | None:
        """Claim and run the next due schedule; None when none is due (or all are taken)."""
        adapter = self.adapter
        async with adapter.database.transaction() as tx:
            schedule = await adapter.claim_due_schedule(tx, now=now)
            if schedule is None:
                return None
            await enter_org(tx, adapter.tenancy, schedule.organization_id)
            await tx.execute(f"SAVEPOINT {_SAVEPOINT}")
            try:
                await self._perform(
                    Context(
                        tx=tx,
                        organization_id=schedule.organization_id,
                        registry=self.api.model.registry,
                        user_id=schedule.created_by,
                        capabilities=frozenset({"document.read", f"document.{schedule.action}"}),
                    ),
                    schedule,
                )
            except Exception as exc:
                # Undo whatever the publish wrote; the role and organization were set before.
                await tx.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
                return await self._failed(tx, schedule, exc, now)
            return await adapter.finish_schedule(tx, id=schedule.id, status="succeeded")

    async def _perform(self, ctx: Context, schedule: ScheduleRow) -> None:
        collection = self.api.collection(schedule.document_type, ctx.registry)
        if schedule.action == "publish":
            # The same path as a manual publish, with the revision pinned when it was scheduled.
            try:
                await collection.publish(
                    ctx, schedule.document_id, expected_revision=schedule.revision
                )
            except ConflictError as exc:
                if "current_revision" not in exc.details:
                    raise
                raise ConflictError(
                    f"the draft changed after the publish was scheduled (revision"
                    f" {schedule.revision}, now {exc.details['current_revision']}); nothing was"
                    " published: publish it or schedule it again",
                    **exc.details,
                ) from exc
        else:
            await collection.unpublish(ctx, schedule.document_id)

    async def _failed(
        self, tx: Tx, schedule: ScheduleRow, exc: Exception, now: datetime | None
    ) -> ScheduleRow:
        adapter = self.adapter
        transient = isinstance(exc, _TRANSIENT) or not isinstance(exc, CMSError)
        if isinstance(exc, CMSError):
            code, message = exc.code, exc.message
        else:
            log.exception(
                "schedule %s (%s of %s) failed",
                schedule.id,
                schedule.action,
                schedule.document_id,
                exc_info=exc,
            )
            code, message = "INTERNAL_SERVER_ERROR", "an unexpected error (see the server log)"
        attempt = schedule.attempts + 1
        if transient and attempt < MAX_ATTEMPTS:
            delay = RETRY_DELAY_SECONDS * 2 ** (attempt - 1)
            log.warning(
                "schedule %s: %s; attempt %d of %d, retrying in %g s",
                schedule.id,
                message,
                attempt,
                MAX_ATTEMPTS,
                delay,
            )
            return await adapter.finish_schedule(
                tx,
                id=schedule.id,
                status="pending",
                error_code=code,
                error_message=message,
                retry_in_seconds=delay,
                now=now,
            )
        log.info("schedule %s failed: %s %s", schedule.id, code, message)
        return await adapter.finish_schedule(
            tx, id=schedule.id, status="failed", error_code=code, error_message=message
        )

    # The background task

    def start(self) -> None:
        """Run due schedules every `poll_interval` seconds until `stop()`."""
        if self._task is None:
            self._stopping = asyncio.Event()
            self._task = asyncio.create_task(self._loop(), name="scheduled publishing")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        await finish(task, STOP_GRACE_SECONDS)

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_due()
            except CMSError as exc:  # the database is down or busy: the next poll tries again
                log.warning("scheduled publishing: %s", exc.message)
            except Exception:
                log.exception("scheduled publishing: a run failed")
            await set_within(self._stopping, self.poll_interval)
