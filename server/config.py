"""Settings, read once from the environment at start-up.

Every setting has one environment variable. A bad value raises `ConfigError`, which names the variable;
the CLI prints it as one line and exits, so a misconfigured deployment fails before it serves anything.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(Exception):
    """A setting is missing or malformed; `variable` names the environment variable."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


def pg_connection_url(env: Mapping[str, str]) -> str | None:
    """The PostgreSQL URL from `DATABASE_URL` or the split `PG_*` variables.

    `DATABASE_URL` wins when both are set. The split form percent-encodes the user and password, so
    passwords with `@`, `:`, `/` or `%` round-trip. Returns None when neither form is given (the caller
    then starts the embedded server).
    """
    url = env.get("DATABASE_URL", "").strip()
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("postgres", "postgresql"):
            raise ConfigError(
                "DATABASE_URL", f"must start with postgresql:// (got scheme {parts.scheme!r})"
            )
        if not parts.path.strip("/"):
            raise ConfigError("DATABASE_URL", "must name a database (postgresql://host/dbname)")
        return url
    split = {name: env.get(name, "") for name in _PG_VARIABLES}
    if not any(split.values()):
        return None
    for name in ("PG_HOST", "PG_USER", "PG_DATABASE"):
        if not split[name]:
            raise ConfigError(name, "is required when any PG_* variable is set")
    port = _port("PG_PORT", split["PG_PORT"] or "5432")
    user = quote(split["PG_USER"], safe="")
    password = split["PG_PASSWORD"]
    credentials = f"{user}:{quote(password, safe='')}" if password else user
    host = split["PG_HOST"]
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    return f"postgresql://{credentials}@{host}:{port}/{quote(split['PG_DATABASE'], safe='')}"


_PG_VARIABLES = ("PG_HOST", "PG_PORT", "PG_USER", "PG_PASSWORD", "PG_DATABASE")


@dataclass(frozen=True)
class Settings:
    """What the server needs to run. `database_url=None` means the embedded PostgreSQL."""

    database_url: str | None = None
    pool_size: int = 10
    idle_timeout: float = 20.0
    statement_timeout_ms: int = 10_000
    enable_rls: bool = True
    enable_hierarchy: bool = True
    schema_dir: Path = PROJECT_ROOT / "schema"
    data_dir: Path = PROJECT_ROOT / ".data"
    max_page_size: int = 200
    version_retention: int = 50

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            database_url=pg_connection_url(env),
            pool_size=_int(env, "DB_POOL_SIZE", 10, minimum=1, maximum=1000),
            idle_timeout=_float(env, "DB_IDLE_TIMEOUT", 20.0),
            statement_timeout_ms=_int(env, "STATEMENT_TIMEOUT_MS", 10_000, minimum=0),
            enable_rls=_bool(env, "ENABLE_RLS", True),
            enable_hierarchy=_bool(env, "ENABLE_HIERARCHY", True),
            schema_dir=_directory(env, "SCHEMA_DIR", PROJECT_ROOT / "schema"),
            data_dir=Path(env.get("DATA_DIR") or PROJECT_ROOT / ".data"),
            max_page_size=_int(env, "MAX_PAGE_SIZE", 200, minimum=1, maximum=10_000),
            version_retention=_int(env, "VERSION_RETENTION", 50, minimum=0),
        )


def _int(
    env: Mapping[str, str], name: str, default: int, *, minimum: int = 0, maximum: int | None = None
) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"must be an integer (got {raw!r})") from None
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigError(name, f"must be in {bounds} (got {value})")
    return value


def _port(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"must be a port number (got {raw!r})") from None
    if not 1 <= value <= 65535:
        raise ConfigError(name, f"must be a port number 1..65535 (got {value})")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(name, f"must be a number of seconds (got {raw!r})") from None
    if value < 0:
        raise ConfigError(name, f"must not be negative (got {raw})")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigError(name, f"must be true or false (got {raw!r})")


def _directory(env: Mapping[str, str], name: str, default: Path) -> Path:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    path = Path(raw)
    if not path.is_dir():
        raise ConfigError(name, f"is not a directory: {raw}")
    return path
