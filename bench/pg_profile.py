"""Where the CPU of a request goes inside PostgreSQL, the API's and the floor's: `perf` samples by area.

    python -m bench.pg_profile --reuse                     # Q4, 8 s each, 10,000 posts
    python -m bench.pg_profile --reuse --scenarios Q4 Q1 --seconds 10
    python -m bench.pg_profile --reuse --rls-off           # and the API with RLS off, as bench/run
    python -m bench.pg_profile --reuse --symbols 40        # and the 40 functions that differ most

`bench/run` gives PostgreSQL's CPU per request as one figure; this splits it. It starts the API
and the floor (one worker each, as `bench/run` does), loads each with wrk in turn while
`perf record -a` samples the whole machine (with `--rls-off`, also the API with Row-Level
Security off, on the single-tenant copy of the database that `bench/run` measures it on), and
prints per scenario the CPU time per request of the server process and of PostgreSQL's
processes, PostgreSQL's split into areas by the functions the samples fall in (executor
start-up, catalog lookups and privilege checks, memory, regular expressions, ...). Areas are
read from symbol names, so they are approximate; the totals are not.

The database's own functions are the measure of what a statement costs there beyond its rows:
a large SELECT list costs at every execution (each expression is set up again, each function's
EXECUTE privilege checked for a role that is not a superuser), where the floor's small one costs
little. Needs Linux `perf` (Debian's `linux-perf`) and the right to sample every process (root, or
`kernel.perf_event_paranoid` at -1). Nothing is written but a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

from bench import runner, servers
from bench.cli import turns_setup
from bench.load import single_tenant_copy
from bench.scenarios import BY_NAME, Scenario

FREQUENCY = 999  # samples a second on each core
# Areas by symbol, first match wins; the kernel's symbols count as "kernel" whatever their name.
AREAS = (
    ("regular expressions", r"^(miss|getvacant|shortest|longest|lastcold|pg_regexec|RE_|cfind)"),
    (
        "executor start-up",
        r"^(ExecInit|ExprEvalPushStep|expr_setup_walker|expression_tree_walker|ExecReadyInterp"
        r"|ExecCreateExprSetupSteps|ExecAssignProjection|ExecBuildProjection|ExecTypeFromTL"
        r"|ExecCheckPermissions|TupleDescInitEntry|CreateTemplateTupleDesc|ExecAllocTableSlot"
        r"|MakeTupleTableSlot|exprType|exprTypmod|exprCollation|standard_ExecutorStart"
        r"|CheckExprStillValid|ScanQueryWalker|ScanQueryForLocks|AcquireExecutorLocks"
        r"|AcquirePlannerLocks|planstate_tree_walker)",
    ),
    (
        "catalog lookups, privileges",
        r"^(SearchCatCache|SysCacheGetAttr|SearchSysCache|ReleaseCatCache|CatalogCacheCompute"
        r"|GetCatCacheHashValue|aclmask|object_aclmask|object_aclcheck|acldefault"
        r"|has_privs_of_role|nocachegetattr|get_object_property_data|fmgr_info"
        r"|hash_search|hash_bytes|oid_hash|int4hashfast)",
    ),
    (
        "memory",
        r"^(palloc|pfree|AllocSet|MemoryContext|_int_malloc|_int_free|malloc|free|cfree"
        r"|__mem|repalloc|unlink_chunk|malloc_consolidate)",
    ),
    (
        "expression evaluation",
        r"^(ExecInterpExpr|ExecEval|ExecJust|slot_|tts_|ExecScan|ExecProject|ExecResult"
        r"|ExecAgg|ExecNestLoop|ExecIndexScan|ExecSubPlan|ExecSetParamPlan)",
    ),
    ("JSON", r"(?i)json"),
    (
        "index and heap access",
        r"^(_bt_|index_|heap_|heapam_|Buffer|PinBuffer|UnpinBuffer|LWLock"
        r"|StartReadBuffer|ReadBuffer|pglz_)",
    ),
    (
        "parsing, planning",
        r"^(base_yyparse|core_yylex|raw_parser|parse_analyze|transform|pg_parse|pg_analyze"
        r"|pg_plan|planner|standard_planner|query_tree_walker|range_table_walker|ScanKeyword)",
    ),
    ("PL/pgSQL", r"^(exec_|plpgsql_|copy_plpgsql_datums)"),
    (
        "settings (GUC)",
        r"^(guc_|set_config|find_option|GetConfigOption|AtEOXact_GUC|push_old_value"
        r"|NewGUCNestLevel|check_role|assign_role|call_string_check_hook|set_string_field)",
    ),
    ("locks, resource owners", r"^(ResourceOwner|Lock|FastPath|Relation|relation_)"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pg_profile", description=__doc__)
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scenarios", nargs="+", default=["Q4"])
    parser.add_argument("--seconds", type=float, default=8, help="sampled load per server")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument(
        "--symbols",
        type=int,
        default=0,
        metavar="N",
        help="also PostgreSQL's N costliest functions, by the largest difference between servers",
    )
    parser.add_argument(
        "--rls-off", action="store_true", help="also the API with Row-Level Security off"
    )
    args = parser.parse_args(argv)
    perf = shutil.which("perf")
    if perf is None:
        raise SystemExit("perf: not found (Debian: apt-get install linux-perf)")
    admin_url, loaded, settings = turns_setup(args, "pg-profile-")
    folder = settings.work_dir
    env = {"DATABASE_URL": loaded.url, "ENABLE_RLS": "true"}
    floor_env = {"DATABASE_URL": loaded.url, "BENCH_ORG_ID": str(loaded.organization_id)}
    rls_off_url = None
    if args.rls_off:
        # A copy of the database before any server connects to it, as bench/run makes it.
        rls_off_url = asyncio.run(
            single_tenant_copy(admin_url, f"cms_bench_{args.posts}", loaded.organization_id)
        )
    with ExitStack() as stack:
        api = servers.start("api-1w", "server", workers=1, env=env, log_dir=folder)
        stack.callback(api.stop)
        floor = servers.start("floor-1w", "bench.floor", workers=1, env=floor_env, log_dir=folder)
        stack.callback(floor.stop)
        targets = [runner.Target("api", api, loaded.url), runner.Target("floor", floor, loaded.url)]
        if rls_off_url is not None:
            rls_off_env = {"DATABASE_URL": rls_off_url, "ENABLE_RLS": "false"}
            rls_off = servers.start(
                "api-rls-off-1w", "server", workers=1, env=rls_off_env, log_dir=folder
            )
            stack.callback(rls_off.stop)
            targets.append(runner.Target("api_rls_off", rls_off, rls_off_url))
        for name in args.scenarios:
            profiles = {
                t.label: _profile(perf, t, BY_NAME[name], settings, folder) for t in targets
            }
            print(_table(name, profiles), flush=True)
            if args.symbols:
                print(_symbols_table(name, profiles, args.symbols), flush=True)
    return 0


def _profile(
    perf: str, target: runner.Target, scenario: Scenario, settings: runner.Settings, folder: Path
) -> dict[str, float]:
    """Microseconds of CPU per request: the server process, PostgreSQL, PostgreSQL's areas, and
    PostgreSQL's functions (keys `SYMBOL` + name)."""
    runner.run_wrk(target, scenario, settings, settings.warmup)
    data = folder / f"perf-{target.label}-{scenario.name}.data"
    seconds = int(settings.duration)
    recording = subprocess.Popen(  # noqa: S603 (a fixed command line)
        [perf, "record", "-a", "-F", str(FREQUENCY), "-o", str(data), "--", "sleep", str(seconds)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # wrk runs a little longer than perf samples, so every sample falls under load.
    result = runner.run_wrk(target, scenario, settings, seconds + 1)
    if recording.wait() != 0:
        raise SystemExit("perf record failed: try `perf record -a -- sleep 1` (as root?)")
    requests = result.rps * seconds
    per_request = 1e6 / FREQUENCY / requests
    server = sum(_samples(perf, data, "--pid", str(target.server.process.pid)).values())
    postgres = _samples(perf, data, "--comm", "postgres")
    kernel = set(_samples(perf, data, "--comm", "postgres", kernel_only=True))
    areas: Counter[str] = Counter()
    for symbol, count in postgres.items():
        areas[_area(symbol, symbol in kernel)] += count
    profile = {
        "server process": server * per_request,
        "PostgreSQL": sum(postgres.values()) * per_request,
    }
    profile.update((area, count * per_request) for area, count in areas.items())
    profile.update((SYMBOL + symbol, count * per_request) for symbol, count in postgres.items())
    return profile


def _samples(perf: str, data: Path, *where: str, kernel_only: bool = False) -> Counter[str]:
    """Samples by symbol of the processes `where` selects (`perf report` options)."""
    command = [perf, "report", "-i", str(data), *where, "--no-children", "-n", "--stdio"]
    command += ["--sort", "symbol", "-g", "none"]
    out = subprocess.run(  # noqa: S603 (a fixed command line)
        command, capture_output=True, text=True, check=True
    ).stdout
    found: Counter[str] = Counter()
    for line in out.splitlines():
        # "    2.20%   1234  [.] SearchCatCacheInternal"
        match = re.match(r"\s+[\d.]+%\s+(\d+)\s+\[(.)\]\s+(\S+)", line)
        if match and (not kernel_only or match[2] == "k"):
            found[match[3]] += int(match[1])
    return found


def _area(symbol: str, in_kernel: bool) -> str:
    if in_kernel:
        return "kernel (system calls, scheduling)"
    return next((name for name, pattern in AREAS if re.search(pattern, symbol)), "other")


COLUMNS = {"api": "API", "floor": "floor", "api_rls_off": "RLS off"}
SYMBOL = "symbol:"  # a profile's keys for PostgreSQL's functions, apart from its areas


def _table(name: str, profiles: dict[str, dict[str, float]]) -> str:
    api = profiles["api"]
    rows = ["server process", "PostgreSQL"]
    areas = {row for row in api if not row.startswith(SYMBOL)}
    rows += sorted(areas - set(rows), key=lambda area: -api[area])
    heads = "".join(f" {COLUMNS[label]:>8s}" for label in profiles)
    lines = [f"{name}: CPU per request, µs", f"  {'':36s}{heads}"]
    for row in rows:
        indent = "  " if row in ("server process", "PostgreSQL") else "    "
        label = f"{indent}{row}"
        cells = "".join(f" {profile.get(row, 0.0):8.1f}" for profile in profiles.values())
        lines.append(f"{label:38s}{cells}")
    return "\n".join(lines)


def _symbols_table(name: str, profiles: dict[str, dict[str, float]], count: int) -> str:
    """PostgreSQL's `count` functions whose CPU per request differs most between the servers."""
    symbols = {key for profile in profiles.values() for key in profile if key.startswith(SYMBOL)}

    def spread(key: str) -> float:
        values = [profile.get(key, 0.0) for profile in profiles.values()]
        return max(values) - min(values)

    heads = "".join(f" {COLUMNS[label]:>8s}" for label in profiles)
    lines = [f"{name}: PostgreSQL's functions, µs per request", f"  {'':46s}{heads}"]
    for key in sorted(symbols, key=spread, reverse=True)[:count]:
        cells = "".join(f" {profile.get(key, 0.0):8.1f}" for profile in profiles.values())
        lines.append(f"  {key.removeprefix(SYMBOL)[:46]:46s}{cells}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
