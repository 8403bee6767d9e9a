"""Known callers: a read by a caller the server has just met skips the credential check and the tree.

Every compiled read used to authenticate its caller (`cms_authenticate`) and walk the organization
tree (`cms_org_tree`) again, although both answers change only when someone changes a credential,
a membership, a role or the tree. This migration counts those changes, so the server can keep the
answers and the database can check in one lookup that they still hold:

- `cms_access_epoch` is one row, one counter. A trigger on every table the answers come from adds
  one to it, once per changing transaction, so the new value becomes visible with
  the change and not before (a sequence would show it before the commit). Creating an API key or
  a session counts nothing: no one can have kept an answer for a credential that did not exist.
  An API key's `last_used_at` bump counts nothing either (`ACCESS_KEY_COLUMNS`).
- `cms_open_request` (migration 0004) now reads the counter FIRST, then authenticates and walks the
  tree, and keeps with the caller's facts (`app.principal`) an `access` object: that counter value,
  the credential's expiry and the readable organizations. Reading the counter first means the
  facts are at least as new as the counter they carry: a change committed in between makes them
  look older than they are, never newer.
- `cms_open_known(known, ...)` is `cms_open_request` for a caller whose facts the server kept from
  an earlier opening (`known`, that `app.principal` text). It checks that the counter has not
  moved and the credential has not expired, raises `CM007` (the facts changed) otherwise, and then
  scopes the transaction from the kept facts. `cms_read_known(known, ...)` is `cms_read`
  (migration 0006) opening that way, and `cms_read_pooled_known(known, ...)` is
  `cms_read_pooled` (migration 0014, through a transaction pooler) opening that way.

The server still runs the full opening at least once a minute per credential
(`server.access.opening.KnownCallers`), which also bumps an API key's `last_used_at` when due.

The counter is one row, so transactions that change credentials, memberships, roles or the tree
take turns at it until they commit. Those are administrative writes, and sign-ins do not count.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-13 12:00:00.000000
"""

from __future__ import annotations

import runpy
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every column of `api_keys` but `last_used_at`: an UPDATE of any of them counts as a change.
ACCESS_KEY_COLUMNS = (
    "id",
    "name",
    "prefix",
    "key_hash",
    "organization_id",
    "role",
    "capabilities",
    "published_only",
    "instance_admin",
    "created_by",
    "expires_at",
    "revoked_at",
    "created_at",
)
# The tables the opening's answers come from, and the row changes to each that count.
ACCESS_TABLES = {
    "api_keys": f"DELETE OR UPDATE OF {', '.join(ACCESS_KEY_COLUMNS)}",
    "sessions": "DELETE OR UPDATE",
    "cms_user_profiles": "INSERT OR DELETE OR UPDATE",
    "cms_user_sessions": "INSERT OR DELETE OR UPDATE",
    "cms_organization_members": "INSERT OR DELETE OR UPDATE",
    "cms_organization_roles": "INSERT OR DELETE OR UPDATE",
    "cms_organizations": "INSERT OR DELETE OR UPDATE OF id, parent_organization_id",
}

EPOCH = """
CREATE TABLE cms_access_epoch (
  id boolean DEFAULT true NOT NULL,
  epoch bigint DEFAULT 0 NOT NULL,
  CONSTRAINT pk_cms_access_epoch PRIMARY KEY (id),
  CONSTRAINT ck_cms_access_epoch_one_row CHECK (id)
)
"""

# Row triggers, so a statement that changes no row (a sign-in's sweep of expired sessions) counts
# nothing; once per transaction, which is enough, since its changes become visible together.
COUNT_CHANGE = """
CREATE FUNCTION cms_count_access_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('cms.access_changed', true) IS DISTINCT FROM 'on' THEN
    UPDATE cms_access_epoch SET epoch = epoch + 1;
    PERFORM set_config('cms.access_changed', 'on', true);
  END IF;
  RETURN NULL;
END
$$
"""

# Migration 0004's `cms_open_request`, with the counter read first and `access` kept in the facts.
OPEN_REQUEST = """
CREATE OR REPLACE FUNCTION cms_open_request(
  credential_kind text, credential_digest text, requested_org uuid,
  key_resolution_secs integer, admin_roles text[],
  hierarchy boolean, statement_timeout_ms integer, request_role text, read_only boolean
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  -- In this order: the counter before what it vouches for.
  epoch bigint := (SELECT e.epoch FROM cms_access_epoch e);
  facts jsonb := cms_authenticate(
    credential_kind, credential_digest, requested_org, key_resolution_secs, admin_roles);
  org uuid := (facts ->> 'organization_id')::uuid;
  readable uuid[] := cms_org_tree(org, hierarchy);
  expires timestamptz := CASE facts ->> 'kind'
    WHEN 'key' THEN (SELECT k.expires_at FROM api_keys k WHERE k.id = (facts ->> 'key_id')::uuid)
    ELSE (SELECT s.expires_at FROM sessions s WHERE s.id = facts ->> 'session_id')
  END;
BEGIN
  PERFORM set_config('app.organization_id', org::text, true),
          set_config('app.hierarchy', CASE WHEN hierarchy THEN 'on' ELSE 'off' END, true),
          set_config('app.readable_orgs', readable::text, true),
          set_config('app.principal', (facts || jsonb_build_object('access', jsonb_build_object(
            'epoch', epoch, 'expires', expires, 'readable', readable::text)))::text, true),
          set_config('statement_timeout', statement_timeout_ms::text, true),
          -- Request statements are short. JIT compilation costs tens of milliseconds on every
          -- execution (it is not cached with the plan), and the cost estimates of the compiled
          -- reads' correlated subqueries cross its threshold easily.
          set_config('jit', 'off', true),
          set_config('role', coalesce(request_role, 'none'), true);
  IF read_only THEN
    PERFORM set_config('transaction_read_only', 'on', true);
  END IF;
END
$$
"""

OPEN_KNOWN = """
CREATE FUNCTION cms_open_known(
  known text, hierarchy boolean, statement_timeout_ms integer, request_role text,
  read_only boolean, lock_timeout_ms integer
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  facts jsonb := known::jsonb;
  access jsonb := facts -> 'access';
BEGIN
  IF access IS NULL
     OR (SELECT e.epoch FROM cms_access_epoch e) IS DISTINCT FROM (access ->> 'epoch')::bigint
     OR coalesce((access ->> 'expires')::timestamptz <= now(), false) THEN
    RAISE EXCEPTION USING ERRCODE = 'CM007', MESSAGE = 'the caller''s facts changed';
  END IF;
  PERFORM set_config('app.organization_id', facts ->> 'organization_id', true),
          set_config('app.hierarchy', CASE WHEN hierarchy THEN 'on' ELSE 'off' END, true),
          set_config('app.readable_orgs', access ->> 'readable', true),
          set_config('app.principal', known, true),
          set_config('statement_timeout', statement_timeout_ms::text, true),
          set_config('jit', 'off', true),
          set_config('lock_timeout', lock_timeout_ms::text, true),
          set_config('role', coalesce(request_role, 'none'), true);
  IF read_only THEN
    PERFORM set_config('transaction_read_only', 'on', true);
  END IF;
END
$$
"""

# Migration 0006's `cms_read`, opening with `cms_open_known`; the read runs as there.
_READ = str(
    runpy.run_path(str(Path(__file__).with_name("20261202_0006_one_statement_reads.py")))["READ"]
)
_RUN_READ = _READ[_READ.index("  -- A read the server believes") : _READ.index("END\n$$")]
READ_KNOWN = (
    """
CREATE FUNCTION cms_read_known(
  known text, hierarchy boolean, statement_timeout_ms integer, request_role text,
  lock_timeout_ms integer, statement_name text, statement_sql text, arguments text[],
  OUT results text[]
)
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM cms_open_known(
    known, hierarchy, statement_timeout_ms, request_role, true, lock_timeout_ms);
"""
    + _RUN_READ
    + "END\n$$\n"
)

# Migration 0014's `cms_read_pooled` (through a transaction pooler), opening with `cms_open_known`.
_READ_POOLED = str(
    runpy.run_path(str(Path(__file__).with_name("20261212_0014_reads_kept_on_pooled_sessions.py")))[
        "READ_POOLED"
    ]
)
_POOLED_OPENING = _READ_POOLED[
    _READ_POOLED.index("  PERFORM cms_open_request(") : _READ_POOLED.index(
        "  -- Usually the session"
    )
]
READ_POOLED_KNOWN = """
CREATE FUNCTION cms_read_pooled_known(
  known text, hierarchy boolean, statement_timeout_ms integer, request_role text,
  lock_timeout_ms integer, statement_name text, statement_sql text, arguments text[],
  keep_prepared integer, OUT results text[]
)
LANGUAGE plpgsql AS $$""" + _READ_POOLED[_READ_POOLED.index("\nDECLARE\n") :].replace(
    _POOLED_OPENING,
    "  PERFORM cms_open_known(\n"
    "    known, hierarchy, statement_timeout_ms, request_role, true, lock_timeout_ms);\n",
    1,
)
if "cms_open_request" in READ_POOLED_KNOWN or "principal" in READ_POOLED_KNOWN:
    raise RuntimeError("migration 0014's cms_read_pooled is not the text this migration rewrites")

_FORMER: dict[str, object] = runpy.run_path(
    str(Path(__file__).with_name("20261202_0004_request_opening.py"))
)
FORMER_OPEN_REQUEST = str(_FORMER["OPEN_REQUEST"]).replace(
    "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1
)


def _trigger(table: str, kind: str = "change") -> str:
    return f"cms_{table.removeprefix('cms_')}_count_access_{kind}"


def upgrade() -> None:
    op.execute(EPOCH)
    op.execute("INSERT INTO cms_access_epoch DEFAULT VALUES")
    op.execute(COUNT_CHANGE)
    for table, events in ACCESS_TABLES.items():
        op.execute(
            f"CREATE TRIGGER {_trigger(table)} AFTER {events} ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION cms_count_access_change()"
        )
        op.execute(
            f"CREATE TRIGGER {_trigger(table, 'truncate')} AFTER TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION cms_count_access_change()"
        )
    op.execute(OPEN_REQUEST)
    op.execute(OPEN_KNOWN)
    op.execute(READ_KNOWN)
    op.execute(READ_POOLED_KNOWN)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION cms_read_known(text, boolean, integer, text, integer, text, text, text[])"
    )
    op.execute(
        "DROP FUNCTION cms_read_pooled_known(text, boolean, integer, text, integer, text, text,"
        " text[], integer)"
    )
    op.execute("DROP FUNCTION cms_open_known(text, boolean, integer, text, boolean, integer)")
    op.execute(FORMER_OPEN_REQUEST)
    for table in ACCESS_TABLES:
        op.execute(f"DROP TRIGGER {_trigger(table)} ON {table}")
        op.execute(f"DROP TRIGGER {_trigger(table, 'truncate')} ON {table}")
    op.execute("DROP FUNCTION cms_count_access_change()")
    op.execute("DROP TABLE cms_access_epoch")
