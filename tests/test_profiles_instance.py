from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server.engine.postgres import PostgresAdapter
from server.errors import ConflictError, InvalidInputError, NotFoundError


async def test_create_user_profile_with_defaults(cms_adapter: PostgresAdapter) -> None:
    async with cms_adapter.instance_transaction() as tx:
        profile = await cms_adapter.create_user_profile(tx, user_id="u1")
        row = await tx.fetchrow("SELECT * FROM cms_user_profiles WHERE user_id = 'u1'")
    assert (profile.user_id, profile.role, profile.preferences) == ("u1", "editor", {})
    assert row is not None
    assert (row["role"], row["preferences"]) == ("editor", None)


@pytest.mark.parametrize("role", ["super_admin", "admin", "editor", "viewer"])
async def test_create_user_profile_with_each_instance_role(
    cms_adapter: PostgresAdapter, role: str
) -> None:
    async with cms_adapter.instance_transaction() as tx:
        profile = await cms_adapter.create_user_profile(
            tx, user_id="u1", role=role, preferences={"theme": "dark"}
        )
        found = await cms_adapter.find_user_profile(tx, user_id="u1")
    assert profile.role == role
    assert profile.preferences == {"theme": "dark"}
    assert found == profile


@pytest.mark.parametrize("role", ["owner", "Admin", "", "root"])
async def test_unknown_instance_roles_are_refused(cms_adapter: PostgresAdapter, role: str) -> None:
    async with cms_adapter.instance_transaction() as tx:
        await cms_adapter.create_user_profile(tx, user_id="u2")
        with pytest.raises(InvalidInputError) as created:
            await cms_adapter.create_user_profile(tx, user_id="u1", role=role)
        with pytest.raises(InvalidInputError) as updated:
            await cms_adapter.update_user_role(tx, user_id="u2", role=role)
    assert created.value.path == updated.value.path == "role"


async def test_the_database_refuses_an_unknown_instance_role_too(
    cms_adapter: PostgresAdapter,
) -> None:
    with pytest.raises(InvalidInputError, match="super_admin, admin, editor or viewer"):
        async with cms_adapter.instance_transaction() as tx:
            await tx.execute("INSERT INTO cms_user_profiles (user_id, role) VALUES ('u1', 'root')")


async def test_a_second_profile_for_a_user_is_a_conflict(cms_adapter: PostgresAdapter) -> None:
    async with cms_adapter.instance_transaction() as tx:
        await cms_adapter.create_user_profile(tx, user_id="u1", role="admin")
        with pytest.raises(ConflictError, match="already has a profile"):
            await cms_adapter.create_user_profile(tx, user_id="u1")
        profile = await cms_adapter.find_user_profile(tx, user_id="u1")
    assert profile is not None
    assert profile.role == "admin"


async def test_preferences_must_be_an_object(cms_adapter: PostgresAdapter) -> None:
    async with cms_adapter.instance_transaction() as tx:
        with pytest.raises(InvalidInputError):
            await cms_adapter.create_user_profile(
                tx,
                user_id="u1",
                preferences=["dark"],  # type: ignore[arg-type]
            )
        await cms_adapter.create_user_profile(tx, user_id="u1")
        with pytest.raises(InvalidInputError):
            await cms_adapter.update_user_preferences(
                tx,
                user_id="u1",
                preferences="dark",  # type: ignore[arg-type]
            )


async def test_update_user_role(cms_adapter: PostgresAdapter) -> None:
    async with cms_adapter.instance_transaction() as tx:
        created = await cms_adapter.create_user_profile(tx, user_id="u1")
    async with cms_adapter.instance_transaction() as tx:
        updated = await cms_adapter.update_user_role(tx, user_id="u1", role="super_admin")
        with pytest.raises(NotFoundError):
            await cms_adapter.update_user_role(tx, user_id="ghost", role="viewer")
    assert updated.role == "super_admin"
    assert updated.updated_at > created.updated_at


@pytest.mark.parametrize(
    ("stored", "given", "expected"),
    [
        (None, {"theme": "dark"}, {"theme": "dark"}),
        ({"theme": "light", "lang": "en"}, {"theme": "dark"}, {"theme": "dark", "lang": "en"}),
        # Shallow: a nested object is replaced, not merged.
        (
            {"editor": {"font": 12, "wrap": True}},
            {"editor": {"font": 14}},
            {"editor": {"font": 14}},
        ),
        ({"theme": "dark"}, {}, {"theme": "dark"}),
        ({"theme": "dark"}, {"theme": None}, {"theme": None}),
    ],
)
async def test_update_user_preferences_is_a_shallow_merge(
    cms_adapter: PostgresAdapter,
    stored: dict[str, Any] | None,
    given: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    async with cms_adapter.instance_transaction() as tx:
        await cms_adapter.create_user_profile(tx, user_id="u1", preferences=stored)
        updated = await cms_adapter.update_user_preferences(tx, user_id="u1", preferences=given)
        row = await tx.fetchval("SELECT preferences FROM cms_user_profiles WHERE user_id = 'u1'")
    assert updated.preferences == expected
    assert row == expected


async def test_update_user_preferences_of_a_missing_profile(cms_adapter: PostgresAdapter) -> None:
    async with cms_adapter.instance_transaction() as tx:
        with pytest.raises(NotFoundError):
            await cms_adapter.update_user_preferences(tx, user_id="ghost", preferences={"a": 1})


async def test_delete_user_profile_and_first_user_detection(cms_adapter: PostgresAdapter) -> None:
    async with cms_adapter.instance_transaction() as tx:
        assert await cms_adapter.has_any_user_profiles(tx) is False
        assert await cms_adapter.find_user_profile(tx, user_id="u1") is None
        await cms_adapter.create_user_profile(tx, user_id="u1")
        assert await cms_adapter.has_any_user_profiles(tx) is True
        assert await cms_adapter.delete_user_profile(tx, user_id="u1") is True
        assert await cms_adapter.delete_user_profile(tx, user_id="u1") is False
        assert await cms_adapter.has_any_user_profiles(tx) is False


async def test_instance_settings_default(cms_adapter: PostgresAdapter) -> None:
    async with cms_adapter.instance_transaction(read_only=True) as tx:
        assert await cms_adapter.get_instance_settings(tx) == {"allowUserOrgCreation": False}


async def test_update_instance_settings_merges(cms_adapter: PostgresAdapter) -> None:
    async with cms_adapter.instance_transaction() as tx:
        first = await cms_adapter.update_instance_settings(tx, settings={"siteName": "Docs"})
    async with cms_adapter.instance_transaction() as tx:
        second = await cms_adapter.update_instance_settings(
            tx, settings={"allowUserOrgCreation": True, "theme": {"accent": "red"}}
        )
        stored = await tx.fetchval(
            "SELECT settings FROM cms_instance_settings WHERE id = 'default'"
        )
        read = await cms_adapter.get_instance_settings(tx)
    assert first == {"allowUserOrgCreation": False, "siteName": "Docs"}
    assert second == read
    assert read == {"allowUserOrgCreation": True, "siteName": "Docs", "theme": {"accent": "red"}}
    assert stored == {"siteName": "Docs", "allowUserOrgCreation": True, "theme": {"accent": "red"}}


@pytest.mark.parametrize(
    "settings",
    [["allowUserOrgCreation"], "on", {1: True}, {"allowUserOrgCreation": "yes"}],
)
async def test_update_instance_settings_refuses_bad_input(
    cms_adapter: PostgresAdapter, settings: object
) -> None:
    async with cms_adapter.instance_transaction() as tx:
        with pytest.raises(InvalidInputError):
            await cms_adapter.update_instance_settings(tx, settings=settings)  # type: ignore[arg-type]
        assert await cms_adapter.get_instance_settings(tx) == {"allowUserOrgCreation": False}


async def test_bootstrap_can_be_claimed_once(cms_adapter: PostgresAdapter) -> None:
    async with cms_adapter.instance_transaction() as tx:
        assert await cms_adapter.try_claim_bootstrap(tx) is True
    async with cms_adapter.instance_transaction() as tx:
        assert await cms_adapter.try_claim_bootstrap(tx) is False
        # The claim is not a setting.
        assert await cms_adapter.get_instance_settings(tx) == {"allowUserOrgCreation": False}


async def test_a_rolled_back_claim_does_not_count(cms_adapter: PostgresAdapter) -> None:
    async def claim_then_fail() -> None:
        async with cms_adapter.instance_transaction() as tx:
            assert await cms_adapter.try_claim_bootstrap(tx) is True
            raise RuntimeError("the promotion failed")

    with pytest.raises(RuntimeError):
        await claim_then_fail()
    async with cms_adapter.instance_transaction() as tx:
        assert await cms_adapter.try_claim_bootstrap(tx) is True


async def test_ten_concurrent_bootstrap_claims_have_one_winner(
    cms_adapter: PostgresAdapter,
) -> None:
    async def claim() -> bool:
        async with cms_adapter.instance_transaction() as tx:
            won = await cms_adapter.try_claim_bootstrap(tx)
            # Hold the transaction open a moment so the claims really overlap.
            await asyncio.sleep(0.05)
            return won

    results = await asyncio.gather(*(claim() for _ in range(10)))
    async with cms_adapter.instance_transaction() as tx:
        rows = await tx.fetchval(
            "SELECT count(*) FROM cms_instance_settings WHERE id = 'bootstrap-claim'"
        )
    assert sorted(results) == [False] * 9 + [True]
    assert rows == 1
