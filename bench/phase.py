"""How fast the machine runs at a moment, for reading a run's ratios: `python -m bench` records it
at the start and the end of a run.

On a shared machine the same statement's CPU time moves by half or more within an hour (Q4's, as
the request role: 71 µs, then 94-100, then 147-170, on a freshly loaded database), while a trivial
`SELECT` and a Python loop barely move: the host's memory, not its clock, is what changes, and the
reads with the largest executor start-up (the API's, with Row-Level Security) pay most for it. So
the ratios of a run say little without its phase, and two runs whose phases differ are not
comparable. The probe is a Python loop and PostgreSQL's CPU per execution of Q4's statement as
the API sends it, run by the connecting role (no Row-Level Security) one execution at a time
(`bench.statement_cpu`'s way); the statement's figure needs PostgreSQL on this machine (its
backend's `/proc` entry).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench.machine import PostgresCpu

LOOP_STEPS = 10_000_000
EXECUTIONS = 1000
ROUNDS = 3


def python_loop_seconds() -> float:
    """Seconds for a 10-million-step `while` loop: the interpreter's speed."""
    started = time.perf_counter()
    step = 0
    while step < LOOP_STEPS:
        step += 1
    return time.perf_counter() - started


async def q4_statement_us(
    url: str, api_key: str, organization: Any, post_ids: list[str]
) -> float | None:
    """µs of PostgreSQL's CPU per execution of Q4's statement (the median of the rounds), or None
    when PostgreSQL runs on another machine."""
    # Here rather than at the top: `bench.statement_cpu` imports `bench.cli`, which imports this.
    from bench import statement_cpu
    from bench.scenarios import BY_NAME

    if (await PostgresCpu.find(url)).postmaster is None:
        return None  # another machine's PostgreSQL: its backends' /proc entries are not here
    sql, arguments, _ = await statement_cpu.read_statement(url, api_key, BY_NAME["Q4"], post_ids)
    calls = statement_cpu._calls(arguments, post_ids[0], post_ids)
    figures = await statement_cpu.measure(
        url, organization, {"connecting role": None}, {"q4": sql}, calls, EXECUTIONS, ROUNDS
    )
    return statistics.median(figures["connecting role", "q4"])


async def probe(url: str, api_key: str, organization: Any, post_ids: list[str]) -> dict[str, Any]:
    statement = await q4_statement_us(url, api_key, organization, post_ids)
    return {
        "python_loop_seconds": round(python_loop_seconds(), 2),
        "q4_statement_us": None if statement is None else round(statement, 1),
    }


def line(meta: dict[str, Any]) -> str | None:
    """The README's line on the run's phase, when the run recorded one."""
    start, end = meta.get("phase_start"), meta.get("phase_end")
    if not start or not end:
        return None

    def statement(figures: dict[str, Any]) -> str:
        value = figures.get("q4_statement_us")
        return "?" if value is None else f"{value:g}"

    return (
        f"- **Machine's phase** (`bench/phase.py`): a 10-million-step Python loop"
        f" {start['python_loop_seconds']:g} s at the start of the run and"
        f" {end['python_loop_seconds']:g} s at its end; PostgreSQL's CPU per execution of Q4's"
        f" statement, as the connecting role, {statement(start)} µs and {statement(end)} µs. Runs whose"
        " phases differ are not comparable: the API's reads pay more for a slow phase than the"
        " floor's."
    )
