"""Document mutations answered without Strawberry (`server/graphql/direct_writes.py`) against the
resolver path: the same response bytes, the same stored result, and the path each one takes.

Each case runs twice on twin documents (created with the same data): once with the direct path on,
once with it off. The responses must be equal once the twins' ids and the timestamps of the write
are put aside, and so must the documents afterwards.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import pytest

from server.access.auth import parse_credential
from server.access.credentials import secret_digest
from server.access.opening import known_callers, known_run_arguments
from server.content.documents import DocumentRow
from server.db.pool import Database, NotWritten
from server.services import Services
from server.testing import GraphQLClient

ISO = re.compile(rb'"\d{4}-\d\d-\d\dT[0-9:.]+\+00:00"')
POST = {"title": "Twin", "slug": "twin", "views": 3}

# (query, variables given the document id and its revision, served directly?)
Case = tuple[str, Any, bool]
CASES: list[Case] = [
    (
        "mutation($id: ID!, $data: JSON!, $rev: Int) {"
        " updatePost(id: $id, data: $data, expectedRevision: $rev) { id revision } }",
        lambda id, rev: {"id": id, "data": {"views": 7}, "rev": rev},
        True,
    ),
    (
        'mutation Save($id: ID!) { saved: updatePost(id: $id, data: {title: "New"}) {'
        " __typename r: revision status hasUnpublishedChanges _id _ref _resolved type"
        " createdAt updatedAt publishedAt publishedHash } }",
        lambda id, rev: {"id": id},
        True,
    ),
    (
        "mutation($id: ID!) { updatePost(id: $id, data: {views: 9}, publish: true) {"
        " id status publishedHash hasUnpublishedChanges revision } }",
        lambda id, rev: {"id": id},
        True,
    ),
    (
        "mutation($id: ID!) { publishPost(id: $id) { id revision status publishedHash } }",
        lambda id, rev: {"id": id},
        True,
    ),
    (
        "mutation($id: ID!, $rev: Int) { publishPost(id: $id, expectedRevision: $rev) {"
        " id revision } }",
        lambda id, rev: {"id": id, "rev": rev},
        True,
    ),
    (
        "mutation($id: ID!) { unpublishPost(id: $id) { id status hasUnpublishedChanges } }",
        lambda id, rev: {"id": id},
        True,
    ),
    # Refused by the local API: served by the resolvers, with their errors.
    (
        "mutation($id: ID!) { updatePost(id: $id, data: {views: 1}, expectedRevision: 99) {"
        " id revision } }",
        lambda id, rev: {"id": id},
        False,
    ),
    (
        "mutation($id: ID!) { updatePost(id: $id, data: {title: null}, publish: true) { id } }",
        lambda id, rev: {"id": id},
        False,
    ),
    (
        'mutation { updatePost(id: "not-a-uuid", data: {views: 1}) { id } }',
        lambda id, rev: None,
        False,
    ),
    (
        # A fixed id no document has: parametrised ids are the same in every pytest-xdist worker.
        'mutation { publishPost(id: "7c82b090-65ee-43c1-879e-144fabcfeb44") { id } }',
        lambda id, rev: None,
        False,
    ),
    (
        "mutation($id: ID!) { updatePost(id: $id, data: [1]) { id } }",
        lambda id, rev: {"id": id},
        False,
    ),
    (
        'mutation($id: ID!) { updatePost(id: $id, data: {views: "many"}) { id } }',
        lambda id, rev: {"id": id},
        False,
    ),
    # Refused before execution: a wrong variable type, an Int out of range, an unknown field.
    (
        "mutation($id: ID!, $rev: Int) { publishPost(id: $id, expectedRevision: $rev) { id } }",
        lambda id, rev: {"id": id, "rev": 2**40},
        False,
    ),
    (
        "mutation($id: ID!) { publishPost(id: $id) { id nope } }",
        lambda id, rev: {"id": id},
        False,
    ),
    (
        "mutation($id: ID!) { publishPost(id: $id) { id } }",
        lambda id, rev: {"id": ["x"]},
        False,
    ),
    # Not planned: content fields, fragments, directives, two root fields.
    (
        "mutation($id: ID!) { updatePost(id: $id, data: {views: 4}) { id title views } }",
        lambda id, rev: {"id": id},
        False,
    ),
    (
        "mutation($id: ID!) { publishPost(id: $id) { ...F } } fragment F on Post { id revision }",
        lambda id, rev: {"id": id},
        False,
    ),
    (
        "mutation($id: ID!, $r: Boolean!) { publishPost(id: $id) { id revision @include(if: $r)"
        " } }",
        lambda id, rev: {"id": id, "r": False},
        False,
    ),
    (
        "mutation($id: ID!) { a: publishPost(id: $id) { id } b: unpublishPost(id: $id) { id } }",
        lambda id, rev: {"id": id},
        False,
    ),
]


async def _twin(gql: GraphQLClient, key: str) -> tuple[str, int]:
    doc = await gql.data(
        "mutation($data: PostDataInput!) { createPost(data: $data) { id revision } }",
        {"data": POST},
        key=key,
    )
    return doc["createPost"]["id"], doc["createPost"]["revision"]


async def _twin_keys(gql: GraphQLClient) -> tuple[str, str]:
    """Owner keys of two new organizations: twins with the same slug in each."""
    first = await gql.org_named(f"a-{uuid.uuid4().hex[:8]}")
    second = await gql.org_named(f"b-{uuid.uuid4().hex[:8]}")
    return await gql.key_for(first), await gql.key_for(second)


async def _state(gql: GraphQLClient, id: str) -> Any:
    async with gql.services.api.system_context(gql.org) as ctx:
        row = await gql.services.adapter.find_document(ctx.tx, id=uuid.UUID(id))
        versions = await ctx.tx.fetch(
            "SELECT version_number, event_type, data FROM cms_document_versions"
            " WHERE document_id = $1 ORDER BY version_number",
            uuid.UUID(id),
        )
    assert row is not None
    return (
        row.status,
        row.revision,
        row.draft_data,
        row.published_data,
        row.draft_hash,
        row.published_hash,
        [tuple(v) for v in versions],
    )


@pytest.mark.parametrize(("query", "variables", "direct"), CASES)
async def test_a_direct_write_answers_as_the_resolvers_do(
    cms_api: GraphQLClient, query: str, variables: Any, direct: bool
) -> None:
    endpoint = cms_api.app.state.graphql
    responses = []
    for on, key in zip((True, False), await _twin_keys(cms_api), strict=True):
        id, revision = await _twin(cms_api, key)
        endpoint.direct_writes = on
        served = endpoint.direct_served
        try:
            response = await cms_api.post(query, variables(id, revision), key=key)
        finally:
            endpoint.direct_writes = True
        assert endpoint.direct_served == served + (1 if on and direct else 0), query
        body = ISO.sub(b'"<time>"', response.content.replace(id.encode(), b"<id>"))
        responses.append((response.status_code, body, await _state(cms_api, id)))
    assert endpoint.direct_failures == 0
    assert responses[0][:2] == responses[1][:2]
    # The same write: the same stored document and history, whichever path made it.
    assert responses[0][2] == responses[1][2]


async def test_a_refused_direct_write_changes_nothing(cms_api: GraphQLClient) -> None:
    """A caller without the capability: the resolver path refuses it, and nothing was written."""
    id, revision = await _twin(cms_api, cms_api.key)
    viewer = await cms_api.key_for(cms_api.org, role="viewer")
    served = cms_api.app.state.graphql.direct_served
    payload = await cms_api(
        "mutation($id: ID!) { updatePost(id: $id, data: {views: 100}) { id revision } }",
        {"id": id},
        key=viewer,
    )
    assert payload["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert cms_api.app.state.graphql.direct_served == served
    assert (await _state(cms_api, id))[1] == revision


# --- a publish of the draft this process just saved -----------------------------------------------

CREATE_CATEGORY = 'mutation { createCategory(data: {title: "Cat"}, publish: true) { id } }'
SAVE = "mutation($id: ID!, $data: JSON!) { updatePost(id: $id, data: $data) { id revision } }"
PUBLISH = "mutation($id: ID!) { publishPost(id: $id) { id revision status publishedHash } }"


async def _saved_then_published(
    gql: GraphQLClient, between: str | None
) -> list[tuple[bytes, int, Any]]:
    """On twins, direct writes on and off: publish, save (this process keeps the draft as
    publishable), let another process on the same database `between` ("save" or "publish"),
    then publish. Each run's answer, the statements of the last publish, and the stored result."""
    endpoint = gql.app.state.graphql
    database = gql.services.adapter.database
    results = []
    for on in (True, False):
        org = await gql.org_named(f"t-{uuid.uuid4().hex[:8]}")
        key = await gql.key_for(org)
        id, _ = await _twin(gql, key)
        endpoint.direct_writes = on
        try:
            await gql.data(PUBLISH, {"id": id}, key=key)
            await gql.data(SAVE, {"id": id, "data": {"views": 8}}, key=key)
            if between is not None:
                await _in_another_process(gql, org, id, between)
            statements = database.statements
            response = await gql.post(PUBLISH, {"id": id}, key=key)
            statements = database.statements - statements
        finally:
            endpoint.direct_writes = True
        body = ISO.sub(b'"<time>"', response.content.replace(id.encode(), b"<id>"))
        results.append((body, statements, await _state(gql, id)))
    assert endpoint.direct_failures == 0
    return results


async def _in_another_process(gql: GraphQLClient, org: uuid.UUID, id: str, change: str) -> None:
    other = Services.create(gql.services.settings)
    await other.start()
    try:
        post = other.api.collections.post
        async with other.api.system_context(org) as ctx:
            if change == "save":
                await post.update_row(ctx, id, {"views": 9})
            else:
                await post.publish(ctx, id)
    finally:
        await other.stop()


async def test_a_publish_after_a_save_writes_in_one_statement_what_the_locked_publish_writes(
    cms_api: GraphQLClient,
) -> None:
    endpoint = cms_api.app.state.graphql
    at_once = endpoint.written_at_once
    direct, resolvers = await _saved_then_published(cms_api, None)
    assert direct[0] == resolvers[0]
    assert direct[2] == resolvers[2]
    # One statement in all, which opens the request, publishes and commits; the resolvers open,
    # lock and read the document, then publish it.
    assert (direct[1], resolvers[1]) == (1, 3)
    assert endpoint.written_at_once == at_once + 2  # the save, then the publish


@pytest.mark.parametrize("change", ["save", "publish"])
async def test_a_publish_after_another_process_changed_the_document_is_the_locked_publish(
    cms_api: GraphQLClient, change: str
) -> None:
    """The draft kept is no longer the document's: the one-statement publish writes nothing (it
    is rolled back) and the resolvers publish as they always do, the newest draft."""
    direct, resolvers = await _saved_then_published(cms_api, change)
    assert direct[0] == resolvers[0]
    assert direct[2] == resolvers[2]
    versions = direct[2][6]
    assert [number for number, _, _ in versions] == list(range(1, len(versions) + 1))
    if change == "save":
        assert direct[2][3]["views"] == 9


async def test_concurrent_saves_and_publishes_of_one_document_number_every_version_once(
    cms_api: GraphQLClient,
) -> None:
    """Ten editors save and publish the same document at once over direct writes: every publish
    whose draft moved meanwhile is answered by the resolvers, and the history stays gapless."""
    endpoint = cms_api.app.state.graphql
    id, _ = await _twin(cms_api, cms_api.key)
    await cms_api.data(PUBLISH, {"id": id})

    async def edit(n: int) -> None:
        await cms_api.data(SAVE, {"id": id, "data": {"views": 100 + n}})
        published = await cms_api.data(PUBLISH, {"id": id})
        assert published["publishPost"]["status"] == "published"

    await asyncio.gather(*(edit(n) for n in range(10)))
    status, revision, draft, published, draft_hash, published_hash, versions = await _state(
        cms_api, id
    )
    assert [number for number, _, _ in versions] == list(range(1, 23))
    assert sorted(event for _, event, _ in versions) == ["draft"] * 11 + ["publish"] * 11
    assert (status, revision, published, published_hash) == ("published", 11, draft, draft_hash)
    assert endpoint.direct_failures == 0


async def _publish_refused_at_once(
    gql: GraphQLClient, arrange: Any
) -> list[tuple[bytes, int, Any]]:
    """On twins: publish a post and save it (this process keeps the draft as publishable),
    `arrange(org, id, key)` (a key, maybe another organization's, that then publishes), publish;
    with the one-statement publish, without it, and through the resolvers. Each run's answer,
    the statements of the last publish, and the stored result."""
    endpoint = gql.app.state.graphql
    database = gql.services.adapter.database
    results = []
    for at_once, direct in ((True, True), (False, True), (False, False)):
        org = await gql.org_named(f"t-{uuid.uuid4().hex[:8]}")
        key = await gql.key_for(org)
        id, _ = await _twin(gql, key)
        endpoint.direct_writes, endpoint.writes_at_once = direct, at_once
        try:
            await gql.data(PUBLISH, {"id": id}, key=key)
            await gql.data(SAVE, {"id": id, "data": {"views": 8}}, key=key)
            publisher = await arrange(org, id, key)
            # The publisher's facts are known, as after any earlier request of its.
            await gql.data("{ allPost(limit: 1) { id } }", key=publisher)
            served = endpoint.written_at_once
            statements = database.statements
            response = await gql.post(PUBLISH, {"id": id}, key=publisher)
            statements = database.statements - statements
            assert endpoint.written_at_once == served
        finally:
            endpoint.direct_writes, endpoint.writes_at_once = True, True
        body = UUIDS.sub(b"<id>", ISO.sub(b'"<time>"', response.content))
        results.append((body, statements, await _state(gql, id)))
    assert endpoint.direct_failures == 0
    return results


UUIDS = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# A refused one-statement publish costs its own statement, and the saved draft it took: the
# publish in a unit of work then locks and reads the document first (one statement more).
_TRIED_AT_ONCE = 2


async def test_a_publish_at_once_by_a_parent_organization_writes_nothing(
    cms_api: GraphQLClient,
) -> None:
    """The parent may read its child's draft but not write it: Row-Level Security leaves the
    one-statement publish nothing to update, and the request is answered as the resolvers
    answer it."""

    async def parent_key(org: uuid.UUID, id: str, key: str) -> str:
        parent = await cms_api.org_named(f"p-{uuid.uuid4().hex[:8]}")
        async with cms_api.services.adapter.instance_transaction() as tx:
            await tx.execute(
                "UPDATE cms_organizations SET parent_organization_id = $1 WHERE id = $2",
                parent,
                org,
            )
        return await cms_api.key_for(parent)

    at_once, direct, resolvers = await _publish_refused_at_once(cms_api, parent_key)
    assert b'"errors"' in at_once[0]
    assert at_once[0] == direct[0] == resolvers[0]
    assert at_once[2] == direct[2] == resolvers[2]
    assert at_once[2][3]["views"] == 3, "the published plane as it was"
    assert at_once[1] == direct[1] + _TRIED_AT_ONCE


async def test_a_publish_at_once_that_finds_a_target_of_a_wrong_type_is_refused_as_always(
    cms_api: GraphQLClient,
) -> None:
    """A draft saved with a reference to a missing document (kept, a weak reference), whose id a
    category then takes: the one-statement publish finds the wrong type and commits nothing, and
    the publish is refused with the reference rule, as always."""

    async def wrong_target(org: uuid.UUID, id: str, key: str) -> str:
        target = uuid.uuid4()
        reference = {"_type": "reference", "_ref": str(target)}
        await cms_api.data(SAVE, {"id": id, "data": {"author": reference}}, key=key)
        async with cms_api.services.api.system_context(org) as ctx:
            category = cms_api.services.api.collections.category
            await category.create(ctx, {"title": "Not an author", "slug": "x"}, id=target)
        return key

    at_once, direct, resolvers = await _publish_refused_at_once(cms_api, wrong_target)
    assert b'"reference"' in at_once[0], at_once[0]
    assert at_once[0] == direct[0] == resolvers[0]
    # The published plane as it was, and no second publish version.
    assert at_once[2][3] == direct[2][3] == resolvers[2][3]
    assert at_once[2][3]["views"] == 3
    assert [event for _, event, _ in at_once[2][6]] == ["draft", "publish", "draft", "draft"]
    assert at_once[1] == direct[1] + _TRIED_AT_ONCE


async def test_a_key_revoked_after_its_save_publishes_nothing(cms_api: GraphQLClient) -> None:
    """The one-statement publish takes the caller's facts as the process knows them only while
    the database finds they hold: a revocation in between is refused as in a unit of work."""

    async def revoked(org: uuid.UUID, id: str, key: str) -> str:
        async with cms_api.services.adapter.instance_transaction() as tx:
            await tx.execute(
                "UPDATE api_keys SET revoked_at = now() WHERE key_hash = $1", secret_digest(key)
            )
        return key

    endpoint = cms_api.app.state.graphql
    org = await cms_api.org_named(f"r-{uuid.uuid4().hex[:8]}")
    key = await cms_api.key_for(org)
    id, _ = await _twin(cms_api, key)
    await cms_api.data(PUBLISH, {"id": id}, key=key)
    await cms_api.data(SAVE, {"id": id, "data": {"views": 8}}, key=key)
    await revoked(org, id, key)
    served = endpoint.written_at_once
    payload = await cms_api(PUBLISH, {"id": id}, key=key)
    assert payload["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert endpoint.written_at_once == served
    state = await _state(cms_api, id)
    assert state[3]["views"] == 3, "the published plane as it was"
    assert [event for _, event, _ in state[6]] == ["draft", "publish", "draft"]


async def test_a_save_at_once_writes_nothing_once_the_row_it_read_has_changed(
    cms_api: GraphQLClient,
) -> None:
    """Between the read and the write of a save at once, another writer saves: the write finds
    the row no longer the version it read and writes nothing, neither the row nor a version nor
    the reference index (the whole statement fails), and the save then runs locked."""
    services = cms_api.services
    documents = services.adapter
    org = await cms_api.org_named(f"s-{uuid.uuid4().hex[:8]}")
    key = await cms_api.key_for(org)
    id, _ = await _twin(cms_api, key)
    await cms_api.data(SAVE, {"id": id, "data": {"views": 5}}, key=key)  # the caller is known
    known = known_callers.fresh(parse_credential(f"Bearer {key}", None))
    assert known is not None
    opening = known_run_arguments(known, documents.tenancy)
    read = await documents.read_for_save_at_once(
        documents.database, opening, cancel_after=None, id=uuid.UUID(id)
    )
    assert read is not None
    assert read.seen is not None
    await cms_api.data(SAVE, {"id": id, "data": {"views": 6}}, key=key)
    before = await _state(cms_api, id)
    category = (await cms_api.data(CREATE_CATEGORY, key=key))["createCategory"]["id"]
    data = {
        **POST,
        "views": 7,
        "categories": [{"_type": "reference", "_ref": category, "_key": "c"}],
    }
    post = services.api.collections.post
    _, draft_hash, references, _ = post._prepare(services.api.model.registry, data, publish=False)
    with pytest.raises(NotWritten):
        await documents.save_draft_at_once(
            documents.database,
            opening,
            cancel_after=None,
            document=read,
            data=data,
            draft_hash=draft_hash,
            references=references,
        )
    assert await _state(cms_api, id) == before
    async with services.api.system_context(org) as ctx:
        indexed = await ctx.tx.fetchval(
            "SELECT count(*) FROM cms_document_references WHERE referencer_id = $1",
            uuid.UUID(id),
        )
    assert indexed == 0
    # The same write on a fresh read goes ahead.
    fresh = await documents.read_for_save_at_once(
        documents.database, opening, cancel_after=None, id=uuid.UUID(id)
    )
    assert fresh is not None
    written = await documents.save_draft_at_once(
        documents.database,
        opening,
        cancel_after=None,
        document=fresh,
        data=data,
        draft_hash=draft_hash,
        references=references,
    )
    assert written.revision == before[1] + 1
    after = await _state(cms_api, id)
    assert after[2]["views"] == 7
    assert len(after[6]) == len(before[6]) + 1


# --- a save of the document this process wrote last ----------------------------------------------

SAVE_AT = (
    "mutation($id: ID!, $data: JSON!, $rev: Int) {"
    " updatePost(id: $id, data: $data, expectedRevision: $rev) { id revision } }"
)


async def _kept_post(gql: GraphQLClient) -> tuple[uuid.UUID, str, str, int]:
    """A post of a new organization, saved once by its owner's key: this process wrote it last."""
    org = await gql.org_named(f"w-{uuid.uuid4().hex[:8]}")
    key = await gql.key_for(org)
    id, _ = await _twin(gql, key)
    saved = await gql.data(SAVE, {"id": id, "data": {"views": 4}}, key=key)
    return org, key, id, saved["updatePost"]["revision"]


async def _statements(gql: GraphQLClient, query: str, variables: Any, key: str) -> tuple[int, Any]:
    database = gql.services.adapter.database
    before = database.statements
    payload = await gql(query, variables, key=key)
    return database.statements - before, payload


async def test_a_save_of_a_document_this_process_wrote_last_does_not_read_it_first(
    cms_api: GraphQLClient,
) -> None:
    """Saves and publishes of a published post in turn, as an editor makes them: after the first
    save, each save is one statement (the write at once, on the row as this process left it), as
    is each publish, and the result is what the locked writes leave."""
    _org, key, id, _ = await _kept_post(cms_api)
    await cms_api.data(PUBLISH, {"id": id}, key=key)  # in a unit of work: not yet publishable
    revision = (await cms_api.data(SAVE, {"id": id, "data": {"views": 5}}, key=key))["updatePost"][
        "revision"
    ]
    for step in range(4):
        variables = {"id": id, "data": {"views": 10 + step}, "rev": revision}
        count, payload = await _statements(cms_api, SAVE_AT, variables, key)
        assert "errors" not in payload, payload
        revision = payload["data"]["updatePost"]["revision"]
        assert count == 1
        if step % 2:
            count, _ = await _statements(cms_api, PUBLISH, {"id": id}, key)
            assert count == 1
    _status, revision_now, draft, published, _, _, versions = await _state(cms_api, id)
    assert (revision_now, draft["views"], draft["title"]) == (revision, 13, "Twin")
    assert published["views"] == 13
    assert [number for number, _, _ in versions] == list(range(1, len(versions) + 1))
    assert [event for _, event, _ in versions] == [
        "draft", "draft", "publish", "draft", "draft", "draft", "publish", "draft", "draft",
        "publish",
    ]  # fmt: skip


@pytest.mark.parametrize("change", ["save", "publish"])
async def test_a_save_after_another_process_wrote_the_document_reads_it(
    cms_api: GraphQLClient, change: str
) -> None:
    """What this process kept of the document is stale: the write at once finds the row another
    version and writes nothing, and the save reads the document and merges into its newest draft."""
    org, key, id, _ = await _kept_post(cms_api)
    await _in_another_process(cms_api, org, id, change)
    before = await _state(cms_api, id)
    count, payload = await _statements(cms_api, SAVE, {"id": id, "data": {"title": "After"}}, key)
    assert "errors" not in payload, payload
    assert count == 3  # the write that found another row version, the read, the write
    _status, revision, draft, _, _, _, versions = await _state(cms_api, id)
    assert revision == before[1] + 1
    expected_views = 9 if change == "save" else 4
    assert (draft["title"], draft["views"]) == ("After", expected_views)
    assert [number for number, _, _ in versions] == list(range(1, len(versions) + 1))
    assert len(versions) == len(before[6]) + 1


async def test_a_stale_expected_revision_is_refused_though_this_process_kept_it(
    cms_api: GraphQLClient,
) -> None:
    """The revision the client expects is the one this process kept, but another process saved
    since: a conflict, as from the locked save, and nothing written."""
    org, key, id, revision = await _kept_post(cms_api)
    await _in_another_process(cms_api, org, id, "save")
    before = await _state(cms_api, id)
    payload = await cms_api(SAVE_AT, {"id": id, "data": {"views": 1}, "rev": revision}, key=key)
    assert payload["errors"][0]["extensions"]["code"] == "CONFLICT"
    assert await _state(cms_api, id) == before


async def test_a_save_of_what_this_process_last_wrote_is_written_when_the_draft_moved(
    cms_api: GraphQLClient,
) -> None:
    """The data is what this process last wrote, so the kept draft says there is nothing to
    write; but another process saved since, and only a read can tell: the save writes it."""
    org, key, id, _ = await _kept_post(cms_api)
    await _in_another_process(cms_api, org, id, "save")  # views 9
    await cms_api.data(SAVE, {"id": id, "data": {"views": 4}}, key=key)
    assert (await _state(cms_api, id))[2]["views"] == 4


async def test_a_kept_save_indexes_a_reference_whose_target_appeared_since(
    cms_api: GraphQLClient,
) -> None:
    """A reference to a document that does not exist yet is saved (a weak reference: the index
    leaves it out). Once the target exists, the next save, at once on the row this process left,
    indexes it: the index this process kept was not taken for the whole of the references."""
    org, key, id, _ = await _kept_post(cms_api)
    target = uuid.uuid4()
    author = {"_type": "reference", "_ref": str(target)}
    await cms_api.data(SAVE, {"id": id, "data": {"author": author}}, key=key)
    async with cms_api.services.api.system_context(org) as ctx:
        await cms_api.services.api.collections.author.create(ctx, {"name": "Late"}, id=target)
    count, payload = await _statements(cms_api, SAVE, {"id": id, "data": {"views": 12}}, key)
    assert "errors" not in payload, payload
    assert count == 1
    async with cms_api.services.api.system_context(org) as ctx:
        indexed = await ctx.tx.fetch(
            "SELECT ref_id, plane FROM cms_document_references WHERE referencer_id = $1",
            uuid.UUID(id),
        )
    assert [tuple(row) for row in indexed] == [(target, "draft")]


async def test_saves_on_what_this_process_kept_prune_old_drafts_as_locked_saves_do(
    cms_api: GraphQLClient,
) -> None:
    """Whether a save prunes old drafts follows from the versions the document has: a save on the
    row this process kept knows it from the version its previous write numbered."""
    cms_api.services.adapter.version_retention = 3
    org = await cms_api.org_named(f"v-{uuid.uuid4().hex[:8]}")
    key = await cms_api.key_for(org)
    id, _ = await _twin(cms_api, key)
    await cms_api.data(PUBLISH, {"id": id}, key=key)
    for views in range(1, 6):
        count, payload = await _statements(cms_api, SAVE, {"id": id, "data": {"views": views}}, key)
        assert "errors" not in payload, payload
        assert count == (2 if views == 1 else 1)
    versions = (await _state(cms_api, id))[6]
    assert [(number, event) for number, event, _ in versions] == [
        (2, "publish"),
        (5, "draft"),
        (6, "draft"),
        (7, "draft"),
    ]


async def test_another_organization_never_saves_on_what_this_process_kept(
    cms_api: GraphQLClient,
) -> None:
    """The row this process kept belongs to its organization: another organization's key
    saving the same id is answered as always (no such document), and nothing is written."""
    _, _, id, revision = await _kept_post(cms_api)
    stranger = await cms_api.key_for(await cms_api.org_named(f"x-{uuid.uuid4().hex[:8]}"))
    before = await _state(cms_api, id)
    payload = await cms_api(
        SAVE_AT, {"id": id, "data": {"views": 1}, "rev": revision}, key=stranger
    )
    assert payload["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert await _state(cms_api, id) == before


async def test_a_session_that_lost_a_kept_statement_prepares_it_again(
    cms_api: GraphQLClient,
) -> None:
    """On a connection of its own the server says whether the session has the kept statement,
    which then runs without an exception block. Should the session have lost it, the call
    writes nothing (the request would take the unit of work) and the next one prepares it."""
    documents = cms_api.services.adapter
    org = await cms_api.org_named(f"k-{uuid.uuid4().hex[:8]}")
    key = await cms_api.key_for(org)
    id, _ = await _twin(cms_api, key)
    known = known_callers.fresh(parse_credential(f"Bearer {key}", None))
    assert known is not None
    opening = known_run_arguments(known, documents.tenancy)
    database = Database(documents.database.direct_url, pool_size=1)
    await database.connect()
    try:

        async def read() -> DocumentRow | None:
            return await documents.read_for_save_at_once(
                database, opening, cancel_after=None, id=uuid.UUID(id)
            )

        first = await read()
        assert first is not None
        async with database.session() as conn:
            [name] = conn.kept_prepared
            await conn.execute(f"DEALLOCATE {name}")
        with pytest.raises(NotWritten):
            await read()
        again = await read()
        assert again == first
        async with database.session() as conn:
            assert conn.kept_prepared == {name}
            prepared = await conn.fetchval(
                "SELECT count(*) FROM pg_prepared_statements WHERE name = $1", name
            )
        assert prepared == 1
    finally:
        await database.disconnect()
