"""The access service through the local API (`local_api.access`): the rules it keeps without any
GraphQL around it. Over HTTP the same rules are tested in tests/test_graphql_access.py."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest

from server.access.capabilities import BUILT_IN_ROLES
from server.access.mail import Mailer
from server.engine.access import MAX_KEY_LIFETIME_DAYS, key_expiry, session_token
from server.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    UnauthenticatedError,
)
from server.smtp import parse_smtp_url
from tests.conftest import CMS

PASSWORD = "correct horse battery"
OWNER = BUILT_IN_ROLES["owner"]
EDITOR = BUILT_IN_ROLES["editor"]

pytestmark = pytest.mark.usefixtures("cheap_hashing")


class AbandonedError(Exception):
    """Raised inside a transaction to roll it back."""


class RecordingMailer(Mailer):
    """Keeps what it is asked to send instead of sending it."""

    def __init__(self) -> None:
        super().__init__(parse_smtp_url("smtp://127.0.0.1:1"), sender="CMS <cms@example.test>")
        self.sent: list[EmailMessage] = []

    def send_in_background(self, message: EmailMessage) -> Any:
        self.sent.append(message)


async def org_with_builtin_roles(cms: CMS, slug: str) -> uuid.UUID:
    async with cms.adapter.system_context() as tx:
        created = await cms.adapter.create_organization(tx, name=slug, slug=slug, created_by="test")
    return created.id


async def user(cms: CMS, email: str, *, org: uuid.UUID | None = None, role: str = "owner") -> str:
    adapter = cms.adapter
    async with adapter.instance_transaction() as tx:
        created = await adapter.create_user(
            tx, email=email, name=email.split("@")[0], password=PASSWORD
        )
        if org is not None:
            await adapter.add_member(tx, organization_id=org, user_id=created.id, role=role)
    return str(created.id)


async def members(cms: CMS, org: uuid.UUID) -> dict[str, str]:
    async with cms.api.context(org, capabilities=OWNER) as ctx:
        return {
            found.member.user_id: found.member.role for found in await cms.api.access.members(ctx)
        }


async def test_nobody_grants_what_they_do_not_hold(cms: CMS) -> None:
    org = await org_with_builtin_roles(cms, "acme")
    caps = frozenset({"apiKey.manage", "member.invite", "document.read", "asset.read"})
    async with cms.api.context(org, user_id="u1", capabilities=caps) as ctx:
        with pytest.raises(
            ForbiddenError,
            match=re.escape(
                "cannot grant capabilities you do not hold: document.create, document.update"
            ),
        ):
            await cms.api.access.create_api_key(
                ctx, name="k", capabilities=["document.update", "document.create"]
            )
        with pytest.raises(ForbiddenError, match="cannot grant"):
            await cms.api.access.create_api_key(ctx, name="k", role="editor")
        with pytest.raises(ForbiddenError, match="cannot grant"):
            await cms.api.access.invite(ctx, email="bob@example.com", role="editor")
        key, secret = await cms.api.access.create_api_key(ctx, name="k", role="viewer")
    assert key.granted == BUILT_IN_ROLES["viewer"]
    assert secret.startswith("cms_")


async def test_api_key_checks(cms: CMS) -> None:
    org = await org_with_builtin_roles(cms, "acme")
    async with cms.api.context(org, user_id="u1", capabilities=OWNER) as ctx:
        with pytest.raises(InvalidInputError, match="either a role or a list"):
            await cms.api.access.create_api_key(ctx, name="k")
        with pytest.raises(InvalidInputError, match="no role 'nobody'") as refused:
            await cms.api.access.create_api_key(ctx, name="k", role="nobody")
        assert refused.value.path == "role"
        with pytest.raises(InvalidInputError, match=f"1..{MAX_KEY_LIFETIME_DAYS}"):
            await cms.api.access.create_api_key(ctx, name="k", role="viewer", expires_in_days=0)
        key, _ = await cms.api.access.create_api_key(
            ctx, name="k", role="viewer", expires_in_days=30
        )
        assert [found.id for found in await cms.api.access.api_keys(ctx)] == [key.id]
        await cms.api.access.revoke_api_key(ctx, key.id)
        with pytest.raises(NotFoundError, match="no such active API key"):
            await cms.api.access.revoke_api_key(ctx, str(key.id))
    async with cms.api.context(org, capabilities=EDITOR) as ctx:
        with pytest.raises(ForbiddenError, match=re.escape("'apiKey.manage'")):
            await cms.api.access.api_keys(ctx)
    async with cms.api.context(org, user_id="u1", capabilities=OWNER, published_only=True) as ctx:
        with pytest.raises(ForbiddenError, match="only such keys"):
            await cms.api.access.create_api_key(ctx, name="k", role="viewer")
        with pytest.raises(ForbiddenError, match="cannot list members"):
            await cms.api.access.members(ctx)


def test_key_expiry() -> None:
    assert key_expiry(None) is None
    soon = key_expiry(1)
    assert soon is not None
    assert abs(soon - (datetime.now(UTC) + timedelta(days=1))) < timedelta(minutes=1)
    for days in (0, MAX_KEY_LIFETIME_DAYS + 1):
        with pytest.raises(InvalidInputError) as refused:
            key_expiry(days)
        assert refused.value.path == "expiresInDays"


def test_session_tokens_come_from_a_bearer_header() -> None:
    assert session_token("Bearer cms_session_abc") == "cms_session_abc"
    with pytest.raises(UnauthenticatedError, match="sign in first"):
        session_token(None)
    with pytest.raises(ForbiddenError, match="not an API key"):
        session_token("Bearer cms_0123abcd_secret")


async def test_the_last_owner_stays(cms: CMS) -> None:
    org = await org_with_builtin_roles(cms, "acme")
    ann = await user(cms, "ann@example.com", org=org)
    async with cms.api.context(org, user_id=ann, capabilities=OWNER) as ctx:
        with pytest.raises(ConflictError, match="last owner"):
            await cms.api.access.remove_member(ctx, ann)
        with pytest.raises(ConflictError, match="last owner"):
            await cms.api.access.change_member_role(ctx, ann, "admin")
        with pytest.raises(NotFoundError, match="not a member"):
            await cms.api.access.remove_member(ctx, "nobody")
    bob = await user(cms, "bob@example.com", org=org, role="owner")
    async with cms.api.context(org, user_id=bob, capabilities=OWNER) as ctx:
        changed = await cms.api.access.change_member_role(ctx, ann, "editor")
    assert (changed.member.role, changed.user.email if changed.user else None) == (
        "editor",
        "ann@example.com",
    )
    assert await members(cms, org) == {ann: "editor", bob: "owner"}


async def test_a_member_who_holds_more_stays_out_of_reach(cms: CMS) -> None:
    org = await org_with_builtin_roles(cms, "acme")
    await user(cms, "owner@example.com", org=org)
    ann = await user(cms, "ann@example.com", org=org, role="admin")
    caps = frozenset({"member.remove", "member.changeRole"})
    async with cms.api.context(org, user_id="u1", capabilities=caps) as ctx:
        with pytest.raises(ForbiddenError, match="holds capabilities you do not hold"):
            await cms.api.access.remove_member(ctx, ann)
    async with cms.api.context(org, capabilities=EDITOR) as ctx:
        with pytest.raises(ForbiddenError, match=re.escape("'member.remove'")):
            await cms.api.access.remove_member(ctx, ann)


async def test_an_invitation_is_mailed_only_once_committed(cms: CMS) -> None:
    org = await org_with_builtin_roles(cms, "acme")
    ann = await user(cms, "ann@example.com", org=org)
    mailer = RecordingMailer()
    session_id = str(uuid.uuid4())

    async def invite_then_roll_back() -> None:
        async with cms.api.context(
            org, user_id=ann, capabilities=OWNER, session_id=session_id
        ) as ctx:
            await cms.api.access.invite(ctx, email="bob@example.com", role="editor", mailer=mailer)
            raise AbandonedError

    with pytest.raises(AbandonedError):
        await invite_then_roll_back()
    assert mailer.sent == []
    async with cms.api.context(org, user_id=ann, capabilities=OWNER, session_id=session_id) as ctx:
        invitation, token = await cms.api.access.invite(
            ctx, email=" Bob@Example.com ", role="editor", mailer=mailer
        )
        assert token is None
        assert mailer.sent == []
    assert invitation.email == "bob@example.com"
    [message] = mailer.sent
    assert message["To"] == "bob@example.com"
    assert "ann" in message.get_content()
    # Without a mailer the caller gets the token to pass on; a member is not invited again.
    async with cms.api.context(org, user_id=ann, capabilities=OWNER) as ctx:
        _, token = await cms.api.access.invite(ctx, email="carl@example.com", role="viewer")
        assert token
        with pytest.raises(ConflictError, match=re.escape("ann@example.com is already a member")):
            await cms.api.access.invite(ctx, email="ANN@example.com", role="viewer")


async def test_accepting_an_invitation_in_the_callers_transaction(cms: CMS) -> None:
    org = await org_with_builtin_roles(cms, "acme")
    async with cms.api.context(org, user_id="u1", capabilities=OWNER) as ctx:
        _, token = await cms.api.access.invite(ctx, email="bob@example.com", role="editor")
    assert token is not None
    bob = await user(cms, "bob@example.com")
    await user(cms, "eve@example.com")
    _, bob_session = await cms.api.access.sign_in(email="bob@example.com", password=PASSWORD)
    _, eve_session = await cms.api.access.sign_in(email="eve@example.com", password=PASSWORD)
    with pytest.raises(ForbiddenError, match="another address"):
        await cms.api.access.accept_invitation(token, authorization=f"Bearer {eve_session}")
    with pytest.raises(NotFoundError, match="no such invitation"):
        await cms.api.access.accept_invitation("nope", authorization=f"Bearer {bob_session}")

    async def accept_then_roll_back() -> None:
        async with cms.adapter.instance_transaction() as tx:
            await cms.api.access.accept_invitation(
                token, authorization=f"Bearer {bob_session}", tx=tx
            )
            raise AbandonedError

    with pytest.raises(AbandonedError):
        await accept_then_roll_back()
    assert bob not in await members(cms, org)
    joined = await cms.api.access.accept_invitation(token, authorization=f"Bearer {bob_session}")
    assert (joined.member.user_id, joined.member.role) == (bob, "editor")
    assert (await members(cms, org))[bob] == "editor"


async def test_sign_in_and_out(cms: CMS) -> None:
    ann = await user(cms, "ann@example.com")
    with pytest.raises(UnauthenticatedError, match="invalid email or password"):
        await cms.api.access.sign_in(email="ann@example.com", password="wrong password")
    session, token = await cms.api.access.sign_in(email="ANN@example.com", password=PASSWORD)
    assert session.user_id == ann
    await cms.api.access.sign_out(authorization=f"Bearer {token}")
    with pytest.raises(UnauthenticatedError, match="invalid or expired session"):
        await cms.api.access.sign_out(authorization=f"Bearer {token}")


async def test_organizations_a_signed_in_user_creates_are_theirs(cms: CMS) -> None:
    root = await org_with_builtin_roles(cms, "acme")
    ann = await user(cms, "ann@example.com", org=root)
    session_id = str(uuid.uuid4())
    async with cms.api.context(root, user_id=ann, capabilities=OWNER, session_id=session_id) as ctx:
        blog = await cms.api.access.create_organization(ctx, name="Blog", slug="blog")
    async with cms.api.context(root, user_id="apikey:1", capabilities=OWNER) as ctx:
        shop = await cms.api.access.create_organization(ctx, name="Shop", slug="shop")
    async with cms.api.context(root, capabilities=EDITOR) as ctx:
        with pytest.raises(ForbiddenError, match=re.escape("'org.settings'")):
            await cms.api.access.create_organization(ctx, name="No", slug="no")
    assert blog.parent_organization_id == shop.parent_organization_id == root
    assert await members(cms, blog.id) == {ann: "owner"}
    assert await members(cms, shop.id) == {}


async def test_the_tree_as_a_child_sees_it(cms: CMS) -> None:
    root = await cms.org("root")
    blog = await cms.org("blog", root)
    await cms.org("shop", root)
    drafts = await cms.org("drafts", blog)
    async with cms.api.context(blog) as ctx:
        found = await cms.api.access.organizations(ctx, [blog, uuid.uuid4(), root])
        assert [o.slug if o else None for o in found] == ["blog", None, "root"]
        children = await cms.api.access.children(ctx, [root, blog, drafts])
    # Of an ancestor only the child on the way down; below its own organization, everything.
    assert [[o.slug for o in level] for level in children] == [["blog"], ["drafts"], []]
