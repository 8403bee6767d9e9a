"""Who may introspect: `__schema` and `__type` (what one operation may ask of them: `limits.py`).

`INTROSPECTION` decides who may introspect: `everyone` (the default: GraphiQL shows its schema
before a key is entered, and code generators need none), `authenticated` (valid credentials, checked
by `GraphQLEndpoint` before execution), or `nobody` (`schema print` still writes the SDL).
`__typename` is not introspection here: it is always allowed and costs nothing.
"""

from __future__ import annotations

from graphql import FieldNode, InlineFragmentNode, SelectionSetNode, ValidationRule
from graphql.language import DocumentNode
from graphql.validation import NoSchemaIntrospectionCustomRule

from server.config import IntrospectionAccess
from server.query.limits import INTROSPECTION_ROOTS


def access_rules(access: IntrospectionAccess) -> list[type[ValidationRule]]:
    """Extra validation rules for `access`: `nobody` refuses `__schema` and `__type` outright."""
    return [NoSchemaIntrospectionCustomRule] if access == "nobody" else []


def introspects(document: DocumentNode) -> bool:
    """Whether any operation or fragment of `document` selects `__schema` or `__type`."""
    pending: list[SelectionSetNode] = [
        definition.selection_set
        for definition in document.definitions
        if hasattr(definition, "selection_set")
    ]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode) and selection.name.value in INTROSPECTION_ROOTS:
                return True
            if isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
    return False
