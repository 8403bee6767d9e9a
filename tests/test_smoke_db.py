from __future__ import annotations

from server.engine.postgres import PostgresAdapter


async def test_adapter_connects_and_is_healthy(adapter: PostgresAdapter) -> None:
    assert await adapter.is_healthy()
    assert adapter.tenancy.request_role == "cms_request"
