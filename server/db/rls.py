"""Row-Level Security: the policies, the request role, and `initialize_rls()`.

The rules, enforced by PostgreSQL itself on every tenant table (`tables.RLS_TABLES`):

- SELECT sees rows of the current org and, when the transaction asks for the hierarchy, of every
  descendant org (children, grandchildren, ...), found by a recursive walk of `cms_organizations`.
  The walk runs once, when a transaction enters its org, and its result is kept in
  `app.readable_orgs`: every statement that sets the org sets the list with it (`enter_org`,
  `cms_open_request`, the known callers' runs), and a change to the tree walks it again at once (a
  trigger). The policies read that list as it is: with none set they read nothing, and a NULL in it
  lets no row of another org through.
- INSERT, UPDATE and DELETE touch only rows of the current org: parents cannot write to children.
- With no org set, nothing is visible and nothing can be written.
- `app.override_access = 'true'` (the system context) passes every policy of the tables' owner, who
  runs the server's jobs (or is a member of the role that does, or a superuser). The request role's
  policies have no such arm, so no request can turn it on for itself; and a role that is neither
  sees no row and may write none.

Owners and superusers normally bypass RLS. So the tables get `FORCE ROW LEVEL SECURITY`, and request
transactions switch to `cms_request`, a role without BYPASSRLS; this holds even when DATABASE_URL is a
superuser. The policies call the helper functions inside `(select ...)`, so PostgreSQL evaluates them once
per statement as an InitPlan rather than once per row; only one, since each InitPlan costs every
execution its set-up (migration 0026).

Each policy is for one role: every statement sets up the quals of the policies that apply to its
role, an `OR` of them, whether it evaluates them or not, so the request role's reads do not pay
for the override's expression at every table they read (migration 0029).

The migrations create the same objects; `initialize_rls()` runs at every start-up and repairs
whatever drifted, doing nothing when all is in place.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING

from server.config import ConfigError
from server.db.tables import RLS_TABLES, metadata

if TYPE_CHECKING:
    from server.db.pool import Database, Tx

log = logging.getLogger(__name__)

REQUEST_ROLE = "cms_request"

FUNCTIONS_SQL = """
CREATE OR REPLACE FUNCTION cms_current_org() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT NULLIF(current_setting('app.organization_id', true), '')::uuid
$$;

CREATE OR REPLACE FUNCTION cms_override_access() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce(current_setting('app.override_access', true), '') = 'true'
     AND current_user <> 'cms_request'
$$;

CREATE OR REPLACE FUNCTION cms_org_tree(root uuid, hierarchy boolean) RETURNS uuid[]
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
-- PL/pgSQL rather than SQL: its plan is kept for the session, where an SQL function's recursive
-- query would be planned again in every request's opening.
BEGIN
  IF root IS NULL THEN
    RETURN '{}'::uuid[];
  END IF;
  RETURN array_prepend(root, ARRAY(
    WITH RECURSIVE tree(id) AS (
      SELECT o.id FROM cms_organizations o WHERE hierarchy AND o.parent_organization_id = root
      UNION
      SELECT o.id FROM cms_organizations o JOIN tree ON o.parent_organization_id = tree.id
    )
    SELECT id FROM tree WHERE id <> root));
END
$$;

CREATE OR REPLACE FUNCTION cms_readable_orgs() RETURNS uuid[]
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT NULLIF(current_setting('app.readable_orgs', true), '')::uuid[]
$$;

CREATE OR REPLACE FUNCTION cms_renew_readable_orgs() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('app.readable_orgs', cms_org_tree(cms_current_org(),
    coalesce(current_setting('app.hierarchy', true), '') = 'on')::text, true);
  RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER cms_organizations_renew_readable_orgs
AFTER INSERT OR DELETE OR UPDATE OF parent_organization_id ON cms_organizations
FOR EACH STATEMENT EXECUTE FUNCTION cms_renew_readable_orgs();
"""

# One InitPlan per table a statement reads (the organizations), set up at every execution.
_READ = "organization_id = ANY ((select cms_readable_orgs())::uuid[])"
_WRITE = "organization_id = (select cms_current_org())"
# The owner's policies also pass the system context. The override is an expression PostgreSQL
# reaches only for a row the organizations do not match (an `OR` stops at its first true arm).
_OVERRIDE = " OR cms_override_access()"


def policy_statements(table: str, owner: str, *, request_role: bool) -> list[str]:
    """The CREATE POLICY statements for one tenant table: its owner's (`owner`, an identifier as
    SQL spells it), and the request role's when that role exists."""
    statements = _role_policies(table, table, owner, _READ + _OVERRIDE, _WRITE + _OVERRIDE)
    if request_role:
        statements += _role_policies(table, f"{table}_request", REQUEST_ROLE, _READ, _WRITE)
    return statements


def _role_policies(table: str, name: str, role: str, read: str, write: str) -> list[str]:
    return [
        f"CREATE POLICY {name}_select ON {table} FOR SELECT TO {role} USING ({read})",
        f"CREATE POLICY {name}_insert ON {table} FOR INSERT TO {role} WITH CHECK ({write})",
        f"CREATE POLICY {name}_update ON {table} FOR UPDATE TO {role} USING ({write})"
        f" WITH CHECK ({write})",
        f"CREATE POLICY {name}_delete ON {table} FOR DELETE TO {role} USING ({write})",
    ]


def _fingerprint(enabled: bool, owners: dict[str, str], request_role: bool) -> str:
    """A digest of everything `initialize_rls` installs; stored as a comment to detect drift cheaply."""
    body = (
        FUNCTIONS_SQL
        + repr(enabled)
        + "".join(
            statement
            for table in RLS_TABLES
            for statement in policy_statements(table, owners[table], request_role=request_role)
        )
    )
    return "cms-rls:" + hashlib.sha256(body.encode()).hexdigest()[:16]


async def initialize_rls(database: Database, *, enabled: bool = True) -> str | None:
    """Create or repair the policies and the request role. Idempotent, and safe to run concurrently.

    Args:
        database: the connected database; its role must own the tables (or be a superuser).
        enabled: False gives the single-tenant mode: RLS off on every tenant table.

    Returns:
        The role request transactions switch to, or None when they stay on the connecting role
        (RLS disabled, or no permission to create roles while the connecting role is itself subject
        to RLS).
    """
    async with database.transaction() as tx:
        # One start-up at a time: several workers may boot together.
        await tx.execute("select pg_advisory_xact_lock(hashtext('cms:initialize_rls'))")
        # The request role's policies whenever the role exists, even one this server may not
        # switch to.
        role, request_policies = await _ensure_request_role(tx) if enabled else (None, False)
        owners = await _owners(tx)
        fingerprint = _fingerprint(enabled, owners, request_policies)
        if await _installed_fingerprint(tx) != fingerprint or not await _flags_match(tx, enabled):
            log.info("installing row-level security policies (enabled=%s)", enabled)
            await tx.execute(FUNCTIONS_SQL)
            for table in RLS_TABLES:
                statements = policy_statements(table, owners[table], request_role=request_policies)
                await _install_table(tx, table, statements if enabled else None)
            await tx.execute(f"COMMENT ON FUNCTION cms_readable_orgs() IS '{fingerprint}'")
        if role is not None:
            await _grant(tx, role)
        return role


async def _installed_fingerprint(tx: Tx) -> str | None:
    value = await tx.fetchval(
        "select obj_description(p.oid, 'pg_proc') from pg_proc p "
        "where p.proname = 'cms_readable_orgs' and pg_function_is_visible(p.oid)"
    )
    return str(value) if value is not None else None


async def _flags_match(tx: Tx, enabled: bool) -> bool:
    rows = await tx.fetch(
        "select relrowsecurity, relforcerowsecurity from pg_class "
        "where oid = any(select to_regclass(t) from unnest($1::text[]) t)",
        list(RLS_TABLES),
    )
    return len(rows) == len(RLS_TABLES) and all(
        row["relrowsecurity"] == enabled and row["relforcerowsecurity"] == enabled for row in rows
    )


async def _owners(tx: Tx) -> dict[str, str]:
    """Each tenant table's owner, as SQL spells the identifier."""
    rows = await tx.fetch(
        "select t, quote_ident(pg_get_userbyid(c.relowner)) as owner"
        " from unnest($1::text[]) t join pg_class c on c.oid = to_regclass(t)",
        list(RLS_TABLES),
    )
    return {row["t"]: row["owner"] for row in rows}


async def _install_table(tx: Tx, table: str, policies: list[str] | None) -> None:
    """Replace `table`'s policies with `policies`; None: Row-Level Security off on it."""
    existing = await tx.fetch("select policyname from pg_policies where tablename = $1", table)
    for row in existing:
        await tx.execute(f'DROP POLICY "{row["policyname"]}" ON {table}')
    if policies is None:
        await tx.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        await tx.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
        return
    for statement in policies:
        await tx.execute(statement)
    await tx.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    await tx.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")


async def _ensure_request_role(tx: Tx) -> tuple[str | None, bool]:
    """Make `cms_request` exist and be usable by the connecting role. The role, or None if that is
    not possible; and whether the role exists."""
    me = await tx.fetchrow(
        "select rolsuper, rolbypassrls, rolcreaterole from pg_roles where rolname = current_user"
    )
    assert me is not None
    exists = await tx.fetchval("select true from pg_roles where rolname = $1", REQUEST_ROLE)
    if not exists and (me["rolsuper"] or me["rolcreaterole"]):
        # Roles are cluster-wide; a concurrent start-up on another database may create it first.
        await tx.execute(
            f"""DO $$ BEGIN
                  CREATE ROLE {REQUEST_ROLE} NOLOGIN NOBYPASSRLS;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
                END $$"""
        )
        exists = True
    if exists:
        if me["rolsuper"]:
            return REQUEST_ROLE, True
        member = await tx.fetchval("select pg_has_role(current_user, $1, 'MEMBER')", REQUEST_ROLE)
        if not member and me["rolcreaterole"]:
            await tx.execute(f"GRANT {REQUEST_ROLE} TO current_user")
            member = True
        if member:
            return REQUEST_ROLE, True
    if me["rolsuper"] or me["rolbypassrls"]:
        raise ConfigError(
            "DATABASE_URL",
            f"cannot enforce row-level security: the role {REQUEST_ROLE!r} does not exist and the "
            "connecting role bypasses RLS; create it once with "
            f"'CREATE ROLE {REQUEST_ROLE} NOLOGIN NOBYPASSRLS' and grant it to the connecting role",
        )
    # A plain owner without CREATEROLE: FORCE ROW LEVEL SECURITY alone applies the policies to it.
    return None, bool(exists)


async def _grant(tx: Tx, role: str) -> None:
    tables = ", ".join(sorted(metadata.tables))
    await tx.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
    await tx.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO {role}")
