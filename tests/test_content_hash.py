"""`published_hash`: fixed vectors (checked against an independent JavaScript implementation) and
properties: any change gives another hash; the hash is always 20 characters of [0-9a-z]."""

from __future__ import annotations

import copy
import hashlib
import math
import random
import re
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from server.content.hash import (
    HASH_LENGTH,
    _as_json_numbers,
    canonical_json,
    content_hash,
    has_unpublished_changes,
)
from server.errors import InvalidInputError

VECTORS: list[tuple[str, object, bytes, str | None]] = [
    ("empty object", {}, b"{}", "1p2y4d1b03qmb4gk59yl"),
    ("one string", {"title": "Hello"}, b'{"title":"Hello"}', "2b26qjsqz0jt5i9d8eya"),
    ("keys sorted", {"b": 2, "a": 1}, b'{"a":1,"b":2}', "1o8xjyoeanfuxo9gmzun"),
    ("same keys in order", {"a": 1, "b": 2}, b'{"a":1,"b":2}', "1o8xjyoeanfuxo9gmzun"),
    (
        "nested arrays and objects",
        {
            "list": [1, [2, {"z": None, "y": True}], {"k": "v"}],
            "obj": {"nested": {"deep": [False]}},
        },
        b'{"list":[1,[2,{"y":true,"z":null}],{"k":"v"}],"obj":{"nested":{"deep":[false]}}}',
        "5o1b092bd2o5v18d9o34",
    ),
    (
        "unicode, raw UTF-8, not NFC-normalised",
        {"text": "Grüße, 世界 😀", "é": "e\u0301"},
        '{"text":"Grüße, 世界 😀","é":"e\u0301"}'.encode(),
        "3zrm486by1rcng2x6r6l",
    ),
    ("1.0 is 1", {"n": 1.0}, b'{"n":1}', "13gw60sxulxsgqs2oilz"),
    ("1 is 1", {"n": 1}, b'{"n":1}', "13gw60sxulxsgqs2oilz"),
    ("1e21 in exponent form", {"n": 1e21}, b'{"n":1e+21}', "612otxcgfp1t7vrle0y0"),
    (
        "small, negative zero, fractions",
        {"n": 1e-7, "m": -0.0, "p": 0.1, "q": 123456789.125},
        b'{"m":0,"n":1e-7,"p":0.1,"q":123456789.125}',
        "614ufpfvgjxj73fg7c2z",
    ),
    (
        "keys by UTF-16 code units (RFC 8785 3.2.3)",
        {"\u20ac": 1, "\r": 2, "\ufb33": 3, "1": 4, "\U0001f600": 5, "10": 6, "a": 7, "A": 8},
        '{"\\r":2,"1":4,"10":6,"A":8,"a":7,"\u20ac":1,"\U0001f600":5,"\ufb33":3}'.encode(),
        "0yg4dfvv3v2v571zp7zu",
    ),
    ("padded to 50 digits first", {"n": 14}, b'{"n":14}', "07fk816bg85llkucsm0q"),
    (
        "integer beyond 2**53",
        {"big": 2**60},
        b'{"big":1152921504606847000}',
        "3krrl44aa4hk5i0rw9sd",
    ),
    ("empty list", [], b"[]", "1z6duuzgenr95haoebg6"),
    ("null", None, b"null", "2w7f1cx0btxb00bwiscg"),
    (
        "control characters",
        {"s": 'a"b\\c\n\u0001\u007f'},
        b'{"s":"a\\"b\\\\c\\n\\u0001\x7f"}',
        None,
    ),
]


@pytest.mark.parametrize(
    ("data", "canonical", "expected"),
    [pytest.param(d, c, h, id=case) for case, d, c, h in VECTORS],
)
def test_vectors(data: object, canonical: bytes, expected: str | None) -> None:
    assert canonical_json(data) == canonical
    if expected is not None:
        assert content_hash(data) == expected


def test_worked_example_from_the_docs() -> None:
    digest = hashlib.sha256(b'{"title":"Hello"}').hexdigest()
    assert digest == "5c924960820d681cb4ac7c1dd76c1b56b963dbbf718faba003691dd26cce3e38"
    number = int(digest, 16)
    assert number == 41871248170452460708552174836278577574831269855376486717634226972542660132408
    assert (
        content_hash({"title": "Hello"})
        == "2b26qjsqz0jt5i9d8eya1e5c90dxhnq35i63miqfzwigwe7n08"[:20]
    )


def test_key_order_never_matters() -> None:
    data = {"z": 1, "a": {"y": [1, {"q": 2, "b": 3}], "c": None}, "m": "x"}
    shuffled = {"m": "x", "a": {"c": None, "y": [1, {"b": 3, "q": 2}]}, "z": 1}
    assert content_hash(data) == content_hash(shuffled)


def _document(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(7 if depth < 3 else 5)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.randint(-(2**40), 2**40)
    if kind == 2:
        return rng.uniform(-1e6, 1e6)
    if kind in (3, 4):
        return "".join(rng.choice('aZé世😀 \n"\\') for _ in range(rng.randrange(6)))
    if kind == 5:
        return [_document(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {f"k{rng.randrange(50)}": _document(rng, depth + 1) for _ in range(rng.randrange(5))}


def _mutations(data: Any) -> list[Any]:
    """Documents that differ from `data` by one small change somewhere inside it."""
    if isinstance(data, dict):
        out: list[Any] = [{**data, "extra": 0}]
        for key, value in data.items():
            out.append({k: v for k, v in data.items() if k != key})
            out += [{**data, key: changed} for changed in _mutations(value)]
        return out
    if isinstance(data, list):
        out = [[*data, None], [[*data]]]
        for i, value in enumerate(data):
            out += [[*data[:i], changed, *data[i + 1 :]] for changed in _mutations(value)]
        if len(data) > 1 and data[0] != data[1]:
            out.append([data[1], data[0], *data[2:]])
        return out
    if isinstance(data, bool) or data is None:
        return [x for x in (True, False, None, 0, "") if x is not data]
    if isinstance(data, int | float):
        return [data + 1, str(data), [data]]
    return [data + "x", data[:-1] if data else "y", data.upper() if data != data.upper() else "Q"]


@pytest.mark.parametrize("seed", range(25))
def test_any_change_gives_another_hash(seed: int) -> None:
    rng = random.Random(seed)
    data = {"title": "t", "doc": _document(rng)}
    original = content_hash(data)
    snapshot = copy.deepcopy(data)
    assert re.fullmatch(r"[0-9a-z]{20}", original)
    for changed in _mutations(data):
        if changed == data and canonical_json(changed) == canonical_json(data):
            continue  # e.g. 1 -> 1.0 is the same JSON number
        hashed = content_hash(changed)
        assert hashed != original, changed
        assert len(hashed) == HASH_LENGTH
        assert re.fullmatch(r"[0-9a-z]{20}", hashed)
    assert data == snapshot, "hashing must not modify the data"


def test_hash_shape_over_many_inputs() -> None:
    hashes = {content_hash({"n": i}) for i in range(2000)}
    assert len(hashes) == 2000
    assert all(re.fullmatch(r"[0-9a-z]{20}", h) for h in hashes)
    # The padded width makes a leading 0 common (the top digit of 2**256 - 1 in base 36 is 6).
    assert any(h.startswith("0") for h in hashes)
    assert {h[0] for h in hashes} <= set("0123456")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"n": math.nan}, id="NaN"),
        pytest.param({"n": math.inf}, id="infinity"),
        pytest.param({1: "x"}, id="non-string key"),
        pytest.param({"s": "\ud800"}, id="lone surrogate"),
        pytest.param({"n": 10**400}, id="integer beyond a double"),
        pytest.param({"d": object()}, id="not JSON"),
    ],
)
def test_non_json_is_refused(data: object) -> None:
    with pytest.raises(InvalidInputError, match="cannot be hashed"):
        content_hash(data)


def test_has_unpublished_changes() -> None:
    published = {"title": "Hello", "tags": ["a", "b"]}
    stored_hash = content_hash(published)
    assert not has_unpublished_changes({"tags": ["a", "b"], "title": "Hello"}, stored_hash)
    assert has_unpublished_changes({"title": "Hello", "tags": ["b", "a"]}, stored_hash)
    assert has_unpublished_changes({"title": "Hello!", "tags": ["a", "b"]}, stored_hash)
    assert has_unpublished_changes(published, None), "never published: the draft is unpublished"


_JSON_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _JSON_TEXT,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(_JSON_TEXT, children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(_JSON)
def test_the_fast_serialiser_writes_what_rfc8785_writes(data: object) -> None:
    assert canonical_json(data) == rfc8785.dumps(_as_json_numbers(data))


def test_keys_beyond_the_basic_plane_sort_by_utf16_code_units() -> None:
    # By code point "\U0001f600" sorts after "\uff61"; by UTF-16 code unit (0xD83D) before it.
    data = {"\uff61": 1, "\U0001f600": 2, "a": 3}
    assert canonical_json(data) == '{"a":3,"\U0001f600":2,"\uff61":1}'.encode()


def _hash_as_documented(data: object) -> str:
    """docs/content-hash.md's steps, written out: every base-36 digit, padded, then cut."""
    digest = int.from_bytes(hashlib.sha256(rfc8785.dumps(_as_json_numbers(data))).digest(), "big")
    digits = ""
    while digest:
        digest, remainder = divmod(digest, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[remainder] + digits
    return digits.rjust(50, "0")[:HASH_LENGTH]


@settings(max_examples=300, deadline=None)
@given(_JSON)
def test_the_hash_is_the_documented_one_and_leaves_the_data_alone(data: object) -> None:
    snapshot = copy.deepcopy(data)
    assert content_hash(data) == _hash_as_documented(data)
    assert data == snapshot


class _Text(str):
    pass


class _Object(dict[str, Any]):
    pass


def test_subclasses_and_tuples_hash_as_the_json_they_stand_for() -> None:
    plain = {"a": [1, 2.5, "x"], "b": {"c": 2**60, "d": True}, "e": "y"}
    dressed = _Object(a=(1, 2.5, _Text("x")), b=_Object({"c": 2**60, "d": True}), e=_Text("y"))
    assert canonical_json(dressed) == canonical_json(plain)
    assert content_hash(dressed) == content_hash(plain) == _hash_as_documented(plain)
