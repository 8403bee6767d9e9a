"""What a server process holds for content delivery, built from the settings: the persisted
queries, the HTTP cache policy, the outbound HTTP client with its allowed hosts, the purger, the
webhook sender and the outbox worker (`docs/delivery.md`)."""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass

import httpx

from server.config import Settings
from server.db.pool import Database
from server.delivery.caching import CachePolicy
from server.delivery.outbox_worker import OutboxWorker, RetryPolicy
from server.delivery.persisted_queries import PersistedQueries
from server.delivery.purge import Purger
from server.delivery.webhook_sender import WebhookSender
from server.outbound import OutboundPolicy


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default TLS context, made once per process: loading the CA bundle takes tens of
    milliseconds, and each app made in a process (the tests make hundreds) would load it again."""
    return httpx.create_ssl_context()


@dataclass
class Delivery:
    persisted: PersistedQueries
    cache: CachePolicy
    client: httpx.AsyncClient
    sender: WebhookSender
    worker: OutboxWorker
    run_worker: bool

    @classmethod
    def create(cls, settings: Settings, database: Database) -> Delivery:
        # Redirects are not followed: a webhook must not be bounced to a host it may not call.
        client = httpx.AsyncClient(
            timeout=settings.webhook_timeout, follow_redirects=False, verify=_tls_context()
        )
        sender = WebhookSender(client, OutboundPolicy(settings.webhook_allowed_hosts))
        worker = OutboxWorker(
            database,
            purger=Purger(settings.purge_urls, client),
            sender=sender,
            retry=RetryPolicy(
                max_attempts=settings.webhook_max_attempts,
                base_seconds=settings.webhook_retry_base,
                max_seconds=settings.webhook_retry_max,
            ),
            timeout=settings.webhook_timeout,
        )
        return cls(
            persisted=PersistedQueries(database, settings.persisted_queries),
            cache=CachePolicy(
                max_age=settings.cache_max_age,
                stale_while_revalidate=settings.cache_stale_while_revalidate,
                keys_max=settings.surrogate_keys_max,
            ),
            client=client,
            sender=sender,
            worker=worker,
            run_worker=settings.delivery_worker,
        )

    async def start(self) -> None:
        if self.run_worker:
            await self.worker.start()

    async def stop(self) -> None:
        await self.worker.stop()
        await self.client.aclose()
