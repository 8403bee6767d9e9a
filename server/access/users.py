"""Users (`users`) and their password credentials (`accounts`, provider `credential`).

Emails are stored lower-cased and are unique regardless of case (a unique index on `lower(email)`).
The password hash lives in `accounts`, as in better-auth's tables, so other sign-in providers can sit
beside it later.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from server.access.passwords import check_password, hash_password
from server.db.pool import Tx
from server.errors import InvalidInputError

PASSWORD_PROVIDER = "credential"  # noqa: S105 (a provider name)

USER_FIELDS = ("id", "name", "email", "email_verified", "image", "created_at", "updated_at")
_COLUMNS = ", ".join(USER_FIELDS)


@dataclass(frozen=True, slots=True)
class User:
    id: str
    name: str
    email: str
    email_verified: bool
    image: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: asyncpg.Record, prefix: str = "") -> User:
        """A `User` from a row holding the user columns (optionally prefixed)."""
        values: dict[str, Any] = {name: row[prefix + name] for name in USER_FIELDS}
        return cls(**values)


def normalize_email(email: str) -> str:
    """The email trimmed and lower-cased.

    Raises:
        InvalidInputError: it does not look like `name@domain` or is longer than 254 characters.
    """
    value = email.strip().lower() if isinstance(email, str) else ""
    local, _, domain = value.partition("@")
    # Only a plausibility check: whether an address exists is known only by mailing it.
    if (
        not local
        or not domain
        or "@" in domain
        or len(value) > 254
        or any(c.isspace() for c in value)
    ):
        raise InvalidInputError("invalid email address", path="email")
    return value


class UserStore:
    """Users and their password credentials."""

    async def create_user(
        self, tx: Tx, *, email: str, name: str, password: str | None = None
    ) -> User:
        """Create a user, with a password credential when a password is given.

        Args:
            tx: the transaction.
            email: the sign-in address; stored lower-cased.
            name: the display name (1-200 characters).
            password: at least 8 characters; None creates a user who cannot sign in with a password.

        Raises:
            InvalidInputError: a bad email, name or password.
            ConflictError: a user with this email already exists (in any letter case).
        """
        address = normalize_email(email)
        display = name.strip() if isinstance(name, str) else ""
        if not 1 <= len(display) <= 200:
            raise InvalidInputError("the name must be 1-200 characters", path="name")
        # Argon2 takes a noticeable fraction of a second: keep it off the event loop.
        password_hash = (
            await asyncio.to_thread(hash_password, check_password(password))
            if password is not None
            else None
        )
        row = await tx.fetchrow(
            f"""WITH u AS (
                    INSERT INTO users (name, email) VALUES ($1, $2) RETURNING {_COLUMNS}
                ), a AS (
                    INSERT INTO accounts (user_id, provider_id, account_id, password_hash)
                    SELECT id, $3, id, $4 FROM u WHERE $4::text IS NOT NULL
                )
                SELECT * FROM u""",
            display,
            address,
            PASSWORD_PROVIDER,
            password_hash,
        )
        assert row is not None
        return User.from_row(row)

    async def find_user_by_email(self, tx: Tx, *, email: str) -> User | None:
        """The user with this email (any letter case), or None."""
        row = await tx.fetchrow(
            f"SELECT {_COLUMNS} FROM users WHERE lower(email) = lower($1)", email.strip()
        )
        return User.from_row(row) if row else None

    async def find_user_by_id(self, tx: Tx, *, user_id: str) -> User | None:
        """The user with this id, or None."""
        row = await tx.fetchrow(f"SELECT {_COLUMNS} FROM users WHERE id = $1", user_id)
        return User.from_row(row) if row else None
