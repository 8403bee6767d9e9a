"""What a result was measured on: the machine, PostgreSQL, the commit; and PostgreSQL's CPU time."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from server.config import PROJECT_ROOT


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(*args: str) -> str:
    try:
        return subprocess.run(  # noqa: S603 (a fixed command)
            ["git", *args],  # noqa: S607 (git from PATH)
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def commit() -> str:
    revision = _git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return f"{revision} (with uncommitted changes)" if dirty else revision


async def describe(url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        version = await conn.fetchval("select version()")
        settings = {
            row["name"]: row["setting"] + (row["unit"] or "")
            for row in await conn.fetch(
                "select name, setting, unit from pg_settings where name = any($1::text[])",
                ["shared_buffers", "work_mem", "max_connections", "jit"],
            )
        }
    finally:
        await conn.close()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgresql": str(version).split(" on ")[0],
        "postgresql_settings": settings,
        "commit": commit(),
    }


class PostgresCpu:
    """CPU time of the PostgreSQL server's processes, when it runs on this machine and is readable.

    Backends that exit between two readings take their time with them, so this slightly
    undercounts; the pools keep their connections open during a run.
    """

    def __init__(self, postmaster: psutil.Process | None) -> None:
        self.postmaster = postmaster

    @classmethod
    async def find(cls, url: str) -> PostgresCpu:
        conn = await asyncpg.connect(url)
        try:
            directory = await conn.fetchval("select current_setting('data_directory', true)")
        finally:
            await conn.close()
        try:
            pid = int((Path(directory) / "postmaster.pid").read_text().split()[0])
            return cls(psutil.Process(pid))
        except (OSError, ValueError, TypeError, IndexError, psutil.Error):
            return cls(None)

    def read(self) -> dict[int, float] | None:
        if self.postmaster is None:
            return None
        times: dict[int, float] = {}
        for process in [self.postmaster, *self.postmaster.children()]:
            try:
                cpu = process.cpu_times()
            except psutil.Error:
                continue
            times[process.pid] = cpu.user + cpu.system
        return times

    @staticmethod
    def used(before: dict[int, float] | None, after: dict[int, float] | None) -> float | None:
        if before is None or after is None:
            return None
        return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())
