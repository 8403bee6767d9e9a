"""Fewer round trips: a compiled read in one statement; an opening that knows the caller.

`cms_read(...)` is what the compiled read path (`server/query/`) sends for a content query instead of
`BEGIN; SELECT cms_open_request(...)`, the statement and `COMMIT`: one statement, so one implicit
transaction, which ends with it. In that transaction it

1. runs `cms_open_request` (migration 0004): the credential check, then the org scope, the request
   role, read-only and the lock timeout, all transaction-local, so nothing outlives the statement;
2. prepares the read (`PREPARE`, session-level) when it is given its text: the server sends the
   text only the first time a connection runs that read, and names it after a digest of the text;
3. executes the prepared read (`EXECUTE`) through dynamic SQL. It is planned and checked only now,
   after the role switch, so its permissions and Row-Level Security are the request role's, as in
   the transaction path. The arguments travel as text and become SQL literals through
   `quote_nullable`, each taking the type the read's placeholder has.

It returns the caller's facts (what `app.principal` holds) and the read's one row, a text array.
The read's text is built by the server's planner, never taken from a client. A statement timeout
set inside a statement does not apply to it, so the server bounds the call from its side (a
cancel request when it runs too long).

`cms_authenticate` bumps an API key's `last_used_at` as before (at most once a minute, skipping a
row another transaction holds), but decides whether it is due from the row it has already read,
so the statement that writes runs only then: the common case reads the key once and writes nothing.

`cms_open_known_request(..., facts_digest)` is `cms_open_request` for a caller the server has met
before: it also checks that the caller's facts are still the ones the server keeps (by their
SHA-256), and raises `CM007` when they changed (a role, a capability, a membership), so the server
need not read them back in a statement of its own.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 12:00:00.000000
"""

from __future__ import annotations

import runpy
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

READ = """
CREATE FUNCTION cms_read(
  credential_kind text, credential_digest text, requested_org uuid,
  key_resolution_secs integer, admin_roles text[],
  hierarchy boolean, statement_timeout_ms integer, request_role text, lock_timeout_ms integer,
  statement_name text, statement_sql text, arguments text[],
  OUT principal text, OUT results text[]
)
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM cms_open_request(
    credential_kind, credential_digest, requested_org, key_resolution_secs, admin_roles,
    hierarchy, statement_timeout_ms, request_role, true);
  PERFORM set_config('lock_timeout', lock_timeout_ms::text, true);
  principal := current_setting('app.principal');
  -- A read the server believes unprepared may exist after all: an earlier call that prepared it
  -- failed afterwards (PREPARE is not undone with the transaction).
  IF statement_sql IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM pg_prepared_statements p WHERE p.name = statement_name) THEN
    EXECUTE format('PREPARE %I AS %s', statement_name, statement_sql);
  END IF;
  IF cardinality(arguments) > 0 THEN
    EXECUTE format('EXECUTE %I(%s)', statement_name, (
      SELECT string_agg(quote_nullable(a.value), ', ' ORDER BY a.n)
      FROM unnest(arguments) WITH ORDINALITY AS a(value, n)))
    INTO results;
  ELSE
    EXECUTE format('EXECUTE %I', statement_name) INTO results;
  END IF;
END
$$
"""

OPEN_KNOWN_REQUEST = """
CREATE FUNCTION cms_open_known_request(
  credential_kind text, credential_digest text, requested_org uuid,
  key_resolution_secs integer, admin_roles text[],
  hierarchy boolean, statement_timeout_ms integer, request_role text, read_only boolean,
  facts_digest text
) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM cms_open_request(
    credential_kind, credential_digest, requested_org, key_resolution_secs, admin_roles,
    hierarchy, statement_timeout_ms, request_role, read_only);
  IF encode(sha256(convert_to(current_setting('app.principal'), 'UTF8')), 'hex')
     IS DISTINCT FROM facts_digest THEN
    RAISE EXCEPTION USING ERRCODE = 'CM007', MESSAGE = 'the caller''s facts changed';
  END IF;
END
$$
"""

# Migration 0004's `cms_authenticate`, its key branch rewritten: read, then bump only when due.
_FORMER: dict[str, str] = runpy.run_path(
    str(Path(__file__).with_name("20261202_0004_request_opening.py"))
)  # type: ignore[assignment]
FORMER_AUTHENTICATE = _FORMER["AUTHENTICATE"]
_KEY_LOOKUP_AFTER = """    SELECT k.id, k.organization_id, k.published_only, k.instance_admin,
           coalesce(k.capabilities, r.capabilities, '[]') AS capabilities,
           k.last_used_at IS NULL
             OR k.last_used_at < now() - make_interval(secs => key_resolution_secs) AS due
    INTO api_key
    FROM api_keys k LEFT JOIN cms_organization_roles r
      ON r.organization_id = k.organization_id AND r.name = k.role
    WHERE k.key_hash = credential_digest AND k.revoked_at IS NULL
      AND (k.expires_at IS NULL OR k.expires_at > now());
    IF NOT FOUND THEN
      RAISE EXCEPTION USING ERRCODE = 'CM001', MESSAGE = 'invalid, revoked or expired API key';
    END IF;
    IF api_key.due THEN
      UPDATE api_keys a SET last_used_at = now()
      FROM (SELECT id FROM api_keys WHERE id = api_key.id FOR UPDATE SKIP LOCKED) free
      WHERE a.id = free.id;
    END IF;
"""
# The key branch's lookup: from its first statement to its organization check.
_START = FORMER_AUTHENTICATE.index("    WITH k AS (")
_END = FORMER_AUTHENTICATE.index("    IF requested_org IS NOT NULL AND requested_org <> api_key")
AUTHENTICATE = (
    FORMER_AUTHENTICATE[:_START] + _KEY_LOOKUP_AFTER + FORMER_AUTHENTICATE[_END:]
).replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


def upgrade() -> None:
    op.execute(AUTHENTICATE)
    op.execute(READ)
    op.execute(OPEN_KNOWN_REQUEST)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION cms_open_known_request(text, text, uuid, integer, text[], boolean, integer,"
        " text, boolean, text)"
    )
    op.execute(FORMER_AUTHENTICATE.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    op.execute(
        "DROP FUNCTION cms_read(text, text, uuid, integer, text[], boolean, integer, text,"
        " integer, text, text, text[])"
    )
