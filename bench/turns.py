"""Two servers in alternating short turns, with the CPU per request of each part of the machine:
what `bench.rls_turns` and `bench.pooler_turns` share.

Each turn runs wrk against one server at a time, the two in alternating order, and sums per
server the requests and the CPU time that PostgreSQL (every process of the server, when it runs
on this machine), the server's worker and any other process named (PgBouncer) spent during its
turns. A ratio that moved can then be told from a cost that moved.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import psutil

from bench import runner, servers
from bench.machine import PostgresCpu
from bench.scenarios import Scenario

POSTGRES = "PostgreSQL"
WORKER = "the worker"


@dataclass
class Turns:
    """One server's turns: requests a second, requests, and CPU seconds by part of the machine."""

    rps: list[float] = field(default_factory=list)
    requests: int = 0
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    def per_request_us(self, part: str) -> float:
        seconds = self.cpu_seconds.get(part, 0.0)
        return seconds / self.requests * 1e6 if self.requests else 0.0


def alternate(
    targets: list[runner.Target],
    scenario: Scenario,
    settings: runner.Settings,
    turns: int,
    postgres: PostgresCpu,
    others: dict[str, psutil.Process] | None = None,
) -> dict[str, Turns]:
    """`turns` turns of each target (after a warm-up each), by label."""
    others = others or {}
    for target in targets:
        runner.run_wrk(target, scenario, settings, settings.warmup)
    measured = {target.label: Turns() for target in targets}
    for turn in range(turns):
        for target in targets if turn % 2 == 0 else targets[::-1]:
            before = postgres.read()
            others_before = {name: _cpu(process) for name, process in others.items()}
            with servers.Sampler(target.server) as usage:
                result = runner.run_wrk(target, scenario, settings, settings.duration)
            of = measured[target.label]
            of.rps.append(result.rps)
            of.requests += result.requests
            used = {
                POSTGRES: PostgresCpu.used(before, postgres.read()) or 0.0,
                WORKER: usage.cpu_seconds,
                **{name: _cpu(p) - others_before[name] for name, p in others.items()},
            }
            for part, seconds in used.items():
                of.cpu_seconds[part] = of.cpu_seconds.get(part, 0.0) + seconds
    return measured


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def summary(name: str, what: str, first: Turns, second: Turns, labels: tuple[str, str]) -> str:
    """`first` / `second` as one line: the ratio of the summed requests, the median and range of
    the turns' ratios, each one's mean throughput and its CPU per request by part."""
    ratios = [a / b for a, b in zip(first.rps, second.rps, strict=True) if b]
    parts = ", ".join(
        f"{part} {first.per_request_us(part):.0f} / {second.per_request_us(part):.0f}"
        for part in first.cpu_seconds
    )
    return (
        f"{name}: {what} {sum(first.rps) / sum(second.rps):.3f}"
        f" (median of the turns {statistics.median(ratios):.2f},"
        f" {min(ratios):.2f}-{max(ratios):.2f}); {labels[0]} {statistics.mean(first.rps):.0f}"
        f" req/s, {labels[1]} {statistics.mean(second.rps):.0f} req/s; CPU µs a request,"
        f" {labels[0]} / {labels[1]}: {parts}"
    )
