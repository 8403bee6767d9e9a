"""Real server processes for the tests that need one (the HTTP audit, the browser, `serve` itself).

`live_server` starts a command (by default uvicorn with the app factory) on a free port, waits for
`/healthz`, yields the base URL, and stops the process with SIGTERM, as a process manager would. Its
output is kept, and shown when the server does not come up.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from server.config import PROJECT_ROOT
from tests.command_line import run_main_async

# Generous: a cold start migrates a fresh database, or initialises an embedded one.
STARTUP_SECONDS = 60
COMMAND_SECONDS = 120

_DATABASE_VARIABLES = (
    "DATABASE_URL",
    "DATABASE_DIRECT_URL",
    "DATABASE_POOL_MODE",
    "PG_HOST",
    "PG_PORT",
    "PG_USER",
    "PG_PASSWORD",
    "PG_DATABASE",
    "DEMO_URL",
)


def require_tool(available: bool, what: str, how: str) -> None:
    """Skip locally when an optional tool is missing; in CI (`CI` set) the test fails instead."""
    if available:
        return
    message = f"{what} is not available; {how}"
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(message)
    pytest.skip(message)


def require_node_packages(directory: Path, package: str) -> str:
    """The `node` binary, once `directory` (a folder under tests/) has `package` installed."""
    node = shutil.which("node")
    require_tool(node is not None, "node", "install Node.js 18+ with npm")
    folder = directory.relative_to(PROJECT_ROOT)
    require_tool(
        (directory / "node_modules" / package).is_dir(),
        f"{folder}/node_modules",
        f"run `npm ci --prefix {folder}` (scripts/install does when node is present)",
    )
    assert node is not None
    return node


async def owner_key(env: Mapping[str, str], slug: str) -> str:
    """A new organization `slug` and an owner API key for it, made with the CLI; the secret."""
    await cli(env, "org", "create", "--name", slug.title(), "--slug", slug)
    return await cli(env, "apikey", "create", "--org", slug, "--role", "owner")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(data_dir: Path, **variables: str) -> dict[str, str]:
    """This process's environment without any database settings, plus `variables`."""
    env = {k: v for k, v in os.environ.items() if k not in _DATABASE_VARIABLES}
    env.update(DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1", **variables)
    return env


@dataclass
class Output:
    """What a child process wrote, collected as it runs."""

    lines: list[str] = field(default_factory=list)

    async def collect(self, stream: asyncio.StreamReader) -> None:
        async for line in stream:
            self.lines.append(line.decode(errors="replace").rstrip())

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


async def run(env: Mapping[str, str], *args: str) -> tuple[int, str]:
    """Run a command to completion; its exit code and output (stdout and stderr)."""
    process = await asyncio.create_subprocess_exec(
        *args,
        env=dict(env),
        cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(COMMAND_SECONDS):
        out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace")


async def cli(env: Mapping[str, str], *args: str) -> str:
    """`python -m server ARGS`, run in this process (tests/command_line.py); the last line of its
    output (where the CLI prints ids and secrets)."""
    result = await run_main_async(env, *args)
    assert result.code == 0, result.stderr
    return result.last


@dataclass
class LiveServer:
    url: str
    output: Output
    process: asyncio.subprocess.Process


@asynccontextmanager
async def live_server(
    env: Mapping[str, str], command: Sequence[str] | None = None
) -> AsyncIterator[LiveServer]:
    """A server process on a free port; `command` gets `--host 127.0.0.1 --port N` appended."""
    port = free_port()
    argv = list(
        command or (sys.executable, "-m", "uvicorn", "--factory", "server.app:app_from_env")
    )
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    process = await asyncio.create_subprocess_exec(
        *argv,
        env=dict(env),
        cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    output = Output()
    reader = asyncio.create_task(output.collect(process.stdout))
    url = f"http://127.0.0.1:{port}"
    try:
        await _wait_until_healthy(url, process, output)
        yield LiveServer(url=url, output=output, process=process)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()
        with suppress(TimeoutError):
            await asyncio.wait_for(reader, 5)


async def _wait_until_healthy(
    url: str, process: asyncio.subprocess.Process, output: Output
) -> None:
    deadline = asyncio.get_running_loop().time() + STARTUP_SECONDS
    async with httpx.AsyncClient(timeout=2) as client:
        while asyncio.get_running_loop().time() < deadline:
            if process.returncode is not None:
                break
            with suppress(httpx.HTTPError):
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    await asyncio.sleep(0.2)  # the last lines of output
    raise AssertionError(f"the server at {url} did not come up:\n{output.text}")
