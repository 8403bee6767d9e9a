"""Organizations and access: the caller, the organization tree, members, invitations, API keys and
sign-in sessions.

What each operation needs:

    me, organization                      authentication only
    members                               authentication; not a published-only key (member
                                          emails are not for public frontends)
    apiKeys, createApiKey, revokeApiKey   apiKey.manage
    createOrganization                    org.settings (the child of the current organization)
    inviteMember                          member.invite
    removeMember                          member.remove
    changeMemberRole                      member.changeRole
    acceptInvitation, signOut             a user's session token
    signIn                                nothing

Nobody hands out more than they hold: a new key, an invitation or a new role may carry only
capabilities the caller has, and a member holding capabilities the caller lacks can be neither
removed nor given another role by them (FORBIDDEN). The last owner stays (CONFLICT).

`signIn`, `signOut` and `acceptInvitation` run in a short transaction of their own instead of the
request's unit of work: `signIn` has no credentials yet, and a user who has just signed up belongs
to no organization, so no org-scoped unit can open for them. None of the tables they touch has
Row-Level Security; every other operation here filters by the caller's organization itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import strawberry
from strawberry.dataloader import DataLoader

from server.access.auth import Principal, bearer_token
from server.access.capabilities import normalize_capabilities, ordered
from server.access.credentials import SESSION_TOKEN_PREFIX, ApiKey
from server.access.invitations import Invitation, normalize_email
from server.access.mail import Mailer, invitation_message
from server.access.members import Member
from server.access.organizations import ORGANIZATION_FIELDS, Organization, organization_from_row
from server.access.users import User
from server.db.pool import Tx
from server.engine.context import parse_id
from server.engine.postgres import PostgresAdapter
from server.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    UnauthenticatedError,
)
from server.graphql import types as static
from server.graphql.context import RequestContext
from server.graphql.resolvers import require

OWNER_ROLE = "owner"
MAX_KEY_LIFETIME_DAYS = 3650

_ORGANIZATION_COLUMNS = ", ".join(ORGANIZATION_FIELDS)


@strawberry.type(name="Organization", description="An organization; organizations form a tree.")
class OrganizationInfo:
    id: strawberry.ID
    name: str
    slug: str
    createdAt: datetime
    organization_id: strawberry.Private[uuid.UUID]
    parent_id: strawberry.Private[uuid.UUID | None]
    tree: strawberry.Private[OrganizationTree]

    @strawberry.field(description="The parent organization; null for a root")
    async def parent(self) -> OrganizationInfo | None:
        if self.parent_id is None:
            return None
        return await self.tree.by_id.load(self.parent_id)

    @strawberry.field(
        description="The direct children, by name; of an ancestor, only the one on the way down"
        " to the current organization"
    )
    async def children(self) -> list[OrganizationInfo]:
        return await self.tree.children.load(self.organization_id)


class OrganizationTree:
    """Loads organizations for one request: one statement per level of the tree, not one per node.

    What the caller sees of the tree is its own organization, everything below it, and the line of
    its ancestors up to the root (their names, slugs, ids and creation times). An ancestor's
    `children` lists only the next organization on that line: siblings and their subtrees are
    other tenants' business.
    """

    def __init__(self, tx: Tx, organization_id: uuid.UUID) -> None:
        self.tx = tx
        self.organization_id = organization_id
        self.by_id: DataLoader[uuid.UUID, OrganizationInfo | None] = DataLoader(
            load_fn=self._load_by_id
        )
        self.children: DataLoader[uuid.UUID, list[OrganizationInfo]] = DataLoader(
            load_fn=self._load_children
        )

    def info(self, organization: Organization) -> OrganizationInfo:
        return OrganizationInfo(
            id=strawberry.ID(str(organization.id)),
            name=organization.name,
            slug=organization.slug,
            createdAt=organization.created_at,
            organization_id=organization.id,
            parent_id=organization.parent_organization_id,
            tree=self,
        )

    async def get(self, organization_id: uuid.UUID) -> OrganizationInfo:
        found = await self.by_id.load(organization_id)
        if found is None:
            raise NotFoundError("no such organization")
        return found

    async def _load_by_id(self, ids: list[uuid.UUID]) -> list[OrganizationInfo | None]:
        # The organization tables have no Row-Level Security. Only the caller's own organization,
        # and the parents of organizations it sees, are ever asked for: its ancestors and subtree.
        rows = await self.tx.fetch(
            f"SELECT {_ORGANIZATION_COLUMNS} FROM cms_organizations WHERE id = ANY($1::uuid[])",
            ids,
        )
        found = {row["id"]: self.info(organization_from_row(row)) for row in rows}
        return [found.get(organization_id) for organization_id in ids]

    async def _load_children(self, ids: list[uuid.UUID]) -> list[list[OrganizationInfo]]:
        # `line` is the caller's organization and its ancestors. Below a strict ancestor only the
        # child on the line shows; below the caller's organization (or its descendants), all do.
        rows = await self.tx.fetch(
            f"""WITH RECURSIVE line AS (
                  SELECT id, parent_organization_id FROM cms_organizations WHERE id = $2
                  UNION
                  SELECT o.id, o.parent_organization_id
                  FROM cms_organizations o JOIN line ON o.id = line.parent_organization_id
                )
                SELECT {_ORGANIZATION_COLUMNS} FROM cms_organizations
                WHERE parent_organization_id = ANY($1::uuid[])
                  AND (id IN (SELECT id FROM line)
                       OR parent_organization_id NOT IN (SELECT id FROM line WHERE id <> $2))
                ORDER BY name, id""",
            ids,
            self.organization_id,
        )
        children: dict[uuid.UUID, list[OrganizationInfo]] = {key: [] for key in ids}
        for row in rows:
            children[row["parent_organization_id"]].append(self.info(organization_from_row(row)))
        return [children[key] for key in ids]


@strawberry.type(description="The caller of this request.")
class Me:
    userId: str = strawberry.field(description="the user's id, or `apikey:<key id>` for a key")
    capabilities: list[str]
    publishedOnly: bool
    instanceAdmin: bool
    kind: str = strawberry.field(description='"apiKey" or "user"')
    organization_id: strawberry.Private[uuid.UUID]
    tree: strawberry.Private[OrganizationTree]

    @strawberry.field(description="The organization this request acts in")
    async def organization(self) -> OrganizationInfo:
        return await self.tree.get(self.organization_id)


@strawberry.type(name="Member", description="A user's membership in the current organization.")
class MemberInfo:
    userId: str
    role: str
    email: str | None = None
    name: str | None = None
    createdAt: datetime


@strawberry.type(description="An API key as stored; its secret is never shown again.")
class ApiKeyInfo:
    id: strawberry.ID
    name: str
    prefix: str = strawberry.field(description="the key's first characters, to tell keys apart")
    role: str | None
    capabilities: list[str] = strawberry.field(
        description="what the key may do: its own list, or its role's current capabilities"
    )
    publishedOnly: bool
    instanceAdmin: bool
    expiresAt: datetime | None
    revokedAt: datetime | None
    lastUsedAt: datetime | None
    createdAt: datetime


@strawberry.type(description="A new API key and its secret, which is shown only this once.")
class CreatedApiKey:
    key: ApiKeyInfo
    secret: str


@strawberry.type(name="Invitation", description="An invitation to join the organization.")
class InvitationInfo:
    id: strawberry.ID
    email: str
    role: str
    expiresAt: datetime
    acceptedAt: datetime | None = None
    token: str | None = strawberry.field(
        default=None,
        description="the accept token when this server sends no mail (pass it on yourself);"
        " null when it was mailed to the invitee",
    )


@strawberry.type(description="A sign-in session: send the token as `Authorization: Bearer`.")
class SignInResult:
    token: str
    expiresAt: datetime
    userId: str


def _ctx(info: strawberry.Info) -> RequestContext:
    context: RequestContext = info.context
    return context


def _adapter(context: RequestContext) -> PostgresAdapter:
    return context.api.adapter


def _mailer(context: RequestContext) -> Mailer | None:
    # The process's mailer, built once from SMTP_URL; None when mail is not configured.
    return context.mailer


def _member_info(member: Member, user: User | None) -> MemberInfo:
    return MemberInfo(
        userId=member.user_id,
        role=member.role,
        createdAt=member.created_at,
        email=user.email if user else None,
        name=user.name if user else None,
    )


def _key_info(key: ApiKey) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=strawberry.ID(str(key.id)),
        name=key.name,
        prefix=key.prefix,
        role=key.role,
        capabilities=ordered(key.granted),
        publishedOnly=key.published_only,
        instanceAdmin=key.instance_admin,
        expiresAt=key.expires_at,
        revokedAt=key.revoked_at,
        lastUsedAt=key.last_used_at,
        createdAt=key.created_at,
    )


def _invitation_info(invitation: Invitation, *, token: str | None) -> InvitationInfo:
    return InvitationInfo(
        id=strawberry.ID(str(invitation.id)),
        email=invitation.email,
        role=invitation.role,
        expiresAt=invitation.expires_at,
        acceptedAt=invitation.accepted_at,
        token=token,
    )


def _check_grantable(principal: Principal, capabilities: Iterable[str]) -> None:
    missing = frozenset(capabilities) - principal.capabilities
    if missing:
        raise ForbiddenError(
            "not allowed: you cannot grant capabilities you do not hold: "
            + ", ".join(ordered(missing))
        )


async def _role_capabilities(
    adapter: PostgresAdapter, tx: Tx, organization_id: uuid.UUID, role: str
) -> frozenset[str]:
    found = await adapter.find_role(tx, organization_id=organization_id, name=role)
    if found is None:
        raise InvalidInputError(f"the organization has no role {role!r}", path="role")
    return found.capabilities


async def _check_member_change(
    tx: Tx, principal: Principal, user_id: str, *, new_role: str | None
) -> None:
    """Refuse changing a member the caller may not touch, or leaving the organization ownerless.

    `new_role` None means the member is removed. The owners and the member are locked until the
    transaction ends, so two concurrent demotions cannot both pass the last-owner check.
    """
    rows = await tx.fetch(
        """SELECT m.user_id, m.role, r.capabilities
           FROM cms_organization_members m
           LEFT JOIN cms_organization_roles r
             ON r.organization_id = m.organization_id AND r.name = m.role
           WHERE m.organization_id = $1 AND (m.role = $3 OR m.user_id = $2)
           FOR UPDATE OF m""",
        principal.organization_id,
        user_id,
        OWNER_ROLE,
    )
    target = next((row for row in rows if row["user_id"] == user_id), None)
    if target is None:
        raise NotFoundError("the user is not a member of this organization")
    if frozenset(target["capabilities"] or ()) - principal.capabilities:
        raise ForbiddenError("not allowed: the member holds capabilities you do not hold")
    owners = {row["user_id"] for row in rows if row["role"] == OWNER_ROLE}
    if owners == {user_id} and new_role != OWNER_ROLE:
        raise ConflictError(
            "the organization's last owner cannot be removed or demoted; make another member"
            " owner first"
        )


def _session_token(context: RequestContext) -> str:
    try:
        token = bearer_token(context.authorization)
    except UnauthenticatedError:
        raise UnauthenticatedError(
            "sign in first: send `Authorization: Bearer <session token>`"
        ) from None
    if not token.startswith(SESSION_TOKEN_PREFIX):
        raise ForbiddenError("not allowed: this needs a signed-in user, not an API key")
    return token


def _key_expiry(days: int | None) -> datetime | None:
    if days is None:
        return None
    if not 1 <= days <= MAX_KEY_LIFETIME_DAYS:
        raise InvalidInputError(
            f"expiresInDays must be 1..{MAX_KEY_LIFETIME_DAYS}", path="expiresInDays"
        )
    return datetime.now(UTC) + timedelta(days=days)


@strawberry.type
class AccessQueries:
    @strawberry.field(description="The caller: organization, capabilities and kind")
    async def me(self, info: strawberry.Info) -> Me:
        context = _ctx(info)
        unit = await context.unit()
        principal = await context.principal()
        return Me(
            userId=principal.user_id,
            capabilities=ordered(principal.capabilities),
            publishedOnly=principal.published_only,
            instanceAdmin=principal.instance_admin,
            kind="apiKey" if principal.key_id is not None else "user",
            organization_id=principal.organization_id,
            tree=OrganizationTree(unit.tx, principal.organization_id),
        )

    @strawberry.field(
        description="The current organization: up the tree its ancestors, down it its subtree"
    )
    async def organization(self, info: strawberry.Info) -> OrganizationInfo:
        context = _ctx(info)
        unit = await context.unit()
        return await OrganizationTree(unit.tx, unit.organization_id).get(unit.organization_id)

    @strawberry.field(description="The current organization's members, oldest first")
    async def members(self, info: strawberry.Info) -> list[MemberInfo]:
        context = _ctx(info)
        unit = await context.unit()
        principal = await context.principal()
        if principal.published_only:
            raise ForbiddenError("not allowed: published-only keys cannot list members")
        rows = await unit.tx.fetch(
            """SELECT m.user_id, m.role, m.created_at, u.email, u.name
               FROM cms_organization_members m LEFT JOIN users u ON u.id = m.user_id
               WHERE m.organization_id = $1 ORDER BY m.created_at, m.user_id""",
            unit.organization_id,
        )
        return [
            MemberInfo(
                userId=row["user_id"],
                role=row["role"],
                createdAt=row["created_at"],
                email=row["email"],
                name=row["name"],
            )
            for row in rows
        ]

    @strawberry.field(description="The organization's API keys, newest first (needs apiKey.manage)")
    async def apiKeys(self, info: strawberry.Info) -> list[ApiKeyInfo]:
        context = _ctx(info)
        await require(context, "apiKey.manage")
        unit = await context.unit()
        keys = await _adapter(context).list_api_keys(unit.tx, organization_id=unit.organization_id)
        return [_key_info(key) for key in keys]


@strawberry.type
class AccessMutations:
    @strawberry.mutation(
        description="Create a child of the current organization (needs org.settings); a signed-in"
        " user becomes its owner"
    )
    async def createOrganization(
        self, info: strawberry.Info, name: str, slug: str
    ) -> OrganizationInfo:
        context = _ctx(info)
        await require(context, "org.settings")
        unit = await context.unit()
        principal = await context.principal()
        adapter = _adapter(context)
        created = await adapter.create_organization(
            unit.tx,
            name=name,
            slug=slug,
            created_by=principal.user_id,
            parent_organization_id=principal.organization_id,
        )
        if principal.session_id is not None:
            await adapter.add_member(
                unit.tx, organization_id=created.id, user_id=principal.user_id, role=OWNER_ROLE
            )
        return OrganizationTree(unit.tx, unit.organization_id).info(created)

    @strawberry.mutation(
        description="Invite an email address with a role (needs member.invite); the token is"
        " mailed when SMTP is configured"
    )
    async def inviteMember(self, info: strawberry.Info, email: str, role: str) -> InvitationInfo:
        context = _ctx(info)
        await require(context, "member.invite")
        unit = await context.unit()
        principal = await context.principal()
        adapter = _adapter(context)
        _check_grantable(
            principal, await _role_capabilities(adapter, unit.tx, unit.organization_id, role)
        )
        address = normalize_email(email)
        if await unit.tx.fetchval(
            """SELECT EXISTS (SELECT 1 FROM cms_organization_members m
                              JOIN users u ON u.id = m.user_id
                              WHERE m.organization_id = $1 AND lower(u.email) = $2)""",
            unit.organization_id,
            address,
        ):
            raise ConflictError(f"{address} is already a member")
        invitation, token = await adapter.create_invitation(
            unit.tx,
            organization_id=unit.organization_id,
            email=address,
            role=role,
            invited_by=principal.user_id,
        )
        mailer = _mailer(context)
        if mailer is None:
            return _invitation_info(invitation, token=token)
        organization = await adapter.find_organization_by_id(
            unit.tx, organization_id=unit.organization_id
        )
        inviter = (
            await adapter.find_user_by_id(unit.tx, user_id=principal.user_id)
            if principal.session_id is not None
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
        context.after_commit(lambda: mailer.send_in_background(message))
        return _invitation_info(invitation, token=None)

    @strawberry.mutation(
        description="Join the invitation's organization (a signed-in user whose email the"
        " invitation was sent to)"
    )
    async def acceptInvitation(self, info: strawberry.Info, token: str) -> MemberInfo:
        context = _ctx(info)
        session_token = _session_token(context)
        adapter = _adapter(context)
        async with adapter.instance_transaction() as tx:
            session = await adapter.find_session_by_token(tx, token=session_token)
            if session is None:
                raise UnauthenticatedError("invalid or expired session; sign in again")
            invitation = await adapter.find_invitation_by_token(tx, token=token)
            if invitation is None:
                raise NotFoundError("no such invitation")
            user = await adapter.find_user_by_id(tx, user_id=session.user_id)
            # The token proves access to the mailbox, and only together with that address.
            if user is None or user.email.lower() != invitation.email.lower():
                raise ForbiddenError("not allowed: the invitation was sent to another address")
            member = await adapter.accept_invitation(tx, token=token, user_id=user.id)
        return _member_info(member, user)

    @strawberry.mutation(description="End a membership (needs member.remove)")
    async def removeMember(self, info: strawberry.Info, userId: str) -> static.DeleteResult:
        context = _ctx(info)
        await require(context, "member.remove")
        unit = await context.unit()
        principal = await context.principal()
        await _check_member_change(unit.tx, principal, userId, new_role=None)
        await _adapter(context).remove_member(
            unit.tx, organization_id=unit.organization_id, user_id=userId
        )
        return static.DeleteResult(success=True, id=strawberry.ID(userId))

    @strawberry.mutation(description="Give a member another role (needs member.changeRole)")
    async def changeMemberRole(self, info: strawberry.Info, userId: str, role: str) -> MemberInfo:
        context = _ctx(info)
        await require(context, "member.changeRole")
        unit = await context.unit()
        principal = await context.principal()
        adapter = _adapter(context)
        _check_grantable(
            principal, await _role_capabilities(adapter, unit.tx, unit.organization_id, role)
        )
        await _check_member_change(unit.tx, principal, userId, new_role=role)
        member = await adapter.update_member_role(
            unit.tx, organization_id=unit.organization_id, user_id=userId, role=role
        )
        return _member_info(member, await adapter.find_user_by_id(unit.tx, user_id=userId))

    @strawberry.mutation(
        description="Create an API key with a role or a capability list (needs apiKey.manage);"
        " the secret is shown only in this response"
    )
    async def createApiKey(
        self,
        info: strawberry.Info,
        name: str,
        role: str | None = None,
        capabilities: list[str] | None = None,
        publishedOnly: bool | None = False,
        expiresInDays: int | None = None,
    ) -> CreatedApiKey:
        context = _ctx(info)
        await require(context, "apiKey.manage")
        unit = await context.unit()
        principal = await context.principal()
        adapter = _adapter(context)
        if (role is None) == (capabilities is None):
            raise InvalidInputError("give either a role or a list of capabilities", path="role")
        granted = (
            await _role_capabilities(adapter, unit.tx, unit.organization_id, role)
            if role is not None
            else normalize_capabilities(capabilities or ())
        )
        _check_grantable(principal, granted)
        if principal.published_only and not publishedOnly:
            raise ForbiddenError("not allowed: a published-only key can create only such keys")
        # Instance-admin keys come from the CLI only: no request may mint one.
        key, secret = await adapter.create_api_key(
            unit.tx,
            organization_id=unit.organization_id,
            name=name,
            role=role,
            capabilities=capabilities,
            published_only=bool(publishedOnly),
            instance_admin=False,
            expires_at=_key_expiry(expiresInDays),
            created_by=principal.user_id,
        )
        return CreatedApiKey(key=_key_info(key), secret=secret)

    @strawberry.mutation(description="Revoke an API key for good (needs apiKey.manage)")
    async def revokeApiKey(self, info: strawberry.Info, id: strawberry.ID) -> static.DeleteResult:
        context = _ctx(info)
        await require(context, "apiKey.manage")
        unit = await context.unit()
        revoked = await _adapter(context).revoke_api_key(
            unit.tx, organization_id=unit.organization_id, key_id=parse_id(id)
        )
        if not revoked:
            raise NotFoundError("no such active API key in this organization")
        return static.DeleteResult(success=True, id=id)

    @strawberry.mutation(description="Start a user session with an email and a password")
    async def signIn(self, info: strawberry.Info, email: str, password: str) -> SignInResult:
        adapter = _adapter(_ctx(info))
        async with adapter.instance_transaction() as tx:
            session, token = await adapter.sign_in(tx, email=email, password=password)
        return SignInResult(token=token, expiresAt=session.expires_at, userId=session.user_id)

    @strawberry.mutation(description="End the session whose token this request carries")
    async def signOut(self, info: strawberry.Info) -> static.DeleteResult:
        context = _ctx(info)
        token = _session_token(context)
        adapter = _adapter(context)
        async with adapter.instance_transaction() as tx:
            ended = await adapter.sign_out(tx, token=token)
        if not ended:
            raise UnauthenticatedError("invalid or expired session")
        return static.DeleteResult(success=True)
