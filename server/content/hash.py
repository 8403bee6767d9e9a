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
_DROPPED = 36 ** (_FULL_WIDTH - HASH_LENGTH)
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


def _jcs_numbers(value: Any) -> Any:
    """`value` with every float (and integer beyond 2**53 - 1) as its JCS text, and only JSON.

    Containers without such a number are returned as they are, not copied: a document's data is
    mostly strings, and rebuilding all of it cost a save more than serialising it. The exact types
    JSON parsers produce are checked by identity (fast); anything else (a subclass, a tuple) takes
    `_jcs_other`.
    """
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is int:
        return value if -_MAX_SAFE_INTEGER <= value <= _MAX_SAFE_INTEGER else _jcs_float(value)
    if kind is float:
        return _jcs_float(value)
    if kind is dict:
        copied: dict[str, Any] | None = None
        for key, item in value.items():
            if type(key) is not str:
                _check_key(key)
            elif not key.isascii() and max(key) > "\uffff":
                raise _AstralKey
            if type(item) is str:  # most values: no call
                continue
            shown = _jcs_numbers(item)
            if shown is not item:
                if copied is None:
                    copied = dict(value)
                copied[key] = shown
        return value if copied is None else copied
    if kind is list:
        items: list[Any] | None = None
        for index, item in enumerate(value):
            if type(item) is str:
                continue
            shown = _jcs_numbers(item)
            if shown is not item:
                if items is None:
                    items = list(value)
                items[index] = shown
        return value if items is None else items
    return _jcs_other(value)


def _jcs_other(value: object) -> Any:
    """`_jcs_numbers` for values of other types than a JSON parser's: subclasses, tuples."""
    if isinstance(value, str | bool):
        return value
    if isinstance(value, int):
        return value if abs(value) <= _MAX_SAFE_INTEGER else _jcs_float(value)
    if isinstance(value, float):
        return _jcs_float(value)
    if isinstance(value, dict):
        for key in value:
            _check_key(key)
        return {key: _jcs_numbers(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jcs_numbers(item) for item in value]
    raise TypeError(f"{type(value).__name__} is not JSON")


def _check_key(key: object) -> None:
    if not isinstance(key, str):
        raise TypeError(f"object keys must be strings, not {type(key).__name__}")
    if not key.isascii() and max(key) > "\uffff":
        raise _AstralKey


def _jcs_float(value: float | int) -> orjson.Fragment:
    # ECMAScript's number to string (RFC 8785 3.2.2.3): `rfc8785` writes it (an integer beyond
    # 2**53 - 1 as the double it rounds to); NaN and the infinities raise its error.
    return orjson.Fragment(rfc8785.dumps(float(value)))


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
    # The first HASH_LENGTH of the _FULL_WIDTH digits are the digits of what is left once the
    # others are divided away: one division, then only the digits kept.
    kept = digest // _DROPPED
    digits: list[str] = []
    for _ in range(HASH_LENGTH):
        kept, remainder = divmod(kept, 36)
        digits.append(_DIGITS[remainder])
    return "".join(reversed(digits))


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
