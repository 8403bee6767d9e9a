"""Who is calling: the `Authorization: Bearer` header becomes a `Principal`.

Two kinds of bearer token exist (see `server.access.credentials`):

- API keys (`cms_<prefix>_<secret>`) are bound to one organization and carry a role or an explicit
  capability list; `published_only` keys are for public frontends (they read published content
  only, so document writes, whose answers show the draft, never take effect for them);
  `instance_admin` keys may also manage schema types.
- Sign-in session tokens (`cms_session_<secret>`) act for a user in the organization named by
  `X-Organization-Id`, else in the user's active organization, else in the only one they belong to.

`schema.manage` is an instance capability: only instance admins (profile role super_admin or admin)
and instance-admin keys hold it. An organization owner alone does not.

The lookup and the refusals are one SQL function, `cms_authenticate` (migration 0004), so that a
GraphQL request can check its credential and enter its organization in one round trip
(`server.access.opening`); the capabilities are derived here, from the facts it returns.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from server.access.capabilities import (
    ALL_CAPABILITIES,
    DOCUMENT_WRITES,
    INSTANCE_CAPABILITIES,
    has_capability,
    missing,
)
from server.access.credentials import (
    API_KEY_PREFIX,
    LAST_USED_RESOLUTION_SECONDS,
    SESSION_TOKEN_PREFIX,
    secret_digest,
)
from server.access.sessions import INSTANCE_ADMIN_ROLES
from server.db.pool import Tx
from server.errors import (
    CMSError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    UnauthenticatedError,
)

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
            raise missing(capability)


# Each refusal of `cms_authenticate` (migration 0004) has its own SQLSTATE; the messages live here.
INVALID_KEY = "invalid, revoked or expired API key"
REFUSALS: dict[str, Callable[[], CMSError]] = {
    "CM001": lambda: UnauthenticatedError(INVALID_KEY),
    "CM002": lambda: UnauthenticatedError("invalid or expired session; sign in again"),
    "CM003": lambda: ForbiddenError("this API key belongs to another organization"),
    "CM004": lambda: ForbiddenError("choose an organization: X-Organization-Id"),
    "CM005": lambda: ForbiddenError("you are not a member of this organization"),
    "CM006": lambda: NotFoundError("no such organization"),
}


@dataclass(frozen=True, slots=True)
class Credential:
    """A bearer credential as checked in Python, before any database work.

    Attributes:
        kind: `key` or `session`.
        digest: the hex SHA-256 of the whole secret (what `key_hash` and `token_hash` store).
        organization_id: the organization asked for (`X-Organization-Id`), if any.
    """

    kind: str
    digest: str
    organization_id: uuid.UUID | None


# The credentials of the last callers are kept by their headers: a client sends the same ones on
# every request, and reading one (the digest of its secret, the organization's id) costs a few
# microseconds each time. A refused header is not kept (`lru_cache` keeps no exception), the
# secrets kept are those the process reads on every request anyway, and only headers of ordinary
# length are kept.
_KEPT_HEADER_LENGTH = 512


def parse_credential(authorization: str | None, organization_header: str | None) -> Credential:
    """The credential a request carries, or the error that refuses it without a database query.

    Raises:
        UnauthenticatedError: no bearer token, or one that is neither an API key nor a session token.
        InvalidInputError: `X-Organization-Id` is not a UUID.
    """
    if (
        authorization is not None
        and len(authorization) <= _KEPT_HEADER_LENGTH
        and (organization_header is None or len(organization_header) <= _KEPT_HEADER_LENGTH)
    ):
        return _kept_credential(authorization, organization_header)
    return _read_credential(authorization, organization_header)


@functools.lru_cache(maxsize=1024)
def _kept_credential(authorization: str, organization_header: str | None) -> Credential:
    return _read_credential(authorization, organization_header)


def _read_credential(authorization: str | None, organization_header: str | None) -> Credential:
    token = bearer_token(authorization)
    organization_id = _organization_id(organization_header)
    if token.startswith(SESSION_TOKEN_PREFIX):
        return Credential("session", secret_digest(token), organization_id)
    if token.startswith(API_KEY_PREFIX):
        return Credential("key", secret_digest(token), organization_id)
    raise UnauthenticatedError(INVALID_KEY)


class refusals:  # noqa: N801 (used as a function: `with refusals():`)
    """Turn a refusal raised by `cms_authenticate` into its domain error. A class rather than a
    generator: every compiled read enters it, and a generator-based context manager costs a few
    microseconds more each time."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, asyncpg.PostgresError):
            refusal = REFUSALS.get(exc.sqlstate)
            if refusal is not None:
                raise refusal() from None


async def authenticate(
    tx: Tx, *, authorization: str | None, organization_header: str | None
) -> Principal:
    """Resolve the request's credentials to a `Principal`.

    Cost: one statement (`cms_authenticate`, which also bumps an API key's `last_used_at`), none for
    a missing or malformed header. GraphQL requests run the same check inside their opening round
    trip instead (`server.access.opening`).

    Args:
        tx: an instance-level, read-write transaction (the tables read here have no Row-Level
            Security).
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
    credential = parse_credential(authorization, organization_header)
    with refusals():
        facts = await tx.fetchval(
            "SELECT cms_authenticate($1, $2, $3, $4, $5)",
            credential.kind,
            credential.digest,
            credential.organization_id,
            LAST_USED_RESOLUTION_SECONDS,
            list(INSTANCE_ADMIN_ROLES),
        )
    return principal_from_facts(facts)


@functools.lru_cache(maxsize=1024)
def principal_from_text(facts: str) -> Principal:
    """The caller from `app.principal`'s text. A `Principal` is immutable and follows from the
    text alone, so the same caller's next requests need not decode it again."""
    return principal_from_facts(orjson.loads(facts))


def principal_from_facts(facts: Mapping[str, Any]) -> Principal:
    """The caller from what `cms_authenticate` found (kept in `app.principal` by the opening).

    The organization's checks are done by then; what remains are the capabilities. Organization
    roles cannot hold instance capabilities: an instance-admin key adds them, and an instance admin
    signed in holds every capability in every organization.
    """
    organization_id = uuid.UUID(facts["organization_id"])
    granted = frozenset(facts["granted"] or ())
    instance_admin = bool(facts["instance_admin"])
    if facts["kind"] == "key":
        key_id = uuid.UUID(facts["key_id"])
        capabilities = granted - INSTANCE_CAPABILITIES
        if instance_admin:
            capabilities |= INSTANCE_CAPABILITIES
        if facts["published_only"]:
            # Its role may have gained document writes since the key was made.
            capabilities -= DOCUMENT_WRITES
        return Principal(
            organization_id=organization_id,
            user_id=f"{API_KEY_USER_PREFIX}{key_id}",
            capabilities=capabilities,
            published_only=bool(facts["published_only"]),
            instance_admin=instance_admin,
            key_id=key_id,
        )
    return Principal(
        organization_id=organization_id,
        user_id=str(facts["user_id"]),
        capabilities=ALL_CAPABILITIES if instance_admin else granted - INSTANCE_CAPABILITIES,
        instance_admin=instance_admin,
        session_id=str(facts["session_id"]),
    )


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header (`UNAUTHENTICATED` without one)."""
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
