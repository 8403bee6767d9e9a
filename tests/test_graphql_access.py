"""Organizations and access over HTTP: me, the organization tree, tenant isolation, invitations by
mail, members, API keys, and sign-in sessions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import AsyncIterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest

from server.access.mail import Mailer
from server.config import ConfigError, Settings
from server.smtp import SmtpServer, parse_smtp_url
from tests.conftest import GraphQLClient

PASSWORD = "correct horse battery"

ME = """{ me { userId kind capabilities publishedOnly instanceAdmin
               organization { slug parent { slug } } } }"""
CREATE_POST = """
mutation($data: PostDataInput!) { createPost(data: $data, publish: true) { id title } }"""
ALL_POSTS = '{ allPost(sort: ["title"]) { title } }'
SIGN_IN = """
mutation($email: String!, $password: String!) {
  signIn(email: $email, password: $password) { token expiresAt userId }
}"""
INVITE = """
mutation($email: String!, $role: String!) {
  inviteMember(email: $email, role: $role) { id email role expiresAt acceptedAt token }
}"""
ACCEPT = "mutation($token: String!) { acceptInvitation(token: $token) { userId role email } }"
CREATE_KEY = """
mutation($name: String!, $role: String, $capabilities: [String!], $publishedOnly: Boolean,
         $expiresInDays: Int) {
  createApiKey(name: $name, role: $role, capabilities: $capabilities,
               publishedOnly: $publishedOnly, expiresInDays: $expiresInDays) {
    secret key { id name prefix role capabilities publishedOnly instanceAdmin expiresAt revokedAt }
  }
}"""
REMOVE = "mutation($userId: String!) { removeMember(userId: $userId) { success id } }"
CHANGE_ROLE = """
mutation($userId: String!, $role: String!) {
  changeMemberRole(userId: $userId, role: $role) { userId role email name }
}"""

pytestmark = pytest.mark.usefixtures("cheap_hashing")


def code(payload: dict[str, Any]) -> str:
    assert payload.get("errors"), payload
    value: str = payload["errors"][0]["extensions"]["code"]
    return value


async def as_user(
    gql: GraphQLClient, query: str, session: str, org: uuid.UUID | None, **variables: Any
) -> dict[str, Any]:
    """A request with a session token, acting in `org` (the X-Organization-Id header)."""
    headers = {"X-Organization-Id": str(org)} if org is not None else None
    response = await gql.post(query, variables or None, key=session, headers=headers)
    payload: dict[str, Any] = response.json()
    return payload


async def sign_up(
    gql: GraphQLClient,
    email: str,
    *,
    name: str = "Ann",
    member_of: uuid.UUID | None = None,
    role: str = "owner",
) -> str:
    """Create a user with PASSWORD (optionally a member of an organization); returns the user id."""
    adapter = gql.services.adapter
    async with adapter.instance_transaction() as tx:
        user = await adapter.create_user(tx, email=email, name=name, password=PASSWORD)
        if member_of is not None:
            await adapter.add_member(tx, organization_id=member_of, user_id=user.id, role=role)
    return str(user.id)


async def sign_in(gql: GraphQLClient, email: str) -> str:
    data = await gql.data(SIGN_IN, {"email": email, "password": PASSWORD}, key=None)
    token: str = data["signIn"]["token"]
    return token


async def capability_key(gql: GraphQLClient, org: uuid.UUID, *capabilities: str) -> str:
    adapter = gql.services.adapter
    async with adapter.instance_transaction() as tx:
        _, secret = await adapter.create_api_key(
            tx, organization_id=org, name="custom", capabilities=list(capabilities)
        )
    return secret


async def create_post(gql: GraphQLClient, key: str, title: str) -> str:
    data = await gql.data(
        CREATE_POST, {"data": {"title": title, "slug": title.replace(" ", "-")}}, key=key
    )
    post_id: str = data["createPost"]["id"]
    return post_id


async def titles(gql: GraphQLClient, key: str) -> list[str]:
    data = await gql.data(ALL_POSTS, key=key)
    return [post["title"] for post in data["allPost"]]


# A tiny SMTP server: enough of RFC 5321 for smtplib to hand over a message.


class SmtpSink:
    """Accepts every message on a local port and keeps it."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[EmailMessage] = asyncio.Queue()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    async def next_message(self) -> EmailMessage:
        return await asyncio.wait_for(self.messages.get(), timeout=10)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def reply(line: str) -> None:
            writer.write(f"{line}\r\n".encode())
            await writer.drain()

        try:
            await reply("220 sink ESMTP")
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb == b"DATA":
                    await reply("354 end with <CRLF>.<CRLF>")
                    body = bytearray()
                    while (chunk := await reader.readline()) not in (b".\r\n", b""):
                        body += chunk[1:] if chunk.startswith(b"..") else chunk
                    message = message_from_bytes(bytes(body), policy=policy.default)
                    assert isinstance(message, EmailMessage)
                    self.messages.put_nowait(message)
                    await reply("250 queued")
                elif verb == b"QUIT":
                    await reply("221 bye")
                    break
                else:
                    await reply("250 ok")
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    server = SmtpSink()
    await server.start()
    yield server
    await server.stop()


async def use_mailer(
    monkeypatch: pytest.MonkeyPatch, gql: GraphQLClient, server: SmtpServer
) -> Mailer:
    """Give the endpoint this mailer, as the app does with the one built from SMTP_URL."""
    mailer = Mailer(server, sender="CMS <cms@example.test>")
    monkeypatch.setattr(gql.app.state.graphql, "mailer", mailer)
    return mailer


# me and the organization tree


async def test_me_for_an_api_key(cms_api: GraphQLClient) -> None:
    viewer = await cms_api.key_for(cms_api.org, role="viewer")
    me = (await cms_api.data(ME, key=viewer))["me"]
    assert me["userId"].startswith("apikey:")
    assert me["kind"] == "apiKey"
    assert me["capabilities"] == ["document.read", "asset.read"]
    assert (me["publishedOnly"], me["instanceAdmin"]) == (False, False)
    assert me["organization"] == {"slug": "acme", "parent": None}


async def test_me_needs_credentials(cms_api: GraphQLClient) -> None:
    assert code(await cms_api(ME, key=None)) == "UNAUTHENTICATED"
    assert code(await cms_api(ME, key="cms_00000000_nope")) == "UNAUTHENTICATED"


async def test_me_for_a_signed_in_user(cms_api: GraphQLClient) -> None:
    user_id = await sign_up(cms_api, "ann@example.com", member_of=cms_api.org, role="editor")
    signed_in = await cms_api.data(
        SIGN_IN, {"email": "ANN@example.com", "password": PASSWORD}, key=None
    )
    assert signed_in["signIn"]["userId"] == user_id
    token = signed_in["signIn"]["token"]
    # No header needed: the user's only organization is the one.
    me = (await as_user(cms_api, ME, token, None))["data"]["me"]
    assert (me["userId"], me["kind"]) == (user_id, "user")
    assert "document.publish" in me["capabilities"]
    assert "apiKey.manage" not in me["capabilities"]
    assert me["organization"]["slug"] == "acme"


async def test_organization_with_parent_and_children(cms_api: GraphQLClient) -> None:
    eu = await cms_api.org_named("acme-eu", parent=cms_api.org)
    await cms_api.org_named("acme-us", parent=cms_api.org)
    await cms_api.org_named("acme-eu-north", parent=eu)
    tree = """{ organization { id name slug createdAt parent { slug }
                  children { slug parent { slug } children { slug } } } }"""
    root = (await cms_api.data(tree))["organization"]
    assert (root["id"], root["slug"], root["parent"]) == (str(cms_api.org), "acme", None)
    assert root["children"] == [
        {"slug": "acme-eu", "parent": {"slug": "acme"}, "children": [{"slug": "acme-eu-north"}]},
        {"slug": "acme-us", "parent": {"slug": "acme"}, "children": []},
    ]
    child = (await cms_api.data(tree, key=await cms_api.key_for(eu)))["organization"]
    assert child["parent"] == {"slug": "acme"}
    assert [c["slug"] for c in child["children"]] == ["acme-eu-north"]


async def test_siblings_and_their_subtrees_stay_hidden(cms_api: GraphQLClient) -> None:
    """A child sees its line of ancestors, never the rest of their subtrees."""
    blog = await cms_api.org_named("acme-blog", parent=cms_api.org)
    shop = await cms_api.org_named("acme-shop", parent=cms_api.org)
    await cms_api.org_named("acme-shop-eu", parent=shop)
    drafts = await cms_api.org_named("acme-blog-drafts", parent=blog)
    await cms_api.org_named("acme-blog-drafts-old", parent=drafts)
    up = """{ organization { slug parent { slug children { slug children { slug } } } }
              me { organization { parent { children { slug } } } } }"""
    seen = await cms_api.data(up, key=await cms_api.key_for(blog))
    assert seen["organization"]["parent"] == {
        "slug": "acme",
        "children": [{"slug": "acme-blog", "children": [{"slug": "acme-blog-drafts"}]}],
    }
    assert seen["me"]["organization"]["parent"] == {"children": [{"slug": "acme-blog"}]}
    two_up = "{ organization { parent { parent { slug children { slug children { slug } } } } } }"
    seen = await cms_api.data(two_up, key=await cms_api.key_for(drafts))
    assert seen["organization"]["parent"]["parent"] == {
        "slug": "acme",
        "children": [{"slug": "acme-blog", "children": [{"slug": "acme-blog-drafts"}]}],
    }
    # The root still sees its whole subtree.
    root = await cms_api.data("{ organization { children { slug children { slug } } } }")
    assert root["organization"]["children"] == [
        {"slug": "acme-blog", "children": [{"slug": "acme-blog-drafts"}]},
        {"slug": "acme-shop", "children": [{"slug": "acme-shop-eu"}]},
    ]


async def test_children_take_one_statement_per_level(cms_api: GraphQLClient) -> None:
    for n in range(4):
        child = await cms_api.org_named(f"child-{n}", parent=cms_api.org)
        for m in range(3):
            await cms_api.org_named(f"grandchild-{n}-{m}", parent=child)
    database = cms_api.services.adapter.database

    async def statements(query: str) -> int:
        before = database.statements
        await cms_api.data(query)
        return int(database.statements - before)

    await statements("{ organization { slug } }")  # the process now knows the caller
    alone = await statements("{ organization { slug } }")
    nested = await statements("{ organization { children { slug children { slug } } } }")
    assert nested - alone == 2


# createOrganization and tenant isolation


CREATE_ORG = """
mutation($name: String!, $slug: String!) {
  createOrganization(name: $name, slug: $slug) { id name slug parent { slug } children { slug } }
}"""


async def test_create_organization_makes_a_child(cms_api: GraphQLClient) -> None:
    created = (await cms_api.data(CREATE_ORG, {"name": "Acme EU", "slug": "acme-eu"}))[
        "createOrganization"
    ]
    assert created["parent"] == {"slug": "acme"}
    assert (created["name"], created["children"]) == ("Acme EU", [])
    children = await cms_api.data("{ organization { children { id slug } } }")
    assert children["organization"]["children"] == [{"id": created["id"], "slug": "acme-eu"}]
    # An API key is nobody: the child has no members yet.
    members = await cms_api.data(
        "{ members { userId } }", key=await cms_api.key_for(uuid.UUID(created["id"]))
    )
    assert members["members"] == []


async def test_create_organization_errors(cms_api: GraphQLClient) -> None:
    editor = await cms_api.key_for(cms_api.org, role="editor")
    denied = await cms_api(CREATE_ORG, {"name": "X", "slug": "x"}, key=editor)
    assert code(denied) == "FORBIDDEN"
    assert code(await cms_api(CREATE_ORG, {"name": "X", "slug": "Not A Slug"})) == "BAD_USER_INPUT"
    await cms_api.data(CREATE_ORG, {"name": "X", "slug": "x"})
    assert code(await cms_api(CREATE_ORG, {"name": "X", "slug": "x"})) == "CONFLICT"


async def test_creating_an_organization_reveals_no_other_tenants_slugs(
    cms_api: GraphQLClient,
) -> None:
    """Slugs are unique among siblings: another tenant's slug is free to take in one's own org."""
    await cms_api.org_named("acme-blog", parent=cms_api.org)
    globex = await cms_api.org_named("globex")
    created = await cms_api.data(
        CREATE_ORG, {"name": "Blog", "slug": "acme-blog"}, key=await cms_api.key_for(globex)
    )
    assert created["createOrganization"]["parent"] == {"slug": "globex"}


async def test_a_signed_in_user_owns_the_organization_they_create(cms_api: GraphQLClient) -> None:
    user_id = await sign_up(cms_api, "ann@example.com", member_of=cms_api.org, role="admin")
    token = await sign_in(cms_api, "ann@example.com")
    created = await as_user(cms_api, CREATE_ORG, token, cms_api.org, name="Lab", slug="lab")
    child = created["data"]["createOrganization"]["id"]
    members = await as_user(cms_api, "{ members { userId role email } }", token, uuid.UUID(child))
    assert members["data"]["members"] == [
        {"userId": user_id, "role": "owner", "email": "ann@example.com"}
    ]


async def test_keys_see_exactly_what_their_organization_may(cms_api: GraphQLClient) -> None:
    parent_key = cms_api.key
    made = {}
    for slug in ("acme-eu", "acme-us"):
        result = await cms_api.data(CREATE_ORG, {"name": slug, "slug": slug})
        made[slug] = uuid.UUID(result["createOrganization"]["id"])
    child_key = await cms_api.key_for(made["acme-eu"])
    sibling_key = await cms_api.key_for(made["acme-us"])
    other_key = await cms_api.key_for(await cms_api.org_named("globex"))

    await create_post(cms_api, parent_key, "parent post")
    child_post = await create_post(cms_api, child_key, "child post")
    sibling_post = await create_post(cms_api, sibling_key, "sibling post")
    await create_post(cms_api, other_key, "globex post")

    assert await titles(cms_api, parent_key) == ["child post", "parent post", "sibling post"]
    assert await titles(cms_api, child_key) == ["child post"]
    assert await titles(cms_api, sibling_key) == ["sibling post"]
    assert await titles(cms_api, other_key) == ["globex post"]

    update = 'mutation($id: ID!) { updatePost(id: $id, data: {title: "taken"}) { id } }'
    delete = "mutation($id: ID!) { deletePost(id: $id) { success } }"
    for key, target in [
        (child_key, sibling_post),
        (sibling_key, child_post),
        (parent_key, child_post),  # parents read their children's content, never write it
        (other_key, child_post),
    ]:
        assert code(await cms_api(update, {"id": target}, key=key)) in {"FORBIDDEN", "NOT_FOUND"}
        assert code(await cms_api(delete, {"id": target}, key=key)) in {"FORBIDDEN", "NOT_FOUND"}
    assert await titles(cms_api, parent_key) == ["child post", "parent post", "sibling post"]
    one = "query($id: ID!) { post(id: $id) { title } }"
    assert (await cms_api.data(one, {"id": child_post}, key=sibling_key))["post"] is None


# Invitations


async def test_invite_mail_sign_up_sign_in_accept(
    cms_api: GraphQLClient, sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    mailer = await use_mailer(monkeypatch, cms_api, parse_smtp_url(sink.url))
    await create_post(cms_api, cms_api.key, "welcome")
    invited = (await cms_api.data(INVITE, {"email": " Bob@Example.com ", "role": "editor"}))[
        "inviteMember"
    ]
    assert (invited["email"], invited["role"], invited["acceptedAt"]) == (
        "bob@example.com",
        "editor",
        None,
    )
    assert invited["token"] is None  # it went by mail

    mail = await sink.next_message()
    await mailer.aclose()
    assert mail["To"] == "bob@example.com"
    assert mail["From"] == "CMS <cms@example.test>"
    assert "acme" in mail["Subject"]
    body = mail.get_content()
    match = re.search(r"^ {4}(\S+)\s*$", body, re.MULTILINE)
    assert match is not None, body
    token = match.group(1)

    user_id = await sign_up(cms_api, "bob@example.com", name="Bob")
    session = await sign_in(cms_api, "bob@example.com")
    # Bob belongs to no organization yet, so only the accept works for him.
    assert code(await as_user(cms_api, ME, session, None)) == "FORBIDDEN"
    accepted = await as_user(cms_api, ACCEPT, session, None, token=token)
    assert accepted["data"]["acceptInvitation"] == {
        "userId": user_id,
        "role": "editor",
        "email": "bob@example.com",
    }
    read = await as_user(cms_api, ALL_POSTS, session, cms_api.org)
    assert read["data"]["allPost"] == [{"title": "welcome"}]
    members = await cms_api.data("{ members { userId role email name } }")
    assert members["members"] == [
        {"userId": user_id, "role": "editor", "email": "bob@example.com", "name": "Bob"}
    ]
    again = await as_user(cms_api, ACCEPT, session, None, token=token)
    assert code(again) == "BAD_USER_INPUT"


async def test_without_smtp_the_inviter_gets_the_token(cms_api: GraphQLClient) -> None:
    invited = (await cms_api.data(INVITE, {"email": "bob@example.com", "role": "viewer"}))[
        "inviteMember"
    ]
    assert invited["token"]
    await sign_up(cms_api, "bob@example.com")
    await sign_up(cms_api, "eve@example.com")
    eve = await sign_in(cms_api, "eve@example.com")
    assert code(await as_user(cms_api, ACCEPT, eve, None, token=invited["token"])) == "FORBIDDEN"
    bob = await sign_in(cms_api, "bob@example.com")
    assert code(await as_user(cms_api, ACCEPT, bob, None, token="nope")) == "NOT_FOUND"
    accepted = await as_user(cms_api, ACCEPT, bob, None, token=invited["token"])
    assert accepted["data"]["acceptInvitation"]["role"] == "viewer"


async def test_accepting_needs_a_user_session(cms_api: GraphQLClient) -> None:
    assert code(await cms_api(ACCEPT, {"token": "x"}, key=None)) == "UNAUTHENTICATED"
    assert code(await cms_api(ACCEPT, {"token": "x"})) == "FORBIDDEN"
    stale = "cms_session_" + "x" * 43
    assert code(await cms_api(ACCEPT, {"token": "x"}, key=stale)) == "UNAUTHENTICATED"


async def test_invite_checks(cms_api: GraphQLClient) -> None:
    viewer = await cms_api.key_for(cms_api.org, role="viewer")
    variables = {"email": "bob@example.com", "role": "editor"}
    assert code(await cms_api(INVITE, variables, key=viewer)) == "FORBIDDEN"
    inviter = await capability_key(
        cms_api, cms_api.org, "member.invite", "document.read", "asset.read"
    )
    assert code(await cms_api(INVITE, variables, key=inviter)) == "FORBIDDEN"  # editor > inviter
    assert (await cms_api.data(INVITE, {**variables, "role": "viewer"}, key=inviter))[
        "inviteMember"
    ]
    assert code(await cms_api(INVITE, {**variables, "role": "ghost"})) == "BAD_USER_INPUT"
    assert code(await cms_api(INVITE, {**variables, "email": "not an address"})) == "BAD_USER_INPUT"
    await sign_up(cms_api, "ann@example.com", member_of=cms_api.org)
    assert code(await cms_api(INVITE, {**variables, "email": "ANN@example.com"})) == "CONFLICT"


async def test_a_mail_failure_is_logged_not_fatal(
    cms_api: GraphQLClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    closed = SmtpSink()
    await closed.start()
    await closed.stop()  # nothing listens on this port any more
    mailer = await use_mailer(monkeypatch, cms_api, SmtpServer("127.0.0.1", closed.port, timeout=2))
    with caplog.at_level(logging.WARNING, logger="server.access.mail"):
        invited = await cms_api.data(INVITE, {"email": "bob@example.com", "role": "viewer"})
        await mailer.aclose()
    assert invited["inviteMember"]["email"] == "bob@example.com"
    assert "could not send" in caplog.text


# Members


async def test_members_listing_rules(cms_api: GraphQLClient) -> None:
    await sign_up(cms_api, "ann@example.com", member_of=cms_api.org)
    viewer = await cms_api.key_for(cms_api.org, role="viewer")
    listed = await cms_api.data("{ members { email role } }", key=viewer)
    assert listed["members"] == [{"email": "ann@example.com", "role": "owner"}]
    public = await cms_api.key_for(cms_api.org, role="viewer", published_only=True)
    assert code(await cms_api("{ members { email } }", key=public)) == "FORBIDDEN"


async def test_the_last_owner_stays(cms_api: GraphQLClient) -> None:
    ann = await sign_up(cms_api, "ann@example.com", member_of=cms_api.org)
    assert code(await cms_api(REMOVE, {"userId": ann})) == "CONFLICT"
    assert code(await cms_api(CHANGE_ROLE, {"userId": ann, "role": "admin"})) == "CONFLICT"
    assert (await cms_api.data(CHANGE_ROLE, {"userId": ann, "role": "owner"}))["changeMemberRole"]

    bob = await sign_up(
        cms_api, "bob@example.com", name="Bob", member_of=cms_api.org, role="viewer"
    )
    promoted = await cms_api.data(CHANGE_ROLE, {"userId": bob, "role": "owner"})
    assert promoted["changeMemberRole"] == {
        "userId": bob,
        "role": "owner",
        "email": "bob@example.com",
        "name": "Bob",
    }
    demoted = await cms_api.data(CHANGE_ROLE, {"userId": ann, "role": "editor"})
    assert demoted["changeMemberRole"]["role"] == "editor"
    assert code(await cms_api(REMOVE, {"userId": bob})) == "CONFLICT"
    removed = await cms_api.data(REMOVE, {"userId": ann})
    assert removed["removeMember"] == {"success": True, "id": ann}
    assert code(await cms_api(REMOVE, {"userId": ann})) == "NOT_FOUND"


async def test_member_changes_need_their_capability_and_more(cms_api: GraphQLClient) -> None:
    ann = await sign_up(cms_api, "ann@example.com", member_of=cms_api.org)
    bob = await sign_up(cms_api, "bob@example.com", member_of=cms_api.org, role="viewer")
    await sign_up(cms_api, "cy@example.com", member_of=cms_api.org)
    editor = await cms_api.key_for(cms_api.org, role="editor")
    assert code(await cms_api(REMOVE, {"userId": bob}, key=editor)) == "FORBIDDEN"
    assert code(await cms_api(CHANGE_ROLE, {"userId": bob, "role": "editor"}, key=editor)) == (
        "FORBIDDEN"
    )
    manager = await capability_key(
        cms_api, cms_api.org, "member.remove", "member.changeRole", "document.update", "asset.read"
    )
    # Neither may it touch an owner, nor hand out a role above its own.
    assert code(await cms_api(REMOVE, {"userId": ann}, key=manager)) == "FORBIDDEN"
    assert code(await cms_api(CHANGE_ROLE, {"userId": bob, "role": "admin"}, key=manager)) == (
        "FORBIDDEN"
    )
    assert code(await cms_api(CHANGE_ROLE, {"userId": bob, "role": "nope"})) == "BAD_USER_INPUT"
    assert (await cms_api.data(REMOVE, {"userId": bob}, key=manager))["removeMember"]["success"]


# API keys


async def test_create_list_and_revoke_api_keys(cms_api: GraphQLClient) -> None:
    created = (
        await cms_api.data(CREATE_KEY, {"name": "site", "role": "viewer", "expiresInDays": 30})
    )["createApiKey"]
    key = created["key"]
    assert created["secret"].startswith(key["prefix"] + "_")
    assert (key["role"], key["capabilities"], key["instanceAdmin"]) == (
        "viewer",
        ["document.read", "asset.read"],
        False,
    )
    assert key["expiresAt"] is not None
    me = await cms_api.data("{ me { capabilities } }", key=created["secret"])
    assert me["me"]["capabilities"] == ["document.read", "asset.read"]

    listed = (await cms_api.data("{ apiKeys { id name prefix revokedAt lastUsedAt } }"))["apiKeys"]
    assert {"id": key["id"], "name": "site", "prefix": key["prefix"], "revokedAt": None} == {
        k: v for k, v in listed[0].items() if k != "lastUsedAt"
    }
    assert "secret" not in str(listed)

    revoke = "mutation($id: ID!) { revokeApiKey(id: $id) { success id } }"
    assert (await cms_api.data(revoke, {"id": key["id"]}))["revokeApiKey"] == {
        "success": True,
        "id": key["id"],
    }
    assert code(await cms_api("{ me { userId } }", key=created["secret"])) == "UNAUTHENTICATED"
    assert code(await cms_api(revoke, {"id": key["id"]})) == "NOT_FOUND"
    assert code(await cms_api(revoke, {"id": "not-a-uuid"})) == "BAD_USER_INPUT"


async def test_api_key_capability_checks(cms_api: GraphQLClient) -> None:
    viewer = await cms_api.key_for(cms_api.org, role="viewer")
    editor = await cms_api.key_for(cms_api.org, role="editor")
    assert (
        code(await cms_api(CREATE_KEY, {"name": "k", "role": "viewer"}, key=viewer)) == "FORBIDDEN"
    )
    assert code(await cms_api("{ apiKeys { id } }", key=viewer)) == "FORBIDDEN"
    assert (
        code(await cms_api(CREATE_KEY, {"name": "k", "role": "owner"}, key=editor)) == "FORBIDDEN"
    )

    manager = await capability_key(cms_api, cms_api.org, "apiKey.manage", "document.update")
    assert (
        code(await cms_api(CREATE_KEY, {"name": "k", "role": "owner"}, key=manager)) == "FORBIDDEN"
    )
    more = {"name": "k", "capabilities": ["document.publish"]}
    assert code(await cms_api(CREATE_KEY, more, key=manager)) == "FORBIDDEN"
    fewer = {"name": "k", "capabilities": ["document.read"], "publishedOnly": True}
    made = (await cms_api.data(CREATE_KEY, fewer, key=manager))["createApiKey"]["key"]
    assert (made["role"], made["capabilities"], made["publishedOnly"]) == (
        None,
        ["document.read"],
        True,
    )

    # Even an instance admin cannot mint an instance-admin key over GraphQL.
    admin = await cms_api.key_for(cms_api.org, instance_admin=True)
    schema = {"name": "k", "capabilities": ["schema.manage"]}
    assert code(await cms_api(CREATE_KEY, schema, key=admin)) == "BAD_USER_INPUT"
    assert code(await cms_api(CREATE_KEY, schema)) == "FORBIDDEN"
    owner_made = (await cms_api.data(CREATE_KEY, {"name": "k", "role": "owner"}, key=admin))[
        "createApiKey"
    ]
    assert owner_made["key"]["instanceAdmin"] is False

    both = {"name": "k", "role": "viewer", "capabilities": ["document.read"]}
    assert code(await cms_api(CREATE_KEY, both)) == "BAD_USER_INPUT"
    assert code(await cms_api(CREATE_KEY, {"name": "k"})) == "BAD_USER_INPUT"
    assert code(await cms_api(CREATE_KEY, {"name": "k", "role": "ghost"})) == "BAD_USER_INPUT"
    expiry = {"name": "k", "role": "viewer", "expiresInDays": 0}
    assert code(await cms_api(CREATE_KEY, expiry)) == "BAD_USER_INPUT"


async def test_a_published_only_key_mints_only_published_only_keys(cms_api: GraphQLClient) -> None:
    public = await cms_api.key_for(cms_api.org, published_only=True)
    assert (
        code(await cms_api(CREATE_KEY, {"name": "k", "role": "viewer"}, key=public)) == "FORBIDDEN"
    )
    allowed = {"name": "k", "role": "viewer", "publishedOnly": True}
    assert (await cms_api.data(CREATE_KEY, allowed, key=public))["createApiKey"]["secret"]


# Sessions


async def test_sign_in_and_sign_out(cms_api: GraphQLClient) -> None:
    await sign_up(cms_api, "ann@example.com", member_of=cms_api.org)
    wrong = await cms_api(
        SIGN_IN, {"email": "ann@example.com", "password": "wrong password"}, key=None
    )
    assert code(wrong) == "UNAUTHENTICATED"
    unknown = await cms_api(SIGN_IN, {"email": "who@example.com", "password": PASSWORD}, key=None)
    assert code(unknown) == "UNAUTHENTICATED"

    token = await sign_in(cms_api, "ann@example.com")
    assert (await as_user(cms_api, ME, token, cms_api.org))["data"]["me"]["kind"] == "user"
    sign_out = "mutation { signOut { success } }"
    assert (await cms_api.data(sign_out, key=token))["signOut"] == {"success": True}
    assert code(await as_user(cms_api, ME, token, cms_api.org)) == "UNAUTHENTICATED"
    assert code(await cms_api(sign_out, key=token)) == "UNAUTHENTICATED"
    assert code(await cms_api(sign_out, key=None)) == "UNAUTHENTICATED"
    assert code(await cms_api(sign_out)) == "FORBIDDEN"


# Settings


def test_smtp_settings() -> None:
    settings = Settings.from_env(
        {"SMTP_URL": "smtp://mailpit:1025", "MAIL_FROM": "A <a@b.example>"}
    )
    assert (settings.smtp_url, settings.mail_from) == ("smtp://mailpit:1025", "A <a@b.example>")
    assert Settings.from_env({}).smtp_url is None
    assert "mailpit" not in repr(settings)  # the URL may carry a password
    assert parse_smtp_url("smtp+tls://u%40x:p%3Aw@mail.example") == SmtpServer(
        "mail.example", 587, "starttls", "u@x", "p:w"
    )
    assert parse_smtp_url("smtps://mail.example").port == 465


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SMTP_URL", "http://mail.example"),
        ("SMTP_URL", "smtp://"),
        ("SMTP_URL", "smtp://mail.example:99999"),
        ("MAIL_FROM", "nobody"),
        ("MAIL_FROM", "a@b.example\r\nBcc: c@d.example"),
    ],
)
def test_bad_smtp_settings_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({variable: value})
    assert raised.value.variable == variable
