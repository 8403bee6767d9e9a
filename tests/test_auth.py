from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher

from server.access import passwords, sessions
from server.access.auth import Principal, authenticate
from server.access.capabilities import ALL_CAPABILITIES, BUILT_IN_ROLES, ORGANIZATION_CAPABILITIES
from server.access.credentials import ApiKey
from server.access.members import MemberStore
from server.access.organizations import Organization
from server.access.roles import RoleStore
from server.access.sessions import SESSION_LIFETIME
from server.engine.postgres import PostgresAdapter
from server.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    UnauthenticatedError,
)

MEMBERS = MemberStore()
ROLES = RoleStore()
KEY_FORMAT = re.compile(r"cms_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")
SESSION_FORMAT = re.compile(r"cms_session_[A-Za-z0-9_-]{43}")
PASSWORD = "correct horse battery"

pytestmark = pytest.mark.usefixtures("cheap_hashing")


async def make_org(adapter: PostgresAdapter, slug: str) -> Organization:
    async with adapter.system_context() as tx:
        return await adapter.create_organization(tx, name=slug, slug=slug, created_by="test")


async def make_key(
    adapter: PostgresAdapter, org: Organization, **options: Any
) -> tuple[ApiKey, str]:
    options.setdefault("name", "test key")
    if "capabilities" not in options:
        options.setdefault("role", "editor")
    async with adapter.instance_transaction() as tx:
        return await adapter.create_api_key(tx, organization_id=org.id, **options)


async def auth(
    adapter: PostgresAdapter,
    token: str | None,
    organization: uuid.UUID | str | None = None,
    *,
    statements: int | None = None,
) -> Principal:
    """Authenticate a bearer token; with `statements`, assert how many statements that took."""
    async with adapter.instance_transaction() as tx:
        principal = await authenticate(
            tx,
            authorization=f"Bearer {token}" if token is not None else None,
            organization_header=str(organization) if organization is not None else None,
        )
        if statements is not None:
            assert tx.statements == statements
    return principal


async def make_user(
    adapter: PostgresAdapter,
    email: str = "ada@example.com",
    *,
    memberships: dict[Organization, str] | None = None,
    instance_role: str = "editor",
) -> str:
    async with adapter.instance_transaction() as tx:
        user = await adapter.create_user(tx, email=email, name="Ada", password=PASSWORD)
        await adapter.create_user_profile(tx, user_id=user.id, role=instance_role)
        for org, role in (memberships or {}).items():
            await MEMBERS.add_member(tx, organization_id=org.id, user_id=user.id, role=role)
    return user.id


async def sign_in(adapter: PostgresAdapter, email: str = "ada@example.com") -> str:
    async with adapter.instance_transaction() as tx:
        _, token = await adapter.sign_in(tx, email=email, password=PASSWORD)
    return token


# API keys


async def test_create_api_key_stores_only_the_hash(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter, "acme")
    key, secret = await make_key(cms_adapter, org, name=" Frontend ", created_by="u1")
    async with cms_adapter.instance_transaction() as tx:
        row = await tx.fetchrow("SELECT * FROM api_keys WHERE id = $1", key.id)
    assert row is not None
    assert KEY_FORMAT.fullmatch(secret)
    assert row["key_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert row["prefix"] == key.prefix == secret[:12]
    stored = " ".join(str(value) for value in row.values())
    # The random part follows the visible prefix and its `_`; it may itself hold `_` (URL-safe base64).
    random_part = secret[len(key.prefix) + 1 :]
    assert len(random_part) == 43
    assert random_part not in stored
    assert (key.name, key.role, key.capabilities, key.created_by) == (
        "Frontend",
        "editor",
        None,
        "u1",
    )
    assert (key.revoked_at, key.last_used_at, key.expires_at) == (None, None, None)


async def test_each_key_is_new(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter, "acme")
    (first, one), (second, two) = await make_key(cms_adapter, org), await make_key(cms_adapter, org)
    assert first.id != second.id
    assert one != two
    assert one[:12] != two[:12]


async def test_find_api_key_by_secret(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter, "acme")
    key, secret = await make_key(cms_adapter, org)
    async with cms_adapter.instance_transaction() as tx:
        found = await cms_adapter.find_api_key_by_secret(tx, secret=secret)
        wrong = await cms_adapter.find_api_key_by_secret(tx, secret=secret[:-1] + "x")
        other = await cms_adapter.find_api_key_by_secret(tx, secret="not-a-key")
    assert found is not None
    assert (found.id, found.organization_id, found.granted) == (
        key.id,
        org.id,
        BUILT_IN_ROLES["editor"],
    )
    assert wrong is None
    assert other is None


async def test_list_api_keys(cms_adapter: PostgresAdapter) -> None:
    acme, other = await make_org(cms_adapter, "acme"), await make_org(cms_adapter, "other")
    first, _ = await make_key(cms_adapter, acme, name="first")
    second, _ = await make_key(cms_adapter, acme, name="second", capabilities=["asset.upload"])
    await make_key(cms_adapter, other)
    async with cms_adapter.instance_transaction() as tx:
        await cms_adapter.revoke_api_key(tx, organization_id=acme.id, key_id=first.id)
        keys = await cms_adapter.list_api_keys(tx, organization_id=acme.id)
    assert {k.id for k in keys} == {first.id, second.id}
    by_id = {k.id: k for k in keys}
    assert by_id[first.id].revoked_at is not None
    assert by_id[first.id].granted == BUILT_IN_ROLES["editor"]
    assert by_id[second.id].granted == {"asset.upload", "asset.read"}


async def test_a_revoked_key_is_refused(cms_adapter: PostgresAdapter) -> None:
    acme, other = await make_org(cms_adapter, "acme"), await make_org(cms_adapter, "other")
    key, secret = await make_key(cms_adapter, acme)
    await auth(cms_adapter, secret)
    async with cms_adapter.instance_transaction() as tx:
        elsewhere = await cms_adapter.revoke_api_key(tx, organization_id=other.id, key_id=key.id)
        revoked = await cms_adapter.revoke_api_key(tx, organization_id=acme.id, key_id=key.id)
        again = await cms_adapter.revoke_api_key(tx, organization_id=acme.id, key_id=key.id)
        found = await cms_adapter.find_api_key_by_secret(tx, secret=secret)
    assert (elsewhere, revoked, again, found) == (False, True, False, None)
    with pytest.raises(UnauthenticatedError, match="revoked"):
        await auth(cms_adapter, secret)


async def test_an_expired_key_is_refused(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter, "acme")
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    key, secret = await make_key(cms_adapter, org, expires_at=tomorrow)
    assert key.expires_at == tomorrow
    assert (await auth(cms_adapter, secret)).key_id == key.id
    async with cms_adapter.instance_transaction() as tx:
        await tx.execute(
            "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1", key.id
        )
    with pytest.raises(UnauthenticatedError, match="expired"):
        await auth(cms_adapter, secret)


async def test_expiry_must_be_in_the_future_and_zoned(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter, "acme")
    with pytest.raises(InvalidInputError, match="in the past"):
        await make_key(cms_adapter, org, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(InvalidInputError, match="time zone"):
        await make_key(cms_adapter, org, expires_at=datetime(2100, 1, 1))


async def test_a_role_key_has_the_role_capabilities_and_follows_changes(
    cms_adapter: PostgresAdapter,
) -> None:
    org = await make_org(cms_adapter, "acme")
    async with cms_adapter.system_context() as tx:
        await ROLES.create_role(
            tx, organization_id=org.id, name="author", capabilities=["document.create"]
        )
    _, viewer = await make_key(cms_adapter, org, role="viewer")
    _, author = await make_key(cms_adapter, org, role="author")
    assert (await auth(cms_adapter, viewer)).capabilities == BUILT_IN_ROLES["viewer"]
    assert (await auth(cms_adapter, author)).capabilities == {"document.create", "document.read"}
    async with cms_adapter.system_context() as tx:
        await ROLES.update_role(
            tx, organization_id=org.id, name="author", capabilities=["asset.upload"]
        )
    assert (await auth(cms_adapter, author)).capabilities == {"asset.upload", "asset.read"}
    async with cms_adapter.system_context() as tx:
        await ROLES.delete_role(tx, organization_id=org.id, name="author")
    # A key whose role is gone keeps authenticating but may do nothing.
    assert (await auth(cms_adapter, author)).capabilities == frozenset()


async def test_a_capability_key_has_its_normalised_list(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter, "acme")
    key, secret = await make_key(cms_adapter, org, capabilities=["document.update", "asset.delete"])
    expected = {"document.update", "document.read", "asset.delete", "asset.read"}
    assert key.capabilities == key.granted == expected
    assert key.role is None
    async with cms_adapter.instance_transaction() as tx:
        stored = await tx.fetchval("SELECT capabilities FROM api_keys WHERE id = $1", key.id)
    assert stored == ["document.read", "document.update", "asset.read", "asset.delete"]
    assert (await auth(cms_adapter, secret)).capabilities == expected


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"role": "editor", "capabilities": ["document.read"]}, InvalidInputError, "either"),
        ({"role": None}, InvalidInputError, "either"),
        ({"role": "superuser"}, InvalidInputError, "no role 'superuser'"),
        ({"capabilities": ["document.fly"]}, InvalidInputError, "unknown capability"),
        ({"capabilities": []}, InvalidInputError, "at least one"),
        ({"capabilities": ["schema.manage"]}, InvalidInputError, "instance-admin"),
        ({"name": "  "}, InvalidInputError, "name"),
    ],
)
async def test_bad_key_options_are_refused(
    cms_adapter: PostgresAdapter, options: dict[str, Any], error: type[Exception], message: str
) -> None:
    org = await make_org(cms_adapter, "acme")
    with pytest.raises(error, match=message):
        await make_key(cms_adapter, org, **options)
    async with cms_adapter.instance_transaction() as tx:
        assert await tx.fetchval("SELECT count(*) FROM api_keys") == 0


@pytest.mark.parametrize("options", [{"role": "viewer"}, {"capabilities": ["document.read"]}])
async def test_a_key_for_a_missing_organization_is_not_found(
    cms_adapter: PostgresAdapter, options: dict[str, Any]
) -> None:
    async with cms_adapter.instance_transaction() as tx:
        with pytest.raises(NotFoundError, match="no such organization"):
            await cms_adapter.create_api_key(tx, organization_id=uuid.uuid4(), name="k", **options)


async def test_only_an_instance_admin_key_gets_schema_manage(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter, "acme")
    _, owner = await make_key(cms_adapter, org, role="owner")
    admin_key, admin = await make_key(cms_adapter, org, role="owner", instance_admin=True)
    _, listed = await make_key(
        cms_adapter, org, capabilities=["document.read", "schema.manage"], instance_admin=True
    )
    as_owner, as_admin = await auth(cms_adapter, owner), await auth(cms_adapter, admin)
    assert as_owner.capabilities == ORGANIZATION_CAPABILITIES
    assert not as_owner.can("schema.manage")
    assert not as_owner.instance_admin
    with pytest.raises(ForbiddenError, match=r"schema\.manage"):
        as_owner.require("schema.manage")
    assert as_admin.capabilities == ALL_CAPABILITIES
    assert as_admin.instance_admin
    assert as_admin.user_id == f"apikey:{admin_key.id}"
    as_admin.require("schema.manage")
    assert (await auth(cms_adapter, listed)).capabilities == {"document.read", "schema.manage"}


async def test_published_only_is_copied(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter, "acme")
    _, public = await make_key(cms_adapter, org, role="viewer", published_only=True)
    _, private = await make_key(cms_adapter, org, role="viewer")
    assert (await auth(cms_adapter, public)).published_only
    assert not (await auth(cms_adapter, private)).published_only


async def test_a_key_is_bound_to_its_organization(cms_adapter: PostgresAdapter) -> None:
    acme, other = await make_org(cms_adapter, "acme"), await make_org(cms_adapter, "other")
    key, secret = await make_key(cms_adapter, acme)
    principal = await auth(cms_adapter, secret, acme.id)
    assert principal == Principal(
        organization_id=acme.id,
        user_id=f"apikey:{key.id}",
        capabilities=BUILT_IN_ROLES["editor"],
        key_id=key.id,
    )
    with pytest.raises(ForbiddenError, match="another organization"):
        await auth(cms_adapter, secret, other.id)
    with pytest.raises(InvalidInputError, match="UUID"):
        await auth(cms_adapter, secret, "acme")


async def test_last_used_at_is_written_at_most_once_a_minute(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter, "acme")
    key, secret = await make_key(cms_adapter, org)

    async def last_used() -> datetime | None:
        async with cms_adapter.instance_transaction() as tx:
            value: datetime | None = await tx.fetchval(
                "SELECT last_used_at FROM api_keys WHERE id = $1", key.id
            )
            return value

    await auth(cms_adapter, secret, statements=1)
    first = await last_used()
    assert first is not None
    await auth(cms_adapter, secret, statements=1)
    assert await last_used() == first
    async with cms_adapter.instance_transaction() as tx:
        await tx.execute(
            "UPDATE api_keys SET last_used_at = now() - interval '2 minutes' WHERE id = $1", key.id
        )
        found = await cms_adapter.find_api_key_by_secret(tx, secret=secret)
        assert tx.statements == 2
    assert found is not None
    assert found.last_used_at is not None
    assert found.last_used_at > first


# The Authorization header


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwdw==", "Bearer a b", "cms_x"]
)
async def test_a_missing_or_malformed_header_is_unauthenticated(
    cms_adapter: PostgresAdapter, header: str | None
) -> None:
    async with cms_adapter.instance_transaction() as tx:
        with pytest.raises(UnauthenticatedError, match="Authorization: Bearer"):
            await authenticate(tx, authorization=header, organization_header=None)
        assert tx.statements == 0


@pytest.mark.parametrize(
    ("token", "statements"),
    [("something-else", 0), (f"cms_0123abcd_{'x' * 43}", 1), (f"cms_session_{'x' * 43}", 1)],
)
async def test_an_unknown_token_is_unauthenticated(
    cms_adapter: PostgresAdapter, token: str, statements: int
) -> None:
    with pytest.raises(UnauthenticatedError):
        await auth(cms_adapter, token, statements=statements)


async def test_the_scheme_is_case_insensitive(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter, "acme")
    key, secret = await make_key(cms_adapter, org)
    async with cms_adapter.instance_transaction() as tx:
        principal = await authenticate(
            tx, authorization=f"bearer  {secret} ", organization_header=" "
        )
    assert principal.key_id == key.id


# Users and sign-in


async def test_create_user(cms_adapter: PostgresAdapter) -> None:
    async with cms_adapter.instance_transaction() as tx:
        user = await cms_adapter.create_user(
            tx, email="  Ada@Example.COM ", name=" Ada ", password=PASSWORD
        )
        account = await tx.fetchrow("SELECT * FROM accounts WHERE user_id = $1", user.id)
        by_email = await cms_adapter.find_user_by_email(tx, email="ADA@example.com")
        by_id = await cms_adapter.find_user_by_id(tx, user_id=user.id)
        missing = await cms_adapter.find_user_by_email(tx, email="bob@example.com")
    assert (user.email, user.name, user.email_verified) == ("ada@example.com", "Ada", False)
    assert by_email == by_id == user
    assert missing is None
    assert account is not None
    assert (account["provider_id"], account["account_id"]) == ("credential", user.id)
    assert account["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in account["password_hash"]


async def test_a_user_without_a_password_has_no_credential(cms_adapter: PostgresAdapter) -> None:
    async with cms_adapter.instance_transaction() as tx:
        user = await cms_adapter.create_user(tx, email="ada@example.com", name="Ada")
        count = await tx.fetchval("SELECT count(*) FROM accounts WHERE user_id = $1", user.id)
    assert count == 0
    with pytest.raises(UnauthenticatedError, match="invalid email or password"):
        await sign_in(cms_adapter)


async def test_an_email_is_unique_in_any_case(cms_adapter: PostgresAdapter) -> None:
    await make_user(cms_adapter)
    with pytest.raises(ConflictError, match="a user with this email already exists"):
        await make_user(cms_adapter, "ADA@example.com")


@pytest.mark.parametrize(
    ("email", "name", "password", "message"),
    [
        ("ada@example.com", "Ada", "short", "at least 8"),
        ("ada@example.com", "Ada", "", "at least 8"),
        ("ada@example.com", "Ada", "x" * 1025, "at most 1024"),
        ("not-an-email", "Ada", PASSWORD, "email"),
        ("a b@example.com", "Ada", PASSWORD, "email"),
        ("ada@example.com", " ", PASSWORD, "name"),
    ],
)
async def test_bad_user_input_is_refused(
    cms_adapter: PostgresAdapter, email: str, name: str, password: str, message: str
) -> None:
    async with cms_adapter.instance_transaction() as tx:
        with pytest.raises(InvalidInputError, match=message):
            await cms_adapter.create_user(tx, email=email, name=name, password=password)
        assert await tx.fetchval("SELECT count(*) FROM users") == 0


async def test_sign_in_with_the_right_password(cms_adapter: PostgresAdapter) -> None:
    user_id = await make_user(cms_adapter)
    async with cms_adapter.instance_transaction() as tx:
        session, token = await cms_adapter.sign_in(
            tx, email="ADA@example.com", password=PASSWORD, ip_address="203.0.113.9", user_agent="t"
        )
        stored = await tx.fetchval("SELECT token_hash FROM sessions WHERE id = $1", session.id)
        found = await cms_adapter.find_session_by_token(tx, token=token)
    assert SESSION_FORMAT.fullmatch(token)
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    assert (session.user_id, session.ip_address, session.user_agent) == (
        user_id,
        "203.0.113.9",
        "t",
    )
    assert abs(session.expires_at - datetime.now(UTC) - SESSION_LIFETIME) < timedelta(minutes=1)
    assert found == session


async def test_a_wrong_password_and_an_unknown_email_fail_alike(
    cms_adapter: PostgresAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_user(cms_adapter)
    checked: list[str] = []

    def verify(password_hash: str, password: str) -> bool:
        checked.append(password_hash)
        return passwords.verify_password(password_hash, password)

    monkeypatch.setattr(sessions, "verify_password", verify)
    errors = []
    for email, password in [("ada@example.com", "wrong password"), ("bob@example.com", PASSWORD)]:
        async with cms_adapter.instance_transaction() as tx:
            with pytest.raises(UnauthenticatedError) as caught:
                await cms_adapter.sign_in(tx, email=email, password=password)
            assert await tx.fetchval("SELECT count(*) FROM sessions") == 0
        errors.append(caught.value.message)
    assert errors == ["invalid email or password"] * 2
    # The unknown email costs an Argon2 verification too, against the dummy hash.
    assert len(checked) == 2
    assert checked[1] == passwords.dummy_hash()


async def test_sign_in_upgrades_an_outdated_hash(cms_adapter: PostgresAdapter) -> None:
    user_id = await make_user(cms_adapter)
    old = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    async with cms_adapter.instance_transaction() as tx:
        await tx.execute("UPDATE accounts SET password_hash = $2 WHERE user_id = $1", user_id, old)
    await sign_in(cms_adapter)
    async with cms_adapter.instance_transaction() as tx:
        new = await tx.fetchval("SELECT password_hash FROM accounts WHERE user_id = $1", user_id)
    assert new != old
    assert not passwords.needs_rehash(new)
    assert passwords.verify_password(new, PASSWORD)


async def test_an_expired_session_is_refused(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter, "acme")
    await make_user(cms_adapter, memberships={org: "editor"})
    token = await sign_in(cms_adapter)
    assert (await auth(cms_adapter, token)).organization_id == org.id
    async with cms_adapter.instance_transaction() as tx:
        await tx.execute("UPDATE sessions SET expires_at = now() - interval '1 second'")
        assert await cms_adapter.find_session_by_token(tx, token=token) is None
    with pytest.raises(UnauthenticatedError, match="sign in again"):
        await auth(cms_adapter, token, statements=1)


async def test_sign_in_sweeps_the_users_expired_sessions(cms_adapter: PostgresAdapter) -> None:
    await make_user(cms_adapter)
    await sign_in(cms_adapter)
    async with cms_adapter.instance_transaction() as tx:
        await tx.execute("UPDATE sessions SET expires_at = now() - interval '1 second'")
    await sign_in(cms_adapter)
    async with cms_adapter.instance_transaction() as tx:
        assert await tx.fetchval("SELECT count(*) FROM sessions") == 1


async def test_sign_out(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter, "acme")
    await make_user(cms_adapter, memberships={org: "editor"})
    token, other = await sign_in(cms_adapter), await sign_in(cms_adapter)
    async with cms_adapter.instance_transaction() as tx:
        assert await cms_adapter.sign_out(tx, token=token)
        assert not await cms_adapter.sign_out(tx, token=token)
        assert await cms_adapter.find_session_by_token(tx, token=token) is None
    with pytest.raises(UnauthenticatedError):
        await auth(cms_adapter, token)
    assert (await auth(cms_adapter, other)).organization_id == org.id


# A session's organization


async def test_a_session_uses_the_organization_header(cms_adapter: PostgresAdapter) -> None:
    acme, other, foreign = [await make_org(cms_adapter, s) for s in ("acme", "other", "foreign")]
    user_id = await make_user(cms_adapter, memberships={acme: "viewer", other: "editor"})
    token = await sign_in(cms_adapter)
    principal = await auth(cms_adapter, token, other.id, statements=1)
    assert principal.organization_id == other.id
    assert principal.user_id == user_id
    assert principal.capabilities == BUILT_IN_ROLES["editor"]
    assert principal.session_id is not None
    assert (principal.key_id, principal.published_only, principal.instance_admin) == (
        None,
        False,
        False,
    )
    with pytest.raises(ForbiddenError, match="not a member"):
        await auth(cms_adapter, token, foreign.id, statements=1)
    with pytest.raises(ForbiddenError, match="not a member"):
        await auth(cms_adapter, token, uuid.uuid4())
    with pytest.raises(InvalidInputError, match="UUID"):
        await auth(cms_adapter, token, "acme", statements=0)


async def test_a_session_falls_back_to_the_active_organization(
    cms_adapter: PostgresAdapter,
) -> None:
    acme, other = await make_org(cms_adapter, "acme"), await make_org(cms_adapter, "other")
    user_id = await make_user(cms_adapter, memberships={acme: "viewer", other: "editor"})
    token = await sign_in(cms_adapter)
    with pytest.raises(ForbiddenError, match="choose an organization: X-Organization-Id"):
        await auth(cms_adapter, token, statements=1)
    async with cms_adapter.instance_transaction() as tx:
        await cms_adapter.set_active_organization(tx, user_id=user_id, organization_id=other.id)
    principal = await auth(cms_adapter, token, statements=1)
    assert (principal.organization_id, principal.capabilities) == (
        other.id,
        BUILT_IN_ROLES["editor"],
    )
    assert (await auth(cms_adapter, token, acme.id)).organization_id == acme.id


async def test_a_session_falls_back_to_the_only_membership(cms_adapter: PostgresAdapter) -> None:
    acme, other = await make_org(cms_adapter, "acme"), await make_org(cms_adapter, "other")
    user_id = await make_user(cms_adapter, memberships={acme: "viewer", other: "editor"})
    token = await sign_in(cms_adapter)
    async with cms_adapter.instance_transaction() as tx:
        await cms_adapter.set_active_organization(tx, user_id=user_id, organization_id=other.id)
        await MEMBERS.remove_member(tx, organization_id=other.id, user_id=user_id)
    # The active organization no longer counts once the user has left it.
    principal = await auth(cms_adapter, token, statements=1)
    assert (principal.organization_id, principal.capabilities) == (
        acme.id,
        BUILT_IN_ROLES["viewer"],
    )


async def test_a_session_without_memberships_must_choose(cms_adapter: PostgresAdapter) -> None:
    await make_user(cms_adapter)
    token = await sign_in(cms_adapter)
    with pytest.raises(ForbiddenError, match="choose an organization"):
        await auth(cms_adapter, token)


async def test_an_owner_session_does_not_get_schema_manage(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter, "acme")
    await make_user(cms_adapter, memberships={org: "owner"})
    principal = await auth(cms_adapter, await sign_in(cms_adapter))
    assert principal.capabilities == ORGANIZATION_CAPABILITIES
    assert not principal.instance_admin


@pytest.mark.parametrize("role", ["admin", "super_admin"])
async def test_an_instance_admin_gets_everything_everywhere(
    cms_adapter: PostgresAdapter, role: str
) -> None:
    acme, other = await make_org(cms_adapter, "acme"), await make_org(cms_adapter, "other")
    await make_user(cms_adapter, memberships={acme: "viewer"}, instance_role=role)
    token = await sign_in(cms_adapter)
    own = await auth(cms_adapter, token, statements=1)
    elsewhere = await auth(cms_adapter, token, other.id, statements=1)
    assert (own.organization_id, elsewhere.organization_id) == (acme.id, other.id)
    for principal in (own, elsewhere):
        assert principal.capabilities == ALL_CAPABILITIES
        assert principal.instance_admin
    with pytest.raises(NotFoundError, match="no such organization"):
        await auth(cms_adapter, token, uuid.uuid4())


async def test_an_instance_admin_without_memberships_must_choose(
    cms_adapter: PostgresAdapter,
) -> None:
    org = await make_org(cms_adapter, "acme")
    user_id = await make_user(cms_adapter, instance_role="admin")
    token = await sign_in(cms_adapter)
    with pytest.raises(ForbiddenError, match="choose an organization"):
        await auth(cms_adapter, token)
    async with cms_adapter.instance_transaction() as tx:
        await cms_adapter.set_active_organization(tx, user_id=user_id, organization_id=org.id)
    assert (await auth(cms_adapter, token)).organization_id == org.id
