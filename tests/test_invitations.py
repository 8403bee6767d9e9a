from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import timedelta

import pytest

from server.access.invitations import InvitationStore
from server.access.members import Member, MemberStore
from server.access.organizations import Organization
from server.access.roles import RoleStore
from server.engine.postgres import PostgresAdapter
from server.errors import CMSError, InvalidInputError, NotFoundError

INVITATIONS = InvitationStore()
MEMBERS = MemberStore()
ROLES = RoleStore()


async def make_org(adapter: PostgresAdapter, slug: str = "acme") -> Organization:
    async with adapter.system_context() as tx:
        return await adapter.create_organization(tx, name=slug, slug=slug, created_by="user-1")


async def invite(
    adapter: PostgresAdapter,
    org: Organization,
    *,
    email: str = "ann@example.com",
    role: str = "editor",
) -> str:
    async with adapter.system_context() as tx:
        _, token = await INVITATIONS.create_invitation(
            tx, organization_id=org.id, email=email, role=role, invited_by="user-1"
        )
    return token


async def expire(adapter: PostgresAdapter, token: str) -> None:
    async with adapter.system_context() as tx:
        await tx.execute(
            "UPDATE cms_invitations SET expires_at = now() - interval '1 minute'"
            " WHERE token_hash = $1",
            hashlib.sha256(token.encode()).hexdigest(),
        )


async def accept(adapter: PostgresAdapter, token: str, user_id: str = "u1") -> Member:
    async with adapter.system_context() as tx:
        return await INVITATIONS.accept_invitation(tx, token=token, user_id=user_id)


async def test_create_invitation_stores_only_the_token_hash(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter)
    async with cms_adapter.system_context() as tx:
        invitation, token = await INVITATIONS.create_invitation(
            tx,
            organization_id=org.id,
            email="  Ann@Example.COM ",
            role="viewer",
            invited_by="user-1",
        )
        row = await tx.fetchrow("SELECT * FROM cms_invitations WHERE id = $1", invitation.id)
        now = await tx.fetchval("SELECT now()")
    assert row is not None
    assert len(token) >= 43
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in [str(value) for value in row.values()]
    assert (invitation.email, invitation.role, invitation.invited_by) == (
        "ann@example.com",
        "viewer",
        "user-1",
    )
    assert row["email"] == "ann@example.com"
    assert invitation.accepted_at is None
    assert invitation.expires_at - now == timedelta(days=7)


async def test_every_invitation_gets_its_own_token(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter)
    tokens = {await invite(cms_adapter, org) for _ in range(3)}
    assert len(tokens) == 3


async def test_create_invitation_with_a_custom_expiry(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter)
    async with cms_adapter.system_context() as tx:
        invitation, _ = await INVITATIONS.create_invitation(
            tx,
            organization_id=org.id,
            email="ann@example.com",
            role="viewer",
            invited_by="user-1",
            expires_in=timedelta(hours=1),
        )
    assert invitation.expires_at - invitation.created_at == timedelta(hours=1)


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "two@@example.com"}, "email"),
        ({"email": "spa ce@example.com"}, "email"),
        ({"email": "ann@localhost"}, "email"),
        ({"email": "a" * 250 + "@example.com"}, "email"),
        ({"role": "superuser"}, "role"),
        ({"expires_in": timedelta(0)}, "expiresIn"),
        ({"expires_in": timedelta(days=-1)}, "expiresIn"),
    ],
)
async def test_create_invitation_refuses_bad_input(
    cms_adapter: PostgresAdapter, changes: dict[str, object], path: str
) -> None:
    org = await make_org(cms_adapter)
    arguments: dict[str, object] = {"email": "ann@example.com", "role": "editor", **changes}
    async with cms_adapter.system_context() as tx:
        with pytest.raises(InvalidInputError) as caught:
            await INVITATIONS.create_invitation(
                tx,
                organization_id=org.id,
                invited_by="user-1",
                **arguments,  # type: ignore[arg-type]
            )
        count = await tx.fetchval("SELECT count(*) FROM cms_invitations")
    assert caught.value.path == path
    assert count == 0


async def test_create_invitation_to_a_missing_organization(cms_adapter: PostgresAdapter) -> None:
    async with cms_adapter.system_context() as tx:
        with pytest.raises(NotFoundError):
            await INVITATIONS.create_invitation(
                tx,
                organization_id=uuid.uuid4(),
                email="ann@example.com",
                role="editor",
                invited_by="user-1",
            )


async def test_find_invitations(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter)
    other = await make_org(cms_adapter, "other")
    first = await invite(cms_adapter, org, email="ann@example.com")
    second = await invite(cms_adapter, org, email="bob@example.com")
    elsewhere = await invite(cms_adapter, other, email="Ann@example.com")
    await expire(cms_adapter, second)
    async with cms_adapter.system_context() as tx:
        by_token = await INVITATIONS.find_invitation_by_token(tx, token=first)
        unknown = await INVITATIONS.find_invitation_by_token(tx, token="nope")
        of_org = await INVITATIONS.find_organization_invitations(tx, organization_id=org.id)
        pending = await INVITATIONS.find_organization_invitations(
            tx, organization_id=org.id, pending_only=True
        )
        for_ann = await INVITATIONS.find_invitations_by_email(tx, email=" ANN@example.com")
        for_bob = await INVITATIONS.find_invitations_by_email(
            tx, email="bob@example.com", pending_only=True
        )
        ann_elsewhere = await INVITATIONS.find_invitation_by_token(tx, token=elsewhere)
    assert by_token is not None
    assert by_token.email == "ann@example.com"
    assert unknown is None
    assert [i.email for i in of_org] == ["bob@example.com", "ann@example.com"]
    assert pending == [by_token]
    assert ann_elsewhere is not None
    assert {i.id for i in for_ann} == {by_token.id, ann_elsewhere.id}
    assert for_bob == []


async def test_accept_invitation_makes_a_member(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter)
    token = await invite(cms_adapter, org, role="viewer")
    member = await accept(cms_adapter, token)
    async with cms_adapter.system_context() as tx:
        invitation = await INVITATIONS.find_invitation_by_token(tx, token=token)
        capabilities = await MEMBERS.capabilities_for_member(
            tx, organization_id=org.id, user_id="u1"
        )
    assert invitation is not None
    assert (member.organization_id, member.user_id, member.role) == (org.id, "u1", "viewer")
    assert member.invitation_id == invitation.id
    assert invitation.accepted_at is not None
    assert capabilities == {"document.read", "asset.read"}


async def test_accepting_as_an_existing_member_updates_the_role(
    cms_adapter: PostgresAdapter,
) -> None:
    org = await make_org(cms_adapter)
    async with cms_adapter.system_context() as tx:
        before = await MEMBERS.add_member(tx, organization_id=org.id, user_id="u1", role="viewer")
    member = await accept(cms_adapter, await invite(cms_adapter, org, role="admin"))
    assert (member.id, member.role) == (before.id, "admin")
    assert member.invitation_id is not None


@pytest.mark.parametrize(
    ("spoil", "error", "message"),
    [
        ("use", InvalidInputError, "the invitation was already used"),
        ("expire", InvalidInputError, "the invitation has expired"),
        ("forge", NotFoundError, "no such invitation"),
    ],
)
async def test_a_spent_expired_or_unknown_token_is_refused(
    cms_adapter: PostgresAdapter, spoil: str, error: type[CMSError], message: str
) -> None:
    org = await make_org(cms_adapter)
    token = await invite(cms_adapter, org)
    if spoil == "use":
        await accept(cms_adapter, token, user_id="first")
    elif spoil == "expire":
        await expire(cms_adapter, token)
    else:
        token = "a-token-nobody-was-given"
    with pytest.raises(error, match=message):
        await accept(cms_adapter, token, user_id="u1")
    async with cms_adapter.system_context() as tx:
        assert await MEMBERS.find_user_membership(tx, user_id="u1", organization_id=org.id) is None


async def test_accepting_after_the_role_was_deleted_changes_nothing(
    cms_adapter: PostgresAdapter,
) -> None:
    org = await make_org(cms_adapter)
    async with cms_adapter.system_context() as tx:
        await ROLES.create_role(tx, organization_id=org.id, name="author", capabilities=[])
    token = await invite(cms_adapter, org, role="author")
    async with cms_adapter.system_context() as tx:
        await ROLES.delete_role(tx, organization_id=org.id, name="author")
    with pytest.raises(InvalidInputError, match="role 'author' no longer exists"):
        await accept(cms_adapter, token)
    async with cms_adapter.system_context() as tx:
        invitation = await INVITATIONS.find_invitation_by_token(tx, token=token)
    assert invitation is not None
    assert invitation.accepted_at is None


async def test_concurrent_accepts_of_one_token_admit_one_user(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter)
    token = await invite(cms_adapter, org)
    results = await asyncio.gather(
        *(accept(cms_adapter, token, user_id=f"u{i}") for i in range(4)), return_exceptions=True
    )
    members = [r for r in results if isinstance(r, Member)]
    refused = [r for r in results if isinstance(r, InvalidInputError)]
    assert len(members) == 1
    assert len(refused) == 3
    async with cms_adapter.system_context() as tx:
        assert len(await MEMBERS.find_organization_members(tx, organization_id=org.id)) == 1


async def test_delete_invitation(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter)
    other = await make_org(cms_adapter, "other")
    token = await invite(cms_adapter, org)
    async with cms_adapter.system_context() as tx:
        invitation = await INVITATIONS.find_invitation_by_token(tx, token=token)
        assert invitation is not None
        assert not await INVITATIONS.delete_invitation(
            tx, invitation_id=invitation.id, organization_id=other.id
        )
        assert await INVITATIONS.delete_invitation(
            tx, invitation_id=invitation.id, organization_id=org.id
        )
        assert not await INVITATIONS.delete_invitation(tx, invitation_id=invitation.id)
        assert await INVITATIONS.find_invitation_by_token(tx, token=token) is None
    other_token = await invite(cms_adapter, org)
    async with cms_adapter.system_context() as tx:
        found = await INVITATIONS.find_invitation_by_token(tx, token=other_token)
        assert found is not None
        assert await INVITATIONS.delete_invitation(tx, invitation_id=found.id)


async def test_cleanup_expired_invitations(cms_adapter: PostgresAdapter) -> None:
    org = await make_org(cms_adapter)
    expired = [await invite(cms_adapter, org) for _ in range(2)]
    used_then_expired = await invite(cms_adapter, org)
    valid = await invite(cms_adapter, org)
    await accept(cms_adapter, used_then_expired)
    for token in [*expired, used_then_expired]:
        await expire(cms_adapter, token)
    async with cms_adapter.system_context() as tx:
        assert await INVITATIONS.cleanup_expired_invitations(tx) == 2
        assert await INVITATIONS.cleanup_expired_invitations(tx) == 0
        left = await INVITATIONS.find_organization_invitations(tx, organization_id=org.id)
    kept = {hashlib.sha256(t.encode()).hexdigest() for t in (used_then_expired, valid)}
    async with cms_adapter.system_context() as tx:
        hashes = {r["token_hash"] for r in await tx.fetch("SELECT token_hash FROM cms_invitations")}
    assert len(left) == 2
    assert hashes == kept
