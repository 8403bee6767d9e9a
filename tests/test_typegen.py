"""Type generation from schema types: names, field mapping, unions, inputs (no database)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from server.graphql.schema import build_schema
from server.model.json_form import load_schema_dir, parse_schema_type
from server.model.types import Registry


@pytest.fixture(scope="module")
def sdl() -> str:
    return build_schema(load_schema_dir(Path("schema"))).schema.as_str()


def block(sdl: str, header: str) -> str:
    start = sdl.index(header + " {")
    return sdl[start : sdl.index("\n}", start) + 2]


def test_document_types_implement_the_interface_with_nullable_content(sdl: str) -> None:
    post = block(sdl, "type Post implements Document")
    for line in (
        "id: ID",
        "status: String!",
        "revision: Int!",
        "hasUnpublishedChanges: Boolean!",
        "_resolved: Boolean!",
        "_raw: JSON",
        "_id: ID",
        "_ref: ID!",
        "title: String",
        "views: Int",
        "rating: Float",
        "featured: Boolean",
        "tags: [String]",
        "publishedDate: DateTime",
        "eventDate: Date",
        "coverImage: Image",
        "attachment: FileAsset",
        "author: Author",
        "categories: [Category]",
        "seo: PostSeo",
        "body: JSON",
    ):
        assert f"  {line}\n" in post, line
    assert "title: String!" not in post  # required fields stay nullable: drafts may be incomplete


def test_unions_and_named_object_types(sdl: str) -> None:
    assert "union PageSectionsItem = PageSectionsHero | PageSectionsTextBlock" in sdl
    assert "  sections: [PageSectionsItem]\n" in block(sdl, "type Page implements Document")
    assert "  seo: SeoMeta\n" in block(sdl, "type Page implements Document")


def test_inputs(sdl: str) -> None:
    where = block(sdl, "input PostWhereInput")
    for line in (
        "id: IDFilter",
        "createdAt: DateTimeFilter",
        "title: StringFilter",
        "views: NumberFilter",
        "featured: BooleanFilter",
        "publishedDate: DateTimeFilter",
        "eventDate: DateFilter",
        "tags: StringFilter",
        "author: AuthorReferenceFilter",
        "categories: CategoryReferenceFilter",
        "seo: PostSeoWhereInput",
        "AND: [PostWhereInput!]",
        "OR: [PostWhereInput!]",
        "NOT: PostWhereInput",
    ):
        assert f"  {line}\n" in where, line
    data = block(sdl, "input PostDataInput")
    for line in (
        "author: ID",
        "categories: [ID!]",
        "coverImage: ImageInput",
        "views: Int",
        "seo: PostSeoInput",
        "publishedDate: DateTime",
    ):
        assert f"  {line}\n" in data, line
    reference = block(sdl, "input AuthorReferenceFilter")
    assert "  where: AuthorWhereInput\n" in reference


def test_operations(sdl: str) -> None:
    query = block(sdl, "type Query")
    assert '  post(id: ID!, perspective: String = "published", depth: Int = 2): Post\n' in query
    assert "allPost(where: PostWhereInput = null" in query
    assert "): [Post!]!\n" in query
    assert "): PostPage!\n" in query
    mutation = block(sdl, "type Mutation")
    for name in (
        "createPost(data: PostDataInput!",
        "updatePost(id: ID!, data: JSON!",
        "publishPost(id: ID!, expectedRevision: Int",
        "unpublishPost(id: ID!)",
        "deletePost(id: ID!): DeleteResult!",
    ):
        assert name in mutation, name


def _registry(*definitions: dict[str, Any]) -> Registry:
    return Registry(parse_schema_type(d) for d in definitions)


def test_hyphenated_names_become_valid_identifiers() -> None:
    units = {
        "type": "document",
        "name": "measurement-units",
        "title": "Units",
        "fields": [{"name": "label", "type": "string"}],
    }
    sdl = build_schema(_registry(units)).schema.as_str()
    assert "type MeasurementUnits implements Document {" in sdl
    assert "measurementUnits(id: ID!" in sdl
    assert "allMeasurementUnitsPage(" in sdl
    assert "createMeasurementUnits(data: MeasurementUnitsDataInput!" in sdl


def test_python_keywords_as_field_names_are_served() -> None:
    odd = {
        "type": "document",
        "name": "odd",
        "title": "Odd",
        "fields": [{"name": "from", "type": "string"}, {"name": "self", "type": "number"}],
    }
    odd_type = block(build_schema(_registry(odd)).schema.as_str(), "type Odd implements Document")
    assert "  from: String\n" in odd_type
    assert "  self: Float\n" in odd_type


def test_multi_target_references_become_unions() -> None:
    a = {"type": "document", "name": "a", "title": "A", "fields": [{"name": "x", "type": "string"}]}
    b = {"type": "document", "name": "b", "title": "B", "fields": [{"name": "y", "type": "string"}]}
    link = {
        "type": "document",
        "name": "link",
        "title": "Link",
        "fields": [{"name": "target", "type": "reference", "to": [{"type": "a"}, {"type": "b"}]}],
    }
    sdl = build_schema(_registry(a, b, link)).schema.as_str()
    assert "union LinkTargetTarget = A | B" in sdl
    assert "  target: IDFilter\n" in block(sdl, "input LinkWhereInput")


def test_a_union_may_name_types_generated_after_it() -> None:
    # The object type comes first and the document names itself: the union's members are made later.
    link = {
        "type": "object",
        "name": "link",
        "title": "Link",
        "fields": [{"name": "to", "type": "reference", "to": [{"type": "note"}, {"type": "b"}]}],
    }
    note = {
        "type": "document",
        "name": "note",
        "title": "Note",
        "fields": [
            {"name": "seeAlso", "type": "reference", "to": [{"type": "note"}, {"type": "b"}]},
            {"name": "link", "type": "link"},
        ],
    }
    b = {"type": "document", "name": "b", "title": "B", "fields": [{"name": "y", "type": "string"}]}
    sdl = build_schema(_registry(link, note, b)).schema.as_str()
    assert "union LinkToTarget = Note | B" in sdl
    assert "union NoteSeeAlsoTarget = Note | B" in sdl
    assert "  seeAlso: NoteSeeAlsoTarget\n" in block(sdl, "type Note implements Document")
