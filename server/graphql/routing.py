"""Which operations the resolver path may run on a read replica.

A query whose every root field is a document read (`<type>(id)`, `all<Type>`, `all<Type>Page`, a
singleton's `<type>`, `documents`: the fields `server/query/plan.py` knows) and whose every
`perspective` argument is `published` (or left to its default) reads nothing a replica lacks but
recent writes, which the consistency token covers. Everything else (drafts, version history,
assets, access and organization queries, introspection, mutations) runs on the primary. The
compiled path decides from its bound statement instead (`Statement.reads_drafts`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    NullValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
    VariableNode,
    parse,
)

from server.graphql.schema import MAX_TOKENS
from server.model.reading import DEFAULT_PERSPECTIVE
from server.query.plan import RootField, chosen_operation

PERSPECTIVE = "perspective"


def published_reads_only(
    query: str,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    roots: Mapping[str, RootField],
) -> bool:
    """Whether the operation is a query of published documents only (False when unsure).

    Args:
        query: the document's text.
        operation_name: the operation to run.
        variables: the request's variables (a `perspective` may come from one).
        roots: the document read fields of the schema (`Planner.roots`).
    """
    document = _parsed(query)
    if document is None:
        return False
    operation = chosen_operation(document, operation_name)
    if operation is None or operation.operation != OperationType.QUERY:
        return False
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    fields = _root_fields(operation.selection_set, fragments, set())
    if not fields:
        return False
    for field in fields:
        if field.name.value not in roots:
            return False
        for argument in field.arguments or ():
            if argument.name.value != PERSPECTIVE:
                continue
            value = _value(argument.value, operation, variables or {})
            # The resolvers read an explicit null as the default (`perspective or DEFAULT`).
            if value is not None and value != DEFAULT_PERSPECTIVE:
                return False
    return True


@functools.lru_cache(maxsize=512)
def _parsed(query: str) -> DocumentNode | None:
    try:
        return parse(query, max_tokens=MAX_TOKENS)
    except GraphQLError:
        return None


def _root_fields(
    selection_set: SelectionSetNode,
    fragments: dict[str, FragmentDefinitionNode],
    seen: set[str],
) -> list[FieldNode]:
    """Every field at the root, whatever @include / @skip decide."""
    fields: list[FieldNode] = []
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            fields.append(selection)
        elif isinstance(selection, InlineFragmentNode):
            fields.extend(_root_fields(selection.selection_set, fragments, seen))
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
            seen.add(selection.name.value)
            # An unknown fragment fails validation, before any statement runs.
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                fields.extend(_root_fields(fragment.selection_set, fragments, seen))
    return fields


_UNKNOWN = object()


def _value(
    node: ValueNode, operation: OperationDefinitionNode, variables: Mapping[str, Any]
) -> object:
    """An argument's value when it is a string or null (a literal, or a variable's value or
    default); anything else is `_UNKNOWN`, which is not `published`."""
    if isinstance(node, VariableNode):
        name = node.name.value
        if name in variables:
            return variables[name]
        for definition in operation.variable_definitions or ():
            if definition.variable.name.value == name:
                default = definition.default_value
                return None if default is None else _value(default, operation, {})
        return None
    if isinstance(node, StringValueNode):
        return node.value
    if isinstance(node, NullValueNode):
        return None
    return _UNKNOWN
