"""The bootstrap commands, run as a person or a script would.

The first test runs `python -m server ...` in a subprocess, end to end; the others run the same
`main(argv)` in this process (tests/command_line.py), with the same environment and no stdin.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import subprocess
import sys
import uuid

import pytest

from server.access.auth import authenticate
from server.access.capabilities import ALL_CAPABILITIES, BUILT_IN_ROLES
from server.config import PROJECT_ROOT
from server.engine.postgres import PostgresAdapter
from server.testing import pooled_environment
from tests.command_line import Result, run_main_async

KEY_FORMAT = re.compile(r"cms_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")


def _env(db_url: str, password: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CMS_PASSWORD"}
    env.update(pooled_environment(db_url))
    if password is not None:
        env["CMS_PASSWORD"] = password
    return env


async def cli(db_url: str, *args: str, password: str | None = None) -> Result:
    """The command in this process."""
    return await run_main_async(_env(db_url, password), *args)


async def cli_process(db_url: str, *args: str, password: str | None = None) -> Result:
    """The command as a child process: `python -m server ARGS`."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        *args,
        cwd=PROJECT_ROOT,
        env=_env(db_url, password),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return Result(process.returncode, out.decode().splitlines(), err.decode())


def assert_one_error(result: Result, message: str) -> None:
    assert result.code == 1, result
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {message}"], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
async def test_bootstrap_an_organization_tree_a_key_and_a_user(
    cms_database_url: str, cms_adapter: PostgresAdapter
) -> None:
    created = await cli_process(
        cms_database_url, "org", "create", "--name", "Acme", "--slug", "acme"
    )
    assert created.code == 0, created
    acme = uuid.UUID(created.last)
    child = await cli_process(
        cms_database_url, "org", "create", "--name", "Acme EU", "--slug", "eu", "--parent", "acme"
    )
    assert child.code == 0, child
    assert "under acme" in child.stdout[0]
    async with cms_adapter.instance_transaction() as tx:
        eu = await cms_adapter.find_organization_by_id(tx, organization_id=uuid.UUID(child.last))
    assert eu is not None
    assert (eu.slug, eu.name, eu.parent_organization_id, eu.created_by) == (
        "eu",
        "Acme EU",
        acme,
        "cli",
    )

    key = await cli_process(
        cms_database_url, "apikey", "create", "--org", "acme", "--role", "editor"
    )
    assert key.code == 0, key
    assert len(key.stdout) >= 2
    assert KEY_FORMAT.fullmatch(key.last)
    async with cms_adapter.instance_transaction() as tx:
        principal = await authenticate(
            tx, authorization=f"Bearer {key.last}", organization_header=None
        )
    assert principal.organization_id == acme
    assert principal.capabilities == BUILT_IN_ROLES["editor"]
    assert str(principal.key_id) in key.stdout[0]

    user = await cli_process(
        cms_database_url,
        "user",
        "create",
        "--email",
        "Ada@Example.com",
        "--name",
        "Ada",
        "--org",
        "eu",
        "--role",
        "viewer",
        "--instance-role",
        "admin",
        password="a long enough password",
    )
    assert user.code == 0, user
    async with cms_adapter.instance_transaction() as tx:
        profile = await cms_adapter.find_user_profile(tx, user_id=user.last)
        _, token = await cms_adapter.sign_in(
            tx, email="ada@example.com", password="a long enough password"
        )
        signed_in = await authenticate(
            tx, authorization=f"Bearer {token}", organization_header=None
        )
    assert profile is not None
    assert profile.role == "admin"
    assert (signed_in.user_id, signed_in.organization_id) == (user.last, eu.id)
    assert signed_in.capabilities == ALL_CAPABILITIES


async def test_key_options_and_revocation(
    cms_database_url: str, cms_adapter: PostgresAdapter
) -> None:
    assert (
        await cli(cms_database_url, "org", "create", "--name", "Acme", "--slug", "acme")
    ).code == 0
    created = await cli(
        cms_database_url,
        "apikey",
        "create",
        "--org",
        "acme",
        "--capabilities",
        "document.read, asset.upload",
        "--name",
        "site",
        "--published-only",
        "--instance-admin",
        "--expires-in-days",
        "7",
    )
    assert created.code == 0, created
    secret = created.last
    async with cms_adapter.instance_transaction() as tx:
        key = await cms_adapter.find_api_key_by_secret(tx, secret=secret)
    assert key is not None
    assert key.name == "site"
    assert key.capabilities == frozenset({"document.read", "asset.upload", "asset.read"})
    assert (key.published_only, key.instance_admin) == (True, True)
    assert key.expires_at is not None

    revoked = await cli(cms_database_url, "apikey", "revoke", "--org", "acme", "--id", str(key.id))
    assert revoked.code == 0, revoked
    async with cms_adapter.instance_transaction() as tx:
        assert await cms_adapter.find_api_key_by_secret(tx, secret=secret) is None
    again = await cli(cms_database_url, "apikey", "revoke", "--org", "acme", "--id", str(key.id))
    assert_one_error(again, f"acme has no active API key {key.id}")


NEW_USER = "user create --email a@example.com --name A"


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("apikey create --org ghost --role editor", "no organization with the slug 'ghost'"),
        ("apikey create --org acme --role ghost", "the organization has no role 'ghost'"),
        ("apikey create --org acme --capabilities a.b", "unknown capability: 'a.b'"),
        (
            "apikey create --org acme --role viewer --expires-in-days 0",
            "--expires-in-days must be at least 1",
        ),
        ("apikey revoke --org acme --id nope", "not an API key id: 'nope'"),
        (
            "org create --name Child --slug child --parent ghost",
            "no organization with the slug 'ghost'",
        ),
        ("org create --name Again --slug acme", "an organization with this slug already exists"),
        (NEW_USER, "no password: pass --password, set $CMS_PASSWORD, or use a terminal"),
        (f"{NEW_USER} --password short", "the password must be at least 8 characters"),
        (
            f"{NEW_USER} --password long-enough --org acme --role ghost",
            "the organization has no role 'ghost'",
        ),
        (f"{NEW_USER} --password long-enough --org acme", "--org and --role go together"),
        (
            f"{NEW_USER} --password long-enough --instance-role root",
            "the instance role must be one of super_admin, admin, editor, viewer",
        ),
    ],
)
async def test_bad_input_is_one_error_line(
    cms_database_url: str, cms_adapter: PostgresAdapter, command: str, message: str
) -> None:
    async with cms_adapter.system_context() as tx:
        await cms_adapter.create_organization(tx, name="Acme", slug="acme", created_by="test")
    result = await cli(cms_database_url, *shlex.split(command))
    assert_one_error(result, message)
    assert result.stdout == []
    async with cms_adapter.instance_transaction() as tx:
        # Nothing half-done is left behind: each command is one transaction.
        assert await tx.fetchval("SELECT count(*) FROM users") == 0
        assert await tx.fetchval("SELECT count(*) FROM cms_user_profiles") == 0
        assert await tx.fetchval("SELECT count(*) FROM api_keys") == 0
        assert await tx.fetchval("SELECT count(*) FROM cms_organizations") == 1


async def test_a_user_gets_no_instance_role_unless_asked(
    cms_database_url: str, cms_adapter: PostgresAdapter
) -> None:
    assert (
        await cli(cms_database_url, "org", "create", "--name", "Acme", "--slug", "acme")
    ).code == 0
    member = await cli(
        cms_database_url,
        *shlex.split(f"{NEW_USER} --org acme --role viewer"),
        password="long-enough",
    )
    assert member.code == 0, member
    assert "(viewer of acme)" in member.stdout[0]
    async with cms_adapter.instance_transaction() as tx:
        assert await cms_adapter.find_user_profile(tx, user_id=member.last) is None
        _, token = await cms_adapter.sign_in(tx, email="a@example.com", password="long-enough")
        signed_in = await authenticate(
            tx, authorization=f"Bearer {token}", organization_header=None
        )
    # Only what the membership gives: a viewer, not an instance-wide role.
    assert signed_in.capabilities == BUILT_IN_ROLES["viewer"]
    assert not signed_in.instance_admin

    editor = await cli(
        cms_database_url,
        *shlex.split("user create --email b@example.com --name B --instance-role editor"),
        password="long-enough",
    )
    assert editor.code == 0, editor
    assert "(instance role editor)" in editor.stdout[0]
    async with cms_adapter.instance_transaction() as tx:
        profile = await cms_adapter.find_user_profile(tx, user_id=editor.last)
    assert profile is not None
    assert profile.role == "editor"
