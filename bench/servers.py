"""Server processes for a run: the API (`python -m server serve`) and the floor, on free ports.

Each is started in its own session and stopped by its process id. While wrk runs, a sampler thread
reads the memory of the worker processes and their CPU time (psutil).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import psutil

from server.config import PROJECT_ROOT

START_TIMEOUT = 120.0


@dataclass
class Server:
    """One running server: `python -m server serve` or `python -m bench.floor`."""

    name: str
    port: int
    workers: int
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_processes(self) -> list[psutil.Process]:
        """The processes that serve requests: the server itself, or uvicorn's worker children."""
        parent = psutil.Process(self.process.pid)
        if self.workers == 1:
            return [parent]
        children = parent.children()
        workers = [c for c in children if "resource_tracker" not in " ".join(c.cmdline())]
        return workers or [parent]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start(
    name: str,
    module: str,
    *,
    workers: int,
    env: dict[str, str],
    log_dir: Path,
    extra: tuple[str, ...] = (),
) -> Server:
    """Start `python -m <module> [serve] --host --port --workers` and wait until it answers."""
    port = free_port()
    command = [sys.executable, "-m", module]
    if module == "server":
        command.append("serve")
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), *extra]
    log = (log_dir / f"{name}.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and modules)
        command,
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Server(name=name, port=port, workers=workers, process=process, log=log)
    _wait_until_healthy(server)
    return server


def _wait_until_healthy(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited at start-up; see {server.log.name}")
        try:
            healthy = httpx.get(f"{server.base_url}/healthz", timeout=2).status_code == 200
            # Every worker process must exist, not only the first to answer.
            if healthy and len(server.worker_processes()) >= server.workers:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{server.name} did not become healthy; see {server.log.name}")


@dataclass
class Usage:
    """What the worker processes used while one wrk run lasted."""

    peak_rss_mb: float = 0.0
    cpu_seconds: float = 0.0


class Sampler:
    """Samples the workers' RSS every `interval` seconds and their CPU time at start and end."""

    def __init__(self, server: Server, interval: float = 0.2) -> None:
        self.processes = server.worker_processes()
        self.interval = interval
        self.usage = Usage()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._cpu_start = 0.0

    def _cpu(self) -> float:
        total = 0.0
        for process in self.processes:
            times = process.cpu_times()
            total += times.user + times.system
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            for process in self.processes:
                rss = process.memory_info().rss / 2**20
                self.usage.peak_rss_mb = max(self.usage.peak_rss_mb, rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> Usage:
        self._cpu_start = self._cpu()
        self._thread.start()
        return self.usage

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.usage.cpu_seconds = self._cpu() - self._cpu_start
