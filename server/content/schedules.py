"""Schedules in SQL: a publish or an unpublish of one document at a time, and what became of it.

A schedule is a row of `cms_document_schedules`, under the same Row-Level Security as the documents:
an organization reads its own schedules and its descendants', and writes only its own. Its status
moves once, from `pending` to `succeeded`, `failed` (with the error's code and message) or
`cancelled`. The runner (`server/engine/scheduler.py`) claims due rows with `FOR UPDATE SKIP LOCKED`, so
processes never run the same schedule twice, and performs each in the transaction that claimed it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from server.content.documents import DocumentRow
from server.db.pool import Tx
from server.errors import ConflictError, ForbiddenError, NotFoundError

ACTIONS = ("publish", "unpublish")
STATUSES = ("pending", "succeeded", "failed", "cancelled")

SCHEDULE_COLUMNS = (
    "id, organization_id, document_id, document_type, action, run_at, revision, status, attempts,"
    " retry_at, error_code, error_message, created_by, cancelled_by, created_at, updated_at,"
    " completed_at"
)

# The earliest due schedule that no other process holds. A document's schedules run in the order
# of their times: one whose document has an earlier pending schedule (being run by another
# process, or waiting to be retried) waits for it, so a publish at 9 and an unpublish at 17 never
# swap places when both are overdue. Rows the runner cannot see (RLS) do not exist for it: the
# claim passes the policies (`app.override_access`) in its own statement.
_CLAIM = f"""
SELECT {SCHEDULE_COLUMNS} FROM cms_document_schedules s
 WHERE s.status = 'pending' AND coalesce(s.retry_at, s.run_at) <= coalesce($1, now())
   AND NOT EXISTS (
       SELECT 1 FROM cms_document_schedules e
        WHERE e.document_id = s.document_id AND e.status = 'pending'
          AND (e.run_at, e.created_at, e.id) < (s.run_at, s.created_at, s.id))
 ORDER BY coalesce(s.retry_at, s.run_at), s.id
 LIMIT 1
 FOR UPDATE OF s SKIP LOCKED
"""

# A listing's filters: $1 a document, $2 a type, $3 a status; each NULL for any.
_FILTER = (
    "($1::uuid IS NULL OR document_id = $1) AND ($2::text IS NULL OR document_type = $2)"
    " AND ($3::text IS NULL OR status = $3)"
)


@dataclass(frozen=True)
class ScheduleRow:
    id: uuid.UUID
    organization_id: uuid.UUID
    document_id: uuid.UUID
    document_type: str
    action: str  # publish or unpublish
    run_at: datetime
    revision: int | None  # the draft revision a publish pins
    status: str
    attempts: int
    retry_at: datetime | None
    error_code: str | None
    error_message: str | None
    created_by: str | None
    cancelled_by: str | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None

    @classmethod
    def from_record(cls, row: asyncpg.Record) -> ScheduleRow:
        return cls(*(row[name] for name in _FIELDS))


_FIELDS = tuple(name.strip() for name in SCHEDULE_COLUMNS.split(","))


class ScheduleStore:
    """Schedule rows, on the caller's transaction."""

    async def create_schedule(
        self,
        tx: Tx,
        *,
        document: DocumentRow,
        action: str,
        run_at: datetime,
        revision: int | None,
        created_by: str | None,
    ) -> ScheduleRow:
        """A pending schedule for a document of the current organization."""
        row = await tx.fetchrow(
            f"INSERT INTO cms_document_schedules"
            f" (organization_id, document_id, document_type, action, run_at, revision, created_by)"
            f" VALUES ((select cms_current_org()), $1, $2, $3, $4, $5, $6)"
            f" RETURNING {SCHEDULE_COLUMNS}",
            document.id,
            document.type,
            action,
            run_at,
            revision,
            created_by,
        )
        assert row is not None
        return ScheduleRow.from_record(row)

    async def list_schedules(
        self,
        tx: Tx,
        *,
        document_id: uuid.UUID | None = None,
        document_type: str | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[ScheduleRow], int]:
        """Readable schedules, soonest first, and how many match in all."""
        rows = await tx.fetch(
            f"SELECT {SCHEDULE_COLUMNS}, count(*) OVER () AS total FROM cms_document_schedules"
            f" WHERE {_FILTER} ORDER BY run_at, created_at, id LIMIT $4 OFFSET $5",
            document_id,
            document_type,
            status,
            limit,
            offset,
        )
        total: int = rows[0]["total"] if rows else 0
        if not rows and offset > 0:
            total = await tx.fetchval(
                f"SELECT count(*) FROM cms_document_schedules WHERE {_FILTER}",
                document_id,
                document_type,
                status,
            )
        return [ScheduleRow.from_record(row) for row in rows], total

    async def find_schedule(self, tx: Tx, *, id: uuid.UUID) -> ScheduleRow | None:
        row = await tx.fetchrow(
            f"SELECT {SCHEDULE_COLUMNS} FROM cms_document_schedules WHERE id = $1", id
        )
        return ScheduleRow.from_record(row) if row is not None else None

    async def cancel_schedule(
        self, tx: Tx, *, id: uuid.UUID, cancelled_by: str | None
    ) -> ScheduleRow:
        """Cancel a pending schedule of the current organization.

        A schedule the runner is performing is locked: this waits for it (up to the lock timeout),
        then finds it no longer pending.

        Raises:
            NotFoundError: no readable schedule has this id.
            ForbiddenError: it belongs to another (descendant) organization.
            ConflictError: it is no longer pending (it ran, failed or was cancelled).
        """
        row = await tx.fetchrow(
            f"UPDATE cms_document_schedules SET status = 'cancelled', cancelled_by = $2,"
            f" updated_at = now(), completed_at = now()"
            f" WHERE id = $1 AND status = 'pending' RETURNING {SCHEDULE_COLUMNS}",
            id,
            cancelled_by,
        )
        if row is not None:
            return ScheduleRow.from_record(row)
        found = await tx.fetchrow(
            "SELECT status, organization_id = (select cms_current_org()) AS own"
            " FROM cms_document_schedules WHERE id = $1",
            id,
        )
        if found is None:
            raise NotFoundError(f"schedule {id} not found")
        if not found["own"]:
            raise ForbiddenError(
                f"schedule {id} belongs to another organization; it can only be cancelled there"
            )
        raise ConflictError(
            f"schedule {id} is {found['status']}: only a pending one can be cancelled"
        )

    async def claim_due_schedule(self, tx: Tx, *, now: datetime | None) -> ScheduleRow | None:
        """Lock the next due schedule of any organization, skipping those other processes hold.

        `now` is the runner's clock; None takes the database's. The claim passes Row-Level
        Security for its own statement only: the override is off again before it returns.
        """
        await tx.execute("select set_config('app.override_access', 'true', true)")
        row = await tx.fetchrow(_CLAIM, now)
        await tx.execute("select set_config('app.override_access', '', true)")
        return ScheduleRow.from_record(row) if row is not None else None

    async def finish_schedule(
        self,
        tx: Tx,
        *,
        id: uuid.UUID,
        status: str,
        error_code: str | None = None,
        error_message: str | None = None,
        retry_in_seconds: float | None = None,
        now: datetime | None = None,
    ) -> ScheduleRow:
        """Record a run: its new status and error, one more attempt, and when to retry (pending
        only). Runs in the schedule's organization, under Row-Level Security."""
        row = await tx.fetchrow(
            f"UPDATE cms_document_schedules SET status = $2::text, error_code = $3, error_message = $4,"
            f" attempts = attempts + 1, updated_at = now(),"
            f" retry_at = coalesce($6, now()) + make_interval(secs => $5),"
            f" completed_at = CASE WHEN $2::text = 'pending' THEN NULL ELSE now() END"
            f" WHERE id = $1 RETURNING {SCHEDULE_COLUMNS}",
            id,
            status,
            error_code,
            error_message,
            retry_in_seconds,
            now,
        )
        assert row is not None  # locked by the claim, and of the organization we entered
        return ScheduleRow.from_record(row)
