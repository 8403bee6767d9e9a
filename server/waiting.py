"""Waiting with a time limit in background loops: for their event, and for their end when they stop."""

from __future__ import annotations

import asyncio
import contextlib


async def set_within(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set, at most `seconds`; whether it was set.

    Not `asyncio.wait_for(event.wait(), seconds)`: on Python 3.11, a cancellation that arrives as
    the event is set is lost there (`wait_for` returns the event's result instead of raising), so a
    background loop that waits like this, stopped by cancelling it, may go on forever. The schema
    listener did, when a notification came in as it was being closed, and `close()` waited for it
    forever. `asyncio.timeout` tells the cancellation from its own deadline.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
    return event.is_set()


async def finish(task: asyncio.Task[None], seconds: float) -> None:
    """Give `task`, told to stop, `seconds` to end, then cancel it; raise what it raised.

    `asyncio.wait`, not `wait_for`: it never loses a cancellation of the caller itself.
    """
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
