"""The results as Markdown, and bench/README.md's section for the dataset size rewritten in place.

Each size has its own section between two markers, so the default run and the scale run keep each
other's latest results; everything between the markers comes from `results.json`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bench.scenarios import SCENARIOS

P99_TARGET_MS = 50.0
P50_TARGET_MS = 20.0
SCALE = 1_000_000


def _begin(posts: int) -> str:
    return f"<!-- results: {posts} posts -->"


def _end(posts: int) -> str:
    return f"<!-- end of results: {posts} posts -->"


def update_readme(path: Path, posts: int, section: str) -> None:
    """Replace this size's section of the README (or append it), leaving the rest as it is."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{_begin(posts)}\n{section.strip()}\n{_end(posts)}"
    pattern = re.compile(re.escape(_begin(posts)) + r".*?" + re.escape(_end(posts)), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def _run(results: dict[str, Any], scenario: str, target: str, workers: int) -> dict[str, Any]:
    for run in results["runs"]:
        if (run["scenario"], run["target"], run["workers"]) == (scenario, target, workers):
            return dict(run)
    return {}


def _ratio(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    if not a or not b or not b.get("rps"):
        return None
    return float(a["rps"]) / float(b["rps"])


def _cpu_per_request(run: dict[str, Any]) -> float | None:
    """Server plus PostgreSQL CPU seconds per request."""
    if not run or not run["requests"] or run.get("postgres_cpu_seconds") is None:
        return None
    return (run["server_cpu_seconds"] + run["postgres_cpu_seconds"]) / run["requests"]


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


def _statements(results: dict[str, Any], name: str) -> str:
    counts = results["counts"][name]["per_request"]
    if name == "W1":
        updates, publishes = sorted(set(counts[0::2])), sorted(set(counts[1::2]))
        return f"{'/'.join(map(str, updates))} + {'/'.join(map(str, publishes))}"
    return "/".join(str(c) for c in sorted(set(counts)))


def _mark(ok: bool) -> str:
    return "met" if ok else "**missed**"


def section(results: dict[str, Any]) -> str:
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
        "",
        f"Throughput and latency, one worker and {workers} workers"
        " (ours = `python -m server serve`, floor = `bench/floor.py`):",
        "",
        "| scenario | ours req/s | floor req/s | ours / floor | ours p50 / p99 ms"
        f" | floor p50 / p99 ms | ours req/s ({workers}w) | floor req/s ({workers}w)"
        f" | ours / floor ({workers}w) | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario in SCENARIOS:
        name = scenario.name
        api, floor = _run(results, name, "api", 1), _run(results, name, "floor", 1)
        api_n, floor_n = _run(results, name, "api", workers), _run(results, name, "floor", workers)
        errors = sum(run.get("errors", 0) for run in results["runs"] if run["scenario"] == name)
        lines.append(
            f"| {name} | {api.get('rps', 0):.0f} | {floor.get('rps', 0):.0f}"
            f" | {_fmt(_ratio(api, floor))}"
            f" | {api.get('p50_ms', 0):.1f} / {api.get('p99_ms', 0):.1f}"
            f" | {floor.get('p50_ms', 0):.1f} / {floor.get('p99_ms', 0):.1f}"
            f" | {api_n.get('rps', 0):.0f} | {floor_n.get('rps', 0):.0f}"
            f" | {_fmt(_ratio(api_n, floor_n))} | {errors} |"
        )
    lines += [
        "",
        "Where the time goes (one worker): SQL statements per request, counted in process"
        " (credential lookup + org scope = 2, then the scenario's own; W1 = update + publish);"
        " throughput with Row-Level Security on / off, and in brackets the same ratio from CPU time"
        " per request (server + PostgreSQL), which contention on a shared machine disturbs less;"
        " CPU per request of the server process and of PostgreSQL; the worker's peak RSS under"
        " load:",
        "",
        "| scenario | statements / request | RLS on / off: throughput (by CPU time)"
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
    lines += ["", *_targets(results), "", *_profile(results), "", *_explain(results)]
    wrk_cpu = max(
        (run["wrk_cpu_seconds"] / run["seconds"] for run in results["runs"] if run["seconds"]),
        default=0.0,
    )
    lines += [
        "",
        f"wrk itself used at most {wrk_cpu:.0%} of one core in any run. Same rows: the API and"
        " the floor returned identical JSON for "
        + ", ".join(name for name, same in results.get("same_rows", {}).items() if same)
        + ". Raw numbers, plans and the full profile: `bench/results/"
        + f"{posts}/` (results.json, explain.txt, profile-q2.txt / .html).",
    ]
    return "\n".join(lines)


def _targets(results: dict[str, Any]) -> list[str]:
    posts, workers = results["meta"]["posts"], results["meta"]["workers"]
    rows = ["Targets:", "", "| target | measured | |", "|---|---|---|"]
    budget = []
    for scenario in SCENARIOS:
        if scenario.is_list:
            own = max(results["counts"][scenario.name]["per_request"]) - 2
            budget.append(f"{scenario.name} {own} ≤ {scenario.depth + 2}")
    ok = all(
        max(results["counts"][s.name]["per_request"]) - 2 <= s.depth + 2
        for s in SCENARIOS
        if s.is_list
    )
    rows.append(
        "| statements per list request ≤ depth + 2 (beyond the fixed 2), whatever the page size"
        f" | {', '.join(budget)} | {_mark(ok)} |"
    )
    ratio = _ratio(_run(results, "Q2", "api", 1), _run(results, "Q2", "floor", 1))
    rows.append(
        f"| Q2 ours / floor ≥ 0.5 (one worker) | {_fmt(ratio)} | {_mark((ratio or 0) >= 0.5)} |"
    )
    if posts >= SCALE:
        names, key, limit, label = ("Q1", "Q3", "Q4"), "p50_ms", P50_TARGET_MS, "p50"
    else:
        names, key, limit, label = ("Q1", "Q2", "Q3", "Q4"), "p99_ms", P99_TARGET_MS, "p99"
    values = {n: _run(results, n, "api", 1).get(key, 0.0) for n in names}
    rows.append(
        f"| {', '.join(names)} {label} < {limit:g} ms at {posts:,} posts (one worker)"
        f" | {', '.join(f'{n} {v:.1f}' for n, v in values.items())}"
        f" | {_mark(all(v < limit for v in values.values()))} |"
    )
    rls = {
        s.name: _ratio(_run(results, s.name, "api", 1), _run(results, s.name, "api_rls_off", 1))
        for s in SCENARIOS
    }
    rows.append(
        "| RLS on / off throughput ≥ 0.95 | "
        + ", ".join(f"{n} {_fmt(v)}" for n, v in rls.items())
        + f" | {_mark(all((v or 0) >= 0.95 for v in rls.values()))} |"
    )
    rss = max(
        (run["peak_rss_mb"] for run in results["runs"] if run["target"] == "api"), default=0.0
    )
    rows.append(
        f"| RSS of one worker under load < 250 MB (1 and {workers} workers)"
        f" | {rss:.0f} MB at most | {_mark(rss < 250)} |"
    )
    return rows


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
