"""The request's opening in one round trip, readable organizations once per transaction.

- `cms_authenticate(...)` checks a bearer credential (an API key or a sign-in session, by the SHA-256
  digest of its secret) and returns the facts about the caller as jsonb: the organization the
  request acts in, who is calling, and the capabilities granted there before the instance rules
  (`server.access.auth.principal_from_facts` derives the final ones). It bumps an API key's `last_used_at`
  at most once a minute, skipping a row another transaction holds. A refusal raises one of the
  SQLSTATEs `CM001`-`CM006`, which `server.access.auth` maps to the domain errors.
- `cms_open_request(...)` is what a GraphQL request runs right after `BEGIN`, in the same simple
  query: the check above, then the org scope (`app.organization_id`, `app.hierarchy`, the statement
  timeout, the request role, read-only), with the facts kept in `app.principal`.
- `cms_readable_orgs()` reads `app.readable_orgs`, computed once when a transaction enters its
  organization (`cms_org_tree`), instead of walking the tree in every statement. A trigger on
  `cms_organizations` forgets it when the tree changes, so a transaction that adds or moves an
  organization sees the change in its next statement, as before.
- `idx_documents_type` goes: `idx_documents_type_updated_at` leads with `type` and serves its
  queries.

`server/db/rls.py` (`FUNCTIONS_SQL`) installs the same `cms_org_tree`, `cms_readable_orgs` and trigger;
a test checks that both install identical definitions. The comment `initialize_rls` keeps on
`cms_readable_orgs` is cleared both ways, so the next start-up compares afresh.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:15:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

READABLE_ORGS = (
    """
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
$$
""",
    """
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
""",
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

# The rules of `server.access.auth` before this migration (`find_api_key_by_secret`,
# `find_session_access`, `_key_principal`, `_session_principal`), unchanged.
AUTHENTICATE = """
CREATE FUNCTION cms_authenticate(
  credential_kind text, credential_digest text, requested_org uuid,
  key_resolution_secs integer, admin_roles text[]
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  api_key record;
  caller record;
  org uuid;
  granted jsonb;
BEGIN
  IF credential_kind = 'key' THEN
    WITH k AS (
      SELECT id, organization_id, role, capabilities, published_only, instance_admin
      FROM api_keys
      WHERE key_hash = credential_digest AND revoked_at IS NULL
        AND (expires_at IS NULL OR expires_at > now())
    ), touched AS (
      UPDATE api_keys a SET last_used_at = now()
      FROM (SELECT id FROM api_keys
            WHERE id = (SELECT id FROM k)
              AND (last_used_at IS NULL
                   OR last_used_at < now() - make_interval(secs => key_resolution_secs))
            FOR UPDATE SKIP LOCKED) due
      WHERE a.id = due.id
    )
    SELECT k.id, k.organization_id, k.published_only, k.instance_admin,
           coalesce(k.capabilities, r.capabilities, '[]') AS capabilities
    INTO api_key
    FROM k LEFT JOIN cms_organization_roles r
      ON r.organization_id = k.organization_id AND r.name = k.role;
    IF NOT FOUND THEN
      RAISE EXCEPTION USING ERRCODE = 'CM001', MESSAGE = 'invalid, revoked or expired API key';
    END IF;
    IF requested_org IS NOT NULL AND requested_org <> api_key.organization_id THEN
      RAISE EXCEPTION USING ERRCODE = 'CM003',
        MESSAGE = 'this API key belongs to another organization';
    END IF;
    RETURN jsonb_build_object(
      'kind', 'key', 'organization_id', api_key.organization_id, 'key_id', api_key.id,
      'granted', api_key.capabilities, 'published_only', api_key.published_only,
      'instance_admin', api_key.instance_admin);
  END IF;

  IF credential_kind <> 'session' THEN
    RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
      MESSAGE = 'unknown credential kind';
  END IF;
  SELECT s.id, s.user_id, coalesce(p.role = ANY (admin_roles), false) AS instance_admin
  INTO caller
  FROM sessions s LEFT JOIN cms_user_profiles p ON p.user_id = s.user_id
  WHERE s.token_hash = credential_digest AND s.expires_at > now();
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'CM002', MESSAGE = 'invalid or expired session; sign in again';
  END IF;
  -- The organization asked for, else the active one (while still a member, or an instance admin),
  -- else the only membership.
  org := coalesce(
    requested_org,
    (SELECT us.active_organization_id FROM cms_user_sessions us
     WHERE us.user_id = caller.user_id
       AND (caller.instance_admin OR EXISTS (
         SELECT 1 FROM cms_organization_members m
         WHERE m.organization_id = us.active_organization_id AND m.user_id = caller.user_id))),
    (SELECT (array_agg(m.organization_id))[1] FROM cms_organization_members m
     WHERE m.user_id = caller.user_id HAVING count(*) = 1));
  IF org IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'CM004', MESSAGE = 'choose an organization: X-Organization-Id';
  END IF;
  IF caller.instance_admin THEN
    IF NOT EXISTS (SELECT 1 FROM cms_organizations o WHERE o.id = org) THEN
      RAISE EXCEPTION USING ERRCODE = 'CM006', MESSAGE = 'no such organization';
    END IF;
  ELSE
    SELECT coalesce(r.capabilities, '[]') INTO granted
    FROM cms_organization_members m
    LEFT JOIN cms_organization_roles r ON r.organization_id = m.organization_id AND r.name = m.role
    WHERE m.organization_id = org AND m.user_id = caller.user_id;
    IF NOT FOUND THEN
      RAISE EXCEPTION USING ERRCODE = 'CM005',
        MESSAGE = 'you are not a member of this organization';
    END IF;
  END IF;
  RETURN jsonb_build_object(
    'kind', 'session', 'organization_id', org, 'user_id', caller.user_id,
    'session_id', caller.id, 'instance_admin', caller.instance_admin, 'granted', granted);
END
$$
"""

# The credential check runs as the connecting role (the credential tables have no RLS); the role
# switch comes last but one, and read-only last: after the `last_used_at` bump.
OPEN_REQUEST = """
CREATE FUNCTION cms_open_request(
  credential_kind text, credential_digest text, requested_org uuid,
  key_resolution_secs integer, admin_roles text[],
  hierarchy boolean, statement_timeout_ms integer, request_role text, read_only boolean
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  facts jsonb := cms_authenticate(
    credential_kind, credential_digest, requested_org, key_resolution_secs, admin_roles);
  org uuid := (facts ->> 'organization_id')::uuid;
BEGIN
  PERFORM set_config('app.organization_id', org::text, true),
          set_config('app.hierarchy', CASE WHEN hierarchy THEN 'on' ELSE 'off' END, true),
          set_config('app.readable_orgs', cms_org_tree(org, hierarchy)::text, true),
          set_config('app.principal', facts::text, true),
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

# `cms_readable_orgs` as migration 0001 created it.
FORMER_READABLE_ORGS = """
CREATE OR REPLACE FUNCTION cms_readable_orgs() RETURNS uuid[]
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  WITH RECURSIVE tree(id) AS (
    SELECT cms_current_org()
    UNION
    SELECT o.id FROM cms_organizations o JOIN tree ON o.parent_organization_id = tree.id
    WHERE coalesce(current_setting('app.hierarchy', true), '') = 'on'
  )
  SELECT coalesce(array_agg(id) FILTER (WHERE id IS NOT NULL), '{}') FROM tree
$$
"""


def upgrade() -> None:
    op.execute("DROP INDEX idx_documents_type")
    for statement in (*READABLE_ORGS, AUTHENTICATE, OPEN_REQUEST):
        op.execute(statement)
    op.execute("COMMENT ON FUNCTION cms_readable_orgs() IS NULL")


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION IF EXISTS cms_open_request(text, text, uuid, integer, text[],"
        " boolean, integer, text, boolean)"
    )
    op.execute("DROP FUNCTION IF EXISTS cms_authenticate(text, text, uuid, integer, text[])")
    op.execute("DROP TRIGGER IF EXISTS cms_organizations_forget_readable_orgs ON cms_organizations")
    op.execute("DROP FUNCTION IF EXISTS cms_forget_readable_orgs()")
    op.execute(FORMER_READABLE_ORGS)
    op.execute("COMMENT ON FUNCTION cms_readable_orgs() IS NULL")
    op.execute("DROP FUNCTION IF EXISTS cms_org_tree(uuid, boolean)")
    op.execute("CREATE INDEX idx_documents_type ON cms_documents (type)")
