"""Organizations, which form a tree, and each user's active organization.

The tree is guarded by a trigger in the first migration: a parent change that would put an
organization below itself fails as a check violation, which surfaces as an `InvalidInputError`.
Every organization is created with its built-in roles (`server.access.roles`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from server.access.roles import upsert_builtin_roles
from server.db.pool import Tx
from server.errors import InvalidInputError, NotFoundError
from server.model.unset import UNSET, Unset

_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")

ORGANIZATION_FIELDS = (
    "id",
    "name",
    "slug",
    "parent_organization_id",
    "metadata",
    "created_by",
    "created_at",
    "updated_at",
)
_COLUMNS = ", ".join(ORGANIZATION_FIELDS)


@dataclass(frozen=True, slots=True)
class Organization:
    id: uuid.UUID
    name: str
    slug: str
    parent_organization_id: uuid.UUID | None
    metadata: dict[str, Any] | None
    created_by: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class UserSession:
    user_id: str
    active_organization_id: uuid.UUID | None
    updated_at: datetime


def organization_from_row(row: asyncpg.Record, prefix: str = "") -> Organization:
    """An `Organization` from a row holding the organization columns (optionally prefixed)."""
    return Organization(**{name: row[prefix + name] for name in ORGANIZATION_FIELDS})


def _check_name(name: str) -> str:
    stripped = name.strip() if isinstance(name, str) else ""
    if not 1 <= len(stripped) <= 200:
        raise InvalidInputError("the name must be 1-200 characters", path="name")
    return stripped


def _check_slug(slug: str) -> str:
    if not isinstance(slug, str) or len(slug) > 100 or not _SLUG.fullmatch(slug):
        raise InvalidInputError(
            "the slug must be 1-100 lowercase letters, digits and single hyphens between them",
            path="slug",
        )
    return slug


class OrganizationStore:
    """Organizations (`cms_organizations`) and active organizations (`cms_user_sessions`)."""

    async def create_organization(
        self,
        tx: Tx,
        *,
        name: str,
        slug: str,
        created_by: str,
        parent_organization_id: uuid.UUID | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Organization:
        """Create an organization together with its four built-in roles.

        Raises:
            InvalidInputError: a bad name or slug.
            ConflictError: a sibling (or, for a root, another root) has the slug.
            NotFoundError: the parent does not exist.
        """
        row = await tx.fetchrow(
            f"""INSERT INTO cms_organizations
                    (name, slug, parent_organization_id, metadata, created_by)
                VALUES ($1, $2, $3, $4, $5) RETURNING {_COLUMNS}""",
            _check_name(name),
            _check_slug(slug),
            parent_organization_id,
            metadata,
            created_by,
        )
        assert row is not None
        organization = organization_from_row(row)
        await upsert_builtin_roles(tx, organization.id)
        return organization

    async def find_organization_by_id(
        self, tx: Tx, *, organization_id: uuid.UUID
    ) -> Organization | None:
        """The organization with this id, or None."""
        row = await tx.fetchrow(
            f"SELECT {_COLUMNS} FROM cms_organizations WHERE id = $1", organization_id
        )
        return organization_from_row(row) if row else None

    async def find_organizations(
        self, tx: Tx, *, organization_ids: Sequence[uuid.UUID]
    ) -> list[Organization]:
        """The organizations with these ids that exist, in no particular order (one statement)."""
        rows = await tx.fetch(
            f"SELECT {_COLUMNS} FROM cms_organizations WHERE id = ANY($1::uuid[])",
            organization_ids,
        )
        return [organization_from_row(row) for row in rows]

    async def find_children_in_view(
        self, tx: Tx, *, parent_ids: Sequence[uuid.UUID], organization_id: uuid.UUID
    ) -> list[Organization]:
        """The children of `parent_ids` that `organization_id` sees, by name (one statement).

        It sees its own subtree whole, and of each strict ancestor only the child on the line down
        to it: siblings and their subtrees are other tenants' business.
        """
        # `line` is the organization and its ancestors. Below a strict ancestor only the child on
        # the line shows; below the organization (or its descendants), all do.
        rows = await tx.fetch(
            f"""WITH RECURSIVE line AS (
                  SELECT id, parent_organization_id FROM cms_organizations WHERE id = $2
                  UNION
                  SELECT o.id, o.parent_organization_id
                  FROM cms_organizations o JOIN line ON o.id = line.parent_organization_id
                )
                SELECT {_COLUMNS} FROM cms_organizations
                WHERE parent_organization_id = ANY($1::uuid[])
                  AND (id IN (SELECT id FROM line)
                       OR parent_organization_id NOT IN (SELECT id FROM line WHERE id <> $2))
                ORDER BY name, id""",
            parent_ids,
            organization_id,
        )
        return [organization_from_row(row) for row in rows]

    async def find_organization_by_slug(self, tx: Tx, *, slug: str) -> Organization | None:
        """The organization a slug names, or None.

        Slugs are unique among siblings only. A plain slug names the root that has it, or else
        the one organization that has it (so a tenant's child named like a root never hides the
        root); a path (`acme/blog`) walks down from a root, one slug per level.

        Raises:
            InvalidInputError: a plain slug that no root and several other organizations have.
        """
        if "/" in slug:
            return await self._find_by_path(tx, slug.split("/"))
        rows = await tx.fetch(
            f"SELECT {_COLUMNS} FROM cms_organizations WHERE slug = $1"
            " ORDER BY parent_organization_id IS NOT NULL LIMIT 2",
            slug,
        )
        if len(rows) > 1 and rows[0]["parent_organization_id"] is not None:
            raise InvalidInputError(
                f"several organizations have the slug {slug!r}: name one by its path from the"
                " root (root/child)",
                path="slug",
            )
        return organization_from_row(rows[0]) if rows else None

    async def _find_by_path(self, tx: Tx, slugs: list[str]) -> Organization | None:
        found: Organization | None = None
        for slug in slugs:
            row = await tx.fetchrow(
                f"SELECT {_COLUMNS} FROM cms_organizations"
                " WHERE slug = $1 AND parent_organization_id IS NOT DISTINCT FROM $2",
                slug,
                found.id if found is not None else None,
            )
            if row is None:
                return None
            found = organization_from_row(row)
        return found

    async def find_all_organizations(self, tx: Tx) -> list[Organization]:
        """Every organization, by name."""
        rows = await tx.fetch(f"SELECT {_COLUMNS} FROM cms_organizations ORDER BY name, id")
        return [organization_from_row(row) for row in rows]

    async def update_organization(
        self,
        tx: Tx,
        *,
        organization_id: uuid.UUID,
        name: str | Unset = UNSET,
        slug: str | Unset = UNSET,
        parent_organization_id: uuid.UUID | Unset | None = UNSET,
        metadata: dict[str, Any] | Unset | None = UNSET,
    ) -> Organization:
        """Change the given fields; `UNSET` (the default) leaves a field alone, None clears it.

        Raises:
            NotFoundError: no such organization, or no such parent.
            InvalidInputError: a bad name or slug, or a parent that would make a cycle.
            ConflictError: a sibling (or, for a root, another root) has the slug.
        """
        changes: dict[str, Any] = {}
        if name is not UNSET:
            changes["name"] = _check_name(name)
        if slug is not UNSET:
            changes["slug"] = _check_slug(slug)
        if parent_organization_id is not UNSET:
            changes["parent_organization_id"] = parent_organization_id
        if metadata is not UNSET:
            changes["metadata"] = metadata
        if not changes:
            found = await self.find_organization_by_id(tx, organization_id=organization_id)
            if found is None:
                raise NotFoundError("no such organization")
            return found
        # Only the given columns are set: naming parent_organization_id fires the tree guard.
        assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(changes, start=2))
        row = await tx.fetchrow(
            f"UPDATE cms_organizations SET {assignments}, updated_at = now()"
            f" WHERE id = $1 RETURNING {_COLUMNS}",
            organization_id,
            *changes.values(),
        )
        if row is None:
            raise NotFoundError("no such organization")
        return organization_from_row(row)

    async def delete_organization(self, tx: Tx, *, organization_id: uuid.UUID) -> bool:
        """Delete an organization with its members, roles, invitations and content.

        Its child organizations become roots. Returns False when there was no such organization.
        """
        return bool(
            await tx.fetchval(
                "DELETE FROM cms_organizations WHERE id = $1 RETURNING true", organization_id
            )
        )

    async def get_child_organizations(
        self, tx: Tx, *, parent_organization_id: uuid.UUID
    ) -> list[uuid.UUID]:
        """The ids of every descendant (children, grandchildren, ...), in no particular order."""
        rows = await tx.fetch(
            """WITH RECURSIVE tree(id) AS (
                   SELECT id FROM cms_organizations WHERE parent_organization_id = $1
                   UNION
                   SELECT o.id FROM cms_organizations o
                   JOIN tree ON o.parent_organization_id = tree.id
               ) SELECT id FROM tree""",
            parent_organization_id,
        )
        return [row["id"] for row in rows]

    async def set_active_organization(
        self, tx: Tx, *, user_id: str, organization_id: uuid.UUID
    ) -> UserSession:
        """Record the organization the user works in (not an authentication session).

        Raises:
            NotFoundError: no such organization.
        """
        row = await tx.fetchrow(
            """INSERT INTO cms_user_sessions (user_id, active_organization_id) VALUES ($1, $2)
               ON CONFLICT (user_id) DO UPDATE
               SET active_organization_id = EXCLUDED.active_organization_id, updated_at = now()
               RETURNING user_id, active_organization_id, updated_at""",
            user_id,
            organization_id,
        )
        assert row is not None
        return UserSession(**dict(row.items()))

    async def find_user_session(self, tx: Tx, *, user_id: str) -> UserSession | None:
        """The user's active-organization record, or None."""
        row = await tx.fetchrow(
            "SELECT user_id, active_organization_id, updated_at FROM cms_user_sessions"
            " WHERE user_id = $1",
            user_id,
        )
        return UserSession(**dict(row.items())) if row else None

    async def delete_user_session(self, tx: Tx, *, user_id: str) -> bool:
        """Forget the user's active organization. Returns False when none was recorded."""
        return bool(
            await tx.fetchval(
                "DELETE FROM cms_user_sessions WHERE user_id = $1 RETURNING true", user_id
            )
        )
