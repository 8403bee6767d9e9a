"""What only this suite needs; the databases, the adapter and the API come from the plugin.

`server.pytest_plugin` gives every test that touches data a real PostgreSQL (DATABASE_URL when set,
else an embedded PostgreSQL 18): its own database, copied from templates made once per session.
"""

from __future__ import annotations

import asyncio
import gc
import io
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from server.config import PROJECT_ROOT
from server.content.content_model import ContentModel
from server.db.pool import PooledConnection, Tx
from server.engine.postgres import PostgresAdapter
from server.testing import (
    GraphQLClient,
)

pytest_plugins = ["server.pytest_plugin"]

__all__ = ["CMS", "GraphQLClient"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The tests marked `slow` (seconds each) go first, in their order: spread over the workers
    # of a parallel run (pytest-xdist), none of them is left for the end on one worker.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A test stopped by pytest-timeout (`timeout` in pyproject.toml) says where its event loop's
    tasks were waiting: the main thread's own stack only shows the loop idle in `select`."""
    report = yield
    if call.excinfo is not None and "from pytest-timeout" in str(call.excinfo.value):
        report.sections.append(("asyncio tasks at the timeout", _pending_tasks()))
    return report


def _pending_tasks() -> str:
    """Each pending task of every open event loop, with the chain of coroutines it awaits."""
    out = io.StringIO()
    loops = [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop)]
    for loop in loops:
        if loop.is_closed():
            continue
        for task in asyncio.all_tasks(loop):
            out.write(f"{task!r}\n")
            awaited: Any = task.get_coro()
            while awaited is not None:
                frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "ag_frame", None)
                if frame is None:
                    out.write(f"    awaiting {awaited!r}\n")
                    break
                code = frame.f_code
                out.write(f"    {code.co_filename}:{frame.f_lineno} in {code.co_name}\n")
                awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "ag_await", None)
    # None open: the worker's last test, whose session loop closed in the same teardown.
    return out.getvalue() or "no event loop open"


@pytest.fixture
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The lowest Argon2 cost: the same code paths, without a fifth of a second per hash."""
    from argon2 import PasswordHasher, profiles

    from server.access import passwords

    monkeypatch.setattr(passwords, "_HASHER", PasswordHasher.from_parameters(profiles.CHEAPEST))
    passwords.dummy_hash.cache_clear()
    yield
    passwords.dummy_hash.cache_clear()


# The API's own background work (polls and a listener's reloads, which may wake at any moment)
# runs in these tasks: their round trips are not a request's, and would make a count taken
# around a request depend on timing.
_BACKGROUND_TASKS = frozenset(
    {"outbox worker", "scheduled publishing", "replica checks", "schema listener"}
)


def _in_background_task() -> bool:
    task = asyncio.current_task()
    return task is not None and task.get_name() in _BACKGROUND_TASKS


def _long_lived_tasks() -> set[asyncio.Task[Any]]:
    return {task for task in asyncio.all_tasks() if task.get_name() in _BACKGROUND_TASKS}


@pytest.fixture(autouse=True)
async def _services_stopped() -> AsyncIterator[None]:
    """A test that starts the API's services stops them: one event loop serves the whole session,
    and a worker or listener left running would poll the later tests' databases (or fail to,
    every second) and show up in their round-trip counts."""
    before = _long_lived_tasks()
    yield
    left = _long_lived_tasks() - before
    for task in left:
        task.cancel()
    assert not left, f"the test left its services running: {sorted(t.get_name() for t in left)}"


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQL of every round trip on any connection, in order, but for the background tasks'.

    Each call of a connection's `execute`, `fetch`, `fetchrow`, `fetchval` or `executemany` is one
    round trip once its statement is prepared, and so is asyncpg's own `BEGIN`, `COMMIT` or
    `ROLLBACK`.
    """
    sent: list[str] = []
    for name in ("execute", "fetch", "fetchrow", "fetchval", "executemany"):
        original = getattr(asyncpg.Connection, name)

        def counted(self: Any, query: str, *args: Any, _original: Any = original, **kw: Any) -> Any:
            if not _in_background_task():
                sent.append(query)
            return _original(self, query, *args, **kw)

        monkeypatch.setattr(asyncpg.Connection, name, counted)
    # One round trip as well: a statement described once, run again (transaction pooling).
    described = PooledConnection.described_statement

    def counted_described(self: Any, query: str) -> Any:
        if not _in_background_task():
            sent.append(query)
        return described(self, query)

    monkeypatch.setattr(PooledConnection, "described_statement", counted_described)
    # And a statement the server session keeps prepared, bound by name (the text is its query's).
    bound = PooledConnection.fetchrow_prepared

    def counted_prepared(self: Any, prepared: Any, *args: Any, **kw: Any) -> Any:
        if not _in_background_task():
            sent.append(prepared._query)
        return bound(self, prepared, *args, **kw)

    monkeypatch.setattr(PooledConnection, "fetchrow_prepared", counted_prepared)
    # Behind a transaction pooler a kept statement travels inside `cms_run_kept`'s call
    # (`server/db/kept.py`): its round trip is recorded with the statement's text too.
    kept = Tx.fetchrow_kept

    async def counted_kept(self: Any, sql: str, *args: Any) -> Any:
        start = len(sent)
        try:
            return await kept(self, sql, *args)
        finally:
            for n in range(start, len(sent)):
                if "cms_run_kept" in sent[n]:
                    sent[n] = f"{sent[n]} /* {sql} */"

    monkeypatch.setattr(Tx, "fetchrow_kept", counted_kept)
    return sent


@dataclass
class CMS:
    """The content engine on a fresh database, with the example content model registered."""

    adapter: PostgresAdapter
    model: ContentModel
    api: Any  # LocalAPI

    async def org(self, slug: str, parent: uuid.UUID | None = None) -> uuid.UUID:
        async with self.adapter.system_context() as tx:
            org_id: uuid.UUID = await tx.fetchval(
                "insert into cms_organizations (name, slug, parent_organization_id, created_by)"
                " values ($1, $1, $2, 'test') returning id",
                slug,
                parent,
            )
        return org_id


@pytest.fixture
async def cms(cms_adapter: PostgresAdapter) -> CMS:
    from server.engine.local_api import LocalAPI

    model = ContentModel(cms_adapter, cms_adapter.instance_transaction)
    await model.sync_dir(PROJECT_ROOT / "schema")
    return CMS(adapter=cms_adapter, model=model, api=LocalAPI(cms_adapter, model))


async def until_a_lock_wait(adapter: PostgresAdapter, *, seconds: float = 10) -> None:
    """Return once a session on the adapter's database is waiting for a lock (a blocked statement),
    polling on a connection of its own; fail after `seconds`."""
    conn = await asyncpg.connect(adapter.database.direct_url)
    try:
        async with asyncio.timeout(seconds):
            while True:
                waiting = await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
                if waiting:
                    return
                await asyncio.sleep(0.005)
    finally:
        await conn.close()
