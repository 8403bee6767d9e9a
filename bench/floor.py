"""The floor: a minimal Starlette app answering each scenario with one hand-written statement.

It reads the same request body the API gets (only its variables), runs one statement through an
asyncpg pool sized like the API's (`DB_POOL_SIZE`), one round trip in all, and returns the JSON
PostgreSQL built. No
authentication, no GraphQL, no transaction beyond the statement's own: what is left is the least
any server has to do for these responses. The organization comes from `BENCH_ORG_ID`.

    python -m bench.floor --host 127.0.0.1 --port 8001 --workers 1
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench import floor_sql
from server.config import Settings
from server.db.pool import keep_session


def create_app(settings: Settings, organization_id: uuid.UUID) -> Starlette:
    pool: asyncpg.Pool[Any] | None = None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal pool
        # The API's pool settings (server/db/pool.py), without its JSON codecs: nothing here decodes.
        # Nor does it reset a connection at release (asyncpg's default runs RESET ALL, UNLISTEN *,
        # CLOSE ALL and the advisory unlocks, a round trip per request): a statement here leaves
        # no session state, and the API's pool skips the reset too.
        pool = await asyncpg.create_pool(
            settings.database_url,
            min_size=min(2, settings.pool_size),
            max_size=settings.pool_size,
            max_inactive_connection_lifetime=settings.idle_timeout,
            reset=keep_session,
        )
        try:
            yield
        finally:
            await pool.close()

    def route(path: str, sql: str, arguments: Callable[[dict[str, Any]], list[Any]]) -> Route:
        async def handle(request: Request) -> Response:
            body = orjson.loads(await request.body())
            assert pool is not None
            async with pool.acquire() as conn:
                text = await conn.fetchval(
                    sql, organization_id, *arguments(body.get("variables") or {})
                )
            return Response(text, media_type="application/json")

        return Route(path, handle, methods=["POST"])

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    def no_arguments(variables: dict[str, Any]) -> list[Any]:
        return []

    def post_id(variables: dict[str, Any]) -> list[Any]:
        return [uuid.UUID(variables["id"])]

    def draft_save(variables: dict[str, Any]) -> list[Any]:
        data = orjson.dumps(variables["data"]).decode()
        return [uuid.UUID(variables["id"]), data, variables["revision"]]

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            route("/q1", floor_sql.Q1, no_arguments),
            route("/q2", floor_sql.Q2, no_arguments),
            # The values the API binds for Q3's `contains: "a"` and `greater_than: 500`.
            route("/q3", floor_sql.Q3, lambda variables: ["%a%", 500]),
            route("/q4", floor_sql.Q4, post_id),
            route("/q5", floor_sql.Q5, no_arguments),
            route("/w1", floor_sql.W1_UPDATE, draft_save),
            route("/w1/publish", floor_sql.W1_PUBLISH, post_id),
        ],
        lifespan=lifespan,
    )


def app_from_env() -> Starlette:
    """Factory for uvicorn's worker processes."""
    settings = Settings.from_env()
    if settings.database_url is None:
        raise SystemExit("DATABASE_URL: is required")
    return create_app(settings, uuid.UUID(os.environ["BENCH_ORG_ID"]))


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    # Exactly what `python -m server serve` does (server/cli/main.py), so both run the same HTTP stack.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(
        "bench.floor:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
    )


if __name__ == "__main__":
    main()
