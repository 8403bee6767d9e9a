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

import orjson
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

    orjson writes it, once every number is in JCS's form: orjson escapes strings exactly as JCS
    does, and its sorted keys (by code point) are JCS's order (by UTF-16 code unit) unless a key
    holds a character beyond the Basic Multilingual Plane, which the `rfc8785` package serialises
    instead. tests/test_content_hash.py holds both to the same output.

    Args:
        data: JSON data as Python values (dict with str keys, list, str, int, float, bool, None).

    Raises:
        InvalidInputError: the data is not JSON (NaN, infinity, non-string keys, other types, lone
            surrogates in strings, integers too large even for a double).
    """
    try:
        try:
            return orjson.dumps(_jcs_numbers(data), option=orjson.OPT_SORT_KEYS)
        except _AstralKey:
            return rfc8785.dumps(_as_json_numbers(data))
    except (rfc8785.CanonicalizationError, OverflowError, TypeError, orjson.JSONEncodeError) as exc:
        raise InvalidInputError(f"data cannot be hashed: {exc}") from exc


class _AstralKey(Exception):  # noqa: N818 (a signal: sort keys by UTF-16 code units)
    pass


def _jcs_numbers(value: object) -> Any:
    """`value` with every float (and integer beyond 2**53 - 1) as its JCS text, and only JSON."""
    if isinstance(value, str | bool) or value is None:
        return value
    if isinstance(value, int):
        return value if abs(value) <= _MAX_SAFE_INTEGER else _jcs_float(float(value))
    if isinstance(value, float):
        return _jcs_float(value)
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"object keys must be strings, not {type(key).__name__}")
            if not key.isascii() and max(key) > "\uffff":
                raise _AstralKey
        return {key: _jcs_numbers(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jcs_numbers(item) for item in value]
    raise TypeError(f"{type(value).__name__} is not JSON")


def _jcs_float(value: float) -> orjson.Fragment:
    # ECMAScript's number to string (RFC 8785 3.2.2.3): `rfc8785` writes it; NaN and the
    # infinities raise its error.
    return orjson.Fragment(rfc8785.dumps(value))


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
