"""Webhooks over GraphQL (all need `webhook.manage`), and persisted query registration (instance
admins).

    webhooks, webhook(id) { deliveries }          the organization's webhooks and delivery log
    createWebhook                                 the secret is in this response only
    updateWebhook, deleteWebhook, testWebhook     testWebhook sends a signed `webhook.test` now
    registerPersistedQueries(documents)           trusted documents (`docs/delivery.md`)
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import strawberry

from server.delivery import webhooks as store
from server.delivery.outbox_worker import payload
from server.delivery.persisted_queries import register
from server.delivery.services import Delivery
from server.delivery.webhook_signing import new_secret
from server.engine.context import parse_id
from server.errors import CMSError, ForbiddenError, InvalidInputError, NotFoundError
from server.graphql import types as static
from server.graphql.context import RequestContext
from server.graphql.resolvers import require

MAX_DELIVERIES = 100


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
        if not 1 <= limit <= MAX_DELIVERIES or offset < 0:
            raise InvalidInputError(f"limit must be 1..{MAX_DELIVERIES}, offset >= 0", path="limit")
        unit = await _ctx(info).unit()
        rows = await store.list_deliveries(
            unit.tx, webhook_id=uuid.UUID(str(self.id)), limit=limit, offset=offset
        )
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


def _ctx(info: strawberry.Info) -> RequestContext:
    context: RequestContext = info.context
    return context


def _delivery(context: RequestContext) -> Delivery:
    if context.delivery is None:
        raise CMSError("content delivery is not set up in this context")
    return context.delivery


def _info(webhook: store.Webhook) -> WebhookInfo:
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


async def _check_url(context: RequestContext, url: str) -> str:
    await _delivery(context).sender.policy.check(store.check_url_length(url))
    return url


def _check_types(context: RequestContext, types: list[str] | None) -> list[str] | None:
    if types is None:
        return None
    registry = context.api.model.registry
    for name in types:
        schema_type = registry.get(name)
        if schema_type is None or not schema_type.is_document:
            raise InvalidInputError(f"unknown document type {name!r}", path="documentTypes")
    return sorted(set(types))


@strawberry.type
class WebhookQueries:
    @strawberry.field(description="The organization's webhooks (needs webhook.manage)")
    async def webhooks(self, info: strawberry.Info) -> list[WebhookInfo]:
        context = _ctx(info)
        await require(context, "webhook.manage")
        unit = await context.unit()
        return [_info(webhook) for webhook in await store.list_webhooks(unit.tx)]

    @strawberry.field(description="One webhook, with its delivery log (needs webhook.manage)")
    async def webhook(self, info: strawberry.Info, id: strawberry.ID) -> WebhookInfo | None:
        context = _ctx(info)
        await require(context, "webhook.manage")
        unit = await context.unit()
        webhook = await store.get_webhook(unit.tx, id=parse_id(id))
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
        context = _ctx(info)
        await require(context, "webhook.manage")
        checked_events = store.check_events(events)
        types = _check_types(context, documentTypes)
        checked_name = store.check_name(name)
        await _check_url(context, url)
        unit = await context.unit()
        principal = await context.principal()
        secret = new_secret()
        webhook = await store.create_webhook(
            unit.tx,
            name=checked_name,
            url=url,
            events=checked_events,
            document_types=types,
            secret=secret,
            created_by=principal.user_id,
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
        context = _ctx(info)
        await require(context, "webhook.manage")
        if url is not None:
            await _check_url(context, url)
        unit = await context.unit()
        webhook = await store.update_webhook(
            unit.tx,
            id=parse_id(id),
            name=store.check_name(name) if name is not None else None,
            url=url,
            events=store.check_events(events) if events is not None else None,
            document_types=_check_types(context, documentTypes),
            clear_document_types=allDocumentTypes,
            enabled=enabled,
        )
        if webhook is None:
            raise NotFoundError("no such webhook in this organization")
        return _info(webhook)

    @strawberry.mutation(description="Delete a webhook and its log (needs webhook.manage)")
    async def deleteWebhook(self, info: strawberry.Info, id: strawberry.ID) -> static.DeleteResult:
        context = _ctx(info)
        await require(context, "webhook.manage")
        unit = await context.unit()
        if not await store.delete_webhook(unit.tx, id=parse_id(id)):
            raise NotFoundError("no such webhook in this organization")
        return static.DeleteResult(success=True, id=id)

    @strawberry.mutation(
        description="Send a signed `webhook.test` event to the webhook now (needs webhook.manage)"
    )
    async def testWebhook(self, info: strawberry.Info, id: strawberry.ID) -> WebhookTestResult:
        context = _ctx(info)
        await require(context, "webhook.manage")
        unit = await context.unit()
        webhook_id = parse_id(id)
        webhook = await store.get_webhook(unit.tx, id=webhook_id)
        secret = await store.webhook_secret(unit.tx, id=webhook_id)
        if webhook is None or secret is None:
            raise NotFoundError("no such webhook in this organization")
        body = payload(
            "webhook.test",
            datetime.now(UTC),
            document_id=None,
            document_type=None,
            organization_id=unit.organization_id,
        )
        attempt = await _delivery(context).sender.send(
            webhook.url, secret, f"msg_test_{uuid.uuid4().hex}", body
        )
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
        context = _ctx(info)
        principal = await context.principal()
        if not principal.instance_admin:
            raise ForbiddenError("not allowed: registering operations is for instance admins")
        unit = await context.unit()
        hashes = await register(unit.tx, documents, created_by=principal.user_id)
        return [PersistedQuery(sha256Hash=digest) for digest in hashes]
