"""The Starlette application: the app factory and its lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from server.config import Settings
from server.postgres import PostgresAdapter

log = logging.getLogger(__name__)


def adapter_for(settings: Settings) -> PostgresAdapter:
    if settings.database_url is None:
        raise RuntimeError("no database URL: start the embedded server first (server.cli does)")
    return PostgresAdapter(
        settings.database_url,
        pool_size=settings.pool_size,
        idle_timeout=settings.idle_timeout,
        enable_rls=settings.enable_rls,
        enable_hierarchy=settings.enable_hierarchy,
        statement_timeout_ms=settings.statement_timeout_ms,
    )


def create_app(settings: Settings, *, adapter: PostgresAdapter | None = None) -> Starlette:
    """Build the ASGI app. Tests inject a connected `adapter`; otherwise the lifespan connects one."""
    owns_adapter = adapter is None
    database = adapter if adapter is not None else adapter_for(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if owns_adapter:
            await database.connect()
        try:
            yield
        finally:
            if owns_adapter:
                await database.disconnect()

    async def healthz(request: Request) -> JSONResponse:
        if await database.is_healthy():
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "unavailable"}, status_code=503)

    app = Starlette(routes=[Route("/healthz", healthz, methods=["GET"])], lifespan=lifespan)
    app.state.settings = settings
    app.state.adapter = database
    return app


def app_from_env() -> Starlette:
    """Factory for `uvicorn --factory server.app:app_from_env` (the CLI's worker processes)."""
    return create_app(Settings.from_env())
