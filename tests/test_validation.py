"""Document validation against the example model: shapes on every save, content rules on publish."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.content.validation import (
    MAX_STRING_LENGTH,
    _Checker,
    _system_keys_are_strings,
    asset_ids,
    document_problems,
    reference_ids,
    validate_document,
)
from server.errors import InvalidInputError
from server.model.json_form import load_schema_dir, parse_schema_type
from server.model.types import Registry

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schema"
REGISTRY = load_schema_dir(SCHEMA_DIR)

AUTHOR_ID = "a0000000-0000-4000-8000-000000000001"
MENTOR_ID = "a0000000-0000-4000-8000-000000000002"
CATEGORY_IDS = ("c0000000-0000-4000-8000-000000000001", "c0000000-0000-4000-8000-000000000002")
POST_ID = "d0000000-0000-4000-8000-000000000001"
PAGE_ID = "e0000000-0000-4000-8000-000000000001"
ASSET_IDS = tuple(f"f0000000-0000-4000-8000-00000000000{i}" for i in range(1, 7))


def ref(doc_id: str, key: str | None = None) -> dict[str, str]:
    out = {"_type": "reference", "_ref": doc_id}
    return out | {"_key": key} if key else out


def image(asset_id: str, **extra: Any) -> dict[str, Any]:
    return {"_type": "image", "asset": {"_type": "reference", "_ref": asset_id}, **extra}


POST: dict[str, Any] = {
    "title": "Hello, world",
    "slug": "hello-world",
    "excerpt": "A first post.",
    "body": [
        {
            "_type": "block",
            "_key": "b1",
            "style": "normal",
            "markDefs": [],
            "children": [{"_type": "span", "_key": "s1", "text": "Hi there", "marks": []}],
        },
        image(ASSET_IDS[0], _key="i1", alt="A cat", caption="The cat"),
        {"_type": "callout", "_key": "c1", "tone": "info", "text": "Custom blocks stay JSON"},
    ],
    "coverImage": image(
        ASSET_IDS[1],
        hotspot={"x": 0.5, "y": 0.5, "height": 1, "width": 1},
        crop={"top": 0, "bottom": 0, "left": 0.1, "right": 0},
    ),
    "attachment": {"_type": "file", "asset": {"_type": "reference", "_ref": ASSET_IDS[2]}},
    "views": 42,
    "rating": 4.5,
    "featured": True,
    "tags": ["python", "cms"],
    "publishedDate": "2024-05-01T09:30:00Z",
    "eventDate": "2024-06-15",
    "website": "https://example.com/blog?page=1#top",
    "author": ref(AUTHOR_ID),
    "categories": [ref(CATEGORY_IDS[0], "k1"), ref(CATEGORY_IDS[1], "k2")],
    "related": [ref(POST_ID, "r1")],
    "seo": {"title": "Hello", "description": "A first post", "noIndex": False},
    "format": "tutorial",
}
AUTHOR: dict[str, Any] = {
    "name": "Ada Lovelace",
    "bio": "Wrote the first program.",
    "avatar": image(ASSET_IDS[3], alt="Ada"),
    "email": "ada@example.com",
    "mentor": ref(MENTOR_ID),
    "links": [
        {"_type": "link", "_key": "l1", "label": "Site", "url": "https://ada.example"},
        {"_key": "l2", "label": "About", "url": "/about"},
    ],
}
CATEGORY: dict[str, Any] = {
    "title": "Tutorials",
    "slug": "tutorials",
    "parent": ref(CATEGORY_IDS[0]),
    "description": "How-tos.",
}
PAGE: dict[str, Any] = {
    "title": "About",
    "slug": "about",
    "sections": [
        {"_type": "hero", "_key": "h1", "heading": "Welcome", "image": image(ASSET_IDS[4])},
        {"_type": "textBlock", "_key": "t1", "text": "We write software."},
    ],
    "seo": {"_type": "seoMeta", "title": "About us", "image": image(ASSET_IDS[5]), "noIndex": True},
}
SITE_SETTINGS: dict[str, Any] = {
    "siteName": "Example",
    "logo": image(ASSET_IDS[0]),
    "mainNav": [ref(PAGE_ID, "n1")],
    "footerText": "(c) Example",
    "socialLinks": [
        {"_type": "socialLink", "_key": "s1", "platform": "github", "url": "https://github.com/x"}
    ],
}
EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "post": [POST, {"title": "Minimal", "slug": "minimal"}],
    "author": [AUTHOR, {"name": "Minimal"}],
    "category": [CATEGORY, {"title": "Minimal"}],
    "page": [PAGE, {"title": "Minimal", "slug": "minimal"}],
    "siteSettings": [SITE_SETTINGS, {"siteName": "Minimal"}],
}


def with_changes(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(base)
    out.update(changes)
    return out


def without(base: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in copy.deepcopy(base).items() if k not in keys}


def test_every_document_type_has_examples() -> None:
    assert set(EXAMPLES) == {t.name for t in REGISTRY.document_types()}


@pytest.mark.parametrize(
    ("type_name", "data"),
    [
        pytest.param(t, d, id=f"{t}-{i}")
        for t, examples in EXAMPLES.items()
        for i, d in enumerate(examples)
    ],
)
@pytest.mark.parametrize("publish", [True, False])
def test_examples_validate(type_name: str, data: dict[str, Any], publish: bool) -> None:
    validate_document(REGISTRY, type_name, data, publish=publish)


@pytest.mark.parametrize("type_name", list(EXAMPLES))
def test_drafts_may_be_empty_or_null(type_name: str) -> None:
    validate_document(REGISTRY, type_name, {}, publish=False)
    nulls = dict.fromkeys((f.name for f in REGISTRY[type_name].fields), None)
    validate_document(REGISTRY, type_name, nulls, publish=False)


# --- structural problems: refused on every save ------------------------------------------------

SHAPE_ERRORS: list[tuple[str, str, object, str, str]] = [
    ("not an object", "post", ["title"], "", "type"),
    ("unknown field", "post", {"titel": "x"}, "titel", "unknown"),
    ("document column as data", "post", {"status": "published"}, "status", "unknown"),
    ("system key at the top", "post", {"_ref": POST_ID}, "_ref", "reserved"),
    ("type at the top", "post", {"_type": "post"}, "_type", "reserved"),
    ("any _ key at the top", "post", {"_rev": 3}, "_rev", "reserved"),
    (
        "list as _type in rich text",
        "post",
        {"body": [{"_type": "block", "children": [{"_type": []}]}]},
        "body[0].children[0]._type",
        "type",
    ),
    ("object as _type in an object", "post", {"seo": {"_type": {}}}, "seo._type", "type"),
    (
        "number as _key in rich text",
        "post",
        {"body": [{"_type": "block", "markDefs": [{"_key": 1}]}]},
        "body[0].markDefs[0]._key",
        "type",
    ),
    ("string not a string", "post", {"title": 5}, "title", "type"),
    ("text not a string", "post", {"excerpt": ["x"]}, "excerpt", "type"),
    ("date not a string", "post", {"eventDate": 20240615}, "eventDate", "type"),
    ("number as string", "post", {"views": "5"}, "views", "type"),
    ("number as bool", "post", {"views": True}, "views", "type"),
    ("number NaN", "post", {"rating": math.nan}, "rating", "type"),
    ("number infinite", "post", {"rating": math.inf}, "rating", "type"),
    ("boolean as string", "post", {"featured": "yes"}, "featured", "type"),
    ("boolean as number", "post", {"featured": 1}, "featured", "type"),
    ("reference as id", "post", {"author": AUTHOR_ID}, "author", "type"),
    ("reference without _type", "post", {"author": {"_ref": AUTHOR_ID}}, "author._type", "type"),
    (
        "reference wrong _type",
        "post",
        {"author": {"_type": "ref", "_ref": AUTHOR_ID}},
        "author._type",
        "type",
    ),
    ("reference bad id", "post", {"author": ref("author-1")}, "author._ref", "type"),
    ("reference uppercase id", "post", {"author": ref(AUTHOR_ID.upper())}, "author._ref", "type"),
    (
        "reference extra key",
        "post",
        {"author": ref(AUTHOR_ID) | {"name": "Ada"}},
        "author.name",
        "unknown",
    ),
    ("image as url", "post", {"coverImage": "https://x/y.png"}, "coverImage", "type"),
    (
        "image without asset",
        "post",
        {"coverImage": {"_type": "image", "alt": "x"}},
        "coverImage.asset",
        "type",
    ),
    (
        "image as file",
        "post",
        {"coverImage": image(ASSET_IDS[0]) | {"_type": "file"}},
        "coverImage._type",
        "type",
    ),
    ("image bad asset id", "post", {"coverImage": image("nope")}, "coverImage.asset._ref", "type"),
    (
        "image alt not a string",
        "post",
        {"coverImage": image(ASSET_IDS[0], alt=3)},
        "coverImage.alt",
        "type",
    ),
    (
        "image bad hotspot",
        "post",
        {"coverImage": image(ASSET_IDS[0], hotspot={"x": "mid"})},
        "coverImage.hotspot",
        "type",
    ),
    (
        "image unknown key",
        "post",
        {"coverImage": image(ASSET_IDS[0], url="/x.png")},
        "coverImage.url",
        "unknown",
    ),
    (
        "file with hotspot",
        "post",
        {"attachment": {"_type": "file", "asset": ref(ASSET_IDS[0]), "hotspot": {}}},
        "attachment.hotspot",
        "unknown",
    ),
    ("array not a list", "post", {"tags": "python"}, "tags", "type"),
    ("scalar item wrong type", "post", {"tags": ["a", 1]}, "tags[1]", "type"),
    ("scalar item null", "post", {"tags": [None]}, "tags[0]", "type"),
    ("reference item as id", "post", {"categories": [CATEGORY_IDS[0]]}, "categories[0]", "type"),
    (
        "reference item bad id",
        "post",
        {"categories": [ref("x", "k")]},
        "categories[0]._ref",
        "type",
    ),
    (
        "reference item wrong _type",
        "post",
        {"categories": [{"_type": "category", "_ref": CATEGORY_IDS[0]}]},
        "categories[0]._type",
        "type",
    ),
    (
        "duplicate _key",
        "post",
        {"categories": [ref(CATEGORY_IDS[0], "k"), ref(CATEGORY_IDS[1], "k")]},
        "categories[1]._key",
        "key",
    ),
    (
        "_key not a string",
        "post",
        {"categories": [ref(CATEGORY_IDS[0]) | {"_key": 1}]},
        "categories[0]._key",
        "type",
    ),
    ("object not an object", "post", {"seo": "hello"}, "seo", "type"),
    ("object unknown key", "post", {"seo": {"titel": "x"}}, "seo.titel", "unknown"),
    ("object field shape", "post", {"seo": {"noIndex": "no"}}, "seo.noIndex", "type"),
    ("rich text item not an object", "post", {"body": ["Hello"]}, "body[0]", "type"),
    ("rich text item without _type", "post", {"body": [{"children": []}]}, "body[0]._type", "type"),
    ("rich text _type not a string", "post", {"body": [{"_type": 1}]}, "body[0]._type", "type"),
    (
        "rich text image caption",
        "post",
        {"body": [POST["body"][0], image(ASSET_IDS[0]), image(ASSET_IDS[1], caption=7)]},
        "body[2].caption",
        "type",
    ),
    (
        "rich text image without asset",
        "post",
        {"body": [{"_type": "image", "_key": "i"}]},
        "body[0].asset",
        "type",
    ),
    (
        "union item without _type",
        "page",
        {"sections": [{"heading": "Hi"}]},
        "sections[0]._type",
        "type",
    ),
    (
        "union item unknown _type",
        "page",
        {"sections": [{"_type": "video"}]},
        "sections[0]._type",
        "type",
    ),
    (
        "union item field shape",
        "page",
        {"sections": [{"_type": "hero", "heading": 5}]},
        "sections[0].heading",
        "type",
    ),
    (
        "union item unknown key",
        "page",
        {"sections": [{"_type": "textBlock", "body": "x"}]},
        "sections[0].body",
        "unknown",
    ),
    (
        "union item nested image",
        "page",
        {"sections": [{"_type": "hero", "image": {"_type": "image"}}]},
        "sections[0].image.asset",
        "type",
    ),
    ("named object unknown key", "page", {"seo": {"canonical": "/x"}}, "seo.canonical", "unknown"),
    ("named object image", "page", {"seo": {"image": "x.png"}}, "seo.image", "type"),
    (
        "inline item field shape",
        "author",
        {"links": [{"label": "x", "url": 5}]},
        "links[0].url",
        "type",
    ),
    (
        "inline item wrong _type",
        "author",
        {"links": [{"_type": "href", "label": "x"}]},
        "links[0]._type",
        "type",
    ),
    ("self-reference shape", "author", {"mentor": {"_ref": MENTOR_ID}}, "mentor._type", "type"),
    (
        "nested union item",
        "siteSettings",
        {"socialLinks": [{"_type": "socialLink", "platform": ["github"]}]},
        "socialLinks[0].platform",
        "type",
    ),
]


@pytest.mark.parametrize(
    ("type_name", "data", "path", "rule"),
    [pytest.param(t, d, p, r, id=case) for case, t, d, p, r in SHAPE_ERRORS],
)
@pytest.mark.parametrize("publish", [False, True])
def test_shape_errors(type_name: str, data: object, path: str, rule: str, publish: bool) -> None:
    with pytest.raises(InvalidInputError) as caught:
        validate_document(REGISTRY, type_name, data, publish=publish)
    errors = caught.value.details["errors"]
    assert {"path": path, "rule": rule} in [{"path": e["path"], "rule": e["rule"]} for e in errors]
    if not publish:
        assert len(errors) == 1, errors
        assert caught.value.path == (path or None)


# --- content rules: enforced on publish only ---------------------------------------------------

RULE_ERRORS: list[tuple[str, str, dict[str, Any], str, str]] = [
    ("required missing", "post", without(POST, "title"), "title", "required"),
    ("required null", "post", with_changes(POST, title=None), "title", "required"),
    ("required empty string", "post", with_changes(POST, slug=""), "slug", "required"),
    ("required singleton field", "siteSettings", {"siteName": ""}, "siteName", "required"),
    ("string too long", "post", with_changes(POST, title="x" * 121), "title", "max"),
    ("text too long", "post", with_changes(POST, excerpt="x" * 301), "excerpt", "max"),
    ("number below min", "post", with_changes(POST, views=-1), "views", "min"),
    ("number not whole", "post", with_changes(POST, views=1.5), "views", "integer"),
    ("number above max", "post", with_changes(POST, rating=5.01), "rating", "max"),
    ("regex", "author", with_changes(AUTHOR, email="ada at example"), "email", "regex"),
    (
        "regex must match fully",
        "author",
        with_changes(AUTHOR, email="ada@example.com and more"),
        "email",
        "regex",
    ),
    ("allowed values", "post", with_changes(POST, format="podcast"), "format", "list"),
    (
        "allowed values nested",
        "siteSettings",
        {"siteName": "x", "socialLinks": [{"platform": "myspace", "url": "/x"}]},
        "socialLinks[0].platform",
        "list",
    ),
    ("date not a date", "post", with_changes(POST, eventDate="2024-02-30"), "eventDate", "date"),
    ("date other format", "post", with_changes(POST, eventDate="15/06/2024"), "eventDate", "date"),
    ("date short month", "post", with_changes(POST, eventDate="2024-6-15"), "eventDate", "date"),
    (
        "date with time",
        "post",
        with_changes(POST, eventDate="2024-06-15T10:00:00Z"),
        "eventDate",
        "date",
    ),
    (
        "date non-ASCII digits",
        "post",
        with_changes(POST, eventDate="٢٠٢٤-06-15"),
        "eventDate",
        "date",
    ),
    (
        "datetime without zone",
        "post",
        with_changes(POST, publishedDate="2024-05-01T09:30:00"),
        "publishedDate",
        "datetime",
    ),
    (
        "datetime date only",
        "post",
        with_changes(POST, publishedDate="2024-05-01"),
        "publishedDate",
        "datetime",
    ),
    (
        "datetime bad hour",
        "post",
        with_changes(POST, publishedDate="2024-05-01T25:00Z"),
        "publishedDate",
        "datetime",
    ),
    (
        "datetime with space",
        "post",
        with_changes(POST, publishedDate="2024-05-01 09:30Z"),
        "publishedDate",
        "datetime",
    ),
    ("url other scheme", "post", with_changes(POST, website="ftp://example.com"), "website", "url"),
    ("url without scheme", "post", with_changes(POST, website="example.com"), "website", "url"),
    ("url scheme-relative", "post", with_changes(POST, website="//evil.example"), "website", "url"),
    ("url without host", "post", with_changes(POST, website="https:///path"), "website", "url"),
    (
        "url with spaces",
        "post",
        with_changes(POST, website="https://example.com/a b"),
        "website",
        "url",
    ),
    ("url javascript", "post", with_changes(POST, website="javascript:alert(1)"), "website", "url"),
    ("slug with capitals", "post", with_changes(POST, slug="Hello-World"), "slug", "slug"),
    ("slug with spaces", "post", with_changes(POST, slug="hello world"), "slug", "slug"),
    ("slug leading hyphen", "post", with_changes(POST, slug="-hello"), "slug", "slug"),
    ("slug double hyphen", "post", with_changes(POST, slug="hello--world"), "slug", "slug"),
    ("array item rule", "post", with_changes(POST, tags=["ok", "x" * 41]), "tags[1]", "max"),
    (
        "array too many items",
        "post",
        with_changes(POST, related=[ref(POST_ID, str(i)) for i in range(6)]),
        "related",
        "max",
    ),
    ("inline object rule", "post", with_changes(POST, seo={"title": "x" * 61}), "seo.title", "max"),
    (
        "named object rule",
        "page",
        with_changes(PAGE, seo={"description": "x" * 161}),
        "seo.description",
        "max",
    ),
    (
        "required in array item",
        "author",
        with_changes(AUTHOR, links=[{"url": "/x"}]),
        "links[0].label",
        "required",
    ),
    (
        "required in union item",
        "page",
        with_changes(PAGE, sections=[PAGE["sections"][0], {"_type": "textBlock", "text": ""}]),
        "sections[1].text",
        "required",
    ),
    (
        "url rule in array item",
        "author",
        with_changes(AUTHOR, links=[{"label": "x", "url": "mailto:a@b.c"}]),
        "links[0].url",
        "url",
    ),
]


@pytest.mark.parametrize(
    ("type_name", "data", "path", "rule"),
    [pytest.param(t, d, p, r, id=case) for case, t, d, p, r in RULE_ERRORS],
)
def test_rules_block_publishing_only(
    type_name: str, data: dict[str, Any], path: str, rule: str
) -> None:
    validate_document(REGISTRY, type_name, data, publish=False)
    with pytest.raises(InvalidInputError) as caught:
        validate_document(REGISTRY, type_name, data, publish=True)
    assert caught.value.details["errors"] == [
        {"path": path, "rule": rule, "message": caught.value.details["errors"][0]["message"]}
    ]
    assert caught.value.path == path
    assert f"{path}: " in caught.value.message


@pytest.mark.parametrize(
    ("type_name", "data"),
    [
        pytest.param("post", with_changes(POST, website="/blog/hello"), id="relative url"),
        pytest.param(
            "post", with_changes(POST, website="http://localhost:8000"), id="url with port"
        ),
        pytest.param(
            "post",
            with_changes(POST, publishedDate="2024-05-01T09:30+02:00"),
            id="datetime with offset",
        ),
        pytest.param(
            "post",
            with_changes(POST, publishedDate="2024-05-01T09:30:00.123456789-05:00"),
            id="datetime with nanoseconds",
        ),
        pytest.param("post", with_changes(POST, eventDate="2024-02-29"), id="leap day"),
        pytest.param(
            "post", with_changes(POST, views=3.0, rating=0), id="integral float and bounds"
        ),
        pytest.param(
            "post",
            with_changes(POST, tags=[], categories=[], excerpt="", seo={}),
            id="empty optional values",
        ),
        pytest.param(
            "post",
            with_changes(POST, seo=None, author=None, coverImage=None),
            id="null optional values",
        ),
        pytest.param("post", with_changes(POST, slug="a1-b2-c3", title="x" * 120), id="boundaries"),
        pytest.param(
            "author", with_changes(AUTHOR, links=None), id="required inside an absent array"
        ),
        pytest.param(
            "page",
            with_changes(PAGE, seo={"_type": "seoMeta", "_key": "x"}),
            id="system keys in objects",
        ),
    ],
)
def test_publishable(type_name: str, data: dict[str, Any]) -> None:
    validate_document(REGISTRY, type_name, data, publish=True)


def test_every_problem_is_reported_at_once() -> None:
    data = with_changes(POST, title=None, views=-2, rating="five", extra=1, seo={"title": 5})
    with pytest.raises(InvalidInputError) as caught:
        validate_document(REGISTRY, "post", data, publish=True)
    pairs = [(e["path"], e["rule"]) for e in caught.value.details["errors"]]
    assert pairs == [
        ("extra", "unknown"),
        ("title", "required"),
        ("views", "min"),
        ("rating", "type"),
        ("seo.title", "type"),
    ]
    message = caught.value.message
    assert message.startswith("invalid post document: extra: unknown field 'extra'; title: ")
    assert "rating: expected a number" in message
    assert caught.value.code == "BAD_USER_INPUT"
    assert document_problems(REGISTRY, "post", data, publish=True) == caught.value.details["errors"]
    assert document_problems(REGISTRY, "post", POST, publish=True) == []


def test_required_and_length_rules_on_arrays() -> None:
    registry = Registry(
        [
            parse_schema_type(
                {
                    "type": "document",
                    "name": "list",
                    "fields": [
                        {
                            "name": "items",
                            "type": "array",
                            "required": True,
                            "min": 2,
                            "of": [{"type": "number", "options": {"list": [1, 2, 3]}}],
                        },
                        {
                            "name": "mixed",
                            "type": "array",
                            "of": [{"type": "string"}, {"type": "number"}],
                        },
                    ],
                }
            )
        ]
    )

    def problems(data: dict[str, Any]) -> list[tuple[str, str]]:
        found = document_problems(registry, "list", data, publish=True)
        return [(p["path"], p["rule"]) for p in found]

    assert problems({"items": []}) == [("items", "required")]
    assert problems({"items": [1]}) == [("items", "min")]
    assert problems({"items": [1, 4]}) == [("items[1]", "list")]
    assert problems({"items": [1, 2], "mixed": ["a", 2, True]}) == [("mixed[2]", "type")]


@pytest.mark.parametrize("type_name", ["seoMeta", "nope"])
def test_only_document_types_validate(type_name: str) -> None:
    with pytest.raises(InvalidInputError, match="unknown document type") as caught:
        validate_document(REGISTRY, type_name, {}, publish=False)
    assert caught.value.path == "type"


# --- references and assets ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_name", "data", "references", "assets"),
    [
        pytest.param(
            "post",
            POST,
            [
                ("author", AUTHOR_ID),
                ("categories[0]", CATEGORY_IDS[0]),
                ("categories[1]", CATEGORY_IDS[1]),
                ("related[0]", POST_ID),
            ],
            [("body[1]", ASSET_IDS[0]), ("coverImage", ASSET_IDS[1]), ("attachment", ASSET_IDS[2])],
            id="post",
        ),
        pytest.param(
            "author", AUTHOR, [("mentor", MENTOR_ID)], [("avatar", ASSET_IDS[3])], id="author"
        ),
        pytest.param("category", CATEGORY, [("parent", CATEGORY_IDS[0])], [], id="category"),
        pytest.param(
            "page",
            PAGE,
            [],
            [("sections[0].image", ASSET_IDS[4]), ("seo.image", ASSET_IDS[5])],
            id="page",
        ),
        pytest.param(
            "siteSettings",
            SITE_SETTINGS,
            [("mainNav[0]", PAGE_ID)],
            [("logo", ASSET_IDS[0])],
            id="siteSettings",
        ),
        pytest.param("post", {}, [], [], id="empty"),
        pytest.param("post", "not a document", [], [], id="not an object"),
        pytest.param(
            "post",
            {
                "author": {"_ref": "nope"},
                "categories": [None, "x", ref(CATEGORY_IDS[1])],
                "seo": 3,
                "coverImage": {"asset": 1},
            },
            [("categories[2]", CATEGORY_IDS[1])],
            [],
            id="wrong shapes are skipped",
        ),
    ],
)
def test_reference_and_asset_ids(
    type_name: str,
    data: object,
    references: list[tuple[str, str]],
    assets: list[tuple[str, str]],
) -> None:
    assert reference_ids(REGISTRY, type_name, data) == references
    assert asset_ids(REGISTRY, type_name, data) == assets


def test_rich_text_content_is_not_walked() -> None:
    data = {"body": [{"_type": "block", "markDefs": [ref(POST_ID)], "children": []}]}
    assert reference_ids(REGISTRY, "post", data) == []


# --- cost: content rules run in time linear in the input -------------------------------------------


def test_regex_rule_is_not_backtracking() -> None:
    """Nested quantifiers: a backtracking engine needs about 2**60 steps before it gives up."""
    field = {"name": "code", "type": "string", "regex": "(a+)+b"}
    registry = Registry(
        [parse_schema_type({"type": "document", "name": "thing", "fields": [field]})]
    )
    problems = document_problems(registry, "thing", {"code": "a" * 60}, publish=True)
    assert [(p["path"], p["rule"]) for p in problems] == [("code", "regex")]


def test_example_email_rule_on_a_crafted_address() -> None:
    """The example model's email pattern on the input that held a backtracking engine for 12 s."""
    crafted = "a@" + "a." * 32_000 + "@"
    problems = document_problems(
        REGISTRY, "author", with_changes(AUTHOR, email=crafted), publish=True
    )
    assert [(p["path"], p["rule"]) for p in problems] == [("email", "regex")]


@pytest.mark.parametrize("publish", [False, True])
def test_strings_have_a_length_ceiling(publish: bool) -> None:
    long = "x" * (MAX_STRING_LENGTH + 1)
    problems = document_problems(
        REGISTRY, "author", with_changes(AUTHOR, bio=long), publish=publish
    )
    assert problems == [
        {
            "path": "bio",
            "rule": "max",
            "message": f"must be at most {MAX_STRING_LENGTH} characters long",
        }
    ]
    at_limit = with_changes(AUTHOR, bio="x" * MAX_STRING_LENGTH)
    assert document_problems(REGISTRY, "author", at_limit, publish=publish) == []


_SYSTEM_KEY_DATA = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["_type", "_key", "_ref", "a", "b"]), children, max_size=3
        )
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(_SYSTEM_KEY_DATA)
def test_the_quick_system_key_walk_agrees_with_the_one_that_reports(data: Any) -> None:
    # The walk without paths decides whether the reporting walk runs at all.
    checker = _Checker(Registry([]), publish=False)
    checker.system_keys(data, "", set())
    assert _system_keys_are_strings(data) == (not checker.problems)
