from __future__ import annotations

import uuid

import pytest

from server.access.capabilities import BUILT_IN_ROLES, normalize_capabilities
from server.access.members import MemberStore
from server.access.organizations import Organization
from server.engine.postgres import PostgresAdapter
from server.errors import ConflictError, InvalidInputError, NotFoundError

MEMBERS = MemberStore()


async def make_org(adapter: PostgresAdapter, slug: str) -> Organization:
    async with adapter.system_context() as tx:
        return await adapter.create_organization(tx, name=slug, slug=slug, created_by="user-1")


async def test_add_member(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter, "acme")
    async with cms_adapter.with_org_context(org.id) as tx:
        member = await MEMBERS.add_member(tx, organization_id=org.id, user_id="u1", role="editor")
        row = await tx.fetchrow(
            "SELECT role, invitation_id FROM cms_organization_members WHERE id = $1", member.id
        )
    assert (member.organization_id, member.user_id, member.role) == (org.id, "u1", "editor")
    assert member.invitation_id is None
    assert row is not None
    assert row["role"] == "editor"


async def test_add_member_with_an_unknown_role_is_refused(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter, "acme")
    async with cms_adapter.system_context() as tx:
        with pytest.raises(InvalidInputError, match="no role 'superuser'") as caught:
            await MEMBERS.add_member(tx, organization_id=org.id, user_id="u1", role="superuser")
        count = await tx.fetchval("SELECT count(*) FROM cms_organization_members")
    assert caught.value.path == "role"
    assert count == 0


async def test_add_member_to_a_missing_organization_is_not_found(
    cms_adapter: PostgresAdapter,
) -> None:
    async with cms_adapter.system_context() as tx:
        with pytest.raises(NotFoundError, match="no such organization"):
            await MEMBERS.add_member(tx, organization_id=uuid.uuid4(), user_id="u1", role="owner")


async def test_adding_a_member_twice_is_a_conflict(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter, "acme")
    async with cms_adapter.system_context() as tx:
        await MEMBERS.add_member(tx, organization_id=org.id, user_id="u1", role="viewer")
    with pytest.raises(ConflictError, match="already a member"):
        async with cms_adapter.system_context() as tx:
            await MEMBERS.add_member(tx, organization_id=org.id, user_id="u1", role="editor")


async def test_remove_member(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter, "acme")
    async with cms_adapter.system_context() as tx:
        await MEMBERS.add_member(tx, organization_id=org.id, user_id="u1", role="viewer")
        assert await MEMBERS.remove_member(tx, organization_id=org.id, user_id="u1") is True
        assert await MEMBERS.remove_member(tx, organization_id=org.id, user_id="u1") is False
        assert await MEMBERS.find_user_membership(tx, user_id="u1", organization_id=org.id) is None


async def test_update_member_role(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter, "acme")
    async with cms_adapter.system_context() as tx:
        added = await MEMBERS.add_member(tx, organization_id=org.id, user_id="u1", role="viewer")
    async with cms_adapter.system_context() as tx:
        updated = await MEMBERS.update_member_role(
            tx, organization_id=org.id, user_id="u1", role="admin"
        )
        with pytest.raises(InvalidInputError, match="no role 'nobody'"):
            await MEMBERS.update_member_role(
                tx, organization_id=org.id, user_id="u1", role="nobody"
            )
        with pytest.raises(NotFoundError, match="not a member"):
            await MEMBERS.update_member_role(
                tx, organization_id=org.id, user_id="stranger", role="admin"
            )
        stored = await MEMBERS.find_user_membership(tx, user_id="u1", organization_id=org.id)
    assert (updated.id, updated.role) == (added.id, "admin")
    assert updated.updated_at > added.updated_at
    assert stored == updated


async def test_find_user_organizations_and_members(cms_adapter: PostgresAdapter) -> None:
    beta = await make_org(cms_adapter, "beta")
    alpha = await make_org(cms_adapter, "alpha")
    await make_org(cms_adapter, "gamma")
    async with cms_adapter.system_context() as tx:
        in_beta = await MEMBERS.add_member(tx, organization_id=beta.id, user_id="u1", role="owner")
        in_alpha = await MEMBERS.add_member(
            tx, organization_id=alpha.id, user_id="u1", role="viewer"
        )
        other = await MEMBERS.add_member(tx, organization_id=beta.id, user_id="u2", role="editor")
    async with cms_adapter.with_org_context(beta.id, read_only=True) as tx:
        assert await MEMBERS.find_user_organizations(tx, user_id="u1") == [
            (alpha, in_alpha),
            (beta, in_beta),
        ]
        assert await MEMBERS.find_user_organizations(tx, user_id="nobody") == []
        members = await MEMBERS.find_organization_members(tx, organization_id=beta.id)
        membership = await MEMBERS.find_user_membership(tx, user_id="u2", organization_id=beta.id)
    assert {m.user_id for m in members} == {"u1", "u2"}
    assert set(members) == {in_beta, other}
    assert membership == other


@pytest.mark.parametrize("role", list(BUILT_IN_ROLES))
async def test_capabilities_for_member_with_a_built_in_role(
    cms_adapter: PostgresAdapter, role: str
) -> None:
    org = await make_org(cms_adapter, "acme")
    async with cms_adapter.with_org_context(org.id) as tx:
        await MEMBERS.add_member(tx, organization_id=org.id, user_id="u1", role=role)
        capabilities = await MEMBERS.capabilities_for_member(
            tx, organization_id=org.id, user_id="u1"
        )
    assert capabilities == BUILT_IN_ROLES[role]


async def test_capabilities_for_member_with_a_custom_role_and_for_strangers(
    cms_adapter: PostgresAdapter,
) -> None:
    org = await make_org(cms_adapter, "acme")
    other = await make_org(cms_adapter, "other")
    async with cms_adapter.system_context() as tx:
        await tx.execute(
            "INSERT INTO cms_organization_roles (organization_id, name, capabilities)"
            " VALUES ($1, 'reviewer', $2)",
            org.id,
            ["document.read", "document.publish"],
        )
        await MEMBERS.add_member(tx, organization_id=org.id, user_id="u1", role="reviewer")
        own = await MEMBERS.capabilities_for_member(tx, organization_id=org.id, user_id="u1")
        elsewhere = await MEMBERS.capabilities_for_member(
            tx, organization_id=other.id, user_id="u1"
        )
    assert own == normalize_capabilities(["document.publish"])
    assert elsewhere == frozenset()
