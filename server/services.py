"""What a server process holds: the adapter (pool), the live content model, the local API, the
scheduler, content delivery, the read replicas and the mailer; and how they start and stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.access.mail import Mailer
from server.config import Settings
from server.content.content_model import ContentModel
from server.db.replicas import Replicas
from server.delivery.services import Delivery
from server.engine.adapter import DatabaseAdapter
from server.engine.local_api import LocalAPI
from server.engine.postgres import PostgresAdapter
from server.engine.scheduler import Scheduler


def database_adapter(url: str, **options: Any) -> DatabaseAdapter:
    """The adapter on its own, without the rest of a process (the pytest plugin's `cms_adapter`);
    `options` are `PostgresAdapter`'s."""
    return PostgresAdapter(url, **options)


@dataclass
class Services:
    """Everything a server process holds: the adapter (pool), the live content model, the local API."""

    settings: Settings
    adapter: DatabaseAdapter
    model: ContentModel
    api: LocalAPI
    scheduler: Scheduler
    delivery: Delivery
    replicas: Replicas
    mailer: Mailer | None = None

    @classmethod
    def create(cls, settings: Settings, adapter: DatabaseAdapter | None = None) -> Services:
        if adapter is None:
            if settings.database_url is None:
                raise RuntimeError(
                    "no database URL: start the embedded server first (the CLI does)"
                )
            adapter = PostgresAdapter(
                settings.database_url,
                direct_url=settings.database_direct_url,
                pool_mode=settings.database_pool_mode,
                pool_size=settings.pool_size,
                read_pool_size=settings.read_pool_size,
                idle_timeout=settings.idle_timeout,
                enable_rls=settings.enable_rls,
                enable_hierarchy=settings.enable_hierarchy,
                statement_timeout_ms=settings.statement_timeout_ms,
                lock_timeout_ms=settings.lock_timeout_ms,
                acquire_timeout=settings.acquire_timeout,
                version_retention=settings.version_retention,
            )
        delivery = Delivery.create(settings, adapter.database)
        # An event only caches would hear of is queued where there are caches to purge.
        adapter.queue_purges = bool(settings.purge_urls)
        if delivery.run_worker:
            # Writes that queue an outbox event wake this process's worker after their commit,
            # instead of notifying every process (`server/content/documents.py`).
            adapter.outbox_queued = delivery.worker.wake
        model = ContentModel(adapter, adapter.instance_transaction)
        api = LocalAPI(adapter, model, max_page_size=settings.max_page_size)
        return cls(
            settings=settings,
            adapter=adapter,
            model=model,
            api=api,
            scheduler=Scheduler(api, poll_interval=settings.scheduler_poll_seconds),
            delivery=delivery,
            replicas=Replicas(
                settings.database_replica_urls,
                primary_url=adapter.database.direct_url,
                max_lag=settings.replica_max_lag_ms / 1000,
                check_interval=settings.replica_check_ms / 1000,
                pool_mode=settings.database_pool_mode,
                pool_size=settings.pool_size,
                read_pool_size=settings.read_pool_size,
                idle_timeout=settings.idle_timeout,
                acquire_timeout=settings.acquire_timeout,
            ),
            mailer=Mailer.from_settings(settings),
        )

    async def start(self, *, connect: bool = True) -> None:
        """Connect (migrating and setting up RLS), then load the content model."""
        if connect:
            await self.adapter.connect()
        await self.model.sync_dir(self.settings.schema_dir)
        # PostgreSQL itself: through a transaction pooler a LISTEN would not stay on a session.
        await self.model.listen(self.adapter.database.direct_url)
        await self.delivery.start()
        await self.replicas.start()

    async def stop(self) -> None:
        await self.replicas.stop()
        await self.delivery.stop()
        await self.model.close()
        if self.mailer is not None:
            await self.mailer.aclose()
        await self.adapter.disconnect()
