"""Driving a server with wrk: a fixed number of connections for a fixed time, one scenario at a time.

wrk (Debian's package) runs `bench/wrk.lua` with one thread per connection; the spec it loads is a
Lua table written here: the request body, split where a post id or a revision goes.
"""

from __future__ import annotations

import bisect
import itertools
import json
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.scenarios import Scenario, update_variables

LUA_SCRIPT = Path(__file__).with_name("wrk.lua")
_ID = "00000000-0000-4000-8000-0000000000ff"
_REVISION = 987654321
_RATING = 1234.5
# W1's runs, numbered from the clock so that runs of another process differ too (`spec`).
_RUNS = itertools.count(int(time.time()))


@dataclass(frozen=True)
class Result:
    """One wrk run, or several pooled: latency percentiles in microseconds by level (1-99.9)."""

    requests: int
    seconds: float
    quantiles: tuple[tuple[float, float], ...]
    max_ms: float
    errors: int
    # CPU time wrk itself used, to show it was not the bottleneck.
    wrk_cpu_seconds: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile_ms(self, level: float) -> float:
        return next((value for at, value in self.quantiles if at >= level), 0.0) / 1000

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "rps": round(self.rps, 1),
            "p50_ms": round(self.percentile_ms(50), 2),
            "p90_ms": round(self.percentile_ms(90), 2),
            "p99_ms": round(self.percentile_ms(99), 2),
            "max_ms": self.max_ms,
            "errors": self.errors,
            "wrk_cpu_seconds": round(self.wrk_cpu_seconds, 2),
        }


def pool(results: list[Result]) -> Result:
    """Several runs as one: totals added, percentiles of all their requests together.

    Each run's latency distribution is known at its percentile levels; the pooled one weighs each
    run by its number of requests.
    """
    if len(results) == 1:
        return results[0]
    total = sum(r.requests for r in results) or 1
    levels = [level for level, _ in results[0].quantiles]
    values = sorted({value for r in results for _, value in r.quantiles})

    curves = [([v for _, v in r.quantiles], [at for at, _ in r.quantiles]) for r in results]

    def share_below(value: float) -> float:
        below = 0.0
        for r, (run_values, run_levels) in zip(results, curves, strict=True):
            index = bisect.bisect_right(run_values, value)
            below += r.requests * (run_levels[index - 1] if index else 0.0)
        return below / total

    quantiles = tuple(
        (level, next((v for v in values if share_below(v) >= level), values[-1]))
        for level in levels
    )
    return Result(
        requests=sum(r.requests for r in results),
        seconds=sum(r.seconds for r in results),
        quantiles=quantiles,
        max_ms=max(r.max_ms for r in results),
        errors=sum(r.errors for r in results),
        wrk_cpu_seconds=sum(r.wrk_cpu_seconds for r in results),
    )


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (bench/run does it)")
    return found


def spec(
    scenario: Scenario,
    *,
    floor: bool,
    authorization: str | None,
    ids: list[str],
    revisions: list[int],
    threads: int,
) -> dict[str, Any]:
    """What `wrk.lua` needs to send `scenario` to the API (`floor=False`) or to the floor."""
    path = scenario.floor_path if floor else "/graphql"
    out: dict[str, Any] = {"kind": scenario.kind, "path": path, "threads": threads}
    if not floor and authorization:
        out["authorization"] = authorization
    if scenario.kind == "fixed":
        out["body"] = scenario.body().decode()
    elif scenario.kind == "by_id":
        out["before"], out["after"] = scenario.body({"id": _ID}).decode().split(_ID)
        out["ids"] = ids
    else:
        update = scenario.body(update_variables(_ID, _REVISION, _RATING)).decode()
        before, rest = update.split(_ID)
        middle, rest = rest.split(str(_RATING))
        after, end = rest.split(str(_REVISION))
        out.update(update_before=before, update_middle=middle, update_after=after, update_end=end)
        publish = scenario.body({"id": _ID}, second=True).decode()
        out["publish_before"], out["publish_after"] = publish.split(_ID)
        out["publish_path"] = f"{path}/publish" if floor else path
        out["ids"] = ids
        out["revisions"] = revisions
        # A fraction of its own added to every rating this run sends: each run restarts its
        # steps, and a save of the rating a post got from the run before would be a save of the
        # data as it is, which writes nothing (and leaves the publish after it no saved draft).
        out["rating_offset"] = (next(_RUNS) % 9900 + 100) / 1_000_000
    return out


def write_spec(path: Path, values: dict[str, Any]) -> Path:
    path.write_text("return " + _lua(values) + "\n")
    return path


def run(
    base_url: str,
    spec_file: Path,
    *,
    connections: int,
    duration: float,
) -> Result:
    """Run wrk for `duration` seconds with `connections` connections (one thread each)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    completed = subprocess.run(  # noqa: S603 (a fixed command line)
        [
            wrk_binary(),
            f"--threads={connections}",
            f"--connections={connections}",
            f"--duration={max(1, round(duration))}s",
            # Slow responses are measured, not dropped as timeouts.
            "--timeout=30s",
            f"--script={LUA_SCRIPT}",
            base_url,
            "--",
            str(spec_file),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed: {completed.stderr.strip() or completed.stdout.strip()}")
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    return Result(
        requests=summary["requests"],
        seconds=summary["duration_us"] / 1e6,
        quantiles=tuple((float(level), float(value)) for level, value in summary["quantiles"]),
        max_ms=summary["max_us"] / 1000,
        errors=summary["socket_errors"]
        + summary["timeouts"]
        + summary["http_errors"]
        + summary["failed"],
        wrk_cpu_seconds=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
    )


def _lua(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, list):
        return "{" + ", ".join(_lua(item) for item in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key} = {_lua(item)}" for key, item in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as Lua")
