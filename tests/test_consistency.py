"""Consistency tokens: WAL positions as text and back (`server/db/consistency.py`)."""

from __future__ import annotations

import pytest

from server.db.consistency import TokenError, commit_token, format_lsn, parse_lsn


@pytest.mark.parametrize(
    ("text", "value"),
    [("0/0", 0), ("0/3000148", 0x3000148), ("1/0", 1 << 32), ("AB/FFFFFFFF", 0xAB_FFFFFFFF)],
)
def test_positions_round_trip(text: str, value: int) -> None:
    assert parse_lsn(text) == value
    assert format_lsn(value) == text
    assert parse_lsn(text.lower()) == value


@pytest.mark.parametrize("text", ["", "3000148", "0/", "/1", "0/123456789", "x/1", "0/1/2"])
def test_malformed_positions_are_refused(text: str) -> None:
    with pytest.raises(TokenError):
        parse_lsn(text)


@pytest.mark.parametrize(
    ("insert", "token"),
    [
        # Mid-page: the commit record ended at or before the insert position.
        ("0/3001130", "0/3001130"),
        # Just past a page's short header (24 bytes), or a segment's long one (40): the record
        # before ended at the page's start, where a replica's replay position stops.
        ("0/3002018", "0/3002000"),
        ("0/4000028", "0/4000000"),
        ("0/3002030", "0/3002030"),
    ],
)
def test_commit_token(insert: str, token: str) -> None:
    assert commit_token(insert, 8192) == token
