"""Sign-in sessions (`sessions`): a user proves a password once and then sends a bearer token.

Not to be confused with `cms_user_sessions`, which only records each user's active organization
(`server.organizations`). Tokens read `cms_session_<secret>`; only their SHA-256 is stored (see
`server.credentials`).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from server.credentials import SESSION_TOKEN_PREFIX, new_secret, secret_digest
from server.db import Tx
from server.errors import UnauthenticatedError
from server.passwords import dummy_hash, hash_password, needs_rehash, verify_password
from server.users import PASSWORD_PROVIDER

SESSION_LIFETIME = timedelta(days=30)
# Profile (instance) roles that may act in every organization with every capability.
INSTANCE_ADMIN_ROLES = ("super_admin", "admin")

_COLUMNS = "id, user_id, expires_at, ip_address, user_agent, created_at, updated_at"
_INVALID = "invalid email or password"


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    user_id: str
    expires_at: datetime
    ip_address: str | None
    user_agent: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Session:
        values: dict[str, Any] = dict(row.items())
        return cls(**values)


@dataclass(frozen=True, slots=True)
class SessionAccess:
    """A live session with what authentication needs about its user, from one statement.

    `organization_id` is the organization the request acts in: the one asked for, else the user's
    active organization (while still a member), else the only organization the user belongs to.
    """

    session_id: str
    user_id: str
    instance_role: str | None
    organization_id: uuid.UUID | None
    organization_exists: bool
    member_role: str | None
    role_capabilities: frozenset[str]

    @property
    def instance_admin(self) -> bool:
        return self.instance_role in INSTANCE_ADMIN_ROLES


class SessionStore:
    """Sign-in, sign-out and session lookup."""

    async def sign_in(
        self,
        tx: Tx,
        *,
        email: str,
        password: str,
        ip_address: str | None = None,
        user_agent: str | None = None,
    ) -> tuple[Session, str]:
        """Check a password and start a session that lasts `SESSION_LIFETIME`.

        A wrong password and an unknown email fail alike, in message and in time (the password is
        checked against a dummy hash when there is no account).

        Returns:
            The session and its bearer token, which is not stored and cannot be shown again.

        Raises:
            UnauthenticatedError: "invalid email or password".
        """
        row = await tx.fetchrow(
            """SELECT u.id, a.id AS account_id, a.password_hash
               FROM users u
               LEFT JOIN accounts a ON a.user_id = u.id AND a.provider_id = $2
               WHERE lower(u.email) = lower($1)""",
            email.strip() if isinstance(email, str) else "",
            PASSWORD_PROVIDER,
        )
        stored = row["password_hash"] if row else None
        checked = stored or dummy_hash()
        ok = await asyncio.to_thread(verify_password, checked, str(password))
        if not ok or row is None or stored is None:
            raise UnauthenticatedError(_INVALID)
        if needs_rehash(stored):
            # Parameters were raised since this hash was made; the password is at hand now.
            await tx.execute(
                "UPDATE accounts SET password_hash = $2, updated_at = now() WHERE id = $1",
                row["account_id"],
                await asyncio.to_thread(hash_password, password),
            )
        token = f"{SESSION_TOKEN_PREFIX}{new_secret()}"
        # The user's expired sessions are swept in the same statement, so the table does not grow
        # with every sign-in without a sign-out.
        session = await tx.fetchrow(
            f"""WITH swept AS (
                    DELETE FROM sessions WHERE user_id = $1 AND expires_at <= now()
                )
                INSERT INTO sessions (user_id, token_hash, expires_at, ip_address, user_agent)
                VALUES ($1, $2, now() + $3::interval, $4, $5) RETURNING {_COLUMNS}""",
            row["id"],
            secret_digest(token),
            SESSION_LIFETIME,
            ip_address,
            user_agent,
        )
        assert session is not None
        return Session.from_row(session), token

    async def find_session_by_token(self, tx: Tx, *, token: str) -> Session | None:
        """The live session with this token; None when unknown or expired."""
        if not token.startswith(SESSION_TOKEN_PREFIX):
            return None
        row = await tx.fetchrow(
            f"SELECT {_COLUMNS} FROM sessions WHERE token_hash = $1 AND expires_at > now()",
            secret_digest(token),
        )
        return Session.from_row(row) if row else None

    async def sign_out(self, tx: Tx, *, token: str) -> bool:
        """End the session with this token. Returns False when there was none."""
        return bool(
            await tx.fetchval(
                "DELETE FROM sessions WHERE token_hash = $1 RETURNING true", secret_digest(token)
            )
        )

    async def find_session_access(
        self, tx: Tx, *, token: str, organization_id: uuid.UUID | None
    ) -> SessionAccess | None:
        """What authentication needs to know about a session token, in one statement.

        That is the session, its user's instance role, and the user's membership in the organization
        the request acts in; None when the token is unknown or expired.

        Args:
            tx: the transaction.
            token: the bearer token.
            organization_id: the organization asked for; None picks the user's active organization
                (while still a member, or an instance admin), else their only membership.
        """
        if not token.startswith(SESSION_TOKEN_PREFIX):
            return None
        row = await tx.fetchrow(
            """WITH s AS (
                   SELECT s.id, s.user_id, p.role AS instance_role,
                          coalesce(p.role = ANY ($3::text[]), false) AS instance_admin
                   FROM sessions s LEFT JOIN cms_user_profiles p ON p.user_id = s.user_id
                   WHERE s.token_hash = $1 AND s.expires_at > now()
               ), target AS (
                   SELECT s.*, coalesce(
                       $2::uuid,
                       (SELECT us.active_organization_id FROM cms_user_sessions us
                        WHERE us.user_id = s.user_id
                          AND (s.instance_admin OR EXISTS (
                              SELECT 1 FROM cms_organization_members m
                              WHERE m.organization_id = us.active_organization_id
                                AND m.user_id = s.user_id))),
                       (SELECT (array_agg(m.organization_id))[1] FROM cms_organization_members m
                        WHERE m.user_id = s.user_id HAVING count(*) = 1)
                   ) AS organization_id
                   FROM s
               )
               SELECT t.id AS session_id, t.user_id, t.instance_role, t.organization_id,
                      o.id IS NOT NULL AS organization_exists, m.role AS member_role,
                      r.capabilities AS role_capabilities
               FROM target t
               LEFT JOIN cms_organizations o ON o.id = t.organization_id
               LEFT JOIN cms_organization_members m
                 ON m.organization_id = t.organization_id AND m.user_id = t.user_id
               LEFT JOIN cms_organization_roles r
                 ON r.organization_id = m.organization_id AND r.name = m.role""",
            secret_digest(token),
            organization_id,
            list(INSTANCE_ADMIN_ROLES),
        )
        if row is None:
            return None
        values: dict[str, Any] = dict(row.items())
        values["role_capabilities"] = frozenset(values["role_capabilities"] or ())
        return SessionAccess(**values)
