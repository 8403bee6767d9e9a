"""HTTP caching of published reads: ETag and 304, Cache-Control, Vary and surrogate keys.

Only compiled reads over GET that read the published perspective alone are cacheable (the resolver
path answers everything with `private, no-store`). Each carries a strong `ETag`, a digest of the
body, and a matching `If-None-Match` is answered with 304. A response for a published-only key is
`public` for `CACHE_MAX_AGE` seconds (and may be served stale while revalidating for
`CACHE_STALE_WHILE_REVALIDATE` more); any other key's is `private, no-store`, since that key may
read drafts and its answers are its own.

A public response lists the documents it was built from as surrogate keys (`Surrogate-Key`,
space-separated, read by Varnish's xkey and Fastly; `Cache-Tag`, comma-separated, Cloudflare's):
the ids of the documents, and `type:<organization>:<type>` for each type it reads as a list, so
that publishing, unpublishing or deleting a document purges exactly the responses it can change
(`server/delivery/outbox_worker.py` sends the same keys). Past `SURROGATE_KEYS_MAX` ids (a long page read
deep), the ids give way to the type keys of every type the response read.

A shared cache keeps apart what differs by `Vary`: the media type, the key and the organization.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from server.delivery.outbox_worker import type_key

VARY = "Accept, Authorization, X-Organization-Id"
NO_STORE = "private, no-store"


def etag(body: bytes) -> str:
    """A strong validator: the same bytes give the same tag."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def not_modified(if_none_match: str | None, tag: str) -> bool:
    """Whether `If-None-Match` names `tag` (compared weakly, as RFC 9110 asks for this header)."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == tag:
            return True
    return False


@dataclass(frozen=True)
class CachePolicy:
    max_age: int = 60
    stale_while_revalidate: int = 300
    keys_max: int = 64

    def public(self) -> str:
        return (
            f"public, max-age={self.max_age}, stale-while-revalidate={self.stale_while_revalidate}"
        )

    def surrogate_keys(
        self, keys_column: str, list_types: Iterable[str], organization_id: uuid.UUID
    ) -> list[str]:
        """The keys of a response from its read's keys column (`ids|types`, `run.keys_column`)."""
        ids_text, _, types_text = keys_column.partition("|")
        ids = ids_text.split()
        types = set(list_types)
        if len(ids) > self.keys_max:
            types.update(types_text.split())
            ids = []
        return ids + sorted(type_key(organization_id, name) for name in types)


def key_headers(keys: list[str]) -> dict[str, str]:
    return {"Surrogate-Key": " ".join(keys), "Cache-Tag": ",".join(keys)}
