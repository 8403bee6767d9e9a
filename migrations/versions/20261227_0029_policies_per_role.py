"""Each policy is for one role: the request role's have no override arm, the owner's keep it.

Every policy read `... OR cms_override_access()` and applied to every role (`TO PUBLIC`). A
statement sets up the quals of every policy that applies to its role at each execution, whether it
evaluates them or not, so the request role's reads paid for the override's expression (a
setting read, two comparisons, `current_user`) at every table they read, for an arm that is false
for every request: 4-8 µs of PostgreSQL's 370 for a list of twenty authors with their mentors
five levels down (`bench/`'s Q5, which reads `cms_documents` six times), as the request role.

Now each table has the policies of two roles:

- `<table>_<command>`, for the table's owner: the organizations of the transaction, or the
  override (the system context). The server connects as the owner, a member of its role, or a
  superuser (who bypasses policies): `initialize_rls` must be able to replace the policies.
- `<table>_request_<command>`, for `cms_request` when it exists: the organizations alone.

A role that is neither sees no row and may write none, where before any role with the table's
privileges passed the policies by setting the settings they read.

`cms_request` is made by the server at start-up (`server/db/rls.py`), which also adds its
policies when this migration ran before the role existed.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-27 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
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
_READ = "organization_id = ANY ((select cms_readable_orgs())::uuid[])"
_WRITE = "organization_id = (select cms_current_org())"
_OVERRIDE = " OR cms_override_access()"

# As migration 0026 wrote them.
_FORMER_READ = _READ + _OVERRIDE
_FORMER_WRITE = _WRITE + _OVERRIDE


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _role_policies(name: str, role: str | None, read: str, write: str) -> list[str]:
    """PL/pgSQL statements creating one role's policies on the table `t` (a variable of the block
    below); `name` and `role` are expressions giving the policies' name and the role's identifier
    (None: every role)."""
    to, role_argument = (" TO %s", f", {role}") if role is not None else ("", "")
    policies = [
        ("select", f"FOR SELECT{to} USING ({read})"),
        ("insert", f"FOR INSERT{to} WITH CHECK ({write})"),
        ("update", f"FOR UPDATE{to} USING ({write}) WITH CHECK ({write})"),
        ("delete", f"FOR DELETE{to} USING ({write})"),
    ]
    return [
        f"EXECUTE format({_quoted('CREATE POLICY %I ON %I ' + body)}, {name} || '_{command}', t"
        f"{role_argument});"
        for command, body in policies
    ]


def _per_table(statements: list[str]) -> str:
    """One block running `statements` for each tenant table `t`, its owner in `owner`."""
    tables = ", ".join(_quoted(table) for table in RLS_TABLES)
    body = "\n    ".join(statements)
    return f"""
DO $$
DECLARE
  t text;
  owner text;
  request boolean := EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cms_request');
BEGIN
  FOREACH t IN ARRAY ARRAY[{tables}] LOOP
    SELECT quote_ident(pg_get_userbyid(c.relowner)) INTO owner
    FROM pg_class c WHERE c.oid = to_regclass(t);
    {body}
  END LOOP;
END
$$
"""


def _drop(name: str) -> list[str]:
    return [
        f"EXECUTE format('DROP POLICY IF EXISTS %I ON %I', {name} || '_{command}', t);"
        for command in ("select", "insert", "update", "delete")
    ]


def upgrade() -> None:
    op.execute(
        _per_table(
            [
                *_drop("t"),
                *_role_policies("t", "owner", _READ + _OVERRIDE, _WRITE + _OVERRIDE),
                "IF request THEN",
                *_role_policies("t || '_request'", "'cms_request'", _READ, _WRITE),
                "END IF;",
            ]
        )
    )
    # `initialize_rls` compares its fingerprint afresh at the next start-up.
    op.execute("COMMENT ON FUNCTION cms_readable_orgs() IS NULL")


def downgrade() -> None:
    op.execute(
        _per_table(
            [
                *_drop("t"),
                *_drop("t || '_request'"),
                *_role_policies("t", None, _FORMER_READ, _FORMER_WRITE),
            ]
        )
    )
    op.execute("COMMENT ON FUNCTION cms_readable_orgs() IS NULL")
