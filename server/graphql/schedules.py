"""Schedule fields: `scheduled`, `schedulePublish`, `scheduleUnpublish` and `cancelScheduled`.

Thin, as every resolver: the local API (`server/engine/schedules.py`) checks capabilities and input.
`scheduled` is not a document read, so the compiled read path never plans it: it always takes the
resolver path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from server.engine.context import Context
from server.engine.schedules import ScheduleRow
from server.graphql.context import RequestContext


@strawberry.type(description="A publish or unpublish of a document at a time, and its outcome.")
class Schedule:
    id: strawberry.ID
    documentId: strawberry.ID
    documentType: str
    organizationId: strawberry.ID
    action: str = strawberry.field(description='"publish" or "unpublish"')
    runAt: datetime
    revision: int | None = strawberry.field(
        description="the draft revision a publish publishes (pinned when scheduled); null for an"
        " unpublish"
    )
    status: str = strawberry.field(description='"pending", "succeeded", "failed" or "cancelled"')
    attempts: int = strawberry.field(description="runs so far (a retried failure counts each)")
    retryAt: datetime | None = strawberry.field(
        description="when a pending schedule that failed for a passing reason runs again"
    )
    errorCode: str | None = strawberry.field(
        description="why it failed (or last failed): an error code, e.g. CONFLICT when the draft"
        " changed, BAD_USER_INPUT for a content rule, NOT_FOUND when the document is gone"
    )
    errorMessage: str | None
    createdBy: str | None
    cancelledBy: str | None
    createdAt: datetime
    updatedAt: datetime
    completedAt: datetime | None


@strawberry.type(description="A page of schedules, soonest first.")
class SchedulePage:
    schedules: list[Schedule]
    total: int
    limit: int
    offset: int


def to_schedule(row: ScheduleRow) -> Schedule:
    return Schedule(
        id=strawberry.ID(str(row.id)),
        documentId=strawberry.ID(str(row.document_id)),
        documentType=row.document_type,
        organizationId=strawberry.ID(str(row.organization_id)),
        action=row.action,
        runAt=row.run_at,
        revision=row.revision,
        status=row.status,
        attempts=row.attempts,
        retryAt=row.retry_at,
        errorCode=row.error_code,
        errorMessage=row.error_message,
        createdBy=row.created_by,
        cancelledBy=row.cancelled_by,
        createdAt=row.created_at,
        updatedAt=row.updated_at,
        completedAt=row.completed_at,
    )


async def _unit(info: strawberry.Info) -> tuple[RequestContext, Context]:
    context: RequestContext = info.context
    return context, await context.unit()


_AT = strawberry.argument(
    description="when: a date and time with its offset; a time already past runs at the next poll"
)


@strawberry.type
class ScheduleQueries:
    @strawberry.field(
        description="Schedules of this organization and its descendants, soonest first"
        " (needs document.read and the draft perspective)"
    )
    async def scheduled(
        self,
        info: strawberry.Info,
        documentId: strawberry.ID | None = None,
        type: Annotated[str | None, strawberry.argument(description="a document type")] = None,
        status: Annotated[
            str | None,
            strawberry.argument(description='"pending", "succeeded", "failed" or "cancelled"'),
        ] = None,
        limit: int | None = 50,
        offset: int | None = 0,
    ) -> SchedulePage:
        context, unit = await _unit(info)
        page = await context.api.schedules.find(
            unit,
            document_id=documentId,
            type_name=type,
            status=status,
            limit=50 if limit is None else limit,
            offset=offset or 0,
        )
        return SchedulePage(
            schedules=[to_schedule(row) for row in page.items],
            total=page.total or 0,
            limit=page.limit,
            offset=page.offset,
        )


@strawberry.type
class ScheduleMutations:
    @strawberry.mutation(
        description="Publish the document's current draft revision at a time; the schedule fails"
        " (CONFLICT) if the draft changes before then. Needs document.schedule and"
        " document.publish"
    )
    async def schedulePublish(
        self,
        info: strawberry.Info,
        id: strawberry.ID,
        at: Annotated[datetime, _AT],
        expectedRevision: Annotated[
            int | None,
            strawberry.argument(description="the draft revision the editor saw (CONFLICT if not)"),
        ] = None,
    ) -> Schedule:
        context, unit = await _unit(info)
        row = await context.api.schedules.publish(unit, id, at, expected_revision=expectedRevision)
        return to_schedule(row)

    @strawberry.mutation(
        description="Unpublish the document at a time. Needs document.schedule and"
        " document.unpublish"
    )
    async def scheduleUnpublish(
        self, info: strawberry.Info, id: strawberry.ID, at: Annotated[datetime, _AT]
    ) -> Schedule:
        context, unit = await _unit(info)
        return to_schedule(await context.api.schedules.unpublish(unit, id, at))

    @strawberry.mutation(
        description="Cancel a pending schedule of this organization (needs document.schedule)"
    )
    async def cancelScheduled(self, info: strawberry.Info, id: strawberry.ID) -> Schedule:
        context, unit = await _unit(info)
        return to_schedule(await context.api.schedules.cancel(unit, id))
