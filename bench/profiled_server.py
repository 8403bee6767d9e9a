"""The API served exactly as `python -m server serve --workers 1` does, under pyinstrument.

SIGUSR1 starts the profiler and SIGUSR2 stops it and saves the session to the given file, so the
profile covers the load and not the start-up. The profiler samples the event loop's thread (async
mode off): time spent waiting for PostgreSQL or the network shows as the event loop's own time.
Garbage collections run inside whatever frame allocates, so they are timed separately (gc.callbacks)
and saved beside the session (`.gc.json`): count, total and longest pause per generation.

    python -m bench.profiled_server --port 8002 --output q2.pyisession
"""

from __future__ import annotations

import argparse
import gc
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from pyinstrument import Profiler


class GarbageCollections:
    """Pause times of the garbage collector, per generation."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._started = 0.0

    def record(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self._started)

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            str(generation): {
                "collections": len(pauses),
                "total_ms": round(sum(pauses) * 1000, 1),
                "max_ms": round(max(pauses, default=0.0) * 1000, 1),
            }
            for generation, pauses in self.pauses.items()
        }


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m bench.profiled_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1, choices=[1])
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    profiler = Profiler(interval=0.001, async_mode="disabled")
    collections = GarbageCollections()

    def start(*_: Any) -> None:
        if not profiler.is_running:
            gc.callbacks.append(collections.record)
            profiler.start()

    def stop(*_: Any) -> None:
        if profiler.is_running:
            session = profiler.stop()
            gc.callbacks.remove(collections.record)
            args.output.with_suffix(".gc.json").write_text(json.dumps(collections.summary()))
            # Written under another name and renamed: the reader waits for the final name.
            partial = args.output.with_suffix(".partial")
            session.save(partial)
            partial.rename(args.output)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(
        "server.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=1,
        log_level="info",
    )


if __name__ == "__main__":
    main()
