"""The GraphQL endpoint: each request is served by the schema of the content model current when it
arrives, so a schema change takes effect on the next request and never under a request in flight."""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL

from server.graphql.context import RequestContext
from server.graphql.schema import BuiltSchema, build_schema
from server.local_api import LocalAPI

log = logging.getLogger(__name__)


class _SchemaApp(GraphQL[RequestContext, None]):
    def __init__(self, built: BuiltSchema, api: LocalAPI) -> None:
        super().__init__(
            built.schema,
            graphql_ide=None,
            allow_queries_via_get=True,
            multipart_uploads_enabled=True,
        )
        self.built = built
        self.api = api

    async def get_context(self, request: Request | Any, response: Response | Any) -> RequestContext:
        headers = request.headers
        return RequestContext(
            api=self.api,
            generated=self.built.generated,
            authorization=headers.get("authorization"),
            organization_header=headers.get("x-organization-id"),
        )


class GraphQLEndpoint:
    """An ASGI app that builds a schema per content model and routes each request to the current one."""

    def __init__(self, api: LocalAPI) -> None:
        self.api = api
        self._app: _SchemaApp | None = None

    def current(self) -> _SchemaApp:
        registry = self.api.model.registry
        app = self._app
        if app is None or app.built.registry is not registry:
            log.info("building the GraphQL schema for %d schema types", len(registry))
            app = _SchemaApp(build_schema(registry), self.api)
            self._app = app
        return app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.current()(scope, receive, send)
