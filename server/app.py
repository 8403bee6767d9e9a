"""The Starlette application: the app factory and its lifespan."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Message, Receive, Scope, Send

from server.asset_files import mount_assets
from server.config import Settings
from server.demo import prepare_demo
from server.http.endpoint import GraphQLEndpoint
from server.http.playground import STATIC_PATH, static_assets
from server.query.reader import CompiledReads
from server.services import Services

log = logging.getLogger(__name__)


def create_app(settings: Settings, *, services: Services | None = None) -> Starlette:
    """Build the ASGI app. Tests pass started `services`; otherwise the lifespan starts them."""
    owned = services is None
    running = services if services is not None else Services.create(settings)

    graphql = GraphQLEndpoint(
        running.api,
        max_body_bytes=settings.request_max_bytes,
        # An upload's file may be as large as MAX_UPLOAD_BYTES, beside its JSON form fields.
        max_multipart_bytes=settings.max_upload_bytes + settings.request_max_bytes,
        mailer=running.mailer,
        compiled_reads=settings.compiled_reads,
        introspection=settings.introspection,
        delivery=running.delivery,
        reads=CompiledReads(
            running.api.adapter,
            running.replicas,
            batch_most=settings.read_batch_max,
            batch_wait=settings.read_batch_wait_ms / 1000,
        ),
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if owned:
            await running.start()
        if settings.demo_url is not None:
            # Only `serve` on the embedded database sets it: a start-up job, not a request path.
            demo = await prepare_demo(running, settings.demo_url)
            if demo is not None:
                graphql.dev_key, graphql.demo_query = demo.key, demo.query
        if owned:
            # What start-up built (modules, the GraphQL schema) lives as long as the process: moved
            # out of the collector's way, full collections stay short (they were the p99 tail).
            graphql.current()
            gc.collect()
            gc.freeze()
        if settings.scheduler_enabled:
            # Every process runs due schedules; their claims skip each other's (server/engine/scheduler.py).
            running.scheduler.start()
        try:
            yield
        finally:
            await running.scheduler.stop()
            if owned:
                await running.stop()

    async def healthz(request: Request) -> JSONResponse:
        # Its own connection, outside the pool: a busy pool is "degraded", not down.
        health = await running.adapter.database.health()
        # Replicas are reported, never counted against the primary's health: without them the
        # primary serves every read.
        replicas = {"replicas": running.replicas.report()} if running.replicas else {}
        if health == "down":
            return JSONResponse({"status": "unavailable", **replicas}, status_code=503)
        return JSONResponse({"status": health, **replicas})

    app = _Application(
        graphql,
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/graphql", graphql),
            Route("/api/graphql", graphql),
            Mount(STATIC_PATH, app=static_assets(), name="static"),
            mount_assets(running.api, running.settings),
        ],
        lifespan=lifespan,
    )
    app.state.services = running
    app.state.graphql = graphql
    return app


GRAPHQL_PATHS = frozenset({"/graphql", "/api/graphql"})


class _Application(Starlette):
    """Starlette, with requests to the GraphQL endpoint handed to it directly.

    Every compiled read went through Starlette's error middleware, its exception middleware and
    the router (a match of each route before it), each a layer of coroutines and `send` wrappers:
    microseconds of CPU per request, which the shortest reads notice. A request to
    `GRAPHQL_PATHS` now reaches the endpoint at once, answered as those layers would answer it
    when the endpoint raises; with middleware or exception handlers added, a debug app or a
    `root_path`, it takes Starlette's way.
    """

    def __init__(self, graphql: GraphQLEndpoint, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._graphql = graphql

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] not in GRAPHQL_PATHS
            or scope.get("root_path")
            or self.user_middleware
            or self.exception_handlers
            or self.debug
            or getattr(self, "max_body_size", None) is not None
        ):
            await super().__call__(scope, receive, send)
            return
        # What the router would have set (`Route.matches`).
        scope["app"] = self
        scope.setdefault("router", self.router)
        scope["endpoint"] = self._graphql
        scope["path_params"] = {}
        started = False

        async def sender(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self._graphql(scope, receive, sender)
        except HTTPException as exc:
            # `ExceptionMiddleware`'s answer.
            if started:
                raise RuntimeError(
                    "Caught handled exception, but response already started."
                ) from exc
            response: Response
            if exc.status_code in {204, 304}:
                response = Response(status_code=exc.status_code, headers=exc.headers)
            else:
                response = PlainTextResponse(
                    exc.detail, status_code=exc.status_code, headers=exc.headers
                )
            await response(scope, receive, send)
        except Exception:
            # `ServerErrorMiddleware`'s: a 500 when nothing was sent yet, and the exception goes on
            # to the server, which logs it.
            if not started:
                await PlainTextResponse("Internal Server Error", status_code=500)(
                    scope, receive, send
                )
            raise


def app_from_env() -> Starlette:
    """Factory for `uvicorn --factory server.app:app_from_env` (the CLI's worker processes)."""
    return create_app(Settings.from_env())
