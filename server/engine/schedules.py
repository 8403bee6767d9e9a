"""Scheduled publishing as Python calls: `local_api.schedules`, and the collection methods
`schedule_publish`, `schedule_unpublish`, `get_scheduled` and `cancel_scheduled` built on it.

A scheduled publish pins the draft revision current when it is scheduled: at its time it publishes
that revision or nothing. A draft changed since fails the schedule (`CONFLICT`, recorded on it)
rather than publishing words nobody reviewed for that moment; to publish the newer draft, cancel
and schedule again. Its content rules are checked when it is scheduled (so a draft that could not
be published is refused at once) and again when it runs, as every publish checks them.

Capabilities: `document.schedule` and `document.publish` (or `document.unpublish`) to schedule,
`document.schedule` to cancel, `document.read` and the draft perspective to list (schedules are
about drafts, so published-only keys see none). Each is checked before the document is looked up,
so a refusal never says whether it exists.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from server.content.documents import DocumentRow, check_revision
from server.content.schedules import STATUSES, ScheduleRow
from server.content.validation import validate_document
from server.engine.adapter import Documents, Schedules
from server.engine.context import Context, document_type, parse_id
from server.errors import InvalidInputError, NotFoundError
from server.model.pages import Page
from server.model.reading import check_page

# With the row type its calls return, for its callers.
__all__ = ["ScheduleRow", "SchedulesAPI", "check_status", "check_time"]


def check_time(value: object) -> datetime:
    """A schedule's time: a datetime with its offset (a naive one would mean the server's zone)."""
    if not isinstance(value, datetime):
        raise InvalidInputError("at must be a date and time", path="at")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(
            "at must carry a time zone offset (2027-01-01T09:00:00Z or +01:00)", path="at"
        )
    return value


def check_status(value: object) -> str | None:
    if value is None:
        return None
    if value not in STATUSES:
        raise InvalidInputError(
            f"status must be one of {', '.join(STATUSES)} (got {value!r})", path="status"
        )
    return str(value)


class ScheduleAdapter(Schedules, Documents, Protocol):
    """What the schedule service needs: schedules, and the documents they act on."""


class SchedulesAPI:
    """Schedules of the caller's documents: create, list, cancel. The runner is elsewhere."""

    def __init__(self, adapter: ScheduleAdapter, *, max_page_size: int) -> None:
        self.adapter = adapter
        self.max_page_size = max_page_size

    async def publish(
        self,
        ctx: Context,
        id: str | uuid.UUID,
        at: datetime,
        *,
        expected_revision: int | None = None,
        type_name: str | None = None,
    ) -> ScheduleRow:
        """Publish the document's current draft revision at `at` (now or past: at the next run).

        `expected_revision`, when given, must be the draft's revision now (`CONFLICT` otherwise):
        the editor schedules what they saw.
        """
        ctx.require("document.schedule")
        ctx.require("document.publish")
        at = check_time(at)
        document = await self._document(ctx, id, type_name)
        check_revision(document, expected_revision)
        validate_document(ctx.registry, document.type, document.draft_data or {}, publish=True)
        return await self.adapter.create_schedule(
            ctx.tx,
            document=document,
            action="publish",
            run_at=at,
            revision=document.revision,
            created_by=ctx.user_id,
        )

    async def unpublish(
        self, ctx: Context, id: str | uuid.UUID, at: datetime, *, type_name: str | None = None
    ) -> ScheduleRow:
        """Unpublish the document at `at`, whatever its draft is then."""
        ctx.require("document.schedule")
        ctx.require("document.unpublish")
        at = check_time(at)
        document = await self._document(ctx, id, type_name)
        return await self.adapter.create_schedule(
            ctx.tx,
            document=document,
            action="unpublish",
            run_at=at,
            revision=None,
            created_by=ctx.user_id,
        )

    async def find(
        self,
        ctx: Context,
        *,
        document_id: str | uuid.UUID | None = None,
        type_name: str | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[ScheduleRow]:
        """The readable schedules (this organization's and its descendants'), soonest first."""
        ctx.require("document.read")
        ctx.perspective("draft")  # schedules are about drafts
        limit, offset = check_page(limit, offset, max_limit=self.max_page_size)
        rows, total = await self.adapter.list_schedules(
            ctx.tx,
            document_id=parse_id(document_id, "documentId") if document_id is not None else None,
            document_type=type_name,
            status=check_status(status),
            limit=limit,
            offset=offset,
        )
        return Page.counted(rows, total=total, limit=limit, offset=offset)

    async def cancel(
        self, ctx: Context, schedule_id: str | uuid.UUID, *, type_name: str | None = None
    ) -> ScheduleRow:
        """Cancel a pending schedule of this organization (`CONFLICT` once it ran or failed)."""
        ctx.require("document.schedule")
        id = parse_id(schedule_id)
        if type_name is not None:
            found = await self.adapter.find_schedule(ctx.tx, id=id)
            if found is None or found.document_type != type_name:
                raise NotFoundError(f"schedule {schedule_id} not found")
        return await self.adapter.cancel_schedule(ctx.tx, id=id, cancelled_by=ctx.user_id)

    async def _document(
        self, ctx: Context, id: str | uuid.UUID, type_name: str | None
    ) -> DocumentRow:
        """The document, locked, of the current organization and a registered type."""
        document = await self.adapter.lock_document(ctx.tx, id=parse_id(id))
        if type_name is not None and document.type != type_name:
            raise NotFoundError(f"{type_name} {id} not found")
        document_type(ctx.registry, document.type)
        return document
