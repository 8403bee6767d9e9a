"""PostgreSQL's CPU per execution of a read's statement alone, as the request role and the superuser.

    python -m bench.statement_cpu --reuse                          # Q4 and Q1, 10,000 posts
    python -m bench.statement_cpu --reuse --scenarios Q4 --variant Q4=/tmp/q4.sql

`bench/run` measures a read over HTTP under load, where a few µs of PostgreSQL's time are lost in
the machine's drift, and `bench/pg_profile` splits that time by area. This measures one thing: the
CPU time of one backend (`/proc/<pid>/schedstat`, in nanoseconds) over many executions of the
statement the API sends for a scenario's read, prepared on a session scoped as the API scopes one
(the organization, the organizations it may read), one execution after the other: once as the
request role, so with Row-Level Security and its privilege checks, and once as the connecting
superuser, which skips both. Q4's executions go through the post ids in turn.

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
import statistics
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from bench import inprocess
from bench.cli import _admin_url, _post_ids, _prepare
from bench.dataset import Dataset
from bench.scenarios import BY_NAME, Scenario
from server.db.literals import uuid_literal

CHECKED = 50  # ids whose answers a variant must match


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
    role: str | None,
    texts: dict[str, str],
    calls: list[tuple[Any, ...]],
    executions: int,
    rounds: int,
    *,
    check: bool = True,
) -> dict[str, list[float]]:
    """µs of the backend's CPU per execution of each text, one figure per round."""
    conn = await scoped_session(url, organization, role)
    try:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        prepared = {name: await conn.prepare(sql) for name, sql in texts.items()}
        # Also the warm-up: each text's plan cached before its rounds.
        answers = {
            name: [await statement.fetchval(*args) for args in calls[:CHECKED]]
            for name, statement in prepared.items()
        }
        (first, expected), *others = answers.items()
        for name, answer in others:
            if check and answer != expected:
                raise SystemExit(f"{name} does not answer as {first} does")
        figures: dict[str, list[float]] = {name: [] for name in texts}
        for _ in range(rounds):
            for name, statement in prepared.items():
                before = backend_cpu_us(pid)
                for n in range(executions):
                    await statement.fetchval(*calls[n % len(calls)])
                figures[name].append((backend_cpu_us(pid) - before) / executions)
        return figures
    finally:
        await conn.close()


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
        texts = {"as sent": sql, **variants.get(name, {})}
        calls = _calls(arguments, post_ids[0], post_ids)
        for label, as_role in (("request role", role), ("superuser", None)):
            figures = await measure(
                loaded.url,
                loaded.organization_id,
                as_role,
                texts,
                calls,
                args.executions,
                args.rounds,
                check=not args.any_answer,
            )
            for text, values in figures.items():
                print(
                    f"{name} {label:12s} {text:14s} median {statistics.median(values):7.1f} µs,"
                    f" least {min(values):7.1f} µs  ({' '.join(f'{v:.1f}' for v in values)})",
                    flush=True,
                )


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
