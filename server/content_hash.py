"""`published_hash`: a short fingerprint of document data that any client can recompute.

    canonical = RFC 8785 (JSON Canonicalization Scheme) serialisation of the data, UTF-8
    digest     = SHA-256(canonical), read as a big-endian unsigned integer
    hash       = digest in base 36 (0-9a-z), left-padded with '0' to 50 characters, first 20 kept

JCS sorts object keys (by UTF-16 code units) and writes numbers the way JavaScript does (`1.0` is `1`,
`1e21` is `1e+21`), so the same data gives the same hash in every language. docs/content-hash.md
spells the algorithm out with a worked example and reference code.
"""

from __future__ import annotations

import hashlib
import string
from typing import Any

import rfc8785

from server.errors import InvalidInputError

HASH_LENGTH = 20
_DIGITS = string.digits + string.ascii_lowercase
# The width of 2**256 - 1 in base 36, so that every digest has the same number of digits.
_FULL_WIDTH = 50
# JSON numbers are IEEE 754 doubles; beyond this an integer means the double it rounds to.
_MAX_SAFE_INTEGER = 2**53 - 1


def canonical_json(data: object) -> bytes:
    """The RFC 8785 canonical form of JSON data, as UTF-8 bytes.

    Args:
        data: JSON data as Python values (dict with str keys, list, str, int, float, bool, None).

    Raises:
        InvalidInputError: the data is not JSON (NaN, infinity, non-string keys, other types, lone
            surrogates in strings, integers too large even for a double).
    """
    try:
        return rfc8785.dumps(_as_json_numbers(data))
    except (rfc8785.CanonicalizationError, OverflowError) as exc:
        raise InvalidInputError(f"data cannot be hashed: {exc}") from exc


def content_hash(data: object) -> str:
    """The 20-character base-36 content hash of JSON data (the `published_hash` of a document).

    Args:
        data: JSON data, typically a document's `draft_data` as it is published.

    Returns:
        20 characters of `[0-9a-z]`; equal for equal data whatever the key order.

    Raises:
        InvalidInputError: the data is not JSON (see `canonical_json`).
    """
    digest = int.from_bytes(hashlib.sha256(canonical_json(data)).digest(), "big")
    digits: list[str] = []
    while digest:
        digest, remainder = divmod(digest, 36)
        digits.append(_DIGITS[remainder])
    return "".join(reversed(digits)).rjust(_FULL_WIDTH, "0")[:HASH_LENGTH]


def has_unpublished_changes(draft: object, published_hash: str | None) -> bool:
    """Whether the draft differs from what was published, comparing hashes rather than JSON.

    A document that was never published (or was unpublished) has no hash, and its draft counts as
    an unpublished change.
    """
    if published_hash is None:
        return True
    return content_hash(draft) != published_hash


def _as_json_numbers(value: object) -> Any:
    """Integers beyond 2**53 - 1 become the double a JSON parser reads, as JCS expects (RFC 8785 3.2.2.3)."""
    if isinstance(value, dict):
        return {k: _as_json_numbers(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_as_json_numbers(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _MAX_SAFE_INTEGER:
        return float(value)
    return value
