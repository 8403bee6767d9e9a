"""PgBouncer in transaction mode in front of the run's PostgreSQL, for the API measured through it.

Debian's `pgbouncer` listens on a free local port with trust authentication and forwards every
database name to the server (`* = ...`), with `POOL_SIZE` server connections per database: what
`docs/scaling.md` suggests. Run as root, it runs as the owner of the server's socket folder (the
embedded server's user) or `postgres`, as it refuses to run as root.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from bench.servers import free_port

POOL_SIZE = 20
START_SECONDS = 10.0


@dataclass(frozen=True)
class Server:
    """Where a PostgreSQL URL leads: host (or socket folder), port, user and password."""

    host: str
    port: int
    user: str
    password: str | None

    @classmethod
    def of(cls, url: str) -> Server:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        host = parts.hostname or query.get("host", ["127.0.0.1"])[0]
        port = parts.port or int(query.get("port", ["5432"])[0])
        return cls(host, port, parts.username or getpass.getuser(), parts.password)


@dataclass(frozen=True)
class Pooler:
    port: int
    user: str

    def url(self, database: str) -> str:
        return f"postgresql://{quote(self.user, safe='')}@127.0.0.1:{self.port}/{database}"


def binary() -> str:
    path = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not Path(path).exists():
        raise SystemExit("pgbouncer is missing: apt-get install pgbouncer")
    return path


@contextmanager
def pgbouncer(server_url: str, *, pool_size: int = POOL_SIZE) -> Iterator[Pooler]:
    """PgBouncer (transaction mode) in front of the server of `server_url`, until the block ends."""
    target = Server.of(server_url)
    folder = Path(tempfile.mkdtemp(prefix="bench-pgbouncer-"))
    folder.chmod(0o755)  # PgBouncer's own user reads its configuration
    port = free_port()
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
max_client_conn = 2000
idle_transaction_timeout = 60
query_wait_timeout = 30
"""
    )
    (folder / "users.txt").write_text(f'"{target.user}" ""\n')
    for path in folder.iterdir():
        path.chmod(0o644)
    user: list[str] = []
    if os.geteuid() == 0:
        owner = Path(target.host).owner() if target.host.startswith("/") else "postgres"
        user = ["-u", owner]
    log = (folder / "pgbouncer.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 (a fixed command line)
        [binary(), *user, str(folder / "pgbouncer.ini")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for(port, process)
        yield Pooler(port=port, user=target.user)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("pgbouncer exited at start-up")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"pgbouncer did not listen on port {port} within {START_SECONDS:g} s")
