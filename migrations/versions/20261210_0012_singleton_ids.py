"""The id of a singleton document: derived from its organization and type, in SQL as in Python.

A singleton type (`"singleton": true`) has one document per organization, at an id both read paths
compute without a lookup: the compiled read (`server/query/`) finds it, or answers the empty
singleton, inside its one statement, where only `cms_current_org()` knows the organization. The id
is an RFC 4122 name-based UUID (version 3: MD5, which PostgreSQL has built in) of
`<organization>:<type>` in the namespace below; `server/content/singletons.py` computes the same with
Python's `uuid.uuid3`, and a test holds the two to each other.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-10 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The namespace's 16 bytes in hex; `server.content.singletons.NAMESPACE` is the same UUID.
SINGLETON_ID_SQL = """
CREATE OR REPLACE FUNCTION cms_singleton_id(org uuid, type_name text) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (substr(h, 1, 12) || '3' || substr(h, 14, 3)
            || to_hex((('x' || substr(h, 17, 1))::bit(4)::int & 3) | 8)
            || substr(h, 18))::uuid
      FROM md5(decode('6f4d2c3b7a514e629b1d5c1e0a5e7c11', 'hex')
               || convert_to(org::text || ':' || type_name, 'UTF8')) AS h
$$;
"""


def upgrade() -> None:
    op.execute(SINGLETON_ID_SQL)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS cms_singleton_id(uuid, text)")
