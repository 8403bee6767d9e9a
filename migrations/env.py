"""Alembic environment (async). The URL comes from the caller or from DATABASE_URL / PG_*."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from server.config import Settings
from server.db.migrate import sqlalchemy_url
from server.db.tables import metadata

config = context.config


def _url() -> str:
    url = config.attributes.get("url") or Settings.from_env().database_url
    if not url:
        raise SystemExit("DATABASE_URL: is required to run migrations (or use `content-api db`)")
    return sqlalchemy_url(url)


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    # Tables that are not ours (a shared database) are none of the migrations' business.
    return not (type_ == "table" and reflected and compare_to is None)


def _configure(connection: Connection | None = None, **kwargs: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=include_object,
        compare_type=True,
        compare_server_default=True,
        **kwargs,
    )


def run_offline() -> None:
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        # Several server processes may start at once; one migrates, the others wait and find it done.
        connection.exec_driver_sql("select pg_advisory_xact_lock(hashtext('cms:migrations'))")
        context.run_migrations()


async def run_online() -> None:
    engine = create_async_engine(_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_sync)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    asyncio.run(run_online())
