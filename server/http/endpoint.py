"""The GraphQL endpoint over HTTP, as the GraphQL-over-HTTP spec describes it, and GraphiQL for browsers.

Each request is served by the schema of the content model current when it arrives, so a schema change
takes effect on the next request and never under a request in flight.

Responses (https://graphql.github.io/graphql-over-http/draft/):
- `application/graphql-response+json` when the client asks for it: 400 when the request never reached
  execution (a parse, validation or variable error; the body then has no `data`), else 200.
- `application/json` (asked for, `*/*`, or no Accept header): 200 for every well-formed request.
- Requests that are not well-formed never reach the schema: 400 (no or bad JSON, a missing `query`,
  `variables` that are not an object, ...), 405 (a mutation over GET, with `Allow: POST`), 406 (no
  acceptable media type), 413 (a body over the limit, counted while it streams in) and 415 (an
  unsupported content type). Their bodies are GraphQL-style errors with an `extensions.code` too.

Persisted queries (`server/delivery/persisted_queries.py`) are resolved before anything else; published
reads over GET carry caching headers (`server/delivery/caching.py`); every other response to a GET
is `private, no-store`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from ipaddress import ip_address
from typing import TYPE_CHECKING, Any

import orjson
from graphql import GraphQLError, OperationDefinitionNode, parse
from starlette.datastructures import FormData, Headers, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send
from strawberry.file_uploads.utils import replace_placeholders_with_files
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from server.config import DEFAULT_REQUEST_MAX_BYTES, IntrospectionAccess
from server.delivery import caching
from server.delivery.persisted_queries import is_sha256, sha256
from server.engine.access import Mailer
from server.engine.local_api import LocalAPI
from server.engine.webhooks import WebhooksAPI
from server.errors import CMSError, ConflictError, InvalidInputError, UnavailableError
from server.graphql import routing
from server.graphql.context import RequestContext
from server.graphql.extensions import format_error
from server.graphql.introspection import introspects
from server.graphql.schema import MAX_TOKENS, BuiltSchema, build_schema
from server.http.json_post import JsonPost, read_body, replaying
from server.http.playground import playground_response
from server.query import round_trip, run
from server.query.plan import chosen_operation
from server.query.reader import CONSISTENCY_HEADER, CompiledReads, consistency_token

if TYPE_CHECKING:
    from server.delivery.services import Delivery
    from server.model.types import Registry

log = logging.getLogger(__name__)

GRAPHQL_RESPONSE = "application/graphql-response+json"
# Seconds a client is asked to wait before sending again a request the database could not serve.
RETRY_AFTER_SECONDS = 2
JSON = "application/json"
MULTIPART = "multipart/form-data"

_QUERIES_ONLY = frozenset({OperationType.QUERY})
# Subscriptions are refused by validation (the schema has none), with a proper GraphQL error.
_ANY_OPERATION = frozenset(OperationType)


class HTTPError(Exception):
    """A request refused before execution: `status` and a GraphQL-style error body."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def _bad_request(message: str) -> HTTPError:
    return HTTPError(400, "BAD_REQUEST", message)


@dataclass(frozen=True)
class Params:
    """The GraphQL request's parameters, checked."""

    query: str
    operation_name: str | None = None
    variables: dict[str, Any] | None = None
    extensions: dict[str, Any] | None = None
    # `extensions.persistedQuery.sha256Hash`: the query is this document (`query` may be empty).
    persisted_hash: str | None = None

    @classmethod
    def from_mapping(cls, data: object) -> Params:
        if not isinstance(data, dict):
            raise _bad_request("the request must be a JSON object (batches are not supported)")
        extensions = _object_or_none(data.get("extensions"), "extensions")
        persisted_hash = _persisted_hash(extensions)
        query = data.get("query")
        if persisted_hash is not None and query is None:
            query = ""
        elif query is None or query == "":
            raise _bad_request("the request has no `query`")
        if not isinstance(query, str):
            raise _bad_request("`query` must be a string")
        operation_name = data.get("operationName")
        if operation_name is not None and not isinstance(operation_name, str):
            raise _bad_request("`operationName` must be a string or null")
        return cls(
            query=query,
            operation_name=operation_name or None,
            variables=_object_or_none(data.get("variables"), "variables"),
            extensions=extensions,
            persisted_hash=persisted_hash,
        )

    @classmethod
    def from_query_string(cls, request: Request) -> Params:
        """GET: `variables` and `extensions` arrive JSON-encoded in the URL."""
        raw = request.query_params
        data: dict[str, Any] = {
            "query": raw.get("query"),
            "operationName": raw.get("operationName"),
        }
        for name in ("variables", "extensions"):
            value = raw.get(name)
            if value:
                data[name] = _json(value.encode(), name)
        return cls.from_mapping(data)


def _persisted_hash(extensions: dict[str, Any] | None) -> str | None:
    persisted = (extensions or {}).get("persistedQuery")
    if persisted is None:
        return None
    if not isinstance(persisted, dict) or persisted.get("version") != 1:
        raise _bad_request("`extensions.persistedQuery` must be {version: 1, sha256Hash}")
    digest = persisted.get("sha256Hash")
    if not is_sha256(digest):
        raise _bad_request("`sha256Hash` must be a SHA-256 in lowercase hex")
    assert isinstance(digest, str)
    return digest


def _object_or_none(value: object, name: str) -> dict[str, Any] | None:
    if value is not None and not isinstance(value, dict):
        raise _bad_request(f"`{name}` must be an object or null")
    return value


def _json(raw: bytes, what: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _bad_request(f"{what} is not valid JSON: {exc}") from None


def accepted(header: str | None) -> list[tuple[str, float]]:
    """The media ranges of an Accept header, most preferred first.

    Ranges asking for a charset other than UTF-8 are dropped (every response here is UTF-8), and so
    are those with `q=0`, which means "not acceptable".
    """
    ranges: list[tuple[str, float]] = []
    for item in (header or "").split(","):
        media, *params = (part.strip() for part in item.split(";"))
        weight, usable = 1.0, bool(media)
        for param in params:
            name, _, value = param.partition("=")
            name, value = name.strip().lower(), value.strip().strip('"').lower()
            if name == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
            elif name == "charset" and value not in ("utf-8", "utf8"):
                usable = False
        if usable and weight > 0:
            ranges.append((media.lower(), weight))
    # sorted() is stable: ranges of equal weight keep the client's order.
    return sorted(ranges, key=lambda media_range: -media_range[1])


# Accept headers at most this long have their answer kept (`_media_type_of`): a client sends the
# same few on every request, and parsing one costs a few microseconds each time.
_KEPT_ACCEPT_LENGTH = 256


def response_media_type(header: str | None) -> str | None:
    """The media type to answer with, or None when the client accepts neither of ours."""
    if header is None or not header.strip():
        # The spec's default until its watershed date; graphql-response+json must be asked for.
        return JSON
    if len(header) <= _KEPT_ACCEPT_LENGTH:
        return _kept_media_type(header)
    return _media_type_of(header)


@functools.lru_cache(maxsize=256)
def _kept_media_type(header: str) -> str | None:
    return _media_type_of(header)


def _media_type_of(header: str) -> str | None:
    for media, _ in accepted(header):
        if media == GRAPHQL_RESPONSE:
            return GRAPHQL_RESPONSE
        if media in (JSON, "application/*", "*/*"):
            return JSON
    return None


def prefers_html(header: str | None) -> bool:
    """A browser navigating here: text/html is asked for, at least as much as JSON."""
    html = data = 0.0
    for media, weight in accepted(header):
        if media == "text/html":
            html = max(html, weight)
        elif media in (JSON, GRAPHQL_RESPONSE):
            data = max(data, weight)
    return html > 0 and html >= data


def _limited(receive: Receive, limit: int) -> Receive:
    """`receive`, refusing a body once more than `limit` bytes of it have arrived."""
    received = 0

    async def receive_limited() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise _too_large(limit)
        return message

    return receive_limited


def _too_large(limit: int) -> HTTPError:
    return HTTPError(413, "PAYLOAD_TOO_LARGE", f"the request body is larger than {limit} bytes")


def _error_body(code: str, message: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


def _json_response(
    body: dict[str, Any], *, status: int, media: str, headers: Mapping[str, str] | None = None
) -> Response:
    response = Response(
        orjson.dumps(body), status_code=status, media_type=f"{media}; charset=utf-8"
    )
    # The body depends on Accept, so shared caches must keep the variants apart.
    response.headers["Vary"] = "Accept"
    response.headers.update(headers or {})
    return response


def _refusal(error: HTTPError, media: str = JSON) -> Response:
    return _json_response(
        _error_body(error.code, error.message),
        status=error.status,
        media=media,
        headers=error.headers,
    )


def _has_code(error: GraphQLError) -> bool:
    return bool(error.extensions and "code" in error.extensions)


def _result_response(result: ExecutionResult, media: str) -> Response:
    """The execution result as the response the spec asks for in `media`."""
    # `ErrorCodes` gives every error of an operation its code; one raised around the operation
    # (a failed commit, say) gets it here, masked when unexpected.
    errors = [error if _has_code(error) else format_error(error) for error in result.errors or ()]
    # Errors before execution (parse, validation, variable coercion) have no path and leave no
    # data; once execution starts, `data` is present, even as null.
    request_error = result.data is None and bool(errors) and all(e.path is None for e in errors)
    body: dict[str, Any] = {} if request_error else {"data": result.data}
    if errors:
        body["errors"] = [error.formatted for error in errors]
    if result.extensions:
        body["extensions"] = result.extensions
    status = 200
    if request_error and media == GRAPHQL_RESPONSE:
        internal = any(
            e.extensions and e.extensions["code"] == "INTERNAL_SERVER_ERROR" for e in errors
        )
        status = 500 if internal else 400
    if any(e.extensions and e.extensions["code"] == UnavailableError.code for e in errors):
        # The database could not serve the operation (and nothing of it was committed): the
        # client may send it again shortly, whatever media type it asked for.
        return _unavailable(body, media)
    return _json_response(body, status=status, media=media)


def _unavailable(body: dict[str, Any], media: str) -> Response:
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return _json_response(body, status=503, media=media, headers=headers)


def _is_loopback(request: Request) -> bool:
    if request.client is None:
        return False
    try:
        return ip_address(request.client.host).is_loopback
    except ValueError:
        return False


class _RequestHeaders(Headers):
    """A request's headers, each lookup one dict access: a request to this endpoint looks up
    about ten, most of them absent (`Headers.get` scans the list and raises for a missing one)."""

    def __init__(self, scope: Scope) -> None:
        super().__init__(scope=scope)
        # The first of repeated headers, as `Headers.get` finds it.
        self._first = dict(reversed(self._list))

    def get(self, key: str, default: Any = None) -> Any:
        value = self._first.get(key.lower().encode("latin-1"))
        return default if value is None else value.decode("latin-1")


class _Request(Request):
    """A request whose headers are the ones `__call__` read its size limit from."""

    def __init__(self, scope: Scope, receive: Receive, headers: Headers) -> None:
        super().__init__(scope, receive)
        self._headers = headers


class GraphQLEndpoint:
    """The ASGI app at `/graphql`: builds a schema per content model and serves each request."""

    def __init__(
        self,
        api: LocalAPI,
        *,
        max_body_bytes: int = DEFAULT_REQUEST_MAX_BYTES,
        max_multipart_bytes: int | None = None,
        mailer: Mailer | None = None,
        compiled_reads: bool = True,
        introspection: IntrospectionAccess = "everyone",
        delivery: Delivery | None = None,
        reads: CompiledReads | None = None,
    ) -> None:
        self.api = api
        # Where compiled reads run (a replica for published reads when one may serve them); the
        # resolver path takes the same replicas.
        self.reads = reads if reads is not None else CompiledReads(api.adapter)
        # Persisted queries and the cache policy; None serves neither (plain GraphQL over HTTP).
        self.delivery = delivery
        self.webhooks = WebhooksAPI(delivery) if delivery is not None else None
        self.compiled_reads = compiled_reads
        # Document mutations answered from the row they wrote (`direct_writes`): on with the
        # compiled reads, so that `COMPILED_READS=false` serves everything through the resolvers.
        self.direct_writes = compiled_reads
        self.direct_served = 0
        self.direct_failures = 0
        # Draft saves and the publish of a draft this process just saved, for a caller it knows,
        # without a unit of work: each statement opens the request and commits
        # (`RequestUnit.update_at_once`, `publish_saved_at_once`); served so far.
        self.writes_at_once = True
        self.written_at_once = 0
        # A JSON POST read from the ASGI scope without Starlette's request objects, while the
        # compiled read path may answer it (`server/http/json_post.py`).
        self.direct_posts = True
        self.introspection: IntrospectionAccess = introspection
        # Requests the compiled path answered (the rest ran through the resolvers).
        self.compiled_served = 0
        self.compiled_failures = 0
        self.mailer = mailer
        self.max_body_bytes = max_body_bytes
        # Uploads may be larger than a JSON request; the form fields are still capped per part.
        self.max_multipart_bytes = max_multipart_bytes or max_body_bytes
        # The demo's key, set at start-up by the app's lifespan and only in demo mode: GraphiQL
        # then opens with it filled in, for browsers on this machine.
        self.dev_key: str | None = None
        self.demo_query: str | None = None
        self._built: BuiltSchema | None = None
        # The registry `_built` was last checked against: a reload that finds the same types
        # (a new object, equal) keeps the schema.
        self._checked: Registry | None = None

    @property
    def replica_served(self) -> int:
        """Requests a replica answered, by either path."""
        return self.reads.replica_served

    def current(self) -> BuiltSchema:
        registry = self.api.model.registry
        built = self._built
        if built is None or self._checked is not registry:
            if built is None or not built.registry.same_as(registry):
                log.info("building the GraphQL schema for %d schema types", len(registry))
                built = build_schema(registry, introspection=self.introspection)
                self._built = built
            self._checked = registry
        return built

    def reuse(self, built: BuiltSchema) -> None:
        """Serve `built`, made by another endpoint with the same `introspection`, while the content
        model has the same types (tests start many apps on one model)."""
        self._built, self._checked = built, None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.compiled_reads and self.direct_posts:
            post = JsonPost.of(scope, self.max_body_bytes)
            if post is not None:
                answered, receive = await self._json_post(post, scope, receive, send)
                if answered:
                    return
        headers = _RequestHeaders(scope)
        limit = self._limit(headers)
        request = _Request(scope, _limited(receive, limit), headers)
        response = await self.handle(request, limit)
        if request.method == "GET" and "cache-control" not in response.headers:
            # Only what `_compiled` marks cacheable may be kept: errors, drafts, the resolvers'
            # answers and GraphiQL are not for shared caches.
            response.headers["Cache-Control"] = caching.NO_STORE
        await response(scope, receive, send)

    async def _json_post(
        self, post: JsonPost, scope: Scope, receive: Receive, send: Send
    ) -> tuple[bool, Receive]:
        """A JSON POST served as `handle` would serve it, without Starlette's request objects
        until the compiled read path turns it down (`server/http/json_post.py`).

        Returns whether it was answered, and the `receive` the usual way goes on with when it was
        not: anything `handle` would refuse or check differently goes that way from the start,
        its body replayed.
        """
        media = response_media_type(post.headers.get("accept"))
        if media is None:
            return False, receive
        body, messages = await read_body(receive, self.max_body_bytes)
        if body is None or not body.strip():
            return False, replaying(messages, receive)
        try:
            params = Params.from_mapping(orjson.loads(body))
        except (orjson.JSONDecodeError, HTTPError):
            return False, replaying(messages, receive)
        if params.persisted_hash is not None:
            return False, replaying(messages, receive)
        built = self.current()
        # Without a hash, the document as sent, and whether it may run as anyone's.
        resolved = await self._persisted(params)
        assert not isinstance(resolved, GraphQLError)
        params, trusted = resolved
        response = await self._compiled(post, params, media, built) if trusted else None
        if response is None:
            # Past the compiled read, which must not run twice: on as `_execute` goes on.
            receive = replaying(messages, receive)
            request = _Request(scope, receive, _RequestHeaders(scope))
            try:
                response = await self._uncompiled(request, params, media, built, None, trusted)
            except HTTPError as error:
                response = _refusal(error, media)
        await response(scope, receive, send)
        return True, receive

    def _limit(self, headers: Headers) -> int:
        multipart = headers.get("content-type", "").lower().startswith(MULTIPART)
        return self.max_multipart_bytes if multipart else self.max_body_bytes

    async def handle(self, request: Request, limit: int) -> Response:
        if request.method not in ("GET", "POST"):
            error = HTTPError(
                405,
                "METHOD_NOT_ALLOWED",
                f"{request.method} is not supported: use GET for queries or POST",
                headers={"Allow": "GET, POST"},
            )
            return _refusal(error)
        accept = request.headers.get("accept")
        if request.method == "GET" and "query" not in request.query_params and prefers_html(accept):
            return self._playground(request)
        media = response_media_type(accept)
        if media is None:
            message = f"the Accept header allows neither {GRAPHQL_RESPONSE} nor {JSON}"
            return _refusal(HTTPError(406, "NOT_ACCEPTABLE", message))
        try:
            if request.method == "GET":
                return await self._execute(request, Params.from_query_string(request), media)
            return await self._post(request, media, limit)
        except HTTPError as error:
            return _refusal(error, media)

    async def _post(self, request: Request, media: str, limit: int) -> Response:
        content_type = request.headers.get("content-type")
        if content_type is None:
            raise HTTPError(415, "UNSUPPORTED_MEDIA_TYPE", f"send the request as {JSON}")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        mime, *options = (part.strip().lower() for part in content_type.split(";"))
        if mime == JSON:
            charset = next((o.partition("=")[2] for o in options if o.startswith("charset=")), "")
            if charset.strip('"') not in ("", "utf-8", "utf8"):
                raise HTTPError(415, "UNSUPPORTED_MEDIA_TYPE", "JSON requests must be UTF-8")
            body = await request.body()
            if not body.strip():
                raise _bad_request("the request body is empty")
            return await self._execute(request, Params.from_mapping(_json(body, "the body")), media)
        if mime == MULTIPART:
            form = await self._form(request)
            try:
                return await self._execute(request, _multipart_params(form), media)
            finally:
                await form.close()
        raise HTTPError(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            f"unsupported content type {mime!r}: send {JSON} (or {MULTIPART} for uploads)",
        )

    async def _form(self, request: Request) -> FormData:
        try:
            return await request.form(max_part_size=self.max_body_bytes)
        except HTTPException as exc:
            raise _bad_request(f"unreadable multipart body: {exc.detail}") from None

    async def _execute(self, request: Request, params: Params, media: str) -> Response:
        token = _consistency_token(request)
        built = self.current()
        resolved = await self._persisted(params)
        if isinstance(resolved, GraphQLError):
            return _result_response(ExecutionResult(data=None, errors=[resolved]), media)
        params, trusted = resolved
        if self.compiled_reads and trusted:
            compiled = await self._compiled(request, params, media, built, token)
            if compiled is not None:
                return compiled
        return await self._uncompiled(request, params, media, built, token, trusted)

    async def _uncompiled(
        self,
        request: Request,
        params: Params,
        media: str,
        built: BuiltSchema,
        token: int | None,
        trusted: bool,
    ) -> Response:
        """The request past the compiled read path: a direct write, or the resolvers."""
        if self.direct_writes and trusted and request.method == "POST":
            written = await self._direct_write(request, params, media, built)
            if written is not None:
                return written
        context = self._context(request, built)
        if not trusted:
            refusal = await self._admins_only(context, params)
            if refusal is not None:
                return _result_response(ExecutionResult(data=None, errors=[refusal]), media)
        allowed = _QUERIES_ONLY if request.method == "GET" else _ANY_OPERATION
        replicas = self.reads.replicas
        if trusted and replicas and self._published(params, built):
            context.replicas = replicas
            context.replica = replicas.for_read(token)
        if params.operation_name is None and _operation_count(params.query) > 1:
            error = GraphQLError(
                "the document has several operations: choose one with operationName",
                extensions={"code": "GRAPHQL_VALIDATION_FAILED"},
            )
            return _result_response(ExecutionResult(data=None, errors=[error]), media)
        if self.introspection == "authenticated" and _introspects(params.query):
            try:
                # Opens the unit of work the operation then runs in (and commits or rolls back).
                await context.principal()
            except CMSError as exc:
                await context.finish(commit=False)
                error = GraphQLError(exc.message, extensions={"code": exc.code})
                return _result_response(ExecutionResult(data=None, errors=[error]), media)
        try:
            result = await built.schema.execute(
                params.query,
                variable_values=params.variables,
                context_value=context,
                operation_name=params.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=params.extensions,
            )
        except InvalidOperationTypeError as exc:
            # Only GET restricts the operation type: a mutation must not run on a safe method.
            message = f"{exc.as_http_error_reason(request.method)}; send them with POST"
            raise HTTPError(405, "METHOD_NOT_ALLOWED", message, headers={"Allow": "POST"}) from None
        except CannotGetOperationTypeError as exc:
            error = GraphQLError(
                exc.as_http_error_reason(), extensions={"code": "GRAPHQL_VALIDATION_FAILED"}
            )
            result = ExecutionResult(data=None, errors=[error])
        finally:
            # A unit opened before execution and never reached by it (the document did not
            # validate) is rolled back here; after `UnitOfWork` has finished it, this does nothing.
            await context.finish(commit=False)
        if context.on_replica:
            failure = _replica_failure(result)
            if failure is not None and context.replica is not None and context.replicas:
                # A read may run again: on the primary, which neither goes away with the replica
                # nor cancels queries to replay WAL.
                context.replicas.failed(context.replica, failure)
                return await self._execute_on_primary(request, params, media)
            self.reads.replica_served += 1
        if context.consistency_token is not None:
            result.extensions = {
                **(result.extensions or {}),
                "consistencyToken": context.consistency_token,
            }
        return _result_response(result, media)

    def _published(self, params: Params, built: BuiltSchema) -> bool:
        return routing.published_reads_only(
            params.query, params.operation_name, params.variables, built.planner.roots
        )

    async def _execute_on_primary(self, request: Request, params: Params, media: str) -> Response:
        """Run a read through the resolvers on the primary (after a replica failed it)."""
        context = self._context(request, self.current())
        try:
            result = await self.current().schema.execute(
                params.query,
                variable_values=params.variables,
                context_value=context,
                operation_name=params.operation_name,
                allowed_operation_types=_QUERIES_ONLY,
                operation_extensions=params.extensions,
            )
        finally:
            await context.finish(commit=False)
        return _result_response(result, media)

    def _context(self, request: Request, built: BuiltSchema) -> RequestContext:
        return RequestContext(
            api=self.api,
            generated=built.generated,
            authorization=request.headers.get("authorization"),
            organization_header=request.headers.get("x-organization-id"),
            mailer=self.mailer,
            webhooks=self.webhooks,
            # Only replicas make the token worth its statement.
            wants_consistency_token=bool(self.reads.replicas),
        )

    async def _persisted(self, params: Params) -> tuple[Params, bool] | GraphQLError:
        """The request with its persisted query's text, and whether it may run as anyone's: an
        error when the hash is unknown or refused (`server/delivery/persisted_queries.py`)."""
        store = self.delivery.persisted if self.delivery is not None else None
        mode = store.mode if store is not None else "off"
        digest = params.persisted_hash
        if digest is not None:
            if store is None or mode == "off":
                return _persisted_error(
                    "PersistedQueryNotSupported", "PERSISTED_QUERY_NOT_SUPPORTED"
                )
            if not params.query:
                found = await store.lookup(digest)
                if found is None:
                    return _persisted_error("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND")
                query, registered = found
                return replace(params, query=query), registered or mode == "automatic"
            if sha256(params.query) != digest:
                raise _bad_request("provided sha does not match query")
            store.remember(digest, params.query)
        if store is None or mode != "trusted":
            return params, True
        return params, await store.registered(digest or sha256(params.query)) is not None

    async def _admins_only(self, context: RequestContext, params: Params) -> GraphQLError | None:
        """In trusted mode, a document nobody registered runs for instance admins only.

        This opens the unit of work the operation then runs in (read-write for a mutation)."""
        context.read_only = _operation_type(params.query, params.operation_name) != "mutation"
        try:
            admin = (await context.principal()).instance_admin
        except CMSError:
            admin = False
        if admin:
            return None
        await context.finish(commit=False)
        return GraphQLError(
            "this server runs registered operations only: send the hash of a registered document",
            extensions={"code": "PERSISTED_QUERY_NOT_TRUSTED"},
        )

    async def _compiled(
        self,
        request: Request | JsonPost,
        params: Params,
        media: str,
        built: BuiltSchema,
        token: int | None = None,
    ) -> Response | None:
        """The compiled read path (`server/query/`): one statement builds the whole response.

        None when the operation is not a content read it serves, or when the answer would be an
        error: the resolver path then runs the request from the start and answers it.
        """
        plan = built.planner.plan(params.query, params.operation_name)
        if plan is None:
            return None
        try:
            statement = run.bind(
                built.planner, plan, params.variables, max_page_size=self.api.max_page_size
            )
        except run.Fallback:
            return None
        if not request.headers.get("authorization"):
            return None
        cacheable = (
            request.method == "GET"
            and not statement.reads_drafts
            and not statement.reads_back_references
        )
        try:
            credential = self.reads.credential(
                request.headers.get("authorization"), request.headers.get("x-organization-id")
            )
            # Surrogate keys cost a walk of the reference index: only for a caller whose answers
            # may be public (a published-only key, or one this process has not met yet).
            keyed = cacheable and self.delivery is not None and self.reads.maybe_public(credential)
            if keyed:
                statement = replace(statement, sql=statement.keyed_sql, name=statement.keyed_name)
            # One round trip: `cms_read` opens the request (credentials, org scope, request role,
            # read-only) and runs the read in one statement, its own transaction.
            caller, values = await self.reads.read(credential, statement, token)
            if not run.allowed(caller, statement):
                return None
        except UnavailableError as exc:
            # No database to fall back on either: the resolver path would only wait again.
            return _unavailable(_error_body(exc.code, exc.message), media)
        except (CMSError, round_trip.ReadNotPrepared, round_trip.ReadDeclined, TimeoutError):
            return None
        except Exception:
            # A fault of the compiled path itself must not cost the client its answer: the
            # resolver path serves it, and the fault is logged and counted.
            log.exception("the compiled read path failed; serving through the resolvers")
            self.compiled_failures += 1
            return None
        self.compiled_served += 1
        keys_column = values.pop() if keyed else None
        body = run.body(statement, values)
        if not cacheable:
            return _Answer(body, media)
        headers = {"ETag": caching.etag(body), "Vary": caching.VARY}
        if caller.published_only and keys_column is not None and self.delivery is not None:
            policy = self.delivery.cache
            headers["Cache-Control"] = policy.public()
            keys = policy.surrogate_keys(keys_column, statement.list_types, caller.organization_id)
            headers.update(caching.key_headers(keys))
        else:
            headers["Cache-Control"] = caching.NO_STORE
        if caching.not_modified(request.headers.get("if-none-match"), headers["ETag"]):
            return Response(status_code=304, headers=headers)
        return Response(
            body, status_code=200, media_type=f"{media}; charset=utf-8", headers=headers
        )

    async def _direct_write(
        self, request: Request, params: Params, media: str, built: BuiltSchema
    ) -> Response | None:
        """A document mutation answered from the row it wrote (`direct_writes`), or None when
        the resolver path must run it: not such a mutation, or one the local API refused (rolled
        back here; the resolver path runs it again and answers the error)."""
        plan = built.write_planner.plan(params.query, params.operation_name)
        if plan is None:
            return None
        call = built.write_planner.bind(plan, params.variables)
        if call is None:
            return None
        context = self._context(request, built)
        context.read_only = False
        arguments = call.arguments
        if self.writes_at_once and not arguments.get("publish"):
            # Without a unit of work: a draft save (a read and a write), or the publish of a
            # draft this process just saved (one statement).
            try:
                if plan.kind == "update":
                    row = await context.update_at_once(
                        plan.type_name,
                        arguments["id"],
                        arguments["data"],
                        expected_revision=arguments.get("expectedRevision"),
                    )
                elif plan.kind == "publish":
                    row = await context.publish_saved_at_once(
                        plan.type_name,
                        arguments["id"],
                        expected_revision=arguments.get("expectedRevision"),
                    )
                else:
                    row = None
            except CMSError as exc:
                # It may have been committed: answered, never run a second time.
                error = GraphQLError(exc.message, original_error=exc)
                return _result_response(ExecutionResult(data=None, errors=[error]), media)
            if row is not None:
                self.direct_served += 1
                self.written_at_once += 1
                return _Answer(call.body(row), media)
        try:
            unit = await context.unit()
            collection = self.api.collection(plan.type_name, unit.registry)
            if plan.kind == "update":
                row = await collection.update_row(
                    unit,
                    arguments["id"],
                    arguments["data"],
                    publish=bool(arguments.get("publish")),
                    expected_revision=arguments.get("expectedRevision"),
                )
            elif plan.kind == "publish":
                row = await collection.publish_row(
                    unit, arguments["id"], expected_revision=arguments.get("expectedRevision")
                )
            else:
                row = await collection.unpublish_row(unit, arguments["id"])
            body = call.body(row)
        except Exception as exc:
            await context.finish(commit=False)
            if not isinstance(exc, CMSError):
                log.exception("a direct write failed; serving it through the resolvers")
                self.direct_failures += 1
            return None
        except BaseException:
            await context.finish(commit=False)
            raise
        try:
            await context.finish(commit=True)
        except CMSError as exc:
            # The commit was attempted: it may not run a second time.
            error = GraphQLError(exc.message, original_error=exc)
            return _result_response(ExecutionResult(data=None, errors=[error]), media)
        self.direct_served += 1
        if context.consistency_token is not None:
            body = _with_extensions(body, {"consistencyToken": context.consistency_token})
        return _Answer(body, media)

    def _playground(self, request: Request) -> Response:
        # The key stays off pages served to other machines, even in demo mode (`--host 0.0.0.0`).
        key = self.dev_key if _is_loopback(request) else None
        return playground_response(
            endpoint=request.url.path,
            headers={"Authorization": f"Bearer {key}"} if key else None,
            query=self.demo_query if key else None,
        )


class _Answer(Response):
    """A 200 whose JSON body is ready (a compiled read's or a direct write's): its length, its
    media type and `Vary: Accept`. Set up directly: Starlette's `__init__` renders the body and
    builds the header list by search, several microseconds of every such request."""

    def __init__(self, body: bytes, media: str) -> None:
        self.status_code = 200
        self.background = None
        self.body = body
        self.raw_headers = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", _CONTENT_TYPES[media]),
            (b"vary", b"Accept"),
        ]


_CONTENT_TYPES = {
    media: f"{media}; charset=utf-8".encode("latin-1") for media in (JSON, GRAPHQL_RESPONSE)
}


def _replica_failure(result: ExecutionResult) -> CMSError | None:
    """What in a replica-served result was the replica's doing: a lost connection, or a conflict
    with recovery (a read-only query has no other way to conflict)."""
    codes = {(error.extensions or {}).get("code") for error in result.errors or ()}
    if UnavailableError.code in codes:
        return UnavailableError("the replica was lost during the request")
    if ConflictError.code in codes:
        return ConflictError("a conflict with recovery on the replica")
    return None


def _consistency_token(request: Request) -> int | None:
    """The WAL position of `X-Consistency-Token`, which the reads must see (None: none sent)."""
    try:
        return consistency_token(request.headers.get(CONSISTENCY_HEADER))
    except InvalidInputError as exc:
        raise _bad_request(exc.message) from None


def _with_extensions(body: bytes, extensions: dict[str, Any]) -> bytes:
    """A rendered response object with `extensions` added, without parsing it again."""
    return body[:-1] + b',"extensions":' + orjson.dumps(extensions) + b"}"


def _persisted_error(message: str, code: str) -> GraphQLError:
    # Apollo's clients look for the message as well as the code, and send the text on NOT_FOUND.
    return GraphQLError(message, extensions={"code": code})


@functools.lru_cache(maxsize=512)
def _operation_type(query: str, operation_name: str | None) -> str | None:
    """`query`, `mutation` or `subscription` for the chosen operation (None: none or several, or
    no parse)."""
    try:
        document = parse(query, max_tokens=MAX_TOKENS)
    except GraphQLError:
        return None
    operation = chosen_operation(document, operation_name)
    return operation.operation.value if operation is not None else None


@functools.lru_cache(maxsize=512)
def _operation_count(query: str) -> int:
    """How many operations a document defines (0 when it does not parse: execution reports that)."""
    try:
        document = parse(query, max_tokens=MAX_TOKENS)
    except GraphQLError:
        return 0
    return sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)


@functools.lru_cache(maxsize=512)
def _introspects(query: str) -> bool:
    """Whether the document selects `__schema` or `__type` (False when it does not parse)."""
    try:
        return introspects(parse(query, max_tokens=MAX_TOKENS))
    except GraphQLError:
        return False


def _multipart_params(form: FormData) -> Params:
    """The GraphQL multipart request spec: `operations`, a `map` of files to variables, the files."""
    operations, files_map = form.get("operations"), form.get("map")
    if not isinstance(operations, str) or not isinstance(files_map, str):
        raise _bad_request("a multipart request needs the form fields `operations` and `map`")
    data = _json(operations.encode(), "`operations`")
    paths = _json(files_map.encode(), "`map`")
    if not isinstance(data, dict):
        raise _bad_request("`operations` must be one operation (batches are not supported)")
    if not isinstance(paths, dict) or not all(
        isinstance(targets, list) and all(isinstance(t, str) for t in targets)
        for targets in paths.values()
    ):
        raise _bad_request("`map` must map each file's field name to a list of paths")
    files = {name: value for name, value in form.multi_items() if isinstance(value, UploadFile)}
    try:
        filled = replace_placeholders_with_files(data, paths, files)
    except (KeyError, IndexError, TypeError, ValueError):
        raise _bad_request("`map` names a file or a path that the request does not have") from None
    return Params.from_mapping(filled)
