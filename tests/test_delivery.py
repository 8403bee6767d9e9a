"""Content delivery over HTTP: persisted queries, caching headers, the outbox and webhooks.

Webhooks are delivered to a real HTTP receiver (`tests/webhook_receiver.py`) that checks their
Standard Webhooks signatures with the `standardwebhooks` package; the outbox worker runs one pass
at a time here (`run_once`), so each step is observable.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from server.config import ConfigError, Settings
from server.delivery.outbox_worker import OutboxWorker
from server.errors import InvalidInputError
from server.outbound import OutboundPolicy
from server.testing import GraphQLClient, pooled_environment, running_api
from tests.live_server import cli, run
from tests.webhook_receiver import Receiver, webhook_receiver

POST_BY_ID = "query($id: ID!) { post(id: $id) { title author { name } } }"
ALL_POSTS = "{ allPost { title } }"
CREATE_WEBHOOK = """
mutation($url: String!, $events: [String!]!, $types: [String!]) {
  createWebhook(name: "site", url: $url, events: $events, documentTypes: $types) {
    secret webhook { id url events documentTypes enabled }
  }
}"""
DELIVERIES = """
query($id: ID!) { webhook(id: $id) { deliveries {
  event documentId state attempts lastStatusCode lastError nextAttemptAt deliveredAt } } }"""


@pytest.fixture
async def api(cms_database_url: str) -> AsyncIterator[GraphQLClient]:
    async with running_api(
        cms_database_url, webhook_allowed_hosts=("*", "127.0.0.1"), webhook_retry_base=0.05
    ) as client:
        yield client


@pytest.fixture
async def purging_api(cms_database_url: str) -> AsyncIterator[GraphQLClient]:
    """The API of a process that purges caches (no worker runs here: nothing is sent)."""
    async with running_api(cms_database_url, purge_urls=("http://127.0.0.1:9/",)) as client:
        yield client


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with webhook_receiver() as hook:
        yield hook


async def _author_and_post(api: GraphQLClient, *, publish: bool = True) -> tuple[str, str]:
    author = await api.data('mutation { createAuthor(data: {name: "Ada"}, publish: true) { id } }')
    author_id = author["createAuthor"]["id"]
    post = await api.data(
        'mutation($a: ID!, $p: Boolean) { createPost(data: {title: "Hello", slug: "hello",'
        " author: $a}, publish: $p) { id } }",
        {"a": author_id, "p": publish},
    )
    return author_id, post["createPost"]["id"]


async def _get(
    api: GraphQLClient, params: dict[str, Any], key: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    query = {
        name: value if isinstance(value, str) else json.dumps(value)
        for name, value in params.items()
    }
    sent = {"Authorization": f"Bearer {key}", **(headers or {})}
    return await api.client.get("/graphql", params=query, headers=sent)


def _sha(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


# --- persisted queries -------------------------------------------------------------------------


async def test_automatic_persisted_queries_over_get(api: GraphQLClient) -> None:
    digest = _sha(ALL_POSTS)
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    unknown = await _get(api, {"extensions": extensions}, api.key)
    assert unknown.status_code == 200
    assert unknown.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert unknown.json()["errors"][0]["message"] == "PersistedQueryNotFound"
    assert unknown.headers["cache-control"] == "private, no-store"

    registered = await _get(api, {"query": ALL_POSTS, "extensions": extensions}, api.key)
    assert registered.json() == {"data": {"allPost": []}}
    by_hash = await _get(api, {"extensions": extensions}, api.key)
    assert by_hash.json() == {"data": {"allPost": []}}

    mismatch = {"persistedQuery": {"version": 1, "sha256Hash": _sha("{ other }")}}
    wrong = await _get(api, {"query": ALL_POSTS, "extensions": mismatch}, api.key)
    assert wrong.status_code == 400
    bad = await _get(
        api, {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "x"}}}, api.key
    )
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_persisted_queries_off(cms_database_url: str) -> None:
    async with running_api(cms_database_url, persisted_queries="off") as api:
        extensions = {"persistedQuery": {"version": 1, "sha256Hash": _sha(ALL_POSTS)}}
        response = await _get(api, {"query": ALL_POSTS, "extensions": extensions}, api.key)
        code = response.json()["errors"][0]["extensions"]["code"]
        assert code == "PERSISTED_QUERY_NOT_SUPPORTED"


async def test_trusted_documents(cms_database_url: str) -> None:
    async with running_api(cms_database_url, persisted_queries="trusted") as api:
        refused = await api(ALL_POSTS)
        assert refused["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_TRUSTED"
        assert "data" not in refused

        # An instance admin may run anything, registering documents included.
        admin = await api.key_for(api.org, instance_admin=True)
        register = (
            "mutation($d: [String!]!) { registerPersistedQueries(documents: $d) { sha256Hash } }"
        )
        done = await api.data(register, {"d": [ALL_POSTS]}, key=admin)
        assert done["registerPersistedQueries"] == [{"sha256Hash": _sha(ALL_POSTS)}]
        owner_refused = await api(register, {"d": ["{ me { kind } }"]})
        assert owner_refused["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_TRUSTED"

        assert await api.data(ALL_POSTS) == {"allPost": []}  # its text is registered now
        extensions = {"persistedQuery": {"version": 1, "sha256Hash": _sha(ALL_POSTS)}}
        by_hash = await _get(api, {"extensions": extensions}, api.key)
        assert by_hash.json() == {"data": {"allPost": []}}
        unknown = {"persistedQuery": {"version": 1, "sha256Hash": _sha("{ me { kind } }")}}
        missing = await _get(api, {"extensions": unknown}, api.key)
        assert missing.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


# --- caching headers ---------------------------------------------------------------------------


async def test_published_reads_over_get_are_cacheable(api: GraphQLClient) -> None:
    author_id, post_id = await _author_and_post(api)
    public_key = await api.key_for(api.org, role="viewer", published_only=True)
    params = {"query": POST_BY_ID, "variables": {"id": post_id}}

    response = await _get(api, params, public_key)
    assert response.json() == {"data": {"post": {"title": "Hello", "author": {"name": "Ada"}}}}
    assert response.headers["cache-control"] == "public, max-age=60, stale-while-revalidate=300"
    assert response.headers["vary"] == "Accept, Authorization, X-Organization-Id"
    assert set(response.headers["surrogate-key"].split()) == {post_id, author_id}
    assert set(response.headers["cache-tag"].split(",")) == {post_id, author_id}
    etag = response.headers["etag"]
    assert etag.startswith('"')
    assert not etag.startswith("W/")

    # The same bytes as a POST, which is not cacheable.
    posted = await api.post(POST_BY_ID, {"id": post_id}, key=public_key)
    assert posted.content == response.content
    assert "etag" not in posted.headers

    again = await _get(api, params, public_key, {"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    changed = await _get(api, params, public_key, {"If-None-Match": '"other"'})
    assert changed.status_code == 200

    listing = await _get(api, {"query": ALL_POSTS}, public_key)
    # A list: its rows, what they reference (read at the default depth), and its type.
    keys = set(listing.headers["surrogate-key"].split())
    assert keys == {post_id, author_id, f"type:{api.org}:post"}


async def test_drafts_and_private_keys_are_not_stored(api: GraphQLClient) -> None:
    _, post_id = await _author_and_post(api)
    draft = await _get(
        api,
        {
            "query": 'query($id: ID!) { post(id: $id, perspective: "draft") { title } }',
            "variables": {"id": post_id},
        },
        api.key,
    )
    assert draft.json()["data"]["post"]["title"] == "Hello"
    assert draft.headers["cache-control"] == "private, no-store"
    assert "etag" not in draft.headers
    assert "surrogate-key" not in draft.headers

    # The owner's key may read drafts: its published answers are its own.
    owner = await _get(api, {"query": POST_BY_ID, "variables": {"id": post_id}}, api.key)
    assert owner.headers["cache-control"] == "private, no-store"
    assert "surrogate-key" not in owner.headers
    assert owner.headers["etag"]


async def test_back_references_are_not_stored(api: GraphQLClient) -> None:
    # A page of back-references changes when any document starts to reference its target: no
    # surrogate key names those, so such an answer is read compiled but not kept.
    author_id, post_id = await _author_and_post(api)
    public_key = await api.key_for(api.org, role="viewer", published_only=True)
    query = "query($id: ID!) { author(id: $id) { name referencedBy { docs { id } } } }"
    endpoint = api.app.state.graphql
    before = endpoint.compiled_served
    response = await _get(api, {"query": query, "variables": {"id": author_id}}, public_key)
    assert endpoint.compiled_served == before + 1
    assert response.json() == {
        "data": {"author": {"name": "Ada", "referencedBy": {"docs": [{"id": post_id}]}}}
    }
    assert response.headers["cache-control"] == "private, no-store"
    assert "surrogate-key" not in response.headers


async def test_the_resolver_path_is_never_cacheable(cms_database_url: str) -> None:
    async with running_api(cms_database_url, compiled_reads=False) as api:
        _, post_id = await _author_and_post(api)
        public_key = await api.key_for(api.org, role="viewer", published_only=True)
        response = await _get(api, {"query": POST_BY_ID, "variables": {"id": post_id}}, public_key)
        assert response.json()["data"]["post"]["title"] == "Hello"
        assert response.headers["cache-control"] == "private, no-store"
        assert "etag" not in response.headers
        assert api.app.state.graphql.compiled_served == 0


async def test_too_many_ids_give_type_keys(cms_database_url: str) -> None:
    async with running_api(cms_database_url, surrogate_keys_max=1) as api:
        _, post_id = await _author_and_post(api)
        public_key = await api.key_for(api.org, role="viewer", published_only=True)
        response = await _get(api, {"query": POST_BY_ID, "variables": {"id": post_id}}, public_key)
        keys = set(response.headers["surrogate-key"].split())
        assert keys == {f"type:{api.org}:post", f"type:{api.org}:author"}


# --- the outbox --------------------------------------------------------------------------------


async def _outbox(api: GraphQLClient) -> list[tuple[str, str]]:
    async with api.services.adapter.system_context() as tx:
        rows = await tx.fetch("SELECT document_id, event FROM cms_outbox ORDER BY id")
    return [(str(row["document_id"]), row["event"]) for row in rows]


async def test_changes_write_their_events_in_their_own_transaction(
    purging_api: GraphQLClient,
) -> None:
    api = purging_api
    author_id, post_id = await _author_and_post(api, publish=False)
    assert await _outbox(api) == [(author_id, "document.published")]
    # Two publishes in one operation, the second failing: the unit of work rolls both back.
    failed = await api(
        "mutation($id: ID!, $no: ID!) { a: publishPost(id: $id) { id }"
        " b: publishPost(id: $no) { id } }",
        {"id": post_id, "no": str(uuid.uuid4())},
    )
    assert failed["errors"]
    assert await _outbox(api) == [(author_id, "document.published")]

    await api.data("mutation($id: ID!) { publishPost(id: $id) { id } }", {"id": post_id})
    await api.data("mutation($id: ID!) { unpublishPost(id: $id) { id } }", {"id": post_id})
    await api.data("mutation($id: ID!) { deletePost(id: $id) { success } }", {"id": post_id})
    # Draft saves write none while no webhook listens for them.
    assert await _outbox(api) == [
        (author_id, "document.published"),
        (post_id, "document.published"),
        (post_id, "document.unpublished"),
        (post_id, "document.deleted"),
    ]


async def test_an_event_nobody_hears_of_is_not_queued(api: GraphQLClient) -> None:
    """Without caches to purge, a change is queued only when an enabled webhook of the
    organization listens for its event and its document type."""
    author_id, post_id = await _author_and_post(api)
    await api.data("mutation($id: ID!) { unpublishPost(id: $id) { id } }", {"id": post_id})
    await api.data("mutation($id: ID!) { deletePost(id: $id) { success } }", {"id": post_id})
    assert await _outbox(api) == []

    await _webhook(api, "http://127.0.0.1:9/hook", ["document.published"], ["author"])
    _, post_id = await _author_and_post(api)
    [(queued_author, event)] = await _outbox(api)
    # The new author's publish only: the post's type is not the webhook's.
    assert (event, queued_author != author_id) == ("document.published", True)
    await api.data("mutation($id: ID!) { unpublishPost(id: $id) { id } }", {"id": post_id})
    assert len(await _outbox(api)) == 1

    hook_id, _ = await _webhook(api, "http://127.0.0.1:9/all", ["document.unpublished"])
    await api.data("mutation($id: ID!) { publishPost(id: $id) { id } }", {"id": post_id})
    await api.data("mutation($id: ID!) { unpublishPost(id: $id) { id } }", {"id": post_id})
    assert (await _outbox(api))[1:] == [(post_id, "document.unpublished")]
    await api.data(
        "mutation($id: ID!) { updateWebhook(id: $id, enabled: false) { id } }",
        {"id": hook_id},
    )
    await api.data("mutation($id: ID!) { publishPost(id: $id) { id } }", {"id": post_id})
    await api.data("mutation($id: ID!) { unpublishPost(id: $id) { id } }", {"id": post_id})
    assert len(await _outbox(api)) == 2


async def test_only_writes_that_queue_an_event_wake_a_worker(purging_api: GraphQLClient) -> None:
    api = purging_api
    _, post_id = await _author_and_post(api)
    update = "mutation($id: ID!, $t: String!) { updatePost(id: $id, data: {title: $t}) { id } }"
    publish = "mutation($id: ID!) { publishPost(id: $id) { id } }"
    heard: list[str] = []
    listener = await asyncpg.connect(api.services.adapter.database.direct_url)
    await listener.add_listener("cms_outbox", lambda *args: heard.append(args[2]))
    adapter = api.services.adapter
    try:
        # This process runs no worker (the tests' settings): the write that queued an event
        # notifies the others' workers at its commit; a draft save that queued none stays quiet.
        await api.data(update, {"id": post_id, "t": "Quiet"})
        await asyncio.sleep(0.2)
        assert heard == []
        await api.data(publish, {"id": post_id})
        await asyncio.sleep(0.2)
        assert heard == ["cms_outbox"]

        # With a worker of its own, the process wakes it after the commit and notifies no one.
        woken: list[list[tuple[str, str]]] = []
        adapter.outbox_queued = lambda: woken.append([])
        await api.data(update, {"id": post_id, "t": "Again"})
        assert woken == []
        await api.data(publish, {"id": post_id})
        await api.data("mutation($id: ID!) { unpublishPost(id: $id) { id } }", {"id": post_id})
        failed = await api(publish, {"id": str(uuid.uuid4())})
        assert failed["errors"]
        await asyncio.sleep(0.2)
        assert (len(woken), heard) == (2, ["cms_outbox"])
    finally:
        adapter.outbox_queued = None
        await listener.close()


# --- webhooks ----------------------------------------------------------------------------------


async def _webhook(
    api: GraphQLClient, url: str, events: list[str], types: list[str] | None = None
) -> tuple[str, str]:
    created = await api.data(CREATE_WEBHOOK, {"url": url, "events": events, "types": types})
    return created["createWebhook"]["webhook"]["id"], created["createWebhook"]["secret"]


async def test_webhook_management(api: GraphQLClient) -> None:
    url = "http://127.0.0.1:9/hook"
    created = await api.data(
        CREATE_WEBHOOK, {"url": url, "events": ["document.deleted", "document.published"]}
    )
    webhook = created["createWebhook"]["webhook"]
    assert created["createWebhook"]["secret"].startswith("whsec_")
    assert webhook["events"] == ["document.published", "document.deleted"]
    assert webhook["documentTypes"] is None

    listed = await api.data("{ webhooks { id name url events enabled } }")
    assert listed["webhooks"] == [
        {
            "id": webhook["id"],
            "name": "site",
            "url": url,
            "events": webhook["events"],
            "enabled": True,
        }
    ]
    updated = await api.data(
        'mutation($id: ID!) { updateWebhook(id: $id, enabled: false, documentTypes: ["post"])'
        " { enabled documentTypes } }",
        {"id": webhook["id"]},
    )
    assert updated["updateWebhook"] == {"enabled": False, "documentTypes": ["post"]}

    viewer = await api.key_for(api.org, role="viewer")
    refused = await api("{ webhooks { id } }", key=viewer)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    other_org = await api.org_named("other")
    other = await api.key_for(other_org)
    assert await api.data("{ webhooks { id } }", key=other) == {"webhooks": []}
    gone = await api(
        "mutation($id: ID!) { deleteWebhook(id: $id) { success } }",
        {"id": webhook["id"]},
        key=other,
    )
    assert gone["errors"][0]["extensions"]["code"] == "NOT_FOUND"

    deleted = await api.data(
        "mutation($id: ID!) { deleteWebhook(id: $id) { success } }", {"id": webhook["id"]}
    )
    assert deleted["deleteWebhook"]["success"] is True
    assert await api.data("{ webhooks { id } }") == {"webhooks": []}


@pytest.mark.parametrize(
    ("url", "events", "path"),
    [
        ("http://10.1.2.3/hook", ["document.published"], "url"),
        ("http://169.254.169.254/latest", ["document.published"], "url"),
        ("ftp://example.com/hook", ["document.published"], "url"),
        ("http://user:pw@example.com/hook", ["document.published"], "url"),
        ("http://127.0.0.1/hook", ["document.changed"], "events"),
        ("http://127.0.0.1/hook", [], "events"),
    ],
)
async def test_webhooks_refuse_bad_urls_and_events(
    api: GraphQLClient, url: str, events: list[str], path: str
) -> None:
    refused = await api(CREATE_WEBHOOK, {"url": url, "events": events, "types": None})
    error = refused["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"].get("path", path) == path


async def test_private_addresses_are_refused_unless_allowed(cms_database_url: str) -> None:
    async with running_api(cms_database_url) as api:  # WEBHOOK_ALLOWED_HOSTS=*: public hosts only
        for url in ("http://127.0.0.1:1/", "http://localhost:1/", "http://[::1]:1/"):
            refused = await api(CREATE_WEBHOOK, {"url": url, "events": ["document.published"]})
            assert "not allowed" in refused["errors"][0]["message"]


async def test_deliveries_are_signed_retried_and_in_order(
    api: GraphQLClient, receiver: Receiver
) -> None:
    worker = api.services.delivery.worker
    webhook_id, secret = await _webhook(
        api, receiver.url, ["document.published", "document.unpublished"], ["post"]
    )
    receiver.statuses = [500]
    _, post_id = await _author_and_post(api)  # the author's publish does not match: types
    await api.data("mutation($id: ID!) { unpublishPost(id: $id) { id } }", {"id": post_id})

    await worker.run_once()
    (first,) = await receiver.wait_for(1)
    log = (await api.data(DELIVERIES, {"id": webhook_id}))["webhook"]["deliveries"]
    assert [(d["event"], d["state"], d["attempts"]) for d in log] == [
        ("document.unpublished", "pending", 0),
        ("document.published", "pending", 1),
    ]
    assert log[1]["lastStatusCode"] == 500
    assert log[1]["nextAttemptAt"] is not None

    # The unpublish waits for the publish: one document's events arrive in order.
    for _ in range(100):
        await worker.run_once()
        if len(receiver.received) == 3:
            break
        await asyncio.sleep(0.05)
    retried, unpublished = receiver.received[1:]
    assert retried.headers["webhook-id"] == first.headers["webhook-id"]
    payload = retried.verify(secret)
    assert payload["type"] == "document.published"
    assert payload["data"] == {"id": post_id, "type": "post", "organizationId": str(api.org)}
    assert unpublished.verify(secret)["type"] == "document.unpublished"
    with pytest.raises(Exception, match="ignature"):
        retried.verify("whsec_" + "A" * 44)

    log = (await api.data(DELIVERIES, {"id": webhook_id}))["webhook"]["deliveries"]
    assert [(d["state"], d["attempts"], d["lastStatusCode"]) for d in log] == [
        ("delivered", 1, 204),
        ("delivered", 2, 204),
    ]
    assert all(d["deliveredAt"] and d["nextAttemptAt"] is None for d in log)


async def test_deliveries_give_up_after_the_last_attempt(
    cms_database_url: str, receiver: Receiver
) -> None:
    async with running_api(
        cms_database_url,
        webhook_allowed_hosts=("127.0.0.1",),
        webhook_retry_base=0.01,
        webhook_max_attempts=2,
    ) as api:
        webhook_id, _ = await _webhook(api, receiver.url, ["document.published"])
        receiver.statuses = [500, 503, 500]
        await _author_and_post(api, publish=False)
        for _ in range(100):
            await api.services.delivery.worker.run_once()
            if len(receiver.received) == 2:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)
        await api.services.delivery.worker.run_once()
        log = (await api.data(DELIVERIES, {"id": webhook_id}))["webhook"]["deliveries"]
        assert [(d["state"], d["attempts"], d["lastStatusCode"]) for d in log] == [
            ("failed", 2, 503)
        ]
        assert len(receiver.received) == 2


async def test_draft_saves_only_when_asked_for(api: GraphQLClient, receiver: Receiver) -> None:
    _, secret = await _webhook(api, receiver.url, ["document.draft_saved"])
    _, post_id = await _author_and_post(api, publish=False)
    await api.data(
        'mutation($id: ID!) { updatePost(id: $id, data: {excerpt: "x"}) { id } }', {"id": post_id}
    )
    # Two passes: the post's second event waits for its first to be delivered.
    await api.services.delivery.worker.run_once()
    await api.services.delivery.worker.run_once()
    received = await receiver.wait_for(3)
    assert [r.verify(secret)["type"] for r in received] == ["document.draft_saved"] * 3


async def test_test_webhook(api: GraphQLClient, receiver: Receiver) -> None:
    webhook_id, secret = await _webhook(api, receiver.url, ["document.published"])
    result = await api.data(
        "mutation($id: ID!) { testWebhook(id: $id) { delivered statusCode error } }",
        {"id": webhook_id},
    )
    assert result["testWebhook"] == {"delivered": True, "statusCode": 204, "error": None}
    assert receiver.received[0].verify(secret)["type"] == "webhook.test"


# --- settings and the command line -------------------------------------------------------------


def test_delivery_settings() -> None:
    settings = Settings.from_env(
        {
            "PERSISTED_QUERIES": "trusted",
            "PURGE_URLS": "http://varnish:6081/, https://cache.example.com/purge",
            "WEBHOOK_ALLOWED_HOSTS": "*, hooks.internal, *.corp.example, 10.0.0.0/8",
            "CACHE_MAX_AGE": "30",
        }
    )
    assert settings.persisted_queries == "trusted"
    assert settings.purge_urls == ("http://varnish:6081/", "https://cache.example.com/purge")
    assert settings.webhook_allowed_hosts == ("*", "hooks.internal", "*.corp.example", "10.0.0.0/8")
    assert settings.cache_max_age == 30
    assert Settings.from_env({}).webhook_allowed_hosts == ("*",)
    for variable, value in (
        ("PERSISTED_QUERIES", "sometimes"),
        ("PURGE_URLS", "varnish:6081"),
        ("WEBHOOK_ALLOWED_HOSTS", "http://x/"),
        ("WEBHOOK_MAX_ATTEMPTS", "0"),
    ):
        with pytest.raises(ConfigError, match=variable):
            Settings.from_env({variable: value})


async def test_allowed_hosts_by_name_and_network() -> None:
    named = OutboundPolicy(("hooks.internal.test", "10.0.0.0/8"))
    await named.check("http://10.1.2.3/hook")
    with pytest.raises(InvalidInputError, match="not allowed"):
        await named.check("http://8.8.8.8/")  # public, but `*` is not listed
    with pytest.raises(InvalidInputError, match="does not resolve"):
        await named.check("https://hooks.internal.test/")


async def test_register_persisted_queries_from_the_command_line(
    cms_database_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "queries"
    folder.mkdir()
    (folder / "posts.graphql").write_text(ALL_POSTS)
    manifest = tmp_path / "manifest.json"
    other = "query Me { me { kind } }"
    manifest.write_text(
        json.dumps(
            {
                "format": "apollo-persisted-query-manifest",
                "version": 1,
                "operations": [{"id": _sha(other), "name": "Me", "type": "query", "body": other}],
            }
        )
    )
    env = {**os.environ, **pooled_environment(cms_database_url)}
    assert await cli(env, "persisted-queries", "register", str(folder)) == _sha(ALL_POSTS)
    assert await cli(env, "persisted-queries", "register", str(manifest)) == _sha(other)
    manifest.write_text(json.dumps({"0" * 64: other}))
    code, out = await run(
        env, sys.executable, "-m", "server", "persisted-queries", "register", str(manifest)
    )
    assert code == 1
    assert "is not the SHA-256" in out
    async with running_api(cms_database_url, persisted_queries="trusted") as api:
        assert await api.data(ALL_POSTS) == {"allPost": []}
        assert (await api.data(other))["me"]["kind"] == "apiKey"


async def test_two_workers_send_each_delivery_once(api: GraphQLClient, receiver: Receiver) -> None:
    mine = api.services.delivery.worker
    other = OutboxWorker(
        api.services.adapter.database,
        purger=mine.purger,
        sender=mine.sender,
        retry=mine.retry,
        timeout=1.0,
    )
    _, secret = await _webhook(api, receiver.url, ["document.published"])
    for index in range(6):
        await api.data(
            "mutation($t: String!) { createPost(data: {title: $t, slug: $t}, publish: true) { id } }",
            {"t": f"post-{index}"},
        )
    for _ in range(5):
        await asyncio.gather(mine.run_once(), other.run_once(), mine.run_once(), other.run_once())
    received = await receiver.wait_for(6)
    # Every send above was awaited, and neither worker finds anything left to do.
    assert await asyncio.gather(mine.run_once(), other.run_once()) == [False, False]
    assert len(receiver.received) == 6
    ids = {r.headers["webhook-id"] for r in received}
    assert len(ids) == 6
    assert {r.verify(secret)["type"] for r in received} == {"document.published"}
