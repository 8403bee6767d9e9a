"""`python -m bench`: load the dataset, count, explain, measure, profile, and write the report.

    python -m bench                    # 10,000 posts: the default size, about 8 minutes
    python -m bench --posts 1000000    # the scale run

The database server is DATABASE_URL's (a role that may create databases), else the project's
embedded PostgreSQL 18. The run uses its own databases on it (`cms_bench_<posts>` and a copy with
Row-Level Security off), leaves its raw results in bench/results/<posts>/ and rewrites its section of
bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from bench import cached, explain, inprocess, pgbouncer, phase, report, runner, servers, wrk
from bench.dataset import SCENARIO_ORG, Dataset
from bench.load import ACTOR, Loaded, drop_database, load, single_tenant_copy, vacuum
from bench.machine import PostgresCpu, describe
from bench.scenarios import BY_NAME, SCENARIOS, opening_statements
from server.config import PROJECT_ROOT, Settings
from server.db.embedded import start_embedded
from server.engine.postgres import PostgresAdapter
from server.testing import with_database

RESULTS = PROJECT_ROOT / "bench" / "results"
README = PROJECT_ROOT / "bench" / "README.md"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=10_000, help="dataset size (default 10000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duration", type=float, default=12, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warm-up per run")
    parser.add_argument(
        "--rounds", type=int, default=4, help="turns the targets take within each measured run"
    )
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 2, help="the N of the N-worker runs"
    )
    parser.add_argument(
        "--reuse", action="store_true", help="keep an already loaded database of this size"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {message}", flush=True)

    folder = RESULTS / str(args.posts)
    folder.mkdir(parents=True, exist_ok=True)
    admin_url = _admin_url()
    name = f"cms_bench_{args.posts}"
    dataset = Dataset(args.posts, args.seed)

    loaded = asyncio.run(_prepare(admin_url, name, dataset, reuse=args.reuse, log=log))
    log(f"dataset: {args.posts} posts in {loaded.seconds:.1f}s ({name})")
    asyncio.run(vacuum(loaded.url))
    rls_off_url = asyncio.run(single_tenant_copy(admin_url, name, loaded.organization_id))
    read_ids, write_ids = asyncio.run(_post_ids(loaded))
    results: dict[str, Any] = {
        "meta": {
            **asyncio.run(describe(loaded.url)),
            "posts": args.posts,
            "seed": args.seed,
            "load_seconds": round(loaded.seconds, 1),
            "duration": args.duration,
            "warmup": args.warmup,
            "rounds": args.rounds,
            "connections": args.connections,
            "workers": args.workers,
            "wrk": _wrk_version(),
        }
    }

    log("the machine's phase (bench/phase.py)")
    results["meta"]["phase_start"] = asyncio.run(
        phase.probe(loaded.url, loaded.api_key, loaded.organization_id, read_ids)
    )
    log(f"  {results['meta']['phase_start']}")

    log("statement counts and EXPLAIN, in process")
    results["counts"], explained = asyncio.run(_count_and_explain(loaded, read_ids, write_ids))
    (folder / "explain.txt").write_text(explained.pop("text"))
    results["explain"] = explained

    settings = runner.Settings(
        duration=args.duration,
        warmup=args.warmup,
        rounds=args.rounds,
        connections=args.connections,
        api_key=loaded.api_key,
        read_ids=read_ids,
        write_ids=write_ids,
        work_dir=folder,
        log=log,
    )
    pg_cpu = asyncio.run(PostgresCpu.find(loaded.url))
    org = str(loaded.organization_id)
    records: list[dict[str, Any]] = []

    log(
        "one worker: the API (RLS on), the API (RLS off), the floor, the API through PgBouncer"
        " and, on Q4, the API with each read by id alone, side by side"
    )
    results["meta"]["pgbouncer_pool_size"] = pgbouncer.POOL_SIZE
    results["meta"]["pgbouncer_socket"] = "its Unix socket"
    results["meta"]["pgbouncer_settings"] = pgbouncer.SETTINGS
    with (
        _servers(folder, 1, loaded.url, rls_off_url, org) as (api, floor, api_rls_off),
        pooled_api(folder, admin_url, loaded.url) as (api_pgbouncer, _),
        _unbatched_api(folder, loaded.url) as api_unbatched,
    ):
        results["same_rows"] = runner.same_rows(api, floor, loaded.api_key, read_ids)
        log(f"  same JSON from the API and the floor: {results['same_rows']}")
        results["same_rows_rls_off"] = runner.same_rows(
            api, api_rls_off, loaded.api_key, read_ids, floor=False
        )
        log(f"  same JSON from the API with RLS on and off: {results['same_rows_rls_off']}")
        results["same_rows_pgbouncer"] = runner.same_rows(
            api, api_pgbouncer, loaded.api_key, read_ids, floor=False
        )
        log(
            f"  same JSON from the API direct and through PgBouncer: {results['same_rows_pgbouncer']}"
        )
        targets = [
            runner.Target("api", api, loaded.url),
            runner.Target("floor", floor, loaded.url),
            runner.Target("api_rls_off", api_rls_off, rls_off_url),
            runner.Target("api_pgbouncer", api_pgbouncer, loaded.url),
            runner.Target("api_unbatched", api_unbatched, loaded.url, only=BATCHED),
        ]
        records += runner.measure(targets, settings, pg_cpu)
        log("published Q2 over GET: the API direct and through Varnish (hits)")
        records += cached.measure(api, loaded, settings, pg_cpu, log)

    log("profile of Q2 (pyinstrument, one worker)")
    results["profile"] = _profile(folder, loaded, settings)

    if args.workers > 1:
        log(f"one worker and {args.workers} workers: the API and the floor, side by side")
        # Each API worker holds a pool and a read pool, each floor worker one pool.
        held = (1 + args.workers) * 3 * Settings.from_env().pool_size
        allowed = int(results["meta"]["postgresql_settings"].get("max_connections", 0))
        if allowed and held >= allowed:
            log(
                f"  these servers may hold {held} connections, and PostgreSQL's max_connections is"
                f" {allowed}: requests past it fail, and the report counts them as errors"
            )
        with (
            _servers(folder, 1, loaded.url, None, org, logs="-side") as (api, floor, _),
            _servers(folder, args.workers, loaded.url, None, org) as (api_n, floor_n, _),
        ):
            targets = [
                runner.Target("api", api, loaded.url),
                runner.Target("floor", floor, loaded.url),
                runner.Target("api", api_n, loaded.url),
                runner.Target("floor", floor_n, loaded.url),
            ]
            records += runner.measure(targets, settings, pg_cpu, tag=report.WORKERS_TURNS)
    results["runs"] = records
    results["meta"]["phase_end"] = asyncio.run(
        phase.probe(loaded.url, loaded.api_key, loaded.organization_id, read_ids)
    )
    log(f"the machine's phase at the end: {results['meta']['phase_end']}")
    # The copy is made afresh by every run; the dataset itself stays for --reuse.
    asyncio.run(drop_database(admin_url, f"{name}_rls_off"))
    results["meta"]["total_seconds"] = round(time.monotonic() - started)

    (folder / "results.json").write_text(json.dumps(results, indent=2, default=str))
    # The scale run holds its ratios to the default run's latest ones.
    baseline = report.read_baseline(RESULTS) if args.posts >= report.SCALE else None
    section = report.section(results, baseline=baseline)
    report.update_readme(README, args.posts, section)
    print(section)
    log(f"wrote bench/README.md and bench/results/{args.posts}/")
    return 0


def _admin_url() -> str:
    """The server to run on: DATABASE_URL's, else the embedded PostgreSQL 18 (started if need be)."""
    settings = Settings.from_env()
    if settings.database_url is not None:
        return settings.database_url
    return start_embedded(settings.data_dir, database="postgres")


async def _prepare(admin_url: str, name: str, dataset: Dataset, *, reuse: bool, log: Any) -> Loaded:
    url = with_database(admin_url, name)
    if reuse:
        found = await _existing(url, dataset)
        if found is not None:
            log(f"reusing {name}")
            return found
    log(f"loading {dataset.posts} posts into a fresh database {name}")
    loaded = await load(admin_url, name, dataset)
    conn = await asyncpg.connect(admin_url)
    try:
        # How --reuse recognises the dataset.
        marker = json.dumps({"posts": dataset.posts, "seed": dataset.seed})
        await conn.execute(f"COMMENT ON DATABASE \"{name}\" IS '{marker}'")
    finally:
        await conn.close()
    return loaded


async def _existing(url: str, dataset: Dataset) -> Loaded | None:
    try:
        conn = await asyncpg.connect(url)
    except (OSError, asyncpg.PostgresError):
        return None
    try:
        comment = await conn.fetchval(
            "select shobj_description(oid, 'pg_database') from pg_database"
            " where datname = current_database()"
        )
        marker = json.loads(comment) if comment else {}
        if marker.get("posts") != dataset.posts or marker.get("seed") != dataset.seed:
            return None
        rows = await conn.fetch("select slug, id from cms_organizations")
    finally:
        await conn.close()
    organizations = {row["slug"]: row["id"] for row in rows}
    # Secrets are stored hashed: a new key for this run.
    adapter = PostgresAdapter(url, pool_size=1)
    await adapter.connect()
    try:
        async with adapter.system_context() as tx:
            _, key = await adapter.create_api_key(
                tx,
                organization_id=organizations[SCENARIO_ORG],
                name=ACTOR,
                role="owner",
                created_by=ACTOR,
            )
    finally:
        await adapter.disconnect()
    return Loaded(
        url=url,
        posts=dataset.posts,
        seed=dataset.seed,
        organizations=organizations,
        api_key=key,
        seconds=0.0,
    )


async def _post_ids(loaded: Loaded) -> tuple[list[str], list[str]]:
    """Published posts of the scenarios' organization: 1000 to read, and 1024 others to write
    for each of `runner.WRITE_SHARES` targets."""
    conn = await asyncpg.connect(loaded.url)
    try:
        rows = await conn.fetch(
            "SELECT id::text AS id FROM cms_documents WHERE type = 'post'"
            " AND status = 'published' AND organization_id = $1 ORDER BY md5(id::text) LIMIT $2",
            loaded.organization_id,
            1000 + 1024 * runner.WRITE_SHARES,
        )
    finally:
        await conn.close()
    ids = [row["id"] for row in rows]
    return ids[:1000], ids[1000:]


def turns_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """The arguments of the tools that measure two servers in many short turns
    (`bench.pooler_turns`, `bench.rls_turns`), all that `turns_setup` needs among them."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scenarios", nargs="+", default=["Q1", "Q2", "Q3", "Q4", "Q5"])
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=3, help="length of one turn")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--reuse", action="store_true")
    return parser


def turns_setup(args: argparse.Namespace, prefix: str) -> tuple[str, Loaded, runner.Settings]:
    """The server to run on, the bench database (loaded, or reused) and the settings of one-round
    wrk turns, for the tools that start their own servers (`bench.pooler_turns`,
    `bench.pg_profile`): `args` has their `--posts`, `--seed`, `--reuse`, `--seconds` (a turn's
    length) and `--connections`; their files go to a fresh temporary folder named after `prefix`."""
    admin_url = _admin_url()
    dataset = Dataset(args.posts, args.seed)
    loaded = asyncio.run(
        _prepare(admin_url, f"cms_bench_{args.posts}", dataset, reuse=args.reuse, log=print)
    )
    read_ids, write_ids = asyncio.run(_post_ids(loaded))
    settings = runner.Settings(
        duration=args.seconds,
        warmup=2,
        rounds=1,
        connections=args.connections,
        api_key=loaded.api_key,
        read_ids=read_ids,
        write_ids=write_ids,
        work_dir=Path(tempfile.mkdtemp(prefix=prefix)),
    )
    return admin_url, loaded, settings


async def _count_and_explain(
    loaded: Loaded, read_ids: list[str], write_ids: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    counts: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    text = []
    conn = await asyncpg.connect(loaded.url)
    try:

        async def revision_of(post_id: str) -> int:
            value: int = await conn.fetchval(
                "SELECT revision FROM cms_documents WHERE id = $1", uuid.UUID(post_id)
            )
            return value

        async with inprocess.app_client(loaded.url) as (client, services):
            for scenario in SCENARIOS:
                ids = write_ids[-5:] if scenario.kind == "write" else read_ids
                measured = await inprocess.measure(
                    client,
                    services,
                    scenario,
                    api_key=loaded.api_key,
                    post_ids=ids,
                    revision_of=revision_of,
                )
                counts[scenario.name] = {
                    "opening": opening_statements(scenario.kind),
                    "per_request": measured.counts,
                }
                ours = await explain.explain_api(
                    services.adapter, loaded.organization_id, scenario, measured
                )
                floor = await explain.explain_floor(
                    loaded.url, loaded.organization_id, scenario, ids[0]
                )
                text.append(explain.render(f"{scenario.name}: the API", ours))
                text.append(explain.render(f"{scenario.name}: the floor", floor))
                main = explain.main_statement(scenario, ours)
                summary[scenario.name] = {
                    "api": _explained(main),
                    "api_statements": len(ours),
                    "floor": _explained(explain.main_statement(scenario, floor)),
                }
    finally:
        await conn.close()
    summary["text"] = "\n".join(text)
    return counts, summary


def _explained(item: explain.Explained) -> dict[str, Any]:
    return {
        "indexes": item.indexes,
        "seq_scans": item.seq_scans,
        "execution_ms": item.execution_ms,
    }


@contextmanager
def _servers(
    folder: Path, workers: int, url: str, rls_off_url: str | None, org: str, *, logs: str = ""
) -> Iterator[tuple[servers.Server, servers.Server, servers.Server | None]]:
    with ExitStack() as stack:

        def started(name: str, module: str, env: dict[str, str]) -> servers.Server:
            server = servers.start(
                f"{name}-{workers}w{logs}", module, workers=workers, env=env, log_dir=folder
            )
            stack.callback(server.stop)
            return server

        api = started("api", "server", {"DATABASE_URL": url, "ENABLE_RLS": "true"})
        floor = started("floor", "bench.floor", {"DATABASE_URL": url, "BENCH_ORG_ID": org})
        rls_off = None
        if rls_off_url is not None:
            rls_off = started(
                "api-rls-off", "server", {"DATABASE_URL": rls_off_url, "ENABLE_RLS": "false"}
            )
        yield api, floor, rls_off


# The scenarios whose reads by id the API batches when they arrive together
# (`server/query/batching.py`): measured also with each read alone, beside the rest.
BATCHED = ("Q4",)


@contextmanager
def _unbatched_api(folder: Path, url: str) -> Iterator[servers.Server]:
    """The API (one worker) with each read by id run alone (`READ_BATCH_MAX=1`)."""
    env = {"DATABASE_URL": url, "ENABLE_RLS": "true", "READ_BATCH_MAX": "1"}
    server = servers.start("api-unbatched-1w", "server", workers=1, env=env, log_dir=folder)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def pooled_api(
    folder: Path, admin_url: str, url: str
) -> Iterator[tuple[servers.Server, pgbouncer.Pooler]]:
    """The API (one worker) through PgBouncer in transaction mode, as `docs/scaling.md` sets it up:
    requests through the pooler, start-up work and LISTEN on the database directly. Yields the
    API and the pooler."""
    with pgbouncer.pgbouncer(admin_url) as pooler:
        database = urlsplit(url).path.lstrip("/")
        env = {
            "DATABASE_URL": pooler.url(database),
            "DATABASE_POOL_MODE": "transaction",
            "DATABASE_DIRECT_URL": url,
            "ENABLE_RLS": "true",
        }
        server = servers.start("api-pgbouncer-1w", "server", workers=1, env=env, log_dir=folder)
        try:
            yield server, pooler
        finally:
            server.stop()


def _profile(folder: Path, loaded: Loaded, settings: runner.Settings) -> dict[str, Any]:
    from pyinstrument.session import Session

    from bench import profiling

    output = folder / "profile-q2.pyisession"
    output.unlink(missing_ok=True)
    output.with_suffix(".gc.json").unlink(missing_ok=True)
    server = servers.start(
        "api-profiled-1w",
        "bench.profiled_server",
        workers=1,
        env={"DATABASE_URL": loaded.url, "ENABLE_RLS": "true"},
        log_dir=folder,
        extra=("--output", str(output)),
    )
    try:
        run = runner.profile(
            server,
            BY_NAME["Q2"],
            settings,
            output=output,
            signal_start=signal.SIGUSR1,
            signal_stop=signal.SIGUSR2,
        )
    finally:
        server.stop()
    session = Session.load(output)
    profiling.save_renderings(session, folder, "profile-q2")
    collections = json.loads(output.with_suffix(".gc.json").read_text())
    return {"run": run, "gc": collections, **profiling.summarise(session).to_json()}


def _wrk_version() -> str:
    completed = subprocess.run(  # noqa: S603 (a fixed command)
        [wrk.wrk_binary(), "--version"], capture_output=True, text=True, check=False
    )
    return (completed.stdout or completed.stderr).split("Copyright")[0].strip()


if __name__ == "__main__":
    sys.exit(main())
