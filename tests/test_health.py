"""/healthz answers 200 while the database is reachable and 503 once it is not."""

from __future__ import annotations

import httpx

from server.app import create_app
from server.config import Settings
from server.engine.postgres import PostgresAdapter
from server.services import Services


async def test_healthz_follows_the_database(cms_adapter: PostgresAdapter) -> None:
    settings = Settings(database_url=cms_adapter.database.url)
    app = create_app(settings, services=Services.create(settings, cms_adapter))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        ok = await client.get("/healthz")
        assert (ok.status_code, ok.json()) == (200, {"status": "ok"})

        await cms_adapter.disconnect()
        down = await client.get("/healthz")
        assert (down.status_code, down.json()) == (503, {"status": "unavailable"})
        await cms_adapter.database.connect()


async def test_is_healthy_is_false_for_an_unreachable_server() -> None:
    adapter = PostgresAdapter("postgresql://nobody@127.0.0.1:1/none", run_migrations=False)
    assert not await adapter.is_healthy()
