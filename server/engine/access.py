"""Organizations and access as Python calls: `local_api.access`.

    async with local_api.context(org_id, user_id="u1", capabilities=caps) as ctx:
        invitation, token = await local_api.access.invite(ctx, email="ann@example.com", role="editor")
    member = await local_api.access.accept_invitation(token, authorization=f"Bearer {session}")

What each operation needs:

    organizations, children               the caller's context
    members                               not a published-only key (member emails are not for
                                          public frontends)
    api_keys, create_api_key, revoke_api_key   apiKey.manage
    create_organization                   org.settings (a child of the current organization)
    invite                                member.invite
    remove_member                         member.remove
    change_member_role                    member.changeRole
    accept_invitation, sign_out           a user's session token
    sign_in                               nothing

Nobody hands out more than they hold: a new key, an invitation or a new role may carry only
capabilities the caller has, and a member holding capabilities the caller lacks can be neither
removed nor given another role by them (FORBIDDEN). The last owner stays (CONFLICT).

The organization-scoped operations take the caller's `Context`. `sign_in`, `sign_out` and
`accept_invitation` are instance-level: `sign_in` has no credentials yet, and a user who has just
signed up belongs to no organization, so no organization-scoped unit of work can open for them.
They run in the caller's instance-level transaction (`tx`) when given one, else in a short one of
their own. None of the tables they touch has Row-Level Security; the organization-scoped
operations filter by the caller's organization themselves.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from server.access.auth import bearer_token
from server.access.capabilities import normalize_capabilities, ordered
from server.access.credentials import SESSION_TOKEN_PREFIX, ApiKey
from server.access.invitations import Invitation, normalize_email
from server.access.mail import Mailer, invitation_message
from server.access.members import Member
from server.access.organizations import Organization
from server.access.sessions import Session
from server.access.users import User
from server.db.pool import Tx
from server.engine.adapter import Access, Transactions
from server.engine.context import Context, parse_id
from server.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    UnauthenticatedError,
)

# With the types its calls take and return, for its callers.
__all__ = [
    "MAX_KEY_LIFETIME_DAYS",
    "OWNER_ROLE",
    "AccessAPI",
    "AccessAdapter",
    "ApiKey",
    "Mailer",
    "Membership",
    "Organization",
    "check_grantable",
    "key_expiry",
    "ordered",
    "session_token",
]

OWNER_ROLE = "owner"
MAX_KEY_LIFETIME_DAYS = 3650


@dataclass(frozen=True, slots=True)
class Membership:
    """A member of an organization and the user they are (None when the user is gone)."""

    member: Member
    user: User | None


def check_grantable(ctx: Context, capabilities: Iterable[str]) -> None:
    """Refuse handing out capabilities the caller does not hold (`FORBIDDEN`)."""
    if ctx.capabilities is None:
        return
    missing = frozenset(capabilities) - ctx.capabilities
    if missing:
        raise ForbiddenError(
            "not allowed: you cannot grant capabilities you do not hold: "
            + ", ".join(ordered(missing))
        )


def session_token(authorization: str | None) -> str:
    """The session token of an `Authorization: Bearer` header: a signed-in user's, not a key's."""
    try:
        token = bearer_token(authorization)
    except UnauthenticatedError:
        raise UnauthenticatedError(
            "sign in first: send `Authorization: Bearer <session token>`"
        ) from None
    if not token.startswith(SESSION_TOKEN_PREFIX):
        raise ForbiddenError("not allowed: this needs a signed-in user, not an API key")
    return token


def key_expiry(days: int | None) -> datetime | None:
    """When a key made now to last `days` days expires (None: never)."""
    if days is None:
        return None
    if not 1 <= days <= MAX_KEY_LIFETIME_DAYS:
        raise InvalidInputError(
            f"expiresInDays must be 1..{MAX_KEY_LIFETIME_DAYS}", path="expiresInDays"
        )
    return datetime.now(UTC) + timedelta(days=days)


def _actor(ctx: Context) -> str:
    # What `created_by` and `invited_by` record; those columns are never empty.
    if ctx.user_id is None:
        raise ForbiddenError("not allowed: this needs a context with a user id")
    return ctx.user_id


class AccessAdapter(Access, Transactions, Protocol):
    """What the access service and the command line need of the database adapter."""


class AccessAPI:
    """The organization tree, members, invitations, API keys and sign-in sessions."""

    def __init__(self, adapter: AccessAdapter) -> None:
        self.adapter = adapter

    # The organization tree

    async def organizations(
        self, ctx: Context, organization_ids: Sequence[uuid.UUID]
    ) -> list[Organization | None]:
        """The organizations with these ids, in their order (None for one that does not exist).

        The organization tables have no Row-Level Security: ask only for what the caller may see
        of the tree, its organization and the parents of organizations it was shown (its
        ancestors and its subtree).
        """
        found = await self.adapter.find_organizations(
            ctx.tx, organization_ids=list(organization_ids)
        )
        by_id = {organization.id: organization for organization in found}
        return [by_id.get(organization_id) for organization_id in organization_ids]

    async def children(
        self, ctx: Context, parent_ids: Sequence[uuid.UUID]
    ) -> list[list[Organization]]:
        """The children of each parent that the caller sees, by name: all of them below its own
        organization, and below an ancestor only the one on the way down to it."""
        found = await self.adapter.find_children_in_view(
            ctx.tx, parent_ids=list(parent_ids), organization_id=ctx.organization_id
        )
        children: dict[uuid.UUID, list[Organization]] = {key: [] for key in parent_ids}
        for organization in found:
            assert organization.parent_organization_id is not None
            children[organization.parent_organization_id].append(organization)
        return [children[key] for key in parent_ids]

    async def create_organization(self, ctx: Context, *, name: str, slug: str) -> Organization:
        """A child of the caller's organization; a signed-in user becomes its owner."""
        ctx.require("org.settings")
        created = await self.adapter.create_organization(
            ctx.tx,
            name=name,
            slug=slug,
            created_by=_actor(ctx),
            parent_organization_id=ctx.organization_id,
        )
        if ctx.session_id is not None:
            await self.adapter.add_member(
                ctx.tx, organization_id=created.id, user_id=_actor(ctx), role=OWNER_ROLE
            )
        return created

    # Members

    async def members(self, ctx: Context) -> list[Membership]:
        """The organization's members, oldest first."""
        if ctx.published_only:
            raise ForbiddenError("not allowed: published-only keys cannot list members")
        found = await self.adapter.find_members_with_users(
            ctx.tx, organization_id=ctx.organization_id
        )
        return [Membership(member, user) for member, user in found]

    async def remove_member(self, ctx: Context, user_id: str) -> None:
        """End a membership (`NOT_FOUND` for a user who is not a member)."""
        ctx.require("member.remove")
        await self._check_member_change(ctx, user_id, new_role=None)
        await self.adapter.remove_member(
            ctx.tx, organization_id=ctx.organization_id, user_id=user_id
        )

    async def change_member_role(self, ctx: Context, user_id: str, role: str) -> Membership:
        """Give a member another of the organization's roles."""
        ctx.require("member.changeRole")
        check_grantable(ctx, await self.role_capabilities(ctx, role))
        await self._check_member_change(ctx, user_id, new_role=role)
        member = await self.adapter.update_member_role(
            ctx.tx, organization_id=ctx.organization_id, user_id=user_id, role=role
        )
        return Membership(member, await self.adapter.find_user_by_id(ctx.tx, user_id=user_id))

    async def role_capabilities(self, ctx: Context, role: str) -> frozenset[str]:
        """What the organization's role `role` allows (`BAD_USER_INPUT` when it has none)."""
        found = await self.adapter.find_role(ctx.tx, organization_id=ctx.organization_id, name=role)
        if found is None:
            raise InvalidInputError(f"the organization has no role {role!r}", path="role")
        return found.capabilities

    async def _check_member_change(
        self, ctx: Context, user_id: str, *, new_role: str | None
    ) -> None:
        """Refuse changing a member the caller may not touch, or leaving the organization ownerless.

        `new_role` None means the member is removed. The owners and the member are locked until the
        transaction ends, so two concurrent demotions cannot both pass the last-owner check.
        """
        holders = await self.adapter.lock_role_holders(
            ctx.tx, organization_id=ctx.organization_id, user_id=user_id, role=OWNER_ROLE
        )
        target = next((holder for holder in holders if holder.user_id == user_id), None)
        if target is None:
            raise NotFoundError("the user is not a member of this organization")
        if ctx.capabilities is not None and target.capabilities - ctx.capabilities:
            raise ForbiddenError("not allowed: the member holds capabilities you do not hold")
        owners = {holder.user_id for holder in holders if holder.role == OWNER_ROLE}
        if owners == {user_id} and new_role != OWNER_ROLE:
            raise ConflictError(
                "the organization's last owner cannot be removed or demoted; make another member"
                " owner first"
            )

    # Invitations

    async def invite(
        self, ctx: Context, *, email: str, role: str, mailer: Mailer | None = None
    ) -> tuple[Invitation, str | None]:
        """Invite an email address to join with one of the organization's roles.

        With a `mailer`, the token is mailed to the invitee once the invitation has committed.

        Returns:
            The invitation, and its token when it was not mailed (None when it was): the caller
            passes it on then.
        """
        ctx.require("member.invite")
        check_grantable(ctx, await self.role_capabilities(ctx, role))
        address = normalize_email(email)
        if await self.adapter.has_member_with_email(
            ctx.tx, organization_id=ctx.organization_id, email=address
        ):
            raise ConflictError(f"{address} is already a member")
        invitation, token = await self.adapter.create_invitation(
            ctx.tx,
            organization_id=ctx.organization_id,
            email=address,
            role=role,
            invited_by=_actor(ctx),
        )
        if mailer is None:
            return invitation, token
        organization = await self.adapter.find_organization_by_id(
            ctx.tx, organization_id=ctx.organization_id
        )
        inviter = (
            await self.adapter.find_user_by_id(ctx.tx, user_id=_actor(ctx))
            if ctx.session_id is not None
            else None
        )
        message = invitation_message(
            to=invitation.email,
            organization_name=organization.name if organization else "an organization",
            role=invitation.role,
            token=token,
            expires_at=invitation.expires_at,
            invited_by=inviter.name if inviter else None,
        )
        # Sent in the background once the invitation has committed: the transaction never waits
        # on a mail server, a rolled-back invitation is never mailed, and a failure is logged
        # rather than undoing the invitation (a new one can be sent).
        ctx.tx.after_commit(lambda: mailer.send_in_background(message))
        return invitation, None

    async def accept_invitation(
        self, token: str, *, authorization: str | None, tx: Tx | None = None
    ) -> Membership:
        """Join the invitation's organization as the signed-in user of `authorization` (the
        `Authorization` header: `Bearer <session token>`), whose email it was sent to."""
        session_secret = session_token(authorization)
        async with self._instance(tx) as tx:
            session = await self.adapter.find_session_by_token(tx, token=session_secret)
            if session is None:
                raise UnauthenticatedError("invalid or expired session; sign in again")
            invitation = await self.adapter.find_invitation_by_token(tx, token=token)
            if invitation is None:
                raise NotFoundError("no such invitation")
            user = await self.adapter.find_user_by_id(tx, user_id=session.user_id)
            # The token proves access to the mailbox, and only together with that address.
            if user is None or user.email.lower() != invitation.email.lower():
                raise ForbiddenError("not allowed: the invitation was sent to another address")
            member = await self.adapter.accept_invitation(tx, token=token, user_id=user.id)
        return Membership(member, user)

    # API keys

    async def api_keys(self, ctx: Context) -> list[ApiKey]:
        """The organization's keys, newest first, revoked and expired ones included."""
        ctx.require("apiKey.manage")
        return await self.adapter.list_api_keys(ctx.tx, organization_id=ctx.organization_id)

    async def create_api_key(
        self,
        ctx: Context,
        *,
        name: str,
        role: str | None = None,
        capabilities: Sequence[str] | None = None,
        published_only: bool = False,
        expires_in_days: int | None = None,
    ) -> tuple[ApiKey, str]:
        """A key with a role or a capability list, and its secret (shown this once only).

        Instance-admin keys come from the command line only: no caller here may mint one.
        """
        ctx.require("apiKey.manage")
        if (role is None) == (capabilities is None):
            raise InvalidInputError("give either a role or a list of capabilities", path="role")
        granted = (
            await self.role_capabilities(ctx, role)
            if role is not None
            else normalize_capabilities(capabilities or ())
        )
        check_grantable(ctx, granted)
        if ctx.published_only and not published_only:
            raise ForbiddenError("not allowed: a published-only key can create only such keys")
        return await self.adapter.create_api_key(
            ctx.tx,
            organization_id=ctx.organization_id,
            name=name,
            role=role,
            capabilities=capabilities,
            published_only=published_only,
            instance_admin=False,
            expires_at=key_expiry(expires_in_days),
            created_by=ctx.user_id,
        )

    async def revoke_api_key(self, ctx: Context, key_id: str | uuid.UUID) -> None:
        """Revoke an active key of the organization for good (`NOT_FOUND` otherwise)."""
        ctx.require("apiKey.manage")
        revoked = await self.adapter.revoke_api_key(
            ctx.tx, organization_id=ctx.organization_id, key_id=parse_id(key_id)
        )
        if not revoked:
            raise NotFoundError("no such active API key in this organization")

    # Sign-in sessions

    async def sign_in(
        self, *, email: str, password: str, tx: Tx | None = None
    ) -> tuple[Session, str]:
        """Start a user session with an email and a password: the session and its token."""
        async with self._instance(tx) as tx:
            return await self.adapter.sign_in(tx, email=email, password=password)

    async def sign_out(self, *, authorization: str | None, tx: Tx | None = None) -> None:
        """End the session whose token `authorization` carries (`Bearer <session token>`)."""
        token = session_token(authorization)
        async with self._instance(tx) as tx:
            ended = await self.adapter.sign_out(tx, token=token)
        if not ended:
            raise UnauthenticatedError("invalid or expired session")

    @asynccontextmanager
    async def _instance(self, tx: Tx | None) -> AsyncIterator[Tx]:
        # The caller's instance-level transaction, or a short one of our own.
        if tx is not None:
            yield tx
            return
        async with self.adapter.instance_transaction() as own:
            yield own
