"""The `where` and `sort` compilers as tables: input -> SQL and bind values, input -> input error.

No database here; tests/test_filters_rows.py runs the same fragments against real rows.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from server.content.filters import (
    Perspective,
    SqlParams,
    compile_sort,
    compile_where,
    data_column,
    perspective_condition,
)
from server.errors import InvalidInputError
from server.model.json_form import load_schema_dir, parse_schema_type
from server.model.types import Field, Registry, SchemaType

REGISTRY = load_schema_dir(Path(__file__).resolve().parent.parent / "schema")
ID = "0b7c2b1e-6a4e-4c59-9a3c-2d5f8f0e1a11"
ID2 = "5f3d9a2c-1b4e-4f6a-8c7d-9e0f1a2b3c4d"
PUB = "ref1.status = 'published' AND ref1.published_data IS NOT NULL"
TAGS = "CASE WHEN jsonb_typeof(d.draft_data->'tags') = 'array' THEN d.draft_data->'tags' END"


def where_sql(
    where: Any,
    perspective: Perspective = "draft",
    registry: Registry = REGISTRY,
    type_name: str = "post",
) -> tuple[str | None, list[Any]]:
    params = SqlParams()
    sql = compile_where(registry, type_name, where, params=params, perspective=perspective)
    return sql, params.values


WHERE_CASES: list[tuple[str, dict[str, Any], Perspective, str, list[Any]]] = [
    # (id, where, perspective, SQL, bind values)
    ("string equals", {"title": {"equals": "Hi"}}, "draft", "d.draft_data->>'title' = $1", ["Hi"]),
    ("shorthand equals", {"title": "Hi"}, "published", "d.published_data->>'title' = $1", ["Hi"]),
    (
        "not_equals keeps missing values",
        {"title": {"not_equals": "Hi"}},
        "draft",
        "d.draft_data->>'title' IS DISTINCT FROM $1",
        ["Hi"],
    ),
    (
        "in",
        {"format": {"in": ["article", "news"]}},
        "draft",
        "d.draft_data->>'format' = ANY($1::text[])",
        [["article", "news"]],
    ),
    (
        "shorthand list means in",
        {"format": ["news"]},
        "draft",
        "d.draft_data->>'format' = ANY($1::text[])",
        [["news"]],
    ),
    (
        "not_in",
        {"format": {"not_in": []}},
        "draft",
        "(d.draft_data->>'format' = ANY($1::text[])) IS NOT TRUE",
        [[]],
    ),
    (
        "contains escapes wildcards",
        {"title": {"contains": "50%_a\\b"}},
        "draft",
        "d.draft_data->>'title' ILIKE $1",
        ["%50\\%\\_a\\\\b%"],
    ),
    (
        "starts_with",
        {"title": {"starts_with": "a_"}},
        "draft",
        "d.draft_data->>'title' ILIKE $1",
        ["a\\_%"],
    ),
    (
        "ends_with",
        {"slug": {"ends_with": "%"}},
        "draft",
        "d.draft_data->>'slug' ILIKE $1",
        ["%\\%"],
    ),
    (
        "like is the caller's pattern",
        {"title": {"like": "A_%"}},
        "draft",
        "d.draft_data->>'title' LIKE $1",
        ["A_%"],
    ),
    (
        "string range",
        {"title": {"greater_than_equal": "M"}},
        "draft",
        "d.draft_data->>'title' >= $1",
        ["M"],
    ),
    (
        "null shorthand means exists false",
        {"title": None},
        "draft",
        "coalesce(d.draft_data->'title', 'null'::jsonb) = 'null'::jsonb",
        [],
    ),
    (
        "equals null means exists false",
        {"excerpt": {"equals": None}},
        "draft",
        "coalesce(d.draft_data->'excerpt', 'null'::jsonb) = 'null'::jsonb",
        [],
    ),
    (
        "not_equals null means exists true",
        {"excerpt": {"not_equals": None}},
        "draft",
        "coalesce(d.draft_data->'excerpt', 'null'::jsonb) <> 'null'::jsonb",
        [],
    ),
    (
        "exists true",
        {"excerpt": {"exists": True}},
        "published",
        "coalesce(d.published_data->'excerpt', 'null'::jsonb) <> 'null'::jsonb",
        [],
    ),
    (
        "number compares numerically",
        {"views": {"greater_than": 9, "less_than_equal": 100}},
        "draft",
        "(cms_to_numeric(d.draft_data->'views') > $1"
        " AND cms_to_numeric(d.draft_data->'views') <= $2)",
        [9, 100],
    ),
    (
        "number shorthand",
        {"rating": 4.5},
        "draft",
        "cms_to_numeric(d.draft_data->'rating') = $1",
        [4.5],
    ),
    (
        "number in",
        {"views": [1, 2]},
        "draft",
        "cms_to_numeric(d.draft_data->'views') = ANY($1::numeric[])",
        [[1, 2]],
    ),
    (
        "number less_than",
        {"views": {"less_than": 0}},
        "draft",
        "cms_to_numeric(d.draft_data->'views') < $1",
        [0],
    ),
    (
        "boolean",
        {"featured": True},
        "draft",
        "cms_to_boolean(d.draft_data->'featured') = $1",
        [True],
    ),
    (
        "boolean not_equals",
        {"featured": {"not_equals": True}},
        "draft",
        "cms_to_boolean(d.draft_data->'featured') IS DISTINCT FROM $1",
        [True],
    ),
    (
        "date",
        {"eventDate": {"less_than": "2024-02-29"}},
        "draft",
        "cms_to_date(d.draft_data->>'eventDate') < $1",
        [date(2024, 2, 29)],
    ),
    (
        "datetime with offset",
        {"publishedDate": {"greater_than_equal": "2024-01-15T08:30:00+02:00"}},
        "draft",
        "cms_to_timestamptz(d.draft_data->>'publishedDate') >= $1",
        [datetime(2024, 1, 15, 6, 30, tzinfo=UTC)],
    ),
    (
        "datetime without offset is UTC",
        {"publishedDate": {"in": ["2024-01-15T08:30", "2024-01-16"]}},
        "draft",
        "cms_to_timestamptz(d.draft_data->>'publishedDate') = ANY($1::timestamptz[])",
        [[datetime(2024, 1, 15, 8, 30, tzinfo=UTC), datetime(2024, 1, 16, tzinfo=UTC)]],
    ),
    (
        "array equals uses containment",
        {"tags": "sql"},
        "draft",
        "d.draft_data @> $1::text::jsonb",
        ['{"tags":["sql"]}'],
    ),
    (
        "array in",
        {"tags": {"in": ["a", "b"]}},
        "draft",
        "d.draft_data @> ANY($1::text[]::jsonb[])",
        [['{"tags":["a"]}', '{"tags":["b"]}']],
    ),
    (
        "array not_equals: no element matches",
        {"tags": {"not_equals": "a"}},
        "draft",
        "(d.draft_data @> $1::text::jsonb) IS NOT TRUE",
        ['{"tags":["a"]}'],
    ),
    (
        "array contains: any element",
        {"tags": {"contains": "py"}},
        "draft",
        f"EXISTS (SELECT 1 FROM jsonb_array_elements({TAGS}) AS elem1(value)"
        " WHERE elem1.value #>> '{}' ILIKE $1)",
        ["%py%"],
    ),
    (
        "array operators share one element",
        {"tags": {"equals": "a", "ends_with": "z"}},
        "draft",
        f"EXISTS (SELECT 1 FROM jsonb_array_elements({TAGS}) AS elem1(value)"
        " WHERE elem1.value #>> '{}' = $1 AND elem1.value #>> '{}' ILIKE $2)",
        ["a", "%z"],
    ),
    (
        "array exists means non-empty",
        {"tags": {"exists": True}},
        "draft",
        "coalesce(d.draft_data->'tags', 'null'::jsonb) NOT IN ('null'::jsonb, '[]'::jsonb)",
        [],
    ),
    (
        "array null shorthand",
        {"tags": None},
        "draft",
        "coalesce(d.draft_data->'tags', 'null'::jsonb) IN ('null'::jsonb, '[]'::jsonb)",
        [],
    ),
    (
        "reference equals compares the id",
        {"author": ID.upper()},
        "draft",
        "d.draft_data->'author'->>'_ref' = $1",
        [ID],
    ),
    (
        "reference _ref",
        {"author._ref": {"in": [ID]}},
        "draft",
        "d.draft_data->'author'->>'_ref' = ANY($1::text[])",
        [[ID]],
    ),
    (
        "reference id",
        {"author.id": {"not_equals": ID}},
        "draft",
        "d.draft_data->'author'->>'_ref' IS DISTINCT FROM $1",
        [ID],
    ),
    (
        "reference exists",
        {"author": {"exists": True}},
        "draft",
        "d.draft_data->'author'->>'_ref' IS NOT NULL",
        [],
    ),
    (
        "array of references equals",
        {"categories": ID},
        "published",
        "d.published_data @> $1::text::jsonb",
        [f'{{"categories":[{{"_ref":"{ID}"}}]}}'],
    ),
    (
        "array of references not_in",
        {"categories.id": {"not_in": [ID, ID2]}},
        "draft",
        "(d.draft_data @> ANY($1::text[]::jsonb[])) IS NOT TRUE",
        [[f'{{"categories":[{{"_ref":"{x}"}}]}}' for x in (ID, ID2)]],
    ),
    (
        "nested object path",
        {"seo.title": {"contains": "x"}},
        "published",
        "d.published_data->'seo'->>'title' ILIKE $1",
        ["%x%"],
    ),
    (
        "nested boolean",
        {"seo.noIndex": False},
        "draft",
        "cms_to_boolean(d.draft_data->'seo'->'noIndex') = $1",
        [False],
    ),
    (
        "object exists",
        {"seo": {"exists": True}},
        "draft",
        "coalesce(d.draft_data->'seo', 'null'::jsonb) <> 'null'::jsonb",
        [],
    ),
    (
        "image exists",
        {"coverImage": None},
        "draft",
        "coalesce(d.draft_data->'coverImage', 'null'::jsonb) = 'null'::jsonb",
        [],
    ),
    (
        "rich text exists",
        {"body": {"exists": True}},
        "draft",
        "coalesce(d.draft_data->'body', 'null'::jsonb) NOT IN ('null'::jsonb, '[]'::jsonb)",
        [],
    ),
    (
        "path through a reference, published",
        {"author.name": {"contains": "ann"}},
        "published",
        "EXISTS (SELECT 1 FROM cms_documents ref1"
        " WHERE ref1.id = cms_to_uuid(d.published_data->'author'->>'_ref')"
        f" AND {PUB} AND ref1.type = 'author' AND ref1.published_data->>'name' ILIKE $1)",
        ["%ann%"],
    ),
    (
        "path through a reference, draft",
        {"author.name": "Ann"},
        "draft",
        "EXISTS (SELECT 1 FROM cms_documents ref1"
        " WHERE ref1.id = cms_to_uuid(d.draft_data->'author'->>'_ref')"
        " AND ref1.type = 'author' AND ref1.draft_data->>'name' = $1)",
        ["Ann"],
    ),
    (
        "path through two references",
        {"author.mentor.name": "Zed"},
        "draft",
        "EXISTS (SELECT 1 FROM cms_documents ref1"
        " WHERE ref1.id = cms_to_uuid(d.draft_data->'author'->>'_ref') AND ref1.type = 'author'"
        " AND EXISTS (SELECT 1 FROM cms_documents ref2"
        " WHERE ref2.id = cms_to_uuid(ref1.draft_data->'mentor'->>'_ref') AND ref2.type = 'author'"
        " AND ref2.draft_data->>'name' = $1))",
        ["Zed"],
    ),
    (
        "path through an array of references",
        {"categories.title": "News"},
        "published",
        "EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof("
        "d.published_data->'categories') = 'array' THEN d.published_data->'categories' END)"
        " AS elem1(value) JOIN cms_documents ref1 ON ref1.id = cms_to_uuid(elem1.value->>'_ref')"
        f" WHERE {PUB} AND ref1.type = 'category' AND ref1.published_data->>'title' = $1)",
        ["News"],
    ),
    (
        "negative through a reference: no referenced document matches",
        {"author.name": {"not_equals": "Ann", "starts_with": "A"}},
        "draft",
        "(EXISTS (SELECT 1 FROM cms_documents ref1"
        " WHERE ref1.id = cms_to_uuid(d.draft_data->'author'->>'_ref') AND ref1.type = 'author'"
        " AND ref1.draft_data->>'name' ILIKE $1)"
        " AND NOT EXISTS (SELECT 1 FROM cms_documents ref2"
        " WHERE ref2.id = cms_to_uuid(d.draft_data->'author'->>'_ref') AND ref2.type = 'author'"
        " AND ref2.draft_data->>'name' = $2))",
        ["A%", "Ann"],
    ),
    (
        "reference then array of objects",
        {"author.links.label": "Home"},
        "draft",
        "EXISTS (SELECT 1 FROM cms_documents ref1"
        " WHERE ref1.id = cms_to_uuid(d.draft_data->'author'->>'_ref') AND ref1.type = 'author'"
        " AND EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof("
        "ref1.draft_data->'links') = 'array' THEN ref1.draft_data->'links' END) AS elem2(value)"
        " WHERE elem2.value->>'label' = $1))",
        ["Home"],
    ),
    (
        "id column",
        {"id": {"in": [ID]}},
        "draft",
        "d.id = ANY($1::uuid[])",
        [[uuid.UUID(ID)]],
    ),
    ("id not_equals", {"id": {"not_equals": ID}}, "draft", "d.id <> $1", [uuid.UUID(ID)]),
    (
        "id not_in",
        {"id": {"not_in": [ID]}},
        "draft",
        "d.id <> ALL($1::uuid[])",
        [[uuid.UUID(ID)]],
    ),
    ("status column", {"status": "published"}, "draft", "d.status = $1", ["published"]),
    (
        "status in",
        {"_meta.status": ["draft", "unpublished"]},
        "draft",
        "d.status = ANY($1::document_status[])",
        [["draft", "unpublished"]],
    ),
    (
        "timestamp column takes an ISO string",
        {"createdAt": {"greater_than": "2024-01-01T00:00:00.000Z"}},
        "draft",
        "d.created_at > $1",
        [datetime(2024, 1, 1, tzinfo=UTC)],
    ),
    (
        "_meta prefix",
        {"_meta.updatedAt": {"less_than": "2024-01-01T02:00:00+02:00"}},
        "draft",
        "d.updated_at < $1",
        [datetime(2024, 1, 1, tzinfo=UTC)],
    ),
    ("nullable column exists", {"publishedAt": None}, "draft", "d.published_at IS NULL", []),
    (
        "nullable column not_equals",
        {"publishedAt": {"not_equals": "2024-01-01T00:00:00Z"}},
        "draft",
        "d.published_at IS DISTINCT FROM $1",
        [datetime(2024, 1, 1, tzinfo=UTC)],
    ),
    (
        "text column",
        {"_meta.createdBy": {"starts_with": "user"}},
        "draft",
        "d.created_by ILIKE $1",
        ["user%"],
    ),
    (
        "several keys are ANDed",
        {"title": "a", "views": 1},
        "draft",
        "d.draft_data->>'title' = $1 AND cms_to_numeric(d.draft_data->'views') = $2",
        ["a", 1],
    ),
    (
        "or of ands",
        {"or": [{"title": "a"}, {"title": "b", "views": 2}]},
        "draft",
        "(d.draft_data->>'title' = $1"
        " OR (d.draft_data->>'title' = $2 AND cms_to_numeric(d.draft_data->'views') = $3))",
        ["a", "b", 2],
    ),
    (
        "and is flattened",
        {"and": [{"title": "a"}, {"and": [{"views": 1}]}]},
        "draft",
        "d.draft_data->>'title' = $1 AND cms_to_numeric(d.draft_data->'views') = $2",
        ["a", 1],
    ),
    (
        "not is a complement",
        {"not": {"featured": True, "views": 1}},
        "draft",
        "((cms_to_boolean(d.draft_data->'featured') = $1"
        " AND cms_to_numeric(d.draft_data->'views') = $2)) IS NOT TRUE",
        [True, 1],
    ),
    ("empty or matches nothing", {"or": []}, "draft", "FALSE", []),
    ("empty not matches nothing", {"not": {}}, "draft", "FALSE", []),
    (
        "single alternative",
        {"or": [{"title": "a"}]},
        "draft",
        "d.draft_data->>'title' = $1",
        ["a"],
    ),
]


@pytest.mark.parametrize(
    ("where", "perspective", "sql", "values"),
    [pytest.param(w, p, s, v, id=i) for i, w, p, s, v in WHERE_CASES],
)
def test_where_compiles_to(
    where: dict[str, Any], perspective: Perspective, sql: str, values: list[Any]
) -> None:
    assert where_sql(where, perspective) == (sql, values)


@pytest.mark.parametrize("where", [None, {}, {"and": []}])
def test_no_condition(where: Any) -> None:
    assert where_sql(where) == (None, [])


def test_placeholders_continue_the_runners_numbering() -> None:
    params = SqlParams(["post", 50])
    sql = compile_where(REGISTRY, "post", {"title": "a"}, params=params, perspective="draft")
    assert sql == "d.draft_data->>'title' = $3"
    assert params.values == ["post", 50, "a"]


def test_alias() -> None:
    params = SqlParams()
    where = {"author.name": "a", "id": ID}
    sql = compile_where(REGISTRY, "post", where, params=params, perspective="draft", alias="doc")
    assert sql is not None
    assert "doc.draft_data->'author'->>'_ref'" in sql
    assert sql.endswith("AND doc.id = $2")
    assert compile_sort(
        REGISTRY, "post", "title", params=params, perspective="draft", alias="doc"
    ) == ("doc.draft_data->>'title' ASC NULLS LAST, doc.id")


def test_helpers() -> None:
    assert data_column("published") == "d.published_data"
    assert data_column("draft", "x") == "x.draft_data"
    assert perspective_condition("published") == (
        "d.status = 'published' AND d.published_data IS NOT NULL"
    )
    assert perspective_condition("draft") is None
    with pytest.raises(ValueError, match="alias"):
        data_column("draft", "d; drop table x")
    with pytest.raises(InvalidInputError) as info:
        data_column("preview")  # type: ignore[arg-type]
    assert info.value.path == "perspective"


def test_unknown_document_type() -> None:
    for name in ("nope", "seoMeta"):
        with pytest.raises(InvalidInputError) as info:
            compile_where(REGISTRY, name, {}, params=SqlParams(), perspective="draft")
        assert info.value.path == "type"


def test_names_outside_the_safe_set_are_bound() -> None:
    odd = SchemaType(
        name="odd", title="Odd", kind="document", fields=(Field(name="it's", type="string"),)
    )
    sql, values = where_sql({"it's": "x"}, registry=Registry([odd]), type_name="odd")
    assert (sql, values) == ("d.draft_data->>$1 = $2", ["it's", "x"])


MULTI = Registry(
    [
        parse_schema_type(
            {
                "type": "document",
                "name": "person",
                "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": "number"}],
            }
        ),
        parse_schema_type(
            {
                "type": "document",
                "name": "company",
                "fields": [{"name": "name", "type": "string"}, {"name": "founded", "type": "date"}],
            }
        ),
        parse_schema_type(
            {
                "type": "document",
                "name": "feature",
                "fields": [
                    {
                        "name": "subject",
                        "type": "reference",
                        "to": [{"type": "person"}, {"type": "company"}],
                    },
                    {
                        "name": "sections",
                        "type": "array",
                        "of": [
                            {
                                "type": "object",
                                "name": "hero",
                                "fields": [{"name": "heading", "type": "string"}],
                            },
                            {
                                "type": "object",
                                "name": "quote",
                                "fields": [
                                    {"name": "heading", "type": "string"},
                                    {"name": "by", "type": "string"},
                                ],
                            },
                        ],
                    },
                ],
            }
        ),
    ]
)


def test_reference_to_several_types_tries_each_that_has_the_field() -> None:
    sql, values = where_sql({"subject.name": "x"}, registry=MULTI, type_name="feature")
    assert sql == (
        "EXISTS (SELECT 1 FROM cms_documents ref1"
        " WHERE ref1.id = cms_to_uuid(d.draft_data->'subject'->>'_ref')"
        " AND ((ref1.type = 'person' AND ref1.draft_data->>'name' = $1)"
        " OR (ref1.type = 'company' AND ref1.draft_data->>'name' = $2)))"
    )
    assert values == ["x", "x"]
    sql, _ = where_sql({"subject.age": {"greater_than": 3}}, registry=MULTI, type_name="feature")
    assert sql is not None
    assert "ref1.type = 'person' AND cms_to_numeric(ref1.draft_data->'age') > $1" in sql
    assert "company" not in sql


def test_array_of_several_object_kinds_checks_the_item_type() -> None:
    sql, _ = where_sql({"sections.by": "x"}, registry=MULTI, type_name="feature")
    assert sql is not None
    assert sql.endswith(
        "AS elem1(value) WHERE elem1.value->>'_type' = 'quote' AND elem1.value->>'by' = $1)"
    )
    sql, _ = where_sql({"sections.heading": "x"}, registry=MULTI, type_name="feature")
    assert sql is not None
    assert "((elem1.value->>'_type' = 'hero' AND " in sql
    assert " OR (elem1.value->>'_type' = 'quote' AND " in sql


def test_path_cache_is_per_registry() -> None:
    # The same type and path in another registry must not reuse the first registry's resolution.
    other = Registry(
        [
            parse_schema_type(
                {
                    "type": "document",
                    "name": "post",
                    "fields": [{"name": "views", "type": "string"}],
                }
            )
        ]
    )
    assert where_sql({"views": "9"}, registry=other)[0] == "d.draft_data->>'views' = $1"
    assert where_sql({"views": 9})[0] == "cms_to_numeric(d.draft_data->'views') = $1"


def nested_not(levels: int) -> dict[str, Any]:
    where: dict[str, Any] = {"title": "x"}
    for _ in range(levels):
        where = {"not": where}
    return where


def test_limits_allow_up_to_the_maximum() -> None:
    assert where_sql(nested_not(7))[0] is not None
    assert where_sql({"or": [{"title": str(i)} for i in range(100)]})[0] is not None
    assert where_sql({"author.mentor.mentor.mentor.mentor.name": "x"})[0] is not None


ERROR_CASES: list[tuple[str, Any, str, str]] = [
    # (id, where, error path, message fragment)
    ("where not an object", ["title"], "where", "expected an object"),
    ("unknown field", {"nope": 1}, "nope", "unknown field 'nope' in post"),
    ("unknown nested field", {"seo.nope": 1}, "seo.nope", "unknown field 'nope' in seo"),
    ("unknown field behind a reference", {"author.nope": 1}, "author.nope", "in author"),
    ("unknown column", {"revision": 1}, "revision", "unknown field 'revision'"),
    ("system key", {"_id": 1}, "_id", "unknown field '_id'"),
    ("empty segment", {"seo..title": 1}, "seo..title", "empty path segment"),
    ("leading dot", {".title": 1}, ".title", "empty path segment"),
    ("trailing dot", {"title.": 1}, "title.", "empty path segment"),
    ("path into a scalar", {"title.length": 1}, "title.length", "'title' is a string field"),
    ("path into a scalar array", {"tags.x": 1}, "tags.x", "'tags' is an array of values"),
    ("path past the id", {"author._ref.x": 1}, "author._ref.x", "is the referenced id"),
    ("path into an image", {"coverImage.asset": 1}, "coverImage.asset", "image field"),
    (
        "too many hops",
        {"author.mentor.mentor.mentor.mentor.mentor.name": "x"},
        "author.mentor.mentor.mentor.mentor.mentor.name",
        "at most 5",
    ),
    ("unknown operator", {"title": {"regex": "x"}}, "title.regex", 'unknown operator "regex"'),
    ("no operator", {"title": {}}, "title", "at least one operator"),
    ("contains on a number", {"views": {"contains": "1"}}, "views.contains", "number fields"),
    (
        "range on a boolean",
        {"featured": {"greater_than": True}},
        "featured.greater_than",
        "boolean",
    ),
    ("like on a reference", {"author": {"like": "x"}}, "author.like", "reference fields"),
    (
        "like on an array of references",
        {"categories": {"like": "%"}},
        "categories.like",
        "reference",
    ),
    (
        "range on status",
        {"status": {"less_than": "x"}},
        "status.less_than",
        "status",
    ),
    ("contains on id", {"id": {"contains": "a"}}, "id.contains", "id fields"),
    ("equals on an object", {"seo": {"equals": "x"}}, "seo.equals", "dotted path"),
    ("shorthand on an object", {"seo": "x"}, "seo", "only"),
    ("contains on a date", {"eventDate": {"contains": "2024"}}, "eventDate.contains", "date"),
    (
        "number as text",
        {"views": {"greater_than": "abc"}},
        "views.greater_than",
        'expected a number, got "abc"',
    ),
    ("boolean as number", {"views": True}, "views", "expected a number, got true"),
    ("huge number", {"views": {"in": [1, 10**1000]}}, "views.in[1]", "too large"),
    ("not finite", {"rating": float("nan")}, "rating", "finite"),
    ("text as number", {"title": 5}, "title", "expected a string, got 5"),
    ("text with NUL", {"title": "a\x00b"}, "title", "cannot hold"),
    (
        "text with a lone surrogate",
        {"title": {"contains": "\ud800"}},
        "title.contains",
        "cannot hold",
    ),
    ("boolean as text", {"featured": "yes"}, "featured", "expected true or false"),
    ("bad date", {"eventDate": "2024-02-30"}, "eventDate", "expected a date"),
    (
        "datetime on a date field",
        {"eventDate": "2024-02-01T10:00Z"},
        "eventDate",
        "expected a date",
    ),
    (
        "bad datetime",
        {"publishedDate": {"less_than": "soon"}},
        "publishedDate.less_than",
        "ISO 8601",
    ),
    (
        "datetime out of range",
        {"publishedDate": "0001-01-01T00:00:00+05:00"},
        "publishedDate",
        "years",
    ),
    (
        "bad timestamp column value",
        {"createdAt": {"greater_than": "yesterday"}},
        "createdAt.greater_than",
        "ISO 8601",
    ),
    (
        "timestamp column as a number",
        {"updatedAt": {"less_than": 5}},
        "updatedAt.less_than",
        "ISO 8601",
    ),
    ("bad id", {"id": "nope"}, "id", "expected a UUID"),
    ("bad reference id", {"author": "nope"}, "author", "expected a UUID"),
    ("bad id in a list", {"categories": {"in": [ID, "x"]}}, "categories.in[1]", "expected a UUID"),
    (
        "bad status",
        {"status": "archived"},
        "status",
        "expected one of draft, published, unpublished",
    ),
    (
        "exists not a boolean",
        {"title": {"exists": "yes"}},
        "title.exists",
        "expected true or false",
    ),
    ("exists null", {"title": {"exists": None}}, "title.exists", "expected true or false"),
    ("null for a range", {"views": {"greater_than": None}}, "views.greater_than", "got null"),
    ("in with a non-list", {"title": {"in": "x"}}, "title.in", "expected a list"),
    ("not_in with a non-list", {"views": {"not_in": 5}}, "views.not_in", "expected a list"),
    ("in with too many values", {"views": {"in": list(range(1001))}}, "views.in", "more than 1000"),
    ("like ending in an escape", {"title": {"like": "a\\"}}, "title.like", "unfinished escape"),
    ("or not a list", {"or": {"title": "a"}}, "or", "expected a list"),
    ("and not a list", {"and": "x"}, "and", "expected a list"),
    ("or item not an object", {"or": [{"title": "a"}, "b"]}, "or[1]", "expected an object"),
    ("not not an object", {"not": [{"title": "a"}]}, "not", "expected an object"),
    (
        "nested error path",
        {"and": [{"or": [{"views": {"less_than": "x"}}]}]},
        "and[0].or[0].views.less_than",
        "number",
    ),
    ("not error path", {"not": {"nope": 1}}, "not.nope", "unknown field"),
    ("too deep", nested_not(8), ".".join(["not"] * 8), "more than 8 levels"),
    (
        "too deep with lists",
        {"and": [{"or": [{"and": [{"or": [{"and": [{"or": [{"and": [{"or": [{}]}]}]}]}]}]}]}]},
        "and[0].or[0].and[0].or[0].and[0].or[0].and[0].or[0]",
        "8 levels",
    ),
    (
        "too many conditions",
        {"or": [{"title": str(i)} for i in range(101)]},
        "or[100].title",
        "more than 100",
    ),
    (
        "too many operators",
        {
            "views": {"greater_than": 1, "less_than": 2},
            "or": [{"title": str(i)} for i in range(99)],
        },
        "or[98].title",
        "more than 100",
    ),
    ("non-string key", {1: "x"}, "where", "keys must be strings"),
]


@pytest.mark.parametrize(
    ("where", "path", "message"), [pytest.param(w, p, m, id=i) for i, w, p, m in ERROR_CASES]
)
def test_where_input_errors(where: Any, path: str, message: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        where_sql(where)
    assert info.value.path == path
    assert message in info.value.message
    assert info.value.message.startswith(f"{path}: ")


def sort_sql(sort: Any, perspective: Perspective = "draft") -> str:
    return compile_sort(REGISTRY, "post", sort, params=SqlParams(), perspective=perspective)


SORT_CASES: list[tuple[Any, Perspective, str]] = [
    (None, "draft", "d.updated_at DESC, d.id"),
    ([], "draft", "d.updated_at DESC, d.id"),
    ("views", "published", "cms_to_numeric(d.published_data->'views') ASC NULLS LAST, d.id"),
    ("-views", "draft", "cms_to_numeric(d.draft_data->'views') DESC NULLS LAST, d.id"),
    (
        "-publishedDate",
        "draft",
        "cms_to_timestamptz(d.draft_data->>'publishedDate') DESC NULLS LAST, d.id",
    ),
    ("eventDate", "draft", "cms_to_date(d.draft_data->>'eventDate') ASC NULLS LAST, d.id"),
    ("featured", "draft", "cms_to_boolean(d.draft_data->'featured') ASC NULLS LAST, d.id"),
    ("title", "draft", "d.draft_data->>'title' ASC NULLS LAST, d.id"),
    ("-seo.title", "draft", "d.draft_data->'seo'->>'title' DESC NULLS LAST, d.id"),
    ("createdAt", "draft", "d.created_at ASC, d.id"),
    ("-_meta.publishedAt", "draft", "d.published_at DESC NULLS LAST, d.id"),
    ("status", "draft", "d.status ASC, d.id"),
    (
        ["-featured", "views"],
        "draft",
        "cms_to_boolean(d.draft_data->'featured') DESC NULLS LAST,"
        " cms_to_numeric(d.draft_data->'views') ASC NULLS LAST, d.id",
    ),
    ("-id", "draft", "d.id DESC"),
    (("title", "id"), "draft", "d.draft_data->>'title' ASC NULLS LAST, d.id ASC"),
]


@pytest.mark.parametrize(("sort", "perspective", "sql"), SORT_CASES)
def test_sort_compiles_to(sort: Any, perspective: Perspective, sql: str) -> None:
    assert sort_sql(sort, perspective) == sql


SORT_ERRORS: list[tuple[Any, str, str]] = [
    # (sort, error path, message fragment)
    ("nope", "nope", "unknown field 'nope'"),
    ("-nope.x", "nope.x", "unknown field"),
    ("tags", "tags", "cannot sort by an array field"),
    ("categories", "categories", "cannot sort by an array field"),
    ("author", "author", "cannot sort by a reference field"),
    ("author.id", "author.id", "reference"),
    ("seo", "seo", "cannot sort by an object"),
    ("coverImage", "coverImage", "cannot sort by an object, asset or rich-text field"),
    ("author.name", "author.name", "through a reference"),
    ("-", "sort[0]", "empty field name"),
    (["title", ""], "sort[1]", "empty field name"),
    ("title.", "title.", "empty path segment"),
    ([5], "sort[0]", "expected a field name"),
    (5, "sort", "expected a field or a list"),
    (["title"] * 11, "sort", "more than 10"),
]


@pytest.mark.parametrize(("sort", "path", "message"), SORT_ERRORS)
def test_sort_input_errors(sort: Any, path: str, message: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        sort_sql(sort)
    assert info.value.path == path
    assert message in info.value.message


def test_datetime_values_are_normalised_to_utc() -> None:
    tz = timezone(timedelta(hours=-5))
    _, values = where_sql({"createdAt": {"greater_than": datetime(2024, 1, 1, 19, tzinfo=tz)}})
    assert values == [datetime(2024, 1, 2, 0, tzinfo=UTC)]
    assert values[0].tzinfo == UTC


def test_values_never_enter_the_sql_text() -> None:
    hostile = "'; drop table cms_documents; --"
    where = {
        "title": {"contains": hostile, "like": hostile, "in": [hostile]},
        "author.name": hostile,
        "tags": hostile,
        "createdBy": hostile,
    }
    sql, values = where_sql(where)
    assert sql is not None
    assert "drop" not in sql
    assert hostile in values


def test_a_float_is_bound_as_the_number_written() -> None:
    """Compared as SQL numbers, 0.1 is bound as 0.1, not as its float's binary expansion; in a
    containment document it is written as JSON writes it."""
    scores = parse_schema_type(
        {
            "type": "document",
            "name": "scored",
            "fields": [
                {"name": "score", "type": "number"},
                {"name": "scores", "type": "array", "of": [{"type": "number"}]},
            ],
        }
    )
    registry = Registry([scores])
    cases = {
        "equals": ({"score": 0.1}, [Decimal("0.1")]),
        "in": ({"score": {"in": [0.1, 2]}}, [[Decimal("0.1"), 2]]),
        "range": ({"score": {"greater_than": 1e-7}}, [Decimal("1e-07")]),
        "containment": ({"scores": {"equals": 0.1}}, ['{"scores":[0.1]}']),
        "containment in": ({"scores": {"in": [0.1, 3]}}, [['{"scores":[0.1]}', '{"scores":[3]}']]),
    }
    for name, (where, expected) in cases.items():
        _, values = where_sql(where, registry=registry, type_name="scored")
        assert values == expected, name
        assert [type(v) for v in _flat(values)] == [type(v) for v in _flat(expected)], name


def _flat(values: list[Any]) -> list[Any]:
    return [item for value in values for item in (value if isinstance(value, list) else [value])]
