"""Webhooks and persisted query registration as Python calls: the rules, then the stores.

    webhooks = WebhooksAPI(delivery)
    webhook, secret = await webhooks.create(ctx, name="site", url=url, events=["document.published"])

Every webhook operation needs `webhook.manage` in the caller's organization and runs on the
caller's transaction (Row-Level Security scopes it). Registering persisted queries is for instance
admins. A webhook's URL is checked against the outbound policy when it is saved, and again at
every delivery (a name may point somewhere else later).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from server.delivery import webhooks as store
from server.delivery.outbox_worker import payload
from server.delivery.persisted_queries import register
from server.delivery.services import Delivery
from server.delivery.webhook_sender import Attempt
from server.delivery.webhook_signing import new_secret
from server.delivery.webhooks import Webhook, WebhookDelivery
from server.engine.context import Context, parse_id
from server.errors import ForbiddenError, InvalidInputError, NotFoundError
from server.model.types import Registry

__all__ = ["MAX_DELIVERIES", "Attempt", "Webhook", "WebhookDelivery", "WebhooksAPI"]

MANAGE = "webhook.manage"
MAX_DELIVERIES = 100


class WebhooksAPI:
    """An organization's webhooks, their delivery log and test sends, and trusted documents."""

    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery

    async def all(self, ctx: Context) -> list[Webhook]:
        ctx.require(MANAGE)
        return await store.list_webhooks(ctx.tx)

    async def get(self, ctx: Context, id: object) -> Webhook | None:
        ctx.require(MANAGE)
        return await store.get_webhook(ctx.tx, id=parse_id(id))

    async def deliveries(
        self, ctx: Context, webhook_id: object, *, limit: int, offset: int
    ) -> list[WebhookDelivery]:
        """A webhook's delivery log, newest first."""
        ctx.require(MANAGE)
        if not 1 <= limit <= MAX_DELIVERIES or offset < 0:
            raise InvalidInputError(f"limit must be 1..{MAX_DELIVERIES}, offset >= 0", path="limit")
        return await store.list_deliveries(
            ctx.tx, webhook_id=parse_id(webhook_id), limit=limit, offset=offset
        )

    async def create(
        self,
        ctx: Context,
        *,
        name: str,
        url: str,
        events: Sequence[str],
        document_types: Sequence[str] | None = None,
    ) -> tuple[Webhook, str]:
        """A new webhook and its signing secret (`whsec_...`), which is not stored readable again."""
        ctx.require(MANAGE)
        checked_events = store.check_events(events)
        types = _check_types(ctx.registry, document_types)
        checked_name = store.check_name(name)
        await self._check_url(url)
        secret = new_secret()
        webhook = await store.create_webhook(
            ctx.tx,
            name=checked_name,
            url=url,
            events=checked_events,
            document_types=types,
            secret=secret,
            created_by=ctx.user_id,
        )
        return webhook, secret

    async def update(
        self,
        ctx: Context,
        id: object,
        *,
        name: str | None = None,
        url: str | None = None,
        events: Sequence[str] | None = None,
        document_types: Sequence[str] | None = None,
        all_document_types: bool = False,
        enabled: bool | None = None,
    ) -> Webhook:
        """Change the given fields (None keeps one); `all_document_types` listens to every type."""
        ctx.require(MANAGE)
        if url is not None:
            await self._check_url(url)
        webhook = await store.update_webhook(
            ctx.tx,
            id=parse_id(id),
            name=store.check_name(name) if name is not None else None,
            url=url,
            events=store.check_events(events) if events is not None else None,
            document_types=_check_types(ctx.registry, document_types),
            clear_document_types=all_document_types,
            enabled=enabled,
        )
        if webhook is None:
            raise NotFoundError("no such webhook in this organization")
        return webhook

    async def delete(self, ctx: Context, id: object) -> None:
        """Delete a webhook and its delivery log."""
        ctx.require(MANAGE)
        if not await store.delete_webhook(ctx.tx, id=parse_id(id)):
            raise NotFoundError("no such webhook in this organization")

    async def test(self, ctx: Context, id: object) -> Attempt:
        """Send a signed `webhook.test` event to the webhook now; what its URL answered."""
        ctx.require(MANAGE)
        webhook_id = parse_id(id)
        webhook = await store.get_webhook(ctx.tx, id=webhook_id)
        secret = await store.webhook_secret(ctx.tx, id=webhook_id)
        if webhook is None or secret is None:
            raise NotFoundError("no such webhook in this organization")
        body = payload(
            "webhook.test",
            datetime.now(UTC),
            document_id=None,
            document_type=None,
            organization_id=ctx.organization_id,
        )
        return await self.delivery.sender.send(
            webhook.url, secret, f"msg_test_{uuid.uuid4().hex}", body
        )

    async def register_persisted_queries(self, ctx: Context, documents: Sequence[str]) -> list[str]:
        """Register operations ahead of time (idempotent); their SHA-256 hashes, in order."""
        if not ctx.instance_admin and ctx.capabilities is not None:
            raise ForbiddenError("not allowed: registering operations is for instance admins")
        return await register(ctx.tx, documents, created_by=ctx.user_id)

    async def _check_url(self, url: str) -> None:
        await self.delivery.sender.policy.check(store.check_url_length(url))


def _check_types(registry: Registry, types: Sequence[str] | None) -> list[str] | None:
    if types is None:
        return None
    for name in types:
        schema_type = registry.get(name)
        if schema_type is None or not schema_type.is_document:
            raise InvalidInputError(f"unknown document type {name!r}", path="documentTypes")
    return sorted(set(types))
