"""Schema migrations: the seed's workflow (`db push`, `db generate`, `db migrate`) on alembic.

- `migrate`  applies pending revisions (production, and every server start-up).
- `generate` autogenerates a revision file from `server/db/tables.py` for review.
- `push`     applies the difference between the tables and the database directly, without a file
             (development only: like drizzle's push, it will drop a column without asking).
- `status`   prints the current and the head revision, and whether the tables drifted.

Alembic's own environment is async (`migrations/env.py`); these functions are synchronous and run in
a worker thread when called from the server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.autogenerate import produce_migrations
from alembic.config import Config
from alembic.operations import Operations
from alembic.operations.ops import MigrateOperation, ModifyTableOps
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from server.config import PROJECT_ROOT
from server.db.tables import metadata

ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"

T = TypeVar("T")


def sqlalchemy_url(url: str) -> str:
    """A libpq-style URL as SQLAlchemy's asyncpg dialect wants it (passwords stay encoded)."""
    parsed = make_url(url).set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def alembic_config(url: str) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def check(url: str) -> None:
    """Raise `alembic.util.CommandError` when the tables and the database differ."""
    command.check(alembic_config(url))


def generate(url: str, message: str) -> Path:
    script = command.revision(alembic_config(url), message=message, autogenerate=True)
    first = script[0] if isinstance(script, list) else script
    if first is None:
        raise RuntimeError("alembic wrote no revision")
    return Path(first.path)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


def current_revision(url: str) -> str | None:
    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    return _run(url, read)


def pending_changes(url: str) -> list[str]:
    """The differences autogenerate sees between `server/db/tables.py` and the database."""

    def diff(connection: Connection) -> list[str]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return [_describe(op) for op in _upgrade_ops(context)]

    return _run(url, diff)


def push(url: str) -> list[str]:
    """Apply pending revisions, then the remaining difference between the tables and the database
    directly, without a revision file. Returns a description of each direct change."""
    upgrade(url)

    def apply(connection: Connection) -> list[str]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        operations = Operations(context)
        done = []
        for op in _upgrade_ops(context):
            operations.invoke(op)
            done.append(_describe(op))
        return done

    return _run(url, apply)


def _upgrade_ops(context: MigrationContext) -> list[MigrateOperation]:
    ops = produce_migrations(context, metadata).upgrade_ops
    return _flatten(list(ops.ops)) if ops is not None else []


def _describe(op: MigrateOperation) -> str:
    target = getattr(op, "table_name", None)
    column = getattr(op, "column_name", None) or getattr(getattr(op, "column", None), "name", None)
    where = ".".join(part for part in (target, column or getattr(op, "index_name", None)) if part)
    return f"{type(op).__name__.removesuffix('Op')} {where}".strip()


def _flatten(ops: list[MigrateOperation]) -> list[MigrateOperation]:
    flat: list[MigrateOperation] = []
    for op in ops:
        if isinstance(op, ModifyTableOps):
            flat.extend(_flatten(list(op.ops)))
        else:
            flat.append(op)
    return flat


def _run(url: str, fn: Callable[[Connection], T]) -> T:
    async def main() -> T:
        engine = create_async_engine(sqlalchemy_url(url))
        try:
            async with engine.begin() as connection:
                return await connection.run_sync(fn)
        finally:
            await engine.dispose()

    return asyncio.run(main())
