"""Organization slugs are unique among siblings, not across the instance.

With one namespace for the whole instance, creating an organization told its caller whether any
other tenant anywhere had taken a slug (`CONFLICT`). Unique per parent, a clash can only be with
a child of the caller's own organization, which it sees anyway. Roots (created by operators, not
over the API) stay unique among roots: `NULLS NOT DISTINCT` treats their null parents as one.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint("uq_cms_organizations_slug", "cms_organizations", type_="unique")
    op.create_unique_constraint(
        "uq_cms_organizations_parent_organization_id_slug",
        "cms_organizations",
        ["parent_organization_id", "slug"],
        postgresql_nulls_not_distinct=True,
    )


def downgrade() -> None:
    # Fails (and changes nothing) when two organizations under different parents share a slug.
    op.drop_constraint(
        "uq_cms_organizations_parent_organization_id_slug", "cms_organizations", type_="unique"
    )
    op.create_unique_constraint("uq_cms_organizations_slug", "cms_organizations", ["slug"])
