"""Webhooks over GraphQL (all need `webhook.manage`), and persisted query registration (instance
admins).

    webhooks, webhook(id) { deliveries }          the organization's webhooks and delivery log
    createWebhook                                 the secret is in this response only
    updateWebhook, deleteWebhook, testWebhook     testWebhook sends a signed `webhook.test` now
    registerPersistedQueries(documents)           trusted documents (`docs/delivery.md`)

Thin: the webhook service (`server/engine/webhooks.py`) checks capabilities and input and runs the
statements; these resolvers translate arguments and results.
"""

from __future__ import annotations

from datetime import datetime

import strawberry

from server.engine.context import Context
from server.engine.webhooks import Webhook, WebhooksAPI
from server.errors import CMSError
from server.graphql import types as static
from server.graphql.context import RequestContext


@strawberry.type(name="WebhookDelivery", description="One event sent to a webhook, with retries.")
class WebhookDeliveryInfo:
    id: strawberry.ID
    event: str
    documentId: strawberry.ID
    state: str = strawberry.field(description="pending, delivered or failed")
    attempts: int
    nextAttemptAt: datetime | None = strawberry.field(description="when a pending one is retried")
    lastStatusCode: int | None
    lastError: str | None
    createdAt: datetime
    deliveredAt: datetime | None


@strawberry.type(name="Webhook", description="A URL told about document changes, signed.")
class WebhookInfo:
    id: strawberry.ID
    name: str
    url: str
    events: list[str]
    documentTypes: list[str] | None = strawberry.field(description="null: every type")
    enabled: bool
    createdAt: datetime
    updatedAt: datetime

    @strawberry.field(description="The delivery log, newest first")
    async def deliveries(
        self, info: strawberry.Info, limit: int = 20, offset: int = 0
    ) -> list[WebhookDeliveryInfo]:
        webhooks, ctx = await _service(info)
        rows = await webhooks.deliveries(ctx, self.id, limit=limit, offset=offset)
        return [
            WebhookDeliveryInfo(
                id=strawberry.ID(str(row.id)),
                event=row.event,
                documentId=strawberry.ID(str(row.document_id)),
                state=row.state,
                attempts=row.attempts,
                nextAttemptAt=row.next_attempt_at if row.state == "pending" else None,
                lastStatusCode=row.last_status,
                lastError=row.last_error,
                createdAt=row.created_at,
                deliveredAt=row.delivered_at,
            )
            for row in rows
        ]


@strawberry.type(description="A new webhook and its signing secret, shown only this once.")
class CreatedWebhook:
    webhook: WebhookInfo
    secret: str = strawberry.field(description="`whsec_...`: verify `webhook-signature` with it")


@strawberry.type(description="What the webhook's URL answered to a signed test event.")
class WebhookTestResult:
    delivered: bool
    statusCode: int | None
    error: str | None


@strawberry.type(description="A registered persisted query.")
class PersistedQuery:
    sha256Hash: str


async def _service(info: strawberry.Info) -> tuple[WebhooksAPI, Context]:
    context: RequestContext = info.context
    if context.webhooks is None:
        raise CMSError("content delivery is not set up in this context")
    return context.webhooks, await context.unit()


def _info(webhook: Webhook) -> WebhookInfo:
    return WebhookInfo(
        id=strawberry.ID(str(webhook.id)),
        name=webhook.name,
        url=webhook.url,
        events=webhook.events,
        documentTypes=webhook.document_types,
        enabled=webhook.enabled,
        createdAt=webhook.created_at,
        updatedAt=webhook.updated_at,
    )


@strawberry.type
class WebhookQueries:
    @strawberry.field(description="The organization's webhooks (needs webhook.manage)")
    async def webhooks(self, info: strawberry.Info) -> list[WebhookInfo]:
        webhooks, ctx = await _service(info)
        return [_info(webhook) for webhook in await webhooks.all(ctx)]

    @strawberry.field(description="One webhook, with its delivery log (needs webhook.manage)")
    async def webhook(self, info: strawberry.Info, id: strawberry.ID) -> WebhookInfo | None:
        webhooks, ctx = await _service(info)
        webhook = await webhooks.get(ctx, id)
        return _info(webhook) if webhook is not None else None


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(
        description="Create a webhook (needs webhook.manage); the secret is shown only here"
    )
    async def createWebhook(
        self,
        info: strawberry.Info,
        name: str,
        url: str,
        events: list[str],
        documentTypes: list[str] | None = None,
    ) -> CreatedWebhook:
        webhooks, ctx = await _service(info)
        webhook, secret = await webhooks.create(
            ctx, name=name, url=url, events=events, document_types=documentTypes
        )
        return CreatedWebhook(webhook=_info(webhook), secret=secret)

    @strawberry.mutation(
        description="Change a webhook (needs webhook.manage); null keeps a field as it is,"
        " allDocumentTypes: true listens to every type again"
    )
    async def updateWebhook(
        self,
        info: strawberry.Info,
        id: strawberry.ID,
        name: str | None = None,
        url: str | None = None,
        events: list[str] | None = None,
        documentTypes: list[str] | None = None,
        allDocumentTypes: bool = False,
        enabled: bool | None = None,
    ) -> WebhookInfo:
        webhooks, ctx = await _service(info)
        webhook = await webhooks.update(
            ctx,
            id,
            name=name,
            url=url,
            events=events,
            document_types=documentTypes,
            all_document_types=allDocumentTypes,
            enabled=enabled,
        )
        return _info(webhook)

    @strawberry.mutation(description="Delete a webhook and its log (needs webhook.manage)")
    async def deleteWebhook(self, info: strawberry.Info, id: strawberry.ID) -> static.DeleteResult:
        webhooks, ctx = await _service(info)
        await webhooks.delete(ctx, id)
        return static.DeleteResult(success=True, id=id)

    @strawberry.mutation(
        description="Send a signed `webhook.test` event to the webhook now (needs webhook.manage)"
    )
    async def testWebhook(self, info: strawberry.Info, id: strawberry.ID) -> WebhookTestResult:
        webhooks, ctx = await _service(info)
        attempt = await webhooks.test(ctx, id)
        return WebhookTestResult(
            delivered=attempt.delivered, statusCode=attempt.status, error=attempt.error
        )

    @strawberry.mutation(
        description="Register operations ahead of time, for PERSISTED_QUERIES=trusted (instance"
        " admins); idempotent"
    )
    async def registerPersistedQueries(
        self, info: strawberry.Info, documents: list[str]
    ) -> list[PersistedQuery]:
        webhooks, ctx = await _service(info)
        hashes = await webhooks.register_persisted_queries(ctx, documents)
        return [PersistedQuery(sha256Hash=digest) for digest in hashes]
