"""Schema extensions: one transaction per operation, and a stable `extensions.code` on every error."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document
from strawberry.types.graphql import OperationType

from server.errors import CMSError
from server.graphql.context import RequestContext
from server.query.limits import ALIASES_MESSAGE, DEPTH_MESSAGE, INTROSPECTION_MESSAGE

log = logging.getLogger("server.graphql")

INTERNAL_MESSAGE = "Internal server error"

# Messages of the limit rules (Strawberry's token limit, `limits.py`), which carry no code.
_TOO_COMPLEX = (
    "Document contains more than",
    DEPTH_MESSAGE,
    ALIASES_MESSAGE,
    INTROSPECTION_MESSAGE,
)


class CachedValidation(SchemaExtension):
    """Validate each distinct query text once per schema.

    Frontends send the same few queries again and again, and validating a document costs more than
    running it. The rules are fixed per schema (the limits included), so the query text is the key.
    """

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        cache = getattr(context.schema, "validation_cache", None)
        document = context.graphql_document
        if cache is not None and document is not None and context.pre_execution_errors is None:
            errors = cache.get(context.query)
            if errors is None:
                errors = validate_document(
                    context.schema._schema, document, tuple(context.validation_rules)
                )
                cache.put(context.query, errors)
            context.pre_execution_errors = list(errors)
        yield


class UnitOfWork(SchemaExtension):
    """Queries run read-only; the transaction commits only when the result has no errors."""

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context.context
        if isinstance(context, RequestContext):
            context.read_only = self.execution_context.operation_type == OperationType.QUERY
        try:
            yield
        finally:
            if isinstance(context, RequestContext):
                result = self.execution_context.result
                await context.finish(commit=not (result is not None and result.errors))


def error_code(error: GraphQLError) -> str:
    original = error.original_error
    if isinstance(original, CMSError):
        return original.code
    if original is None and any(fragment in error.message for fragment in _TOO_COMPLEX):
        return "QUERY_TOO_COMPLEX"
    if isinstance(error, GraphQLSyntaxError):
        return "GRAPHQL_PARSE_FAILED"
    if isinstance(original, GraphQLError):
        # graphql-core's own complaint about a value: a variable or argument of the wrong type.
        return "BAD_USER_INPUT"
    if original is None:
        message = error.message
        if message.startswith("Variable '$") or "got invalid value" in message:
            return "BAD_USER_INPUT"
        if error.path is None:
            return "GRAPHQL_VALIDATION_FAILED"
        return "BAD_USER_INPUT"
    return "INTERNAL_SERVER_ERROR"


def format_error(error: GraphQLError) -> GraphQLError:
    """The error with its code; unexpected ones are logged and masked."""
    code = error_code(error)
    extensions = dict(error.extensions or {})
    original = error.original_error
    message = error.message
    if isinstance(original, CMSError):
        message = original.message
        path = getattr(original, "path", None)
        if path:
            extensions["field"] = path
        if "errors" in original.details:
            extensions["errors"] = original.details["errors"]
        if "current_revision" in original.details:
            extensions["currentRevision"] = original.details["current_revision"]
    elif code == "INTERNAL_SERVER_ERROR":
        log.error("unexpected error in %s", error.path, exc_info=original)
        message = INTERNAL_MESSAGE
    extensions["code"] = code
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


class ErrorCodes(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [format_error(error) for error in result.errors]
