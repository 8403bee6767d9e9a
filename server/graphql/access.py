"""Organizations and access: the caller, the organization tree, members, invitations, API keys and
sign-in sessions.

Thin, as every resolver: the access service (`server/engine/access.py`, `local_api.access`) checks
capabilities and input, holds the rules (nobody hands out more than they hold, the last owner
stays) and runs the instance-level operations (`signIn`, `signOut`, `acceptInvitation`) in a
transaction of its own; these resolvers translate arguments and results. `me` and `organization`
need authentication only.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry
from strawberry.dataloader import DataLoader

from server.engine.access import AccessAPI, ApiKey, Membership, Organization, ordered
from server.engine.context import Context
from server.errors import NotFoundError
from server.graphql import types as static
from server.graphql.context import RequestContext


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

    def __init__(self, access: AccessAPI, ctx: Context) -> None:
        self.access = access
        self.ctx = ctx
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
        # Only the caller's own organization, and the parents of organizations it sees, are ever
        # asked for: its ancestors and subtree.
        found = await self.access.organizations(self.ctx, ids)
        return [self.info(organization) if organization else None for organization in found]

    async def _load_children(self, ids: list[uuid.UUID]) -> list[list[OrganizationInfo]]:
        found = await self.access.children(self.ctx, ids)
        return [[self.info(child) for child in children] for children in found]


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


async def _unit(info: strawberry.Info) -> tuple[RequestContext, AccessAPI, Context]:
    """The request, the access service, and the request's unit of work."""
    context: RequestContext = info.context
    return context, context.api.access, await context.unit()


def _member_info(found: Membership) -> MemberInfo:
    return MemberInfo(
        userId=found.member.user_id,
        role=found.member.role,
        createdAt=found.member.created_at,
        email=found.user.email if found.user else None,
        name=found.user.name if found.user else None,
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


@strawberry.type
class AccessQueries:
    @strawberry.field(description="The caller: organization, capabilities and kind")
    async def me(self, info: strawberry.Info) -> Me:
        context, access, unit = await _unit(info)
        principal = await context.principal()
        return Me(
            userId=principal.user_id,
            capabilities=ordered(principal.capabilities),
            publishedOnly=principal.published_only,
            instanceAdmin=principal.instance_admin,
            kind="apiKey" if principal.key_id is not None else "user",
            organization_id=principal.organization_id,
            tree=OrganizationTree(access, unit),
        )

    @strawberry.field(
        description="The current organization: up the tree its ancestors, down it its subtree"
    )
    async def organization(self, info: strawberry.Info) -> OrganizationInfo:
        _, access, unit = await _unit(info)
        return await OrganizationTree(access, unit).get(unit.organization_id)

    @strawberry.field(description="The current organization's members, oldest first")
    async def members(self, info: strawberry.Info) -> list[MemberInfo]:
        _, access, unit = await _unit(info)
        return [_member_info(found) for found in await access.members(unit)]

    @strawberry.field(description="The organization's API keys, newest first (needs apiKey.manage)")
    async def apiKeys(self, info: strawberry.Info) -> list[ApiKeyInfo]:
        _, access, unit = await _unit(info)
        return [_key_info(key) for key in await access.api_keys(unit)]


@strawberry.type
class AccessMutations:
    @strawberry.mutation(
        description="Create a child of the current organization (needs org.settings); a signed-in"
        " user becomes its owner"
    )
    async def createOrganization(
        self, info: strawberry.Info, name: str, slug: str
    ) -> OrganizationInfo:
        _, access, unit = await _unit(info)
        created = await access.create_organization(unit, name=name, slug=slug)
        return OrganizationTree(access, unit).info(created)

    @strawberry.mutation(
        description="Invite an email address with a role (needs member.invite); the token is"
        " mailed when SMTP is configured"
    )
    async def inviteMember(self, info: strawberry.Info, email: str, role: str) -> InvitationInfo:
        context, access, unit = await _unit(info)
        invitation, token = await access.invite(unit, email=email, role=role, mailer=context.mailer)
        return InvitationInfo(
            id=strawberry.ID(str(invitation.id)),
            email=invitation.email,
            role=invitation.role,
            expiresAt=invitation.expires_at,
            acceptedAt=invitation.accepted_at,
            token=token,
        )

    @strawberry.mutation(
        description="Join the invitation's organization (a signed-in user whose email the"
        " invitation was sent to)"
    )
    async def acceptInvitation(self, info: strawberry.Info, token: str) -> MemberInfo:
        context: RequestContext = info.context
        joined = await context.api.access.accept_invitation(
            token, authorization=context.authorization
        )
        return _member_info(joined)

    @strawberry.mutation(description="End a membership (needs member.remove)")
    async def removeMember(self, info: strawberry.Info, userId: str) -> static.DeleteResult:
        _, access, unit = await _unit(info)
        await access.remove_member(unit, userId)
        return static.DeleteResult(success=True, id=strawberry.ID(userId))

    @strawberry.mutation(description="Give a member another role (needs member.changeRole)")
    async def changeMemberRole(self, info: strawberry.Info, userId: str, role: str) -> MemberInfo:
        _, access, unit = await _unit(info)
        return _member_info(await access.change_member_role(unit, userId, role))

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
        _, access, unit = await _unit(info)
        key, secret = await access.create_api_key(
            unit,
            name=name,
            role=role,
            capabilities=capabilities,
            published_only=bool(publishedOnly),
            expires_in_days=expiresInDays,
        )
        return CreatedApiKey(key=_key_info(key), secret=secret)

    @strawberry.mutation(description="Revoke an API key for good (needs apiKey.manage)")
    async def revokeApiKey(self, info: strawberry.Info, id: strawberry.ID) -> static.DeleteResult:
        _, access, unit = await _unit(info)
        await access.revoke_api_key(unit, id)
        return static.DeleteResult(success=True, id=id)

    @strawberry.mutation(description="Start a user session with an email and a password")
    async def signIn(self, info: strawberry.Info, email: str, password: str) -> SignInResult:
        context: RequestContext = info.context
        session, token = await context.api.access.sign_in(email=email, password=password)
        return SignInResult(token=token, expiresAt=session.expires_at, userId=session.user_id)

    @strawberry.mutation(description="End the session whose token this request carries")
    async def signOut(self, info: strawberry.Info) -> static.DeleteResult:
        context: RequestContext = info.context
        await context.api.access.sign_out(authorization=context.authorization)
        return static.DeleteResult(success=True)
