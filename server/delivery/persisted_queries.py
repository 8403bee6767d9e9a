"""Persisted queries: Apollo's automatic persisted queries (APQ) and trusted documents.

A client sends `extensions.persistedQuery.sha256Hash` (the SHA-256 of the document's text, hex)
instead of the text; the server answers `PERSISTED_QUERY_NOT_FOUND` when it does not know the
hash, and the client sends the text with the hash once, which registers it. Over GET the URL is
then short and the same for every client: a cache can key on it.

`PERSISTED_QUERIES` chooses:
- `automatic`: APQ; registrations are kept in a bounded LRU per process (a process that has not
  seen a hash asks for the text, as the protocol expects), besides the registered documents.
- `trusted`: only documents registered ahead of time (`content-api persisted-queries register`,
  or the `registerPersistedQueries` mutation of instance admins, kept in `cms_persisted_queries`)
  run, by hash or by their text; anything else is refused with `PERSISTED_QUERY_NOT_TRUSTED`,
  except for instance admins (so the admin tools keep working).
- `off`: a hash is refused with `PERSISTED_QUERY_NOT_SUPPORTED`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

from graphql import GraphQLError, parse

from server.config import PersistedQueryMode
from server.db.pool import Database, Tx, translate_errors
from server.errors import InvalidInputError

AUTOMATIC_ENTRIES = 1000
MAX_DOCUMENT_CHARS = 100_000
_SHA256 = re.compile(r"[0-9a-f]{64}")


def sha256(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def is_sha256(value: object) -> bool:
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


class PersistedQueries:
    """The documents a hash stands for: APQ registrations and registered (trusted) documents."""

    def __init__(self, database: Database | None, mode: PersistedQueryMode) -> None:
        self.database = database
        self.mode = mode
        self._automatic: OrderedDict[str, str] = OrderedDict()
        # Registered documents found so far: they are never changed, only added.
        self._trusted: dict[str, str] = {}

    def remember(self, digest: str, query: str) -> None:
        """An APQ registration (automatic mode only)."""
        if self.mode != "automatic":
            return
        self._automatic[digest] = query
        self._automatic.move_to_end(digest)
        if len(self._automatic) > AUTOMATIC_ENTRIES:
            self._automatic.popitem(last=False)

    async def lookup(self, digest: str) -> tuple[str, bool] | None:
        """The text of `digest` and whether it is a registered document; None when unknown."""
        if self.mode == "automatic":
            query = self._automatic.get(digest)
            if query is not None:
                self._automatic.move_to_end(digest)
                return query, False
        registered = await self.registered(digest)
        return (registered, True) if registered is not None else None

    async def registered(self, digest: str) -> str | None:
        """The registered document with this hash, if any."""
        known = self._trusted.get(digest)
        if known is not None or self.database is None:
            return known
        async with self.database.session() as conn:
            with translate_errors(conn):
                query = await conn.fetchval(
                    "SELECT query FROM cms_persisted_queries WHERE hash = $1", digest
                )
        if query is None:
            return None
        self._trusted[digest] = str(query)
        return str(query)


def check_document(query: str) -> str:
    """A document fit to register: it parses and is not too long. Returns its hash."""
    if len(query) > MAX_DOCUMENT_CHARS:
        raise InvalidInputError(
            f"a document is longer than {MAX_DOCUMENT_CHARS} characters", path="documents"
        )
    try:
        parse(query)
    except GraphQLError as exc:
        raise InvalidInputError(
            f"a document does not parse: {exc.message}", path="documents"
        ) from None
    return sha256(query)


async def register(tx: Tx, documents: Iterable[str], *, created_by: str | None) -> list[str]:
    """Register documents (idempotent); their hashes, in order."""
    documents = list(documents)
    hashes = [check_document(query) for query in documents]
    await tx.executemany(
        "INSERT INTO cms_persisted_queries (hash, query, created_by) VALUES ($1, $2, $3)"
        " ON CONFLICT (hash) DO NOTHING",
        [(digest, query, created_by) for digest, query in zip(hashes, documents, strict=True)],
    )
    return hashes


def read_documents(path: Path) -> list[str]:
    """The documents of a folder of `.graphql` files (each one document) or of a manifest.

    Manifests: Apollo's persisted query manifest (`{"format": "apollo-persisted-query-manifest",
    "operations": [{"id", "body"}, ...]}`) or a map of hash to document (GraphQL Code Generator's
    `persisted-documents.json`). Their ids must be the SHA-256 of the text, as APQ clients send.
    """
    if path.is_dir():
        files = sorted(path.rglob("*.graphql")) + sorted(path.rglob("*.gql"))
        if not files:
            raise InvalidInputError(f"no .graphql files in {path}")
        return [file.read_text() for file in files]
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read {path} as a JSON manifest: {exc}") from None
    if isinstance(manifest, dict) and isinstance(manifest.get("operations"), list):
        pairs = [
            (op.get("id"), op.get("body")) for op in manifest["operations"] if isinstance(op, dict)
        ]
    elif isinstance(manifest, dict):
        pairs = list(manifest.items())
    else:
        raise InvalidInputError(f"{path}: not a persisted query manifest")
    documents = []
    for digest, body in pairs:
        if not isinstance(body, str) or not isinstance(digest, str):
            raise InvalidInputError(f"{path}: each operation needs an id and a body")
        if digest != sha256(body):
            raise InvalidInputError(f"{path}: the id {digest} is not the SHA-256 of its document")
        documents.append(body)
    return documents
