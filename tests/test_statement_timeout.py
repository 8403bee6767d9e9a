"""The per-request statement timeout ends a runaway statement with a clear error, not a hang."""

from __future__ import annotations

import pytest

from server.engine.postgres import PostgresAdapter
from server.errors import TimedOutError
from tests.conftest import CMS


async def test_a_slow_statement_is_cancelled(cms_database_url: str, cms: CMS) -> None:
    org = await cms.org("slow")
    adapter = PostgresAdapter(
        cms_database_url, pool_size=1, run_migrations=False, statement_timeout_ms=100
    )
    await adapter.connect()
    try:
        async with adapter.with_org_context(org) as tx:
            with pytest.raises(TimedOutError, match="statement timeout") as caught:
                await tx.execute("select pg_sleep(2)")
            assert caught.value.code == "TIMEOUT"
        # The connection is fine afterwards, and the timeout was local to that transaction.
        async with adapter.database.transaction() as tx:
            assert await tx.fetchval("select current_setting('statement_timeout')") == "0"
    finally:
        await adapter.disconnect()
