"""Each policy costs a statement one InitPlan per table it reads, not two.

Every select policy read `(select cms_override_access()) OR organization_id = ANY ((select
cms_readable_orgs())::uuid[])`: two InitPlans for every table a statement reads, each set up by the
executor at every execution, whatever it then evaluates. A read of one post with its author and
categories reads `cms_documents` three times, so six InitPlans: about 15 µs of PostgreSQL's 120
for the statement (as the request role; 2026-12-05, `bench/`'s Q4).

Now:

- The policies read `organization_id = ANY ((select cms_readable_orgs())::uuid[]) OR
  cms_override_access()` (writes: `organization_id = (select cms_current_org()) OR
  cms_override_access()`). The override is no longer an InitPlan: PostgreSQL evaluates an `OR`'s
  arms in order and stops at the first true one, so the override's expression runs only for a row
  of an organization the statement may not read, and is false there for every request (the
  request role never has it).
- `cms_readable_orgs()` is `app.readable_orgs` itself, as an SQL function PostgreSQL inlines into
  the InitPlan, where it was a PL/pgSQL function that checked the list against
  `app.organization_id` and walked the tree when they differed. Every statement that sets the
  organization sets the list with it (`server.db.tenancy.scope_sql`, `cms_open_request`,
  `cms_open_known`, the known callers' runs); with no list set, or a list with a NULL in it, a row
  matches no organization of it, so the policy reads nothing rather than too much.
- So the trigger on `cms_organizations` computes the list again when the tree changes
  (`cms_renew_readable_orgs`), where it emptied it for the next statement's walk: a transaction
  that adds or moves an organization still sees the tree as it is now.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-24 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RLS_TABLES = (
    "cms_documents",
    "cms_document_versions",
    "cms_assets",
    "cms_document_references",
    "cms_asset_references",
    "cms_document_schedules",
    "cms_webhooks",
    "cms_outbox",
    "cms_webhook_deliveries",
)

# As in `server/db/rls.py`.
_READ = "organization_id = ANY ((select cms_readable_orgs())::uuid[]) OR cms_override_access()"
_WRITE = "organization_id = (select cms_current_org()) OR cms_override_access()"

# As migration 0001 (and 0010, 0011) wrote them.
_FORMER_READ = (
    "(select cms_override_access()) OR organization_id = ANY ((select cms_readable_orgs())::uuid[])"
)
_FORMER_WRITE = "(select cms_override_access()) OR organization_id = (select cms_current_org())"

READABLE_ORGS = """
CREATE OR REPLACE FUNCTION cms_readable_orgs() RETURNS uuid[]
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT NULLIF(current_setting('app.readable_orgs', true), '')::uuid[]
$$
"""

RENEW_READABLE_ORGS = (
    """
CREATE OR REPLACE FUNCTION cms_renew_readable_orgs() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('app.readable_orgs', cms_org_tree(cms_current_org(),
    coalesce(current_setting('app.hierarchy', true), '') = 'on')::text, true);
  RETURN NULL;
END
$$
""",
    """
CREATE OR REPLACE TRIGGER cms_organizations_renew_readable_orgs
AFTER INSERT OR DELETE OR UPDATE OF parent_organization_id ON cms_organizations
FOR EACH STATEMENT EXECUTE FUNCTION cms_renew_readable_orgs()
""",
)

# Migration 0004's.
FORMER_READABLE_ORGS = """
CREATE OR REPLACE FUNCTION cms_readable_orgs() RETURNS uuid[]
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
  current_org uuid := cms_current_org();
  cached uuid[] := NULLIF(current_setting('app.readable_orgs', true), '')::uuid[];
BEGIN
  IF current_org IS NULL THEN
    RETURN '{}';
  END IF;
  IF cached[1] = current_org THEN
    RETURN cached;
  END IF;
  RETURN cms_org_tree(current_org, coalesce(current_setting('app.hierarchy', true), '') = 'on');
END
$$
"""

FORMER_FORGET_READABLE_ORGS = (
    """
CREATE OR REPLACE FUNCTION cms_forget_readable_orgs() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('app.readable_orgs', '', true);
  RETURN NULL;
END
$$
""",
    """
CREATE OR REPLACE TRIGGER cms_organizations_forget_readable_orgs
AFTER INSERT OR DELETE OR UPDATE OF parent_organization_id ON cms_organizations
FOR EACH STATEMENT EXECUTE FUNCTION cms_forget_readable_orgs()
""",
)


def _policies(read: str, write: str) -> list[str]:
    statements = []
    for table in RLS_TABLES:
        for command in ("select", "insert", "update", "delete"):
            statements.append(f"DROP POLICY {table}_{command} ON {table}")
        statements += [
            f"CREATE POLICY {table}_select ON {table} FOR SELECT USING ({read})",
            f"CREATE POLICY {table}_insert ON {table} FOR INSERT WITH CHECK ({write})",
            f"CREATE POLICY {table}_update ON {table} FOR UPDATE USING ({write})"
            f" WITH CHECK ({write})",
            f"CREATE POLICY {table}_delete ON {table} FOR DELETE USING ({write})",
        ]
    return statements


def upgrade() -> None:
    op.execute("DROP TRIGGER cms_organizations_forget_readable_orgs ON cms_organizations")
    op.execute("DROP FUNCTION cms_forget_readable_orgs()")
    for statement in (READABLE_ORGS, *RENEW_READABLE_ORGS, *_policies(_READ, _WRITE)):
        op.execute(statement)
    # `initialize_rls` compares its fingerprint afresh at the next start-up.
    op.execute("COMMENT ON FUNCTION cms_readable_orgs() IS NULL")


def downgrade() -> None:
    op.execute("DROP TRIGGER cms_organizations_renew_readable_orgs ON cms_organizations")
    op.execute("DROP FUNCTION cms_renew_readable_orgs()")
    for statement in (
        FORMER_READABLE_ORGS,
        *FORMER_FORGET_READABLE_ORGS,
        *_policies(_FORMER_READ, _FORMER_WRITE),
    ):
        op.execute(statement)
    op.execute("COMMENT ON FUNCTION cms_readable_orgs() IS NULL")
