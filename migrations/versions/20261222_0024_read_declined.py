"""A compiled read can decline a request it would answer wrongly: `cms_read_declined`.

Some answers depend on rows a compiled read only meets while it runs: `referencedBy` with an
argument out of range is an error on a document, but an empty page on a reference stub, and
which of the two a reference gives is known only from its target. Where the read finds such a
document, it calls `cms_read_declined`, which raises SQLSTATE `CM009`: the statement fails, having
read nothing, and the server answers the request through the resolvers, which give the error
(`server/query/round_trip.py`, `ReadDeclined`).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-22 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

READ_DECLINED = """
CREATE FUNCTION cms_read_declined(reason text) RETURNS json
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'CM009', MESSAGE = 'the compiled read declines: ' || reason;
END
$$
"""


def upgrade() -> None:
    op.execute(READ_DECLINED)


def downgrade() -> None:
    op.execute("DROP FUNCTION cms_read_declined(text)")
