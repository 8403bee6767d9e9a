"""Root fields. Each is thin: it checks nothing itself and calls the local API inside the request's
unit of work, then turns the local API's JSON into the generated types."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import strawberry
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
)
from strawberry.types.base import StrawberryList, StrawberryOptional
from strawberry.types.field import StrawberryField

from server.engine.context import Context
from server.engine.local_api import Collection
from server.errors import NotFoundError
from server.graphql import types as static
from server.graphql.context import RequestContext
from server.graphql.inputs import data_json
from server.graphql.scalars import JSON
from server.graphql.typegen import GeneratedTypes, document_instance
from server.model.names import graphql_name, to_camel_case
from server.model.pages import Page
from server.model.reading import DEFAULT_DEPTH, DEFAULT_LIMIT, DEFAULT_PERSPECTIVE
from server.model.types import SchemaType
from server.query import kinds
from server.query.kinds import Kind
from server.query.where_input import where_json


def _field(
    name: str, resolver: Callable[..., Any], annotations: dict[str, Any], description: str
) -> StrawberryField:
    # Resolvers are made per schema type, so their argument and return types are set here, as the
    # generated classes themselves. The name must be unique within its root type.
    resolver.__annotations__ = annotations
    resolver.__name__ = resolver.__qualname__ = name
    field: StrawberryField = strawberry.field(name=name, resolver=resolver, description=description)
    return field


def _context(info: strawberry.Info) -> RequestContext:
    context: RequestContext = info.context
    return context


def _sort(sort: list[str] | None) -> list[str] | None:
    return list(sort) if sort else None


def reference_depth(
    generated: GeneratedTypes,
    cls: str,
    selection_sets: Sequence[SelectionSetNode | None],
    fragments: dict[str, FragmentDefinitionNode],
    limit: int,
) -> int:
    """How deep references must be inlined for this selection of class `cls` (at most `limit`).

    A write answers with the document it wrote; inlining references no one selected costs a
    statement per level. Conservative: fragments count whatever their type condition, @skip and
    @include are ignored, and JSON fields and `_raw` (which show everything inlined) need `limit`.
    """
    need = 0
    kinds_of = generated.class_fields.get(cls, {})
    for node in _fields(selection_sets, fragments, set()):
        name = node.name.value
        if name == "_raw":
            return limit
        kind = kinds_of.get(name)
        if kind is not None:
            need = max(need, _kind_depth(generated, kind, node, fragments, limit))
        if need >= limit:
            return limit
    return need


def _kind_depth(
    generated: GeneratedTypes,
    kind: Kind,
    node: FieldNode,
    fragments: dict[str, FragmentDefinitionNode],
    limit: int,
) -> int:
    if isinstance(kind, kinds.Json):
        return limit
    if isinstance(kind, kinds.Object):
        return reference_depth(generated, kind.class_name, [node.selection_set], fragments, limit)
    if isinstance(kind, kinds.ListOf):
        return _kind_depth(generated, kind.item, node, fragments, limit)
    if isinstance(kind, kinds.ByItemType):
        return max(_kind_depth(generated, k, node, fragments, limit) for _, k in kind.members)
    if isinstance(kind, kinds.Reference):
        below = max(
            reference_depth(generated, graphql_name(t), [node.selection_set], fragments, limit - 1)
            for t in kind.targets
        )
        return min(limit, 1 + below)
    return 0


def selected_names(
    selection_sets: Sequence[SelectionSetNode | None],
    fragments: dict[str, FragmentDefinitionNode],
) -> set[str]:
    """The names of the fields selected directly in `selection_sets` (through fragments too)."""
    return {node.name.value for node in _fields(selection_sets, fragments, set())}


def _fields(
    selection_sets: Sequence[SelectionSetNode | None],
    fragments: dict[str, FragmentDefinitionNode],
    seen: set[str],
) -> Iterator[FieldNode]:
    for selection_set in selection_sets:
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                yield selection
            elif isinstance(selection, InlineFragmentNode):
                yield from _fields([selection.selection_set], fragments, seen)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
                seen.add(selection.name.value)
                fragment = fragments[selection.name.value]
                yield from _fields([fragment.selection_set], fragments, seen)


def document_fields(
    out: GeneratedTypes, schema_type: SchemaType
) -> tuple[list[StrawberryField], list[StrawberryField]]:
    """The query and mutation fields of one document type."""
    type_name = schema_type.name
    cls_name = graphql_name(type_name)
    single = to_camel_case(type_name)
    document = out.documents[type_name]
    fields_of = schema_type.fields

    def convert(doc: dict[str, Any] | None, perspective: str) -> Any:
        return document_instance(out, doc, perspective) if doc is not None else None

    def written(publish: bool | None) -> str:
        """The perspective a write answers in."""
        return "published" if publish else "draft"

    def answer_depth(info: strawberry.Info) -> int:
        """The depth a write's answer needs: only as deep as its selection reads references."""
        return reference_depth(
            out,
            cls_name,
            [node.selection_set for node in info._raw_info.field_nodes],
            info._raw_info.fragments,
            DEFAULT_DEPTH,
        )

    async def get_one(
        info: strawberry.Info,
        id: strawberry.ID,
        perspective: str | None = DEFAULT_PERSPECTIVE,
        depth: int | None = DEFAULT_DEPTH,
    ) -> Any:
        context = _context(info)
        unit = await context.unit()
        doc = await context.api.collection(type_name, unit.registry).find_by_id(
            unit,
            id,
            depth=DEFAULT_DEPTH if depth is None else depth,
            perspective=perspective or DEFAULT_PERSPECTIVE,
        )
        return convert(doc, perspective or DEFAULT_PERSPECTIVE)

    async def get_singleton(
        info: strawberry.Info,
        perspective: str | None = DEFAULT_PERSPECTIVE,
        depth: int | None = DEFAULT_DEPTH,
    ) -> Any:
        context = _context(info)
        unit = await context.unit()
        doc = await context.api.collection(type_name, unit.registry).get(
            unit,
            depth=DEFAULT_DEPTH if depth is None else depth,
            perspective=perspective or DEFAULT_PERSPECTIVE,
        )
        return convert(doc, perspective or DEFAULT_PERSPECTIVE)

    async def find(
        info: strawberry.Info,
        where: Any = None,
        perspective: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
        sort: list[str] | None = None,
        depth: int | None = None,
        *,
        with_total: bool,
    ) -> tuple[Page[dict[str, Any]], list[Any]]:
        context = _context(info)
        unit = await context.unit()
        result = await context.api.collection(type_name, unit.registry).find(
            unit,
            where=where_json(where) if where is not None else None,
            sort=_sort(sort),
            limit=DEFAULT_LIMIT if limit is None else limit,
            offset=offset or 0,
            depth=DEFAULT_DEPTH if depth is None else depth,
            perspective=perspective or DEFAULT_PERSPECTIVE,
            with_total=with_total,
        )
        chosen = perspective or DEFAULT_PERSPECTIVE
        return result, [convert(doc, chosen) for doc in result.items]

    async def get_all(
        info: strawberry.Info,
        where: Any = None,
        perspective: str | None = DEFAULT_PERSPECTIVE,
        limit: int | None = DEFAULT_LIMIT,
        offset: int | None = 0,
        sort: list[str] | None = None,
        depth: int | None = DEFAULT_DEPTH,
    ) -> Any:
        _, docs = await find(info, where, perspective, limit, offset, sort, depth, with_total=False)
        return docs

    async def get_page(
        info: strawberry.Info,
        where: Any = None,
        perspective: str | None = DEFAULT_PERSPECTIVE,
        limit: int | None = DEFAULT_LIMIT,
        offset: int | None = 0,
        sort: list[str] | None = None,
        depth: int | None = DEFAULT_DEPTH,
    ) -> Any:
        result, docs = await find(
            info, where, perspective, limit, offset, sort, depth, with_total=True
        )
        return out.pages[type_name](**static.page_fields(result, docs))

    async def create(info: strawberry.Info, data: Any, publish: bool | None = False) -> Any:
        context = _context(info)
        unit = await context.unit()
        document = data_json(unit.registry, fields_of, data)
        doc = await context.api.collection(type_name, unit.registry).create(
            unit, document, publish=bool(publish), depth=answer_depth(info)
        )
        return convert(doc, written(publish))

    async def the_singleton(info: strawberry.Info) -> tuple[Context, Collection, str]:
        """The unit, the collection and the singleton's id, for a write without an id."""
        context = _context(info)
        unit = await context.unit()
        collection = context.api.collection(type_name, unit.registry)
        return unit, collection, str(collection.singleton_id(unit))

    async def update(
        info: strawberry.Info,
        id: strawberry.ID,
        data: JSON,
        publish: bool | None = False,
        expectedRevision: int | None = None,
    ) -> Any:
        context = _context(info)
        unit = await context.unit()
        doc = await context.api.collection(type_name, unit.registry).update(
            unit,
            id,
            data,
            publish=bool(publish),
            expected_revision=expectedRevision,
            depth=answer_depth(info),
        )
        return convert(doc, written(publish))

    async def update_singleton(
        info: strawberry.Info,
        data: JSON,
        publish: bool | None = False,
        expectedRevision: int | None = None,
    ) -> Any:
        unit, collection, id = await the_singleton(info)
        doc = await collection.update(
            unit,
            id,
            data,
            publish=bool(publish),
            expected_revision=expectedRevision,
            depth=answer_depth(info),
        )
        return convert(doc, written(publish))

    async def publish(
        info: strawberry.Info,
        id: strawberry.ID,
        expectedRevision: int | None = None,
    ) -> Any:
        context = _context(info)
        unit = await context.unit()
        doc = await context.api.collection(type_name, unit.registry).publish(
            unit, id, expected_revision=expectedRevision, depth=answer_depth(info)
        )
        return convert(doc, "published")

    async def publish_singleton(info: strawberry.Info, expectedRevision: int | None = None) -> Any:
        unit, collection, id = await the_singleton(info)
        doc = await collection.publish(
            unit, id, expected_revision=expectedRevision, depth=answer_depth(info)
        )
        return convert(doc, "published")

    async def unpublish(info: strawberry.Info, id: strawberry.ID) -> Any:
        context = _context(info)
        unit = await context.unit()
        collection = context.api.collection(type_name, unit.registry)
        return convert(await collection.unpublish(unit, id, depth=answer_depth(info)), "draft")

    async def unpublish_singleton(info: strawberry.Info) -> Any:
        unit, collection, id = await the_singleton(info)
        return convert(await collection.unpublish(unit, id, depth=answer_depth(info)), "draft")

    async def delete(info: strawberry.Info, id: strawberry.ID) -> static.DeleteResult:
        context = _context(info)
        unit = await context.unit()
        collection = context.api.collection(type_name, unit.registry)
        return await delete_answer(info, unit, collection, id)

    async def delete_singleton(info: strawberry.Info) -> static.DeleteResult:
        unit, collection, id = await the_singleton(info)
        return await delete_answer(info, unit, collection, strawberry.ID(id))

    where = StrawberryOptional(out.where_inputs[type_name])
    list_args = {
        "info": strawberry.Info,
        "where": where,
        "perspective": str | None,
        "limit": int | None,
        "offset": int | None,
        "sort": list[str] | None,
        "depth": int | None,
    }
    if schema_type.singleton:
        return _singleton_fields(
            schema_type,
            document,
            out.data_inputs[type_name],
            get_singleton,
            create,
            update_singleton,
            publish_singleton,
            unpublish_singleton,
            delete_singleton,
        )
    queries = [
        _field(
            single,
            get_one,
            {
                "info": strawberry.Info,
                "id": strawberry.ID,
                "perspective": str | None,
                "depth": int | None,
                "return": StrawberryOptional(document),
            },
            f"One {schema_type.title} by id (null when absent or not readable)",
        ),
        _field(
            f"all{cls_name}",
            get_all,
            {**list_args, "return": StrawberryList(document)},
            f"{schema_type.title} documents: filtered, sorted, one page",
        ),
        _field(
            f"all{cls_name}Page",
            get_page,
            {**list_args, "return": out.pages[type_name]},
            f"{schema_type.title} documents with the page's totals",
        ),
    ]
    mutations = [
        _field(
            f"create{cls_name}",
            create,
            {
                "info": strawberry.Info,
                "data": out.data_inputs[type_name],
                "publish": bool | None,
                "return": document,
            },
            f"Create a {schema_type.title} draft (and publish it with publish: true)",
        ),
        _field(
            f"update{cls_name}",
            update,
            {
                "info": strawberry.Info,
                "id": strawberry.ID,
                "data": JSON,
                "publish": bool | None,
                "expectedRevision": int | None,
                "return": document,
            },
            "Merge top-level keys into the draft (null removes one); the autosave path",
        ),
        _field(
            f"publish{cls_name}",
            publish,
            {
                "info": strawberry.Info,
                "id": strawberry.ID,
                "expectedRevision": int | None,
                "return": document,
            },
            "Publish the current draft",
        ),
        _field(
            f"unpublish{cls_name}",
            unpublish,
            {"info": strawberry.Info, "id": strawberry.ID, "return": document},
            "Withdraw the published version; the draft stays",
        ),
        _field(
            f"delete{cls_name}",
            delete,
            {"info": strawberry.Info, "id": strawberry.ID, "return": static.DeleteResult},
            "Delete the document and its version history",
        ),
    ]
    return queries, mutations


def _singleton_fields(
    schema_type: SchemaType,
    document: type,
    data_input: type,
    get: Callable[..., Any],
    create: Callable[..., Any],
    update: Callable[..., Any],
    publish: Callable[..., Any],
    unpublish: Callable[..., Any],
    delete: Callable[..., Any],
) -> tuple[list[StrawberryField], list[StrawberryField]]:
    """A singleton type's fields: its one document, without ids, and no lists."""
    cls_name = graphql_name(schema_type.name)
    title = schema_type.title
    info = {"info": strawberry.Info}
    queries = [
        _field(
            to_camel_case(schema_type.name),
            get,
            {**info, "perspective": str | None, "depth": int | None, "return": document},
            f"The {title} of the organization (empty until it is first saved)",
        )
    ]
    mutations = [
        _field(
            f"create{cls_name}",
            create,
            {**info, "data": data_input, "publish": bool | None, "return": document},
            f"Save the {title} for the first time (SINGLETON_EXISTS once it exists)",
        ),
        _field(
            f"update{cls_name}",
            update,
            {
                **info,
                "data": JSON,
                "publish": bool | None,
                "expectedRevision": int | None,
                "return": document,
            },
            f"Merge top-level keys into the {title} draft (null removes one); the first save"
            " creates it",
        ),
        _field(
            f"publish{cls_name}",
            publish,
            {**info, "expectedRevision": int | None, "return": document},
            f"Publish the {title} draft",
        ),
        _field(
            f"unpublish{cls_name}",
            unpublish,
            {**info, "return": document},
            f"Withdraw the published {title}; the draft stays",
        ),
        _field(
            f"delete{cls_name}",
            delete,
            {**info, "return": static.DeleteResult},
            f"Delete the {title} and its version history: it reads as empty again",
        ),
    ]
    return queries, mutations


async def delete_answer(
    info: strawberry.Info, unit: Context, collection: Collection, id: strawberry.ID
) -> static.DeleteResult:
    """Delete the document; when the selection asks, say first which documents referenced it."""
    unit.require("document.delete")
    referenced_by = None
    raw = info._raw_info
    if "referencedBy" in selected_names([n.selection_set for n in raw.field_nodes], raw.fragments):
        found = await _context(info).api.get_back_references(
            unit, id, every_plane=True, limit=DEFAULT_LIMIT
        )
        referenced_by = _context(info).back_reference_page(found, "draft")
    await collection.delete(unit, id)
    return static.DeleteResult(success=True, id=id, referencedBy=referenced_by)


async def require(context: RequestContext, capability: str) -> None:
    principal = await context.principal()
    principal.require(capability)


def not_found(what: str) -> NotFoundError:
    return NotFoundError(f"{what} not found")
