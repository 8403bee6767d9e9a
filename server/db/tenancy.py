"""The organization context: every unit of work runs in one org-scoped transaction.

`with_org_context` opens one transaction on one connection, sets the org (and, with RLS on, switches to
the request role) in its first statement, and yields the `Tx` that every query of the unit of work must
use. The settings are transaction-local (`set_config(..., true)`), so they vanish at commit and never
leak to the next user of the pooled connection.

`system_context` is for migrations, seeds and background jobs: it sets `app.override_access` and so
passes every policy. Nothing reachable from an HTTP request calls it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

from server.db.literals import boolean_literal, integer_literal, uuid_literal, word_literal
from server.db.pool import Database, Tx
from server.errors import InvalidInputError


@dataclass(frozen=True)
class Tenancy:
    """How isolation is enforced for this deployment (decided at start-up by `initialize_rls`)."""

    enable_rls: bool = True
    enable_hierarchy: bool = True
    # The role request transactions run as; None keeps the connecting role.
    request_role: str | None = None
    statement_timeout_ms: int = 0
    lock_timeout_ms: int = 0


def parse_org_id(org_id: str | uuid.UUID) -> uuid.UUID:
    if isinstance(org_id, uuid.UUID):
        return org_id
    try:
        return uuid.UUID(org_id)
    except (ValueError, TypeError, AttributeError):
        raise InvalidInputError(
            f"invalid organization id: {org_id!r}", path="organizationId"
        ) from None


def unit_of_work(
    database: Database, *, opening: str, read_only: bool = False, commit_token: bool = False
) -> AbstractAsyncContextManager[Tx]:
    """How every unit of work begins: `BEGIN` and its `opening` (the statement that scopes it to an
    organization, and for a request first checks the caller) in one round trip.

    The local API's contexts open with `scope_sql`; a GraphQL request opens with
    `server.access.opening.opening_sql`. Both end with the commit or rollback of the returned
    transaction.
    """
    return database.transaction(read_only=read_only, opening=opening, commit_token=commit_token)


@asynccontextmanager
async def with_org_context(
    database: Database, tenancy: Tenancy, org_id: str | uuid.UUID, *, read_only: bool = False
) -> AsyncIterator[Tx]:
    """One transaction scoped to `org_id`; Row-Level Security applies to every statement in it.

    Args:
        database: the pool to take the connection from.
        tenancy: the deployment's isolation settings.
        org_id: the current organization; reads also see its descendants when hierarchy is on.
        read_only: open a READ ONLY transaction (queries).

    Yields:
        The transaction. Use it for every statement of the unit of work; it commits on normal exit and
        rolls back on an exception.
    """
    opening = scope_sql(tenancy, parse_org_id(org_id))
    async with unit_of_work(database, opening=opening, read_only=read_only) as tx:
        yield tx


async def enter_org(
    tx: Tx, tenancy: Tenancy, org_id: str | uuid.UUID, *, read_only: bool = False
) -> uuid.UUID:
    """Scope an open transaction to `org_id` (and make it read-only): one statement, for a job
    that moves from one organization to the next in one transaction (the scheduler)."""
    org = parse_org_id(org_id)
    await tx.execute(scope_sql(tenancy, org, read_only=read_only))
    return org


def scope_sql(tenancy: Tenancy, org: uuid.UUID, *, read_only: bool = False) -> str:
    """The statement that scopes a transaction to `org`, with its values inlined (an opening takes
    no parameters; `server.db.literals` checks each value).

    The organizations it may read (`org` and, with the hierarchy on, its descendants) are found
    here once and kept for the policies in `app.readable_orgs`. Switching to read-only after earlier
    statements is allowed. (GraphQL requests do all this in their opening: `cms_open_request`.)
    """
    organization = uuid_literal(org)
    hierarchy = boolean_literal(tenancy.enable_hierarchy)
    settings = [
        f"set_config('app.organization_id', {organization}::text, true)",
        f"set_config('app.hierarchy', {word_literal('on' if tenancy.enable_hierarchy else 'off')}, true)",
        f"set_config('app.readable_orgs', cms_org_tree({organization}, {hierarchy})::text, true)",
        f"set_config('statement_timeout', {integer_literal(tenancy.statement_timeout_ms)}::text, true)",
        f"set_config('lock_timeout', {integer_literal(tenancy.lock_timeout_ms)}::text, true)",
        # As in `cms_open_request`: JIT costs more than these statements (tens of ms, uncached).
        "set_config('jit', 'off', true)",
        f"set_config('role', {word_literal(request_role(tenancy))}, true)",
    ]
    if read_only:
        # Only ever towards read-only: read-write may not be set after the first statement.
        settings.append("set_config('transaction_read_only', 'on', true)")
    return "SELECT " + ", ".join(settings)


def request_role(tenancy: Tenancy) -> str:
    """The role a request transaction switches to; `none` keeps the connecting role."""
    return tenancy.request_role if tenancy.enable_rls and tenancy.request_role else "none"


@asynccontextmanager
async def system_context(
    database: Database, org_id: str | uuid.UUID | None = None
) -> AsyncIterator[Tx]:
    """A transaction that passes every policy, for jobs, seeds and migrations (never for requests)."""
    async with database.transaction() as tx:
        await tx.execute(
            "select set_config('app.organization_id', $1, true),"
            " set_config('app.override_access', 'true', true)",
            str(parse_org_id(org_id)) if org_id is not None else "",
        )
        yield tx
