"""Sign-in sessions (`sessions`): a user proves a password once and then sends a bearer token.

Not to be confused with `cms_user_sessions`, which only records each user's active organization
(`server.access.organizations`). Tokens read `cms_session_<secret>`; only their SHA-256 is stored (see
`server.access.credentials`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from server.access.credentials import SESSION_TOKEN_PREFIX, new_secret, secret_digest
from server.access.passwords import dummy_hash, hash_password, needs_rehash, verify_password
from server.access.users import PASSWORD_PROVIDER
from server.db.pool import Tx
from server.errors import UnauthenticatedError

SESSION_LIFETIME = timedelta(days=30)
# Profile (instance) roles that may act in every organization with every capability
# (`cms_authenticate` receives them from `server.access.auth`).
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
