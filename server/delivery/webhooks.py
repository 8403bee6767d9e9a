"""An organization's webhooks and their delivery log, on the caller's org-scoped transaction.

Row-Level Security scopes every statement; the statements also name the current organization, so
a parent organization manages its own webhooks, not its children's.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from server.db.pool import Tx
from server.errors import InvalidInputError

# What a webhook may listen for (`document.draft_saved` only when asked for: autosaves are many).
EVENTS = (
    "document.published",
    "document.unpublished",
    "document.deleted",
    "document.draft_saved",
)
MAX_NAME_CHARS = 200
MAX_URL_CHARS = 2000

_COLUMNS = "id, name, url, events, document_types, enabled, created_by, created_at, updated_at"
_DELIVERY_COLUMNS = (
    "id, event_id, event, document_id, state, attempts, next_attempt_at, last_status,"
    " last_error, created_at, delivered_at"
)


@dataclass(frozen=True)
class Webhook:
    id: uuid.UUID
    name: str
    url: str
    events: list[str]
    document_types: list[str] | None
    enabled: bool
    created_by: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class WebhookDelivery:
    id: int
    event_id: int
    event: str
    document_id: uuid.UUID
    state: str  # pending, delivered or failed
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


def check_events(events: Sequence[str]) -> list[str]:
    """The events, deduplicated in `EVENTS`' order; unknown ones and an empty list are refused."""
    unknown = [event for event in events if event not in EVENTS]
    if unknown:
        raise InvalidInputError(
            f"unknown event {unknown[0]!r}: use {', '.join(EVENTS)}", path="events"
        )
    if not events:
        raise InvalidInputError("a webhook needs at least one event", path="events")
    return [event for event in EVENTS if event in events]


def check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS:
        raise InvalidInputError(f"the name must have 1 to {MAX_NAME_CHARS} characters", path="name")
    return name


def check_url_length(url: str) -> str:
    if len(url) > MAX_URL_CHARS:
        raise InvalidInputError(f"the URL is longer than {MAX_URL_CHARS} characters", path="url")
    return url


async def create_webhook(
    tx: Tx,
    *,
    name: str,
    url: str,
    events: list[str],
    document_types: list[str] | None,
    secret: str,
    created_by: str | None,
) -> Webhook:
    row = await tx.fetchrow(
        "INSERT INTO cms_webhooks"
        " (organization_id, name, url, events, document_types, secret, created_by)"
        " VALUES ((select cms_current_org()), $1, $2, $3, $4, $5, $6)"
        f" RETURNING {_COLUMNS}",
        name,
        url,
        events,
        document_types,
        secret,
        created_by,
    )
    assert row is not None
    return _webhook(row)


async def list_webhooks(tx: Tx) -> list[Webhook]:
    rows = await tx.fetch(
        f"SELECT {_COLUMNS} FROM cms_webhooks WHERE organization_id = (select cms_current_org())"
        " ORDER BY created_at, id"
    )
    return [_webhook(row) for row in rows]


async def get_webhook(tx: Tx, *, id: uuid.UUID) -> Webhook | None:
    row = await tx.fetchrow(
        f"SELECT {_COLUMNS} FROM cms_webhooks"
        " WHERE id = $1 AND organization_id = (select cms_current_org())",
        id,
    )
    return _webhook(row) if row is not None else None


async def webhook_secret(tx: Tx, *, id: uuid.UUID) -> str | None:
    """The signing secret, for the server's own use (a test delivery); never shown again."""
    secret: str | None = await tx.fetchval(
        "SELECT secret FROM cms_webhooks WHERE id = $1 AND organization_id = (select cms_current_org())",
        id,
    )
    return secret


async def update_webhook(
    tx: Tx,
    *,
    id: uuid.UUID,
    name: str | None,
    url: str | None,
    events: list[str] | None,
    document_types: list[str] | None,
    clear_document_types: bool,
    enabled: bool | None,
) -> Webhook | None:
    """Change the given fields (None: keep); None when there is no such webhook here."""
    row = await tx.fetchrow(
        "UPDATE cms_webhooks SET name = coalesce($2, name), url = coalesce($3, url),"
        " events = coalesce($4, events),"
        " document_types = CASE WHEN $6 THEN NULL ELSE coalesce($5, document_types) END,"
        " enabled = coalesce($7, enabled), updated_at = now()"
        " WHERE id = $1 AND organization_id = (select cms_current_org())"
        f" RETURNING {_COLUMNS}",
        id,
        name,
        url,
        events,
        document_types,
        clear_document_types,
        enabled,
    )
    return _webhook(row) if row is not None else None


async def delete_webhook(tx: Tx, *, id: uuid.UUID) -> bool:
    """Delete the webhook and its delivery log; False when there is no such webhook here."""
    deleted = await tx.fetchval(
        "DELETE FROM cms_webhooks WHERE id = $1 AND organization_id = (select cms_current_org())"
        " RETURNING id",
        id,
    )
    return deleted is not None


async def list_deliveries(
    tx: Tx, *, webhook_id: uuid.UUID, limit: int, offset: int
) -> list[WebhookDelivery]:
    """A webhook's deliveries, newest first."""
    rows = await tx.fetch(
        f"SELECT {_DELIVERY_COLUMNS} FROM cms_webhook_deliveries"
        " WHERE webhook_id = $1 AND organization_id = (select cms_current_org())"
        " ORDER BY id DESC LIMIT $2 OFFSET $3",
        webhook_id,
        limit,
        offset,
    )
    return [
        WebhookDelivery(*(row[name.strip()] for name in _DELIVERY_COLUMNS.split(",")))
        for row in rows
    ]


def _webhook(row: asyncpg.Record) -> Webhook:
    return Webhook(*(row[name.strip()] for name in _COLUMNS.split(",")))
