"""The adapter contract: what a database backend provides, cut along the code that uses it.

Each protocol is what one consumer calls, and holds only methods server code calls: `Transactions`
(units of work), `Documents` (the local API), `Assets` (the asset service), `Schedules` (the
schedule service and the scheduler), `Access` (the access service, the command line, the demo),
`Lifecycle` (the services). A consumer that needs two combines them in a small protocol beside
itself. `DatabaseAdapter` is the whole contract, with the content model's `SchemaTypes`;
`server.engine.postgres.PostgresAdapter` implements it, and mypy checks that it does.

Every store method runs on the caller's transaction (`tx`), so a request's statements share one
transaction and, for tenant data, one organization context.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any, Protocol

from server.access.credentials import ApiKey
from server.access.invitations import Invitation
from server.access.members import Member, RoleHolder
from server.access.organizations import Organization
from server.access.profiles import UserProfile
from server.access.roles import Role
from server.access.sessions import Session
from server.access.users import User
from server.assets.store import AssetRow, AssetUsage
from server.content.content_model import SchemaTypes
from server.content.documents import DocumentRow, IndexState, PlaneIndex, References, Version
from server.content.schedules import ScheduleRow
from server.db.pool import Database, Tx
from server.db.tenancy import Tenancy
from server.model.pages import Page
from server.model.unset import UNSET, Unset


class Transactions(Protocol):
    """Units of work: org-scoped, system and instance transactions, and the pool and tenancy
    settings for the callers that open their own (the request opener, compiled reads, the
    scheduler)."""

    @property
    def database(self) -> Database:
        """The pool."""
        ...

    @property
    def tenancy(self) -> Tenancy:
        """How a transaction enters an organization: RLS, the request role, the timeouts."""
        ...

    def with_org_context(
        self, organization_id: str | uuid.UUID, *, read_only: bool = False
    ) -> AbstractAsyncContextManager[Tx]:
        """One transaction scoped to the organization; RLS applies to every statement in it."""
        ...

    def system_context(
        self, organization_id: str | uuid.UUID | None = None
    ) -> AbstractAsyncContextManager[Tx]:
        """A transaction that passes every policy: jobs, seeds, the command line; never requests."""
        ...

    def instance_transaction(self, *, read_only: bool = False) -> AbstractAsyncContextManager[Tx]:
        """A transaction for instance-level tables (profiles, schema types, credentials)."""
        ...


class Lifecycle(Protocol):
    """Start and stop."""

    async def connect(self) -> None:
        """Migrate (when asked), open the pool, install or repair Row-Level Security."""
        ...

    async def disconnect(self) -> None:
        """Close the pool."""
        ...


class Documents(Protocol):
    """Document rows, their versions and the reference index (`server.content.documents`)."""

    # Called after the commit of a write that queued an outbox event, to wake this process's
    # outbox worker; None (no worker here) has the write notify the other processes instead.
    outbox_queued: Callable[[], object] | None
    # Whether changes to published content queue an outbox event for the caches' purge even when no
    # webhook listens (the process purges caches); else only what a webhook listens for is queued.
    queue_purges: bool

    async def create_document(
        self,
        tx: Tx,
        *,
        type: str,
        data: dict[str, Any],
        draft_hash: str,
        references: References,
        created_by: str | None = None,
        id: uuid.UUID | None = None,
    ) -> DocumentRow:
        """Insert a draft with its first version and its draft reference index."""
        ...

    async def find_document(self, tx: Tx, *, id: uuid.UUID) -> DocumentRow | None:
        """Any readable document, whatever its status, or None."""
        ...

    async def lock_document(
        self, tx: Tx, *, id: uuid.UUID, published_data: bool = True
    ) -> DocumentRow:
        """A document of the current organization, locked until the transaction ends (without
        `published_data`: only whether it has any)."""
        ...

    async def update_draft(
        self,
        tx: Tx,
        *,
        document: DocumentRow,
        data: dict[str, Any],
        draft_hash: str,
        references: References,
        updated_by: str | None = None,
        expected_revision: int | None = None,
        restored_from: int | None = None,
        with_data: bool = True,
    ) -> DocumentRow:
        """Replace the draft of a locked document with a version (a `restore` naming
        `restored_from` when given); a stale `expected_revision` is a conflict. Without
        `with_data`, the row comes back without its data."""
        ...

    async def publish_document(
        self,
        tx: Tx,
        *,
        document: DocumentRow,
        published_hash: str,
        references: References,
        published_by: str | None = None,
        expected_revision: int | None = None,
        with_data: bool = True,
    ) -> DocumentRow:
        """Copy a locked document's draft to the published plane, with a publish version
        (without `with_data`, the row comes back without its data)."""
        ...

    async def publish_saved_draft(
        self,
        tx: Tx,
        *,
        id: uuid.UUID,
        organization_id: uuid.UUID,
        type: str,
        revision: int,
        draft_hash: str,
        references: References,
        published_hash: str | None,
        published_index: PlaneIndex | None,
        published_by: str | None = None,
    ) -> DocumentRow:
        """Publish a draft this process saved at `revision` with `draft_hash`, unlocked, in one
        statement, or raise `DraftMovedError` (then roll back) when the document is no longer it
        or its published hash is no longer `published_hash`."""
        ...

    async def read_for_save_at_once(
        self,
        database: Database,
        opening: Sequence[Any],
        *,
        cancel_after: float | None,
        id: uuid.UUID,
    ) -> DocumentRow | None:
        """A document of a known caller's organization (`opening`) read for `save_draft_at_once`,
        without a lock, in one statement that is its own transaction; None when there is none."""
        ...

    async def save_draft_at_once(
        self,
        database: Database,
        opening: Sequence[Any],
        *,
        cancel_after: float | None,
        document: DocumentRow,
        data: dict[str, Any],
        draft_hash: str,
        references: References,
        updated_by: str | None = None,
    ) -> DocumentRow:
        """The draft save of a document `read_for_save_at_once` read, written only while the row
        is still the version read, in one statement that is its own transaction; `NotWritten` when
        it wrote nothing (then save in a transaction)."""
        ...

    async def publish_saved_draft_at_once(
        self,
        database: Database,
        opening: Sequence[Any],
        *,
        cancel_after: float | None,
        id: uuid.UUID,
        organization_id: uuid.UUID,
        type: str,
        revision: int,
        draft_hash: str,
        references: References,
        published_hash: str | None,
        published_index: PlaneIndex | None,
        published_by: str | None = None,
        index: IndexState | None = None,
    ) -> DocumentRow:
        """`publish_saved_draft` for a known caller (`opening`) in one statement that is its own
        transaction; `NotWritten` when it wrote nothing (then publish in a transaction). `index`:
        what the reference index held after the save, if known."""
        ...

    async def unpublish_document(
        self, tx: Tx, *, id: uuid.UUID, updated_by: str | None = None
    ) -> DocumentRow:
        """Back to draft; the published plane of the reference index emptied."""
        ...

    async def delete_document(self, tx: Tx, *, id: uuid.UUID) -> None:
        """Delete the document with its versions and reference rows."""
        ...

    async def list_versions(
        self, tx: Tx, *, document_id: uuid.UUID, limit: int = 20, offset: int = 0
    ) -> tuple[list[Version], int]:
        """Versions newest first, and their total."""
        ...

    async def get_version(
        self, tx: Tx, *, document_id: uuid.UUID, version_number: int
    ) -> Version | None:
        """One version, or None."""
        ...


class Assets(Protocol):
    """Asset rows and their reference counts (`server.assets.store`)."""

    async def create_asset(
        self,
        tx: Tx,
        *,
        id: uuid.UUID,
        asset_type: str,
        filename: str,
        original_filename: str,
        mime_type: str,
        size: int,
        url: str,
        path: str,
        storage_adapter: str,
        width: int | None = None,
        height: int | None = None,
        metadata: dict[str, Any] | None = None,
        title: str | None = None,
        description: str | None = None,
        alt: str | None = None,
        credit_line: str | None = None,
        created_by: str | None = None,
    ) -> AssetRow:
        """Insert an asset of the current organization."""
        ...

    async def find_asset(self, tx: Tx, *, id: uuid.UUID) -> AssetRow | None:
        """A readable asset with its reference count, or None."""
        ...

    async def find_assets_by_id(self, tx: Tx, *, ids: list[uuid.UUID]) -> list[AssetRow]:
        """The readable assets among `ids`, in no particular order."""
        ...

    async def find_assets(
        self,
        tx: Tx,
        *,
        asset_type: str | None = None,
        mime_type: str | None = None,
        search: str | None = None,
        usage: str | None = None,
        sort: str | None = None,
        limit: int = 20,
        offset: int = 0,
        max_limit: int = 200,
    ) -> Page[AssetRow]:
        """One page of readable assets, filtered and sorted, and their total."""
        ...

    async def documents_using_asset(self, tx: Tx, *, asset_id: uuid.UUID) -> list[AssetUsage]:
        """Every (document, plane, field path) that uses the asset."""
        ...

    async def update_asset(
        self,
        tx: Tx,
        *,
        id: uuid.UUID,
        updated_by: str | None = None,
        title: str | Unset | None = UNSET,
        alt: str | Unset | None = UNSET,
        description: str | Unset | None = UNSET,
        credit_line: str | Unset | None = UNSET,
    ) -> AssetRow:
        """Change the descriptive fields: `UNSET` leaves one alone, None clears it."""
        ...

    async def lock_asset(self, tx: Tx, *, id: uuid.UUID) -> AssetRow:
        """An asset of the current organization, locked until the transaction ends; after it,
        every committed reference to the asset is visible."""
        ...

    async def delete_asset(self, tx: Tx, *, id: uuid.UUID, force: bool = False) -> AssetRow:
        """Delete the row; a conflict while a document uses it, unless `force`."""
        ...

    async def lock_asset_mutation(self, tx: Tx, *, id: uuid.UUID) -> None:
        """Hold the asset's mutation lock until the transaction ends."""
        ...

    async def wait_for_asset_mutations(
        self, tx: Tx, *, id: uuid.UUID, timeout_ms: int = 600_000
    ) -> bool:
        """Wait until no transaction holds the asset's mutation lock; then whether it exists."""
        ...


class Schedules(Protocol):
    """Scheduled publishes and unpublishes (`server.content.schedules`)."""

    async def create_schedule(
        self,
        tx: Tx,
        *,
        document: DocumentRow,
        action: str,
        run_at: datetime,
        revision: int | None,
        created_by: str | None,
    ) -> ScheduleRow:
        """A pending schedule for a document of the current organization."""
        ...

    async def find_schedule(self, tx: Tx, *, id: uuid.UUID) -> ScheduleRow | None:
        """A readable schedule, or None."""
        ...

    async def list_schedules(
        self,
        tx: Tx,
        *,
        document_id: uuid.UUID | None = None,
        document_type: str | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[ScheduleRow], int]:
        """Readable schedules, soonest first, and their total."""
        ...

    async def cancel_schedule(
        self, tx: Tx, *, id: uuid.UUID, cancelled_by: str | None
    ) -> ScheduleRow:
        """Cancel a pending schedule of the current organization (waiting for a running one)."""
        ...

    async def claim_due_schedule(self, tx: Tx, *, now: datetime | None) -> ScheduleRow | None:
        """Lock the next due schedule of any organization, skipping those others hold; `now`
        None takes the database's clock."""
        ...

    async def finish_schedule(
        self,
        tx: Tx,
        *,
        id: uuid.UUID,
        status: str,
        error_code: str | None = None,
        error_message: str | None = None,
        retry_in_seconds: float | None = None,
        now: datetime | None = None,
    ) -> ScheduleRow:
        """Record a run: its status and error, one more attempt, when to retry."""
        ...


class Access(Protocol):
    """Organizations (a tree), members, roles, invitations, API keys, users, profiles and
    sign-in sessions (`server.access`)."""

    async def create_organization(
        self,
        tx: Tx,
        *,
        name: str,
        slug: str,
        created_by: str,
        parent_organization_id: uuid.UUID | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Organization:
        """Create an organization with its built-in roles."""
        ...

    async def find_organization_by_id(
        self, tx: Tx, *, organization_id: uuid.UUID
    ) -> Organization | None:
        """The organization with this id, or None."""
        ...

    async def find_organization_by_slug(self, tx: Tx, *, slug: str) -> Organization | None:
        """The organization a slug (or a path of slugs from a root) names, or None."""
        ...

    async def find_organizations(
        self, tx: Tx, *, organization_ids: Sequence[uuid.UUID]
    ) -> list[Organization]:
        """The organizations with these ids that exist, in no particular order."""
        ...

    async def find_all_organizations(self, tx: Tx) -> list[Organization]:
        """Every organization, by name."""
        ...

    async def find_children_in_view(
        self, tx: Tx, *, parent_ids: Sequence[uuid.UUID], organization_id: uuid.UUID
    ) -> list[Organization]:
        """The children of `parent_ids` that `organization_id` sees (its subtree whole, of each
        ancestor only the child on the line down to it), by name."""
        ...

    async def add_member(
        self,
        tx: Tx,
        *,
        organization_id: uuid.UUID,
        user_id: str,
        role: str,
        invitation_id: uuid.UUID | None = None,
    ) -> Member:
        """Make a user a member with one of the organization's roles."""
        ...

    async def remove_member(self, tx: Tx, *, organization_id: uuid.UUID, user_id: str) -> bool:
        """End a membership; False when the user was not a member."""
        ...

    async def update_member_role(
        self, tx: Tx, *, organization_id: uuid.UUID, user_id: str, role: str
    ) -> Member:
        """Give a member another of the organization's roles."""
        ...

    async def find_members_with_users(
        self, tx: Tx, *, organization_id: uuid.UUID
    ) -> list[tuple[Member, User | None]]:
        """The organization's members with their users, oldest membership first."""
        ...

    async def has_member_with_email(
        self, tx: Tx, *, organization_id: uuid.UUID, email: str
    ) -> bool:
        """Whether a member's user has this (lower-cased) email."""
        ...

    async def lock_role_holders(
        self, tx: Tx, *, organization_id: uuid.UUID, user_id: str, role: str
    ) -> list[RoleHolder]:
        """The member `user_id` and every holder of `role`, locked until the transaction ends."""
        ...

    async def find_role(self, tx: Tx, *, organization_id: uuid.UUID, name: str) -> Role | None:
        """The role called `name` in the organization, or None."""
        ...

    async def create_invitation(
        self,
        tx: Tx,
        *,
        organization_id: uuid.UUID,
        email: str,
        role: str,
        invited_by: str,
        expires_in: timedelta = timedelta(days=7),
    ) -> tuple[Invitation, str]:
        """Create an invitation; returns it with its token, which is not stored."""
        ...

    async def find_invitation_by_token(self, tx: Tx, *, token: str) -> Invitation | None:
        """The invitation this token belongs to, pending or not, or None."""
        ...

    async def accept_invitation(self, tx: Tx, *, token: str, user_id: str) -> Member:
        """Use an invitation once, before it expires: the user becomes a member."""
        ...

    async def create_api_key(
        self,
        tx: Tx,
        *,
        organization_id: uuid.UUID,
        name: str,
        role: str | None = None,
        capabilities: Iterable[str] | None = None,
        published_only: bool = False,
        instance_admin: bool = False,
        expires_at: datetime | None = None,
        created_by: str | None = None,
    ) -> tuple[ApiKey, str]:
        """Create a key with a role or a list of capabilities; its secret is returned only here."""
        ...

    async def find_api_key_by_secret(self, tx: Tx, *, secret: str) -> ApiKey | None:
        """The active key with this secret, or None."""
        ...

    async def list_api_keys(self, tx: Tx, *, organization_id: uuid.UUID) -> list[ApiKey]:
        """The organization's keys, newest first, revoked and expired ones included."""
        ...

    async def revoke_api_key(
        self, tx: Tx, *, organization_id: uuid.UUID, key_id: uuid.UUID
    ) -> bool:
        """Revoke a key for good; False when the organization has no such active key."""
        ...

    async def create_user(
        self, tx: Tx, *, email: str, name: str, password: str | None = None
    ) -> User:
        """Create a user, with a password credential when a password is given."""
        ...

    async def find_user_by_id(self, tx: Tx, *, user_id: str) -> User | None:
        """The user with this id, or None."""
        ...

    async def create_user_profile(
        self,
        tx: Tx,
        *,
        user_id: str,
        role: str = "editor",
        preferences: dict[str, Any] | None = None,
    ) -> UserProfile:
        """Create the profile (instance role, preferences) of a user."""
        ...

    async def sign_in(
        self,
        tx: Tx,
        *,
        email: str,
        password: str,
        ip_address: str | None = None,
        user_agent: str | None = None,
    ) -> tuple[Session, str]:
        """Check a password and start a session; returns it with its bearer token. A wrong
        password and an unknown email fail alike."""
        ...

    async def find_session_by_token(self, tx: Tx, *, token: str) -> Session | None:
        """The live session with this token, or None."""
        ...

    async def sign_out(self, tx: Tx, *, token: str) -> bool:
        """End the session with this token; False when there was none."""
        ...


class DatabaseAdapter(
    Transactions,
    Lifecycle,
    Documents,
    Assets,
    Schedules,
    Access,
    SchemaTypes,
    Protocol,
):
    """The whole contract: what a storage backend implements."""
