"""PostgreSQL's CPU per execution of a read's statement alone, as the request role and the superuser.

    python -m bench.statement_cpu --reuse                          # Q4 and Q1, 10,000 posts
    python -m bench.statement_cpu --reuse --scenarios Q4 --variant Q4=/tmp/q4.sql

`bench/run` measures a read over HTTP under load, where a few µs of PostgreSQL's time are lost in
the machine's drift, and `bench/pg_profile` splits that time by area. This measures one thing: the
CPU time of one backend (`/proc/<pid>/schedstat`, in nanoseconds) over many executions of the
statement the API sends for a scenario's read, prepared on a session scoped as the API scopes one
(the organization, the organizations it may read), one execution after the other: once as the
request role, so with Row-Level Security and its privilege checks, and once as the connecting
superuser, which skips both, each on a session of its own, taking turns within each round. Q4's
executions go through the post ids in turn.

With `--split`, also as a role made for the run and dropped after it: a member of the request
role with `BYPASSRLS`, so with the request role's privilege checks (`EXECUTE` of every function
the statement calls, at every execution) but without its policies. The three split what the
request role costs over the superuser in two: the privilege checks (that role against the
superuser) and the policies (the request role against that role), each the median of the rounds'
differences.

With `--variant NAME=FILE`, another text of a scenario's statement (the same parameters) is
measured beside it in the same rounds, after a check that it answers the same for the first ids:
the way to try a change to `server/query/sql.py`'s SQL before making it (`--any-answer` skips the
check, to price a part of the statement by leaving it out). The texts take turns
within each round; the median and the least of the rounds are printed, the least because the
machine's drift only ever adds. Needs PostgreSQL on this machine (the backend's `/proc` entry).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg

from bench import inprocess
from bench.cli import _admin_url, _post_ids, _prepare
from bench.dataset import Dataset
from bench.scenarios import BY_NAME, Scenario
from server.db.literals import uuid_literal

CHECKED = 50  # ids whose answers a variant must match
AS_SENT = "as sent"
# The roles a statement is measured as, by label; `--split` adds the second.
REQUEST, NO_POLICIES, SUPERUSER = "request role", "no policies", "superuser"
NO_POLICIES_ROLE = "cms_bench_no_policies"


def backend_cpu_us(pid: int) -> float:
    """The backend's CPU time so far, in µs (the first field of schedstat: nanoseconds on CPU)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1000


async def read_statement(
    url: str, api_key: str, scenario: Scenario, post_ids: list[str]
) -> tuple[str, tuple[Any, ...], str | None]:
    """The read's statement as the API sends it for `post_ids[0]`, its arguments, and the request
    role it runs as."""
    async with inprocess.app_client(url) as (client, services):
        measured = await inprocess.measure(
            client,
            services,
            scenario,
            api_key=api_key,
            post_ids=post_ids,
            revision_of=lambda _: None,
            repeat=1,
        )
        role = services.adapter.tenancy.request_role
    sql, args = measured.statements[0][0]
    return sql, args, role


async def scoped_session(url: str, organization: uuid.UUID, role: str | None) -> Any:
    """A session scoped to `organization` for good, as a request's transaction is for its length
    (the settings of `server.db.tenancy.scope_sql`, made for the session, not a transaction)."""
    conn = await asyncpg.connect(url)
    org = uuid_literal(organization)
    await conn.execute(
        f"SELECT set_config('app.organization_id', {org}::text, false),"
        " set_config('app.hierarchy', 'on', false),"
        f" set_config('app.readable_orgs', cms_org_tree({org}, true)::text, false),"
        " set_config('jit', 'off', false)"
    )
    if role is not None:
        await conn.execute(f'SET ROLE "{role}"')
    return conn


async def measure(
    url: str,
    organization: uuid.UUID,
    roles: dict[str, str | None],
    texts: dict[str, str],
    calls: list[tuple[Any, ...]],
    executions: int,
    rounds: int,
    *,
    check: bool = True,
) -> dict[tuple[str, str], list[float]]:
    """µs of the backend's CPU per execution of each text as each role (by label; None: the
    connecting role), one figure per round. Every role has a session of its own, and the roles and
    texts take turns within each round, so that the figures of one round share the machine's phase
    and may be compared pair by pair."""
    sessions = {
        label: await scoped_session(url, organization, role) for label, role in roles.items()
    }
    try:
        pids = {
            label: await conn.fetchval("SELECT pg_backend_pid()")
            for label, conn in sessions.items()
        }
        prepared = {
            (label, name): await conn.prepare(sql)
            for label, conn in sessions.items()
            for name, sql in texts.items()
        }
        # Also the warm-up: each text's plan cached before its rounds.
        answers = {
            key: [await statement.fetchval(*args) for args in calls[:CHECKED]]
            for key, statement in prepared.items()
        }
        first = next(iter(texts))
        for (label, name), answer in answers.items():
            if check and answer != answers[label, first]:
                raise SystemExit(f"{name} does not answer as {first} does")
        figures: dict[tuple[str, str], list[float]] = {key: [] for key in prepared}
        for _ in range(rounds):
            for (label, name), statement in prepared.items():
                before = backend_cpu_us(pids[label])
                for n in range(executions):
                    await statement.fetchval(*calls[n % len(calls)])
                figures[label, name].append((backend_cpu_us(pids[label]) - before) / executions)
        return figures
    finally:
        for conn in sessions.values():
            await conn.close()


@contextlib.asynccontextmanager
async def role_without_policies(admin_url: str, request_role: str) -> AsyncIterator[str]:
    """`NO_POLICIES_ROLE` for the length of the block: a member of `request_role` with
    `BYPASSRLS`, so its privileges without its policies."""
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP ROLE IF EXISTS "{NO_POLICIES_ROLE}"')
        await conn.execute(
            f'CREATE ROLE "{NO_POLICIES_ROLE}" NOLOGIN BYPASSRLS IN ROLE "{request_role}"'
        )
        yield NO_POLICIES_ROLE
    finally:
        await conn.execute(f'DROP ROLE IF EXISTS "{NO_POLICIES_ROLE}"')
        await conn.close()


def split_line(name: str, figures: dict[tuple[str, str], list[float]]) -> str:
    """What the request role costs the text as sent over the superuser, split in its privilege
    checks and its policies: medians of the rounds' differences (paired: the same round)."""

    def over(label: str, base: str) -> float:
        return statistics.median(
            a - b for a, b in zip(figures[label, AS_SENT], figures[base, AS_SENT], strict=True)
        )

    return (
        f"{name} {AS_SENT}: the request role {over(REQUEST, SUPERUSER):+.1f} µs over the superuser"
        f" (median of the rounds' differences): privilege checks"
        f" {over(NO_POLICIES, SUPERUSER):+.1f}, policies {over(REQUEST, NO_POLICIES):+.1f}"
    )


def _calls(args: tuple[Any, ...], first: str, post_ids: list[str]) -> list[tuple[Any, ...]]:
    """The arguments for each id in turn: the read's own, its post id replaced (Q4)."""
    # The API binds an id as a `uuid.UUID`, or as its text when the request spelled it so.
    recorded = uuid.UUID(first)
    if recorded not in args and first not in args:
        return [args]
    return [
        tuple(uuid.UUID(post_id) if arg in (recorded, first) else arg for arg in args)
        for post_id in post_ids
    ]


async def run(
    admin_url: str, args: argparse.Namespace, variants: dict[str, dict[str, str]]
) -> None:
    loaded = await _prepare(
        admin_url, f"cms_bench_{args.posts}", Dataset(args.posts, 1), reuse=args.reuse, log=print
    )
    post_ids, _ = await _post_ids(loaded)
    for name in args.scenarios:
        scenario = BY_NAME[name]
        sql, arguments, role = await read_statement(loaded.url, loaded.api_key, scenario, post_ids)
        texts = {AS_SENT: sql, **variants.get(name, {})}
        calls = _calls(arguments, post_ids[0], post_ids)
        async with contextlib.AsyncExitStack() as stack:
            roles: dict[str, str | None] = {REQUEST: role}
            if args.split and role is not None:
                roles[NO_POLICIES] = await stack.enter_async_context(
                    role_without_policies(admin_url, role)
                )
            roles[SUPERUSER] = None
            figures = await measure(
                loaded.url,
                loaded.organization_id,
                roles,
                texts,
                calls,
                args.executions,
                args.rounds,
                check=not args.any_answer,
            )
        for (label, text), values in figures.items():
            print(
                f"{name} {label:12s} {text:14s} median {statistics.median(values):7.1f} µs,"
                f" least {min(values):7.1f} µs  ({' '.join(f'{v:.1f}' for v in values)})",
                flush=True,
            )
        if NO_POLICIES in roles:
            print(split_line(name, figures), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.statement_cpu", description=__doc__)
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--scenarios", nargs="+", default=["Q4", "Q1"])
    parser.add_argument("--executions", type=int, default=2000, help="per text and round")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="another text of scenario NAME's statement, measured beside it",
    )
    parser.add_argument(
        "--any-answer", action="store_true", help="measure variants that answer otherwise too"
    )
    parser.add_argument(
        "--split",
        action="store_true",
        help="also as a member of the request role with BYPASSRLS: privilege checks and policies",
    )
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args(argv)
    for name in args.scenarios:
        if BY_NAME[name].kind == "write":
            parser.error(f"{name} is a write: this measures a read's one statement")
    # Each scenario's variants by the name of their file: the text to measure beside it.
    variants: dict[str, dict[str, str]] = {}
    for variant in args.variant:
        name, _, file = variant.partition("=")
        variants.setdefault(name, {})[Path(file).stem] = Path(file).read_text()
    # Outside the event loop: without DATABASE_URL this starts the embedded server.
    admin_url = _admin_url()
    asyncio.run(run(admin_url, args, variants))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
