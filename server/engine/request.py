"""A request's unit of work: one org-scoped transaction, opened on first use and ended once.

The transaction opens lazily, on the first call that touches data, so introspection and
unauthenticated requests never take a connection. Its opening is one round trip (`open()`): `BEGIN`,
the credential check and the org scope together (`server.access.opening`), on a read replica when
the request may be served there (`replica`), else on the primary. Whoever runs the request ends it
with `finish()`: a commit, or a rollback when anything failed.

The GraphQL layer's request context is one of these with its loaders added
(`server.graphql.context.RequestContext`); nothing else opens a request's transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncpg

from server.access.auth import (
    Credential,
    Principal,
    parse_credential,
    principal_from_text,
    refusals,
)
from server.access.opening import (
    PRINCIPAL_SQL,
    FactsChanged,
    facts_changed,
    known_callers,
    known_run_arguments,
    opening_sql,
)
from server.content.documents import DocumentRow
from server.db.pool import Tx
from server.db.tenancy import unit_of_work
from server.engine.context import Context
from server.engine.local_api import Collection, LocalAPI
from server.errors import CMSError, UnauthenticatedError

if TYPE_CHECKING:
    from server.db.pool import Database
    from server.db.replicas import Replicas
    from server.model.types import Registry


class Rollback(Exception):  # noqa: N818 (a signal, not an error)
    """Thrown into the unit of work's transaction to roll it back."""


@dataclass(kw_only=True)
class RequestUnit:
    api: LocalAPI
    authorization: str | None = None
    organization_header: str | None = None
    read_only: bool = True
    # Read the WAL position of a mutation's commit (with read replicas: `server/db/replicas.py`).
    wants_consistency_token: bool = False
    # That position, once committed: `extensions.consistencyToken` of the response.
    consistency_token: str | None = None
    # A published read's replica (`server/graphql/routing.py`); on any failure to open there,
    # `replicas` learns of it and the unit opens on the primary instead.
    replica: Database | None = None
    replicas: Replicas | None = None
    # Whether the unit of work was opened on `replica`.
    on_replica: bool = False
    _tx: Tx | None = None
    _unit: Context | None = None
    _principal: Principal | None = None
    _credential: Credential | None = None
    _transaction: AbstractAsyncContextManager[Tx] | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def registry(self) -> Registry:
        """The registry the unit of work validates and reads against (the GraphQL context's is
        the one its schema was built from)."""
        return self.api.model.registry

    async def principal(self) -> Principal:
        """The authenticated caller (opens the unit of work, in which credentials are checked)."""
        await self.unit()
        assert self._principal is not None
        return self._principal

    async def open(self) -> Tx:
        """Open the request's transaction, checked and org-scoped, in one round trip (idempotent).

        `BEGIN` and `cms_open_request` travel together (see `server.access.opening`): the credential check
        (as the connecting role: the credential tables have no RLS), then the caller's organization,
        the request role and, for queries, read-only. The caller's facts stay in the transaction:
        select `PRINCIPAL_SQL` in a later statement and hand the value to `accept_principal`.

        Raises:
            UnauthenticatedError: no credentials, or unknown, revoked or expired ones.
            InvalidInputError: `X-Organization-Id` is not a UUID.
            ForbiddenError: the caller may not act in the organization asked for (or none is chosen).
            NotFoundError: an instance admin asked for an organization that does not exist.
        """
        async with self._lock:
            return await self._open()

    def accept_principal(self, value: str) -> Context:
        """Take the caller from `PRINCIPAL_SQL`'s value, selected in the opened transaction.

        Returns:
            The local API's context for the unit of work (also kept for `unit()`).
        """
        if self._tx is None or not value:
            raise RuntimeError("accept_principal needs an opened transaction and its principal")
        principal = principal_from_text(value)
        self._principal = principal
        self._unit = Context(
            tx=self._tx,
            organization_id=principal.organization_id,
            registry=self.registry(),
            user_id=principal.user_id,
            capabilities=principal.capabilities,
            published_only=principal.published_only,
            session_id=principal.session_id,
            instance_admin=principal.instance_admin,
        )
        return self._unit

    async def unit(self) -> Context:
        """The request's unit of work: one transaction, opened on first use.

        One statement when the process has met the caller before and its facts still hold (the
        opening checks them); else two: the opening (`open()`), then the caller's facts read back
        from it. Every later statement of the request runs in the same transaction.
        """
        async with self._lock:
            if self._unit is not None:
                return self._unit
            tx = await self._open()
            if self._unit is not None:
                return self._unit
            try:
                facts = await tx.fetchval(f"SELECT {PRINCIPAL_SQL}")
                unit = self.accept_principal(facts)
            except BaseException:
                await self.finish(commit=False)
                raise
            assert self._credential is not None
            known_callers.remember(self._credential, facts)
            return unit

    def _at_once(
        self, type_name: str
    ) -> tuple[Collection, Principal, Registry, tuple[Any, ...]] | None:
        """The collection, caller, registry and opening for a write without a unit of work: only
        for a caller whose facts a full opening found recently, and only when no consistency
        token is wanted (it is read after a commit, in a transaction's way). None otherwise."""
        if self.wants_consistency_token or self._tx is not None or not self.authorization:
            return None
        try:
            credential = parse_credential(self.authorization, self.organization_header)
        except CMSError:
            return None  # the unit of work's opening answers it
        known = known_callers.fresh(credential)
        if known is None:
            return None
        try:
            opening = known_run_arguments(known, self.api.adapter.tenancy)
        except FactsChanged:
            return None
        registry = self.registry()
        collection = self.api.collection(type_name, registry)
        return collection, principal_from_text(known), registry, opening

    def _cancel_after(self) -> float | None:
        return self.api.adapter.tenancy.statement_timeout_ms / 1000 or None

    async def update_at_once(
        self, type_name: str, id: str, data: Any, *, expected_revision: int | None
    ) -> DocumentRow | None:
        """A draft save without a unit of work (`Collection.update_at_once`): a read and a write,
        each one statement that opens the request and commits. None when it does not apply or
        wrote nothing: the request then runs in a unit of work.

        Raises:
            UnavailableError, TimedOutError: the write may have been committed; it must not run
                again.
        """
        found = self._at_once(type_name)
        if found is None:
            return None
        collection, principal, registry, opening = found
        return await collection.update_at_once(
            principal,
            registry,
            opening,
            id,
            data,
            expected_revision=expected_revision,
            cancel_after=self._cancel_after(),
        )

    async def publish_saved_at_once(
        self, type_name: str, id: str, *, expected_revision: int | None
    ) -> DocumentRow | None:
        """The publish of a draft this process just saved, without a unit of work: one statement
        that opens the request, publishes and commits (`Collection.publish_saved_at_once`). None
        when it does not apply or wrote nothing: the request then runs in a unit of work.

        Raises:
            UnavailableError, TimedOutError: the statement may have been committed; it must not
                run again.
        """
        found = self._at_once(type_name)
        if found is None:
            return None
        collection, principal, registry, opening = found
        return await collection.publish_saved_at_once(
            principal,
            registry,
            opening,
            id,
            expected_revision=expected_revision,
            cancel_after=self._cancel_after(),
        )

    async def _open(self) -> Tx:
        if self._tx is not None:
            return self._tx
        if not self.authorization:
            raise UnauthenticatedError(
                "authentication required: send 'Authorization: Bearer <API key or session token>'"
            )
        credential = parse_credential(self.authorization, self.organization_header)
        self._credential = credential
        fresh = known_callers.fresh(credential)
        known = fresh or known_callers.get(credential)
        try:
            tx = await self._begin(credential, known, fresh=fresh is not None)
        except FactsChanged:
            known_callers.forget(credential)
            known = None
            tx = await self._begin(credential, None)
        if known is not None:
            if fresh is None:
                # `cms_open_known_request` checked the credential in full and found the facts
                # unchanged: they are as fresh as a full opening's (for reads and writes at once).
                known_callers.remember(credential, known)
            self.accept_principal(known)
        return tx

    async def _begin(self, credential: Credential, known: str | None, *, fresh: bool = False) -> Tx:
        replica = self.replica
        if replica is None:
            return await self._begin_on(self.api.adapter.database, credential, known, fresh)
        try:
            tx = await self._begin_on(replica, credential, known, fresh)
        except FactsChanged:
            raise
        except Exception as exc:
            # Nothing has run yet: a replica that is gone, or lacks a credential created a moment
            # ago, or cannot write an API key's due `last_used_at`, leaves it to the primary.
            self.replica = None
            if self.replicas is not None:
                self.replicas.failed(replica, exc)
            return await self._begin_on(self.api.adapter.database, credential, known, fresh)
        self.on_replica = True
        return tx

    async def _begin_on(
        self, database: Database, credential: Credential, known: str | None, fresh: bool
    ) -> Tx:
        adapter = self.api.adapter
        opening = opening_sql(
            credential, adapter.tenancy, read_only=self.read_only, known_facts=known, fresh=fresh
        )
        transaction = unit_of_work(
            database,
            opening=opening,
            commit_token=self.wants_consistency_token and not self.read_only,
        )
        # A refused credential rolls the transaction back and returns the connection on its own.
        try:
            with refusals():
                tx = await transaction.__aenter__()
        except asyncpg.PostgresError as exc:
            if facts_changed(exc):
                raise FactsChanged from None
            raise
        self._transaction, self._tx = transaction, tx
        return tx

    def after_commit(self, callback: Callable[[], object]) -> None:
        """Run `callback` once the unit of work has committed (never if it rolls back)."""
        if self._tx is None:
            raise RuntimeError("no unit of work is open")
        self._tx.after_commit(callback)

    async def finish(self, *, commit: bool) -> None:
        """Commit or roll back the unit of work, if one was opened."""
        transaction, self._transaction, self._unit = self._transaction, None, None
        tx, self._tx = self._tx, None
        if transaction is None:
            return
        if commit:
            await transaction.__aexit__(None, None, None)
            if tx is not None and tx.commit_token is not None:
                self.consistency_token = tx.commit_token
        else:
            error = Rollback()
            await transaction.__aexit__(Rollback, error, error.__traceback__)
