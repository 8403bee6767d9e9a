"""Standard Webhooks signatures (https://www.standardwebhooks.com): the headers of a delivery.

A secret is `whsec_` and base64 of random bytes. The signature is HMAC-SHA256, keyed with those
bytes, of `<webhook-id>.<webhook-timestamp>.<body>`, sent base64-encoded as `v1,<signature>`. The
reference library (`standardwebhooks`) signs, as receivers verify with it or its ports.
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
SECRET_BYTES = 32


def new_secret() -> str:
    """A fresh signing secret, shown to its webhook's creator once."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signature_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The `webhook-id`, `webhook-timestamp` and `webhook-signature` headers of one attempt.

    Args:
        secret: the webhook's `whsec_...` secret.
        message_id: the same on every attempt of one event, so receivers can drop duplicates.
        timestamp: the attempt's time in Unix seconds (receivers refuse old ones: replay).
        body: the exact bytes sent.
    """
    at = datetime.fromtimestamp(timestamp, UTC)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": Webhook(secret).sign(message_id, at, body.decode()),
    }
