"""Settings, read once from the environment at start-up.

Every setting has one environment variable. A bad value raises `ConfigError`, which names the variable;
the CLI prints it as one line and exits, so a misconfigured deployment fails before it serves anything.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlsplit

from server.outbound import parse_allowed_host
from server.smtp import check_address, parse_smtp_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DEFAULT_MAIL_FROM = "Content API <noreply@localhost>"

DEFAULT_REQUEST_MAX_BYTES = 1024 * 1024
DEFAULT_MAX_UPLOAD_BYTES = 25 * 1024 * 1024
# Set by `serve` for its workers when it started the embedded database (see server/demo.py); not a
# setting for deployments, and never set when a database is configured.
DEMO_URL_VARIABLE = "DEMO_URL"

PoolMode = Literal["session", "transaction"]
POOL_MODES: tuple[PoolMode, ...] = ("session", "transaction")

# Who may introspect (`INTROSPECTION`): `server.graphql.introspection` enforces it.
IntrospectionAccess = Literal["everyone", "authenticated", "nobody"]
INTROSPECTION_ACCESS: tuple[IntrospectionAccess, ...] = ("everyone", "authenticated", "nobody")

PersistedQueryMode = Literal["automatic", "trusted", "off"]
PERSISTED_QUERY_MODES: tuple[PersistedQueryMode, ...] = ("automatic", "trusted", "off")

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
        return _postgres_url("DATABASE_URL", url)
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


def _postgres_url(name: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ConfigError(name, f"must start with postgresql:// (got scheme {parts.scheme!r})")
    if not parts.path.strip("/"):
        raise ConfigError(name, "must name a database (postgresql://host/dbname)")
    return url


@dataclass(frozen=True)
class Settings:
    """What the server needs to run. `database_url=None` means the embedded PostgreSQL."""

    database_url: str | None = None
    # What `database_url` reaches: PostgreSQL itself or a pooler in session mode (`session`), or a
    # transaction pooler such as PgBouncer in transaction mode (`transaction`), where nothing may
    # rely on a server session outliving a transaction (docs/scaling.md).
    database_pool_mode: PoolMode = "session"
    # PostgreSQL itself, for what needs a session of its own: migrations, Row-Level Security set-up
    # and the LISTEN connections. None: `database_url`.
    database_direct_url: str | None = None
    # Hot standbys of the primary for published reads (server/db/replicas.py, docs/scaling.md).
    database_replica_urls: tuple[str, ...] = ()
    # A replica missing WAL the primary wrote longer ago than this is skipped.
    replica_max_lag_ms: int = 2_000
    # How often each replica's replay position (and the primary's WAL position) is polled.
    replica_check_ms: int = 500
    pool_size: int = 10
    # Connections for the reads of callers this process has met (`Database.read_session`); None:
    # as many as `pool_size`, 0: none (those reads use the pool above).
    read_pool_size: int | None = None
    idle_timeout: float = 20.0
    # Seconds a request waits for a pooled connection before SERVICE_UNAVAILABLE.
    acquire_timeout: float = 5.0
    statement_timeout_ms: int = 10_000
    # A request's wait for a row or table lock, before TIMEOUT.
    lock_timeout_ms: int = 5_000
    enable_rls: bool = True
    enable_hierarchy: bool = True
    schema_dir: Path = PROJECT_ROOT / "schema"
    data_dir: Path = PROJECT_ROOT / ".data"
    max_page_size: int = 200
    version_retention: int = 50
    # The largest request body the GraphQL endpoint reads (JSON and form fields); 413 beyond it.
    request_max_bytes: int = DEFAULT_REQUEST_MAX_BYTES
    # The demo: seed an empty instance, and fill the dev key into GraphiQL (set only by `serve`).
    demo_url: str | None = None
    # None: no mail is sent (invitations then hand their token to the inviter).
    smtp_url: str | None = field(default=None, repr=False)  # may hold a password
    mail_from: str = DEFAULT_MAIL_FROM
    # Uploaded files: the folder (None: `<data_dir>/assets`, see `asset_folder`), the URL prefix
    # they are served under, and the largest upload accepted.
    asset_dir: Path | None = None
    asset_url_prefix: str = "/assets"
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    # Content queries as one SQL statement each (`server/query/`); false serves every operation
    # through the resolvers, which remain the reference the compiled path is tested against.
    compiled_reads: bool = True
    # The most reads of documents by id, sent by one caller at once, that run as one statement
    # (`server/query/batching.py`); 1: each alone.
    read_batch_max: int = 16
    # How long a batch of reads by id may wait for the running read of its kind to land, gathering
    # the reads that arrive meanwhile (milliseconds); 0: it departs at once.
    read_batch_wait_ms: int = 2
    # Who may send `__schema` / `__type` (server/graphql/introspection.py).
    introspection: IntrospectionAccess = "everyone"
    # Scheduled publishing (server/engine/scheduler.py): whether this process runs due schedules, and
    # how often it looks for them.
    scheduler_enabled: bool = True
    scheduler_poll_seconds: float = 10.0
    # Content delivery (docs/delivery.md). Persisted queries: `automatic` (Apollo's APQ),
    # `trusted` (only registered operations, instance admins aside) or `off`.
    persisted_queries: PersistedQueryMode = "automatic"
    # Cache-Control of published reads over GET by a published-only key.
    cache_max_age: int = 60
    cache_stale_while_revalidate: int = 300
    # Past this many document ids, a response's surrogate keys name the types it read instead.
    surrogate_keys_max: int = 64
    # Caches to send purge requests to (PURGE with a Surrogate-Key header) when content changes.
    purge_urls: tuple[str, ...] = ()
    # Who webhooks may call: `*` (any host whose addresses are all public), host names
    # (`hooks.example.com`, `*.example.com`), addresses and networks (`10.0.0.0/8`), which are
    # allowed even when private.
    webhook_allowed_hosts: tuple[str, ...] = ("*",)
    webhook_timeout: float = 10.0
    webhook_max_attempts: int = 10
    webhook_retry_base: float = 10.0
    webhook_retry_max: float = 3600.0
    # Run the outbox worker (webhook deliveries and purges) in this process.
    delivery_worker: bool = True
    # `serve` logs a line per request (uvicorn's access log); off where a proxy in front logs them.
    access_log: bool = True

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def direct_url(self) -> str | None:
        """The URL of PostgreSQL itself, not of a pooler in front of it."""
        return self.database_direct_url or self.database_url

    @property
    def asset_folder(self) -> Path:
        """Where uploaded files are stored."""
        return self.asset_dir if self.asset_dir is not None else self.data_dir / "assets"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        database_url = pg_connection_url(env)
        pool_mode = _pool_mode(env, "DATABASE_POOL_MODE", database_url)
        direct_url = _direct_url(env, "DATABASE_DIRECT_URL", database_url)
        if pool_mode == "transaction" and direct_url is None:
            # Through the pooler, a LISTEN would hear nothing and migrations would break.
            raise ConfigError(
                "DATABASE_DIRECT_URL",
                "is required with DATABASE_POOL_MODE=transaction: PostgreSQL itself, for"
                " migrations and LISTEN",
            )
        return cls(
            database_url=database_url,
            database_pool_mode=pool_mode,
            database_direct_url=direct_url,
            database_replica_urls=_replica_urls(env, "DATABASE_REPLICA_URLS", database_url),
            replica_max_lag_ms=_int(env, "REPLICA_MAX_LAG_MS", 2_000, minimum=0),
            replica_check_ms=_int(env, "REPLICA_CHECK_MS", 500, minimum=10, maximum=60_000),
            pool_size=_int(env, "DB_POOL_SIZE", 10, minimum=1, maximum=1000),
            read_pool_size=(
                _int(env, "DB_READ_POOL_SIZE", 0, minimum=0, maximum=1000)
                if env.get("DB_READ_POOL_SIZE", "").strip()
                else None
            ),
            idle_timeout=_float(env, "DB_IDLE_TIMEOUT", 20.0),
            acquire_timeout=_float(env, "DB_ACQUIRE_TIMEOUT", 5.0),
            statement_timeout_ms=_int(env, "STATEMENT_TIMEOUT_MS", 10_000, minimum=0),
            lock_timeout_ms=_int(env, "LOCK_TIMEOUT_MS", 5_000, minimum=0),
            enable_rls=_bool(env, "ENABLE_RLS", True),
            enable_hierarchy=_bool(env, "ENABLE_HIERARCHY", True),
            schema_dir=_directory(env, "SCHEMA_DIR", PROJECT_ROOT / "schema"),
            data_dir=Path(env.get("DATA_DIR") or PROJECT_ROOT / ".data"),
            max_page_size=_int(env, "MAX_PAGE_SIZE", 200, minimum=1, maximum=10_000),
            version_retention=_int(env, "VERSION_RETENTION", 50, minimum=0),
            request_max_bytes=_int(
                env, "REQUEST_MAX_BYTES", DEFAULT_REQUEST_MAX_BYTES, minimum=1024
            ),
            demo_url=_demo_url(env, DEMO_URL_VARIABLE),
            smtp_url=_smtp_url(env, "SMTP_URL"),
            mail_from=_mail_from(env, "MAIL_FROM"),
            asset_dir=_folder(env, "ASSET_DIR"),
            asset_url_prefix=_url_prefix(env, "ASSET_URL_PREFIX", "/assets"),
            # cms_assets.size is a 32-bit integer.
            max_upload_bytes=_int(
                env, "MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES, minimum=1, maximum=2**31 - 1
            ),
            compiled_reads=_bool(env, "COMPILED_READS", True),
            read_batch_max=_int(env, "READ_BATCH_MAX", 16, minimum=1, maximum=1000),
            read_batch_wait_ms=_int(env, "READ_BATCH_WAIT_MS", 2, minimum=0, maximum=1000),
            introspection=_introspection(env, "INTROSPECTION"),
            scheduler_enabled=_bool(env, "SCHEDULER_ENABLED", True),
            scheduler_poll_seconds=_positive(env, "SCHEDULER_POLL_SECONDS", 10.0),
            persisted_queries=_persisted_queries(env, "PERSISTED_QUERIES"),
            cache_max_age=_int(env, "CACHE_MAX_AGE", 60, minimum=0),
            cache_stale_while_revalidate=_int(env, "CACHE_STALE_WHILE_REVALIDATE", 300, minimum=0),
            surrogate_keys_max=_int(env, "SURROGATE_KEYS_MAX", 64, minimum=1, maximum=10_000),
            purge_urls=_urls(env, "PURGE_URLS"),
            webhook_allowed_hosts=_allowed_hosts(env, "WEBHOOK_ALLOWED_HOSTS"),
            webhook_timeout=_float(env, "WEBHOOK_TIMEOUT", 10.0),
            webhook_max_attempts=_int(env, "WEBHOOK_MAX_ATTEMPTS", 10, minimum=1, maximum=100),
            webhook_retry_base=_float(env, "WEBHOOK_RETRY_BASE", 10.0),
            webhook_retry_max=_float(env, "WEBHOOK_RETRY_MAX", 3600.0),
            delivery_worker=_bool(env, "DELIVERY_WORKER", True),
            access_log=_bool(env, "ACCESS_LOG", True),
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


def serve_address(env: Mapping[str, str]) -> tuple[str, int]:
    """`serve`'s defaults for `--host` and `--port`: `HOST` and `PORT`, else 127.0.0.1:8000."""
    host = env.get("HOST", "").strip() or "127.0.0.1"
    return host, _port("PORT", env.get("PORT", "").strip() or "8000")


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


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    value = _float(env, name, default)
    if value <= 0:
        raise ConfigError(name, f"must be a number of seconds above 0 (got {value:g})")
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


def _folder(env: Mapping[str, str], name: str) -> Path | None:
    """A folder that may not exist yet (it is created on first use), but is not something else."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    path = Path(raw)
    if path.exists() and not path.is_dir():
        raise ConfigError(name, f"is not a directory: {raw}")
    return path


def _url_prefix(env: Mapping[str, str], name: str, default: str) -> str:
    """A URL path (`/assets`) or an absolute http(s) URL, without a trailing slash."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    prefix = raw.rstrip("/")
    parts = urlsplit(prefix)
    if parts.scheme in ("http", "https") and parts.netloc:
        path = parts.path
    elif not parts.scheme and not parts.netloc and prefix.startswith("/"):
        path = prefix
    else:
        raise ConfigError(name, f"must be a path such as /assets or an http(s) URL (got {raw!r})")
    if not path or parts.query or parts.fragment or any(c in path for c in "{} \\"):
        raise ConfigError(name, f"must end in a path below the root, such as /assets (got {raw!r})")
    return prefix


def _directory(env: Mapping[str, str], name: str, default: Path) -> Path:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    path = Path(raw)
    if not path.is_dir():
        raise ConfigError(name, f"is not a directory: {raw}")
    return path


def _smtp_url(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        parse_smtp_url(raw)
    except ValueError as exc:
        raise ConfigError(name, str(exc)) from None
    return raw


def _mail_from(env: Mapping[str, str], name: str) -> str:
    raw = env.get(name, "").strip()
    if not raw:
        return DEFAULT_MAIL_FROM
    try:
        return check_address(raw)
    except ValueError as exc:
        raise ConfigError(name, str(exc)) from None


def _introspection(env: Mapping[str, str], name: str) -> IntrospectionAccess:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return "everyone"
    for access in INTROSPECTION_ACCESS:
        if raw == access:
            return access
    raise ConfigError(name, f"must be one of {', '.join(INTROSPECTION_ACCESS)} (got {raw!r})")


def _demo_url(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name, "").strip().rstrip("/")
    if not raw:
        return None
    if urlsplit(raw).scheme not in ("http", "https"):
        raise ConfigError(name, f"must be an http:// URL (got {raw!r})")
    return raw


def _pool_mode(env: Mapping[str, str], name: str, database_url: str | None) -> PoolMode:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return "session"
    for mode in POOL_MODES:
        if raw == mode:
            if mode == "transaction" and database_url is None:
                # The embedded server is reached directly; there is no pooler to speak of.
                raise ConfigError(name, "transaction needs DATABASE_URL (a pooler's address)")
            return mode
    raise ConfigError(name, f"must be one of {', '.join(POOL_MODES)} (got {raw!r})")


def _direct_url(env: Mapping[str, str], name: str, database_url: str | None) -> str | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    if database_url is None:
        raise ConfigError(name, "is set but DATABASE_URL is not")
    return _postgres_url(name, raw)


def _replica_urls(env: Mapping[str, str], name: str, database_url: str | None) -> tuple[str, ...]:
    urls = _list(env, name)
    if urls and database_url is None:
        # The embedded server has no replicas: they stream from a primary configured by URL.
        raise ConfigError(name, "is set but DATABASE_URL is not")
    return tuple(_postgres_url(name, url) for url in urls)


def _persisted_queries(env: Mapping[str, str], name: str) -> PersistedQueryMode:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return "automatic"
    for mode in PERSISTED_QUERY_MODES:
        if raw == mode:
            return mode
    raise ConfigError(name, f"must be one of {', '.join(PERSISTED_QUERY_MODES)} (got {raw!r})")


def _list(env: Mapping[str, str], name: str) -> list[str]:
    """A list separated by commas or spaces."""
    return [item for item in env.get(name, "").replace(",", " ").split() if item]


def _urls(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    urls = _list(env, name)
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(name, f"must be http(s) URLs (got {url!r})")
    return tuple(urls)


def _allowed_hosts(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    if not env.get(name, "").strip():
        return ("*",)
    entries = _list(env, name)
    for entry in entries:
        try:
            parse_allowed_host(entry)
        except ValueError as exc:
            raise ConfigError(name, str(exc)) from None
    return tuple(entries)
