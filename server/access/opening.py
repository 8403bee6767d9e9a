"""A GraphQL request's opening: `BEGIN`, the credential check and the org scope in one round trip.

asyncpg sends a statement without arguments by the simple query protocol, which carries several
statements at once, so `BEGIN; SELECT cms_open_request(...)` costs one round trip. The price is that
no value travels as a parameter: each is inlined as an SQL literal, and only values checked here
become literals (a hex digest, a UUID, integers, booleans, role names). No client text is ever
inlined: the bearer secret reaches the database as its SHA-256, computed in Python.

`cms_open_request` (migration 0004) checks the credential with `cms_authenticate`, sets the org scope
as `server.db.tenancy.enter_org` does, and keeps the facts about the caller in `app.principal`, which any
later statement of the transaction can select (`PRINCIPAL_SQL`).

A process keeps the facts each credential had on its last request (`KnownCallers`). The next opening
for that credential sends their digest (`cms_open_known_request`, migration 0006), and the database
checks them as it opens: when they still hold, nothing needs reading back; when they changed, the
opening fails with `FactsChanged` and the request opens again without them.
"""

from __future__ import annotations

import functools
import hashlib
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import asyncpg
import orjson

from server.access.auth import Credential
from server.access.credentials import LAST_USED_RESOLUTION_SECONDS
from server.access.sessions import INSTANCE_ADMIN_ROLES
from server.db.literals import boolean_literal, uuid_literal, word_literal
from server.db.tenancy import Tenancy, request_role

# The SQL expression that reads the caller's facts (JSON text) back in the opened transaction.
PRINCIPAL_SQL = "current_setting('app.principal', true)"

# The key under which the opening keeps what `cms_read_known` checks the facts by (migration 0015).
_ACCESS = '"access"'
# Facts that may become a string literal by doubling their quotes: without a backslash (JSON writes
# every control character and quote inside a string with one), so the literal means the same
# whatever `standard_conforming_strings` says.
_INLINABLE = re.compile(r"[^\\\x00-\x1f]*")
_DIGEST = re.compile(r"[0-9a-f]{64}")


def opening_arguments(credential: Credential, tenancy: Tenancy) -> tuple[Any, ...]:
    """`cms_open_request`'s arguments but the last (read-only), as bind values.

    `cms_read` (migration 0006) takes them as parameters; `opening_sql` inlines them.
    """
    role = request_role(tenancy)
    return (
        credential.kind,
        credential.digest,
        credential.organization_id,
        int(LAST_USED_RESOLUTION_SECONDS),
        list(INSTANCE_ADMIN_ROLES),
        tenancy.enable_hierarchy,
        int(tenancy.statement_timeout_ms),
        role if role != "none" else None,
    )


def opening_sql(
    credential: Credential,
    tenancy: Tenancy,
    *,
    read_only: bool,
    known_facts: str | None = None,
    fresh: bool = False,
) -> str:
    """The statement that follows `BEGIN` in a request's first round trip.

    Args:
        credential: the request's credential, parsed and hashed (`server.access.auth.parse_credential`).
        tenancy: the deployment's isolation settings.
        read_only: make the transaction read-only once the credential is checked (queries).
        known_facts: the caller's facts as the last request found them: the opening checks they
            still hold (and raises `FactsChanged` if not).
        fresh: `known_facts` are fresh (`KnownCallers.fresh`): the opening takes them as they are
            while the access counter says nothing they depend on changed (`cms_open_known`,
            migration 0015), instead of checking the credential again and comparing.

    Raises:
        ValueError: a value is not of the form that may be inlined (a programming error).
    """
    kind, digest, organization, resolution, roles, hierarchy, timeout, role = opening_arguments(
        credential, tenancy
    )
    if kind not in ("key", "session"):
        raise ValueError(f"unknown credential kind: {kind!r}")
    if not _DIGEST.fullmatch(digest):
        raise ValueError("the credential digest must be a hex SHA-256")
    arguments = (
        word_literal(kind),
        f"'{digest}'",
        uuid_literal(organization),
        str(int(resolution)),
        f"ARRAY[{', '.join(word_literal(name) for name in roles)}]::text[]",
        boolean_literal(hierarchy),
        str(int(timeout)),
        word_literal(role) if role is not None else "NULL",
        boolean_literal(read_only),
    )
    # Lock waits end at the lock timeout (TIMEOUT) instead of holding the connection until the
    # statement timeout; SET takes no parameters, and the value is a checked integer.
    lock_timeout = f"SET LOCAL lock_timeout = {int(tenancy.lock_timeout_ms)}"
    if known_facts is None:
        return f"SELECT cms_open_request({', '.join(arguments)}); {lock_timeout}"
    if fresh and _INLINABLE.fullmatch(known_facts):
        known = (
            f"'{known_facts.replace(chr(39), chr(39) * 2)}'",
            boolean_literal(hierarchy),
            str(int(timeout)),
            word_literal(role) if role is not None else "NULL",
            boolean_literal(read_only),
            str(int(tenancy.lock_timeout_ms)),
        )
        return f"SELECT cms_open_known({', '.join(known)})"
    digest = hashlib.sha256(known_facts.encode()).hexdigest()
    return f"SELECT cms_open_known_request({', '.join(arguments)}, '{digest}'); {lock_timeout}"


@functools.lru_cache(maxsize=1024)
def kept_facts(known: str) -> tuple[str, str | None, str | None, str | None, str | None]:
    """The kept facts and what `cms_read_known_run` checks and scopes by (migration 0020): the
    organization, the readable organizations, the access counter and the credential's expiry,
    each the text `->>` finds in the facts. Parsed once per facts text, not once per read.

    Raises:
        FactsChanged: the facts carry no `access` to check them by.
    """
    facts = orjson.loads(known)
    access = facts.get("access") if isinstance(facts, dict) else None
    if not isinstance(access, dict):
        raise FactsChanged
    return (
        known,
        _member_text(facts, "organization_id"),
        _member_text(access, "readable"),
        _member_text(access, "epoch"),
        _member_text(access, "expires"),
    )


@functools.lru_cache(maxsize=1024)
def reads_one_organization(known: str) -> bool:
    """Whether the kept facts give the caller one organization to read (their `readable`, an
    array's text: `{id}`), so a compiled read may walk that organization's rows alone."""
    try:
        readable = kept_facts(known)[2]
    except FactsChanged:
        return False
    return readable is not None and readable not in ("", "{}") and "," not in readable


def known_run_arguments(known: str, tenancy: Tenancy) -> tuple[Any, ...]:
    """A known caller's opening as `cms_write_known_run` takes it (migration 0023), as
    `cms_read_known_run` does (0020): the kept facts and what they are checked and scoped by,
    the hierarchy flag, the request role and the lock timeout.

    Raises:
        FactsChanged: the facts carry no `access` to check them by.
    """
    role = request_role(tenancy)
    return (
        *kept_facts(known),
        tenancy.enable_hierarchy,
        role if role != "none" else None,
        int(tenancy.lock_timeout_ms),
    )


def _member_text(found: dict[str, Any], key: str) -> str | None:
    """What PostgreSQL's `->>` gives for `key`: a string as it is, null or absent as NULL, any
    other value as its JSON text."""
    value = found.get(key)
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


class FactsChanged(Exception):  # noqa: N818 (a signal: open again, without the known facts)
    """The caller's facts are not the ones the server kept (`cms_open_known_request`)."""


FACTS_CHANGED = "CM007"


def facts_changed(exc: asyncpg.PostgresError) -> bool:
    return exc.sqlstate == FACTS_CHANGED


class KnownCallers:
    """The facts (`app.principal`'s text) each credential had on its last full opening, most
    recent last. Only ever a hint: the database checks them at every opening.

    Facts learned less than `fresh_seconds` ago are `fresh`: a compiled read may then skip the
    credential check and the tree walk (`cms_read_known`, migration 0015), which the database
    allows only while nothing they depend on has changed. Past that age the next read opens in
    full again, which is also what bumps an API key's `last_used_at` when it is due.
    """

    def __init__(
        self,
        size: int = 1024,
        *,
        fresh_seconds: float = LAST_USED_RESOLUTION_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.size = size
        self.fresh_seconds = fresh_seconds
        self._clock = clock
        self._facts: OrderedDict[Credential, tuple[str, float]] = OrderedDict()

    def get(self, credential: Credential) -> str | None:
        known = self._facts.get(credential)
        if known is None:
            return None
        self._facts.move_to_end(credential)
        return known[0]

    def fresh(self, credential: Credential) -> str | None:
        """The facts, if a full opening found them recently and they carry what the database
        checks them by (`access`)."""
        known = self._facts.get(credential)
        if known is None:
            return None
        facts, learned = known
        if self._clock() - learned >= self.fresh_seconds or _ACCESS not in facts:
            return None
        self._facts.move_to_end(credential)
        return facts

    def remember(self, credential: Credential, facts: str) -> None:
        """Keep the facts a full opening just found."""
        self._facts[credential] = (facts, self._clock())
        self._facts.move_to_end(credential)
        if len(self._facts) > self.size:
            self._facts.popitem(last=False)

    def forget(self, credential: Credential) -> None:
        self._facts.pop(credential, None)

    def clear(self) -> None:
        self._facts.clear()


known_callers = KnownCallers()
