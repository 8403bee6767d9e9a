"""Members: which users belong to an organization, each with one of its roles.

A member refers to its role by name; the role's capabilities are what the member may do in that
organization. Giving someone a role share-locks the role row, so a concurrent `delete_role` waits
and then sees the new holder instead of deleting a role in use.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

import asyncpg

from server.access.organizations import ORGANIZATION_FIELDS, Organization, organization_from_row
from server.access.users import USER_FIELDS, User
from server.db.pool import Tx
from server.errors import InvalidInputError, NotFoundError

_FIELDS = (
    "id",
    "organization_id",
    "user_id",
    "role",
    "preferences",
    "invitation_id",
    "created_at",
    "updated_at",
)
_COLUMNS = ", ".join(_FIELDS)


@dataclass(frozen=True, slots=True)
class Member:
    id: uuid.UUID
    organization_id: uuid.UUID
    user_id: str
    role: str
    preferences: dict[str, Any] | None
    invitation_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class RoleHolder:
    """A member's role and what it allows (empty when the role is gone)."""

    user_id: str
    role: str
    capabilities: frozenset[str]


def _member(row: asyncpg.Record, prefix: str = "") -> Member:
    return Member(**{name: row[prefix + name] for name in _FIELDS})


def _prefixed(alias: str, fields: tuple[str, ...]) -> str:
    return ", ".join(f"{alias}.{name} AS {alias}_{name}" for name in fields)


async def raise_unknown_role(tx: Tx, organization_id: uuid.UUID, role: str) -> NoReturn:
    """Raise the error for a role the organization lacks, or for a missing organization."""
    if not await tx.fetchval(
        "SELECT EXISTS (SELECT 1 FROM cms_organizations WHERE id = $1)", organization_id
    ):
        raise NotFoundError("no such organization")
    raise InvalidInputError(f"the organization has no role {role!r}", path="role")


async def upsert_member(
    tx: Tx,
    *,
    organization_id: uuid.UUID,
    user_id: str,
    role: str,
    invitation_id: uuid.UUID | None = None,
    replace: bool = False,
) -> Member | None:
    """Add a member with one of the organization's roles; None when it has no such role.

    With `replace`, a user who is already a member gets the new role; without it, that is a
    `ConflictError`.
    """
    conflict = (
        "ON CONFLICT (organization_id, user_id) DO UPDATE SET role = EXCLUDED.role,"
        " invitation_id = coalesce(EXCLUDED.invitation_id, m.invitation_id), updated_at = now()"
        if replace
        else ""
    )
    row = await tx.fetchrow(
        f"""INSERT INTO cms_organization_members AS m
                (organization_id, user_id, role, invitation_id)
            SELECT r.organization_id, $2, r.name, $4 FROM cms_organization_roles r
            WHERE r.organization_id = $1 AND r.name = $3
            FOR SHARE
            {conflict}
            RETURNING {_COLUMNS}""",
        organization_id,
        user_id,
        role,
        invitation_id,
    )
    return _member(row) if row else None


class MemberStore:
    """Memberships (`cms_organization_members`)."""

    async def add_member(
        self,
        tx: Tx,
        *,
        organization_id: uuid.UUID,
        user_id: str,
        role: str,
        invitation_id: uuid.UUID | None = None,
    ) -> Member:
        """Make a user a member with one of the organization's roles.

        Raises:
            InvalidInputError: the organization has no such role.
            NotFoundError: no such organization.
            ConflictError: the user is already a member.
        """
        member = await upsert_member(
            tx,
            organization_id=organization_id,
            user_id=user_id,
            role=role,
            invitation_id=invitation_id,
        )
        if member is None:
            await raise_unknown_role(tx, organization_id, role)
        return member

    async def remove_member(self, tx: Tx, *, organization_id: uuid.UUID, user_id: str) -> bool:
        """End a membership. Returns False when the user was not a member."""
        return bool(
            await tx.fetchval(
                "DELETE FROM cms_organization_members WHERE organization_id = $1 AND user_id = $2"
                " RETURNING true",
                organization_id,
                user_id,
            )
        )

    async def update_member_role(
        self, tx: Tx, *, organization_id: uuid.UUID, user_id: str, role: str
    ) -> Member:
        """Give a member another of the organization's roles.

        Raises:
            InvalidInputError: the organization has no such role.
            NotFoundError: the user is not a member.
        """
        row = await tx.fetchrow(
            f"""UPDATE cms_organization_members m SET role = r.name, updated_at = now()
                FROM (SELECT name FROM cms_organization_roles
                      WHERE organization_id = $1 AND name = $3 FOR SHARE) r
                WHERE m.organization_id = $1 AND m.user_id = $2
                RETURNING {_prefixed("m", _FIELDS)}""",
            organization_id,
            user_id,
            role,
        )
        if row is not None:
            return _member(row, "m_")
        if await self.find_user_membership(tx, user_id=user_id, organization_id=organization_id):
            await raise_unknown_role(tx, organization_id, role)
        raise NotFoundError("the user is not a member of this organization")

    async def find_user_membership(
        self, tx: Tx, *, user_id: str, organization_id: uuid.UUID
    ) -> Member | None:
        """The user's membership in the organization, or None."""
        row = await tx.fetchrow(
            f"SELECT {_COLUMNS} FROM cms_organization_members"
            " WHERE organization_id = $1 AND user_id = $2",
            organization_id,
            user_id,
        )
        return _member(row) if row else None

    async def find_user_organizations(
        self, tx: Tx, *, user_id: str
    ) -> list[tuple[Organization, Member]]:
        """Every organization the user belongs to, with the membership, by organization name."""
        rows = await tx.fetch(
            f"""SELECT {_prefixed("o", ORGANIZATION_FIELDS)}, {_prefixed("m", _FIELDS)}
                FROM cms_organization_members m
                JOIN cms_organizations o ON o.id = m.organization_id
                WHERE m.user_id = $1 ORDER BY o.name, o.id""",
            user_id,
        )
        return [(organization_from_row(row, "o_"), _member(row, "m_")) for row in rows]

    async def find_organization_members(
        self, tx: Tx, *, organization_id: uuid.UUID
    ) -> list[Member]:
        """The organization's members, oldest membership first."""
        rows = await tx.fetch(
            f"SELECT {_COLUMNS} FROM cms_organization_members WHERE organization_id = $1"
            " ORDER BY created_at, user_id",
            organization_id,
        )
        return [_member(row) for row in rows]

    async def find_members_with_users(
        self, tx: Tx, *, organization_id: uuid.UUID
    ) -> list[tuple[Member, User | None]]:
        """The organization's members with their users (None for a user who is gone), oldest
        membership first, in one statement."""
        rows = await tx.fetch(
            f"""SELECT {_prefixed("m", _FIELDS)}, {_prefixed("u", USER_FIELDS)}
                FROM cms_organization_members m LEFT JOIN users u ON u.id = m.user_id
                WHERE m.organization_id = $1 ORDER BY m.created_at, m.user_id""",
            organization_id,
        )
        return [
            (_member(row, "m_"), User.from_row(row, "u_") if row["u_id"] is not None else None)
            for row in rows
        ]

    async def has_member_with_email(
        self, tx: Tx, *, organization_id: uuid.UUID, email: str
    ) -> bool:
        """Whether a member's user has this email (give it lower-cased)."""
        return bool(
            await tx.fetchval(
                """SELECT EXISTS (SELECT 1 FROM cms_organization_members m
                                  JOIN users u ON u.id = m.user_id
                                  WHERE m.organization_id = $1 AND lower(u.email) = $2)""",
                organization_id,
                email,
            )
        )

    async def lock_role_holders(
        self, tx: Tx, *, organization_id: uuid.UUID, user_id: str, role: str
    ) -> list[RoleHolder]:
        """The member `user_id` and every holder of `role`, with their roles' capabilities,
        locked until the transaction ends (so two concurrent changes of them take turns)."""
        rows = await tx.fetch(
            """SELECT m.user_id, m.role, r.capabilities
               FROM cms_organization_members m
               LEFT JOIN cms_organization_roles r
                 ON r.organization_id = m.organization_id AND r.name = m.role
               WHERE m.organization_id = $1 AND (m.role = $3 OR m.user_id = $2)
               FOR UPDATE OF m""",
            organization_id,
            user_id,
            role,
        )
        return [
            RoleHolder(
                user_id=row["user_id"],
                role=row["role"],
                capabilities=frozenset(row["capabilities"] or ()),
            )
            for row in rows
        ]

    async def capabilities_for_member(
        self, tx: Tx, *, organization_id: uuid.UUID, user_id: str
    ) -> frozenset[str]:
        """What the user's role allows in the organization; empty when the user is not a member."""
        capabilities = await tx.fetchval(
            """SELECT r.capabilities FROM cms_organization_members m
               JOIN cms_organization_roles r
                 ON r.organization_id = m.organization_id AND r.name = m.role
               WHERE m.organization_id = $1 AND m.user_id = $2""",
            organization_id,
            user_id,
        )
        return frozenset(capabilities or ())
