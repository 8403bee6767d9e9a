"""Scheduled publishing and unpublishing over HTTP, with a clock the tests control.

The runner is called as `scheduler.run_due(now=...)`: a schedule's time comes by passing it, not by
waiting for it. One test starts the app's lifespan and lets the background task find a due one.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from server.app import create_app
from server.content.schedules import ScheduleRow
from server.engine.scheduler import MAX_ATTEMPTS, RETRY_DELAY_SECONDS, Scheduler
from tests.conftest import CMS, GraphQLClient

NOW = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)

SCHEDULE_FIELDS = (
    "id documentId documentType organizationId action runAt revision status attempts retryAt"
    " errorCode errorMessage createdBy cancelledBy completedAt"
)
SCHEDULE_PUBLISH = f"""
mutation($id: ID!, $at: DateTime!, $rev: Int) {{
  schedulePublish(id: $id, at: $at, expectedRevision: $rev) {{ {SCHEDULE_FIELDS} }}
}}"""
SCHEDULE_UNPUBLISH = f"""
mutation($id: ID!, $at: DateTime!) {{
  scheduleUnpublish(id: $id, at: $at) {{ {SCHEDULE_FIELDS} }}
}}"""
CANCEL = f"mutation($id: ID!) {{ cancelScheduled(id: $id) {{ {SCHEDULE_FIELDS} }} }}"
SCHEDULED = f"""
query($documentId: ID, $status: String, $type: String) {{
  scheduled(documentId: $documentId, status: $status, type: $type) {{
    total schedules {{ {SCHEDULE_FIELDS} }}
  }}
}}"""


def iso(moment: datetime) -> str:
    return moment.isoformat()


async def create_post(
    gql: GraphQLClient, title: str, *, publish: bool = False, key: str | None = "default"
) -> str:
    slug = title.lower().replace(" ", "-")
    data = await gql.data(
        "mutation($data: PostDataInput!, $publish: Boolean) {"
        " createPost(data: $data, publish: $publish) { id } }",
        {"data": {"title": title, "slug": slug}, "publish": publish},
        key=key,
    )
    return str(data["createPost"]["id"])


async def schedule_publish(
    gql: GraphQLClient, id: str, at: datetime, *, key: str | None = "default"
) -> dict[str, Any]:
    data = await gql.data(SCHEDULE_PUBLISH, {"id": id, "at": iso(at)}, key=key)
    schedule: dict[str, Any] = data["schedulePublish"]
    return schedule


async def scheduled(
    gql: GraphQLClient, *, key: str | None = "default", **variables: Any
) -> list[dict[str, Any]]:
    data = await gql.data(SCHEDULED, variables, key=key)
    schedules: list[dict[str, Any]] = data["scheduled"]["schedules"]
    assert data["scheduled"]["total"] == len(schedules)
    return schedules


async def draft(gql: GraphQLClient, id: str) -> dict[str, Any]:
    data = await gql.data(
        'query($id: ID!) { post(id: $id, perspective: "draft") { status revision title } }',
        {"id": id},
    )
    post: dict[str, Any] = data["post"]
    return post


async def versions(gql: GraphQLClient, id: str) -> list[dict[str, Any]]:
    data = await gql.data(
        "query($id: ID!) { documentVersions(id: $id) { versions { eventType createdBy } } }",
        {"id": id},
    )
    found: list[dict[str, Any]] = data["documentVersions"]["versions"]
    return found


def scheduler(gql: GraphQLClient) -> Scheduler:
    return gql.services.scheduler


def error_code(payload: dict[str, Any]) -> str:
    assert payload.get("errors"), payload
    code: str = payload["errors"][0]["extensions"]["code"]
    return code


async def test_a_scheduled_publish_runs_at_its_time_as_a_manual_one(cms_api: GraphQLClient) -> None:
    id = await create_post(cms_api, "Launch")
    at = NOW + timedelta(hours=1)
    schedule = await schedule_publish(cms_api, id, at)
    assert schedule["status"] == "pending"
    assert (schedule["action"], schedule["revision"], schedule["attempts"]) == ("publish", 1, 0)
    assert schedule["documentType"] == "post"
    assert schedule["organizationId"] == str(cms_api.org)
    assert datetime.fromisoformat(schedule["runAt"]) == at

    assert await scheduler(cms_api).run_due(now=at - timedelta(seconds=1)) == []
    assert (await draft(cms_api, id))["status"] == "draft"

    [ran] = await scheduler(cms_api).run_due(now=at)
    assert (ran.status, ran.attempts, ran.error_code) == ("succeeded", 1, None)
    assert ran.completed_at is not None
    assert (await draft(cms_api, id))["status"] == "published"
    published = await cms_api.data("query($id: ID!) { post(id: $id) { title } }", {"id": id})
    assert published["post"] == {"title": "Launch"}

    # The same version row a manual publish writes, by the one who scheduled it.
    history = await versions(cms_api, id)
    assert [v["eventType"] for v in history] == ["publish", "draft"]
    assert history[0]["createdBy"] == schedule["createdBy"] == history[1]["createdBy"]

    [listed] = await scheduled(cms_api, documentId=id)
    assert (listed["status"], listed["attempts"]) == ("succeeded", 1)
    assert await scheduler(cms_api).run_due(now=at + timedelta(days=1)) == []


async def test_a_schedule_in_the_past_runs_at_the_next_run(cms_api: GraphQLClient) -> None:
    id = await create_post(cms_api, "Overdue")
    await schedule_publish(cms_api, id, datetime.now(UTC) - timedelta(minutes=5))
    [ran] = await scheduler(cms_api).run_due()  # the database's clock
    assert ran.status == "succeeded"


async def test_a_changed_draft_fails_the_publish_once_with_conflict(cms_api: GraphQLClient) -> None:
    id = await create_post(cms_api, "Pinned")
    await schedule_publish(cms_api, id, NOW)
    await cms_api.data(
        'mutation($id: ID!) { updatePost(id: $id, data: {excerpt: "new"}) { id } }', {"id": id}
    )

    [ran] = await scheduler(cms_api).run_due(now=NOW)
    assert (ran.status, ran.error_code) == ("failed", "CONFLICT")
    assert "revision 1" in (ran.error_message or "")
    assert (await draft(cms_api, id))["status"] == "draft"
    assert [v["eventType"] for v in await versions(cms_api, id)] == ["draft", "draft"]
    # Recorded, and never tried again.
    assert await scheduler(cms_api).run_due(now=NOW + timedelta(days=30)) == []
    [listed] = await scheduled(cms_api, status="failed")
    assert (listed["errorCode"], listed["attempts"]) == ("CONFLICT", 1)


async def test_expected_revision_is_checked_when_scheduling(cms_api: GraphQLClient) -> None:
    id = await create_post(cms_api, "Stale")
    stale = await cms_api(SCHEDULE_PUBLISH, {"id": id, "at": iso(NOW), "rev": 7})
    assert error_code(stale) == "CONFLICT"
    fresh = await cms_api.data(SCHEDULE_PUBLISH, {"id": id, "at": iso(NOW), "rev": 1})
    assert fresh["schedulePublish"]["revision"] == 1


async def test_a_draft_that_breaks_a_content_rule_is_refused_when_scheduled(
    cms_api: GraphQLClient,
) -> None:
    data = await cms_api.data('mutation { createAuthor(data: {bio: "no name yet"}) { id } }')
    refused = await cms_api(SCHEDULE_PUBLISH, {"id": data["createAuthor"]["id"], "at": iso(NOW)})
    assert error_code(refused) == "BAD_USER_INPUT"
    assert await scheduled(cms_api) == []


async def test_a_content_rule_broken_by_then_fails_it_and_rolls_the_publish_back(
    cms_api: GraphQLClient,
) -> None:
    data = await cms_api.data('mutation { createAuthor(data: {name: "Ada"}) { id } }')
    id = data["createAuthor"]["id"]
    await schedule_publish(cms_api, id, NOW)
    # The content model changes before the time comes: a biography is now required.
    definition = cms_api.services.model.registry.get("author")
    assert definition is not None
    changed = definition.to_json()
    for field in changed["fields"]:
        if field["name"] == "bio":
            field["required"] = True
    async with cms_api.services.adapter.instance_transaction() as tx:
        await cms_api.services.model.register(tx, changed)

    [ran] = await scheduler(cms_api).run_due(now=NOW)
    assert (ran.status, ran.error_code) == ("failed", "BAD_USER_INPUT")
    assert "bio" in (ran.error_message or "")
    author = await cms_api.data(
        'query($id: ID!) { author(id: $id, perspective: "draft") { status } }', {"id": id}
    )
    assert author["author"]["status"] == "draft"
    history = await cms_api.data(
        "query($id: ID!) { documentVersions(id: $id) { totalVersions } }", {"id": id}
    )
    assert history["documentVersions"]["totalVersions"] == 1


async def test_a_deleted_document_fails_its_schedule(cms_api: GraphQLClient) -> None:
    id = await create_post(cms_api, "Doomed")
    schedule = await schedule_publish(cms_api, id, NOW)
    await cms_api.data("mutation($id: ID!) { deletePost(id: $id) { success } }", {"id": id})
    [ran] = await scheduler(cms_api).run_due(now=NOW)
    assert (ran.status, ran.error_code) == ("failed", "NOT_FOUND")
    [listed] = await scheduled(cms_api)
    assert (listed["id"], listed["documentId"], listed["status"]) == (schedule["id"], id, "failed")


async def test_schedule_unpublish(cms_api: GraphQLClient) -> None:
    id = await create_post(cms_api, "Temporary", publish=True)
    at = NOW + timedelta(days=7)
    data = await cms_api.data(SCHEDULE_UNPUBLISH, {"id": id, "at": iso(at)})
    assert (data["scheduleUnpublish"]["action"], data["scheduleUnpublish"]["revision"]) == (
        "unpublish",
        None,
    )
    assert await scheduler(cms_api).run_due(now=NOW) == []
    [ran] = await scheduler(cms_api).run_due(now=at)
    assert ran.status == "succeeded"
    gone = await cms_api.data("query($id: ID!) { post(id: $id) { title } }", {"id": id})
    assert gone["post"] is None


async def test_a_documents_schedules_run_in_the_order_of_their_times(
    cms_api: GraphQLClient,
) -> None:
    id = await create_post(cms_api, "Window")
    # Scheduled in the other order, both overdue by the time the runner comes.
    await cms_api.data(SCHEDULE_UNPUBLISH, {"id": id, "at": iso(NOW + timedelta(hours=8))})
    await schedule_publish(cms_api, id, NOW)
    ran = await scheduler(cms_api).run_due(now=NOW + timedelta(days=1))
    assert [(r.action, r.status) for r in ran] == [
        ("publish", "succeeded"),
        ("unpublish", "succeeded"),
    ]
    assert (await draft(cms_api, id))["status"] == "draft"


async def test_cancel(cms_api: GraphQLClient) -> None:
    id = await create_post(cms_api, "Maybe")
    schedule = await schedule_publish(cms_api, id, NOW)
    cancelled = await cms_api.data(CANCEL, {"id": schedule["id"]})
    assert cancelled["cancelScheduled"]["status"] == "cancelled"
    assert cancelled["cancelScheduled"]["cancelledBy"] == schedule["createdBy"]
    assert await scheduler(cms_api).run_due(now=NOW) == []
    assert (await draft(cms_api, id))["status"] == "draft"
    assert error_code(await cms_api(CANCEL, {"id": schedule["id"]})) == "CONFLICT"
    assert error_code(await cms_api(CANCEL, {"id": str(uuid.uuid4())})) == "NOT_FOUND"
    assert await scheduled(cms_api, status="pending") == []
    assert [s["status"] for s in await scheduled(cms_api, status="cancelled")] == ["cancelled"]


async def test_bad_input_gets_a_clear_error(cms_api: GraphQLClient) -> None:
    id = await create_post(cms_api, "Input")
    naive = await cms_api(SCHEDULE_PUBLISH, {"id": id, "at": "2030-01-01T09:00:00"})
    assert error_code(naive) == "BAD_USER_INPUT"
    assert "offset" in naive["errors"][0]["message"]
    assert error_code(await cms_api(SCHEDULE_PUBLISH, {"id": "nope", "at": iso(NOW)})) == (
        "BAD_USER_INPUT"
    )
    missing = await cms_api(SCHEDULE_PUBLISH, {"id": str(uuid.uuid4()), "at": iso(NOW)})
    assert error_code(missing) == "NOT_FOUND"
    assert error_code(await cms_api(SCHEDULED, {"status": "done"})) == "BAD_USER_INPUT"


async def test_capabilities(cms_api: GraphQLClient) -> None:
    id = await create_post(cms_api, "Guarded")
    viewer = await cms_api.key_for(cms_api.org, role="viewer")
    editor = await cms_api.key_for(cms_api.org, role="editor")
    public = await cms_api.key_for(cms_api.org, role="owner", published_only=True)
    async with cms_api.services.adapter.instance_transaction() as tx:
        _, publisher = await cms_api.services.adapter.create_api_key(
            tx, organization_id=cms_api.org, name="no scheduling", capabilities=["document.publish"]
        )
        _, scheduler_only = await cms_api.services.adapter.create_api_key(
            tx, organization_id=cms_api.org, name="schedules", capabilities=["document.schedule"]
        )

    for key in (viewer, publisher, scheduler_only, public):
        refused = await cms_api(SCHEDULE_PUBLISH, {"id": id, "at": iso(NOW)}, key=key)
        assert error_code(refused) == "FORBIDDEN", key
    schedule = await schedule_publish(cms_api, id, NOW, key=editor)
    assert await scheduled(cms_api, key=viewer) != []  # reading needs document.read only
    assert error_code(await cms_api(SCHEDULED, {}, key=public)) == "FORBIDDEN"  # drafts
    assert error_code(await cms_api(CANCEL, {"id": schedule["id"]}, key=viewer)) == "FORBIDDEN"
    assert error_code(await cms_api(CANCEL, {"id": schedule["id"]}, key=publisher)) == "FORBIDDEN"
    await cms_api.data(CANCEL, {"id": schedule["id"]}, key=scheduler_only)
    # The capability is checked first: without it, an unknown id is refused the same way.
    assert error_code(await cms_api(CANCEL, {"id": str(uuid.uuid4())}, key=viewer)) == "FORBIDDEN"


async def test_tenants(cms_api: GraphQLClient) -> None:
    """Schedules are read down the tree and written only in one's own organization."""
    child_org = await cms_api.org_named("child", parent=cms_api.org)
    child = await cms_api.key_for(child_org)
    parents_post = await create_post(cms_api, "Parent post")
    childs_post = await create_post(cms_api, "Child post", key=child)
    parents = await schedule_publish(cms_api, parents_post, NOW)

    # A child cannot see, let alone schedule, its parent's documents.
    refused = await cms_api(SCHEDULE_PUBLISH, {"id": parents_post, "at": iso(NOW)}, key=child)
    assert error_code(refused) == "NOT_FOUND"
    assert error_code(await cms_api(CANCEL, {"id": parents["id"]}, key=child)) == "NOT_FOUND"
    assert await scheduled(cms_api, key=child) == []
    assert await scheduled(cms_api, key=child, documentId=parents_post) == []

    childs = await schedule_publish(cms_api, childs_post, NOW + timedelta(minutes=1), key=child)
    assert childs["organizationId"] == str(child_org)
    assert [s["id"] for s in await scheduled(cms_api, key=child)] == [childs["id"]]
    # The parent reads its descendants' schedules, but writes only its own.
    assert [s["id"] for s in await scheduled(cms_api)] == [parents["id"], childs["id"]]
    refused = await cms_api(SCHEDULE_PUBLISH, {"id": childs_post, "at": iso(NOW)})
    assert error_code(refused) == "FORBIDDEN"
    assert error_code(await cms_api(CANCEL, {"id": childs["id"]})) == "FORBIDDEN"

    # Each runs as its own organization.
    ran = await scheduler(cms_api).run_due(now=NOW + timedelta(hours=1))
    assert {(str(r.organization_id), r.status) for r in ran} == {
        (str(cms_api.org), "succeeded"),
        (str(child_org), "succeeded"),
    }
    for key, post in ((child, childs_post), ("default", parents_post)):
        seen = await cms_api.data("query($id: ID!) { post(id: $id) { id } }", {"id": post}, key=key)
        assert seen["post"] == {"id": post}


async def test_the_scheduled_query_takes_the_resolver_path(cms_api: GraphQLClient) -> None:
    endpoint = cms_api.app.state.graphql
    assert endpoint.current().planner.plan("{ scheduled { total } }", None) is None
    assert endpoint.current().planner.plan("{ allPost { id } }", None) is not None


async def test_several_runners_run_each_schedule_once(cms_api: GraphQLClient) -> None:
    ids = [await create_post(cms_api, f"Post {n}") for n in range(6)]
    for id in ids:
        await schedule_publish(cms_api, id, NOW)
    runners = [Scheduler(cms_api.services.api) for _ in range(3)]
    results = await asyncio.gather(*(r.run_due(now=NOW) for r in runners))
    ran = [row for result in results for row in result]
    assert sorted(str(r.document_id) for r in ran) == sorted(ids)
    assert {r.status for r in ran} == {"succeeded"}
    for id in ids:
        assert [v["eventType"] for v in await versions(cms_api, id)] == ["publish", "draft"]


class _Dies(Scheduler):
    """A process that dies after the publish, before the schedule's outcome is written."""

    async def _perform(self, ctx: Any, schedule: ScheduleRow) -> None:
        await super()._perform(ctx, schedule)
        raise asyncio.CancelledError


async def test_a_run_that_dies_midway_leaves_nothing_half_done(cms_api: GraphQLClient) -> None:
    id = await create_post(cms_api, "Interrupted")
    await schedule_publish(cms_api, id, NOW)
    with pytest.raises(asyncio.CancelledError):
        await _Dies(cms_api.services.api).run_due(now=NOW)
    assert (await draft(cms_api, id))["status"] == "draft"
    assert [v["eventType"] for v in await versions(cms_api, id)] == ["draft"]
    [pending] = await scheduled(cms_api)
    assert (pending["status"], pending["attempts"]) == ("pending", 0)

    [ran] = await scheduler(cms_api).run_due(now=NOW)
    assert ran.status == "succeeded"


async def test_a_passing_failure_is_retried_a_few_times_then_fails(cms_api: GraphQLClient) -> None:
    id = await create_post(cms_api, "Locked")
    await schedule_publish(cms_api, id, NOW)
    adapter = cms_api.services.adapter
    adapter.tenancy = replace(adapter.tenancy, lock_timeout_ms=50)
    moment = NOW
    async with adapter.database.transaction() as holder:
        # Someone else keeps the document locked throughout.
        await holder.execute("select 1 from cms_documents where id = $1 for update", uuid.UUID(id))
        for attempt in range(1, MAX_ATTEMPTS + 1):
            [ran] = await scheduler(cms_api).run_due(now=moment)
            assert (ran.attempts, ran.error_code) == (attempt, "TIMEOUT")
            if attempt < MAX_ATTEMPTS:
                assert ran.status == "pending"
                assert ran.retry_at is not None
                delay = RETRY_DELAY_SECONDS * 2 ** (attempt - 1)
                assert ran.retry_at == moment + timedelta(seconds=delay)
                assert (
                    await scheduler(cms_api).run_due(now=ran.retry_at - timedelta(seconds=1)) == []
                )
                moment = ran.retry_at
        assert ran.status == "failed"
    assert await scheduler(cms_api).run_due(now=moment + timedelta(days=1)) == []
    assert (await draft(cms_api, id))["status"] == "draft"


async def test_the_background_runner_picks_up_a_due_schedule(cms_api: GraphQLClient) -> None:
    id = await create_post(cms_api, "Background")
    await schedule_publish(cms_api, id, datetime.now(UTC) - timedelta(seconds=1))
    settings = replace(
        cms_api.services.settings, scheduler_enabled=True, scheduler_poll_seconds=0.05
    )
    cms_api.services.scheduler.poll_interval = settings.scheduler_poll_seconds
    app = create_app(settings, services=cms_api.services)
    async with app.router.lifespan_context(app):
        for _ in range(200):
            [schedule] = await scheduled(cms_api)
            if schedule["status"] != "pending":
                break
            await asyncio.sleep(0.05)
    assert schedule["status"] == "succeeded"
    assert (await draft(cms_api, id))["status"] == "published"


async def test_the_local_api(cms: CMS) -> None:
    org = await cms.org("local")
    async with cms.api.context(org, user_id="u1", capabilities=None) as ctx:
        post = await cms.api.collections.post.create(ctx, {"title": "Local", "slug": "local"})
        schedule = await cms.api.collections.post.schedule_publish(ctx, post["id"], NOW)
        unpublish = await cms.api.collections.post.schedule_unpublish(
            ctx, post["id"], NOW + timedelta(hours=1)
        )
        page = await cms.api.collections.post.get_scheduled(ctx, post["id"])
        assert [s.id for s in page.items] == [schedule.id, unpublish.id]
        assert (await cms.api.collections.author.get_scheduled(ctx)).items == []
        with pytest.raises(Exception, match="not found"):
            await cms.api.collections.author.schedule_publish(ctx, post["id"], NOW)
        with pytest.raises(Exception, match="not found"):
            await cms.api.collections.author.cancel_scheduled(ctx, unpublish.id)
        cancelled = await cms.api.collections.post.cancel_scheduled(ctx, unpublish.id)
        assert (cancelled.status, cancelled.cancelled_by) == ("cancelled", "u1")
    [ran] = await Scheduler(cms.api).run_due(now=NOW)
    assert (ran.id, ran.status, ran.created_by) == (schedule.id, "succeeded", "u1")


async def test_the_run_is_under_row_level_security_as_the_scheduling_organization(
    cms_api: GraphQLClient,
) -> None:
    """Rows that no request could make (a schedule of one organization for another's document)
    fail when they run: the runner passes the policies only to claim."""
    child_org = await cms_api.org_named("child", parent=cms_api.org)
    parents_post = await create_post(cms_api, "Parent post")
    childs_post = await create_post(cms_api, "Child post", key=await cms_api.key_for(child_org))
    async with cms_api.services.adapter.system_context() as tx:
        for org, post in ((child_org, parents_post), (cms_api.org, childs_post)):
            await tx.execute(
                "insert into cms_document_schedules (organization_id, document_id,"
                " document_type, action, run_at, revision) values ($1, $2, 'post', 'publish',"
                " $3, 1)",
                org,
                uuid.UUID(post),
                NOW,
            )
    ran = await scheduler(cms_api).run_due(now=NOW)
    assert {(r.organization_id, r.status, r.error_code) for r in ran} == {
        (child_org, "failed", "NOT_FOUND"),  # the child cannot read its parent's document
        (cms_api.org, "failed", "FORBIDDEN"),  # the parent reads the child's, but may not write it
    }
    for post in (parents_post, childs_post):
        assert (await draft(cms_api, post))["status"] == "draft"


async def test_scheduler_enabled_false_starts_no_runner(cms_api: GraphQLClient) -> None:
    settings = replace(cms_api.services.settings, scheduler_enabled=False)
    app = create_app(settings, services=cms_api.services)
    async with app.router.lifespan_context(app):
        assert cms_api.services.scheduler._task is None


async def test_a_scheduled_change_tells_the_outside_world_as_a_manual_one_does(
    cms_api: GraphQLClient,
) -> None:
    """The delivery outbox (webhooks, purges) hears of a scheduled publish and unpublish as of
    manual ones: the event is written by the same publish, in the schedule's transaction."""

    async def events(id: str) -> list[str]:
        async with cms_api.services.adapter.system_context() as tx:
            rows = await tx.fetch(
                "SELECT event FROM cms_outbox WHERE document_id = $1 ORDER BY id", uuid.UUID(id)
            )
        return [row["event"] for row in rows]

    # A process that purges caches: every change to published content is queued.
    cms_api.services.adapter.queue_purges = True
    manual = await create_post(cms_api, "By hand")
    await cms_api.data("mutation($id: ID!) { publishPost(id: $id) { id } }", {"id": manual})
    await cms_api.data("mutation($id: ID!) { unpublishPost(id: $id) { id } }", {"id": manual})

    timed = await create_post(cms_api, "By the clock")
    await schedule_publish(cms_api, timed, NOW)
    await scheduler(cms_api).run_due(now=NOW)
    await cms_api.data(SCHEDULE_UNPUBLISH, {"id": timed, "at": iso(NOW + timedelta(hours=1))})
    await scheduler(cms_api).run_due(now=NOW + timedelta(hours=1))

    assert await events(manual) == ["document.published", "document.unpublished"]
    assert await events(timed) == await events(manual)
