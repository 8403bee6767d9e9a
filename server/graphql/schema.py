"""The GraphQL schema of one content model: generated document fields plus the fixed ones."""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import ASTValidationRule, GraphQLError
from strawberry.directive import StrawberryDirective
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, ParserCache
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import create_type
from strawberry.types import ExecutionContext

from server.config import IntrospectionAccess
from server.engine.context import Context, parse_id
from server.engine.local_api import Collection
from server.errors import ForbiddenError, InvalidInputError, NotFoundError
from server.graphql import types as static
from server.graphql.access import AccessMutations, AccessQueries
from server.graphql.assets import AssetMutations, AssetQueries
from server.graphql.context import RequestContext
from server.graphql.direct_writes import WritePlanner
from server.graphql.extensions import CachedValidation, ErrorCodes, UnitOfWork
from server.graphql.introspection import access_rules
from server.graphql.resolvers import document_fields, require
from server.graphql.scalars import JSON
from server.graphql.schedules import ScheduleMutations, ScheduleQueries
from server.graphql.typegen import GeneratedTypes, generate
from server.graphql.webhooks import WebhookMutations, WebhookQueries
from server.model.types import Registry
from server.query.limits import operation_limits
from server.query.plan import Planner

log = logging.getLogger(__name__)

MAX_QUERY_DEPTH = 15
MAX_ALIASES = 50
MAX_TOKENS = 5000
PARSER_CACHE_SIZE = 1024
VALIDATION_CACHE_SIZE = 1024


class LRU:
    """A small least-recently-used map (query text -> validation errors)."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[str | None, list[GraphQLError]] = OrderedDict()

    def get(self, key: str | None) -> list[GraphQLError] | None:
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def put(self, key: str | None, value: list[GraphQLError]) -> None:
        self._items[key] = value
        if len(self._items) > self.maxsize:
            self._items.popitem(last=False)


class CMSSchema(strawberry.Schema):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._types_by_name: dict[str, Any] = {}
        self._directives_by_name: dict[str, StrawberryDirective[Any] | None] = {}
        super().__init__(*args, **kwargs)
        self.validation_cache = LRU(VALIDATION_CACHE_SIZE)

    # Strawberry memoises these two with `functools.lru_cache` on the method: one cache for the
    # whole process, keyed by the schema, which would keep every replaced schema alive. These keep
    # them on the schema instead (names come from the schema, so they stay few).

    def get_type_by_name(self, name: str) -> Any:  # type: ignore[override]
        if name not in self._types_by_name:
            self._types_by_name[name] = _uncached(strawberry.Schema.get_type_by_name)(self, name)
        return self._types_by_name[name]

    def get_directive_by_name(  # type: ignore[override]
        self, graphql_name: str
    ) -> StrawberryDirective[Any] | None:
        if graphql_name not in self._directives_by_name:
            found = _uncached(strawberry.Schema.get_directive_by_name)(self, graphql_name)
            self._directives_by_name[graphql_name] = found
        return self._directives_by_name[graphql_name]

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # `ErrorCodes` logs what is unexpected; client mistakes are not server errors.
        return None


@dataclass(frozen=True)
class BuiltSchema:
    schema: CMSSchema
    generated: GeneratedTypes
    planner: Planner
    write_planner: WritePlanner

    @property
    def registry(self) -> Registry:
        return self.generated.registry


def _ctx(info: strawberry.Info) -> RequestContext:
    context: RequestContext = info.context
    return context


@strawberry.type
class _Fixed:
    """Fields that exist whatever the content model is."""

    @strawberry.field(description="Documents of any type in the seed's JSON `where` syntax")
    async def documents(
        self,
        info: strawberry.Info,
        type: str,
        where: JSON | None = None,
        sort: list[str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        perspective: str | None = None,
        depth: int | None = None,
    ) -> static.DocumentPage:
        context = _ctx(info)
        unit = await context.unit()
        if where is not None and not isinstance(where, dict):
            raise InvalidInputError("where must be an object", path="where")
        result = await context.api.collection(type, unit.registry).find(
            unit,
            where=where,
            sort=sort,
            limit=50 if limit is None else limit,
            offset=offset or 0,
            depth=0 if depth is None else depth,
            perspective=perspective or "published",
        )
        return static.DocumentPage.of(result, result.items)

    @strawberry.field(description="A document's version history, newest first")
    async def documentVersions(
        self,
        info: strawberry.Info,
        id: strawberry.ID,
        limit: int | None = 20,
        offset: int | None = 0,
    ) -> static.DocumentVersionPage:
        context = _ctx(info)
        unit = await context.unit()
        collection = await _collection_of(context, unit, id, "document.read")
        page = await collection.versions(
            unit, id, limit=20 if limit is None else limit, offset=offset or 0
        )
        return static.DocumentVersionPage(
            versions=[
                static.DocumentVersion(
                    versionNumber=v.version_number,
                    eventType=v.event_type,
                    data=v.data,
                    createdAt=v.created_at,
                    createdBy=v.created_by,
                    restoredFrom=v.restored_from,
                )
                for v in page.items
            ],
            totalVersions=page.total or 0,
            limit=page.limit,
            offset=page.offset,
        )

    @strawberry.field(description="The registered schema types, in their JSON form")
    async def schemaTypes(self, info: strawberry.Info) -> list[static.SchemaTypeInfo]:
        await _ctx(info).principal()
        registry = _ctx(info).generated.registry
        return [
            static.SchemaTypeInfo(
                name=t.name,
                title=t.title,
                kind=t.kind,
                description=t.description,
                definition=t.to_json(),
            )
            for t in registry.values()
        ]


@strawberry.type
class _FixedMutations:
    @strawberry.mutation(description="Make an old version the draft again")
    async def restoreDocumentVersion(
        self,
        info: strawberry.Info,
        id: strawberry.ID,
        versionNumber: int,
    ) -> static.Document:
        context = _ctx(info)
        unit = await context.unit()
        collection = await _collection_of(context, unit, id, "document.update")
        doc = await collection.restore_version(unit, id, versionNumber, depth=2)
        instance: static.Document = _instance(context, doc)
        return instance

    @strawberry.mutation(description="Register or change a schema type (needs schema.manage)")
    async def registerSchemaType(
        self, info: strawberry.Info, definition: JSON
    ) -> static.SchemaTypeInfo:
        context = _ctx(info)
        await require(context, "schema.manage")
        unit = await context.unit()
        schema_type = await context.api.model.register(unit.tx, definition, check=_check_buildable)
        return static.SchemaTypeInfo(
            name=schema_type.name,
            title=schema_type.title,
            kind=schema_type.kind,
            description=schema_type.description,
            definition=schema_type.to_json(),
        )

    @strawberry.mutation(
        description="Remove a schema type; its documents stay (needs schema.manage)"
    )
    async def deleteSchemaType(self, info: strawberry.Info, name: str) -> static.DeleteResult:
        context = _ctx(info)
        await require(context, "schema.manage")
        unit = await context.unit()
        await context.api.model.delete(unit.tx, name, check=_check_buildable)
        return static.DeleteResult(success=True)


async def _collection_of(
    context: RequestContext, unit: Context, id: str, capability: str
) -> Collection:
    """The collection of the document `id`, for an operation on its version history.

    What the caller may do is checked before the document is looked up, so a document it cannot
    read answers exactly as one that does not exist.
    """
    unit.require(capability)
    unit.require("document.read")
    unit.perspective("draft")  # version history is draft data
    row = await context.api.adapter.find_document(unit.tx, id=parse_id(id))
    if row is None:
        raise NotFoundError(f"document {id} not found")
    return context.api.collection(row.type, unit.registry)


def _instance(context: RequestContext, doc: dict[str, Any]) -> Any:
    from server.graphql.typegen import document_instance

    instance = document_instance(context.generated, doc)
    if instance is None:
        raise ForbiddenError("the document's type is no longer registered")
    return instance


def _check_buildable(registry: Registry) -> None:
    """A content model is accepted only if its GraphQL schema can be built."""
    try:
        build_schema(registry)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"the content model cannot be served over GraphQL: {exc}") from exc


def build_schema(
    registry: Registry, *, introspection: IntrospectionAccess = "everyone"
) -> BuiltSchema:
    """The GraphQL schema of `registry`; `introspection` says who may introspect it."""
    generated = generate(registry)
    query_fields = []
    mutation_fields = []
    for schema_type in registry.document_types():
        queries, mutations = document_fields(generated, schema_type)
        query_fields.extend(queries)
        mutation_fields.extend(mutations)
    query_fields.extend(_fields_of(_Fixed))
    mutation_fields.extend(_fields_of(_FixedMutations))
    query_fields.extend(_fields_of(AssetQueries))
    mutation_fields.extend(_fields_of(AssetMutations))
    query_fields.extend(_fields_of(AccessQueries))
    mutation_fields.extend(_fields_of(AccessMutations))
    query_fields.extend(_fields_of(ScheduleQueries))
    mutation_fields.extend(_fields_of(ScheduleMutations))
    query_fields.extend(_fields_of(WebhookQueries))
    mutation_fields.extend(_fields_of(WebhookMutations))
    query = create_type("Query", query_fields)
    mutation = create_type("Mutation", mutation_fields)
    extra_types = [*generated.documents.values(), *static.STATIC_TYPES]
    schema = CMSSchema(
        query=query,
        mutation=mutation,
        types=extra_types,
        config=StrawberryConfig(auto_camel_case=False),
        extensions=_extensions(introspection),
    )
    planner = Planner(
        schema,
        generated,
        max_tokens=MAX_TOKENS,
        max_depth=MAX_QUERY_DEPTH,
        max_aliases=MAX_ALIASES,
    )
    write_planner = WritePlanner(
        schema._schema,
        generated,
        max_tokens=MAX_TOKENS,
        max_depth=MAX_QUERY_DEPTH,
        max_aliases=MAX_ALIASES,
    )
    return BuiltSchema(
        schema=schema, generated=generated, planner=planner, write_planner=write_planner
    )


def _extensions(introspection: IntrospectionAccess) -> list[Any]:
    rules: list[type[ASTValidationRule]] = [
        operation_limits(max_depth=MAX_QUERY_DEPTH, max_aliases=MAX_ALIASES),
        *access_rules(introspection),
    ]
    return [
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: AddValidationRules(rules),
        lambda: ParserCache(maxsize=PARSER_CACHE_SIZE),
        CachedValidation,
        UnitOfWork,
        ErrorCodes,
    ]


def _uncached(method: Any) -> Any:
    """The function under a `functools.lru_cache`."""
    return method.__wrapped__


def _fields_of(cls: type) -> list[Any]:
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    return list(definition.fields)
