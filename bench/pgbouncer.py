"""PgBouncer in transaction mode in front of a PostgreSQL server: the bench's, and the tests' too.

Debian's `pgbouncer` (1.18) forwards every database name to the server (`* = ...`) with trust
authentication, listening on a free local port: on a Unix socket in its own folder, as a sidecar
next to the API would (`docs/scaling.md`), and on 127.0.0.1 unless told not to. Run as root, it
runs as the owner of the server's socket folder (the embedded server's user) or `postgres`, as it
refuses to run as root. `configure` writes the folder; `pgbouncer` runs it for the bench;
`tests/pgbouncer.py` runs it for the tests.
"""

from __future__ import annotations

import getpass
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

POOL_SIZE = 20
START_SECONDS = 10.0
# What `docs/scaling.md` recommends beyond the defaults. A packet buffer that holds a compiled
# read's call whole (its text travels with it) and a page of results: PgBouncer forwards what does
# not fit in several reads and writes.
SETTINGS = {
    "pool_mode": "transaction",
    "pkt_buf": "16384",
    "max_client_conn": "2000",
    "idle_transaction_timeout": "60",
    "query_wait_timeout": "30",
}


@dataclass(frozen=True)
class Upstream:
    """Where a PostgreSQL URL leads: host (or socket folder), port, user, password, database."""

    host: str
    port: int
    user: str
    password: str | None
    database: str

    @classmethod
    def of(cls, url: str) -> Upstream:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        host = parts.hostname or query.get("host", ["127.0.0.1"])[0]
        port = parts.port or int(query.get("port", ["5432"])[0])
        user = parts.username or getpass.getuser()
        return cls(host, port, user, parts.password, parts.path.lstrip("/"))


@dataclass(frozen=True)
class Pooler:
    """A running PgBouncer: its port, and its socket folder when it listens on one."""

    port: int
    user: str
    socket_dir: Path | None = None
    # The PgBouncer process (its CPU time is part of what a request through it costs).
    pid: int | None = None

    def url(self, database: str, *, tcp: bool = False) -> str:
        """`database` through this PgBouncer: over its Unix socket when it has one, unless `tcp`."""
        user = quote(self.user, safe="")
        if self.socket_dir is None or tcp:
            return f"postgresql://{user}@127.0.0.1:{self.port}/{quote(database)}"
        return f"postgresql://{user}@/{quote(database)}?host={quote(str(self.socket_dir))}&port={self.port}"


def binary() -> str | None:
    path = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    return path if Path(path).exists() else None


def run_as(upstream: Upstream) -> str | None:
    """Who PgBouncer runs as when started as root: the owner of the server's socket folder (the
    embedded server's own user), else `postgres`; None when not root."""
    if os.geteuid() != 0:
        return None
    return Path(upstream.host).owner() if upstream.host.startswith("/") else "postgres"


def configure(
    upstream: Upstream,
    port: int,
    *,
    pool_size: int = POOL_SIZE,
    unix_socket: bool = True,
    tcp: bool = True,
    settings: Mapping[str, str] = SETTINGS,
) -> Path:
    """A fresh folder with `pgbouncer.ini` and its (passwordless) user list, for `upstream`."""
    folder = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    folder.chmod(0o755)  # PgBouncer's own user reads its configuration
    user = run_as(upstream)
    if user is not None and unix_socket:
        # ... and makes its socket here.
        os.chown(folder, pwd.getpwnam(user).pw_uid, -1)
    server = f"host={upstream.host} port={upstream.port} user={upstream.user}"
    if upstream.password:
        server += f" password={upstream.password}"
    lines = [
        "[databases]",
        f"* = {server}",
        "",
        "[pgbouncer]",
        f"listen_addr = {'127.0.0.1' if tcp else ''}",
        f"listen_port = {port}",
        f"unix_socket_dir = {folder if unix_socket else ''}",
        "auth_type = trust",
        f"auth_file = {folder / 'users.txt'}",
        f"default_pool_size = {pool_size}",
        *(f"{name} = {value}" for name, value in settings.items()),
    ]
    (folder / "pgbouncer.ini").write_text("\n".join(lines) + "\n")
    (folder / "users.txt").write_text(f'"{upstream.user}" ""\n')
    for path in folder.iterdir():
        path.chmod(0o644)
    return folder


def command(upstream: Upstream, folder: Path) -> list[str]:
    """The command line that runs the PgBouncer configured in `folder`."""
    path = binary()
    if path is None:
        raise SystemExit("pgbouncer is missing: apt-get install pgbouncer")
    user = run_as(upstream)
    return [path, *(["-u", user] if user else []), str(folder / "pgbouncer.ini")]


@contextmanager
def pgbouncer(
    server_url: str,
    *,
    pool_size: int = POOL_SIZE,
    unix_socket: bool = True,
    settings: Mapping[str, str] = SETTINGS,
) -> Iterator[Pooler]:
    """PgBouncer (transaction mode) in front of the server of `server_url`, until the block ends."""
    upstream = Upstream.of(server_url)
    port = free_port()
    folder = configure(
        upstream, port, pool_size=pool_size, unix_socket=unix_socket, settings=settings
    )
    log = (folder / "pgbouncer.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 (a fixed command line)
        command(upstream, folder), stdout=log, stderr=subprocess.STDOUT
    )
    try:
        _wait_for(port, process)
        yield Pooler(
            port=port,
            user=upstream.user,
            socket_dir=folder if unix_socket else None,
            pid=process.pid,
        )
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
