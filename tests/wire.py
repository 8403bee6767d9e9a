"""A TCP proxy that counts the PostgreSQL protocol messages a client sends, for round-trip tests.

Put between a client and what it connects to (PostgreSQL, or PgBouncer), it forwards both
directions unchanged and records the type of every frontend message after the start-up packet:
`P` Parse, `B` Bind, `D` Describe, `E` Execute, `S` Sync, `H` Flush, `Q` a simple query. A client
waits for the server after each `S`, `H` or `Q` it sends, so their number is the number of round
trips (`Wire.round_trips`).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

# Start-up requests that a server answers before the real start-up packet (SSL, GSS encryption).
_NEGOTIATIONS = {80877103, 80877104}
# The frontend messages after which a client waits for the server.
FLIGHT_ENDS = frozenset("SHQ")


@dataclass
class Wire:
    """What clients sent through one proxy: the types of their messages, in order."""

    host: str
    port: int
    sent: list[str] = field(default_factory=list)
    # The bytes of those messages, to look for what travelled (a statement's text).
    data: bytearray = field(default_factory=bytearray)

    def clear(self) -> None:
        self.sent.clear()
        self.data.clear()

    @property
    def counts(self) -> Counter[str]:
        return Counter(self.sent)

    @property
    def round_trips(self) -> int:
        return sum(1 for kind in self.sent if kind in FLIGHT_ENDS)


@asynccontextmanager
async def counting_proxy(host: str, port: int) -> AsyncIterator[Wire]:
    """A proxy on a free local port to `host`:`port` (a socket folder when `host` starts with /)."""
    tasks: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if host.startswith("/"):
            up_reader, up_writer = await asyncio.open_unix_connection(f"{host}/.s.PGSQL.{port}")
        else:
            up_reader, up_writer = await asyncio.open_connection(host, port)
        frontend = asyncio.ensure_future(_frontend(reader, up_writer, wire))
        backend = asyncio.ensure_future(_pipe(up_reader, writer))
        tasks.update((frontend, backend))
        await asyncio.wait((frontend, backend), return_when=asyncio.FIRST_COMPLETED)
        for task in (frontend, backend):
            task.cancel()
        for stream in (writer, up_writer):
            stream.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await stream.wait_closed()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    wire = Wire("127.0.0.1", server.sockets[0].getsockname()[1])
    try:
        yield wire
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _frontend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, wire: Wire) -> None:
    """Forward what the client sends, message by message, noting each message's type."""
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        while True:
            # Untyped: a length, then a request code or the protocol version.
            head = await reader.readexactly(8)
            length, code = struct.unpack("!ii", head)
            writer.write(head + await reader.readexactly(length - 8))
            await writer.drain()
            if code not in _NEGOTIATIONS:
                break
        while True:
            head = await reader.readexactly(5)
            (length,) = struct.unpack("!i", head[1:])
            wire.sent.append(chr(head[0]))
            message = head + await reader.readexactly(length - 4)
            wire.data += message
            writer.write(message)
            await writer.drain()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
