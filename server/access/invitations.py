"""Invitations: a single-use, expiring token that makes its holder a member with a given role.

The token is handed out once, at creation; only its SHA-256 is stored, so a leaked table grants
nothing. Accepting is atomic: one UPDATE claims the invitation, so of two concurrent accepts only
one succeeds.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from server.access.members import Member, raise_unknown_role, upsert_member
from server.db.pool import Tx
from server.errors import InvalidInputError, NotFoundError

# Deliberately loose: one @, no spaces, a dot in the domain. The mail itself is the real check.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

_COLUMNS = "id, organization_id, email, role, invited_by, expires_at, accepted_at, created_at"
_PENDING = "accepted_at IS NULL AND expires_at > now()"


@dataclass(frozen=True, slots=True)
class Invitation:
    id: uuid.UUID
    organization_id: uuid.UUID
    email: str
    role: str
    invited_by: str
    expires_at: datetime
    accepted_at: datetime | None
    created_at: datetime


def hash_token(token: str) -> str:
    """The stored form of an invitation token: its SHA-256, in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def normalize_email(email: str) -> str:
    """Strip and lowercase an email address, and check its shape loosely."""
    normalized = email.strip().lower() if isinstance(email, str) else ""
    if len(normalized) > 255 or not _EMAIL.fullmatch(normalized):
        raise InvalidInputError("not a valid email address", path="email")
    return normalized


class InvitationStore:
    """Invitations to organizations (`cms_invitations`)."""

    async def create_invitation(
        self,
        tx: Tx,
        *,
        organization_id: uuid.UUID,
        email: str,
        role: str,
        invited_by: str,
        expires_in: timedelta = timedelta(days=7),
    ) -> tuple[Invitation, str]:
        """Invite an email address to join with one of the organization's roles.

        Returns:
            The invitation and its token. The token is not stored and cannot be recovered later.

        Raises:
            InvalidInputError: a bad email, a non-positive `expires_in`, or a role the organization
                does not have.
            NotFoundError: no such organization.
        """
        if expires_in <= timedelta(0):
            raise InvalidInputError("the invitation must expire in the future", path="expiresIn")
        token = secrets.token_urlsafe(32)
        row = await tx.fetchrow(
            f"""INSERT INTO cms_invitations
                    (organization_id, email, role, token_hash, invited_by, expires_at)
                SELECT r.organization_id, $2, r.name, $4, $5, now() + $6::interval
                FROM cms_organization_roles r WHERE r.organization_id = $1 AND r.name = $3
                RETURNING {_COLUMNS}""",
            organization_id,
            normalize_email(email),
            role,
            hash_token(token),
            invited_by,
            expires_in,
        )
        if row is None:
            await raise_unknown_role(tx, organization_id, role)
        return Invitation(**dict(row.items())), token

    async def find_invitation_by_token(self, tx: Tx, *, token: str) -> Invitation | None:
        """The invitation this token belongs to (pending or not), or None."""
        row = await tx.fetchrow(
            f"SELECT {_COLUMNS} FROM cms_invitations WHERE token_hash = $1", hash_token(token)
        )
        return Invitation(**dict(row.items())) if row else None

    async def find_organization_invitations(
        self, tx: Tx, *, organization_id: uuid.UUID, pending_only: bool = False
    ) -> list[Invitation]:
        """The organization's invitations, newest first; optionally only those still acceptable."""
        pending = f" AND {_PENDING}" if pending_only else ""
        rows = await tx.fetch(
            f"SELECT {_COLUMNS} FROM cms_invitations WHERE organization_id = $1{pending}"
            " ORDER BY created_at DESC, id",
            organization_id,
        )
        return [Invitation(**dict(row.items())) for row in rows]

    async def find_invitations_by_email(
        self, tx: Tx, *, email: str, pending_only: bool = False
    ) -> list[Invitation]:
        """The invitations sent to an address (matched case-insensitively), newest first."""
        pending = f" AND {_PENDING}" if pending_only else ""
        rows = await tx.fetch(
            f"SELECT {_COLUMNS} FROM cms_invitations WHERE email = $1{pending}"
            " ORDER BY created_at DESC, id",
            email.strip().lower(),
        )
        return [Invitation(**dict(row.items())) for row in rows]

    async def accept_invitation(self, tx: Tx, *, token: str, user_id: str) -> Member:
        """Use an invitation: the user becomes a member with the invited role.

        A user who is already a member gets the invited role instead. On an error nothing is
        changed, provided the caller rolls its transaction back (the transaction helpers do).

        Raises:
            NotFoundError: no invitation has this token.
            InvalidInputError: the invitation has expired, was already used, or its role has been
                deleted since.
        """
        token_hash = hash_token(token)
        claimed = await tx.fetchrow(
            f"""UPDATE cms_invitations SET accepted_at = now()
                WHERE token_hash = $1 AND {_PENDING}
                RETURNING id, organization_id, role""",
            token_hash,
        )
        if claimed is None:
            state = await tx.fetchrow(
                "SELECT accepted_at IS NOT NULL AS used FROM cms_invitations WHERE token_hash = $1",
                token_hash,
            )
            if state is None:
                raise NotFoundError("no such invitation")
            if state["used"]:
                raise InvalidInputError("the invitation was already used", path="token")
            raise InvalidInputError("the invitation has expired", path="token")
        member = await upsert_member(
            tx,
            organization_id=claimed["organization_id"],
            user_id=user_id,
            role=claimed["role"],
            invitation_id=claimed["id"],
            replace=True,
        )
        if member is None:
            raise InvalidInputError(
                f"the invitation's role {claimed['role']!r} no longer exists", path="token"
            )
        return member

    async def delete_invitation(
        self, tx: Tx, *, invitation_id: uuid.UUID, organization_id: uuid.UUID | None = None
    ) -> bool:
        """Withdraw an invitation, optionally only if it belongs to `organization_id`.

        Returns False when there was no such invitation.
        """
        return bool(
            await tx.fetchval(
                "DELETE FROM cms_invitations WHERE id = $1"
                " AND ($2::uuid IS NULL OR organization_id = $2) RETURNING true",
                invitation_id,
                organization_id,
            )
        )

    async def cleanup_expired_invitations(self, tx: Tx) -> int:
        """Delete expired invitations that were never accepted; returns how many."""
        status = await tx.execute(
            "DELETE FROM cms_invitations WHERE accepted_at IS NULL AND expires_at <= now()"
        )
        return int(status.rsplit(" ", 1)[1])
