"""Published Q2 over GET, from the API directly and through Varnish (cache hits).

Q2 reads the published perspective, so sent with GET by a published-only key it is
`Cache-Control: public` with surrogate keys (`docs/delivery.md`). Varnish runs with the project's
VCL (`deploy/varnish.vcl`) in front of the one-worker API; its warm-up fills the cache, so the
measured run is hits only. The API direct is the same GET, which pays for the surrogate keys.
Needs Debian's `varnish` and `varnish-modules` (`bench/run` installs them).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench import wrk
from bench.machine import PostgresCpu
from bench.scenarios import SCENARIOS
from bench.servers import Server, free_port
from server.config import PROJECT_ROOT
from server.engine.postgres import PostgresAdapter

VCL = PROJECT_ROOT / "deploy" / "varnish.vcl"
SCENARIO = "Q2-GET"
Q2 = next(s for s in SCENARIOS if s.name == "Q2")


def path() -> str:
    return "/graphql?" + urllib.parse.urlencode({"query": Q2.query})


async def published_key(url: str, organization_id: Any) -> str:
    adapter = PostgresAdapter(url, pool_size=1)
    await adapter.connect()
    try:
        async with adapter.system_context() as tx:
            _, key = await adapter.create_api_key(
                tx,
                organization_id=organization_id,
                name="bench-published",
                role="viewer",
                published_only=True,
                created_by="bench",
            )
    finally:
        await adapter.disconnect()
    return str(key)


@contextmanager
def varnish(backend_port: int) -> Iterator[str]:
    """varnishd with the project's VCL on a free port, its backend the API on `backend_port`."""
    varnishd = shutil.which("varnishd") or "/usr/sbin/varnishd"
    if not Path(varnishd).exists():
        raise SystemExit("varnishd is missing: apt-get install varnish varnish-modules")
    workdir = Path(tempfile.mkdtemp(prefix="bench-varnish-"))
    workdir.chmod(0o755)  # varnishd's own user reads the VCL
    vcl = workdir / "bench.vcl"
    vcl.write_text(VCL.read_text().replace('.port = "8000"', f'.port = "{backend_port}"'))
    vcl.chmod(0o644)
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 (a fixed command line)
        [varnishd, "-F", "-n", str(workdir / "n"), "-a", f"127.0.0.1:{port}", "-f", str(vcl),
         "-s", "malloc,256m"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def measure(
    api: Server,
    loaded: Any,
    settings: Any,
    pg_cpu: PostgresCpu,
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    """Q2 over GET: the API direct and through Varnish, one record each (scenario `Q2-GET`)."""
    key = asyncio.run(published_key(loaded.url, loaded.organization_id))
    backend_port = int(api.base_url.rsplit(":", 1)[1])
    records = []
    with varnish(backend_port) as cache:
        httpx.get(cache + path(), headers={"Authorization": f"Bearer {key}"})
        checked = httpx.get(cache + path(), headers={"Authorization": f"Bearer {key}"})
        if checked.headers.get("x-cache") != "HIT":
            raise SystemExit(f"Varnish does not cache published Q2: {checked.headers}")
        for label, base in (("api_get", api.base_url), ("varnish_hit", cache)):
            spec = settings.work_dir / f"wrk-{label}-Q2-GET.lua"
            values = {
                "kind": "get",
                "path": path(),
                "authorization": f"Bearer {key}",
                "threads": settings.connections,
            }
            wrk.write_spec(spec, values)
            if settings.warmup > 0:
                wrk.run(base, spec, connections=settings.connections, duration=settings.warmup)
            pg_before = pg_cpu.read()
            result = wrk.run(
                base, spec, connections=settings.connections, duration=settings.duration
            )
            pg = PostgresCpu.used(pg_before, pg_cpu.read())
            records.append(
                {
                    "scenario": SCENARIO,
                    "target": label,
                    "workers": 1,
                    **result.to_json(),
                    "postgres_cpu_seconds": None if pg is None else round(pg, 2),
                }
            )
            log(
                f"  {SCENARIO} {label:<11} {result.rps:8.1f} req/s"
                f"  p50 {result.percentile_ms(50):6.1f} ms  p99 {result.percentile_ms(99):6.1f} ms"
                f"  errors {result.errors}"
            )
    return records


def report_lines(results: dict[str, Any]) -> list[str]:
    """The README's lines for the cached run, when it ran."""
    runs = {r["target"]: r for r in results.get("runs", []) if r["scenario"] == SCENARIO}
    if set(runs) != {"api_get", "varnish_hit"}:
        return []
    api, hit = runs["api_get"], runs["varnish_hit"]
    return [
        "",
        "Published Q2 over GET with a published-only key (`Cache-Control: public`, surrogate"
        " keys), one worker; Varnish with `deploy/varnish.vcl` in front, measured on hits:",
        "",
        "| Q2 over GET | req/s | p50 / p99 ms | errors |",
        "|---|---:|---:|---:|",
        *(
            f"| {name} | {run['rps']:.0f} | {run['p50_ms']:.1f} / {run['p99_ms']:.1f}"
            f" | {run['errors']} |"
            for name, run in (("the API direct", api), ("through Varnish (hit)", hit))
        ),
    ]
