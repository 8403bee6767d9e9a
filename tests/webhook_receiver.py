"""A webhook receiver for the tests: a real HTTP server (uvicorn, in this event loop) that keeps
what it received and answers with the statuses it is told to."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import orjson
import uvicorn
from standardwebhooks.webhooks import Webhook
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tests.live_server import free_port


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, object]:
        value: dict[str, object] = orjson.loads(self.body)
        return value

    def verify(self, secret: str) -> dict[str, object]:
        """The payload, once its Standard Webhooks signature checks out (raises otherwise)."""
        payload: dict[str, object] = Webhook(secret).verify(self.body, self.headers)
        return payload


@dataclass
class Receiver:
    url: str = ""
    received: list[Received] = field(default_factory=list)
    # Statuses to answer with, first to last; 204 once they are used up.
    statuses: list[int] = field(default_factory=list)
    # Seconds to wait before answering, first to last (a receiver that is slow to answer).
    delays: list[float] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = await request.body()
        self.received.append(Received(dict(request.headers), body))
        self.arrived.set()
        status = self.statuses.pop(0) if self.statuses else 204
        if self.delays:
            await asyncio.sleep(self.delays.pop(0))
        await Response(status_code=status)(scope, receive, send)

    async def wait_for(self, count: int, seconds: float = 30) -> list[Received]:
        async with asyncio.timeout(seconds):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received


@asynccontextmanager
async def webhook_receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(receiver, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers a flag, not an event)
        await asyncio.sleep(0.01)
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task
