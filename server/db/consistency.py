"""Consistency tokens: read-your-writes across the primary and its read replicas.

A mutation's response carries `extensions.consistencyToken`, the WAL position its commit reached
(read on its connection right after `COMMIT`). A client that sends it back in the
`X-Consistency-Token` header is served by a replica only once that replica has replayed at least
that far (`server/db/replicas.py`), else by the primary.
"""

from __future__ import annotations

import re

# The header a client sends a consistency token back in.
CONSISTENCY_HEADER = "x-consistency-token"
_LSN = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")
# WAL page headers (short, and long at a segment's start): a position just past one is where the
# next record goes; a replica that replayed the record before it reports the page's start.
_PAGE_HEADERS = (24, 40)


class TokenError(ValueError):
    """A consistency token that is not a WAL position (`0/3000148`)."""


def parse_lsn(text: str) -> int:
    """A WAL position (`pg_lsn` text, `X/Y` in hex) as an integer."""
    match = _LSN.fullmatch(text.strip())
    if match is None:
        raise TokenError(f"not a WAL position: {text!r}")
    return (int(match[1], 16) << 32) | int(match[2], 16)


def format_lsn(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def commit_token(insert_lsn: str, block_size: int) -> str:
    """The token for a commit, from `pg_current_wal_insert_lsn()` read right after it.

    The insert position is at or past the commit record's end. When it sits just past a page
    header, the record before it ended at the page's start, which is what a replica reports having
    replayed: the token is that, or it would wait for the next record.
    """
    lsn = parse_lsn(insert_lsn)
    if lsn % block_size in _PAGE_HEADERS:
        lsn -= lsn % block_size
    return format_lsn(lsn)


# After a commit, on its connection: the token's parts, in one statement.
COMMIT_POSITION_SQL = (
    "select pg_current_wal_insert_lsn()::text, current_setting('wal_block_size')::int"
)
