"""What one operation may ask for: its depth, its aliases, and its introspection.

One validation rule measures each operation in a single pass, each fragment once (memoised), so
fragments that spread other fragments several times cost linear work, not exponential (the walk
of Strawberry's depth and alias limiters expands every spread again).

- Depth: counted as Strawberry's `QueryDepthLimiter` counts it (root fields at depth 0, `__`
  fields skipped), at most `max_depth`.
- Aliases: at most `max_aliases` aliased fields, every fragment spread counted.
- Introspection: `__schema` and `__type` need no credentials, and the introspection types refer
  to each other in cycles (`__Type.fields` -> `__Field.type` -> `__Type`), so a small document can
  ask for a very large answer. Their subtrees count towards the depth limit, and, in "good faith"
  (as graphql-java calls it), each of `__schema`, `__type` and the fields that return lists of types
  or fields (`types`, `fields`, `inputFields`, `interfaces`, `possibleTypes`, `enumValues`,
  `directives`) may be selected once per operation, counting every alias and spread. The standard
  introspection query (GraphiQL, code generators) selects each once.

Every message contains a fragment that `server.graphql.extensions` maps to `QUERY_TOO_COMPLEX`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)

INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})
# Each may be selected once per operation: the lists whose items lead back into the type graph.
ONCE = INTROSPECTION_ROOTS | {
    "types",
    "fields",
    "inputFields",
    "interfaces",
    "possibleTypes",
    "enumValues",
    "directives",
}

DEPTH_MESSAGE = "exceeds maximum operation depth"
ALIASES_MESSAGE = "aliases found. Allowed"
INTROSPECTION_MESSAGE = "exceeds the introspection limit"


@dataclass
class _Measure:
    """What a selection set asks for: levels of ordinary fields and of introspection, aliases,
    and how often each introspection field is selected."""

    levels: int = 0
    introspection_levels: int = 0
    aliases: int = 0
    introspection: Counter[str] = field(default_factory=Counter)

    def add(self, other: _Measure) -> None:
        """Another selection beside these: the deeper of the two, the sum of the counts."""
        self.levels = max(self.levels, other.levels)
        self.introspection_levels = max(self.introspection_levels, other.introspection_levels)
        self.aliases += other.aliases
        self.introspection.update(other.introspection)


def operation_limits(*, max_depth: int, max_aliases: int) -> type[ValidationRule]:
    """The validation rule bounding each operation's depth, aliases and introspection."""

    class OperationLimits(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            # Per fragment, and whether it is read inside introspection: measured once.
            self._fragments: dict[tuple[str, bool], _Measure] = {}

        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            measure = self._selections(node.selection_set, inside=False)
            name = node.name.value if node.name else "anonymous"
            # Levels below the root: root fields are at depth 0.
            if measure.levels - 1 > max_depth:
                self._refuse(f"'{name}' {DEPTH_MESSAGE} of {max_depth}", node)
            if measure.aliases > max_aliases:
                self._refuse(f"{measure.aliases} {ALIASES_MESSAGE}: {max_aliases}", node)
            if measure.introspection_levels - 1 > max_depth:
                depth = measure.introspection_levels - 1
                self._refuse(
                    f"the introspection selection has depth {depth}, which"
                    f" {INTROSPECTION_MESSAGE} of {max_depth}",
                    node,
                )
            for field_name, count in sorted(measure.introspection.items()):
                if field_name in ONCE and count > 1:
                    self._refuse(
                        f"'{field_name}' is selected {count} times, which {INTROSPECTION_MESSAGE}:"
                        " introspection allows it once per operation",
                        node,
                    )

        def _refuse(self, message: str, node: OperationDefinitionNode) -> None:
            self.report_error(GraphQLError(message, node))

        def _selections(self, selection_set: SelectionSetNode | None, *, inside: bool) -> _Measure:
            measure = _Measure()
            if selection_set is None:
                return measure
            for selection in selection_set.selections:
                if isinstance(selection, FieldNode):
                    measure.add(self._field(selection, inside=inside))
                elif isinstance(selection, InlineFragmentNode):
                    measure.add(self._selections(selection.selection_set, inside=inside))
                elif isinstance(selection, FragmentSpreadNode):
                    measure.add(self._fragment(selection.name.value, inside=inside))
            return measure

        def _field(self, node: FieldNode, *, inside: bool) -> _Measure:
            name = node.name.value
            measure = _Measure(aliases=1 if node.alias else 0)
            if inside or name in INTROSPECTION_ROOTS:
                below = self._selections(node.selection_set, inside=True)
                measure.introspection_levels = 1 + below.introspection_levels
                measure.aliases += below.aliases
                measure.introspection.update(below.introspection)
                measure.introspection[name] += 1
            elif not name.startswith("__"):
                below = self._selections(node.selection_set, inside=False)
                measure.levels = 1 + below.levels
                measure.aliases += below.aliases
            return measure

        def _fragment(self, name: str, *, inside: bool) -> _Measure:
            key = (name, inside)
            if key not in self._fragments:
                # A cycle of fragments counts as empty here; NoFragmentCyclesRule reports it.
                self._fragments[key] = _Measure()
                fragment = self.context.get_fragment(name)
                if fragment is not None:
                    self._fragments[key] = self._selections(fragment.selection_set, inside=inside)
            return self._fragments[key]

    return OperationLimits
