"""Which operations the resolver path may run on a read replica (`server/graphql/routing.py`)."""

from __future__ import annotations

from typing import Any

import pytest

from server.graphql.routing import published_reads_only
from server.query.plan import RootField

ROOTS = {
    "post": RootField("one", "post"),
    "allPost": RootField("all", "post"),
    "allPostPage": RootField("page", "post"),
    "siteSettings": RootField("singleton", "siteSettings"),
    "documents": RootField("documents", None),
}


@pytest.mark.parametrize(
    ("query", "variables", "expected"),
    [
        ("{ allPost { title } }", None, True),
        ('{ allPost(perspective: "published") { title } }', None, True),
        ("{ allPost(perspective: null) { title } }", None, True),
        ('{ a: allPost { title } b: post(id: "x") { title } siteSettings { id } }', None, True),
        ("{ allPost { title referencedBy { totalDocs } } }", None, True),
        ('{ documents(type: "post") { id } }', None, True),
        ("query { ...F } fragment F on Query { allPost { title } }", None, True),
        ('{ allPost(perspective: "draft") { title } }', None, False),
        ('{ allPost { title } b: allPost(perspective: "draft") { title } }', None, False),
        ('{ ... on Query { siteSettings(perspective: "draft") { id } } }', None, False),
        (
            'query { ...F } fragment F on Query { allPost(perspective: "draft") { id } }',
            None,
            False,
        ),
        ("query($p: String) { allPost(perspective: $p) { title } }", None, True),
        ("query($p: String) { allPost(perspective: $p) { title } }", {"p": "published"}, True),
        ("query($p: String) { allPost(perspective: $p) { title } }", {"p": "draft"}, False),
        ('query($p: String = "draft") { allPost(perspective: $p) { title } }', None, False),
        ('query($p: String = "draft") { allPost(perspective: $p) { id } }', {"p": None}, True),
        # Not document reads: version history, assets, access, introspection, mutations.
        ('{ documentVersions(id: "x") { totalVersions } }', None, False),
        ("{ allPost { title } me { id } }", None, False),
        ("{ assets { totalDocs } }", None, False),
        ("{ __schema { queryType { name } } }", None, False),
        ("{ __typename }", None, False),
        ('mutation { publishPost(id: "x") { id } }', None, False),
        ("{ allPost { title ", None, False),
        ("query A { allPost { id } } query B { me { id } }", None, False),
    ],
)
def test_published_reads_only(query: str, variables: dict[str, Any] | None, expected: bool) -> None:
    assert published_reads_only(query, None, variables, ROOTS) is expected


def test_the_chosen_operation_decides() -> None:
    query = "query A { allPost { id } } query B { me { id } }"
    assert published_reads_only(query, "A", None, ROOTS)
    assert not published_reads_only(query, "B", None, ROOTS)
