"""User profiles: the CMS side of a user (instance role and preferences), beside the auth tables.

The instance role is one of super_admin, admin, editor, viewer; a check constraint holds the same
list.
The first profile ever created is how first-user detection works (`has_any_user_profiles`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from server.db.pool import Tx
from server.errors import ConflictError, InvalidInputError, NotFoundError

INSTANCE_ROLES = ("super_admin", "admin", "editor", "viewer")

_COLUMNS = "user_id, role, preferences, created_at, updated_at"


@dataclass(frozen=True, slots=True)
class UserProfile:
    user_id: str
    role: str
    preferences: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> UserProfile:
        values: dict[str, Any] = dict(row.items())
        values["preferences"] = values["preferences"] or {}
        return cls(**values)


def _check_role(role: str) -> str:
    if role not in INSTANCE_ROLES:
        raise InvalidInputError(
            f"the instance role must be one of {', '.join(INSTANCE_ROLES)}", path="role"
        )
    return role


def _check_preferences(preferences: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(preferences, dict):
        raise InvalidInputError("preferences must be an object", path="preferences")
    return preferences


class ProfileStore:
    """User profiles (`cms_user_profiles`)."""

    async def create_user_profile(
        self,
        tx: Tx,
        *,
        user_id: str,
        role: str = "editor",
        preferences: dict[str, Any] | None = None,
    ) -> UserProfile:
        """Create the profile of a user.

        Raises:
            InvalidInputError: an unknown instance role or preferences that are not an object.
            ConflictError: the user already has a profile.
        """
        row = await tx.fetchrow(
            f"""INSERT INTO cms_user_profiles (user_id, role, preferences) VALUES ($1, $2, $3)
                ON CONFLICT (user_id) DO NOTHING RETURNING {_COLUMNS}""",
            user_id,
            _check_role(role),
            _check_preferences(preferences) if preferences is not None else None,
        )
        if row is None:
            raise ConflictError("the user already has a profile")
        return UserProfile.from_row(row)

    async def find_user_profile(self, tx: Tx, *, user_id: str) -> UserProfile | None:
        """The user's profile, or None."""
        row = await tx.fetchrow(
            f"SELECT {_COLUMNS} FROM cms_user_profiles WHERE user_id = $1", user_id
        )
        return UserProfile.from_row(row) if row else None

    async def update_user_role(self, tx: Tx, *, user_id: str, role: str) -> UserProfile:
        """Change the user's instance role.

        Raises:
            InvalidInputError: an unknown instance role.
            NotFoundError: the user has no profile.
        """
        row = await tx.fetchrow(
            f"UPDATE cms_user_profiles SET role = $2, updated_at = now() WHERE user_id = $1"
            f" RETURNING {_COLUMNS}",
            user_id,
            _check_role(role),
        )
        if row is None:
            raise NotFoundError("the user has no profile")
        return UserProfile.from_row(row)

    async def update_user_preferences(
        self, tx: Tx, *, user_id: str, preferences: dict[str, Any]
    ) -> UserProfile:
        """Merge `preferences` into the stored ones, key by key (a shallow merge).

        Raises:
            InvalidInputError: preferences that are not an object.
            NotFoundError: the user has no profile.
        """
        row = await tx.fetchrow(
            f"""UPDATE cms_user_profiles
                SET preferences = coalesce(preferences, '{{}}'::jsonb) || $2::jsonb,
                    updated_at = now()
                WHERE user_id = $1 RETURNING {_COLUMNS}""",
            user_id,
            _check_preferences(preferences),
        )
        if row is None:
            raise NotFoundError("the user has no profile")
        return UserProfile.from_row(row)

    async def delete_user_profile(self, tx: Tx, *, user_id: str) -> bool:
        """Delete the user's profile. Returns False when there was none."""
        return bool(
            await tx.fetchval(
                "DELETE FROM cms_user_profiles WHERE user_id = $1 RETURNING true", user_id
            )
        )

    async def has_any_user_profiles(self, tx: Tx) -> bool:
        """Whether any profile exists: False until the first user arrives."""
        return bool(await tx.fetchval("SELECT EXISTS (SELECT 1 FROM cms_user_profiles)"))
