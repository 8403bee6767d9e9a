"""Back-references over HTTP: `referencedBy` on every document type, and in delete answers.

Answered from the reference index (`cms_document_references`): by the compiled read path, in the
read's one statement, and by the resolvers (`RequestContext.referenced_by`), which answer what the
compiled path turns down (errors, a published-only key asking for drafts). Both answer alike
(`test_referenced_by_is_read_compiled_as_the_resolvers_answer`, and the differential test of
`tests/test_compiled_reads.py`).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.both_paths import both_paths, in_order
from tests.conftest import GraphQLClient

BACK = """query($id: ID!, $p: String, $bp: String, $limit: Int, $offset: Int) {
  author(id: $id, perspective: $p) { name referencedBy(perspective: $bp, limit: $limit,
    offset: $offset) { totalDocs limit offset page totalPages hasNextPage hasPrevPage
    docs { __typename id type status ... on Post { title author { name } } ... on Author { name } }
  } } }"""


async def create(
    gql: GraphQLClient,
    type_name: str,
    data: dict[str, Any],
    *,
    publish: bool = True,
    key: str = "default",
) -> str:
    cls = type_name[0].upper() + type_name[1:]
    result = await gql.data(
        f"mutation($d: {cls}DataInput!, $p: Boolean) {{ create{cls}(data: $d, publish: $p) {{ id }} }}",
        {"d": data, "p": publish},
        key=key,
    )
    return str(result[f"create{cls}"]["id"])


async def post(gql: GraphQLClient, title: str, author: str, **kw: Any) -> str:
    slug = title.lower().replace(" ", "-")
    return await create(gql, "post", {"title": title, "slug": slug, "author": author}, **kw)


async def back(gql: GraphQLClient, id: str, key: str = "default", **variables: Any) -> Any:
    payload = await gql(BACK, {"id": id, **variables}, key=key)
    assert "errors" not in payload, payload
    return payload["data"]["author"]


def titles(page: dict[str, Any]) -> list[str]:
    return [doc.get("title") or doc.get("name") for doc in page["docs"]]


async def test_referenced_by_lists_the_referencing_documents_in_the_perspective(
    cms_api: GraphQLClient,
) -> None:
    ada = await create(cms_api, "author", {"name": "Ada"})
    await post(cms_api, "One", ada)
    await post(cms_api, "Two", ada, publish=False)
    await create(cms_api, "author", {"name": "Grace", "mentor": ada})
    await post(cms_api, "Other", await create(cms_api, "author", {"name": "Linus"}))

    published = (await back(cms_api, ada))["referencedBy"]
    assert sorted(titles(published)) == ["Grace", "One"]
    assert published["totalDocs"] == 2
    assert {d["__typename"] for d in published["docs"]} == {"Post", "Author"}
    assert all(d["status"] == "published" for d in published["docs"])
    # Read in the draft perspective, the default follows it: the draft-only post shows too.
    drafts = (await back(cms_api, ada, p="draft"))["referencedBy"]
    assert sorted(titles(drafts)) == ["Grace", "One", "Two"]
    # Most recently updated first; their own references are inlined as the selection reads them
    # (depth 0 by default: stubs).
    assert titles(drafts)[0] == "Grace"
    one = next(d for d in drafts["docs"] if d.get("title") == "One")
    assert one["author"] == {"name": None}

    # Pages.
    first = (await back(cms_api, ada, p="draft", limit=2))["referencedBy"]
    rest = (await back(cms_api, ada, p="draft", limit=2, offset=2))["referencedBy"]
    assert (first["totalDocs"], first["totalPages"], first["hasNextPage"]) == (3, 2, True)
    assert (rest["page"], rest["hasNextPage"], rest["hasPrevPage"]) == (2, False, True)
    assert titles(first) + titles(rest) == titles(drafts)
    past = (await back(cms_api, ada, p="draft", limit=2, offset=5))["referencedBy"]
    assert (past["docs"], past["totalDocs"]) == ([], 3)


async def test_a_draft_that_drops_a_reference_leaves_the_published_one(
    cms_api: GraphQLClient,
) -> None:
    ada = await create(cms_api, "author", {"name": "Ada"})
    bob = await create(cms_api, "author", {"name": "Bob"})
    one = await post(cms_api, "One", ada)
    await cms_api.data(
        'mutation($id: ID!, $a: String) { updatePost(id: $id, data: {author: {_type: "reference",'
        " _ref: $a}}) { id } }",
        {"id": one, "a": bob},
    )
    assert titles((await back(cms_api, ada))["referencedBy"]) == ["One"]
    assert titles((await back(cms_api, ada, bp="draft"))["referencedBy"]) == []
    assert titles((await back(cms_api, bob, bp="draft"))["referencedBy"]) == ["One"]
    assert titles((await back(cms_api, bob))["referencedBy"]) == []


async def test_tenants_never_see_each_others_back_references(cms_api: GraphQLClient) -> None:
    child = await cms_api.org_named("child", cms_api.org)
    child_key = await cms_api.key_for(child)
    other_key = await cms_api.key_for(await cms_api.org_named("other"))
    author = await create(cms_api, "author", {"name": "Child's"}, key=child_key)
    await post(cms_api, "By the child", author, key=child_key)
    # The parent may read its child's documents, and so reference them.
    await post(cms_api, "By the parent", author)

    from_child = (await back(cms_api, author, key=child_key))["referencedBy"]
    assert titles(from_child) == ["By the child"]
    assert from_child["totalDocs"] == 1
    from_parent = (await back(cms_api, author))["referencedBy"]
    assert sorted(titles(from_parent)) == ["By the child", "By the parent"]
    # Another tenant cannot read the document at all, nor ask the local API about it.
    assert (await cms_api(BACK, {"id": author}, key=other_key))["data"]["author"] is None
    api = cms_api.services.api
    async with api.context(
        await cms_api.org_named("third"), capabilities=frozenset({"document.read"})
    ) as ctx:
        with pytest.raises(Exception) as refused:
            await api.get_back_references(ctx, author)
        assert getattr(refused.value, "code", None) == "NOT_FOUND"


async def test_delete_and_unpublish_answers_say_which_references_break(
    cms_api: GraphQLClient,
) -> None:
    ada = await create(cms_api, "author", {"name": "Ada"})
    await post(cms_api, "Published", ada)
    await post(cms_api, "Draft", ada, publish=False)

    unpublished = await cms_api.data(
        """mutation($id: ID!) { unpublishAuthor(id: $id) { status
             referencedBy(perspective: "published") { totalDocs docs { ... on Post { title } } } } }""",
        {"id": ada},
    )
    assert unpublished["unpublishAuthor"]["status"] == "draft"
    assert titles(unpublished["unpublishAuthor"]["referencedBy"]) == ["Published"]

    deleted = await cms_api.data(
        """mutation($id: ID!) { deleteAuthor(id: $id) { success id
             referencedBy { totalDocs docs { __typename id ... on Post { title } } } } }""",
        {"id": ada},
    )
    answer = deleted["deleteAuthor"]
    assert (answer["success"], answer["id"]) == (True, ada)
    assert sorted(titles(answer["referencedBy"])) == ["Draft", "Published"]
    # Those references now read as stubs.
    left = await cms_api.data(
        '{ allPost(perspective: "draft") { title author { _resolved _ref } } }'
    )
    assert {p["title"]: p["author"] for p in left["allPost"]} == {
        "Published": {"_resolved": False, "_ref": ada},
        "Draft": {"_resolved": False, "_ref": ada},
    }


async def _both_ways(
    gql: GraphQLClient, query: str, variables: dict[str, Any], key: str = "default"
) -> tuple[Any, Any, int]:
    """The answers of the compiled path and of the resolvers (keys in order), and how many
    requests the compiled path served."""
    endpoint = gql.app.state.graphql
    before = endpoint.compiled_served
    compiled, reference = await both_paths(gql, query, variables, key)
    served = endpoint.compiled_served - before
    return in_order(compiled.content), in_order(reference.content), served


async def test_referenced_by_is_read_compiled_as_the_resolvers_answer(
    cms_api: GraphQLClient,
) -> None:
    ada = await create(cms_api, "author", {"name": "Ada"})
    one = await post(cms_api, "One", ada)
    await post(cms_api, "Two", ada, publish=False)
    await create(cms_api, "author", {"name": "Grace", "mentor": ada})
    # A cycle through the back-references: One's author reads One among Ada's referrers again.
    deep = (
        "query($id: ID!) { post(id: $id, depth: 2) { title author { name"
        " referencedBy(depth: 1) { totalDocs docs { __typename ... on Post { title"
        ' author { name referencedBy(perspective: "draft") { totalDocs } } } } } } } }'
    )
    stub = (
        "query($id: ID!) { post(id: $id, depth: 0) { author { _resolved"
        " referencedBy(limit: 500, offset: 3) { totalDocs limit offset page totalPages"
        " hasNextPage hasPrevPage docs { id } } } } }"
    )
    fragment = (
        '{ allPost(perspective: "draft") { title author { ...A } } }'
        " fragment A on Author { name again: referencedBy(limit: 1, offset: 1) { docs { id } }"
        " referencedBy { docs { id ... on Author { name } } } }"
    )
    asked: list[tuple[str, dict[str, Any]]] = [
        (BACK, {"id": ada}),
        (BACK, {"id": ada, "p": "draft"}),
        (BACK, {"id": ada, "bp": "draft", "limit": 1, "offset": 1}),
        (BACK, {"id": ada, "bp": "published", "limit": 2, "offset": 5}),
        (BACK, {"id": one}),  # not an author: null
        (deep, {"id": one}),
        (stub, {"id": one}),
        (fragment, {}),
    ]
    for query, variables in asked:
        compiled, reference, served = await _both_ways(cms_api, query, variables)
        assert compiled == reference, (query, variables)
        assert served == 1, query
        assert not any(key == "errors" for key, _ in compiled)
    # Arguments the checks refuse, answered (with their errors) by the resolvers.
    for variables in (
        {"id": ada, "bp": "nope"},
        {"id": ada, "limit": 0},
        {"id": ada, "offset": -1},
    ):
        compiled, reference, served = await _both_ways(cms_api, BACK, variables)
        assert (compiled, served) == (reference, 0)
        assert "BAD_USER_INPUT" in repr(compiled)
    # A singleton's own, which the resolvers answer (the empty singleton's: NOT_FOUND).
    own = "{ siteSettings { siteName referencedBy { totalDocs } } }"
    compiled, reference, served = await _both_ways(cms_api, own, {})
    assert (compiled, served) == (reference, 0)
    assert cms_api.app.state.graphql.compiled_failures == 0


async def test_published_only_keys_read_published_back_references_only(
    cms_api: GraphQLClient,
) -> None:
    ada = await create(cms_api, "author", {"name": "Ada"})
    await post(cms_api, "One", ada)
    await post(cms_api, "Two", ada, publish=False)
    public = await cms_api.key_for(cms_api.org, published_only=True)
    assert titles((await back(cms_api, ada, key=public))["referencedBy"]) == ["One"]
    refused = await cms_api(BACK, {"id": ada, "bp": "draft"}, key=public)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_the_local_api_answers_back_references(cms_api: GraphQLClient) -> None:
    ada = await create(cms_api, "author", {"name": "Ada"})
    one = await post(cms_api, "One", ada)
    api = cms_api.services.api
    async with api.system_context(cms_api.org) as ctx:
        found = await api.get_back_references(ctx, ada, depth=1)
        assert [doc["id"] for doc in found.items] == [one]
        assert found.items[0]["author"]["name"] == "Ada"
        assert found.total == 1
        assert (await api.get_back_references(ctx, one)).total == 0


LIST = """query($bp: String, $limit: Int, $offset: Int) {
  allAuthor(sort: ["name"], perspective: "draft") { name
    referencedBy(perspective: $bp, limit: $limit, offset: $offset) {
      totalDocs limit offset page totalPages hasNextPage hasPrevPage
      docs { __typename id type status ... on Post { title author { name } } ... on Author { name } }
    }
    again: referencedBy(perspective: "draft", limit: 1, depth: 1) {
      totalDocs docs { ... on Post { title author { name } } }
    }
  } }"""


async def _statements_of(
    gql: GraphQLClient, query: str, variables: dict[str, Any]
) -> tuple[Any, int]:
    database = gql.services.adapter.database
    before = database.statements
    payload = await gql(query, variables)
    assert "errors" not in payload, payload
    return payload["data"], database.statements - before


async def _authors_and_their_referrers(gql: GraphQLClient, suffix: str) -> dict[str, str]:
    """Ada (two posts, one a draft, and a mentee), Bea (three posts), Cy and Dot (none)."""
    authors = {}
    for name in ("Ada", "Bea", "Cy"):
        authors[name + suffix] = await create(gql, "author", {"name": name + suffix})
    await post(gql, "Ada one" + suffix, authors["Ada" + suffix])
    await post(gql, "Ada two" + suffix, authors["Ada" + suffix], publish=False)
    mentee = {"name": "Dot" + suffix, "mentor": authors["Ada" + suffix]}
    authors["Dot" + suffix] = await create(gql, "author", mentee)
    for title in ("one", "two", "three"):
        await post(gql, f"Bea {title}{suffix}", authors["Bea" + suffix])
    return authors


@pytest.mark.parametrize(
    "page",
    [{}, {"limit": 1}, {"limit": 1, "offset": 1}, {"limit": 2, "offset": 5}, {"bp": "draft"}],
)
async def test_a_list_reads_every_documents_back_references_together(
    cms_api: GraphQLClient, page: dict[str, Any]
) -> None:
    authors = await _authors_and_their_referrers(cms_api, "")
    _, statements = await _statements_of(cms_api, LIST, page)
    authors |= await _authors_and_their_referrers(cms_api, " 2")
    listed, statements_for_twice_as_many = await _statements_of(cms_api, LIST, page)

    # The statements do not grow with the documents: two batches (the aliases' arguments differ),
    # each a fixed number of reads.
    assert statements_for_twice_as_many == statements
    # Each document's page is what asking for that document alone answers ...
    assert len(listed["allAuthor"]) == 8
    for author in listed["allAuthor"]:
        alone = await back(cms_api, authors[author["name"]], p="draft", **page)
        assert author["referencedBy"] == alone["referencedBy"]
    # ... inlined to the depth asked (the most recent referencing document of each: Dot, an
    # author, selects no post fields).
    assert {a["name"]: a["again"]["docs"] for a in listed["allAuthor"]} == {
        **{f"Ada{s}": [{}] for s in ("", " 2")},
        **{
            f"Bea{s}": [{"title": f"Bea three{s}", "author": {"name": f"Bea{s}"}}]
            for s in ("", " 2")
        },
        **{f"{name}{s}": [] for name in ("Cy", "Dot") for s in ("", " 2")},
    }


async def test_a_refused_back_reference_read_in_a_list_is_a_coded_error(
    cms_api: GraphQLClient,
) -> None:
    for name in ("Ada", "Bea"):
        await create(cms_api, "author", {"name": name})
    public = await cms_api.key_for(cms_api.org, published_only=True)
    query = '{ allAuthor { name referencedBy(perspective: "%s") { totalDocs } } }'
    refused = await cms_api(query % "draft", key=public)
    bad = await cms_api(query % "bogus")
    for payload, code in ((refused, "FORBIDDEN"), (bad, "BAD_USER_INPUT")):
        # The page is not nullable: the first document's error nulls the list, and the response.
        assert payload["data"] is None
        [error] = payload["errors"]
        assert (error["path"], error["extensions"]["code"]) == (
            ["allAuthor", 0, "referencedBy"],
            code,
        )


async def test_the_local_api_answers_many_documents_at_once(cms_api: GraphQLClient) -> None:
    ada = await create(cms_api, "author", {"name": "Ada"})
    bea = await create(cms_api, "author", {"name": "Bea"})
    one = await post(cms_api, "One", ada)
    two = await post(cms_api, "Two", bea, publish=False)
    other_key = await cms_api.key_for(await cms_api.org_named("other"))
    theirs = await create(cms_api, "author", {"name": "Theirs"}, key=other_key)
    missing = "00000000-0000-4000-8000-000000000000"
    api = cms_api.services.api
    async with api.context(cms_api.org, capabilities=frozenset({"document.read"})) as ctx:
        pages = await api.back_references_of(
            ctx, [ada, missing, bea, theirs, ada], perspective="draft", depth=1
        )
    # In the order asked, a document asked twice answered twice, and None where the caller may
    # not read the document (another tenant's) or there is none.
    assert [None if page is None else [doc["id"] for doc in page.items] for page in pages] == [
        [one],
        None,
        [two],
        None,
        [one],
    ]
    assert pages[2] is not None
    assert pages[2].items[0]["author"]["name"] == "Bea"  # inlined to the depth asked
