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

from server.auth import Credential
from server.credentials import LAST_USED_RESOLUTION_SECONDS
from server.sessions import INSTANCE_ADMIN_ROLES
from server.tenancy import Tenancy, request_role

# The SQL expression that reads the caller's facts (JSON text) back in the opened transaction.
PRINCIPAL_SQL = "current_setting('app.principal', true)"

_WORD = re.compile(r"[A-Za-z0-9_]+")
_DIGEST = re.compile(r"[0-9a-f]{64}")


def opening_sql(credential: Credential, tenancy: Tenancy, *, read_only: bool) -> str:
    """The statement that follows `BEGIN` in a request's first round trip.

    Args:
        credential: the request's credential, parsed and hashed (`server.auth.parse_credential`).
        tenancy: the deployment's isolation settings.
        read_only: make the transaction read-only once the credential is checked (queries).

    Raises:
        ValueError: a value is not of the form that may be inlined (a programming error).
    """
    if credential.kind not in ("key", "session"):
        raise ValueError(f"unknown credential kind: {credential.kind!r}")
    if not _DIGEST.fullmatch(credential.digest):
        raise ValueError("the credential digest must be a hex SHA-256")
    roles = ", ".join(_word(role) for role in INSTANCE_ADMIN_ROLES)
    arguments = (
        _word(credential.kind),
        f"'{credential.digest}'",
        _uuid(credential.organization_id),
        str(int(LAST_USED_RESOLUTION_SECONDS)),
        f"ARRAY[{roles}]::text[]",
        _boolean(tenancy.enable_hierarchy),
        str(int(tenancy.statement_timeout_ms)),
        _word(request_role(tenancy)) if request_role(tenancy) != "none" else "NULL",
        _boolean(read_only),
    )
    # Lock waits end at the lock timeout (TIMEOUT) instead of holding the connection until the
    # statement timeout; SET takes no parameters, and the value is a checked integer.
    lock_timeout = f"SET LOCAL lock_timeout = {int(tenancy.lock_timeout_ms)}"
    return f"SELECT cms_open_request({', '.join(arguments)}); {lock_timeout}"


def _word(value: str) -> str:
    if not _WORD.fullmatch(value):
        raise ValueError(f"not a plain word: {value!r}")
    return f"'{value}'"


def _uuid(value: uuid.UUID | None) -> str:
    return "NULL::uuid" if value is None else f"'{uuid.UUID(str(value))}'::uuid"


def _boolean(value: bool) -> str:
    return "true" if value else "false"
