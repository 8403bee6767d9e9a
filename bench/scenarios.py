"""The scenarios: the GraphQL request each one sends, and the floor route that answers it.

Every request is a POST of the same JSON body to both servers: the API reads the query, the floor
only the variables. Q4 and W1 take a post id (and W1 the document's revision) per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

Kind = Literal["fixed", "by_id", "write"]

_POST_FIELDS = "id title slug views rating tags publishedDate"

# A read request is one statement in all: `cms_read` checks the credential, scopes the organization
# and runs the compiled read. A write first runs "the opening": BEGIN, the credential check (which
# also confirms the caller's facts the process kept) and the organization scope, in one round trip;
# but W1's publish, of the draft the process just saved, is one statement in all, which opens the
# request, publishes and commits (`cms_write_known_run`). Must match `READ` and `OPENING` in
# tests/test_statement_counts.py, which asserts the same counts.
OPENING_STATEMENTS = 1


def opening_statements(kind: str) -> int:
    """The statements of a request of this kind that open it, before the scenario's own."""
    return OPENING_STATEMENTS if kind == "write" else 0


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    query: str
    kind: Kind
    depth: int
    # A list query, else a single document; a read is one statement beyond the opening either way.
    is_list: bool
    # W1 only: the second request of the pair.
    second_query: str | None = None

    @property
    def floor_path(self) -> str:
        return f"/{self.name.lower()}"

    def body(self, variables: dict[str, Any] | None = None, *, second: bool = False) -> bytes:
        query = self.second_query if second else self.query
        payload: dict[str, Any] = {"query": query}
        if variables is not None:
            payload["variables"] = variables
        return orjson.dumps(payload)


def update_variables(post_id: str, revision: int, rating: float) -> dict[str, Any]:
    """W1's draft save: a new rating, guarded by the revision the client last saw."""
    return {"id": post_id, "data": {"rating": rating}, "revision": revision}


SCENARIOS = (
    Scenario(
        name="Q1",
        title='allPost(limit: 20, sort: "-publishedDate", depth: 0), scalar fields',
        query=f'{{ allPost(limit: 20, sort: ["-publishedDate"], depth: 0) {{ {_POST_FIELDS} }} }}',
        kind="fixed",
        depth=0,
        is_list=True,
    ),
    Scenario(
        name="Q2",
        title="Q1 at depth 2: author { name mentor { name } }, categories { title parent { title } }",
        query=(
            f'{{ allPost(limit: 20, sort: ["-publishedDate"], depth: 2) {{ {_POST_FIELDS}'
            " author { name mentor { name } } categories { title parent { title } } } }"
        ),
        kind="fixed",
        depth=2,
        is_list=True,
    ),
    Scenario(
        name="Q3",
        title='allPost(where: {title: {contains: "a"}, views: {greater_than: 500}}, limit: 20)',
        query=(
            '{ allPost(where: {title: {contains: "a"}, views: {greater_than: 500}}, limit: 20,'
            f" depth: 0) {{ {_POST_FIELDS} }} }}"
        ),
        kind="fixed",
        depth=0,
        is_list=True,
    ),
    Scenario(
        name="Q4",
        title="post(id) at depth 1 for random ids: author { name }, categories { title }",
        query=(
            f"query($id: ID!) {{ post(id: $id, depth: 1) {{ {_POST_FIELDS}"
            " author { name } categories { title } } }"
        ),
        kind="by_id",
        depth=1,
        is_list=False,
    ),
    Scenario(
        name="Q5",
        title="allAuthor(limit: 20, depth: 5), mentor { name } five levels down",
        query=(
            "{ allAuthor(limit: 20, depth: 5) { id name" + " mentor { name" * 5 + " }" * 5 + " } }"
        ),
        kind="fixed",
        depth=5,
        is_list=True,
    ),
    Scenario(
        name="W1",
        title="updatePost(data, expectedRevision) then publishPost, random ids",
        query=(
            "mutation($id: ID!, $data: JSON!, $revision: Int) {"
            " updatePost(id: $id, data: $data, expectedRevision: $revision) { id revision } }"
        ),
        second_query="mutation($id: ID!) { publishPost(id: $id) { id revision } }",
        kind="write",
        depth=2,
        is_list=False,
    ),
)
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}
