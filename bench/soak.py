"""`python -m bench.soak`: does a server process give back what live schema changes cost?

    python -m bench.soak                  # 500 changes, about 10 minutes
    python -m bench.soak --changes 100    # a quick look

One API process (`python -m server serve`, as `bench/run` starts it) on a fresh database of its own
(`cms_soak`, on DATABASE_URL's server or the embedded PostgreSQL 18), an instance-admin key, then N
times: `registerSchemaType` of a `note` type that differs from the last one, and a read of it, so
the process builds and serves the new schema. The process's RSS is sampled every few changes; the
report is the RSS every 50 changes and the slope after the warm-up (least squares). A process that
keeps no replaced schema draws a flat line. Each change renames the type's last field, so the
schema keeps its size; `--growing` adds a field instead (the schema, and with it the process, then
grows by what the fields themselves cost). The result replaces its section of bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import psutil

from bench import machine, report, servers
from bench.cli import README, RESULTS, _admin_url
from bench.load import drop_database, recreate_database
from server.engine.postgres import PostgresAdapter

DATABASE = "cms_soak"
ACTOR = "soak"
TABLE_EVERY = 50
SAMPLE_EVERY = 10
SLOPE_TARGET_KB = 20.0
DEFAULT_WARMUP = 100
REGISTER = "mutation($d: JSON!) { registerSchemaType(definition: $d) { name } }"
READ = "{ allNote(limit: 1) { id } }"
BEGIN = "<!-- soak -->"
END = "<!-- end of soak -->"


@dataclass(frozen=True)
class Soak:
    """What one soak measured: RSS (MB) after each sampled number of changes."""

    changes: int
    warmup: int
    growing: bool
    samples: dict[int, float]
    seconds: float
    date: str
    commit: str

    def arguments(self) -> list[str]:
        """The command-line arguments that repeat this soak."""
        return [
            f"--changes {self.changes}",
            *([f"--warmup {self.warmup}"] if self.warmup != DEFAULT_WARMUP else []),
            *(["--growing"] if self.growing else []),
        ]

    def slope_kb(self) -> float:
        """RSS growth per change after the warm-up, in KB (least squares over the samples)."""
        points = [(n, mb * 1024) for n, mb in self.samples.items() if n >= self.warmup]
        mean_n = sum(n for n, _ in points) / len(points)
        mean_kb = sum(kb for _, kb in points) / len(points)
        spread = sum((n - mean_n) ** 2 for n, _ in points)
        return sum((n - mean_n) * (kb - mean_kb) for n, kb in points) / spread


def note(change: int, *, growing: bool) -> dict[str, Any]:
    """The `note` type of a change: one field more than the last, or its last field renamed."""
    extra = range(change + 1) if growing else (change,)
    return {
        "type": "document",
        "name": "note",
        "title": "Note",
        "fields": [
            {"name": "title", "type": "string"},
            *({"name": f"extra{i}", "type": "number"} for i in extra),
        ],
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--changes", type=int, default=500, help="schema changes (default 500)")
    parser.add_argument(
        "--warmup",
        type=int,
        default=DEFAULT_WARMUP,
        help=f"changes before the slope is measured (default {DEFAULT_WARMUP})",
    )
    parser.add_argument(
        "--growing", action="store_true", help="add a field per change instead of renaming one"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.changes < args.warmup + 2 * SAMPLE_EVERY:
        raise SystemExit("--changes must leave a few samples after --warmup")
    folder = RESULTS / "soak"
    folder.mkdir(parents=True, exist_ok=True)
    admin_url = _admin_url()
    url = asyncio.run(recreate_database(admin_url, DATABASE))
    try:
        key = asyncio.run(_instance_admin_key(url))
        server = servers.start(
            "api-soak", "server", workers=1, env={"DATABASE_URL": url}, log_dir=folder
        )
        try:
            soak = run(server, key, changes=args.changes, warmup=args.warmup, growing=args.growing)
        finally:
            server.stop()
    finally:
        asyncio.run(drop_database(admin_url, DATABASE))
    (folder / "results.json").write_text(json.dumps(soak.__dict__, indent=2))
    section = render(soak)
    print(section)
    report.replace_section(README, BEGIN, END, section)
    print(f"wrote its section of {README.relative_to(README.parents[1])}")
    return 0 if soak.slope_kb() < SLOPE_TARGET_KB else 1


async def _instance_admin_key(url: str) -> str:
    adapter = PostgresAdapter(url, pool_size=1)
    await adapter.connect()  # migrates and installs Row-Level Security
    try:
        async with adapter.system_context() as tx:
            org = await adapter.create_organization(tx, name=ACTOR, slug=ACTOR, created_by=ACTOR)
            _, secret = await adapter.create_api_key(
                tx, organization_id=org.id, name=ACTOR, role="owner", instance_admin=True
            )
    finally:
        await adapter.disconnect()
    return secret


def run(server: servers.Server, key: str, *, changes: int, warmup: int, growing: bool) -> Soak:
    """Change the schema `changes` times, reading after each change, and sample the RSS."""
    process = psutil.Process(server.process.pid)
    headers = {"Authorization": f"Bearer {key}"}
    samples: dict[int, float] = {}
    started = time.monotonic()
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client:

        def post(query: str, variables: dict[str, Any] | None = None) -> None:
            body = client.post("/graphql", json={"query": query, "variables": variables}).json()
            if "errors" in body:
                raise RuntimeError(f"{query}: {body['errors']}")

        # Change 0 registers the type: the start of the line.
        for change in range(changes + 1):
            post(REGISTER, {"d": note(change, growing=growing)})
            post(READ)
            if change % SAMPLE_EVERY == 0:
                samples[change] = process.memory_info().rss / 2**20
            if change % TABLE_EVERY == 0:
                print(f"{change:5d} changes: RSS {samples[change]:.1f} MB", flush=True)
    seconds = time.monotonic() - started
    return Soak(changes, warmup, growing, samples, seconds, date, machine.commit())


def render(soak: Soak) -> str:
    """The README section: the RSS every 50 changes and the slope against the target."""
    kind = "one more field each" if soak.growing else "the last field renamed each time"
    slope = soak.slope_kb()
    verdict = "met" if slope < SLOPE_TARGET_KB else "**missed**"
    rows = [f"| {n} | {mb:.1f} |" for n, mb in soak.samples.items() if n % TABLE_EVERY == 0]
    return "\n".join(
        [
            "### Memory across live schema changes",
            "",
            f"- **Date**: {soak.date}; **commit** {soak.commit}",
            "",
            f"`python -m bench.soak {' '.join(soak.arguments())}`: {soak.changes} changes of the "
            f"`note` type ({kind}), each followed by a read; "
            f"RSS of the serving process; {soak.seconds:.0f} s in all.",
            "",
            "| changes | RSS MB |",
            "|---:|---:|",
            *rows,
            "",
            f"Slope after {soak.warmup} changes of warm-up: **{slope:.1f} KB per change** "
            f"(target < {SLOPE_TARGET_KB:.0f}): {verdict}.",
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
