"""The outbox worker: from committed document changes to cache purges and webhook deliveries.

A publish, unpublish or delete writes its event into `cms_outbox` in its own statement
(`server/content/documents.py`), so an event exists exactly when its change committed. This worker, which
every server process runs (`DELIVERY_WORKER`), then:

1. **Fans out** the events, one process at a time (a transaction-level advisory lock): each
   event's caches are purged (`server/delivery/purge.py`) and one delivery row is written per matching
   webhook; the event is deleted in the same transaction. A process that dies half-way leaves the
   event where it was, for the next one.
2. **Delivers** due deliveries: it claims a batch (`FOR UPDATE SKIP LOCKED`, so processes never
   take the same row) by giving each a lease, sends them, and records the outcome: delivered,
   pending again after an exponential back-off (capped), or failed after the last attempt. A
   delivery is claimed only when its webhook has no earlier pending delivery for the same document,
   so one document's events arrive in order. A process that dies while sending leaves a lease that
   runs out, and the delivery is sent again: at least once, never lost.

It wakes when a write of this process queued an event (`wake`, after the commit), on the `cms_outbox`
notification (which only writes of processes without a worker send, at commit) and at least every
`POLL_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from server.db.pool import Database, Tx
from server.delivery.purge import Purger
from server.delivery.webhook_sender import Attempt, WebhookSender
from server.waiting import finish, set_within

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
# How long `stop` lets a pass in progress finish before cancelling it.
STOP_SECONDS = 2.0
BATCH = 100
CHANNEL = "cms_outbox"
# Deliveries that ended (delivered or failed) are kept this long in the log.
LOG_RETENTION_DAYS = 30
_PRUNE_EVERY = 3600  # loops, about an hour when idle

# The system context (`_system`) and the fan-out's lock, in one round trip.
_FAN_OUT_LOCK = (
    "select set_config('app.override_access', 'true', true) = 'true'"
    " and pg_try_advisory_xact_lock(hashtext('cms:outbox'))"
)
_ANCESTORS = """
WITH RECURSIVE up(org, id) AS (
    SELECT o, o FROM unnest($1::uuid[]) AS o
    UNION
    SELECT up.org, c.parent_organization_id FROM up JOIN cms_organizations c ON c.id = up.id
     WHERE c.parent_organization_id IS NOT NULL
)
SELECT org, array_agg(id) AS ids FROM up GROUP BY org
"""
_MATCHING_WEBHOOKS = """
SELECT id FROM cms_webhooks
 WHERE organization_id = $1 AND enabled AND $2 = ANY (events)
   AND (document_types IS NULL OR $3 = ANY (document_types))
"""
_CLAIM = """
UPDATE cms_webhook_deliveries d
   SET lease_until = now() + make_interval(secs => $2), attempts = d.attempts + 1
  FROM cms_webhooks w
 WHERE w.id = d.webhook_id AND d.id IN (
       SELECT c.id FROM cms_webhook_deliveries c JOIN cms_webhooks cw ON cw.id = c.webhook_id
        WHERE c.state = 'pending' AND cw.enabled AND c.next_attempt_at <= now()
          AND (c.lease_until IS NULL OR c.lease_until < now())
          AND NOT EXISTS (
              SELECT 1 FROM cms_webhook_deliveries e
               WHERE e.state = 'pending' AND e.webhook_id = c.webhook_id
                 AND e.document_id = c.document_id AND e.id < c.id)
        ORDER BY c.id LIMIT $1
          FOR UPDATE OF c SKIP LOCKED)
RETURNING d.id, d.event_id, d.payload, d.attempts, w.url, w.secret
"""
_RECORD = """
UPDATE cms_webhook_deliveries
   SET state = $2::text, last_status = $3, last_error = $4, lease_until = NULL,
       delivered_at = CASE WHEN $2::text = 'delivered' THEN now() END,
       next_attempt_at = CASE WHEN $2::text = 'pending' THEN now() + make_interval(secs => $5)
                              ELSE next_attempt_at END
 WHERE id = $1
"""


def type_key(organization_id: uuid.UUID | str, document_type: str) -> str:
    """The surrogate key of an organization's list reads of one document type."""
    return f"type:{organization_id}:{document_type}"


def message_id(event_id: int) -> str:
    """`webhook-id`: one per event, the same on every attempt and for every webhook."""
    return f"msg_{event_id}"


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 10
    base_seconds: float = 10.0
    max_seconds: float = 3600.0

    def delay(self, attempts: int) -> float:
        """Seconds before the next attempt, after `attempts` failed ones: exponential, capped,
        with jitter so that many deliveries failing together do not come back together."""
        delay = min(self.base_seconds * 2.0 ** (attempts - 1), self.max_seconds)
        return delay * random.uniform(0.5, 1.0)  # noqa: S311 (jitter, not a secret)


class OutboxWorker:
    """Fans out outbox events and delivers webhooks; `run_once` is one pass (the tests call it)."""

    def __init__(
        self,
        database: Database,
        *,
        purger: Purger,
        sender: WebhookSender,
        retry: RetryPolicy,
        timeout: float,
    ) -> None:
        self.database = database
        self.purger = purger
        self.sender = sender
        self.retry = retry
        # A claimed delivery is another process's again after this long.
        self.lease_seconds = 2 * timeout + 5
        self._wake = asyncio.Event()
        self._stopping = False
        # Deliveries this process has written (fanned out), ever: a woken pass sends only when
        # its fan-out wrote some.
        self.deliveries_written = 0
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncpg.Connection[Any] | None = None

    async def start(self) -> None:
        try:
            # Not through a transaction pooler: a LISTEN lives on a server session.
            self._listener = await asyncpg.connect(self.database.direct_url)
            await self._listener.add_listener(CHANNEL, self._notified)
        except (OSError, asyncpg.PostgresError) as exc:
            # Polling still delivers; the notification only makes it prompt.
            log.warning("cannot listen for outbox events (%s); polling instead", exc)
        self._task = asyncio.create_task(self._loop(), name="outbox worker")

    async def stop(self) -> None:
        if self._task is not None:
            # A pass in progress may finish (cancelled, it would leave its transaction to the
            # pool's reset); the loop then ends, or is cancelled after `STOP_SECONDS`.
            self._stopping = True
            self._wake.set()
            await finish(self._task, STOP_SECONDS)
            self._task = None
            self._stopping = False
        if self._listener is not None:
            listener, self._listener = self._listener, None
            with contextlib.suppress(Exception):
                await listener.close(timeout=2)

    def wake(self) -> None:
        """Run a pass soon: an event was queued by this process (after its commit)."""
        self._wake.set()

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        loops = 0
        # Whether this pass also sends what is due. A pass woken for new events sends only when
        # its fan-out wrote deliveries: retries fall due with time, which the polls see.
        send = True
        while not self._stopping:
            self._wake.clear()
            sent = 0
            try:
                written = self.deliveries_written
                fanned = await self.fan_out()
                if send or self.deliveries_written != written:
                    sent = await self.deliver_due()
                busy = bool(fanned or sent)
                if loops % _PRUNE_EVERY == 0:
                    await self.prune()
            except Exception:
                log.exception("the outbox worker failed; trying again")
                busy = False
            loops += 1
            send = sent > 0  # a full batch may leave more due
            if not busy and not await set_within(self._wake, POLL_SECONDS):
                send = True  # a poll's turn: retries fall due with time

    async def run_once(self) -> bool:
        """Fan out pending events, then deliver what is due; whether there was anything to do."""
        fanned = await self.fan_out()
        delivered = await self.deliver_due()
        return bool(fanned or delivered)

    async def fan_out(self) -> int:
        """Purge and write deliveries for a batch of events; how many events were handled."""
        async with self.database.transaction() as tx:
            if not await tx.fetchval(_FAN_OUT_LOCK):
                return 0  # another process is at it
            events = await tx.fetch(
                "SELECT id, organization_id, document_id, document_type, event, occurred_at"
                " FROM cms_outbox ORDER BY id LIMIT $1 FOR UPDATE",
                BATCH,
            )
            if not events:
                return 0
            ancestors = await _ancestors(tx, {event["organization_id"] for event in events})
            keys: set[str] = set()
            for event in events:
                orgs = ancestors.get(event["organization_id"], [event["organization_id"]])
                event_keys = change_keys(event["document_id"], event["document_type"], orgs)
                if event["event"] != "document.draft_saved":
                    keys.update(event_keys)
                await self._write_deliveries(tx, event)
            await tx.execute(
                "DELETE FROM cms_outbox WHERE id = ANY ($1::bigint[])", [e["id"] for e in events]
            )
            # Before the commit: should this process die now, the events are handled again.
            await self.purger.purge(keys)
            return len(events)

    async def _write_deliveries(self, tx: Tx, event: asyncpg.Record) -> None:
        webhooks = await tx.fetch(
            _MATCHING_WEBHOOKS, event["organization_id"], event["event"], event["document_type"]
        )
        if not webhooks:
            return
        self.deliveries_written += len(webhooks)
        body = payload(
            event["event"],
            event["occurred_at"],
            document_id=event["document_id"],
            document_type=event["document_type"],
            organization_id=event["organization_id"],
        )
        await tx.executemany(
            "INSERT INTO cms_webhook_deliveries"
            " (webhook_id, organization_id, event_id, event, document_id, payload)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            [
                (
                    webhook["id"],
                    event["organization_id"],
                    event["id"],
                    event["event"],
                    event["document_id"],
                    body.decode(),
                )
                for webhook in webhooks
            ],
        )

    async def deliver_due(self) -> int:
        """Claim, send and record a batch of due deliveries; how many were sent."""
        async with self.database.transaction() as tx:
            await _system(tx)
            claimed = await tx.fetch(_CLAIM, BATCH, self.lease_seconds)
        if not claimed:
            return 0
        attempts = await asyncio.gather(
            *(
                self.sender.send(
                    row["url"], row["secret"], message_id(row["event_id"]), row["payload"].encode()
                )
                for row in claimed
            )
        )
        async with self.database.transaction() as tx:
            await _system(tx)
            for row, attempt in zip(claimed, attempts, strict=True):
                await self._record(tx, row["id"], row["attempts"], attempt)
        return len(claimed)

    async def _record(self, tx: Tx, delivery_id: int, attempts: int, attempt: Attempt) -> None:
        if attempt.delivered:
            state, delay = "delivered", 0.0
        elif attempts >= self.retry.max_attempts:
            state, delay = "failed", 0.0
        else:
            state, delay = "pending", self.retry.delay(attempts)
        await tx.execute(_RECORD, delivery_id, state, attempt.status, attempt.error, delay)

    async def prune(self) -> None:
        async with self.database.transaction() as tx:
            await _system(tx)
            await tx.execute(
                "DELETE FROM cms_webhook_deliveries WHERE state <> 'pending'"
                " AND created_at < now() - make_interval(days => $1)",
                LOG_RETENTION_DAYS,
            )


def change_keys(
    document_id: uuid.UUID, document_type: str, organizations: Iterable[uuid.UUID]
) -> list[str]:
    """The surrogate keys a change of one document makes stale: the document's own, and the list
    reads of its type in its organization and every ancestor (they read their descendants)."""
    return [str(document_id), *(type_key(org, document_type) for org in organizations)]


def payload(
    event: str,
    occurred_at: datetime,
    *,
    document_id: uuid.UUID | None,
    document_type: str | None,
    organization_id: uuid.UUID,
) -> bytes:
    """The body of a delivery, in the Standard Webhooks shape (`type`, `timestamp`, `data`)."""
    return orjson.dumps(
        {
            "type": event,
            "timestamp": occurred_at.isoformat(),
            "data": {
                "id": str(document_id) if document_id else None,
                "type": document_type,
                "organizationId": str(organization_id),
            },
        }
    )


async def _system(tx: Tx) -> None:
    # The worker serves every organization: it passes the policies as background jobs do.
    await tx.execute("select set_config('app.override_access', 'true', true)")


async def _ancestors(tx: Tx, organizations: set[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
    rows = await tx.fetch(_ANCESTORS, list(organizations))
    return {row["org"]: list(row["ids"]) for row in rows}
