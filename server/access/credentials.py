"""Bearer secrets and API keys.

Every bearer secret this server issues starts with `cms_`, so logs and secret scanners can recognise
it: API keys read `cms_<8 hex chars>_<secret>`, sign-in session tokens `cms_session_<secret>`. The
random part is `secrets.token_urlsafe(32)` (256 bits). Only SHA-256 digests are stored: a fast hash is
right here, unlike for passwords, because a 256-bit random secret cannot be guessed however many hashes
per second an attacker computes; and a plain digest allows one indexed lookup per request.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from server.access.capabilities import (
    DOCUMENT_WRITES,
    INSTANCE_CAPABILITIES,
    normalize_capabilities,
    ordered,
)
from server.access.members import raise_unknown_role
from server.db.pool import Tx
from server.errors import InvalidInputError, NotFoundError

API_KEY_PREFIX = "cms_"
SESSION_TOKEN_PREFIX = "cms_session_"  # noqa: S105 (a format marker, not a secret)
# `last_used_at` is a hint for people auditing keys, not a log: one write a minute is plenty.
LAST_USED_RESOLUTION_SECONDS = 60


def new_secret() -> str:
    """256 random bits, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def secret_digest(secret: str) -> str:
    """The hex SHA-256 of a whole bearer secret, as stored in `key_hash` and `token_hash`."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_api_key() -> tuple[str, str]:
    """A new API key and its visible prefix (`cms_` plus 8 hex characters, the key's first 12).

    The public part is hex, so it never holds `_` and no key can be mistaken for a session token.
    """
    visible = f"{API_KEY_PREFIX}{secrets.token_hex(4)}"
    return f"{visible}_{new_secret()}", visible


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as stored (never the secret).

    `capabilities` is the key's own list (None when it acts with a role); `granted` is what it may do
    in its organization: that list, or the role's current capabilities (empty once the role is gone).
    """

    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    prefix: str
    role: str | None
    capabilities: frozenset[str] | None
    granted: frozenset[str]
    published_only: bool
    instance_admin: bool
    created_by: str | None
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime


_FIELDS = (
    "id",
    "organization_id",
    "name",
    "prefix",
    "role",
    "capabilities",
    "published_only",
    "instance_admin",
    "created_by",
    "expires_at",
    "revoked_at",
    "last_used_at",
    "created_at",
)


_COLUMNS = ", ".join(_FIELDS)


def _columns(alias: str) -> str:
    return ", ".join(f"{alias}.{name}" for name in _FIELDS)


def _api_key(row: asyncpg.Record) -> ApiKey:
    own = row["capabilities"]
    granted = own if own is not None else row["role_capabilities"]
    return ApiKey(
        **{name: row[name] for name in _FIELDS if name != "capabilities"},
        capabilities=frozenset(own) if own is not None else None,
        granted=frozenset(granted or ()),
    )


def _key_capabilities(
    capabilities: Iterable[str], *, instance_admin: bool, published_only: bool
) -> list[str]:
    normalized = normalize_capabilities(capabilities)
    if not normalized:
        raise InvalidInputError("give at least one capability", path="capabilities")
    if published_only and normalized & DOCUMENT_WRITES:
        raise InvalidInputError(
            "a published-only key reads published content only; it cannot hold "
            + ", ".join(ordered(normalized & DOCUMENT_WRITES)),
            path="capabilities",
        )
    if normalized & INSTANCE_CAPABILITIES and not instance_admin:
        raise InvalidInputError(
            "schema.manage belongs to instance-admin keys; create the key with instance_admin",
            path="capabilities",
        )
    # An instance-admin key receives schema.manage at authentication, so the stored list holds
    # organization capabilities only, like a role.
    return ordered(normalized - INSTANCE_CAPABILITIES)


class ApiKeyStore:
    """API keys (`api_keys`): one organization each, with a role or an explicit capability list."""

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
        """Create a key; the secret is returned here and never again.

        Args:
            tx: the transaction.
            organization_id: the organization the key acts in.
            name: a label for people (1-200 characters).
            role: one of the organization's roles; the key follows later changes of that role.
            capabilities: an explicit list instead of a role (normalised: writes imply reads).
            published_only: restrict the key to the published perspective (public frontends):
                an explicit list may not hold document writes, and a role's never take effect.
            instance_admin: the key may also manage schema types (`schema.manage`).
            expires_at: when the key stops working; None for never.
            created_by: who created it, for the record.

        Returns:
            The stored key and its secret.

        Raises:
            InvalidInputError: a bad name, not exactly one of role and capabilities, an unknown
                capability or role, or an expiry in the past.
            NotFoundError: no such organization.
        """
        label = name.strip() if isinstance(name, str) else ""
        if not 1 <= len(label) <= 200:
            raise InvalidInputError("the name must be 1-200 characters", path="name")
        if (role is None) == (capabilities is None):
            raise InvalidInputError("give either a role or a list of capabilities", path="role")
        own = (
            _key_capabilities(
                capabilities, instance_admin=instance_admin, published_only=published_only
            )
            if capabilities is not None
            else None
        )
        if expires_at is not None and expires_at.tzinfo is None:
            raise InvalidInputError("expires_at needs a time zone", path="expiresAt")
        if expires_at is not None and expires_at <= datetime.now(UTC):
            raise InvalidInputError("expires_at is in the past", path="expiresAt")
        secret, prefix = new_api_key()
        # One statement: the key is inserted only when its source row (the role, or the organization
        # for a capability list) exists, so a missing one shows as no row, not as an aborted
        # transaction; the role's capabilities come back with it.
        source = (
            "SELECT capabilities FROM cms_organization_roles WHERE organization_id = $1 AND name = $4"
            if role is not None
            else "SELECT NULL::jsonb AS capabilities FROM cms_organizations WHERE id = $1"
        )
        row = await tx.fetchrow(
            f"""WITH source AS ({source}),
                k AS (
                    INSERT INTO api_keys (organization_id, name, prefix, key_hash, role,
                        capabilities, published_only, instance_admin, expires_at, created_by)
                    SELECT $1, $2, $3, $10, $4::text, $5::jsonb, $6, $7, $8, $9 FROM source
                    RETURNING {_COLUMNS}
                )
                SELECT k.*, source.capabilities AS role_capabilities FROM k, source""",
            organization_id,
            label,
            prefix,
            role,
            own,
            published_only,
            instance_admin,
            expires_at,
            created_by,
            secret_digest(secret),
        )
        if row is None:
            if role is not None:
                await raise_unknown_role(tx, organization_id, role)
            raise NotFoundError("no such organization")
        return _api_key(row), secret

    async def list_api_keys(self, tx: Tx, *, organization_id: uuid.UUID) -> list[ApiKey]:
        """The organization's keys, newest first, revoked and expired ones included."""
        rows = await tx.fetch(
            f"""SELECT {_columns("k")}, r.capabilities AS role_capabilities
                FROM api_keys k
                LEFT JOIN cms_organization_roles r
                  ON r.organization_id = k.organization_id AND r.name = k.role
                WHERE k.organization_id = $1 ORDER BY k.created_at DESC, k.id""",
            organization_id,
        )
        return [_api_key(row) for row in rows]

    async def revoke_api_key(
        self, tx: Tx, *, organization_id: uuid.UUID, key_id: uuid.UUID
    ) -> bool:
        """Revoke a key for good. Returns False when the organization has no such active key."""
        return bool(
            await tx.fetchval(
                "UPDATE api_keys SET revoked_at = now()"
                " WHERE organization_id = $1 AND id = $2 AND revoked_at IS NULL RETURNING true",
                organization_id,
                key_id,
            )
        )

    async def find_api_key_by_secret(self, tx: Tx, *, secret: str) -> ApiKey | None:
        """The active key with this secret (None when unknown, revoked or expired).

        Its role's capabilities come with it (`granted`). One statement, which also bumps
        `last_used_at` when it is more than a minute old. The bump skips a row another transaction
        holds locked rather than waiting for it, so concurrent requests with one key never queue;
        it needs a read-write transaction.
        """
        if not secret.startswith(API_KEY_PREFIX) or secret.startswith(SESSION_TOKEN_PREFIX):
            return None
        row = await tx.fetchrow(
            f"""WITH k AS (
                    SELECT {_COLUMNS} FROM api_keys
                    WHERE key_hash = $1 AND revoked_at IS NULL
                      AND (expires_at IS NULL OR expires_at > now())
                ), touched AS (
                    UPDATE api_keys a SET last_used_at = now()
                    FROM (SELECT id FROM api_keys
                          WHERE id = (SELECT id FROM k)
                            AND (last_used_at IS NULL
                                 OR last_used_at < now() - make_interval(secs => $2))
                          FOR UPDATE SKIP LOCKED) due
                    WHERE a.id = due.id
                    RETURNING a.last_used_at
                )
                SELECT {", ".join(f"k.{name}" for name in _FIELDS if name != "last_used_at")},
                       coalesce((SELECT last_used_at FROM touched), k.last_used_at) AS last_used_at,
                       r.capabilities AS role_capabilities
                FROM k LEFT JOIN cms_organization_roles r
                  ON r.organization_id = k.organization_id AND r.name = k.role""",
            secret_digest(secret),
            LAST_USED_RESOLUTION_SECONDS,
        )
        return _api_key(row) if row else None
