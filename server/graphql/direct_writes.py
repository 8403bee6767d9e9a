"""Document mutations whose answer is the written row's own fields, run without Strawberry.

An editor's autosave is `updatePost(id, data, expectedRevision) { id revision }`, and then
`publishPost(id) { id revision }`: the work is the local API's, the answer a few fields of the row
it wrote. Through Strawberry each such request also pays for the execution machinery (extension
hooks, argument conversion, the typed instance, field completion), which costs more CPU than the
write itself. Here such an operation is planned once per (schema, document text, operation name)
and then run directly: the variables coerced by graphql-core as execution would, the same local API
call in the same unit of work (`RequestContext.unit`), the answer written from the row (the
`*_row` methods of `Collection`, which skip rendering the document's data).

What is served: a mutation of exactly one root field, `update<Type>`, `publish<Type>` or
`unpublish<Type>` of a generated document type, with arguments as declared, selecting only the
`Document` fields that come from the row (`DIRECT_FIELDS`) and `__typename`, without fragments or
directives. Anything else has no plan and runs through Strawberry.

Only the happy path is served: when the local API refuses (a stale revision, a rule the document
breaks, a missing capability, ...), the transaction rolls back and the resolver path runs the
request from the start and answers it, with exactly the error it always gives. Once a commit has
been attempted there is no second run: a failed commit is answered here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import orjson
from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLField,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    parse,
    specified_rules,
)
from graphql.execution.values import get_argument_values, get_variable_values
from strawberry.schema.schema import validate_document

from server.engine.local_api import render
from server.model.names import graphql_name
from server.query.limits import operation_limits
from server.query.plan import PlanCache, chosen_operation

if TYPE_CHECKING:
    from server.engine.local_api import DocumentRow
    from server.graphql.typegen import GeneratedTypes

log = logging.getLogger(__name__)

WriteKind = Literal["update", "publish", "unpublish"]
PLAN_CACHE_SIZE = 256

# The arguments each kind of mutation declares (`server/graphql/resolvers.py`): a field whose
# arguments differ (a type served another way) is not served here.
_ARGUMENTS: dict[WriteKind, frozenset[str]] = {
    "update": frozenset({"id", "data", "publish", "expectedRevision"}),
    "publish": frozenset({"id", "expectedRevision"}),
    "unpublish": frozenset({"id"}),
}


def _meta(key: str) -> Any:
    return lambda doc: doc["_meta"].get(key)


# `Document` fields whose value is the row's (as `typegen.document_instance` sets them), in the
# form GraphQL serializes them: timestamps are ISO 8601 text already.
DIRECT_FIELDS: dict[str, Any] = {
    "id": lambda doc: doc["id"],
    "_id": lambda doc: doc["id"],
    "_ref": lambda doc: doc["id"],
    "type": _meta("type"),
    "status": lambda doc: doc["_meta"].get("status", "draft"),
    "revision": lambda doc: doc["_meta"].get("revision", 0),
    "publishedHash": _meta("publishedHash"),
    "hasUnpublishedChanges": lambda doc: bool(doc["_meta"].get("hasUnpublishedChanges")),
    "createdAt": _meta("createdAt"),
    "updatedAt": _meta("updatedAt"),
    "publishedAt": _meta("publishedAt"),
    "_resolved": lambda doc: True,
}


@dataclass(frozen=True)
class WritePlan:
    operation: OperationDefinitionNode
    field: FieldNode
    definition: GraphQLField
    kind: WriteKind
    type_name: str
    typename: str  # the document type's GraphQL name, for `__typename`
    response_key: str
    # (response key, field name) in selection order.
    selection: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class WriteCall:
    """A planned mutation with its arguments coerced."""

    plan: WritePlan
    arguments: dict[str, Any]

    def body(self, row: DocumentRow) -> bytes:
        """The response, as the resolver path writes it for the same row."""
        # The document as the local API renders it, without its data: none of it is selected.
        doc = render(row, {})
        answer: dict[str, Any] = {}
        for key, name in self.plan.selection:
            answer[key] = self.plan.typename if name == "__typename" else DIRECT_FIELDS[name](doc)
        return orjson.dumps({"data": {self.plan.response_key: answer}})


class WritePlanner:
    """Plans for one schema: `plan(query, operation_name)`, or None when Strawberry must run it."""

    def __init__(
        self,
        schema: GraphQLSchema,
        generated: GeneratedTypes,
        *,
        max_tokens: int,
        max_depth: int,
        max_aliases: int,
    ) -> None:
        self.schema = schema
        self.max_tokens = max_tokens
        self._rules = (
            *specified_rules,
            operation_limits(max_depth=max_depth, max_aliases=max_aliases),
        )
        self._roots: dict[str, tuple[WriteKind, str]] = {}
        for schema_type in generated.registry.document_types():
            cls = graphql_name(schema_type.name)
            for kind in _ARGUMENTS:
                self._roots[f"{kind}{cls}"] = (kind, schema_type.name)
        self._cache: PlanCache[WritePlan] = PlanCache(self._make, PLAN_CACHE_SIZE)

    def plan(self, query: str, operation_name: str | None) -> WritePlan | None:
        return self._cache.get(query, operation_name)

    def bind(self, plan: WritePlan, variables: dict[str, Any] | None) -> WriteCall | None:
        """The call with its arguments coerced as execution would, or None when a value is
        refused (the resolver path then reports it)."""
        coerced = get_variable_values(
            self.schema, plan.operation.variable_definitions or (), variables or {}
        )
        if isinstance(coerced, list):
            return None
        try:
            arguments = get_argument_values(plan.definition, plan.field, coerced)
        except GraphQLError:
            return None
        return WriteCall(plan, arguments)

    def _make(self, query: str, operation_name: str | None) -> WritePlan | None:
        try:
            document = parse(query, max_tokens=self.max_tokens)
        except GraphQLError:
            return None
        if any(not isinstance(d, OperationDefinitionNode) for d in document.definitions):
            return None  # fragments: served by Strawberry
        operation = chosen_operation(document, operation_name)
        if operation is None or operation.operation != OperationType.MUTATION:
            return None
        if operation.directives or len(operation.selection_set.selections) != 1:
            return None
        field = operation.selection_set.selections[0]
        if not isinstance(field, FieldNode) or field.directives or field.selection_set is None:
            return None
        root = self._roots.get(field.name.value)
        mutation_type = self.schema.mutation_type
        if root is None or mutation_type is None:
            return None
        kind, type_name = root
        definition = mutation_type.fields.get(field.name.value)
        if definition is None or frozenset(definition.args) != _ARGUMENTS[kind]:
            return None
        selection: list[tuple[str, str]] = []
        for node in field.selection_set.selections:
            if not isinstance(node, FieldNode) or node.directives or node.arguments:
                return None
            name = node.name.value
            if node.selection_set is not None or (
                name not in DIRECT_FIELDS and name != "__typename"
            ):
                return None
            selection.append(((node.alias or node.name).value, name))
        if validate_document(self.schema, document, self._rules):
            return None
        return WritePlan(
            operation=operation,
            field=field,
            definition=definition,
            kind=kind,
            type_name=type_name,
            typename=graphql_name(type_name),
            response_key=(field.alias or field.name).value,
            selection=tuple(selection),
        )
