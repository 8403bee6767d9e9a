"""Settings: both URL forms, special characters, and one clear line for every bad value."""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import unquote, urlsplit

import pytest
from sqlalchemy.engine import make_url

from server.config import ConfigError, Settings, pg_connection_url
from server.db.migrate import sqlalchemy_url
from tests.command_line import run_main


def test_database_url_wins() -> None:
    env = {
        "DATABASE_URL": "postgresql://a@h/db",
        "PG_HOST": "other",
        "PG_USER": "u",
        "PG_DATABASE": "x",
    }
    assert pg_connection_url(env) == "postgresql://a@h/db"


def test_no_configuration_means_embedded() -> None:
    assert pg_connection_url({}) is None
    assert Settings.from_env({}).embedded


@pytest.mark.parametrize(
    "password", ["plain", "p@ss:w/rd", "100%sure", "sp ace", "q?#&=+", "ünï€ødé", "'\"\\"]
)
def test_split_form_round_trips_special_characters(password: str) -> None:
    url = pg_connection_url(
        {
            "PG_HOST": "db.example",
            "PG_PORT": "6543",
            "PG_USER": "us@r",
            "PG_PASSWORD": password,
            "PG_DATABASE": "my db",
        }
    )
    assert url is not None
    parts = urlsplit(url)
    assert (parts.hostname, parts.port) == ("db.example", 6543)
    assert unquote(parts.username or "") == "us@r"
    assert unquote(parts.password or "") == password
    assert unquote(parts.path[1:]) == "my db"
    # The same values survive SQLAlchemy's parser (used by the migrations).
    parsed = make_url(sqlalchemy_url(url))
    assert (parsed.username, parsed.password, parsed.database) == ("us@r", password, "my db")


def test_ipv6_host_is_bracketed() -> None:
    url = pg_connection_url({"PG_HOST": "::1", "PG_USER": "u", "PG_DATABASE": "d"})
    assert url == "postgresql://u@[::1]:5432/d"


def test_defaults() -> None:
    settings = Settings.from_env({"DATABASE_URL": "postgresql://u@h/d"})
    assert (settings.pool_size, settings.idle_timeout) == (10, 20.0)
    assert settings.read_pool_size is None  # as many as DB_POOL_SIZE
    assert (settings.enable_rls, settings.enable_hierarchy) == (True, True)
    assert settings.introspection == "everyone"
    assert (settings.acquire_timeout, settings.lock_timeout_ms) == (5.0, 5000)
    assert (settings.scheduler_enabled, settings.scheduler_poll_seconds) == (True, 10.0)
    assert settings.access_log


@pytest.mark.parametrize(("value", "expected"), [("0", 0), ("3", 3), (" ", None)])
def test_read_pool_size(value: str, expected: int | None) -> None:
    settings = Settings.from_env({"DATABASE_URL": "postgresql://u@h/d", "DB_READ_POOL_SIZE": value})
    assert settings.read_pool_size == expected


def test_pool_mode_and_direct_url() -> None:
    settings = Settings.from_env({"DATABASE_URL": "postgresql://u@h/d"})
    assert (settings.database_pool_mode, settings.direct_url) == ("session", "postgresql://u@h/d")
    pooled = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://u@bouncer:6432/d",
            "DATABASE_POOL_MODE": "Transaction",
            "DATABASE_DIRECT_URL": "postgresql://u@primary:5432/d",
        }
    )
    assert pooled.database_pool_mode == "transaction"
    assert pooled.direct_url == "postgresql://u@primary:5432/d"


def test_replicas() -> None:
    settings = Settings.from_env({"DATABASE_URL": "postgresql://u@h/d"})
    assert settings.database_replica_urls == ()
    assert (settings.replica_max_lag_ms, settings.replica_check_ms) == (2000, 500)
    replicated = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://u@primary/d",
            "DATABASE_REPLICA_URLS": "postgresql://u@r1/d, postgresql://u@r2:5433/d",
            "REPLICA_MAX_LAG_MS": "250",
            "REPLICA_CHECK_MS": "100",
        }
    )
    assert replicated.database_replica_urls == ("postgresql://u@r1/d", "postgresql://u@r2:5433/d")
    assert (replicated.replica_max_lag_ms, replicated.replica_check_ms) == (250, 100)


def test_scheduler_settings() -> None:
    settings = Settings.from_env({"SCHEDULER_ENABLED": "false", "SCHEDULER_POLL_SECONDS": "0.5"})
    assert (settings.scheduler_enabled, settings.scheduler_poll_seconds) == (False, 0.5)


@pytest.mark.parametrize("access", ["everyone", "authenticated", "nobody", "Nobody"])
def test_introspection_access(access: str) -> None:
    assert Settings.from_env({"INTROSPECTION": access}).introspection == access.lower()


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"DATABASE_URL": "mysql://u@h/d"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://u@h"}, "DATABASE_URL"),
        ({"PG_HOST": "h", "PG_USER": "u"}, "PG_DATABASE"),
        ({"PG_HOST": "h", "PG_USER": "u", "PG_DATABASE": "d", "PG_PORT": "abc"}, "PG_PORT"),
        ({"PG_HOST": "h", "PG_USER": "u", "PG_DATABASE": "d", "PG_PORT": "70000"}, "PG_PORT"),
        ({"DB_POOL_SIZE": "0"}, "DB_POOL_SIZE"),
        ({"DB_POOL_SIZE": "ten"}, "DB_POOL_SIZE"),
        ({"DB_READ_POOL_SIZE": "-1"}, "DB_READ_POOL_SIZE"),
        ({"DB_READ_POOL_SIZE": "many"}, "DB_READ_POOL_SIZE"),
        ({"DB_IDLE_TIMEOUT": "-1"}, "DB_IDLE_TIMEOUT"),
        ({"ENABLE_RLS": "maybe"}, "ENABLE_RLS"),
        ({"ENABLE_HIERARCHY": "2"}, "ENABLE_HIERARCHY"),
        ({"SCHEMA_DIR": "/nonexistent/schema"}, "SCHEMA_DIR"),
        ({"MAX_PAGE_SIZE": "0"}, "MAX_PAGE_SIZE"),
        ({"INTROSPECTION": "admins"}, "INTROSPECTION"),
        ({"DB_ACQUIRE_TIMEOUT": "soon"}, "DB_ACQUIRE_TIMEOUT"),
        ({"LOCK_TIMEOUT_MS": "-1"}, "LOCK_TIMEOUT_MS"),
        ({"SCHEDULER_ENABLED": "sometimes"}, "SCHEDULER_ENABLED"),
        ({"ACCESS_LOG": "quiet"}, "ACCESS_LOG"),
        ({"READ_BATCH_MAX": "0"}, "READ_BATCH_MAX"),
        ({"READ_BATCH_MAX": "lots"}, "READ_BATCH_MAX"),
        ({"READ_BATCH_WAIT_MS": "-1"}, "READ_BATCH_WAIT_MS"),
        ({"READ_BATCH_WAIT_MS": "soon"}, "READ_BATCH_WAIT_MS"),
        ({"SCHEDULER_POLL_SECONDS": "0"}, "SCHEDULER_POLL_SECONDS"),
        ({"SCHEDULER_POLL_SECONDS": "often"}, "SCHEDULER_POLL_SECONDS"),
        ({"DATABASE_URL": "postgresql://u@h/d", "DATABASE_POOL_MODE": "x"}, "DATABASE_POOL_MODE"),
        (
            {"DATABASE_URL": "postgresql://u@h/d", "DATABASE_POOL_MODE": "transaction"},
            "DATABASE_DIRECT_URL",
        ),
        (
            {"DATABASE_URL": "postgresql://u@h/d", "DATABASE_REPLICA_URLS": "http://r/d"},
            "DATABASE_REPLICA_URLS",
        ),
        # Replicas stream from a primary configured by URL, never from the embedded server.
        ({"DATABASE_REPLICA_URLS": "postgresql://u@r/d"}, "DATABASE_REPLICA_URLS"),
        ({"DATABASE_URL": "postgresql://u@h/d", "REPLICA_MAX_LAG_MS": "-5"}, "REPLICA_MAX_LAG_MS"),
        ({"DATABASE_URL": "postgresql://u@h/d", "REPLICA_CHECK_MS": "1"}, "REPLICA_CHECK_MS"),
        # The embedded server has no pooler in front of it.
        ({"DATABASE_POOL_MODE": "transaction"}, "DATABASE_POOL_MODE"),
        ({"DATABASE_DIRECT_URL": "postgresql://u@h/d"}, "DATABASE_DIRECT_URL"),
        (
            {"DATABASE_URL": "postgresql://u@h/d", "DATABASE_DIRECT_URL": "u@h/d"},
            "DATABASE_DIRECT_URL",
        ),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable}: ")


# A bad setting on the command line: the command, its environment, the variable named.
BAD_COMMAND_SETTINGS = [
    (
        "db status",
        {"PG_HOST": "h", "PG_USER": "u", "PG_DATABASE": "d", "PG_PORT": "x"},
        "PG_PORT",
    ),
    (
        "db status",
        {"DATABASE_URL": "postgresql://u@h/d", "ENABLE_RLS": "perhaps"},
        "ENABLE_RLS",
    ),
    ("serve", {"PORT": "eighty"}, "PORT"),
    ("serve", {"PORT": "0"}, "PORT"),
    ("serve", {"ACCESS_LOG": "quiet"}, "ACCESS_LOG"),
]


def assert_one_error_line(code: int, stderr: str, variable: str) -> None:
    assert code == 2
    assert stderr.strip().splitlines() == [stderr.strip()]
    assert stderr.startswith(f"error: {variable}: ")
    assert "Traceback" not in stderr


@pytest.mark.parametrize(("command", "env", "variable"), BAD_COMMAND_SETTINGS)
def test_cli_prints_one_line_and_no_traceback(
    command: str, env: dict[str, str], variable: str
) -> None:
    result = run_main({"PATH": "/usr/bin:/bin", **env}, *command.split())
    assert_one_error_line(result.code, result.stderr, variable)


@pytest.mark.parametrize(("command", "env", "variable"), BAD_COMMAND_SETTINGS[:1])
def test_the_console_command_prints_one_line_and_no_traceback(
    command: str, env: dict[str, str], variable: str
) -> None:
    # The same through a child process: its exit status, and all that reaches its stderr.
    result = subprocess.run(
        [sys.executable, "-m", "server", *command.split()],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert_one_error_line(result.returncode, result.stderr, variable)
