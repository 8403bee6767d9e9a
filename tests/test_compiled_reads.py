"""The compiled read path against the resolver path: the same answers for generated queries.

`server/query/` answers content queries with one SQL statement; the resolvers (Strawberry over the
local API) remain runnable with `COMPILED_READS=false` and are the reference. Hypothesis generates
queries over a corpus built to be awkward: reference cycles of every length, targets that are
missing, of the wrong type (stored before saves checked it, or left by a schema change that
narrowed a field's `to`, in typed and JSON fields alike), draft-only, in another tenant, in a
parent or a child organization; values of the wrong shape for their field (as after a schema
change); dates and datetimes in odd forms. Each query runs through both paths as one of three
organizations of a tree, and the JSON must be equal: the same keys in the same order, the same
values (numbers compared as decimals).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from graphql import (
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    get_named_type,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.both_paths import both_paths, in_order
from tests.conftest import GraphQLClient

pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")

# An object type whose fields hold references, one of them in a JSON field (a mixed array).
TEASER = {
    "type": "object",
    "name": "teaser",
    "title": "Teaser",
    "fields": [
        {"name": "label", "type": "string"},
        {"name": "target", "type": "reference", "to": [{"type": "post"}]},
        {
            "name": "extra",
            "type": "array",
            "of": [
                {"type": "reference", "to": [{"type": "author"}]},
                {"type": "object", "name": "aside", "fields": [{"name": "text", "type": "string"}]},
            ],
        },
    ],
}

# A test type with what the example model lacks: references to several types (unions), a date,
# an integer, a float, mixed arrays, rich text with a custom object, and references in JSON fields
# and named objects.
MENU = {
    "type": "document",
    "name": "menu",
    "title": "Menu",
    "fields": [
        {"name": "title", "type": "string"},
        {"name": "target", "type": "reference", "to": [{"type": "page"}, {"type": "post"}]},
        {
            "name": "items",
            "type": "array",
            "of": [{"type": "reference", "to": [{"type": "author"}, {"type": "category"}]}],
        },
        {"name": "day", "type": "date"},
        {"name": "count", "type": "number", "integer": True},
        {"name": "weight", "type": "number"},
        {"name": "mixed", "type": "array", "of": [{"type": "string"}, {"type": "number"}]},
        {"name": "flags", "type": "array", "of": [{"type": "boolean"}]},
        {
            "name": "links",
            "type": "array",
            "of": [
                {"type": "reference", "to": [{"type": "author"}, {"type": "post"}]},
                {
                    "type": "object",
                    "name": "note",
                    "fields": [
                        {"name": "about", "type": "reference", "to": [{"type": "category"}]},
                        {"name": "teaser", "type": "teaser"},
                    ],
                },
            ],
        },
        {
            "name": "notes",
            "type": "array",
            "of": [
                {"type": "block"},
                {
                    "type": "object",
                    "name": "callout",
                    "fields": [{"name": "see", "type": "reference", "to": [{"type": "post"}]}],
                },
            ],
        },
        {"name": "teaser", "type": "teaser"},
        {"name": "teasers", "type": "array", "of": [{"type": "teaser"}]},
    ],
}

ALL_TYPES = ("author", "category", "page", "post")


def widened(definition: Any) -> Any:
    """`definition` with every reference taking every type: what `to` was before it narrowed."""
    if isinstance(definition, dict):
        return {
            key: [{"type": t} for t in ALL_TYPES] if key == "to" else widened(value)
            for key, value in definition.items()
        }
    if isinstance(definition, list):
        return [widened(item) for item in definition]
    return definition


def ref(target: uuid.UUID | str, key: str | None = None) -> dict[str, str]:
    value = {"_type": "reference", "_ref": str(target)}
    return {**value, "_key": key} if key else value


@dataclass
class Corpus:
    gql: GraphQLClient
    keys: dict[str, str]
    orgs: dict[str, uuid.UUID]
    ids: dict[str, list[str]] = field(default_factory=dict)  # type -> ids


async def _create(
    gql: GraphQLClient,
    org: uuid.UUID,
    type_name: str,
    data: dict[str, Any],
    *,
    publish: bool = True,
    draft: dict[str, Any] | None = None,
) -> str:
    document_id = uuid.uuid4()
    async with gql.services.api.system_context(org) as ctx:
        collection = gql.services.api.collections[type_name]
        await collection.create(ctx, data, id=document_id, publish=publish)
        if draft is not None:
            await collection.update(ctx, document_id, draft)
    return str(document_id)


async def _raw(gql: GraphQLClient, document_id: str, column: str, data: dict[str, Any]) -> None:
    """Store data the validator would refuse: what a schema change leaves behind."""
    async with gql.services.adapter.system_context() as tx:
        await tx.execute(
            f"UPDATE cms_documents SET {column} = {column} || $2::jsonb WHERE id = $1",
            uuid.UUID(document_id),
            data,
        )


async def _stored(gql: GraphQLClient, document_id: str, data: dict[str, Any]) -> None:
    """Store references to targets of a type their field does not take: refused on save, but left
    behind in stored data when a field's `to` changes."""
    for column in ("draft_data", "published_data"):
        await _raw(gql, document_id, column, data)


@pytest.fixture
async def corpus(cms_api: GraphQLClient) -> Corpus:
    # Menus are saved while every reference takes every type; the fixture then narrows `to`.
    async with cms_api.services.adapter.instance_transaction() as tx:
        await cms_api.services.model.register(tx, widened(TEASER))
    async with cms_api.services.adapter.instance_transaction() as tx:
        await cms_api.services.model.register(tx, widened(MENU))
    acme = cms_api.org
    child = await cms_api.org_named("child", acme)
    grandchild = await cms_api.org_named("grandchild", child)
    sibling = await cms_api.org_named("sibling", acme)
    other = await cms_api.org_named("other")
    keys = {
        "acme": cms_api.key,
        "child": await cms_api.key_for(child),
        "other": await cms_api.key_for(other),
    }
    orgs = {"acme": acme, "child": child, "grandchild": grandchild, "sibling": sibling}
    c = Corpus(gql=cms_api, keys=keys, orgs={**orgs, "other": other})
    ids = c.ids

    def add(type_name: str, document_id: str) -> str:
        ids.setdefault(type_name, []).append(document_id)
        return document_id

    async with cms_api.services.adapter.system_context(acme) as tx:
        asset = await tx.fetchval(
            "INSERT INTO cms_assets (organization_id, asset_type, filename, original_filename,"
            " mime_type, size, url, path, width, height, title, metadata)"
            " VALUES ($1, 'image', 'a.png', 'A.png', 'image/png', 10, '/assets/a.png', 'a.png',"
            " 4, 3, 'An image', '{\"lqip\": \"x\"}') RETURNING id",
            acme,
        )
    image = {"_type": "image", "asset": ref(asset), "alt": "alt", "hotspot": {"x": 0.5}}

    # Authors: a self-reference, a 2-cycle, a 3-cycle, a chain into a draft-only author.
    authors = [str(uuid.uuid4()) for _ in range(7)]
    mentors = [0, 2, 1, 4, 5, 3, 0]
    for n in range(6):
        data = {"name": f"Author {n}", "mentor": ref(authors[mentors[n]]), "avatar": image}
        draft = {"name": f"Author {n} (draft)"} if n == 5 else None
        async with cms_api.services.api.system_context(acme) as ctx:
            await cms_api.services.api.collections.author.create(
                ctx, data, id=uuid.UUID(authors[n]), publish=True
            )
            if draft:
                await cms_api.services.api.collections.author.update(ctx, authors[n], draft)
        add("author", authors[n])
    async with cms_api.services.api.system_context(acme) as ctx:
        await cms_api.services.api.collections.author.create(
            ctx,
            {"name": "Draft author", "mentor": ref(authors[0])},
            id=uuid.UUID(authors[6]),
        )
    add("author", authors[6])
    missing = str(uuid.uuid4())

    c0 = add("category", await _create(cms_api, acme, "category", {"title": "Root"}))
    c1 = add(
        "category", await _create(cms_api, acme, "category", {"title": "C1", "parent": ref(c0)})
    )
    c2 = add(
        "category", await _create(cms_api, acme, "category", {"title": "C2", "parent": ref(c1)})
    )
    odd = add("category", await _create(cms_api, acme, "category", {"title": "Odd"}))
    await _stored(cms_api, odd, {"parent": ref(authors[0])})
    add(
        "category",
        await _create(cms_api, acme, "category", {"title": "Lost", "parent": ref(missing)}),
    )

    child_author = add(
        "author",
        await _create(cms_api, child, "author", {"name": "Child", "mentor": ref(authors[0])}),
    )
    child_category = add(
        "category", await _create(cms_api, child, "category", {"title": "Child", "parent": ref(c0)})
    )
    add(
        "author",
        await _create(
            cms_api, grandchild, "author", {"name": "Grand", "mentor": ref(child_author)}
        ),
    )
    add("author", await _create(cms_api, sibling, "author", {"name": "Sibling"}))
    other_post = add(
        "post", await _create(cms_api, other, "post", {"title": "Other", "slug": "other"})
    )
    add(
        "author",
        await _create(cms_api, other, "author", {"name": "Other", "mentor": ref(authors[0])}),
    )

    posts = [str(uuid.uuid4()) for _ in range(7)]
    base = {
        "slug": "p",
        "body": [
            {
                "_type": "block",
                "_key": "b1",
                "style": "normal",
                "children": [{"_type": "span", "_key": "s1", "text": "Hello", "marks": []}],
                "markDefs": [],
            },
            {**image, "_key": "i1"},
        ],
        "coverImage": image,
        "attachment": {"_type": "file", "asset": ref(asset), "caption": "c"},
        "views": 10,
        "rating": 4.5,
        "featured": True,
        "tags": ["a", "b"],
        "publishedDate": "2025-01-02T03:04:05Z",
        "eventDate": "2025-02-28",
        "website": "https://example.com",
        "seo": {"title": "SEO", "noIndex": False},
        "format": "news",
    }
    specs: list[dict[str, Any]] = [
        {
            "title": "Zero",
            "author": ref(authors[1]),
            "categories": [ref(c2, "k1"), ref(missing, "k3"), ref(child_category, "k4")],
            "related": [ref(posts[1], "r1"), ref(posts[0], "r2"), ref(other_post, "r3")],
        },
        {
            "title": "One",
            "author": ref(authors[6]),
            "categories": [ref(c0, "k1")],
            "related": [ref(posts[0], "r1"), ref(posts[2], "r2")],
        },
        {"title": "Two", "author": ref(authors[3]), "related": [ref(posts[3], "r1")]},
        {"title": "Three", "author": ref(authors[4]), "related": [ref(posts[0], "r1")]},
        {"title": "Four", "author": ref(authors[0])},
        {"title": "Five", "author": ref(authors[2]), "categories": [ref(c1, "k1")]},
        {
            "title": "Six",
            "views": 7,
            "publishedDate": "2024-12-31T23:59:59.250+02:00",
            # A list of strings reads as stored: its text must be what the items would make.
            "tags": ['say "hi"', "back\\slash", "caf\u00e9", "\u2028", "", "tab\t"],
        },
    ]
    for n, spec in enumerate(specs):
        data = {**base, **spec, "slug": f"p{n}", "views": spec.get("views", 10 * n)}
        async with cms_api.services.api.system_context(acme) as ctx:
            collection = cms_api.services.api.collections.post
            await collection.create(ctx, data, id=uuid.UUID(posts[n]), publish=n != 2)
            if n in (3, 5):
                await collection.update(ctx, posts[n], {"title": f"{spec['title']} (draft)"})
        add("post", posts[n])
    zero_categories = [ref(c2, "k1"), ref(authors[3], "k2"), ref(missing, "k3")]
    await _stored(cms_api, posts[0], {"categories": [*zero_categories, ref(child_category, "k4")]})
    await _raw(
        cms_api,
        posts[4],
        "published_data",
        {
            "views": 3.0,
            "rating": 3,
            "title": 123,
            "tags": ["a", 5, None],
            "publishedDate": "2025-01-01T10:00:00.5+00:00",
            "eventDate": "2025-02-30",
            "categories": {"not": "an array"},
            "seo": "text",
            "featured": "yes",
            "body": [{"_type": "reference", "_ref": authors[0]}, {"_ref": posts[0]}],
        },
    )
    await _raw(
        cms_api,
        posts[5],
        "published_data",
        {
            "author": ref(authors[0].upper()),
            # Not all strings: an array among them is no string either (JSON path's lax mode
            # would look inside it).
            "tags": ["x", ["y"]],
            "categories": [{"_ref": c0}, {"_type": "foo", "_ref": c0}, {"_ref": "bad"}, 7, None],
            "publishedDate": "2025-01-01T10:00",
            "eventDate": "20250101",
            "views": 3000000000,
            "rating": "x",
            "coverImage": {"_type": "image", "asset": {"_ref": "nope"}},
        },
    )
    await _raw(
        cms_api,
        posts[6],
        "published_data",
        {
            "publishedDate": "2025-13-01T10:00:00Z",
            "views": 2.5,
            "author": "not an object",
            # System keys stored before they were checked: never a reference, never a crash.
            "_ref": posts[0],
            "body": [{"_type": "block", "children": [{"_type": [], "_ref": posts[1]}]}],
            "seo": {"_type": {"a": 1}, "title": "S"},
            # A `_type` of JSON null is not `reference`; an id that is no string, or a reference
            # inside an array where one is expected, is no reference at all.
            "categories": [{"_type": None, "_ref": c0}, {"_ref": 5}, [{"_ref": c0}]],
            "coverImage": {"_type": "image", "asset": [{"_ref": "x"}], "alt": "A"},
        },
    )

    add(
        "post",
        await _create(
            cms_api,
            child,
            "post",
            {
                "title": "Child post",
                "slug": "child-post",
                "author": ref(authors[0]),
                "categories": [ref(child_category, "k1"), ref(c0, "k2")],
                "related": [ref(posts[0], "r1"), ref(other_post, "r2")],
            },
        ),
    )
    page = add(
        "page",
        await _create(
            cms_api,
            acme,
            "page",
            {
                "title": "Home",
                "slug": "home",
                "sections": [
                    {"_type": "hero", "_key": "h", "heading": "Hi", "image": image},
                    {"_type": "textBlock", "_key": "t", "text": "Text"},
                ],
                "seo": {"title": "Home", "image": image},
            },
        ),
    )
    await _raw(
        cms_api,
        page,
        "published_data",
        {
            "sections": [
                {"_type": "hero", "heading": 5},
                {"_type": "unknown"},
                "x",
                {"_key": "k"},
                {"_type": ["hero"], "heading": "List"},
            ]
        },
    )
    # The singleton: published with a newer draft in acme, a draft only in the child (pointing at
    # acme's page, which the child cannot read), never saved in the other organizations.
    settings = cms_api.services.api.collections.siteSettings
    nav = [ref(page, "n1"), ref(missing, "n2"), ref(child_author, "n3")]
    async with cms_api.services.api.system_context(acme) as ctx:
        await settings.create(
            ctx,
            {"siteName": "Acme", "mainNav": nav[:2], "logo": image, "footerText": "F"},
            publish=True,
        )
        await settings.update(ctx, settings.singleton_id(ctx), {"siteName": "Acme (draft)"})
    async with cms_api.services.api.system_context(child) as ctx:
        await settings.create(ctx, {"siteName": "Child", "mainNav": [ref(page, "n1")]})
    block = {
        "_type": "block",
        "_key": "b",
        "children": [{"_type": "span", "_key": "s", "text": "see", "marks": ["m"]}],
        # A reference the schema does not declare: it may lead to any type.
        "markDefs": [{"_type": "link", "_key": "m", "doc": ref(c0)}],
    }
    extras: list[dict[str, Any]] = [
        {
            "links": [
                ref(authors[1], "a"),
                ref(c0, "b"),
                {
                    "_type": "note",
                    "_key": "n",
                    "about": ref(authors[0]),
                    "teaser": {"target": ref(c1), "extra": [ref(c0, "x"), ref(authors[2], "y")]},
                },
                {"_type": "note", "_key": "m", "about": ref(c2)},
            ],
            "notes": [
                block,
                {"_type": "callout", "_key": "c", "see": ref(authors[0])},
                {"_type": "callout", "_key": "d", "see": ref(posts[1])},
            ],
            "teaser": {
                "label": "T",
                "target": ref(posts[0]),
                "extra": [ref(posts[1], "p"), {"_type": "aside", "_key": "s", "text": "x"}],
            },
            "teasers": [
                {"_key": "t1", "target": ref(authors[3])},
                {"_key": "t2", "target": ref(posts[2]), "extra": [ref(authors[4], "a")]},
            ],
        },
        {
            "links": [ref(posts[0], "a"), {"_type": "note", "_key": "n", "about": ref(c1)}],
            "notes": [{"_type": "callout", "_key": "c", "see": ref(posts[0])}],
            "teaser": {"target": ref(page)},
        },
        {},
    ]
    for n, (target, items) in enumerate(
        [
            (ref(page), [ref(authors[0], "a"), ref(c0, "b"), ref(posts[0], "c")]),
            (ref(posts[3]), [ref(authors[6], "a"), ref(child_author, "b")]),
            (ref(posts[2]), []),
        ]
    ):
        menu = add(
            "menu",
            await _create(
                cms_api,
                acme,
                "menu",
                {
                    "title": f"Menu {n}",
                    "target": target,
                    "items": items,
                    "day": "2025-03-01",
                    "count": n,
                    "weight": 1.25 * n,
                    "mixed": ["a", 1, "b"],
                    # A list of booleans reads as stored (`sql._SHOWN_AS_STORED`).
                    "flags": [[True, False, True], [], [False]][n % 3],
                    **extras[n],
                },
            ),
        )
    # An Int stored as a list of one is no Int (JSON path's lax mode would read the number in it).
    for column in ("draft_data", "published_data"):
        await _raw(cms_api, menu, column, {"count": [2]})
    async with cms_api.services.adapter.instance_transaction() as tx:
        await cms_api.services.model.register(tx, TEASER)
    async with cms_api.services.adapter.instance_transaction() as tx:
        await cms_api.services.model.register(tx, MENU)
    return c


# Query generation


@dataclass
class Draw:
    draw: Callable[[Any], Any]
    fragments: list[str] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)
    declarations: list[str] = field(default_factory=list)
    counter: int = 0

    def name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def variable(self, graphql_type: str, value: Any) -> str:
        name = self.name("v")
        self.declarations.append(f"${name}: {graphql_type}")
        self.variables[name] = value
        return f"${name}"

    def directive(self) -> str:
        choice = self.draw(st.integers(0, 9))
        if choice == 0:
            return " @skip(if: true)"
        if choice == 1:
            return f" @include(if: {self.variable('Boolean!', self.draw(st.booleans()))})"
        return ""


def _selection(d: Draw, schema: GraphQLSchema, type_: Any, level: int) -> str:
    named = get_named_type(type_)
    if isinstance(named, GraphQLUnionType | GraphQLInterfaceType):
        parts = ["__typename"]
        if isinstance(named, GraphQLInterfaceType) and d.draw(st.booleans()):
            parts.append(_object(d, schema, named, level))
        members = (
            named.types if isinstance(named, GraphQLUnionType) else schema.get_possible_types(named)
        )
        for member in members:
            if d.draw(st.booleans()):
                parts.append(f"... on {member.name} {{ {_object(d, schema, member, level)} }}")
        return " ".join(parts)
    assert isinstance(named, GraphQLObjectType)
    return _object(d, schema, named, level)


def _object(
    d: Draw, schema: GraphQLSchema, named: GraphQLObjectType | GraphQLInterfaceType, level: int
) -> str:
    # A singleton's own back-references are the resolvers' (`tests/test_back_references.py`).
    names = sorted(
        name
        for name in named.fields
        if not (name == "referencedBy" and level == 0 and named.name == "SiteSettings")
    )
    chosen = d.draw(st.lists(st.sampled_from(names), min_size=1, max_size=6, unique=True))
    if "referencedBy" in names and "referencedBy" not in chosen and d.draw(st.integers(0, 3)) == 0:
        chosen.append("referencedBy")  # one field among many, and the one with most to check
    parts = []
    for name in chosen:
        field_type = named.fields[name].type
        inner = get_named_type(field_type)
        alias = f"{d.name('a')}: " if d.draw(st.integers(0, 4)) == 0 else ""
        if isinstance(inner, GraphQLObjectType | GraphQLUnionType | GraphQLInterfaceType):
            if level >= 5:
                continue
            arguments = _back_reference_arguments(d) if name == "referencedBy" else ""
            text = (
                f"{alias}{name}{arguments}{d.directive()}"
                f" {{ {_selection(d, schema, field_type, level + 1)} }}"
            )
        else:
            text = f"{alias}{name}{d.directive()}"
        parts.append(text)
    if d.draw(st.integers(0, 5)) == 0:
        parts.append("__typename")
    if d.draw(st.integers(0, 5)) == 0 and parts:
        # Part of the selection through a fragment: inline or named.
        moved, parts = parts[:1], parts[1:]
        if d.draw(st.booleans()):
            parts.append(f"... on {named.name} {{ {' '.join(moved)} }}")
        else:
            fragment = d.name("F")
            d.fragments.append(f"fragment {fragment} on {named.name} {{ {' '.join(moved)} }}")
            parts.append(f"...{fragment}")
    return " ".join(parts) or "__typename"


def _back_reference_arguments(d: Draw) -> str:
    """`referencedBy`'s arguments, each left out, written or a variable (at times out of range)."""
    drawn = {
        "perspective": ("String", d.draw(st.sampled_from([None, "published", "draft"]))),
        "limit": ("Int", d.draw(st.one_of(st.none(), st.integers(0, 3)))),
        "offset": ("Int", d.draw(st.one_of(st.none(), st.integers(0, 2)))),
        "depth": ("Int", d.draw(st.one_of(st.none(), st.integers(0, 2)))),
    }
    args = []
    for name, (graphql_type, value) in drawn.items():
        if value is None:
            continue
        written = d.variable(graphql_type, value) if d.draw(st.booleans()) else json.dumps(value)
        args.append(f"{name}: {written}")
    return f"({', '.join(args)})" if args else ""


SORTS: dict[str, list[list[str] | None]] = {
    "post": [None, ["-publishedDate"], ["title"], ["-views", "title"], ["eventDate"]],
    "author": [None, ["name"], ["-name"]],
    "category": [None, ["title"]],
    "page": [None, ["slug"]],
    "menu": [None, ["-count"], ["day"]],
}
WHERES: dict[str, list[dict[str, Any] | None]] = {
    "post": [
        None,
        {"title": {"contains": "o"}},
        {"views": {"greater_than": 5}},
        {"author": {"where": {"name": {"starts_with": "Author"}}}},
        {"OR": [{"featured": {"equals": True}}, {"status": {"equals": "draft"}}]},
    ],
    "author": [None, {"name": {"contains": "1"}}, {"mentor": {"exists": True}}],
    "category": [None, {"parent": {"exists": False}}],
    "page": [None],
    "menu": [None, {"count": {"less_than": 2}}],
}
JSON_WHERES: list[dict[str, Any] | None] = [None, {"title": {"contains": "o"}}]


def _value(value: Any) -> str:
    """A GraphQL literal of a where input (keys are field names, operators are names)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return json.dumps(value)


def _query(d: Draw, schema: GraphQLSchema, corpus: Corpus) -> str:
    type_name = d.draw(st.sampled_from(sorted(corpus.ids)))
    cls = type_name[0].upper() + type_name[1:]
    kind = d.draw(st.sampled_from(["one", "all", "page", "documents", "singleton"]))
    args: list[str] = []

    def arg(name: str, graphql_type: str, value: Any, literal: str | None = None) -> None:
        if value is None:
            return
        if d.draw(st.booleans()):
            args.append(f"{name}: {d.variable(graphql_type, value)}")
        else:
            args.append(f"{name}: {literal if literal is not None else json.dumps(value)}")

    arg("perspective", "String", d.draw(st.sampled_from([None, "published", "draft"])))
    arg("depth", "Int", d.draw(st.one_of(st.none(), st.integers(0, 5))))
    if kind == "singleton":
        field_name, result_type = "siteSettings", schema.get_type("SiteSettings")
    elif kind == "one":
        arg("id", "ID!", d.draw(st.sampled_from(corpus.ids[type_name])))
        field_name = type_name
        result_type = schema.get_type(cls)
    else:
        arg("limit", "Int", d.draw(st.one_of(st.none(), st.integers(1, 6))))
        arg("offset", "Int", d.draw(st.one_of(st.none(), st.integers(0, 3))))
        arg("sort", "[String!]", d.draw(st.sampled_from(SORTS[type_name])))
        if kind == "documents":
            arg("type", "String!", type_name)
            arg("where", "JSON", d.draw(st.sampled_from(JSON_WHERES)), "null")
            field_name, result_type = "documents", schema.get_type("DocumentPage")
        else:
            where = d.draw(st.sampled_from(WHERES[type_name]))
            if where is not None:
                args.append(f"where: {_value(where)}")
            field_name = f"all{cls}" if kind == "all" else f"all{cls}Page"
            result_type = schema.get_type(cls if kind == "all" else f"{cls}Page")
    selection = _selection(d, schema, result_type, 0)
    root = f"{field_name}({', '.join(args)})" if args else field_name
    roots = f"r: {root} {{ {selection} }}"
    if d.draw(st.integers(0, 3)) == 0:
        roots += " second: allCategory(limit: 2, depth: 1) { title parent { title } }"
    declarations = f"({', '.join(d.declarations)})" if d.declarations else ""
    return " ".join([f"query Q{declarations} {{ {roots} }}", *d.fragments])


async def _both(corpus: Corpus, query: str, variables: dict[str, Any], key: str) -> tuple[Any, Any]:
    compiled, reference = await both_paths(corpus.gql, query, variables, key)
    return in_order(compiled.content), in_order(reference.content)


@pytest.mark.slow
@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_compiled_reads_answer_as_the_resolvers_do(corpus: Corpus, data: Any) -> None:
    endpoint = corpus.gql.app.state.graphql
    schema = endpoint.current().schema._schema
    d = Draw(data.draw)
    query = _query(d, schema, corpus)
    key = corpus.keys[data.draw(st.sampled_from(sorted(corpus.keys)))]
    before = endpoint.compiled_served
    compiled, reference = await _both(corpus, query, d.variables, key)
    assert compiled == reference, query
    assert endpoint.compiled_failures == 0
    # Every query that is answered with data took the compiled path (only errors fall back).
    if not any(key == "errors" for key, _ in reference):
        assert endpoint.compiled_served == before + 1, query


COMMON = [
    '{ allPost(depth: 2, sort: ["-publishedDate"]) { id title views rating featured tags'
    " publishedDate eventDate website format seo { title noIndex __typename }"
    " coverImage { _type assetId alt hotspot url width height asset { id filename size metadata"
    " referenceCount createdAt } } attachment { _type url caption } body"
    " author { id name _resolved status mentor { name _resolved mentor { name } } }"
    " categories { id title _resolved parent { title parent { title } } }"
    " related { title related { title } } createdAt updatedAt publishedAt revision"
    " publishedHash hasUnpublishedChanges __typename _raw } }",
    '{ allPostPage(limit: 3, offset: 1, perspective: "draft") { totalDocs limit offset page'
    " totalPages hasNextPage hasPrevPage docs { title author { name } } } }",
    "{ allMenu(depth: 3) { title day count weight mixed flags target { __typename ... on Page { title"
    " sections { __typename ... on PageSectionsHero { heading _key image { alt } }"
    " ... on PageSectionsTextBlock { text } } } ... on Post { title author { name } } }"
    " items { __typename ... on Author { name } ... on Category { title } } } }",
    '{ documents(type: "post", depth: 2, limit: 4) { totalDocs docs } }',
    # References in JSON fields and named objects, some to a type their field no longer takes.
    "{ allMenu(depth: 3) { title links notes teaser { label extra target { title _resolved _ref } }"
    " teasers { extra target { title _resolved _ref } } _raw } }",
    '{ documents(type: "menu", depth: 3, perspective: "draft") { docs } }',
    '{ documents(type: "category", depth: 2) { docs } }',
    "{ allAuthor(depth: 5) { name mentor { name mentor { name mentor { name mentor { name"
    " mentor { name id _resolved } } } } } } }",
    # A stub has no `id` (client caches would take it for the document) and its target in `_ref`.
    "{ allAuthor(depth: 0) { id _id _ref __typename mentor { id _id _ref __typename _resolved"
    " status type name } } }",
    # The singleton: published, a newer draft, a draft only, or never saved (by organization).
    "{ p: siteSettings { id revision status createdAt hasUnpublishedChanges siteName footerText"
    " logo { assetId url } mainNav { id _ref _resolved title } _raw }"
    ' d: siteSettings(perspective: "draft", depth: 2) { id _id _ref revision siteName'
    " publishedHash mainNav { title sections { __typename } } socialLinks { url } _raw } }",
]


@pytest.mark.parametrize("query", COMMON)
@pytest.mark.parametrize("who", ["acme", "child", "other"])
async def test_the_corpus_is_served_compiled(corpus: Corpus, query: str, who: str) -> None:
    endpoint = corpus.gql.app.state.graphql
    before = endpoint.compiled_served
    compiled, reference = await _both(corpus, query, {}, corpus.keys[who])
    assert endpoint.compiled_served == before + 1
    assert endpoint.compiled_failures == 0
    assert compiled == reference
    assert not any(key == "errors" for key, _ in compiled)


def _nested(field_name: str, levels: int) -> str:
    """`id _resolved` at every level of a chain of `field_name` references."""
    inner = "id _resolved"
    for _ in range(levels):
        inner = f"id _resolved {field_name} {{ {inner} }}"
    return inner


def _resolved_ids(value: Any) -> set[str]:
    """The ids of every resolved document in a response (stubs carry only their reference)."""
    found: set[str] = set()
    if isinstance(value, dict):
        if value.get("_resolved") is True or "_meta" in value:
            found.add(value["id"])
        for item in value.values():
            found |= _resolved_ids(item)
    elif isinstance(value, list):
        for item in value:
            found |= _resolved_ids(item)
    return found


@pytest.mark.parametrize("perspective", ["published", "draft"])
async def test_a_child_organization_reads_nothing_above_or_beside_it(
    corpus: Corpus, perspective: str
) -> None:
    """Row-Level Security holds in the compiled statement, at every depth: the child reads its
    own documents and its descendants', never its parent's, its sibling's or another tenant's,
    even where its own documents reference them."""
    gql = corpus.gql
    async with gql.services.adapter.system_context() as tx:
        rows = await tx.fetch("SELECT id, organization_id FROM cms_documents")
    readable = {corpus.orgs["child"], corpus.orgs["grandchild"]}
    own = {str(r["id"]) for r in rows if r["organization_id"] in readable}
    hidden = {str(r["id"]) for r in rows} - own
    endpoint = gql.app.state.graphql
    key = corpus.keys["child"]
    for depth in range(6):
        args = f'depth: {depth}, perspective: "{perspective}", limit: 50'
        query = (
            f"{{ authors: allAuthor({args}) {{ {_nested('mentor', 6)} }}"
            f" posts: allPost({args}) {{ id author {{ {_nested('mentor', 5)} }}"
            f" categories {{ {_nested('parent', 5)} }} related {{ {_nested('related', 5)} }} }}"
            f" page: allCategoryPage({args}) {{ totalDocs docs {{ {_nested('parent', 5)} }} }}"
            f' documents(type: "post", {args}) {{ totalDocs docs }} }}'
        )
        before = endpoint.compiled_served
        payload = (await gql.post(query, key=key)).json()
        assert endpoint.compiled_served == before + 1
        data = payload["data"]
        seen = _resolved_ids(data)
        assert seen, query
        assert seen <= own, seen & hidden
        assert data["page"]["totalDocs"] == len(data["page"]["docs"])
        for hidden_id in sorted(hidden)[:5]:
            single = await gql.data(
                f'{{ author(id: "{hidden_id}", depth: {depth}) {{ id }}'
                f' post(id: "{hidden_id}", depth: {depth}) {{ id }} }}',
                key=key,
            )
            assert single == {"author": None, "post": None}


RESOLVER_PATH = [
    # Writes, and what is not content: access, assets, the content model, version history.
    'mutation { createAuthor(data: {name: "New"}) { id name } }',
    "{ me { userId } }",
    "{ schemaTypes { name } }",
    "{ allAsset { id } }",
    "{ __schema { queryType { name } } }",
    "{ __typename }",
    # A content read beside something else: the whole operation takes one path.
    "{ allAuthor(limit: 1) { name } schemaTypes { name } }",
    # Errors are always answered by the resolvers (here: depth out of range, unknown field).
    "{ allAuthor(depth: 9) { name } }",
    "{ allAuthor { nope } }",
]
COMPILED_PATH = [
    "{ allAuthor(limit: 1) { name } }",
    "query Q($id: ID!) { author(id: $id) { ...F } } fragment F on Author { name }",
    '{ allPostPage(limit: 1) { totalDocs } documents(type: "author", limit: 1) { docs } }',
    "{ a: allCategory(limit: 1) { __typename } b: allMenu(limit: 1) { title } }",
    '{ siteSettings { siteName } d: siteSettings(perspective: "draft", depth: 0) { id } }',
    # Back-references, wherever they are selected.
    "{ allAuthor(limit: 1) { name referencedBy { totalDocs } } }",
    "{ siteSettings { mainNav { ... on Page { referencedBy { docs { id } } } } } }",
]


async def test_which_operations_take_which_path(corpus: Corpus) -> None:
    """The compiled path serves queries made only of document reads; the rest run as before."""
    endpoint = corpus.gql.app.state.graphql
    variables = {"id": corpus.ids["author"][0]}
    for query in COMPILED_PATH + RESOLVER_PATH:
        before = endpoint.compiled_served
        response = await corpus.gql.post(query, variables if "$id" in query else None)
        assert response.status_code in (200, 400), response.text
        served = endpoint.compiled_served - before
        assert served == (1 if query in COMPILED_PATH else 0), query
    assert endpoint.compiled_failures == 0


async def test_a_statement_bound_for_one_id_serves_the_next(corpus: Corpus) -> None:
    endpoint = corpus.gql.app.state.graphql
    query = "query($id: ID!) { author(id: $id, depth: 1) { id name mentor { id } } }"
    plan = endpoint.current().planner.plan(query, None)
    assert plan is not None
    assert plan.id_variables == {"id"}
    for author in corpus.ids["author"][:4]:
        compiled, reference = await _both(corpus, query, {"id": author}, corpus.keys["acme"])
        assert compiled == reference
    assert len(plan.statements) == 1
    # Values the cached statement cannot take are answered by the resolvers, as before.
    for bad in ("not-a-uuid", 12, True, None):
        compiled, reference = await _both(corpus, query, {"id": bad}, corpus.keys["acme"])
        assert compiled == reference
        assert any(key == "errors" for key, _ in compiled)
    # A variable that is also used elsewhere changes the statement: it is not an id variable.
    mixed = (
        "query($id: ID!) { author(id: $id) { id } allAuthor(where: {id: {equals: $id}}) { id } }"
    )
    mixed_plan = endpoint.current().planner.plan(mixed, None)
    assert mixed_plan is not None
    assert mixed_plan.id_variables == frozenset()
