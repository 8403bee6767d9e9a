"""A background loop that waits for an event with a time limit stops when it is cancelled."""

from __future__ import annotations

import asyncio

import pytest

from server.waiting import set_within


async def test_it_tells_a_set_event_from_the_time_running_out() -> None:
    event = asyncio.Event()
    assert not await set_within(event, 0.01)
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await set_within(event, 5)


async def test_a_cancellation_that_comes_as_the_event_is_set_is_not_lost() -> None:
    """The event set, and the waiting loop cancelled, in the same turn of the event loop: the loop
    ends (with `asyncio.wait_for` on Python 3.11 it went on waiting)."""
    event = asyncio.Event()
    turns = 0

    async def loop() -> None:
        nonlocal turns
        while True:
            turns += 1
            await set_within(event, 5)
            event.clear()

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)  # the loop waits
    event.set()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=2)
    assert done, f"the loop went on after its cancellation ({turns} turns)"
    assert turns == 1
    with pytest.raises(asyncio.CancelledError):
        task.result()
