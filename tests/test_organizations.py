from __future__ import annotations

import uuid

import pytest

from server.access.capabilities import BUILT_IN_ROLES
from server.access.organizations import Organization
from server.engine.postgres import PostgresAdapter
from server.errors import ConflictError, InvalidInputError, NotFoundError

CYCLE = "the new parent would make a cycle in the organization tree"


async def make_org(
    adapter: PostgresAdapter, slug: str, *, parent: uuid.UUID | None = None
) -> Organization:
    async with adapter.system_context() as tx:
        return await adapter.create_organization(
            tx, name=slug.title(), slug=slug, created_by="user-1", parent_organization_id=parent
        )


async def test_create_organization_stores_the_row_and_seeds_the_built_in_roles(
    cms_adapter: PostgresAdapter,
) -> None:
    async with cms_adapter.system_context() as tx:
        org = await cms_adapter.create_organization(
            tx, name="  Acme Corp ", slug="acme", created_by="user-1", metadata={"plan": "pro"}
        )
        row = await tx.fetchrow("SELECT * FROM cms_organizations WHERE id = $1", org.id)
        roles = await tx.fetch(
            "SELECT name, capabilities, is_built_in FROM cms_organization_roles"
            " WHERE organization_id = $1",
            org.id,
        )
    assert isinstance(org.id, uuid.UUID)
    assert (org.name, org.slug, org.created_by) == ("Acme Corp", "acme", "user-1")
    assert org.parent_organization_id is None
    assert org.metadata == {"plan": "pro"}
    assert org.created_at.tzinfo is not None
    assert row is not None
    assert row["name"] == "Acme Corp"
    assert {r["name"]: set(r["capabilities"]) for r in roles} == BUILT_IN_ROLES
    assert all(r["is_built_in"] for r in roles)


async def test_create_organization_with_a_parent(cms_adapter: PostgresAdapter) -> None:
    parent = await make_org(cms_adapter, "parent")
    child = await make_org(cms_adapter, "child", parent=parent.id)
    assert child.parent_organization_id == parent.id


async def test_create_organization_under_a_missing_parent_is_not_found(
    cms_adapter: PostgresAdapter,
) -> None:
    with pytest.raises(NotFoundError):
        await make_org(cms_adapter, "orphan", parent=uuid.uuid4())


async def test_duplicate_slug_is_a_conflict(cms_adapter: PostgresAdapter) -> None:
    acme = await make_org(cms_adapter, "acme")
    with pytest.raises(ConflictError, match="slug already exists"):
        await make_org(cms_adapter, "acme")
    await make_org(cms_adapter, "blog", parent=acme.id)
    with pytest.raises(ConflictError, match="slug already exists"):
        await make_org(cms_adapter, "blog", parent=acme.id)


async def test_slugs_are_unique_among_siblings_only(cms_adapter: PostgresAdapter) -> None:
    acme = await make_org(cms_adapter, "acme")
    globex = await make_org(cms_adapter, "globex")
    acme_blog = await make_org(cms_adapter, "blog", parent=acme.id)
    globex_blog = await make_org(cms_adapter, "blog", parent=globex.id)
    async with cms_adapter.system_context() as tx:
        assert await cms_adapter.find_organization_by_slug(tx, slug="acme/blog") == acme_blog
        assert await cms_adapter.find_organization_by_slug(tx, slug="globex/blog") == globex_blog
        assert await cms_adapter.find_organization_by_slug(tx, slug="globex/shop") is None
        assert await cms_adapter.find_organization_by_slug(tx, slug="blog/acme") is None
        with pytest.raises(InvalidInputError, match="several organizations"):
            await cms_adapter.find_organization_by_slug(tx, slug="blog")
    # A root keeps its plain slug, whatever its namesakes further down.
    await make_org(cms_adapter, "acme", parent=globex.id)
    async with cms_adapter.system_context() as tx:
        assert await cms_adapter.find_organization_by_slug(tx, slug="acme") == acme


@pytest.mark.parametrize(
    "slug",
    ["", "Acme", "has space", "-lead", "trail-", "dou--ble", "under_score", "ümlaut", "a" * 101],
)
async def test_bad_slugs_are_refused(cms_adapter: PostgresAdapter, slug: str) -> None:
    async with cms_adapter.system_context() as tx:
        with pytest.raises(InvalidInputError) as caught:
            await cms_adapter.create_organization(tx, name="Acme", slug=slug, created_by="u")
    assert caught.value.path == "slug"


@pytest.mark.parametrize("slug", ["a", "acme-2", "9lives", "a" * 100])
async def test_good_slugs_are_accepted(cms_adapter: PostgresAdapter, slug: str) -> None:
    assert (await make_org(cms_adapter, slug)).slug == slug


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
async def test_bad_names_are_refused(cms_adapter: PostgresAdapter, name: str) -> None:
    async with cms_adapter.system_context() as tx:
        with pytest.raises(InvalidInputError) as caught:
            await cms_adapter.create_organization(tx, name=name, slug="acme", created_by="u")
    assert caught.value.path == "name"


async def test_find_organizations(cms_adapter: PostgresAdapter) -> None:
    beta = await make_org(cms_adapter, "beta")
    alpha = await make_org(cms_adapter, "alpha")
    async with cms_adapter.system_context() as tx:
        assert await cms_adapter.find_organization_by_id(tx, organization_id=beta.id) == beta
        assert await cms_adapter.find_organization_by_slug(tx, slug="alpha") == alpha
        assert await cms_adapter.find_organization_by_id(tx, organization_id=uuid.uuid4()) is None
        assert await cms_adapter.find_organization_by_slug(tx, slug="gamma") is None
        assert await cms_adapter.find_all_organizations(tx) == [alpha, beta]


async def test_organizations_are_readable_from_an_org_context(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter, "acme")
    async with cms_adapter.with_org_context(org.id, read_only=True) as tx:
        assert await cms_adapter.find_organization_by_slug(tx, slug="acme") == org


async def test_update_changes_only_the_given_fields(cms_adapter: PostgresAdapter) -> None:
    parent = await make_org(cms_adapter, "parent")
    org = await make_org(cms_adapter, "acme", parent=parent.id)
    async with cms_adapter.system_context() as tx:
        renamed = await cms_adapter.update_organization(
            tx, organization_id=org.id, name=" Acme Inc "
        )
    assert renamed.name == "Acme Inc"
    assert (renamed.slug, renamed.parent_organization_id) == ("acme", parent.id)
    assert renamed.updated_at > org.updated_at

    async with cms_adapter.system_context() as tx:
        moved = await cms_adapter.update_organization(
            tx, organization_id=org.id, slug="acme-inc", metadata={"tier": 2}
        )
    assert (moved.slug, moved.metadata, moved.parent_organization_id) == (
        "acme-inc",
        {"tier": 2},
        parent.id,
    )


async def test_update_with_none_clears(cms_adapter: PostgresAdapter) -> None:
    parent = await make_org(cms_adapter, "parent")
    org = await make_org(cms_adapter, "acme", parent=parent.id)
    async with cms_adapter.system_context() as tx:
        await cms_adapter.update_organization(tx, organization_id=org.id, metadata={"a": 1})
        cleared = await cms_adapter.update_organization(
            tx, organization_id=org.id, parent_organization_id=None, metadata=None
        )
        row = await tx.fetchrow("SELECT * FROM cms_organizations WHERE id = $1", org.id)
    assert cleared.parent_organization_id is None
    assert cleared.metadata is None
    assert row is not None
    assert row["parent_organization_id"] is None


async def test_update_with_nothing_given_returns_the_organization(
    cms_adapter: PostgresAdapter,
) -> None:
    org = await make_org(cms_adapter, "acme")
    async with cms_adapter.system_context() as tx:
        assert await cms_adapter.update_organization(tx, organization_id=org.id) == org
        with pytest.raises(NotFoundError):
            await cms_adapter.update_organization(tx, organization_id=uuid.uuid4())


async def test_update_errors(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter, "acme")
    await make_org(cms_adapter, "taken")
    async with cms_adapter.system_context() as tx:
        with pytest.raises(NotFoundError):
            await cms_adapter.update_organization(tx, organization_id=uuid.uuid4(), name="X")
        with pytest.raises(InvalidInputError) as caught:
            await cms_adapter.update_organization(tx, organization_id=org.id, slug="Not A Slug")
        assert caught.value.path == "slug"
        with pytest.raises(InvalidInputError) as caught:
            await cms_adapter.update_organization(tx, organization_id=org.id, name=" ")
        assert caught.value.path == "name"
    # A database error aborts the transaction, so each of these gets its own.
    with pytest.raises(NotFoundError):
        async with cms_adapter.system_context() as tx:
            await cms_adapter.update_organization(
                tx, organization_id=org.id, parent_organization_id=uuid.uuid4()
            )
    with pytest.raises(ConflictError):
        async with cms_adapter.system_context() as tx:
            await cms_adapter.update_organization(tx, organization_id=org.id, slug="taken")


async def test_a_parent_change_that_makes_a_cycle_is_refused(cms_adapter: PostgresAdapter) -> None:
    a = await make_org(cms_adapter, "a")
    b = await make_org(cms_adapter, "b", parent=a.id)
    c = await make_org(cms_adapter, "c", parent=b.id)
    for new_parent in (c.id, b.id, a.id):
        with pytest.raises(InvalidInputError, match=CYCLE):
            async with cms_adapter.system_context() as tx:
                await cms_adapter.update_organization(
                    tx, organization_id=a.id, parent_organization_id=new_parent
                )
    async with cms_adapter.system_context() as tx:
        unchanged = await cms_adapter.find_organization_by_id(tx, organization_id=a.id)
        # A move that keeps the tree a tree is fine: c directly under a.
        moved = await cms_adapter.update_organization(
            tx, organization_id=c.id, parent_organization_id=a.id
        )
    assert unchanged is not None
    assert unchanged.parent_organization_id is None
    assert moved.parent_organization_id == a.id


async def test_delete_organization(cms_adapter: PostgresAdapter) -> None:
    parent = await make_org(cms_adapter, "parent")
    child = await make_org(cms_adapter, "child", parent=parent.id)
    async with cms_adapter.system_context() as tx:
        await tx.execute(
            "INSERT INTO cms_organization_members (organization_id, user_id, role)"
            " VALUES ($1, 'user-1', 'owner')",
            parent.id,
        )
        assert await cms_adapter.delete_organization(tx, organization_id=parent.id) is True
        assert await cms_adapter.delete_organization(tx, organization_id=parent.id) is False
        left = await tx.fetchval(
            "SELECT (SELECT count(*) FROM cms_organization_roles WHERE organization_id = $1)"
            " + (SELECT count(*) FROM cms_organization_members WHERE organization_id = $1)",
            parent.id,
        )
        orphan = await cms_adapter.find_organization_by_id(tx, organization_id=child.id)
    assert left == 0
    assert orphan is not None
    assert orphan.parent_organization_id is None


# A 3-level tree plus a sibling tree:
#   root -> mid -> leaf, root -> mid2;   other -> other-child
TREE = {
    "root": None,
    "mid": "root",
    "leaf": "mid",
    "mid2": "root",
    "other": None,
    "other-child": "other",
}


@pytest.mark.parametrize(
    ("parent", "descendants"),
    [
        ("root", {"mid", "leaf", "mid2"}),
        ("mid", {"leaf"}),
        ("leaf", set()),
        ("mid2", set()),
        ("other", {"other-child"}),
        ("other-child", set()),
    ],
)
async def test_get_child_organizations_returns_every_descendant(
    cms_adapter: PostgresAdapter, parent: str, descendants: set[str]
) -> None:
    ids: dict[str, uuid.UUID] = {}
    for slug, parent_slug in TREE.items():
        org = await make_org(cms_adapter, slug, parent=ids[parent_slug] if parent_slug else None)
        ids[slug] = org.id
    async with cms_adapter.system_context() as tx:
        found = await cms_adapter.get_child_organizations(tx, parent_organization_id=ids[parent])
    assert len(found) == len(set(found))
    assert set(found) == {ids[slug] for slug in descendants}


async def test_get_child_organizations_of_an_unknown_org_is_empty(
    cms_adapter: PostgresAdapter,
) -> None:
    async with cms_adapter.system_context() as tx:
        assert (
            await cms_adapter.get_child_organizations(tx, parent_organization_id=uuid.uuid4()) == []
        )


async def test_active_organization_session(cms_adapter: PostgresAdapter) -> None:
    first = await make_org(cms_adapter, "first")
    second = await make_org(cms_adapter, "second")
    async with cms_adapter.with_org_context(first.id) as tx:
        assert await cms_adapter.find_user_session(tx, user_id="user-1") is None
        created = await cms_adapter.set_active_organization(
            tx, user_id="user-1", organization_id=first.id
        )
    assert (created.user_id, created.active_organization_id) == ("user-1", first.id)

    async with cms_adapter.with_org_context(second.id) as tx:
        switched = await cms_adapter.set_active_organization(
            tx, user_id="user-1", organization_id=second.id
        )
        found = await cms_adapter.find_user_session(tx, user_id="user-1")
        rows = await tx.fetchval("SELECT count(*) FROM cms_user_sessions")
    assert switched.active_organization_id == second.id
    assert switched.updated_at > created.updated_at
    assert found == switched
    assert rows == 1

    async with cms_adapter.system_context() as tx:
        assert await cms_adapter.delete_user_session(tx, user_id="user-1") is True
        assert await cms_adapter.delete_user_session(tx, user_id="user-1") is False
        assert await cms_adapter.find_user_session(tx, user_id="user-1") is None


async def test_active_organization_must_exist_and_is_cleared_with_it(
    cms_adapter: PostgresAdapter,
) -> None:
    org = await make_org(cms_adapter, "acme")
    with pytest.raises(NotFoundError):
        async with cms_adapter.system_context() as tx:
            await cms_adapter.set_active_organization(
                tx, user_id="user-1", organization_id=uuid.uuid4()
            )
    async with cms_adapter.system_context() as tx:
        await cms_adapter.set_active_organization(tx, user_id="user-1", organization_id=org.id)
        await cms_adapter.delete_organization(tx, organization_id=org.id)
        session = await cms_adapter.find_user_session(tx, user_id="user-1")
    assert session is not None
    assert session.active_organization_id is None
