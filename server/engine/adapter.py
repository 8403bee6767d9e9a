"""The adapter contract: what a database backend provides, one Protocol per concern.

Every method runs on the caller's transaction (`tx`), so a request's statements share one
transaction and, for tenant data, one organization context. `server.engine.postgres.PostgresAdapter` is
the reference implementation.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any, Protocol

from server.access.invitations import Invitation
from server.access.members import Member, RoleHolder
from server.access.organizations import Organization, UserSession
from server.access.profiles import UserProfile
from server.access.roles import Role
from server.access.users import User
from server.content.documents import DocumentRow, References, Version
from server.db.pool import Tx
from server.model.types import SchemaType
from server.model.unset import UNSET, Unset


class OrganizationAdapter(Protocol):
    """Organizations (a tree), members, roles, invitations, and each user's active organization."""

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

    async def find_organizations(
        self, tx: Tx, *, organization_ids: Sequence[uuid.UUID]
    ) -> list[Organization]:
        """The organizations with these ids that exist, in no particular order."""
        ...

    async def find_children_in_view(
        self, tx: Tx, *, parent_ids: Sequence[uuid.UUID], organization_id: uuid.UUID
    ) -> list[Organization]:
        """The children of `parent_ids` that `organization_id` sees (its subtree whole, of each
        ancestor only the child on the line down to it), by name."""
        ...

    async def find_organization_by_slug(self, tx: Tx, *, slug: str) -> Organization | None:
        """The organization with this slug, or None."""
        ...

    async def find_all_organizations(self, tx: Tx) -> list[Organization]:
        """Every organization, by name."""
        ...

    async def update_organization(
        self,
        tx: Tx,
        *,
        organization_id: uuid.UUID,
        name: str | Unset = UNSET,
        slug: str | Unset = UNSET,
        parent_organization_id: uuid.UUID | Unset | None = UNSET,
        metadata: dict[str, Any] | Unset | None = UNSET,
    ) -> Organization:
        """Change the given fields (`UNSET` leaves one alone, None clears it); no cycles."""
        ...

    async def delete_organization(self, tx: Tx, *, organization_id: uuid.UUID) -> bool:
        """Delete an organization and everything in it; False when there was none."""
        ...

    async def get_child_organizations(
        self, tx: Tx, *, parent_organization_id: uuid.UUID
    ) -> list[uuid.UUID]:
        """The ids of every descendant organization."""
        ...

    async def set_active_organization(
        self, tx: Tx, *, user_id: str, organization_id: uuid.UUID
    ) -> UserSession:
        """Record the organization the user works in."""
        ...

    async def find_user_session(self, tx: Tx, *, user_id: str) -> UserSession | None:
        """The user's active-organization record, or None."""
        ...

    async def delete_user_session(self, tx: Tx, *, user_id: str) -> bool:
        """Forget the user's active organization."""
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

    async def find_user_membership(
        self, tx: Tx, *, user_id: str, organization_id: uuid.UUID
    ) -> Member | None:
        """The user's membership in the organization, or None."""
        ...

    async def find_user_organizations(
        self, tx: Tx, *, user_id: str
    ) -> list[tuple[Organization, Member]]:
        """Every organization the user belongs to, with the membership."""
        ...

    async def find_organization_members(
        self, tx: Tx, *, organization_id: uuid.UUID
    ) -> list[Member]:
        """The organization's members."""
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

    async def capabilities_for_member(
        self, tx: Tx, *, organization_id: uuid.UUID, user_id: str
    ) -> frozenset[str]:
        """The capabilities of the user's role in the organization; empty for non-members."""
        ...

    async def list_roles(self, tx: Tx, *, organization_id: uuid.UUID) -> list[Role]:
        """The organization's roles, built-in ones first."""
        ...

    async def find_role(self, tx: Tx, *, organization_id: uuid.UUID, name: str) -> Role | None:
        """The role called `name` in the organization, or None."""
        ...

    async def create_role(
        self,
        tx: Tx,
        *,
        organization_id: uuid.UUID,
        name: str,
        description: str | None = None,
        capabilities: Iterable[str],
    ) -> Role:
        """Create a custom role with normalised capabilities."""
        ...

    async def update_role(
        self,
        tx: Tx,
        *,
        organization_id: uuid.UUID,
        name: str,
        description: str | None = None,
        capabilities: Iterable[str] | None = None,
    ) -> Role:
        """Change a role's description or capabilities (not the capabilities of a built-in role)."""
        ...

    async def delete_role(self, tx: Tx, *, organization_id: uuid.UUID, name: str) -> bool:
        """Delete a custom role no member holds; False when there was none."""
        ...

    async def seed_builtin_roles(self, tx: Tx, *, organization_id: uuid.UUID) -> list[Role]:
        """Create or repair the built-in roles; returns those it changed."""
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
        """The invitation this token belongs to, or None."""
        ...

    async def find_organization_invitations(
        self, tx: Tx, *, organization_id: uuid.UUID, pending_only: bool = False
    ) -> list[Invitation]:
        """The organization's invitations, newest first."""
        ...

    async def find_invitations_by_email(
        self, tx: Tx, *, email: str, pending_only: bool = False
    ) -> list[Invitation]:
        """The invitations sent to an address, newest first."""
        ...

    async def accept_invitation(self, tx: Tx, *, token: str, user_id: str) -> Member:
        """Use an invitation once, before it expires: the user becomes a member."""
        ...

    async def delete_invitation(
        self, tx: Tx, *, invitation_id: uuid.UUID, organization_id: uuid.UUID | None = None
    ) -> bool:
        """Withdraw an invitation; False when there was none."""
        ...

    async def cleanup_expired_invitations(self, tx: Tx) -> int:
        """Delete expired, unaccepted invitations; returns how many."""
        ...


class UserProfileAdapter(Protocol):
    """CMS user profiles: the instance role and preferences of each user."""

    async def create_user_profile(
        self,
        tx: Tx,
        *,
        user_id: str,
        role: str = "editor",
        preferences: dict[str, Any] | None = None,
    ) -> UserProfile:
        """Create the profile of a user."""
        ...

    async def find_user_profile(self, tx: Tx, *, user_id: str) -> UserProfile | None:
        """The user's profile, or None."""
        ...

    async def update_user_role(self, tx: Tx, *, user_id: str, role: str) -> UserProfile:
        """Change the user's instance role."""
        ...

    async def update_user_preferences(
        self, tx: Tx, *, user_id: str, preferences: dict[str, Any]
    ) -> UserProfile:
        """Merge preferences into the stored ones, key by key."""
        ...

    async def delete_user_profile(self, tx: Tx, *, user_id: str) -> bool:
        """Delete the user's profile; False when there was none."""
        ...

    async def has_any_user_profiles(self, tx: Tx) -> bool:
        """Whether any profile exists (first-user detection)."""
        ...


class InstanceAdapter(Protocol):
    """Instance-wide settings and the one-time bootstrap claim."""

    async def get_instance_settings(self, tx: Tx) -> dict[str, Any]:
        """The settings, defaults filled in."""
        ...

    async def update_instance_settings(self, tx: Tx, *, settings: dict[str, Any]) -> dict[str, Any]:
        """Merge settings into the stored ones, key by key; returns the result."""
        ...

    async def try_claim_bootstrap(self, tx: Tx) -> bool:
        """Claim the first-admin promotion; True for exactly one caller, ever."""
        ...


class DocumentAdapter(Protocol):
    """Document rows, their versions and the reference index (see `server.content.documents`)."""

    version_retention: int

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
    ) -> DocumentRow:
        """Replace the draft of a locked document (compare-and-swap on `expected_revision`); a
        `restore` version naming `restored_from` when given."""
        ...

    async def lock_document(self, tx: Tx, *, id: uuid.UUID) -> DocumentRow:
        """A document of the current org, locked until the transaction ends."""
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
    ) -> DocumentRow:
        """Copy the draft to the published plane and record a publish version."""
        ...

    async def unpublish_document(
        self, tx: Tx, *, id: uuid.UUID, updated_by: str | None = None
    ) -> DocumentRow:
        """Clear the published plane."""
        ...

    async def delete_document(self, tx: Tx, *, id: uuid.UUID) -> None:
        """Delete the document with its versions and reference rows."""
        ...

    async def find_document(self, tx: Tx, *, id: uuid.UUID) -> DocumentRow | None:
        """Any readable document, whatever its status."""
        ...

    async def list_versions(
        self, tx: Tx, *, document_id: uuid.UUID, limit: int = 20, offset: int = 0
    ) -> tuple[list[Version], int]:
        """Versions newest first, and their total."""
        ...

    async def get_version(
        self, tx: Tx, *, document_id: uuid.UUID, version_number: int
    ) -> Version | None:
        """One version."""
        ...


class SchemaAdapter(Protocol):
    """Schema types in `cms_schema_types` (instance-wide)."""

    async def register_schema_type(self, tx: Tx, *, schema_type: SchemaType) -> bool:
        """Insert or replace a type by name; True when the stored definition changed."""
        ...

    async def get_schema_type(self, tx: Tx, *, name: str) -> SchemaType | None:
        """One type by name."""
        ...

    async def list_schema_types(self, tx: Tx) -> list[SchemaType]:
        """Every stored type."""
        ...

    async def delete_schema_type(self, tx: Tx, *, name: str) -> bool:
        """Forget a type; its documents stay."""
        ...


class DatabaseAdapter(
    DocumentAdapter,
    SchemaAdapter,
    OrganizationAdapter,
    UserProfileAdapter,
    InstanceAdapter,
    Protocol,
):
    """The whole contract: the stores plus connection, health and tenancy."""

    @property
    def hierarchy_enabled(self) -> bool:
        """Whether reads see descendant organizations."""
        ...

    async def connect(self) -> None:
        """Migrate, open the pool, install or repair Row-Level Security."""
        ...

    async def disconnect(self) -> None:
        """Close the pool."""
        ...

    async def is_healthy(self) -> bool:
        """Whether the database answers."""
        ...

    async def initialize_rls(self) -> None:
        """Create or repair the policies and the request role (idempotent)."""
        ...

    def with_org_context(
        self, organization_id: str | uuid.UUID, *, read_only: bool = False
    ) -> AbstractAsyncContextManager[Tx]:
        """One transaction scoped to the organization; RLS applies to every statement in it."""
        ...

    def system_context(
        self, organization_id: str | uuid.UUID | None = None
    ) -> AbstractAsyncContextManager[Tx]:
        """A transaction that passes every policy: jobs, seeds, migrations; never requests."""
        ...
