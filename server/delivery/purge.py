"""Purging caches: after a change commits, the caches in `PURGE_URLS` drop what contained it.

Each cache gets `PURGE <url>` with the keys in a `Surrogate-Key` header (space-separated), the form
Varnish with xkey (`docs/delivery.md`) and Fastly read. A failed purge is tried again a few times
with a growing pause: a plain loop, since three tries need no retry library.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import httpx

log = logging.getLogger(__name__)

ATTEMPTS = 3
FIRST_PAUSE_SECONDS = 0.2


class Purger:
    """Sends purge requests for surrogate keys to every configured cache."""

    def __init__(self, urls: Iterable[str], client: httpx.AsyncClient) -> None:
        self.urls = tuple(urls)
        self.client = client

    async def purge(self, keys: Iterable[str]) -> bool:
        """Purge `keys` everywhere; False when a cache still refused after every attempt (logged)."""
        header = " ".join(sorted(set(keys)))
        if not self.urls or not header:
            return True
        results = await asyncio.gather(*(self._purge_one(url, header) for url in self.urls))
        return all(results)

    async def _purge_one(self, url: str, header: str) -> bool:
        pause = FIRST_PAUSE_SECONDS
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = await self.client.request(
                    "PURGE", url, headers={"Surrogate-Key": header}
                )
                if response.is_success:
                    return True
                problem = f"status {response.status_code}"
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if attempt < ATTEMPTS:
                await asyncio.sleep(pause)
                pause *= 2
        log.warning("purging %s at %s failed %d times (%s)", header, url, ATTEMPTS, problem)
        return False
