"""The results as Markdown, and bench/README.md's section for the dataset size rewritten in place.

Each size has its own section between two markers, so the default run and the scale run keep each
other's latest results; everything between the markers comes from `results.json` (the scale run's
section also from the default run's, which its ratios are compared with).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bench import cached, phase
from bench.scenarios import SCENARIOS

# The targets: one worker unless said; "the floor" is bench/floor.py measured in the same run.
RATIO_TARGETS = {"Q1": 0.7, "Q2": 0.7, "Q3": 0.8, "Q4": 0.7, "Q5": 0.7}  # ours / floor throughput
P99_TARGET_MS = 50.0
P99_SCENARIOS = ("Q1", "Q2", "Q4")
# Q3 is PostgreSQL-bound, so its p99 is held to the floor's rather than to a fixed time.
Q3_P99_OF_FLOOR = 1.3
W1_RATIO_TARGET = 0.4
RLS_TARGET = 0.95
# The API through PgBouncer in transaction mode / the API direct, every read (docs/scaling.md).
PGBOUNCER_TARGET = 0.9
READ_STATEMENTS = 1  # per read request in all, the opening inside it, whatever the depth and size
RSS_TARGET_MB = 150.0
# The scale run: its ratios are held to the default run's, its p50 to the floor's.
SCALE = 1_000_000
BASELINE_POSTS = 10_000
SCALE_RATIO_DRIFT = 0.10
SCALE_P50_OF_FLOOR = 1.2
READS = tuple(scenario.name for scenario in SCENARIOS if scenario.kind != "write")


def _begin(posts: int) -> str:
    return f"<!-- results: {posts} posts -->"


def _end(posts: int) -> str:
    return f"<!-- end of results: {posts} posts -->"


def update_readme(path: Path, posts: int, section: str) -> None:
    """Replace this size's section of the README (or append it), leaving the rest as it is."""
    replace_section(path, _begin(posts), _end(posts), section)


def replace_section(path: Path, begin: str, end: str, section: str) -> None:
    """Replace the text between the markers `begin` and `end` (or append it with them)."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{begin}\n{section.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def read_baseline(results_folder: Path) -> dict[str, Any] | None:
    """The default run's results, which the scale run compares its ratios with, if there are any."""
    path = results_folder / str(BASELINE_POSTS) / "results.json"
    if not path.exists():
        return None
    found: dict[str, Any] = json.loads(path.read_text())
    return found


# The pass in which the API and the floor with one worker and with N take their turns together:
# the two-worker target compares ratios measured in the same seconds of the machine.
WORKERS_TURNS = "workers"


def _run(
    results: dict[str, Any], scenario: str, target: str, workers: int, tag: str | None = None
) -> dict[str, Any]:
    """The first run of `target` with `workers` on `scenario`; of pass `tag` only, when given."""
    for run in results["runs"]:
        if (run["scenario"], run["target"], run["workers"]) == (scenario, target, workers) and (
            tag is None or run.get("pass") == tag
        ):
            return dict(run)
    return {}


def _turns_spread(results: dict[str, Any], scenario: str, workers: int) -> str:
    """` (least-most)` of each turn's (ours / floor with `workers`) / (ours / floor with one) in
    the side-by-side pass: how far one turn's comparison strays from the pooled one."""
    turns = [
        _run(results, scenario, target, n, WORKERS_TURNS).get("turns_rps")
        for target, n in (("api", workers), ("floor", workers), ("api", 1), ("floor", 1))
    ]
    if not all(turns):
        return ""
    quotients = [
        (api_n / floor_n) / (api_1 / floor_1)
        for api_n, floor_n, api_1, floor_1 in zip(*turns, strict=True)
        if floor_n and api_1 and floor_1
    ]
    if not quotients:
        return ""
    return f" ({min(quotients):.2f}-{max(quotients):.2f})"


def _rls_turns_spread(results: dict[str, Any], scenario: str) -> str:
    """` (least-most)` of each round's RLS on / off throughput: the two servers take their turns
    in the same rounds, so each round's quotient is a comparison of its own."""
    on, off = (
        _run(results, scenario, target, 1).get("turns_rps") for target in ("api", "api_rls_off")
    )
    quotients = [a / b for a, b in zip(on or [], off or [], strict=False) if b]
    if not quotients:
        return ""
    return f" ({min(quotients):.2f}-{max(quotients):.2f})"


def _ratio(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    if not a or not b or not b.get("rps"):
        return None
    return float(a["rps"]) / float(b["rps"])


def _cpu_per_request(run: dict[str, Any]) -> float | None:
    """Server plus PostgreSQL CPU seconds per request."""
    if not run or not run["requests"] or run.get("postgres_cpu_seconds") is None:
        return None
    return float((run["server_cpu_seconds"] + run["postgres_cpu_seconds"]) / run["requests"])


def _cpu_ratio(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    """The throughput ratio b / a that CPU time per request alone predicts."""
    cost_a, cost_b = _cpu_per_request(a), _cpu_per_request(b)
    return cost_a / cost_b if cost_a and cost_b else None


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _per_request_ms(run: dict[str, Any], key: str) -> str:
    seconds = run.get(key)
    if not run or seconds is None or not run["requests"]:
        return "n/a"
    return f"{seconds * 1000 / run['requests']:.1f}"


def _per_request(results: dict[str, Any], name: str) -> list[list[int]]:
    """The distinct numbers of statements per request, in all (W1: the draft saves', then the
    publishes')."""
    counts = results["counts"][name]["per_request"]
    requests = [counts[0::2], counts[1::2]] if name == "W1" else [counts]
    return [sorted(set(found)) for found in requests]


def _counted(results: dict[str, Any], name: str) -> list[int]:
    """The distinct numbers of statements per request, the opening included."""
    return sorted(set(results["counts"][name]["per_request"]))


def _statements(results: dict[str, Any], name: str) -> str:
    """Each request's statements in all, e.g. "3, 1" (W1: the save, the publish)."""
    return ", ".join("/".join(map(str, found)) for found in _per_request(results, name))


def _mark(ok: bool) -> str:
    return "met" if ok else "**missed**"


def section(results: dict[str, Any], *, baseline: dict[str, Any] | None = None) -> str:
    """The run's section of the README; `baseline`: the default run's results, for the scale run."""
    meta = results["meta"]
    posts, workers = meta["posts"], meta["workers"]
    seconds = meta["load_seconds"]
    loaded = f"dataset loaded in {seconds} s" if seconds else "dataset of an earlier run reused"
    lines = [
        f"### {posts:,} posts",
        "",
        f"- **Date**: {meta['date']}; **commit** {meta['commit']}",
        f"- **Machine**: {meta['cpu']}, {meta['cores']} cores, {meta['memory_gb']} GB;"
        f" {meta['os']}; Python {meta['python']}",
        f"- **PostgreSQL**: {meta['postgresql']} ("
        + ", ".join(f"{k} {v}" for k, v in sorted(meta["postgresql_settings"].items()))
        + ")",
        f"- **Load**: {meta['wrk']}, {meta['connections']} connections (one thread each); per"
        f" scenario and server a {meta['warmup']:g} s warm-up, then {meta['duration']:g} s measured"
        f" in {meta['rounds']} turns taken with the other servers; {loaded};"
        f" whole run {meta.get('total_seconds', '?')} s",
        *filter(None, [phase.line(meta)]),
        "",
        f"Throughput and latency, one worker and {workers} workers"
        " (ours = `python -m server serve`, floor = `bench/floor.py`):",
        "",
        "| scenario | ours req/s | floor req/s | ours / floor | ours p50 / p99 ms"
        f" | floor p50 / p99 ms | ours req/s ({workers}w) | floor req/s ({workers}w)"
        f" | ours / floor ({workers}w) | ours / floor (1w, in the {workers}w turns) | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario in SCENARIOS:
        name = scenario.name
        api, floor = _run(results, name, "api", 1), _run(results, name, "floor", 1)
        api_n, floor_n = _run(results, name, "api", workers), _run(results, name, "floor", workers)
        # The one-worker pair of the side-by-side pass, which the two-worker target compares.
        api_1, floor_1 = (_run(results, name, t, 1, WORKERS_TURNS) for t in ("api", "floor"))
        errors = sum(run.get("errors", 0) for run in results["runs"] if run["scenario"] == name)
        lines.append(
            f"| {name} | {api.get('rps', 0):.0f} | {floor.get('rps', 0):.0f}"
            f" | {_fmt(_ratio(api, floor))}"
            f" | {api.get('p50_ms', 0):.1f} / {api.get('p99_ms', 0):.1f}"
            f" | {floor.get('p50_ms', 0):.1f} / {floor.get('p99_ms', 0):.1f}"
            f" | {api_n.get('rps', 0):.0f} | {floor_n.get('rps', 0):.0f}"
            f" | {_fmt(_ratio(api_n, floor_n))}"
            f" | {_fmt(_ratio(api_1, floor_1))}"
            f" | {errors} |"
        )
    lines += [
        "",
        "Where the time goes (one worker): SQL statements per request in all, counted in process"
        " (a read: one, which authenticates the caller, scopes the organization and reads; W1: the"
        " draft save, a statement that opens the request (authenticates and scopes) and reads the"
        " post, then one that opens it again and writes the post while it is still the version"
        " read, the read left out when this process wrote the post last; then the publish of the"
        " draft it saved, one statement that opens the request, publishes and commits);"
        " throughput with Row-Level Security on / off, and in brackets the same ratio from CPU time"
        " per request (server + PostgreSQL), which contention on a shared machine disturbs less;"
        " CPU per request of the server process and of PostgreSQL; the worker's peak RSS under"
        " load:",
        "",
        "| scenario | statements / request (W1: save, publish) | RLS on / off: throughput (by CPU time)"
        " | ours CPU ms/req | floor CPU ms/req"
        " | PostgreSQL CPU ms/req (ours / floor) | peak RSS MB (1w) | peak RSS MB per worker"
        f" ({workers}w) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario in SCENARIOS:
        name = scenario.name
        api, floor = _run(results, name, "api", 1), _run(results, name, "floor", 1)
        off, api_n = _run(results, name, "api_rls_off", 1), _run(results, name, "api", workers)
        lines.append(
            f"| {name} | {_statements(results, name)}"
            f" | {_fmt(_ratio(api, off))} ({_fmt(_cpu_ratio(off, api))})"
            f" | {_per_request_ms(api, 'server_cpu_seconds')}"
            f" | {_per_request_ms(floor, 'server_cpu_seconds')}"
            f" | {_per_request_ms(api, 'postgres_cpu_seconds')}"
            f" / {_per_request_ms(floor, 'postgres_cpu_seconds')}"
            f" | {api.get('peak_rss_mb', 0):.0f} | {api_n.get('peak_rss_mb', 0):.0f} |"
        )
    lines += ["", *_targets(results, baseline), "", _remaining_time(results), ""]
    lines += [*_profile(results), "", *_explain(results)]
    wrk_cpu = max(
        (run["wrk_cpu_seconds"] / run["seconds"] for run in results["runs"] if run["seconds"]),
        default=0.0,
    )
    lines += [
        "",
        f"wrk itself used at most {wrk_cpu:.0%} of one core in any run. Same rows: the API and"
        " the floor returned identical JSON for "
        + ", ".join(name for name, same in results.get("same_rows", {}).items() if same)
        + "; the API with Row-Level Security on and off (on a copy holding only the documents"
        " the scenarios' organization may read) for "
        + ", ".join(name for name, same in results.get("same_rows_rls_off", {}).items() if same)
        + ". Raw numbers, plans and the full profile: `bench/results/"
        + f"{posts}/` (results.json, explain.txt, profile-q2.txt / .html).",
    ]
    lines += cached.report_lines(results)
    lines += _pgbouncer_lines(results)
    lines += _unbatched_lines(results)
    return "\n".join(lines)


def _unbatched_lines(results: dict[str, Any]) -> list[str]:
    """The README's lines for the API with each read by id alone (`READ_BATCH_MAX=1`), when it
    ran: what the batches of reads sent at once (which the floor does not make) add."""
    names = [s.name for s in SCENARIOS if _run(results, s.name, "api_unbatched", 1)]
    if not names:
        return []
    lines = [
        "",
        "The API batches the reads of documents by id that one caller sends at the same time"
        " (`server/query/batching.py`); the floor runs one statement per request. With each read"
        " alone (`READ_BATCH_MAX=1`), one worker, measured in turns with the servers above:",
        "",
        "| scenario | ours req/s | each read alone req/s | floor req/s | ours / floor"
        " | each read alone / floor | each read alone p50 / p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        api, alone = _run(results, name, "api", 1), _run(results, name, "api_unbatched", 1)
        floor = _run(results, name, "floor", 1)
        lines.append(
            f"| {name} | {api.get('rps', 0):.0f} | {alone.get('rps', 0):.0f}"
            f" | {floor.get('rps', 0):.0f} | {_fmt(_ratio(api, floor))}"
            f" | {_fmt(_ratio(alone, floor))}"
            f" | {alone.get('p50_ms', 0):.1f} / {alone.get('p99_ms', 0):.1f} |"
        )
    return lines


def _pgbouncer_ratios(results: dict[str, Any]) -> dict[str, float | None]:
    """Per scenario, the API through PgBouncer / the API direct (one worker), when it ran."""
    return {
        s.name: _ratio(_run(results, s.name, "api_pgbouncer", 1), _run(results, s.name, "api", 1))
        for s in SCENARIOS
        if _run(results, s.name, "api_pgbouncer", 1)
    }


def _pgbouncer_lines(results: dict[str, Any]) -> list[str]:
    """The README's lines for the API through PgBouncer, when it ran."""
    ratios = _pgbouncer_ratios(results)
    if not ratios:
        return []
    pool = results["meta"].get("pgbouncer_pool_size", "?")
    socket = results["meta"].get("pgbouncer_socket", "TCP on 127.0.0.1")
    same = ", ".join(name for name, same in results.get("same_rows_pgbouncer", {}).items() if same)
    lines = [
        "",
        "The API through PgBouncer in transaction mode (`DATABASE_POOL_MODE=transaction`,"
        f" `default_pool_size` {pool}, reached over {socket}, `docs/scaling.md`), one worker,"
        " measured in turns with the API direct and the others above; the same JSON as direct"
        f" for {same or 'none'}:",
        "",
        "| scenario | direct req/s | through PgBouncer req/s | PgBouncer / direct"
        " | through PgBouncer p50 / p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, value in ratios.items():
        direct = _run(results, name, "api", 1)
        pooled = _run(results, name, "api_pgbouncer", 1)
        lines.append(
            f"| {name} | {direct.get('rps', 0):.0f} | {pooled.get('rps', 0):.0f} | {_fmt(value)}"
            f" | {pooled.get('p50_ms', 0):.1f} / {pooled.get('p99_ms', 0):.1f}"
            f" | {pooled.get('errors', 0)} |"
        )
    return lines


def _value(run: dict[str, Any], key: str) -> float | None:
    value = run.get(key)
    return None if value is None else float(value)


def _listed(values: dict[str, float | None], digits: int = 2) -> str:
    return ", ".join(f"{name} {_fmt(value, digits)}" for name, value in values.items())


def _targets(results: dict[str, Any], baseline: dict[str, Any] | None) -> list[str]:
    posts, workers = results["meta"]["posts"], results["meta"]["workers"]
    rows = [
        "Targets (one worker unless said; the floor is measured in the same run):",
        "",
        "| target | measured | |",
        "|---|---|---|",
    ]

    def row(target: str, measured: str, ok: bool | None) -> None:
        # None: the run has nothing to judge the target by.
        rows.append(f"| {target} | {measured} | {'n/a' if ok is None else _mark(ok)} |")

    def ratio(
        name: str, n: int = 1, of: dict[str, Any] = results, tag: str | None = None
    ) -> float | None:
        return _ratio(_run(of, name, "api", n, tag), _run(of, name, "floor", n, tag))

    for limit in sorted(set(RATIO_TARGETS.values())):
        names = [name for name, value in RATIO_TARGETS.items() if value == limit]
        ratios = {name: ratio(name) for name in names}
        row(
            f"{', '.join(names)} ours / floor throughput ≥ {limit:g}",
            _listed(ratios),
            all((value or 0) >= limit for value in ratios.values()),
        )

    p99 = {name: _value(_run(results, name, "api", 1), "p99_ms") for name in P99_SCENARIOS}
    row(
        f"{', '.join(P99_SCENARIOS)} p99 < {P99_TARGET_MS:g} ms",
        _listed(p99, 1) + " ms",
        all(value is not None and value < P99_TARGET_MS for value in p99.values()),
    )
    ours, floor = (_value(_run(results, "Q3", target, 1), "p99_ms") for target in ("api", "floor"))
    times = ours / floor if ours is not None and floor else None
    row(
        f"Q3 p99 ≤ {Q3_P99_OF_FLOOR:g}x the floor's Q3 p99 (Q3 is PostgreSQL-bound)",
        f"{_fmt(ours, 1)} / {_fmt(floor, 1)} ms = {_fmt(times)}x",
        times is not None and times <= Q3_P99_OF_FLOOR,
    )

    if workers > 1:
        pairs = {
            s.name: (ratio(s.name, 1, tag=WORKERS_TURNS), ratio(s.name, workers, tag=WORKERS_TURNS))
            for s in SCENARIOS
        }
        row(
            f"ours / floor with {workers} workers ≥ with one (measured side by side; in brackets"
            " the least and most of the turns' quotients of the two), every scenario",
            ", ".join(
                f"{name} {_fmt(one)} → {_fmt(many)}{_turns_spread(results, name, workers)}"
                for name, (one, many) in pairs.items()
            ),
            all(
                one is not None and many is not None and many >= one for one, many in pairs.values()
            ),
        )
    else:
        row("ours / floor with N workers ≥ with one, every scenario", "no run with N > 1", None)

    if posts >= SCALE:
        target = (
            f"ours / floor at {posts:,} posts within {SCALE_RATIO_DRIFT:.0%} of the"
            f" {BASELINE_POSTS:,}-post run's, every read"
        )
        if baseline is None:
            row(target, f"no {BASELINE_POSTS // 1000}k results to compare", None)
        else:
            drift = {name: (ratio(name), ratio(name, of=baseline)) for name in READS}
            row(
                target,
                ", ".join(
                    f"{name} {_fmt(here)} vs {_fmt(there)}"
                    + (f" ({here / there - 1:+.0%})" if here is not None and there else "")
                    for name, (here, there) in drift.items()
                ),
                all(
                    here is not None
                    and there is not None
                    and abs(here - there) <= SCALE_RATIO_DRIFT * there
                    for here, there in drift.values()
                ),
            )
        p50 = {
            name: (
                _value(_run(results, name, "api", 1), "p50_ms"),
                _value(_run(results, name, "floor", 1), "p50_ms"),
            )
            for name in READS
        }
        row(
            f"p50 ≤ {SCALE_P50_OF_FLOOR:g}x the floor's p50 at {posts:,} posts, every read",
            ", ".join(
                f"{name} {_fmt(a, 1)} / {_fmt(b, 1)} ms" + (f" = {a / b:.2f}x" if a and b else "")
                for name, (a, b) in p50.items()
            ),
            all(
                a is not None and b is not None and a <= SCALE_P50_OF_FLOOR * b
                for a, b in p50.values()
            ),
        )

    rls = {
        s.name: _ratio(_run(results, s.name, "api", 1), _run(results, s.name, "api_rls_off", 1))
        for s in SCENARIOS
    }
    row(
        f"RLS on / off throughput ≥ {RLS_TARGET:g}, every scenario (W1 included; in brackets the"
        " least and most of the rounds' quotients)",
        ", ".join(
            f"{name} {_fmt(value)}{_rls_turns_spread(results, name)}" for name, value in rls.items()
        ),
        all((value or 0) >= RLS_TARGET for value in rls.values()),
    )
    w1 = ratio("W1")
    row(f"W1 ours / floor ≥ {W1_RATIO_TARGET:g}", _fmt(w1), (w1 or 0) >= W1_RATIO_TARGET)
    pooled = _pgbouncer_ratios(results)
    if pooled:
        reads = {name: pooled.get(name) for name in READS}
        row(
            f"{', '.join(READS)} through PgBouncer (transaction mode) / direct throughput"
            f" ≥ {PGBOUNCER_TARGET:g}",
            _listed(reads),
            all((value or 0) >= PGBOUNCER_TARGET for value in reads.values()),
        )

    counted = {name: _counted(results, name) for name in READS}
    measured = ", ".join(f"{name} {'/'.join(map(str, k))}" for name, k in counted.items())
    if "W1" in results["counts"]:
        save, publish = ("/".join(map(str, k)) for k in _per_request(results, "W1"))
        measured += f"; W1, for information: the draft save {save}, the publish {publish}"
    row(
        f"statements per read request: exactly {READ_STATEMENTS} in all, the opening included,"
        " whatever the depth and page size",
        measured,
        all(k == [READ_STATEMENTS] for k in counted.values()),
    )

    rss = {
        n: max(
            (
                run["peak_rss_mb"]
                for run in results["runs"]
                if run["target"] == "api" and run["workers"] == n
            ),
            default=0.0,
        )
        for n in sorted({1, workers})
    }
    row(
        f"peak RSS per worker under load < {RSS_TARGET_MB:g} MB"
        + (f" (1 and {workers} workers)" if workers > 1 else " (1 worker)"),
        ", ".join(f"{value:.0f} MB ({n}w)" for n, value in rss.items()) + " at most",
        all(0 < value < RSS_TARGET_MB for value in rss.values()),
    )
    return rows


def _remaining_time(results: dict[str, Any]) -> str:
    """One paragraph from the profile: its largest areas, and the server's own share."""
    heading = "**Where the remaining time goes**"
    profile = results.get("profile")
    if not profile or not profile.get("areas"):
        return f"{heading}: no profile was taken in this run."
    areas = profile["areas"]
    largest = ", ".join(f"{label} {share:.0%}" for label, share in areas[:3])
    server = sum(share for label, share in areas if label.startswith("server:"))
    return (
        f"{heading}: the largest areas of Q2's profile (below) are {largest}; the server's own"
        f" code takes {server:.0%} of the profile in all."
    )


def _profile(results: dict[str, Any]) -> list[str]:
    profile = results.get("profile")
    if not profile or not profile.get("areas"):
        return ["No profile was taken."]
    run = profile["run"]
    rows = [
        f"Profile of Q2 (pyinstrument, one worker, {profile['seconds']:.0f} s of the event loop's"
        f" thread at {run['rps']:.0f} req/s). Time by area, each sample counted once at the"
        " innermost area it passes through:",
        "",
        "| area | share |",
        "|---|---:|",
    ]
    rows += [f"| {label} | {share:.1%} |" for label, share in profile["areas"] if share >= 0.005]
    collections = profile.get("gc")
    if collections:
        pauses = ", ".join(
            f"generation {generation}: {c['collections']} collections, {c['total_ms']:.0f} ms"
            f" in all, longest {c['max_ms']:.0f} ms"
            for generation, c in sorted(collections.items())
        )
        rows += ["", f"Garbage collection during those {profile['seconds']:.0f} s: {pauses}."]
    rows += ["", "Top frames by own time:", "", "| frame | share |", "|---|---:|"]
    rows += [f"| `{name}` | {share:.1%} |" for name, share in profile["top_self"][:10]]
    rows += ["", "Server functions, inclusive time:", "", "| function | share |", "|---|---:|"]
    rows += [f"| `{name}` | {share:.1%} |" for name, share in profile["top_server"][:10]]
    return rows


def _explain(results: dict[str, Any]) -> list[str]:
    rows = [
        "EXPLAIN (ANALYZE, BUFFERS) of each scenario's main statement (the page query; W1: the"
        " draft save's UPDATE), replayed as the request ran it:",
        "",
        "| scenario | ours: indexes | ours: seq scans | ours ms | floor: indexes | floor ms |",
        "|---|---|---|---:|---|---:|",
    ]
    for scenario in SCENARIOS:
        found = results["explain"].get(scenario.name)
        if not found:
            continue
        api, floor = found["api"], found["floor"]
        rows.append(
            f"| {scenario.name} | {', '.join(api['indexes']) or 'none'}"
            f" | {', '.join(api['seq_scans']) or 'none'} | {api['execution_ms']:.2f}"
            f" | {', '.join(floor['indexes']) or 'none'} | {floor['execution_ms']:.2f} |"
        )
    return rows
