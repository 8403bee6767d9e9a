"""A real PgBouncer in transaction mode in front of the test server, started by the tests.

Debian's `pgbouncer` (1.18: no protocol-level prepared statements) listens on a free local port
with trust authentication and forwards every database name to the test server (`* = ...`), so
each test's fresh database is reachable through it. Locally the tests that need it are skipped
when it is missing (with the command that installs it); in CI they fail instead.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from tests.live_server import Output, free_port, require_tool

INSTALL = "apt-get install -y pgbouncer"
STARTUP_SECONDS = 10


def require_pgbouncer() -> str:
    path = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    require_tool(Path(path).exists(), "pgbouncer", f"install it: {INSTALL}")
    return path


@dataclass(frozen=True)
class Target:
    """Where a PostgreSQL URL leads: host (or socket folder), port, user, password, database."""

    host: str
    port: int
    user: str
    password: str | None
    database: str

    @classmethod
    def of(cls, url: str) -> Target:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        host = parts.hostname or query.get("host", ["127.0.0.1"])[0]
        port = parts.port or int(query.get("port", ["5432"])[0])
        user = parts.username or getpass.getuser()
        return cls(host, port, user, parts.password, parts.path.lstrip("/"))


@dataclass(frozen=True)
class Bouncer:
    port: int
    user: str
    output: Output

    def url(self, database_url: str) -> str:
        """The database of `database_url`, reached through this PgBouncer."""
        database = Target.of(database_url).database
        return f"postgresql://{quote(self.user, safe='')}@127.0.0.1:{self.port}/{database}"


@asynccontextmanager
async def pgbouncer(server_url: str, *, pool_size: int = 1) -> AsyncIterator[Bouncer]:
    """PgBouncer in transaction mode in front of the server of `server_url`, with at most
    `pool_size` server connections per database."""
    binary = require_pgbouncer()
    target = Target.of(server_url)
    port = free_port()
    folder = _configure(target, port, pool_size)
    config = folder / "pgbouncer.ini"
    user = ["-u", _unprivileged_user(target)] if os.geteuid() == 0 else []
    process = await asyncio.create_subprocess_exec(
        binary,
        *user,
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output = Output()
    assert process.stdout is not None
    collecting = asyncio.create_task(output.collect(process.stdout))
    try:
        await _wait_for_port(port, process, output)
        yield Bouncer(port=port, user=target.user, output=output)
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
        await collecting
        shutil.rmtree(folder, ignore_errors=True)


def _unprivileged_user(target: Target) -> str:
    """Who PgBouncer runs as when the tests run as root (it refuses to run as root): the owner of
    the server's socket folder (the embedded server's own user), else `postgres`."""
    if target.host.startswith("/"):
        return Path(target.host).owner()
    return "postgres"


def _configure(target: Target, port: int, pool_size: int) -> Path:
    """A folder with PgBouncer's configuration and its (passwordless) user list."""
    # Not under pytest's tmp_path: when the tests run as root, PgBouncer switches to another user
    # (`_unprivileged_user`), which must read its configuration.
    folder = Path(tempfile.mkdtemp(prefix="pgbouncer-test-"))
    folder.chmod(0o755)
    server = f"host={target.host} port={target.port} user={target.user}"
    if target.password:
        server += f" password={target.password}"
    (folder / "pgbouncer.ini").write_text(
        f"""[databases]
* = {server}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder / "users.txt"}
pool_mode = transaction
default_pool_size = {pool_size}
min_pool_size = 0
reserve_pool_size = 0
max_db_connections = {pool_size}
max_client_conn = 500
# A client waiting this long for a server connection fails instead of hanging the test run.
query_wait_timeout = 20
"""
    )
    (folder / "users.txt").write_text(f'"{target.user}" ""\n')
    for path in folder.iterdir():
        path.chmod(0o644)
    return folder


async def _wait_for_port(port: int, process: asyncio.subprocess.Process, output: Output) -> None:
    async with asyncio.timeout(STARTUP_SECONDS):
        while True:
            if process.returncode is not None:
                raise AssertionError(f"pgbouncer exited:\n{output.text}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return
