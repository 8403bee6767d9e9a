"""Where a compiled read runs, and with which check of its caller: `CompiledReads`.

A compiled read is one statement (`server/query/round_trip.py`): `cms_read` checks the caller's
credential, scopes the transaction to its organization and runs the read. This module chooses the
database (a replica that may serve it, else the primary) and whether the full credential check
runs (not when this process met the caller recently and the facts it met still hold:
`server/access/opening.py`). The HTTP endpoint hands it the request's headers and a bound
statement; it never sees the driver, the pool or a replica.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from server.access.auth import Credential, Principal, parse_credential, principal_from_text
from server.access.opening import (
    FactsChanged,
    known_callers,
    opening_arguments,
    reads_one_organization,
)
from server.db.consistency import CONSISTENCY_HEADER, TokenError, parse_lsn
from server.errors import InvalidInputError
from server.query import round_trip
from server.query.batching import ReadBatches
from server.query.run import Statement

if TYPE_CHECKING:
    from server.db.pool import Database
    from server.db.replicas import Replicas
    from server.engine.adapter import Transactions

__all__ = ["CONSISTENCY_HEADER", "CompiledReads", "Credential", "Principal", "consistency_token"]

# A compiled read run on one database (the primary or a replica): the facts and the texts.
Fetch = Callable[["Database"], Awaitable[tuple[str, list[str | None]]]]


def consistency_token(raw: str | None) -> int | None:
    """The WAL position of an `X-Consistency-Token` header, which reads must see (None: none sent).

    Raises:
        InvalidInputError: the header is not a `consistencyToken` from a mutation's response.
    """
    if raw is None:
        return None
    try:
        return parse_lsn(raw)
    except TokenError:
        raise InvalidInputError(
            "X-Consistency-Token must be a consistencyToken from a mutation's response"
            f" (a WAL position such as 0/3000148), not {raw[:40]!r}"
        ) from None


class CompiledReads:
    """Runs compiled reads on the primary or a replica, and counts those a replica served."""

    def __init__(
        self,
        adapter: Transactions,
        replicas: Replicas | None = None,
        *,
        batch_most: int = 0,
        batch_wait: float = 0.0,
    ) -> None:
        self.adapter = adapter
        # Published reads go to a replica when one may serve them (`server/db/replicas.py`).
        self.replicas = replicas
        self.replica_served = 0
        # Per database, the batches of reads by id forming there (`server/query/batching.py`).
        self.batch_most = batch_most
        self.batch_wait = batch_wait
        self._batches: dict[Database, ReadBatches] = {}

    def batches(self, database: Database) -> ReadBatches:
        """The batches of reads forming on `database`."""
        batches = self._batches.get(database)
        if batches is None:
            batches = self._batches[database] = ReadBatches(
                database, self.batch_most, self.batch_wait
            )
        return batches

    @staticmethod
    def credential(authorization: str | None, organization_header: str | None) -> Credential:
        """The request's credential (`UNAUTHENTICATED`/`INVALID_INPUT` for malformed headers)."""
        return parse_credential(authorization, organization_header)

    @staticmethod
    def maybe_public(credential: Credential) -> bool:
        """Whether the caller's answers may be public: a published-only key, or one this process
        has not met yet."""
        facts = known_callers.get(credential)
        return facts is None or principal_from_text(facts).published_only

    async def read(
        self, credential: Credential, statement: Statement, token: int | None
    ) -> tuple[Principal, list[str | None]]:
        """The caller and the read's texts, in one statement, on a replica when one may serve it:
        without the credential check when a full opening found the caller's facts recently and
        they still hold."""
        adapter = self.adapter
        opening = opening_arguments(credential, adapter.tenancy)
        timeout = adapter.tenancy.statement_timeout_ms / 1000 or None
        lock_timeout_ms = adapter.tenancy.lock_timeout_ms

        def fetcher(known: str | None, read: Statement) -> Fetch:
            async def fetch(database: Database) -> tuple[str, list[str | None]]:
                # A known caller's read by id runs in a batch with the ones it sends at the same
                # time, or alone when there are none.
                if known is not None:
                    batches = self.batches(database)
                    if batches.may_batch(read):
                        batched = await batches.read(
                            known,
                            opening,
                            read,
                            cancel_after=timeout,
                            lock_timeout_ms=lock_timeout_ms,
                        )
                        if batched is not None:
                            return known, batched
                return await round_trip.fetch(
                    database,
                    opening,
                    read,
                    cancel_after=timeout,
                    lock_timeout_ms=lock_timeout_ms,
                    known=known,
                )

            return fetch

        known = known_callers.fresh(credential)
        if known is not None:
            # The facts are checked in the read's own statement before its rows are read, so a
            # caller they give one organization may have its lists read from that one's walk.
            one = reads_one_organization(known)
            fetch = fetcher(known, statement.for_one_organization() if one else statement)
            try:
                answer = None
                if self.replicas:  # configured, not merely present
                    answer = await self._on_replica(fetch, statement, token)
                facts, values = answer or await fetch(adapter.database)
                return principal_from_text(facts), values
            except FactsChanged:
                known_callers.forget(credential)
        fetch = fetcher(None, statement)
        facts, values = await self._on_replica(fetch, statement, token) or await fetch(
            adapter.database
        )
        known_callers.remember(credential, facts)
        return principal_from_text(facts), values

    async def _on_replica(
        self, fetch: Fetch, statement: Statement, token: int | None
    ) -> tuple[str, list[str | None]] | None:
        """The read run on a replica, or None when the primary must run it.

        Only reads of the published perspective go to a replica (drafts and what a mutation just
        wrote must be current), and only to one that the last check found in service, and that
        had replayed `token`. Whatever fails there (a lost server, a credential or a type it has
        not replayed yet, a conflict with recovery, an API key's `last_used_at` that is due: a
        replica writes nothing) is tried again on the primary.
        """
        if self.replicas is None or statement.reads_drafts:
            return None
        replica = self.replicas.for_read(token)
        if replica is None:
            return None
        try:
            answer = await fetch(replica)
        except FactsChanged:
            # The replica has not replayed the access counter the facts carry: the primary has.
            return None
        except round_trip.ReadDeclined:
            raise  # the primary would decline it too
        except Exception as exc:
            self.replicas.failed(replica, exc)
            return None
        self.replica_served += 1
        return answer
