"""Measuring scenarios over HTTP: servers side by side, wrk against each in turn, usage sampled.

For each scenario every target gets a warm-up run, then the targets take turns for the measured
time, in `rounds` runs each (the order rotates from one scenario to the next), so a noisy moment on
the shared machine hits the API and the floor alike. A target's runs are pooled into one result.
A target is its label and its number of workers: the one-worker and the N-worker API take their
turns side by side, each with its own floor.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench import wrk
from bench.machine import PostgresCpu
from bench.scenarios import SCENARIOS, Scenario
from bench.servers import Sampler, Server, Usage


@dataclass(frozen=True)
class Target:
    """A server to measure, and the database it serves."""

    label: str  # "api", "floor", "api_rls_off"
    server: Server
    database_url: str
    # The scenarios it is measured on (empty: every one).
    only: tuple[str, ...] = ()

    @property
    def floor(self) -> bool:
        return self.label == "floor"

    @property
    def key(self) -> tuple[str, int]:
        """The target among those measured together: the API with one worker and with N are two."""
        return (self.label, self.server.workers)


@dataclass(frozen=True)
class Settings:
    duration: float
    warmup: float
    rounds: int
    connections: int
    api_key: str
    read_ids: list[str]
    write_ids: list[str]
    work_dir: Path
    log: Callable[[str], None] = print


async def revisions(url: str, ids: list[str]) -> list[int]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT id::text, revision FROM cms_documents WHERE id = ANY($1::uuid[])",
            [uuid.UUID(i) for i in ids],
        )
    finally:
        await conn.close()
    found = {row["id"]: row["revision"] for row in rows}
    return [found[i] for i in ids]


# Write runs: each target writes posts of its own, a share of `Settings.write_ids` (1024 posts),
# given out by the order in which targets first write. A post another target wrote last is in the state that
# target's writes left it (the floor does not keep the reference index or the API's content
# hash), and the first write to it costs more: in turns of W1, a build measured after the floor
# lost 15-25% against the same build measured before it.
WRITE_SHARES = 6
_write_shares: dict[tuple[str, int], int] = {}


def _write_ids(target: Target, settings: Settings) -> list[str]:
    share = _write_shares.setdefault(target.key, len(_write_shares)) % WRITE_SHARES
    size = len(settings.write_ids) // WRITE_SHARES
    return settings.write_ids[share * size : (share + 1) * size]


def _spec_file(target: Target, scenario: Scenario, settings: Settings) -> Path:
    ids = _write_ids(target, settings) if scenario.kind == "write" else settings.read_ids
    current = asyncio.run(revisions(target.database_url, ids)) if scenario.kind == "write" else []
    values = wrk.spec(
        scenario,
        floor=target.floor,
        authorization=f"Bearer {settings.api_key}",
        ids=ids,
        revisions=current,
        threads=settings.connections,
    )
    path = settings.work_dir / f"wrk-{target.label}-{target.server.workers}w-{scenario.name}.lua"
    return wrk.write_spec(path, values)


def measure(
    targets: list[Target],
    settings: Settings,
    pg_cpu: PostgresCpu,
    scenarios: tuple[Scenario, ...] = SCENARIOS,
    *,
    tag: str | None = None,
) -> list[dict[str, Any]]:
    """Every scenario on every target: a warm-up each, then `rounds` turns of measured runs.

    Returns one record per scenario and target, the rounds pooled, with `tag` as its `pass` when
    given (`report.WORKERS_TURNS`: the one-worker and N-worker servers measured side by side).
    """
    records = []
    for turn, scenario in enumerate(scenarios):
        order = targets[turn % len(targets) :] + targets[: turn % len(targets)]
        order = [t for t in order if not t.only or scenario.name in t.only]
        for target in order:
            if settings.warmup > 0:
                run_wrk(target, scenario, settings, settings.warmup)
        runs: dict[tuple[str, int], list[tuple[wrk.Result, Usage, float | None]]] = {
            target.key: [] for target in order
        }
        for _ in range(settings.rounds):
            for target in order:
                seconds = settings.duration / settings.rounds
                pg_before = pg_cpu.read()
                with Sampler(target.server) as usage:
                    result = run_wrk(target, scenario, settings, seconds)
                runs[target.key].append((result, usage, PostgresCpu.used(pg_before, pg_cpu.read())))
        for target in order:
            done = runs[target.key]
            result = wrk.pool([r for r, _, _ in done])
            pg = [p for _, _, p in done]
            pg_seconds = None if any(p is None for p in pg) else sum(p or 0.0 for p in pg)
            record = {
                "scenario": scenario.name,
                "target": target.label,
                "workers": target.server.workers,
                **result.to_json(),
                "peak_rss_mb": round(max(u.peak_rss_mb for _, u, _ in done), 1),
                "server_cpu_seconds": round(sum(u.cpu_seconds for _, u, _ in done), 2),
                "postgres_cpu_seconds": None if pg_seconds is None else round(pg_seconds, 2),
                # Each turn's throughput in order: turn i of every target is of the same round.
                "turns_rps": [round(r.rps, 1) for r, _, _ in done],
                **({"pass": tag} if tag else {}),
            }
            records.append(record)
            settings.log(
                f"  {scenario.name} {target.label:<11} {target.server.workers}w"
                f" {result.rps:8.1f} req/s  p50 {result.percentile_ms(50):6.1f} ms"
                f"  p99 {result.percentile_ms(99):6.1f} ms  errors {result.errors}"
                f"  rss {record['peak_rss_mb']:5.0f} MB"
            )
    return records


def run_wrk(target: Target, scenario: Scenario, settings: Settings, seconds: float) -> wrk.Result:
    if scenario.kind == "write":
        # Let requests a previous run left in flight finish before reading the revisions.
        time.sleep(0.5)
    return wrk.run(
        target.server.base_url,
        _spec_file(target, scenario, settings),
        connections=settings.connections,
        duration=seconds,
    )


def same_rows(
    api: Server, other: Server, api_key: str, read_ids: list[str], *, floor: bool = True
) -> dict[str, bool]:
    """Whether the API and `other` (the floor, or with `floor=False` another API server) return the
    same JSON for each read scenario."""
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    checks: dict[str, bool] = {}
    with httpx.Client(timeout=30) as client:
        for scenario in SCENARIOS:
            if scenario.kind == "write":
                continue
            variables = [{"id": i} for i in read_ids[:20]] if scenario.kind == "by_id" else [None]
            same = True
            for values in variables:
                body = scenario.body(values)
                ours = client.post(f"{api.base_url}/graphql", content=body, headers=headers)
                if floor:
                    theirs = client.post(f"{other.base_url}{scenario.floor_path}", content=body)
                else:
                    theirs = client.post(f"{other.base_url}/graphql", content=body, headers=headers)
                same = same and ours.status_code == 200 and ours.json() == theirs.json()
            checks[scenario.name] = same
    return checks


def profile(
    server: Server,
    scenario: Scenario,
    settings: Settings,
    *,
    output: Path,
    signal_start: int,
    signal_stop: int,
) -> dict[str, Any]:
    """Run `scenario` against a profiled server: warm up, then profile the measured run."""
    target = Target("api", server, "")
    spec_file = _spec_file(target, scenario, settings)
    if settings.warmup > 0:
        wrk.run(
            server.base_url, spec_file, connections=settings.connections, duration=settings.warmup
        )
    server.process.send_signal(signal_start)
    result = wrk.run(
        server.base_url, spec_file, connections=settings.connections, duration=settings.duration
    )
    server.process.send_signal(signal_stop)
    deadline = time.monotonic() + 60
    while not output.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the profiled server wrote no profile; see {server.log.name}")
        time.sleep(0.2)
    return result.to_json()
