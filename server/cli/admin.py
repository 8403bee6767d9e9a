"""Bootstrap commands: organizations, API keys and users, straight against the database.

    org create --name NAME --slug SLUG [--parent PARENT_SLUG]
    apikey create --org SLUG (--role ROLE | --capabilities a,b,c) [--name NAME] [--instance-admin]
                  [--published-only] [--expires-in-days N]
    apikey revoke --org SLUG --id ID
    user create --email E --name N [--password P] [--org SLUG --role ROLE] [--instance-role ROLE]
    schema print [-o FILE] [--database]

Each command migrates the database first and runs in one transaction. The value a script wants (an
id, or an API key's secret) is printed alone on the last line of stdout, so `tail -n 1` takes it.
`schema print` alone reads `SCHEMA_DIR` and needs no database (a frontend's CI generates its types
from it); with `--database` it prints what the server serves, run-time registrations included.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from server.access.organizations import Organization
from server.access.profiles import INSTANCE_ROLES
from server.config import Settings
from server.db.pool import Tx
from server.delivery import persisted_queries
from server.engine.access import AccessAdapter
from server.engine.adapter import Access, DatabaseAdapter, Transactions
from server.engine.postgres import PostgresAdapter
from server.errors import InvalidInputError, NotFoundError
from server.model.json_form import load_schema_dir
from server.model.types import Registry

PASSWORD_ENV = "CMS_PASSWORD"  # noqa: S105 (the name of an environment variable)
# Recorded as `created_by` for what the command line creates.
CLI_ACTOR = "cli"

Handler = Callable[[DatabaseAdapter, argparse.Namespace], Awaitable[None]]


def register(commands: Any, *, database_url: Callable[[], str]) -> None:
    """Add the `org`, `apikey` and `user` commands to the top-level subparsers.

    Args:
        commands: the object `ArgumentParser.add_subparsers()` returned.
        database_url: resolves the database to use (starting the embedded one if need be).
    """

    def command(parser: argparse.ArgumentParser, handler: Handler) -> None:
        parser.set_defaults(command=partial(_run, database_url, handler))

    org = commands.add_parser("org", help="organizations").add_subparsers(
        required=True, metavar="action"
    )
    create = org.add_parser("create", help="create an organization; prints its id")
    create.add_argument("--name", required=True)
    create.add_argument("--slug", required=True)
    create.add_argument("--parent", metavar="PARENT_SLUG", help="make it a child of this one")
    command(create, _org_create)

    apikey = commands.add_parser("apikey", help="API keys").add_subparsers(
        required=True, metavar="action"
    )
    create = apikey.add_parser("create", help="create a key; prints the secret on the last line")
    create.add_argument("--org", required=True, metavar="SLUG")
    grant = create.add_mutually_exclusive_group(required=True)
    grant.add_argument("--role", help="one of the organization's roles")
    grant.add_argument("--capabilities", metavar="A,B,C", help="an explicit capability list")
    create.add_argument("--name", default="cli", help="a label for people (default: cli)")
    create.add_argument(
        "--instance-admin", action="store_true", help="may also manage schema types"
    )
    create.add_argument(
        "--published-only", action="store_true", help="restricted to published content"
    )
    create.add_argument("--expires-in-days", type=int, metavar="N")
    command(create, _apikey_create)
    revoke = apikey.add_parser("revoke", help="revoke a key")
    revoke.add_argument("--org", required=True, metavar="SLUG")
    revoke.add_argument("--id", required=True, help="the key's id")
    command(revoke, _apikey_revoke)

    user = commands.add_parser("user", help="users").add_subparsers(required=True, metavar="action")
    create = user.add_parser("create", help="create a user; prints its id")
    create.add_argument("--email", required=True)
    create.add_argument("--name", required=True)
    create.add_argument(
        "--password",
        help=f"visible to other local users in the process list; prefer ${PASSWORD_ENV}"
        " or the prompt",
    )
    create.add_argument("--org", metavar="SLUG", help="make the user a member (with --role)")
    create.add_argument("--role", help="the member's role in --org")
    # No default: an instance role reaches beyond any one organization, so it is given only when
    # asked for (a user without one is only what their memberships make them).
    create.add_argument(
        "--instance-role", help=f"one of {', '.join(INSTANCE_ROLES)} (default: none)"
    )
    command(create, _user_create)

    persisted = commands.add_parser(
        "persisted-queries", help="operations registered ahead of time (trusted documents)"
    ).add_subparsers(required=True, metavar="action")
    register_queries = persisted.add_parser(
        "register",
        help="register a folder of .graphql files or a manifest (Apollo's, or hash -> document);"
        " prints each hash",
    )
    register_queries.add_argument("path", type=Path)
    command(register_queries, _persisted_register)

    schema = commands.add_parser("schema", help="the GraphQL schema").add_subparsers(
        required=True, metavar="action"
    )
    printer = schema.add_parser("print", help="write the current SDL (for client code generators)")
    printer.add_argument("--output", "-o", help="a file to write instead of standard output")
    printer.add_argument(
        "--database",
        action="store_true",
        help="the types the database holds (SCHEMA_DIR synced in first), not SCHEMA_DIR alone",
    )
    printer.set_defaults(command=partial(_schema_print, database_url))


async def _persisted_register(adapter: Transactions, args: argparse.Namespace) -> None:
    documents = persisted_queries.read_documents(args.path)
    async with adapter.instance_transaction() as tx:
        hashes = await persisted_queries.register(tx, documents, created_by=CLI_ACTOR)
    for digest in hashes:
        print(digest)


def _run(database_url: Callable[[], str], handler: Handler, args: argparse.Namespace) -> int:
    # Resolved outside the event loop: starting the embedded database runs its own loop.
    url = database_url()

    async def main() -> None:
        # connect() migrates the database first, as `db migrate` would.
        adapter = PostgresAdapter(url, pool_size=1)
        await adapter.connect()
        try:
            await handler(adapter, args)
        finally:
            await adapter.disconnect()

    asyncio.run(main())
    return 0


async def _organization(adapter: Access, tx: Tx, slug: str) -> Organization:
    found = await adapter.find_organization_by_slug(tx, slug=slug)
    if found is None:
        raise NotFoundError(f"no organization with the slug {slug!r}")
    return found


async def _org_create(adapter: AccessAdapter, args: argparse.Namespace) -> None:
    async with adapter.system_context() as tx:
        parent = await _organization(adapter, tx, args.parent) if args.parent else None
        org = await adapter.create_organization(
            tx,
            name=args.name,
            slug=args.slug,
            created_by=CLI_ACTOR,
            parent_organization_id=parent.id if parent else None,
        )
    under = f" under {parent.slug}" if parent else ""
    print(f"created organization {org.name!r} ({org.slug}){under}")
    print(org.id)


async def _apikey_create(adapter: AccessAdapter, args: argparse.Namespace) -> None:
    capabilities = None
    if args.capabilities is not None:
        capabilities = [c.strip() for c in args.capabilities.split(",") if c.strip()]
    expires_at = None
    if args.expires_in_days is not None:
        if args.expires_in_days < 1:
            raise InvalidInputError("--expires-in-days must be at least 1")
        expires_at = datetime.now(UTC) + timedelta(days=args.expires_in_days)
    async with adapter.system_context() as tx:
        org = await _organization(adapter, tx, args.org)
        key, secret = await adapter.create_api_key(
            tx,
            organization_id=org.id,
            name=args.name,
            role=args.role,
            capabilities=capabilities,
            published_only=args.published_only,
            instance_admin=args.instance_admin,
            expires_at=expires_at,
            created_by=CLI_ACTOR,
        )
    traits = [f"role {key.role}" if key.role else f"{len(key.granted)} capabilities"]
    if key.published_only:
        traits.append("published content only")
    if key.instance_admin:
        traits.append("instance admin")
    if key.expires_at:
        traits.append(f"expires {key.expires_at:%Y-%m-%d %H:%M} UTC")
    print(f"created API key {key.id} ({key.name}) for {org.slug}: {', '.join(traits)}")
    print("the secret is shown only now; store it safely:")
    print(secret)


async def _apikey_revoke(adapter: AccessAdapter, args: argparse.Namespace) -> None:
    try:
        key_id = uuid.UUID(args.id)
    except ValueError:
        raise InvalidInputError(f"not an API key id: {args.id!r}") from None
    async with adapter.system_context() as tx:
        org = await _organization(adapter, tx, args.org)
        if not await adapter.revoke_api_key(tx, organization_id=org.id, key_id=key_id):
            raise NotFoundError(f"{org.slug} has no active API key {key_id}")
    print(f"revoked API key {key_id}")


async def _user_create(adapter: AccessAdapter, args: argparse.Namespace) -> None:
    if (args.org is None) != (args.role is None):
        raise InvalidInputError("--org and --role go together")
    password = _password(args.password)
    async with adapter.system_context() as tx:
        org = await _organization(adapter, tx, args.org) if args.org else None
        user = await adapter.create_user(tx, email=args.email, name=args.name, password=password)
        if args.instance_role is not None:
            await adapter.create_user_profile(tx, user_id=user.id, role=args.instance_role)
        if org is not None:
            await adapter.add_member(tx, organization_id=org.id, user_id=user.id, role=args.role)
    traits = [f"instance role {args.instance_role}"] if args.instance_role else []
    if org is not None:
        traits.append(f"{args.role} of {org.slug}")
    print(f"created user {user.email} ({', '.join(traits) or 'no organization, no instance role'})")
    print(user.id)


def _schema_print(database_url: Callable[[], str], args: argparse.Namespace) -> int:
    if args.database:
        return _run(database_url, _schema_print_stored, args)
    _write_sdl(load_schema_dir(Settings.from_env().schema_dir), args.output)
    return 0


async def _schema_print_stored(adapter: DatabaseAdapter, args: argparse.Namespace) -> None:
    from server.content.content_model import ContentModel

    model = ContentModel(adapter, adapter.instance_transaction)
    registry = await model.sync_dir(Settings.from_env().schema_dir)
    await asyncio.to_thread(_write_sdl, registry, args.output)


def _write_sdl(registry: Registry, output: str | None) -> None:
    from server.graphql.schema import build_schema

    sdl = build_schema(registry).schema.as_str() + "\n"
    if output:
        Path(output).write_text(sdl, encoding="utf-8")
    else:
        sys.stdout.write(sdl)


def _password(given: str | None) -> str:
    if given is not None:
        return given
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env:
        return from_env
    if not sys.stdin.isatty():
        raise InvalidInputError(
            f"no password: pass --password, set ${PASSWORD_ENV}, or use a terminal"
        )
    password = getpass.getpass("Password: ")
    if getpass.getpass("Repeat the password: ") != password:
        raise InvalidInputError("the passwords do not match")
    return password
