"""The PostgreSQL adapter: the implementation of `server.engine.adapter.DatabaseAdapter`.

It owns the pool and the tenancy settings, and inherits the per-concept stores (documents,
schedules, assets, organizations, ...), each of which runs its SQL on the caller's transaction.
The stores hold more methods than the contract (the tests use them); the server's code types
against the contract's protocols: only `server.services` and the command line name this class.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from server.access.credentials import ApiKeyStore
from server.access.instance import InstanceStore
from server.access.invitations import InvitationStore
from server.access.members import MemberStore
from server.access.organizations import OrganizationStore
from server.access.profiles import ProfileStore
from server.access.roles import RoleStore
from server.access.sessions import SessionStore
from server.access.users import UserStore
from server.assets.store import AssetStore
from server.config import PoolMode
from server.content.documents import DocumentStore
from server.content.schedules import ScheduleStore
from server.content.schema_store import SchemaStore
from server.db import migrate, tenancy
from server.db.pool import Database, Tx
from server.db.rls import initialize_rls
from server.db.tenancy import Tenancy
from server.engine.adapter import DatabaseAdapter

log = logging.getLogger(__name__)


class PostgresAdapter(
    DocumentStore,
    ScheduleStore,
    AssetStore,
    SchemaStore,
    OrganizationStore,
    MemberStore,
    RoleStore,
    InvitationStore,
    ProfileStore,
    InstanceStore,
    ApiKeyStore,
    UserStore,
    SessionStore,
):
    def __init__(
        self,
        url: str,
        *,
        direct_url: str | None = None,
        pool_mode: PoolMode = "session",
        pool_size: int = 10,
        read_pool_size: int | None = None,
        idle_timeout: float = 20.0,
        enable_rls: bool = True,
        enable_hierarchy: bool = True,
        statement_timeout_ms: int = 0,
        lock_timeout_ms: int = 0,
        acquire_timeout: float = 5.0,
        version_retention: int = 50,
        run_migrations: bool = True,
    ) -> None:
        self.database = Database(
            url,
            direct_url=direct_url,
            pool_mode=pool_mode,
            pool_size=pool_size,
            read_pool_size=read_pool_size,
            idle_timeout=idle_timeout,
            acquire_timeout=acquire_timeout,
        )
        self.tenancy = Tenancy(
            enable_rls=enable_rls,
            enable_hierarchy=enable_hierarchy,
            statement_timeout_ms=statement_timeout_ms,
            lock_timeout_ms=lock_timeout_ms,
        )
        self.run_migrations = run_migrations
        self.version_retention = version_retention

    @property
    def hierarchy_enabled(self) -> bool:
        return self.tenancy.enable_hierarchy

    async def connect(self) -> None:
        """Migrate, open the pool, and install or repair Row-Level Security."""
        if self.run_migrations:
            # Alembic's DDL and its session-level statements go to PostgreSQL itself.
            await asyncio.to_thread(migrate.upgrade, self.database.direct_url)
        await self.database.connect()
        await self.initialize_rls()

    async def disconnect(self) -> None:
        await self.database.disconnect()

    async def is_healthy(self) -> bool:
        return await self.database.is_healthy()

    async def initialize_rls(self) -> None:
        async with self.database.direct() as direct:
            role = await initialize_rls(direct, enabled=self.tenancy.enable_rls)
        self.tenancy = Tenancy(
            enable_rls=self.tenancy.enable_rls,
            enable_hierarchy=self.tenancy.enable_hierarchy,
            request_role=role,
            statement_timeout_ms=self.tenancy.statement_timeout_ms,
            lock_timeout_ms=self.tenancy.lock_timeout_ms,
        )

    @asynccontextmanager
    async def with_org_context(
        self, organization_id: str | uuid.UUID, *, read_only: bool = False
    ) -> AsyncIterator[Tx]:
        async with tenancy.with_org_context(
            self.database, self.tenancy, organization_id, read_only=read_only
        ) as tx:
            yield tx

    @asynccontextmanager
    async def system_context(
        self, organization_id: str | uuid.UUID | None = None
    ) -> AsyncIterator[Tx]:
        async with tenancy.system_context(self.database, organization_id) as tx:
            yield tx

    @asynccontextmanager
    async def instance_transaction(self, *, read_only: bool = False) -> AsyncIterator[Tx]:
        """A transaction for instance-level tables (profiles, settings, schema types, credentials)."""
        async with self.database.transaction(read_only=read_only) as tx:
            yield tx


def _conforms(adapter: PostgresAdapter) -> DatabaseAdapter:
    # mypy checks here that the PostgreSQL adapter implements the whole contract.
    return adapter
