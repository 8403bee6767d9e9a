"""A list of strings (or booleans) with an element of another JSON type, as a function.

A compiled read shows a stored list of `string` or `boolean` items as it is when every element
has that JSON type (`tags`, the usual case), after one JSON path test; otherwise each element
of another type shows as null. That second case was a subquery in the statement itself
(`json_agg` over `jsonb_array_elements`), and PostgreSQL sets up every subquery of a statement
at each execution, whether it runs or not: for a read of one post with its tags, about 5% of
PostgreSQL's CPU for the statement (`python -m bench.statement_cpu`), for a case that stored
content written through the API never has. `cms_typed_elements` is that subquery as a function,
which only the rows that need it call.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-26 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same text as the subquery it replaces (`server/query/sql.py`), so the same JSON.
TYPED_ELEMENTS = """
CREATE FUNCTION cms_typed_elements(items jsonb, json_type text) RETURNS json
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(json_agg(CASE WHEN jsonb_typeof(e.value) = json_type THEN e.value END
                           ORDER BY e.n), '[]'::json)
  FROM jsonb_array_elements(items) WITH ORDINALITY AS e(value, n)
$$
"""


def upgrade() -> None:
    op.execute(TYPED_ELEMENTS)


def downgrade() -> None:
    op.execute("DROP FUNCTION cms_typed_elements(jsonb, text)")
