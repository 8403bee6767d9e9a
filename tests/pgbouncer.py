"""A real PgBouncer in transaction mode in front of the test server, started by the tests.

Debian's `pgbouncer` (1.18: no protocol-level prepared statements), configured as the bench's
(`bench/pgbouncer.py`: every database name forwarded to the test server, so each test's fresh
database is reachable through it), but with exactly `pool_size` server connections per database
and a short wait for one. Locally the tests that need it are skipped when it is missing (with the
command that installs it); in CI they fail instead.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import quote

from bench.pgbouncer import SETTINGS, Upstream, binary, command, configure
from tests.live_server import Output, free_port, require_tool

INSTALL = "apt-get install -y pgbouncer"
STARTUP_SECONDS = 10
# At most `pool_size` server connections, none held in reserve; a client waiting this long for
# one fails instead of hanging the test run.
TEST_SETTINGS = {
    **SETTINGS,
    "min_pool_size": "0",
    "reserve_pool_size": "0",
    "max_client_conn": "500",
    "query_wait_timeout": "20",
}


def require_pgbouncer() -> str:
    path = binary()
    require_tool(path is not None, "pgbouncer", f"install it: {INSTALL}")
    assert path is not None
    return path


@dataclass(frozen=True)
class Bouncer:
    port: int
    user: str
    output: Output

    def url(self, database_url: str) -> str:
        """The database of `database_url`, reached through this PgBouncer."""
        database = Upstream.of(database_url).database
        return f"postgresql://{quote(self.user, safe='')}@127.0.0.1:{self.port}/{database}"


@asynccontextmanager
async def pgbouncer(server_url: str, *, pool_size: int = 1) -> AsyncIterator[Bouncer]:
    """PgBouncer in transaction mode in front of the server of `server_url`, with at most
    `pool_size` server connections per database."""
    require_pgbouncer()
    target = Upstream.of(server_url)
    port = free_port()
    # Not under pytest's tmp_path: when the tests run as root, PgBouncer switches to another user,
    # which must read its configuration.
    folder = configure(
        target,
        port,
        pool_size=pool_size,
        unix_socket=False,
        settings={**TEST_SETTINGS, "max_db_connections": str(pool_size)},
    )
    process = await asyncio.create_subprocess_exec(
        *command(target, folder),
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
