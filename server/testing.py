"""Throwaway databases for tests, here and in downstream projects.

`TestDatabases` migrates one template database per test session and hands each test a fresh copy
(`CREATE DATABASE ... TEMPLATE`), which takes milliseconds. The server is `DATABASE_URL` when set,
else an embedded PostgreSQL 18 in a temporary folder.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from server import migrate
from server.embedded import start_embedded


def server_url() -> str:
    """The test server's URL: DATABASE_URL, or a fresh embedded server that stops at exit."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    folder = Path(tempfile.mkdtemp(prefix="cms-test-"))
    return start_embedded(folder, database="postgres", keep_running=False)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


class TestDatabases:
    """Creates databases from a migrated template on one server."""

    __test__ = False  # not a pytest class

    def __init__(self, url: str) -> None:
        self.url = url
        self.prefix = f"cmst_{uuid.uuid4().hex[:8]}"
        self.template = f"{self.prefix}_template"
        self._counter = itertools.count(1)
        self._created: list[str] = []

    async def _admin(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.url)

    async def prepare(self) -> None:
        """Create and migrate the template database (once per session)."""
        conn = await self._admin()
        try:
            await conn.execute(f'CREATE DATABASE "{self.template}"')
        finally:
            await conn.close()
        self._created.append(self.template)
        await asyncio.to_thread(migrate.upgrade, with_database(self.url, self.template))

    async def create(self, *, empty: bool = False) -> str:
        """A fresh database: a copy of the migrated template, or an empty one."""
        name = f"{self.prefix}_{next(self._counter)}"
        conn = await self._admin()
        try:
            if empty:
                await conn.execute(f'CREATE DATABASE "{name}"')
            else:
                await conn.execute(
                    f'CREATE DATABASE "{name}" TEMPLATE "{self.template}" STRATEGY FILE_COPY'
                )
        finally:
            await conn.close()
        self._created.append(name)
        return with_database(self.url, name)

    async def drop(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        conn = await self._admin()
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
        if name in self._created:
            self._created.remove(name)

    async def drop_all(self) -> None:
        conn = await self._admin()
        try:
            for name in reversed(self._created):
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
        self._created.clear()
