from __future__ import annotations

import asyncio
import uuid

import pytest

from server.access.capabilities import BUILT_IN_ROLES, ordered
from server.access.members import MemberStore
from server.access.organizations import Organization
from server.access.roles import RoleStore
from server.engine.postgres import PostgresAdapter
from server.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from tests.conftest import until_a_lock_wait

ROLES = RoleStore()
MEMBERS = MemberStore()


async def make_org(adapter: PostgresAdapter, slug: str = "acme") -> Organization:
    async with adapter.system_context() as tx:
        return await adapter.create_organization(tx, name=slug, slug=slug, created_by="user-1")


async def test_list_and_find_roles(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter)
    async with cms_adapter.system_context() as tx:
        custom = await ROLES.create_role(
            tx, organization_id=org.id, name="author", capabilities=["document.create"]
        )
        roles = await ROLES.list_roles(tx, organization_id=org.id)
        editor = await ROLES.find_role(tx, organization_id=org.id, name="editor")
        missing = await ROLES.find_role(tx, organization_id=org.id, name="ghost")
    assert [r.name for r in roles] == ["owner", "admin", "editor", "viewer", "author"]
    assert roles[-1] == custom
    assert editor is not None
    assert editor.is_built_in
    assert editor.capabilities == BUILT_IN_ROLES["editor"]
    assert editor.description
    assert missing is None


async def test_create_role_normalises_and_stores_capabilities_in_canonical_order(
    cms_adapter: PostgresAdapter,
) -> None:
    org = await make_org(cms_adapter)
    async with cms_adapter.system_context() as tx:
        role = await ROLES.create_role(
            tx,
            organization_id=org.id,
            name="uploader",
            description="Uploads assets",
            capabilities=["asset.upload", "document.update", "asset.upload"],
        )
        stored = await tx.fetchval(
            "SELECT capabilities FROM cms_organization_roles WHERE id = $1", role.id
        )
    expected = {"asset.upload", "asset.read", "document.update", "document.read"}
    assert role.capabilities == expected
    assert (role.name, role.description, role.is_built_in) == ("uploader", "Uploads assets", False)
    assert stored == ordered(expected)


@pytest.mark.parametrize(
    ("capabilities", "message"),
    [
        (["document.read", "document.write"], "unknown capability: 'document.write'"),
        (["schema.manage"], "schema.manage is an instance capability"),
        ("document.read", "must be a list"),
    ],
)
async def test_create_role_refuses_bad_capabilities(
    cms_adapter: PostgresAdapter, capabilities: list[str], message: str
) -> None:
    org = await make_org(cms_adapter)
    async with cms_adapter.system_context() as tx:
        with pytest.raises(InvalidInputError, match=message) as caught:
            await ROLES.create_role(tx, organization_id=org.id, name="x", capabilities=capabilities)
    assert caught.value.path == "capabilities"


@pytest.mark.parametrize("name", ["", "Author", "1st", "has space", "x" * 101, "-x"])
async def test_create_role_refuses_bad_names(cms_adapter: PostgresAdapter, name: str) -> None:
    org = await make_org(cms_adapter)
    async with cms_adapter.system_context() as tx:
        with pytest.raises(InvalidInputError) as caught:
            await ROLES.create_role(tx, organization_id=org.id, name=name, capabilities=[])
    assert caught.value.path == "name"


@pytest.mark.parametrize("name", ["owner", "viewer", "author"])
async def test_create_role_with_a_taken_name_is_a_conflict(
    cms_adapter: PostgresAdapter, name: str
) -> None:
    org = await make_org(cms_adapter)
    async with cms_adapter.system_context() as tx:
        await ROLES.create_role(tx, organization_id=org.id, name="author", capabilities=[])
    with pytest.raises(ConflictError, match="role with this name already exists"):
        async with cms_adapter.system_context() as tx:
            await ROLES.create_role(tx, organization_id=org.id, name=name, capabilities=[])


async def test_the_same_role_name_in_two_organizations(cms_adapter: PostgresAdapter) -> None:
    first, second = await make_org(cms_adapter, "first"), await make_org(cms_adapter, "second")
    async with cms_adapter.system_context() as tx:
        created = [
            await ROLES.create_role(
                tx, organization_id=org.id, name="author", capabilities=["document.create"]
            )
            for org in (first, second)
        ]
    async with cms_adapter.system_context() as tx:
        found = [
            await ROLES.find_role(tx, organization_id=org.id, name="author")
            for org in (first, second)
        ]
    assert found == created
    assert created[0].id != created[1].id


async def test_update_a_custom_role(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter)
    async with cms_adapter.system_context() as tx:
        role = await ROLES.create_role(
            tx, organization_id=org.id, name="author", description="Writes", capabilities=[]
        )
    async with cms_adapter.system_context() as tx:
        more = await ROLES.update_role(
            tx, organization_id=org.id, name="author", capabilities=["document.create"]
        )
        described = await ROLES.update_role(
            tx, organization_id=org.id, name="author", description="Writes drafts"
        )
        cleared = await ROLES.update_role(tx, organization_id=org.id, name="author", description="")
    assert more.capabilities == {"document.create", "document.read"}
    assert more.description == "Writes"
    assert more.updated_at > role.updated_at
    assert (described.description, described.capabilities) == ("Writes drafts", more.capabilities)
    assert cleared.description is None


async def test_update_role_errors(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter)
    async with cms_adapter.system_context() as tx:
        with pytest.raises(NotFoundError):
            await ROLES.update_role(tx, organization_id=org.id, name="ghost", description="x")
        with pytest.raises(InvalidInputError, match="'nope'"):
            await ROLES.update_role(
                tx, organization_id=org.id, name="editor", capabilities=["nope"]
            )


@pytest.mark.parametrize("name", list(BUILT_IN_ROLES))
async def test_built_in_roles_are_protected(cms_adapter: PostgresAdapter, name: str) -> None:
    org = await make_org(cms_adapter)
    async with cms_adapter.system_context() as tx:
        with pytest.raises(ForbiddenError, match=f"built-in role '{name}' cannot be changed"):
            await ROLES.update_role(
                tx, organization_id=org.id, name=name, capabilities=["document.read"]
            )
        with pytest.raises(ForbiddenError, match=f"built-in role '{name}' cannot be deleted"):
            await ROLES.delete_role(tx, organization_id=org.id, name=name)
        renamed = await ROLES.update_role(tx, organization_id=org.id, name=name, description="Ours")
    assert renamed.description == "Ours"
    assert renamed.capabilities == BUILT_IN_ROLES[name]


async def test_delete_role(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter)
    async with cms_adapter.system_context() as tx:
        await ROLES.create_role(tx, organization_id=org.id, name="author", capabilities=[])
        assert await ROLES.delete_role(tx, organization_id=org.id, name="author") is True
        assert await ROLES.delete_role(tx, organization_id=org.id, name="author") is False
        assert await ROLES.find_role(tx, organization_id=org.id, name="author") is None


async def test_a_role_held_by_members_cannot_be_deleted(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter)
    async with cms_adapter.system_context() as tx:
        await ROLES.create_role(tx, organization_id=org.id, name="author", capabilities=[])
        await MEMBERS.add_member(tx, organization_id=org.id, user_id="u1", role="author")
        with pytest.raises(ConflictError, match="still assigned"):
            await ROLES.delete_role(tx, organization_id=org.id, name="author")
        assert await ROLES.find_role(tx, organization_id=org.id, name="author") is not None


async def test_delete_role_waits_for_a_concurrent_assignment(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter)
    async with cms_adapter.system_context() as tx:
        await ROLES.create_role(tx, organization_id=org.id, name="author", capabilities=[])
    assigned = asyncio.Event()
    release = asyncio.Event()

    async def assign() -> None:
        async with cms_adapter.system_context() as tx:
            await MEMBERS.add_member(tx, organization_id=org.id, user_id="u1", role="author")
            assigned.set()
            await release.wait()

    async def delete() -> None:
        await assigned.wait()
        async with cms_adapter.system_context() as tx:
            await ROLES.delete_role(tx, organization_id=org.id, name="author")

    assigning = asyncio.create_task(assign())
    deleting = asyncio.create_task(delete())
    try:
        await assigned.wait()
        # The delete is blocked on the role row until the assignment commits.
        await until_a_lock_wait(cms_adapter)
        assert not deleting.done()
    finally:
        release.set()
        await assigning
    with pytest.raises(ConflictError):
        await deleting


async def test_seed_builtin_roles_is_idempotent_and_repairs(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter)
    async with cms_adapter.system_context() as tx:
        await ROLES.create_role(
            tx, organization_id=org.id, name="author", capabilities=["document.create"]
        )
        assert await ROLES.seed_builtin_roles(tx, organization_id=org.id) == []
        await tx.execute(
            "UPDATE cms_organization_roles SET capabilities = '[\"document.read\"]'"
            " WHERE organization_id = $1 AND name = 'editor'",
            org.id,
        )
        await tx.execute(
            "DELETE FROM cms_organization_roles WHERE organization_id = $1 AND name = 'viewer'",
            org.id,
        )
        repaired = await ROLES.seed_builtin_roles(tx, organization_id=org.id)
        again = await ROLES.seed_builtin_roles(tx, organization_id=org.id)
        roles = {r.name: r for r in await ROLES.list_roles(tx, organization_id=org.id)}
    assert {r.name for r in repaired} == {"editor", "viewer"}
    assert again == []
    assert set(roles) == {*BUILT_IN_ROLES, "author"}
    for name, capabilities in BUILT_IN_ROLES.items():
        assert roles[name].capabilities == capabilities
        assert roles[name].is_built_in
    assert roles["author"].capabilities == {"document.create", "document.read"}


async def test_roles_of_a_missing_organization(cms_adapter: PostgresAdapter) -> None:
    async with cms_adapter.system_context() as tx:
        assert await ROLES.list_roles(tx, organization_id=uuid.uuid4()) == []
    with pytest.raises(NotFoundError):
        async with cms_adapter.system_context() as tx:
            await ROLES.create_role(tx, organization_id=uuid.uuid4(), name="x", capabilities=[])
