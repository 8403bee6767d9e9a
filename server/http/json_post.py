"""A JSON POST to the endpoint, read straight from the ASGI scope and messages.

Most requests a frontend sends are `POST /graphql` with `Content-Type: application/json` and a
small body. For those, Starlette's `Request` (its header list, its body stream, the size limit
wrapped around `receive`) and the endpoint's layers above the compiled read cost about a tenth of
the worker's CPU for a one-document read. `JsonPost.of` takes what the endpoint needs from the
scope in one pass over the headers, and `read_body` reads the body; the endpoint serves the
request from them when it can (`GraphQLEndpoint._json_post`).

Anything else goes the usual way, and nothing is lost doing so: `replaying` gives it a `receive`
that replays the messages `read_body` took before passing on to the server's, so the request's
own path reads, checks and refuses the body exactly as if nothing had read it first.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from starlette.types import Message, Receive, Scope

from server.query.reader import CONSISTENCY_HEADER

# The headers the endpoint reads for a JSON POST, by their names on the wire (ASGI lowercases them).
_WANTED = {
    name.encode("latin-1"): name
    for name in (
        "content-type",
        "content-length",
        "accept",
        "authorization",
        "x-organization-id",
        CONSISTENCY_HEADER,
    )
}
# JSON sent as UTF-8, as clients write it; any other spelling is checked the usual way.
_PLAIN_JSON = frozenset(
    {"application/json", "application/json; charset=utf-8", "application/json;charset=utf-8"}
)


@dataclass(frozen=True, slots=True)
class JsonPost:
    """The request line and headers of a JSON POST, as the compiled read path looks at them."""

    headers: dict[str, str]

    @property
    def method(self) -> str:
        return "POST"

    @classmethod
    def of(cls, scope: Scope, limit: int) -> JsonPost | None:
        """The request, when it is a POST of plain JSON no larger than `limit` by its own
        account and without a consistency token; else None (the usual way serves it)."""
        if scope.get("method") != "POST":
            return None
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name = _WANTED.get(raw_name)
            # The first of repeated headers, as Starlette's `Headers.get` finds it.
            if name is not None and name not in headers:
                headers[name] = raw_value.decode("latin-1")
        if headers.get("content-type", "").lower() not in _PLAIN_JSON:
            return None
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return None
        if CONSISTENCY_HEADER in headers:
            return None
        return cls(headers)


async def read_body(receive: Receive, limit: int) -> tuple[bytes | None, list[Message]]:
    """The whole body, or None when it is larger than `limit` or the client left; and the
    messages read, for `replaying` to hand to the usual way."""
    message = await receive()
    messages = [message]
    if message["type"] != "http.request":
        return None, messages
    body: bytes = message.get("body", b"")
    while len(body) <= limit and message.get("more_body", False):
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None, messages
        body += message.get("body", b"")
    return (body if len(body) <= limit else None), messages


def replaying(messages: list[Message], receive: Receive) -> Receive:
    """`receive`, after it has given `messages` once more."""
    pending = deque(messages)

    async def replay() -> Message:
        if pending:
            return pending.popleft()
        return await receive()

    return replay
