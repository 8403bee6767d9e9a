"""GraphQL document -> plan: which operations the compiled path serves, parsed and validated once.

A plan is made once per (schema, document text, operation name) and kept in a small LRU cache on
the schema. The compiled path serves queries whose every root field is a document read:
`<type>(id)`, `all<Type>`, `all<Type>Page` of a generated document type, a singleton's `<type>`,
and `documents`, with whatever they select (`referencedBy` of a document too). Anything else
(mutations, access and asset operations, introspection, a document that does not parse or
validate) has no plan and runs through Strawberry, which also answers every error.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    Visitor,
    parse,
    specified_rules,
    visit,
)
from graphql.language.visitor import SKIP
from strawberry.schema.schema import validate_document

from server.model.names import graphql_name, to_camel_case
from server.query.limits import operation_limits

if TYPE_CHECKING:
    from strawberry import Schema

    from server.query.kinds import GeneratedKinds

RootKind = Literal["one", "all", "page", "documents", "singleton"]
PLAN_CACHE_SIZE = 512
# A document's back-references (`RequestContext.referenced_by` on the resolver path).
BACK_REFERENCES = "referencedBy"
STATEMENTS_PER_PLAN = 64


@dataclass(frozen=True)
class RootField:
    """A root field the compiled path can serve: what it reads, and of which document type."""

    kind: RootKind
    type_name: str | None  # None for `documents`, whose type is an argument


@dataclass
class Plan:
    """A parsed, validated query whose root fields are all document reads."""

    document: DocumentNode
    operation: OperationDefinitionNode
    fragments: dict[str, FragmentDefinitionNode]
    # Variables that shape a selection's SQL (those @include / @skip and the arguments of
    # `referencedBy` read): their values are part of the selections' memo key.
    selection_variables: tuple[str, ...]
    # Variables used only as the `id` of `<type>(id)`: a bind value each, so a statement bound
    # for one id serves every other (`run.bind`).
    id_variables: frozenset[str] = frozenset()
    # (root response key, depth, perspective, selection variables' values, ...) -> the
    # selection's SQL and what it reads (`server.query.sql.Selection`).
    selections: dict[tuple[object, ...], Any] = field(default_factory=dict)
    # The variables' JSON -> the bound statement: frontends send the same few requests again and
    # again, and then nothing is left to do but run it. (`server.query.run.Statement`.)
    statements: OrderedDict[bytes, Any] = field(default_factory=OrderedDict)


P = TypeVar("P")


class PlanCache(Generic[P]):
    """Plans by (document text, operation name), the most recently used kept; None is kept too
    (a document the path does not serve is looked at once)."""

    def __init__(self, make: Callable[[str, str | None], P | None], size: int) -> None:
        self._make = make
        self._size = size
        self._plans: OrderedDict[tuple[str, str | None], P | None] = OrderedDict()

    def get(self, query: str, operation_name: str | None) -> P | None:
        key = (query, operation_name)
        if key in self._plans:
            self._plans.move_to_end(key)
            return self._plans[key]
        plan = self._make(query, operation_name)
        self._plans[key] = plan
        if len(self._plans) > self._size:
            self._plans.popitem(last=False)
        return plan


def chosen_operation(
    document: DocumentNode, operation_name: str | None
) -> OperationDefinitionNode | None:
    """The operation a request runs: the one named, else the only one (None when ambiguous)."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        chosen = operations if len(operations) == 1 else []
    else:
        chosen = [o for o in operations if o.name and o.name.value == operation_name]
    return chosen[0] if len(chosen) == 1 else None


def root_fields(generated: GeneratedKinds) -> dict[str, RootField]:
    """The Query fields the compiled path serves, by name (the names `resolvers.py` gives them)."""
    fields = {"documents": RootField("documents", None)}
    for schema_type in generated.registry.document_types():
        cls = graphql_name(schema_type.name)
        if schema_type.singleton:
            fields[to_camel_case(schema_type.name)] = RootField("singleton", schema_type.name)
            continue
        fields[to_camel_case(schema_type.name)] = RootField("one", schema_type.name)
        fields[f"all{cls}"] = RootField("all", schema_type.name)
        fields[f"all{cls}Page"] = RootField("page", schema_type.name)
    return fields


class Planner:
    """Plans for one schema: `plan(query, operation_name)` or None when Strawberry must run it."""

    def __init__(
        self,
        schema: Schema,
        generated: GeneratedKinds,
        *,
        max_tokens: int,
        max_depth: int,
        max_aliases: int,
    ) -> None:
        self.schema = schema
        self.generated = generated
        self.roots = root_fields(generated)
        self.max_tokens = max_tokens
        self._rules = (
            *specified_rules,
            operation_limits(max_depth=max_depth, max_aliases=max_aliases),
        )
        self._cache: PlanCache[Plan] = PlanCache(self._make, PLAN_CACHE_SIZE)

    def plan(self, query: str, operation_name: str | None) -> Plan | None:
        return self._cache.get(query, operation_name)

    def _make(self, query: str, operation_name: str | None) -> Plan | None:
        try:
            document = parse(query, max_tokens=self.max_tokens)
        except GraphQLError:
            return None
        operation = chosen_operation(document, operation_name)
        if operation is None or operation.operation != OperationType.QUERY:
            return None
        if validate_document(self.schema._schema, document, self._rules):
            return None
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        names = _root_field_names(operation.selection_set, fragments, set())
        if not names or any(name not in self.roots for name in names):
            return None
        return Plan(
            document=document,
            operation=operation,
            fragments=fragments,
            selection_variables=tuple(sorted(_selection_variables(document))),
            id_variables=self._id_variables(document, operation),
        )

    def _id_variables(
        self, document: DocumentNode, operation: OperationDefinitionNode
    ) -> frozenset[str]:
        as_id: Counter[str] = Counter()
        for selection in operation.selection_set.selections:
            if not isinstance(selection, FieldNode):
                continue
            root = self.roots.get(selection.name.value)
            for argument in selection.arguments or ():
                if (
                    root is not None
                    and root.kind == "one"
                    and argument.name.value == "id"
                    and isinstance(argument.value, VariableNode)
                ):
                    as_id[argument.value.name.value] += 1
        anywhere = Counter(node.name.value for node in _variables(document))
        return frozenset(name for name, count in as_id.items() if anywhere[name] == count)


def _root_field_names(
    selection_set: SelectionSetNode,
    fragments: dict[str, FragmentDefinitionNode],
    seen: set[str],
) -> list[str]:
    """Every field name at the root, whatever @include / @skip decide."""
    names: list[str] = []
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            names.append(selection.name.value)
        elif isinstance(selection, InlineFragmentNode):
            names.extend(_root_field_names(selection.selection_set, fragments, seen))
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
            seen.add(selection.name.value)
            fragment = fragments[selection.name.value]
            names.extend(_root_field_names(fragment.selection_set, fragments, seen))
    return names


def _variables(document: DocumentNode) -> list[VariableNode]:
    """Every use of a variable in the document (its definitions excluded)."""
    found: list[VariableNode] = []

    class Collector(Visitor):
        def enter_variable_definition(self, *_: object) -> object:
            return SKIP  # `$id: ID!` names the variable; it does not use it

        def enter_variable(self, node: VariableNode, *_: object) -> None:
            found.append(node)

    visit(document, Collector())
    return found


def _selection_variables(document: DocumentNode) -> set[str]:
    """The variables @include / @skip read, and those of `referencedBy`'s arguments: the SQL of
    a selection depends on their values (the arguments of a root field are read apart)."""
    found: set[str] = set()

    def visit(selection_set: SelectionSetNode | None) -> None:
        if selection_set is None:
            return
        for selection in selection_set.selections:
            for directive in selection.directives or ():
                for argument in directive.arguments or ():
                    if isinstance(argument.value, VariableNode):
                        found.add(argument.value.name.value)
            if isinstance(selection, FieldNode) and selection.name.value == BACK_REFERENCES:
                for argument in selection.arguments or ():
                    if isinstance(argument.value, VariableNode):
                        found.add(argument.value.name.value)
            if isinstance(selection, FieldNode | InlineFragmentNode):
                visit(selection.selection_set)

    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode | FragmentDefinitionNode):
            visit(definition.selection_set)
    return found
