"""Who is calling: the `Authorization: Bearer` header becomes a `Principal`.

Two kinds of bearer token exist (see `server.credentials`):

- API keys (`cms_<prefix>_<secret>`) are bound to one organization and carry a role or an explicit
  capability list; `published_only` keys are for public frontends; `instance_admin` keys may also
  manage schema types.
- Sign-in session tokens (`cms_session_<secret>`) act for a user in the organization named by
  `X-Organization-Id`, else in the user's active organization, else in the only one they belong to.

`schema.manage` is an instance capability: only instance admins (profile role super_admin or admin)
and instance-admin keys hold it. An organization owner alone does not.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

from server.capabilities import ALL_CAPABILITIES, INSTANCE_CAPABILITIES, has_capability
from server.credentials import API_KEY_PREFIX, SESSION_TOKEN_PREFIX, ApiKey
from server.db import Tx
from server.errors import (
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    UnauthenticatedError,
)
from server.sessions import SessionAccess

API_KEY_USER_PREFIX = "apikey:"


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of one request, in one organization.

    Attributes:
        organization_id: the organization the request acts in.
        user_id: the user's id, or `apikey:<key id>` for an API key (what `created_by` records).
        capabilities: what the caller may do in that organization.
        published_only: the caller may read the published perspective only.
        instance_admin: the caller may act on instance-wide things (schema types).
        key_id: the API key, when the caller is one.
        session_id: the sign-in session, when the caller is a user.
    """

    organization_id: uuid.UUID
    user_id: str
    capabilities: frozenset[str]
    published_only: bool = False
    instance_admin: bool = False
    key_id: uuid.UUID | None = None
    session_id: str | None = None

    def can(self, capability: str) -> bool:
        """Whether the caller holds `capability` (a typo in it raises `ValueError`)."""
        return has_capability(self.capabilities, capability)

    def require(self, capability: str) -> None:
        """Raise `ForbiddenError` unless the caller holds `capability`."""
        if not self.can(capability):
            raise ForbiddenError(f"not allowed: this needs the {capability} capability")


class CredentialLookup(Protocol):
    """The lookups `authenticate` needs; `PostgresAdapter` provides them."""

    async def find_api_key_by_secret(self, tx: Tx, *, secret: str) -> ApiKey | None: ...

    async def find_session_access(
        self, tx: Tx, *, token: str, organization_id: uuid.UUID | None
    ) -> SessionAccess | None: ...


async def authenticate(
    adapter: CredentialLookup,
    tx: Tx,
    *,
    authorization: str | None,
    organization_header: str | None,
) -> Principal:
    """Resolve the request's credentials to a `Principal`.

    Cost: one statement for an API key (the key joined with its role, `last_used_at` bumped in the
    same statement), one statement for a session (the session joined with the user's profile, active
    organization, membership and role), none for a missing or malformed header.

    Args:
        adapter: where credentials are looked up.
        tx: an instance-level, read-write transaction (the tables read here have no Row-Level
            Security); it runs before the request's org-scoped transaction exists.
        authorization: the `Authorization` header, if any.
        organization_header: the `X-Organization-Id` header, if any.

    Returns:
        The caller, bound to one organization.

    Raises:
        UnauthenticatedError: no bearer token, or one that is unknown, revoked or expired.
        InvalidInputError: `X-Organization-Id` is not a UUID.
        ForbiddenError: the organization asked for is not the key's, or the user is not a member, or
            no organization can be chosen for the user.
        NotFoundError: an instance admin asked for an organization that does not exist.
    """
    token = _bearer_token(authorization)
    organization_id = _organization_id(organization_header)
    if token.startswith(SESSION_TOKEN_PREFIX):
        access = await adapter.find_session_access(tx, token=token, organization_id=organization_id)
        if access is None:
            raise UnauthenticatedError("invalid or expired session; sign in again")
        return _session_principal(access)
    if token.startswith(API_KEY_PREFIX):
        key = await adapter.find_api_key_by_secret(tx, secret=token)
        if key is not None:
            return _key_principal(key, organization_id)
    raise UnauthenticatedError("invalid, revoked or expired API key")


def _bearer_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise UnauthenticatedError(
            "authentication required: send `Authorization: Bearer <API key or session token>`"
        )
    return token


def _organization_id(header: str | None) -> uuid.UUID | None:
    if header is None or not header.strip():
        return None
    try:
        return uuid.UUID(header.strip())
    except ValueError:
        raise InvalidInputError(
            "X-Organization-Id must be an organization id (a UUID)", path="X-Organization-Id"
        ) from None


def _key_principal(key: ApiKey, organization_id: uuid.UUID | None) -> Principal:
    if organization_id is not None and organization_id != key.organization_id:
        raise ForbiddenError("this API key belongs to another organization")
    # Organization roles cannot hold instance capabilities; an instance-admin key adds them.
    capabilities = key.granted - INSTANCE_CAPABILITIES
    if key.instance_admin:
        capabilities |= INSTANCE_CAPABILITIES
    return Principal(
        organization_id=key.organization_id,
        user_id=f"{API_KEY_USER_PREFIX}{key.id}",
        capabilities=capabilities,
        published_only=key.published_only,
        instance_admin=key.instance_admin,
        key_id=key.id,
    )


def _session_principal(access: SessionAccess) -> Principal:
    if access.organization_id is None:
        raise ForbiddenError("choose an organization: X-Organization-Id")
    if access.instance_admin:
        if not access.organization_exists:
            raise NotFoundError("no such organization")
        capabilities = ALL_CAPABILITIES
    elif access.member_role is None:
        raise ForbiddenError("you are not a member of this organization")
    else:
        capabilities = access.role_capabilities - INSTANCE_CAPABILITIES
    return Principal(
        organization_id=access.organization_id,
        user_id=access.user_id,
        capabilities=capabilities,
        instance_admin=access.instance_admin,
        session_id=access.session_id,
    )
