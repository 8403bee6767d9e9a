"""Organization roles: named capability sets; four are built in, more can be added.

Members refer to a role by name. Built-in roles are seeded with each organization and can be neither
deleted nor given other capabilities; custom roles can, while no member holds them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from server.access.capabilities import (
    BUILT_IN_ROLES,
    INSTANCE_CAPABILITIES,
    normalize_capabilities,
    ordered,
)
from server.db.pool import Tx
from server.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError

_ROLE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,99}")

_DESCRIPTIONS = {
    "owner": "Full control of the organization",
    "admin": "Manages members, roles, API keys and settings, and all content",
    "editor": "Creates, edits and publishes documents and assets",
    "viewer": "Reads documents and assets",
}

_BUILT_IN_ROWS = [
    {"name": name, "description": _DESCRIPTIONS[name], "capabilities": ordered(capabilities)}
    for name, capabilities in BUILT_IN_ROLES.items()
]

_COLUMNS = (
    "id, organization_id, name, description, capabilities, is_built_in, created_at, updated_at"
)


@dataclass(frozen=True, slots=True)
class Role:
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    description: str | None
    capabilities: frozenset[str]
    is_built_in: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Role:
        values: dict[str, Any] = dict(row.items())
        values["capabilities"] = frozenset(values["capabilities"])
        return cls(**values)


async def upsert_builtin_roles(tx: Tx, organization_id: uuid.UUID) -> list[Role]:
    """Insert the missing built-in roles and force the existing ones back to their built-in set."""
    rows = await tx.fetch(
        f"""INSERT INTO cms_organization_roles AS t
                (organization_id, name, description, capabilities, is_built_in)
            SELECT $1, r.name, r.description, r.capabilities, true
            FROM jsonb_to_recordset($2::jsonb) AS r(name text, description text, capabilities jsonb)
            ON CONFLICT (organization_id, name) DO UPDATE
            SET capabilities = EXCLUDED.capabilities, is_built_in = true, updated_at = now()
            WHERE t.capabilities IS DISTINCT FROM EXCLUDED.capabilities OR NOT t.is_built_in
            RETURNING {_COLUMNS}""",
        organization_id,
        _BUILT_IN_ROWS,
    )
    return [Role.from_row(row) for row in rows]


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _ROLE_NAME.fullmatch(name):
        raise InvalidInputError(
            "a role name is 1-100 lowercase letters, digits, '-' or '_', starting with a letter",
            path="name",
        )
    return name


def _role_capabilities(capabilities: Iterable[str]) -> list[str]:
    normalized = normalize_capabilities(capabilities)
    if normalized & INSTANCE_CAPABILITIES:
        raise InvalidInputError(
            "schema.manage is an instance capability; an organization role cannot grant it",
            path="capabilities",
        )
    return ordered(normalized)


class RoleStore:
    """Roles of an organization (`cms_organization_roles`)."""

    async def list_roles(self, tx: Tx, *, organization_id: uuid.UUID) -> list[Role]:
        """The organization's roles: owner, admin, editor, viewer, then custom ones by name."""
        rows = await tx.fetch(
            f"SELECT {_COLUMNS} FROM cms_organization_roles WHERE organization_id = $1"
            " ORDER BY is_built_in DESC, array_position($2::text[], name), name",
            organization_id,
            list(BUILT_IN_ROLES),
        )
        return [Role.from_row(row) for row in rows]

    async def find_role(self, tx: Tx, *, organization_id: uuid.UUID, name: str) -> Role | None:
        """The role called `name` in the organization, or None."""
        row = await tx.fetchrow(
            f"SELECT {_COLUMNS} FROM cms_organization_roles"
            " WHERE organization_id = $1 AND name = $2",
            organization_id,
            name,
        )
        return Role.from_row(row) if row else None

    async def create_role(
        self,
        tx: Tx,
        *,
        organization_id: uuid.UUID,
        name: str,
        description: str | None = None,
        capabilities: Iterable[str],
    ) -> Role:
        """Create a custom role; its capabilities are normalised (writes imply reads).

        Raises:
            InvalidInputError: a bad name, an unknown capability, or `schema.manage`.
            ConflictError: the organization already has a role with this name (built-in names too).
            NotFoundError: the organization does not exist.
        """
        row = await tx.fetchrow(
            f"""INSERT INTO cms_organization_roles
                    (organization_id, name, description, capabilities)
                VALUES ($1, $2, $3, $4) RETURNING {_COLUMNS}""",
            organization_id,
            _check_name(name),
            description or None,
            _role_capabilities(capabilities),
        )
        assert row is not None
        return Role.from_row(row)

    async def update_role(
        self,
        tx: Tx,
        *,
        organization_id: uuid.UUID,
        name: str,
        description: str | None = None,
        capabilities: Iterable[str] | None = None,
    ) -> Role:
        """Change a role's description and/or capabilities; None leaves a value as it is.

        An empty description clears it. Built-in roles accept a new description only.

        Raises:
            NotFoundError: there is no such role.
            ForbiddenError: new capabilities for a built-in role.
            InvalidInputError: an unknown capability, or `schema.manage`.
        """
        caps = _role_capabilities(capabilities) if capabilities is not None else None
        row = await tx.fetchrow(
            f"""UPDATE cms_organization_roles
                SET description = CASE WHEN $3::text IS NULL THEN description
                                       ELSE nullif($3::text, '') END,
                    capabilities = coalesce($4::jsonb, capabilities),
                    updated_at = now()
                WHERE organization_id = $1 AND name = $2 AND ($4::jsonb IS NULL OR NOT is_built_in)
                RETURNING {_COLUMNS}""",
            organization_id,
            name,
            description,
            caps,
        )
        if row is not None:
            return Role.from_row(row)
        if await self.find_role(tx, organization_id=organization_id, name=name) is None:
            raise NotFoundError(f"no role {name!r} in this organization")
        raise ForbiddenError(f"the capabilities of the built-in role {name!r} cannot be changed")

    async def delete_role(self, tx: Tx, *, organization_id: uuid.UUID, name: str) -> bool:
        """Delete a custom role. Returns False when there is no such role.

        Raises:
            ForbiddenError: the role is built in.
            ConflictError: members still hold the role.
        """
        # Lock the role first: `add_member` takes a share lock on it, so no member can be given the
        # role between the check below and the delete.
        row = await tx.fetchrow(
            "SELECT id, is_built_in FROM cms_organization_roles"
            " WHERE organization_id = $1 AND name = $2 FOR UPDATE",
            organization_id,
            name,
        )
        if row is None:
            return False
        if row["is_built_in"]:
            raise ForbiddenError(f"the built-in role {name!r} cannot be deleted")
        deleted = await tx.fetchval(
            """DELETE FROM cms_organization_roles WHERE id = $1 AND NOT EXISTS (
                   SELECT 1 FROM cms_organization_members WHERE organization_id = $2 AND role = $3
               ) RETURNING true""",
            row["id"],
            organization_id,
            name,
        )
        if not deleted:
            raise ConflictError(f"the role {name!r} is still assigned to members")
        return True

    async def seed_builtin_roles(self, tx: Tx, *, organization_id: uuid.UUID) -> list[Role]:
        """Create the missing built-in roles and restore their capabilities. Idempotent.

        Returns:
            The built-in roles that were created or repaired (empty when all were in place).
        """
        return await upsert_builtin_roles(tx, organization_id)
