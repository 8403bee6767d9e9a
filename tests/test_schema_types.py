"""The content model: parsing type definitions, the registry's cross-type checks, the example model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from server.errors import InvalidInputError, NotFoundError
from server.model.json_form import load_schema_dir, parse_schema_type
from server.model.names import to_camel_case, to_pascal_case
from server.model.types import Field, Registry, SchemaType

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schema"


def doc(*fields: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "document", "name": "post", "fields": list(fields), **extra}


def obj(name: str, *fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "name": name, "fields": list(fields)}


def ref(name: str, *targets: str) -> dict[str, Any]:
    return {"name": name, "type": "reference", "to": [{"type": t} for t in targets]}


TITLE = {"name": "title", "type": "string"}


# --- the example model -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def example() -> Registry:
    return load_schema_dir(SCHEMA_DIR)


def test_example_model_loads_and_checks(example: Registry) -> None:
    example.check()
    assert [t.name for t in example.document_types()] == [
        "author",
        "category",
        "page",
        "post",
        "siteSettings",
    ]
    assert [t.name for t in example.object_types()] == ["seoMeta"]
    for path in SCHEMA_DIR.glob("*.json"):
        assert path.stem in example, "one file per type, named after it"


def test_example_model_uses_every_field_type(example: Registry) -> None:
    seen: set[str] = set()

    def collect(fields: tuple[Field, ...]) -> None:
        for f in fields:
            seen.add(f.type)
            collect(f.of)
            collect(f.fields)

    for t in example.values():
        collect(t.fields)
    builtin = {"string", "text", "number", "boolean", "date", "datetime", "url", "slug"}
    builtin |= {"image", "file", "reference", "array", "object", "block"}
    assert builtin <= seen
    assert "seoMeta" in seen


def test_example_model_shapes(example: Registry) -> None:
    post = example["post"]
    assert post.field("title") == Field(
        name="title", type="string", title="Title", required=True, max=120
    )
    body = post.field("body")
    assert body is not None
    assert body.is_rich_text
    assert not body.is_scalar_array
    assert [item.name for item in body.of] == ["block", "image"]
    views = post.field("views")
    assert views is not None
    assert views.integer
    assert views.min == 0
    fmt = post.field("format")
    assert fmt is not None
    assert fmt.allowed == ("article", "tutorial", "news")
    assert fmt.options["layout"] == "radio"
    categories = post.field("categories")
    assert categories is not None
    assert categories.of[0].is_reference
    assert categories.of[0].to == ("category",)
    tags = post.field("tags")
    assert tags is not None
    assert tags.is_scalar_array
    mentor = example["author"].field("mentor")
    assert mentor is not None
    assert mentor.to == ("author",)
    sections = example["page"].field("sections")
    assert sections is not None
    assert [i.name for i in sections.of] == ["hero", "textBlock"]
    assert all(i.is_inline_object for i in sections.of)
    seo = example["page"].field("seo")
    assert seo is not None
    assert seo.is_named_object
    assert seo.is_object
    assert [f.name for f in example.resolve(seo)] == ["title", "description", "image", "noIndex"]
    inline_seo = post.field("seo")
    assert inline_seo is not None
    assert inline_seo.field("noIndex") is not None
    assert example.resolve(inline_seo) == inline_seo.fields
    assert example["siteSettings"].singleton
    assert not post.singleton
    assert example["siteSettings"].title == "Site settings"


def test_canonical_json_round_trips(example: Registry) -> None:
    for schema_type in example.values():
        canonical = schema_type.to_json()
        assert parse_schema_type(canonical) == schema_type
        assert parse_schema_type(json.loads(json.dumps(canonical))).to_json() == canonical


def test_canonical_form_fills_defaults_and_drops_item_names() -> None:
    parsed = parse_schema_type(
        {
            "name": "site-settings",
            "type": "document",
            "fields": [
                {"type": "array", "name": "tags", "of": [{"type": "string"}]},
                {"name": "ok", "type": "boolean", "required": False},
            ],
        }
    )
    assert parsed.to_json() == {
        "type": "document",
        "name": "site-settings",
        "title": "Site Settings",
        "fields": [
            {"name": "tags", "type": "array", "of": [{"type": "string"}]},
            {"name": "ok", "type": "boolean"},
        ],
    }


def test_types_and_fields_are_frozen_and_hashable(example: Registry) -> None:
    post = example["post"]
    with pytest.raises(AttributeError):
        post.name = "other"  # type: ignore[misc]
    assert hash(post) == hash(parse_schema_type(post.to_json()))
    with pytest.raises(TypeError):
        post.options["singleton"] = True  # type: ignore[index]


# --- parse_schema_type: one table of bad definitions --------------------------------------------

PARSE_ERRORS: list[tuple[str, object, str | None, str]] = [
    ("not an object", ["post"], None, "must be an object"),
    ("no name", {"type": "document", "fields": [TITLE]}, "name", "is required"),
    ("empty name", doc(TITLE, name=""), "name", "is required"),
    ("name not a string", doc(TITLE, name=7), "name", "is required"),
    ("name starts with a digit", doc(TITLE, name="1post"), "name", "not a valid type name"),
    ("name with a space", doc(TITLE, name="blog post"), "name", "not a valid type name"),
    ("name too long", doc(TITLE, name="p" * 101), "name", "not a valid type name"),
    ("name of a field type", doc(TITLE, name="reference"), "name", "reserved"),
    ("name clashing in GraphQL", doc(TITLE, name="query"), "name", "reserved"),
    ("no kind", {"name": "post", "fields": [TITLE]}, "type", "'document' or 'object'"),
    ("bad kind", doc(TITLE, type="collection"), "type", "'document' or 'object'"),
    ("typo at type level", doc(TITLE, singelton=True), "singelton", "unknown key"),
    ("hooks are functions", doc(TITLE, hooks={}), "hooks", "unknown key"),
    ("singleton not a bool", doc(TITLE, singleton="yes"), "singleton", "true or false"),
    ("singleton object", {**obj("seo", TITLE), "singleton": True}, "singleton", "document"),
    ("title not a string", doc(TITLE, title=3), "title", "must be a string"),
    ("no fields", {"type": "document", "name": "post"}, "fields", "is required"),
    ("empty fields", doc(), "fields", "non-empty list"),
    ("fields not a list", doc(fields={"title": "string"}), "fields", "non-empty list"),
    ("field not an object", doc(fields=["title"]), "fields[0]", "must be an object"),
    ("field without name", doc({"type": "string"}), "fields[0].name", "is required"),
    (
        "field name with hyphen",
        doc({"name": "sub-title", "type": "string"}),
        "fields[0].name",
        "not a valid field name",
    ),
    (
        "field name with dunder",
        doc({"name": "__typename", "type": "string"}),
        "fields[0].name",
        "reserved for system keys",
    ),
    (
        "field name with underscore",
        doc({"name": "_id", "type": "string"}),
        "fields[0].name",
        "reserved for system keys",
    ),
    (
        "reserved field name",
        doc({"name": "status", "type": "string"}),
        "fields[0].name",
        "reserved",
    ),
    (
        "reserved in camelCase",
        doc({"name": "published_at", "type": "datetime"}),
        "fields[0].name",
        "reserved",
    ),
    (
        "reserved: _resolved",
        doc({"name": "_resolved", "type": "boolean"}),
        "fields[0].name",
        "reserved",
    ),
    (
        "duplicate field",
        doc(TITLE, {"name": "title", "type": "text"}),
        "fields[1].name",
        "duplicate field 'title'",
    ),
    (
        "duplicate in camelCase",
        doc({"name": "cover_image", "type": "image"}, {"name": "coverImage", "type": "image"}),
        "fields[1].name",
        "clashes",
    ),
    ("field without type", doc({"name": "title"}), "fields[0].type", "is required"),
    (
        "unknown field type",
        doc({"name": "title", "type": "str ing"}),
        "fields[0].type",
        "unknown field type",
    ),
    (
        "document as field type",
        doc({"name": "title", "type": "document"}),
        "fields[0].type",
        "unknown field type",
    ),
    (
        "block outside an array",
        doc({"name": "body", "type": "block"}),
        "fields[0].type",
        "only allowed as an array item",
    ),
    (
        "typo in a rule key",
        doc({"name": "title", "type": "string", "requird": True}),
        "fields[0].requird",
        "unknown key",
    ),
    (
        "validation functions",
        doc({"name": "title", "type": "string", "validation": "Rule.required()"}),
        "fields[0].validation",
        "cannot be stored",
    ),
    (
        "integer on a string",
        doc({"name": "title", "type": "string", "integer": True}),
        "fields[0].integer",
        "does not apply to string fields",
    ),
    (
        "regex on a number",
        doc({"name": "n", "type": "number", "regex": "[0-9]+"}),
        "fields[0].regex",
        "does not apply to number fields",
    ),
    (
        "min on a boolean",
        doc({"name": "b", "type": "boolean", "min": 1}),
        "fields[0].min",
        "does not apply to boolean fields",
    ),
    (
        "to on a string",
        doc({"name": "a", "type": "string", "to": [{"type": "author"}]}),
        "fields[0].to",
        "does not apply",
    ),
    (
        "of on an object",
        doc({"name": "a", "type": "object", "of": [], "fields": [TITLE]}),
        "fields[0].of",
        "does not apply",
    ),
    (
        "rows on a string",
        doc({"name": "a", "type": "string", "rows": 3}),
        "fields[0].rows",
        "does not apply",
    ),
    (
        "required not a bool",
        doc({"name": "a", "type": "string", "required": "yes"}),
        "fields[0].required",
        "true or false",
    ),
    (
        "hidden not a bool",
        doc({"name": "a", "type": "string", "hidden": "no"}),
        "fields[0].hidden",
        "true or false",
    ),
    (
        "group not a name",
        doc({"name": "a", "type": "string", "group": 1}),
        "fields[0].group",
        "group name",
    ),
    ("rows zero", doc({"name": "a", "type": "text", "rows": 0}), "fields[0].rows", "1 or more"),
    (
        "min above max",
        doc({"name": "n", "type": "number", "min": 5, "max": 1}),
        "fields[0].min",
        "greater than max",
    ),
    (
        "length below zero",
        doc({"name": "a", "type": "string", "min": -1}),
        "fields[0].min",
        "0 or more",
    ),
    (
        "length not whole",
        doc({"name": "a", "type": "string", "max": 2.5}),
        "fields[0].max",
        "whole number",
    ),
    (
        "bound not a number",
        doc({"name": "n", "type": "number", "max": "5"}),
        "fields[0].max",
        "must be a number",
    ),
    (
        "bound a bool",
        doc({"name": "n", "type": "number", "max": True}),
        "fields[0].max",
        "must be a number",
    ),
    (
        "invalid regex",
        doc({"name": "a", "type": "string", "regex": "(["}),
        "fields[0].regex",
        "invalid regular expression",
    ),
    (
        "regex with a backreference",
        doc({"name": "a", "type": "string", "regex": r"(a)\1"}),
        "fields[0].regex",
        "RE2 syntax: no backreferences or lookaround",
    ),
    (
        "regex with lookahead",
        doc({"name": "a", "type": "string", "regex": "(?=a)a"}),
        "fields[0].regex",
        "RE2 syntax: no backreferences or lookaround",
    ),
    (
        "options not an object",
        doc({"name": "a", "type": "string", "options": []}),
        "fields[0].options",
        "must be an object",
    ),
    (
        "list on a boolean",
        doc({"name": "a", "type": "boolean", "options": {"list": [True]}}),
        "fields[0].options.list",
        "does not apply",
    ),
    (
        "list on an array",
        doc({"name": "a", "type": "array", "of": [{"type": "string"}], "options": {"list": ["x"]}}),
        "fields[0].options.list",
        "does not apply",
    ),
    (
        "empty list",
        doc({"name": "a", "type": "string", "options": {"list": []}}),
        "fields[0].options.list",
        "non-empty",
    ),
    (
        "list value of wrong type",
        doc({"name": "a", "type": "string", "options": {"list": ["x", 2]}}),
        "fields[0].options.list[1]",
        "must be a string",
    ),
    (
        "list value not whole",
        doc({"name": "n", "type": "number", "integer": True, "options": {"list": [1, 1.5]}}),
        "fields[0].options.list[1]",
        "must be an integer",
    ),
    (
        "list entry without value",
        doc({"name": "a", "type": "string", "options": {"list": [{"title": "A"}]}}),
        "fields[0].options.list[0]",
        "value",
    ),
    (
        "duplicate list value",
        doc(
            {
                "name": "a",
                "type": "string",
                "options": {"list": ["x", {"title": "X", "value": "x"}]},
            }
        ),
        "fields[0].options.list[1]",
        "duplicate",
    ),
    (
        "reference without to",
        doc({"name": "author", "type": "reference"}),
        "fields[0].to",
        "is required",
    ),
    (
        "reference with empty to",
        doc({"name": "author", "type": "reference", "to": []}),
        "fields[0].to",
        "non-empty",
    ),
    (
        "reference target misspelt key",
        doc({"name": "author", "type": "reference", "to": [{"typ": "author"}]}),
        "fields[0].to[0]",
        '{"type"',
    ),
    (
        "reference target bad name",
        doc({"name": "author", "type": "reference", "to": ["1author"]}),
        "fields[0].to[0]",
        "not a valid type name",
    ),
    (
        "duplicate reference target",
        doc(ref("author", "author", "author")),
        "fields[0].to[1]",
        "duplicate target",
    ),
    ("array without of", doc({"name": "tags", "type": "array"}), "fields[0].of", "is required"),
    (
        "array with empty of",
        doc({"name": "tags", "type": "array", "of": []}),
        "fields[0].of",
        "non-empty",
    ),
    (
        "array of arrays",
        doc({"name": "m", "type": "array", "of": [{"type": "array", "of": [{"type": "string"}]}]}),
        "fields[0].of[0].type",
        "cannot hold arrays",
    ),
    (
        "array mixing kinds",
        doc({"name": "m", "type": "array", "of": [{"type": "string"}, {"type": "image"}]}),
        "fields[0].of",
        "cannot mix",
    ),
    (
        "duplicate item types",
        doc({"name": "m", "type": "array", "of": [{"type": "image"}, {"type": "image"}]}),
        "fields[0].of[1]",
        "duplicate item type 'image'",
    ),
    (
        "inline item without name",
        doc({"name": "m", "type": "array", "of": [{"type": "object", "fields": [TITLE]}]}),
        "fields[0].of[0].name",
        "is required",
    ),
    (
        "name on a scalar item",
        doc({"name": "m", "type": "array", "of": [{"type": "string", "name": "tag"}]}),
        "fields[0].of[0].name",
        "only allowed on inline object items",
    ),
    (
        "required on an item",
        doc({"name": "m", "type": "array", "of": [{"type": "string", "required": True}]}),
        "fields[0].of[0].required",
        "does not apply to array items",
    ),
    (
        "item reference without to",
        doc(
            TITLE,
            TITLE | {"name": "sub"},
            {"name": "refs", "type": "array", "of": [{"type": "reference"}]},
        ),
        "fields[2].of[0].to",
        "is required",
    ),
    (
        "object without fields",
        doc({"name": "seo", "type": "object"}),
        "fields[0].fields",
        "is required",
    ),
    (
        "object with empty fields",
        doc({"name": "seo", "type": "object", "fields": []}),
        "fields[0].fields",
        "non-empty",
    ),
    (
        "nested field error",
        doc(
            {
                "name": "seo",
                "type": "object",
                "fields": [TITLE, {"name": "x", "type": "number", "integer": "yes"}],
            }
        ),
        "fields[0].fields[1].integer",
        "true or false",
    ),
    (
        "nested item field error",
        doc(
            {
                "name": "s",
                "type": "array",
                "of": [obj("hero", {"name": "h", "type": "string", "max": -2})],
            }
        ),
        "fields[0].of[0].fields[0].max",
        "0 or more",
    ),
]


@pytest.mark.parametrize(
    ("definition", "path", "problem"),
    [pytest.param(d, p, m, id=case) for case, d, p, m in PARSE_ERRORS],
)
def test_parse_errors(definition: object, path: str | None, problem: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_schema_type(definition)
    assert caught.value.path == path
    assert problem in caught.value.message
    if path is not None:
        assert caught.value.message.startswith(f"{path}: ")


@pytest.mark.parametrize(
    "definition",
    [
        pytest.param(
            obj("link", {"name": "type", "type": "string"}), id="reserved names are fine in objects"
        ),
        pytest.param(
            doc({"name": "seo", "type": "object", "fields": [{"name": "id", "type": "string"}]}),
            id="and in nested objects",
        ),
        pytest.param(
            doc({"name": "seo", "type": "seoMeta"}), id="a named object type is left to check()"
        ),
        pytest.param(
            doc({"name": "x", "type": "strng"}), id="so is a misspelt type that could be a name"
        ),
        pytest.param(
            doc(
                {
                    "name": "a",
                    "type": "string",
                    "title": "A",
                    "description": "d",
                    "hidden": True,
                    "readOnly": False,
                    "initialValue": "x",
                    "group": ["main"],
                    "fieldset": "f",
                    "options": {"layout": "dropdown"},
                }
            ),
            id="presentation keys",
        ),
        pytest.param(
            doc(
                {
                    "name": "a",
                    "type": "array",
                    "of": [
                        {"type": "block", "styles": [{"title": "H1", "value": "h1"}]},
                        {"type": "image"},
                    ],
                }
            ),
            id="rich text",
        ),
        pytest.param(
            doc({"name": "a", "type": "array", "of": [{"type": "string"}, {"type": "number"}]}),
            id="mixed primitives",
        ),
        pytest.param(doc(ref("a", "author", "post")), id="reference to several types"),
        pytest.param(
            doc({"name": "a", "type": "reference", "to": ["author"]}), id="targets as plain names"
        ),
        pytest.param(
            doc({"name": "n", "type": "number", "min": -1.5, "max": 1.5}),
            id="fractional number bounds",
        ),
        pytest.param(
            doc(
                {
                    "name": "n",
                    "type": "number",
                    "options": {"list": [{"title": "One", "value": 1}, 2.5]},
                }
            ),
            id="number list",
        ),
        pytest.param(
            doc(
                TITLE,
                icon="doc",
                preview={"select": {"title": "title"}},
                orderings=[],
                groups=[],
                fieldsets=[],
                search=[],
                previewUrl="/p",
            ),
            id="type-level settings",
        ),
        pytest.param(doc(TITLE, name="site-settings"), id="hyphenated type name"),
    ],
)
def test_parse_accepts(definition: dict[str, Any]) -> None:
    parsed = parse_schema_type(definition)
    assert parse_schema_type(parsed.to_json()) == parsed


def test_parsed_field_properties() -> None:
    parsed = parse_schema_type(
        doc(
            {"name": "n", "type": "number", "integer": True, "min": 0, "options": {"list": [1, 2]}},
            {"name": "body", "type": "array", "of": [{"type": "block"}, obj("code", TITLE)]},
            ref("author", "author", "person"),
        )
    )
    n, body, author = parsed.fields
    assert (n.is_scalar, n.integer, n.min, n.max, n.allowed) == (True, True, 0, None, (1, 2))
    assert body.is_array
    assert body.is_rich_text
    assert not body.is_scalar_array
    assert [(i.name, i.is_block, i.is_inline_object) for i in body.of] == [
        ("block", True, False),
        ("code", False, True),
    ]
    assert author.is_reference
    assert author.to == ("author", "person")
    assert not author.is_object
    assert parsed.kind == "document"
    assert parsed.is_document
    assert parsed.title == "Post"


# --- Registry ----------------------------------------------------------------------------------


def registry(*definitions: dict[str, Any]) -> Registry:
    return Registry(parse_schema_type(d) for d in definitions)


AUTHOR = {"type": "document", "name": "author", "fields": [{"name": "name", "type": "string"}]}
SEO = obj("seoMeta", TITLE)

CHECK_ERRORS: list[tuple[str, list[dict[str, Any]], str, str, str]] = [
    (
        "unknown reference target",
        [doc(ref("author", "person")), AUTHOR],
        "post",
        "fields[0].to[0]",
        "unknown document type 'person'",
    ),
    (
        "reference to an object type",
        [doc(ref("seo", "seoMeta")), SEO],
        "post",
        "fields[0].to[0]",
        "is an object type",
    ),
    (
        "reference in an array",
        [doc(TITLE, {"name": "r", "type": "array", "of": [{"type": "reference", "to": ["nope"]}]})],
        "post",
        "fields[1].of[0].to[0]",
        "unknown document type",
    ),
    (
        "unknown named type",
        [doc({"name": "seo", "type": "seoMta"})],
        "post",
        "fields[0].type",
        "unknown field type 'seoMta'",
    ),
    (
        "document used as a field type",
        [doc({"name": "a", "type": "author"}), AUTHOR],
        "post",
        "fields[0].type",
        "use a reference",
    ),
    (
        "unknown item type",
        [doc({"name": "s", "type": "array", "of": [{"type": "hero"}]})],
        "post",
        "fields[0].of[0].type",
        "unknown field type 'hero'",
    ),
    (
        "deep in an inline object",
        [doc({"name": "o", "type": "object", "fields": [{"name": "x", "type": "nope"}]})],
        "post",
        "fields[0].fields[0].type",
        "unknown field type",
    ),
    (
        "object containing itself",
        [obj("node", TITLE, {"name": "child", "type": "node"})],
        "node",
        "fields",
        "contains itself without an array in between (node -> node)",
    ),
    (
        "through an inline object",
        [
            obj(
                "node",
                {"name": "wrap", "type": "object", "fields": [{"name": "child", "type": "node"}]},
            )
        ],
        "node",
        "fields",
        "node -> node",
    ),
    (
        "two-step cycle",
        [obj("a", {"name": "b", "type": "b"}), obj("b", {"name": "a", "type": "a"})],
        "a",
        "fields",
        "a -> b -> a",
    ),
    (
        "same GraphQL name",
        [doc(TITLE, name="site-settings"), doc(TITLE, name="siteSettings")],
        "siteSettings",
        "name",
        "same GraphQL name 'SiteSettings'",
    ),
]


@pytest.mark.parametrize(
    ("definitions", "type_name", "path", "problem"),
    [pytest.param(d, t, p, m, id=case) for case, d, t, p, m in CHECK_ERRORS],
)
def test_check_errors(
    definitions: list[dict[str, Any]], type_name: str, path: str, problem: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        registry(*definitions).check()
    errors = caught.value.details["errors"]
    assert {"type": type_name, "path": path} == {k: errors[0][k] for k in ("type", "path")}
    assert problem in errors[0]["message"]
    assert caught.value.path == path
    assert f"{type_name}: {path}: " in caught.value.message


def test_check_reports_every_problem() -> None:
    reg = registry(doc(ref("a", "x"), ref("b", "y"), {"name": "c", "type": "z"}))
    assert [p["path"] for p in reg.problems()] == [
        "fields[0].to[0]",
        "fields[1].to[0]",
        "fields[2].type",
    ]
    with pytest.raises(InvalidInputError) as caught:
        reg.check()
    assert len(caught.value.details["errors"]) == 3


@pytest.mark.parametrize(
    "definitions",
    [
        pytest.param(
            [obj("node", TITLE, {"name": "children", "type": "array", "of": [{"type": "node"}]})],
            id="an array breaks a cycle",
        ),
        pytest.param([doc(ref("parent", "post"))], id="a self-reference"),
        pytest.param([doc({"name": "seo", "type": "seoMeta"}), SEO], id="a named object type"),
        pytest.param(
            [
                obj("a", {"name": "b", "type": "b"}),
                obj("b", TITLE),
                obj("c", {"name": "b", "type": "b"}, {"name": "b2", "type": "b"}),
            ],
            id="shared, not cyclic",
        ),
    ],
)
def test_check_accepts(definitions: list[dict[str, Any]]) -> None:
    registry(*definitions).check()


def test_registry_is_an_immutable_mapping() -> None:
    reg = registry(AUTHOR, SEO)
    assert len(reg) == 2
    assert list(reg) == ["author", "seoMeta"]
    assert "author" in reg
    assert reg.get("missing") is None
    assert [t.name for t in reg.document_types()] == ["author"]
    assert [t.name for t in reg.object_types()] == ["seoMeta"]

    post = parse_schema_type(doc({"name": "seo", "type": "seoMeta"}))
    grown = reg.with_type(post)
    assert list(grown) == ["author", "seoMeta", "post"]
    assert "post" not in reg
    changed_author = parse_schema_type({**AUTHOR, "title": "Writer"})
    replaced = grown.with_type(changed_author)
    assert list(replaced) == ["author", "seoMeta", "post"]
    assert replaced["author"].title == "Writer"
    assert grown["author"].title == "Author"

    shrunk = grown.without("post")
    assert list(shrunk) == ["author", "seoMeta"]
    assert "post" in grown
    with pytest.raises(NotFoundError):
        shrunk.without("post")
    assert grown.without("seoMeta").problems()[0]["path"] == "fields[0].type"


def test_registry_refuses_duplicates_and_resolves_objects() -> None:
    author = parse_schema_type(AUTHOR)
    with pytest.raises(InvalidInputError, match="defined twice"):
        Registry([author, author])
    reg = registry(SEO, doc({"name": "seo", "type": "seoMeta"}, {"name": "s", "type": "string"}))
    seo, plain = reg["post"].fields
    assert reg.resolve(seo) == reg["seoMeta"].fields
    with pytest.raises(InvalidInputError):
        reg.resolve(plain)
    assert isinstance(reg["post"], SchemaType)


# --- load_schema_dir ---------------------------------------------------------------------------


def write(folder: Path, name: str, content: object) -> None:
    (folder / name).write_text(content if isinstance(content, str) else json.dumps(content))


def test_load_reads_lists_and_sorts_by_file_name(tmp_path: Path) -> None:
    write(tmp_path, "b.json", [AUTHOR, SEO])
    write(tmp_path, "a.json", doc(ref("author", "author"), {"name": "seo", "type": "seoMeta"}))
    write(tmp_path, "notes.txt", "not a type")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", "c.json", "{broken")
    assert list(load_schema_dir(tmp_path)) == ["post", "author", "seoMeta"]


def test_load_empty_folder(tmp_path: Path) -> None:
    assert len(load_schema_dir(tmp_path)) == 0


def test_load_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_schema_dir(tmp_path / "missing")


@pytest.mark.parametrize(
    ("files", "message", "path"),
    [
        pytest.param({"post.json": "{broken"}, "post.json: invalid JSON", None, id="bad JSON"),
        pytest.param(
            {"post.json": doc({"name": "t"})},
            "post.json: fields[0].type: is required",
            "fields[0].type",
            id="bad definition",
        ),
        pytest.param(
            {"all.json": [AUTHOR, doc({"name": "t"})]},
            "all.json[1]: fields[0].type",
            "fields[0].type",
            id="bad definition in a list",
        ),
        pytest.param(
            {"a.json": AUTHOR, "b.json": AUTHOR},
            "b.json: type 'author' is already defined in a.json",
            "name",
            id="defined twice",
        ),
        pytest.param(
            {"author.json": AUTHOR, "post.json": doc(ref("by", "person"))},
            "post.json: fields[0].to[0]: unknown document type",
            "fields[0].to[0]",
            id="broken link",
        ),
    ],
)
def test_load_errors_name_the_file(
    tmp_path: Path, files: dict[str, object], message: str, path: str | None
) -> None:
    for name, content in files.items():
        write(tmp_path, name, content)
    with pytest.raises(InvalidInputError) as caught:
        load_schema_dir(tmp_path)
    assert message in caught.value.message
    assert caught.value.path == path
    assert caught.value.details["file"] in files


# --- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "pascal", "camel"),
    [
        ("post", "Post", "post"),
        ("site-settings", "SiteSettings", "siteSettings"),
        ("siteSettings", "SiteSettings", "siteSettings"),
        ("seo_meta", "SeoMeta", "seoMeta"),
        ("measurement-units", "MeasurementUnits", "measurementUnits"),
        ("page2-hero", "Page2Hero", "page2Hero"),
        ("a--b__c", "ABC", "aBC"),
        ("URL", "URL", "uRL"),
    ],
)
def test_names(name: str, pascal: str, camel: str) -> None:
    assert to_pascal_case(name) == pascal
    assert to_camel_case(name) == camel
