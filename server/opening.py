"""A GraphQL request's opening: `BEGIN`, the credential check and the org scope in one round trip.

asyncpg sends a statement without arguments by the simple query protocol, which carries several
statements at once, so `BEGIN; SELECT cms_open_request(...)` costs one round trip. The price is that
no value travels as a parameter: each is inlined as an SQL literal, and only values checked here
become literals (a hex digest, a UUID, integers, booleans, role names). No client text is ever
inlined: the bearer secret reaches the database as its SHA-256, computed in Python.

`cms_open_request` (migration 0004) checks the credential with `cms_authenticate`, sets the org scope
as `server.tenancy.enter_org` does, and keeps the facts about the caller in `app.principal`, which any
later statement of the transaction can select (`PRINCIPAL_SQL`).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from server.auth import Credential
from server.credentials import LAST_USED_RESOLUTION_SECONDS
from server.sessions import INSTANCE_ADMIN_ROLES
from server.tenancy import Tenancy, request_role

# The SQL expression that reads the caller's facts (JSON text) back in the opened transaction.
PRINCIPAL_SQL = "current_setting('app.principal', true)"

_WORD = re.compile(r"[A-Za-z0-9_]+")
_DIGEST = re.compile(r"[0-9a-f]{64}")


def opening_arguments(credential: Credential, tenancy: Tenancy) -> tuple[Any, ...]:
    """`cms_open_request`'s arguments but the last (read-only), as bind values.

    `cms_read` (migration 0006) takes them as parameters; `opening_sql` inlines them.
    """
    role = request_role(tenancy)
    return (
        credential.kind,
        credential.digest,
        credential.organization_id,
        int(LAST_USED_RESOLUTION_SECONDS),
        list(INSTANCE_ADMIN_ROLES),
        tenancy.enable_hierarchy,
        int(tenancy.statement_timeout_ms),
        role if role != "none" else None,
    )


def opening_sql(credential: Credential, tenancy: Tenancy, *, read_only: bool) -> str:
    """The statement that follows `BEGIN` in a request's first round trip.

    Args:
        credential: the request's credential, parsed and hashed (`server.auth.parse_credential`).
        tenancy: the deployment's isolation settings.
        read_only: make the transaction read-only once the credential is checked (queries).

    Raises:
        ValueError: a value is not of the form that may be inlined (a programming error).
    """
    kind, digest, organization, resolution, roles, hierarchy, timeout, role = opening_arguments(
        credential, tenancy
    )
    if kind not in ("key", "session"):
        raise ValueError(f"unknown credential kind: {kind!r}")
    if not _DIGEST.fullmatch(digest):
        raise ValueError("the credential digest must be a hex SHA-256")
    arguments = (
        _word(kind),
        f"'{digest}'",
        _uuid(organization),
        str(int(resolution)),
        f"ARRAY[{', '.join(_word(name) for name in roles)}]::text[]",
        _boolean(hierarchy),
        str(int(timeout)),
        _word(role) if role is not None else "NULL",
        _boolean(read_only),
    )
    return f"SELECT cms_open_request({', '.join(arguments)})"


def _word(value: str) -> str:
    if not _WORD.fullmatch(value):
        raise ValueError(f"not a plain word: {value!r}")
    return f"'{value}'"


def _uuid(value: uuid.UUID | None) -> str:
    return "NULL::uuid" if value is None else f"'{uuid.UUID(str(value))}'::uuid"


def _boolean(value: bool) -> str:
    return "true" if value else "false"
