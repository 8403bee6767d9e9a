"""The live content model: the registry of schema types every request validates and queries against.

At start-up the types defined in `SCHEMA_DIR` are upserted into `cms_schema_types`; the registry is then
everything stored there, so types registered at run time survive restarts. A change made at run time
is written in the caller's transaction (a GraphQL operation's unit of work: it commits or rolls back
with the rest of the operation) and, once that commits, a new immutable `Registry` is swapped in;
requests that already started keep the one they began with. Changes are serialized by a transaction
advisory lock, and each is checked against the types stored at that moment, not this process's copy.

Other server processes learn of a change through PostgreSQL: the changing transaction sends
`NOTIFY cms_schema_types`, delivered at commit, and every process LISTENs on a connection of its own
and reloads (`listen()`), typically within milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Protocol

import asyncpg

from server.db.pool import Tx
from server.errors import InvalidInputError, NotFoundError
from server.model.json_form import load_schema_dir, parse_schema_type
from server.model.types import Registry, SchemaType
from server.waiting import set_within

log = logging.getLogger(__name__)


Transaction = Callable[[], AbstractAsyncContextManager[Tx]]
Check = Callable[[Registry], None]

CHANNEL = "cms_schema_types"
# Schema changes one at a time, across processes: each reads the stored types under this lock.
LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext('cms:schema_types'))"
RECONNECT_SECONDS = 2.0


class SchemaTypes(Protocol):
    """Where the content model keeps its types (`server.content.schema_store.SchemaStore`)."""

    async def register_schema_type(self, tx: Tx, *, schema_type: SchemaType) -> bool:
        """Insert or replace a type by name; True when the stored definition changed."""
        ...

    async def list_schema_types(self, tx: Tx) -> list[SchemaType]:
        """Every stored type."""
        ...

    async def delete_schema_type(self, tx: Tx, *, name: str) -> bool:
        """Forget a type; its documents stay."""
        ...


class ContentModel:
    def __init__(self, store: SchemaTypes, transaction: Transaction) -> None:
        self.store = store
        self.transaction = transaction
        self.registry = Registry()
        self._listener: asyncio.Task[None] | None = None
        # One reload at a time in this process. A reload that started before a change of ours
        # committed would read the older types: the generation tells it not to overwrite the newer
        # registry (our own notification then starts a reload that reads the change).
        self._changing = asyncio.Lock()
        self._generation = 0

    async def listen(self, url: str) -> None:
        """Follow schema changes made by other processes until `close()`."""
        if self._listener is None:
            ready = asyncio.Event()
            self._listener = asyncio.create_task(self._follow(url, ready), name="schema listener")
            await ready.wait()

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None

    async def _follow(self, url: str, ready: asyncio.Event) -> None:
        changed = asyncio.Event()
        while True:
            try:
                conn = await asyncpg.connect(url)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("cannot listen for schema changes (%s); retrying", exc)
                ready.set()
                await asyncio.sleep(RECONNECT_SECONDS)
                continue
            try:
                await conn.add_listener(CHANNEL, lambda *_: changed.set())
                ready.set()
                # Changes made while we were not listening are picked up by this reload.
                changed.set()
                while not conn.is_closed():
                    if await set_within(changed, RECONNECT_SECONDS):
                        changed.clear()
                        await self._reload_if_changed()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("schema change listener failed (%s); reconnecting", exc)
            finally:
                with contextlib.suppress(Exception):
                    await conn.close()

    async def _reload_if_changed(self) -> None:
        async with self._changing:
            generation = self._generation
            async with self.transaction() as tx:
                registry = Registry(await self.store.list_schema_types(tx))
            if registry != self.registry and generation == self._generation:
                registry.check()
                self._swap(registry)
                log.info("schema types reloaded after a change elsewhere")

    def _swap(self, registry: Registry) -> None:
        self.registry = registry
        self._generation += 1

    async def sync_dir(self, path: Path) -> Registry:
        """Upsert the types defined in `path`, then load every stored type."""
        defined = load_schema_dir(path)
        async with self._changing, self.transaction() as tx:
            return await self._sync(tx, defined, path)

    async def _sync(self, tx: Tx, defined: Registry, path: Path) -> Registry:
        await tx.execute(LOCK_SQL)
        changed = [
            t.name
            for t in defined.values()
            if await self.store.register_schema_type(tx, schema_type=t)
        ]
        if changed:
            log.info("schema types updated from %s: %s", path.name, ", ".join(sorted(changed)))
        return await self.reload(tx)

    async def reload(self, tx: Tx | None = None) -> Registry:
        """Load every stored type (after another process changed them, say)."""
        if tx is None:
            async with self.transaction() as own:
                return await self.reload(own)
        registry = Registry(await self.store.list_schema_types(tx))
        registry.check()
        self._swap(registry)
        return registry

    async def register(self, tx: Tx, definition: Any, *, check: Check | None = None) -> SchemaType:
        """Validate and store a type (new or changed) in `tx`; the live registry changes once `tx`
        commits, and not at all if it rolls back.

        `check` may veto the resulting registry (the API checks that it can serve it).
        """
        schema_type = parse_schema_type(definition)
        registry = (await self._stored(tx)).with_type(schema_type)
        registry.check()
        if check is not None:
            check(registry)
        await self.store.register_schema_type(tx, schema_type=schema_type)
        await self._changed(tx, registry, schema_type.name)
        return schema_type

    async def delete(self, tx: Tx, name: str, *, check: Check | None = None) -> None:
        """Remove a type in `tx`; its documents stay. Refused while other types still link to it."""
        stored = await self._stored(tx)
        if name not in stored:
            raise NotFoundError(f"unknown schema type '{name}'", path="name")
        registry = stored.without(name)
        problems = registry.problems()
        if problems:
            users = sorted({p["type"] for p in problems})
            raise InvalidInputError(
                f"schema type '{name}' is still used by: {', '.join(users)}", path="name"
            )
        if check is not None:
            check(registry)
        await self.store.delete_schema_type(tx, name=name)
        await self._changed(tx, registry, name)

    async def _stored(self, tx: Tx) -> Registry:
        """The stored types, with every other change locked out until `tx` ends."""
        await tx.execute(LOCK_SQL)
        return Registry(await self.store.list_schema_types(tx))

    async def _changed(self, tx: Tx, registry: Registry, name: str) -> None:
        # NOTIFY is delivered at commit, so other processes reload only a committed change.
        await tx.execute("SELECT pg_notify($1, $2)", CHANNEL, name)
        tx.after_commit(lambda: self._swap(registry))
