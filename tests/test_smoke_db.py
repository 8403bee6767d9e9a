from __future__ import annotations

from server.engine.postgres import PostgresAdapter


async def test_adapter_connects_and_is_healthy(cms_adapter: PostgresAdapter) -> None:
    assert await cms_adapter.is_healthy()
    assert cms_adapter.tenancy.request_role == "cms_request"
