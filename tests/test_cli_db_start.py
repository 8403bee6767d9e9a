"""`db start` runs Docker Compose v2, and says what to install when it is missing.

Stand-ins for `docker` and `docker-compose` on the PATH record how they were called: the real ones
would need a Docker engine. The command runs in this process (tests/command_line.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.command_line import Result, run_main
from tests.live_server import server_env

# The docker CLI without the compose plugin: `compose` is not a command, so flags after it are
# parsed as docker's own.
NO_PLUGIN = """\
if [ "$1" = compose ]; then
  case " $* " in
    *" -d "*) echo "unknown shorthand flag: 'd' in -d" >&2; exit 125 ;;
    *) echo "docker: 'compose' is not a docker command." >&2; exit 1 ;;
  esac
fi
"""
WITH_PLUGIN = 'echo "$0 $*" >> "$CALLS"\n'


def db_start(tmp_path: Path, tools: dict[str, str]) -> tuple[Result, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, script in tools.items():
        tool = bin_dir / name
        tool.write_text(f"#!/bin/sh\n{script}")
        tool.chmod(0o755)
    calls = tmp_path / "calls"
    calls.touch()
    env = server_env(tmp_path, PATH=str(bin_dir), CALLS=str(calls))
    result = run_main(env, "db", "start")
    return result, calls.read_text().replace(str(bin_dir) + "/", "")


@pytest.mark.parametrize(
    ("tools", "message"),
    [
        pytest.param(
            {},
            "error: docker: not installed; `db start` needs Docker with Compose v2",
            id="no docker",
        ),
        pytest.param(
            {"docker": NO_PLUGIN},
            "error: docker compose: the Compose plugin is not installed; install Docker Compose v2"
            " (the package docker-compose-plugin from Docker's apt repository, or Docker Desktop)",
            id="no compose plugin",
        ),
    ],
)
def test_db_start_says_what_to_install(tmp_path: Path, tools: dict[str, str], message: str) -> None:
    result, _ = db_start(tmp_path, tools)
    assert result.code == 2
    assert result.stderr.splitlines() == [message]


@pytest.mark.parametrize(
    ("tools", "called"),
    [
        pytest.param(
            {"docker": WITH_PLUGIN},
            "docker compose version\ndocker compose up -d postgres mailpit\n",
            id="plugin",
        ),
        pytest.param(
            {"docker": NO_PLUGIN, "docker-compose": WITH_PLUGIN},
            "docker-compose up -d postgres mailpit\n",
            id="standalone",
        ),
    ],
)
def test_db_start_runs_compose_up(tmp_path: Path, tools: dict[str, str], called: str) -> None:
    result, calls = db_start(tmp_path, tools)
    assert result.code == 0, result.stderr
    assert calls == called
