"""One webhook request: check where it goes, sign it, send it, and say what came back."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from server.delivery.webhook_signing import signature_headers
from server.errors import InvalidInputError
from server.outbound import OutboundPolicy

# What is kept of an error or a response body in the delivery log.
ERROR_CHARS = 500


@dataclass(frozen=True)
class Attempt:
    """The outcome of one request: the status code when there was a response, else the error."""

    status: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class WebhookSender:
    """Signs and posts webhook bodies with one shared HTTP client (redirects are not followed)."""

    def __init__(self, client: httpx.AsyncClient, policy: OutboundPolicy) -> None:
        self.client = client
        self.policy = policy

    async def send(self, url: str, secret: str, message_id: str, body: bytes) -> Attempt:
        try:
            # Again at every attempt: the name may point somewhere else since it was saved.
            await self.policy.check(url)
        except InvalidInputError as exc:
            return Attempt(None, exc.message)
        headers = signature_headers(secret, message_id, int(time.time()), body)
        headers["content-type"] = "application/json"
        try:
            response = await self.client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Attempt(None, f"{type(exc).__name__}: {exc}"[:ERROR_CHARS] or "request failed")
        error = None if response.is_success else response.text[:ERROR_CHARS]
        return Attempt(response.status_code, error)
