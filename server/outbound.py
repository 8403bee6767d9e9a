"""Where the server may send requests on a tenant's behalf: webhook URLs and the allowed hosts.

A tenant chooses its webhooks' URLs, so without a check it could make the server call internal
services (the database's host, a cloud metadata address, an admin port on localhost). A URL is
allowed when its scheme is http or https and its host is allowed by `WEBHOOK_ALLOWED_HOSTS`:

- `*`: any host whose every address is public (`ipaddress`' `is_global`);
- a host name (`hooks.example.com`) or a suffix (`*.example.com`), an address or a network
  (`10.0.0.0/8`): allowed whatever its addresses, private ones included.

The host is resolved when a webhook is saved and again before every delivery, since a name may
come to point elsewhere later.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from server.errors import InvalidInputError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_HOST = re.compile(r"(\*\.)?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*")


def parse_allowed_host(entry: str) -> str | Network:
    """An entry of `WEBHOOK_ALLOWED_HOSTS`: `*`, a host name or `*.suffix` (lowercase), or a network.

    Raises:
        ValueError: the entry is none of these.
    """
    if entry == "*":
        return entry
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        pass
    if not _HOST.fullmatch(entry.lower()):
        raise ValueError(f"not a host name, address or network: {entry!r}")
    return entry.lower()


@dataclass(frozen=True)
class OutboundPolicy:
    """The allowed hosts, checked against a URL and the addresses its host resolves to."""

    allowed: tuple[str, ...] = ("*",)

    def _listed(self, host: str, addresses: list[Address]) -> bool:
        for entry in self.allowed:
            parsed = parse_allowed_host(entry)
            if isinstance(parsed, str):
                if parsed == host or (parsed.startswith("*.") and host.endswith(parsed[1:])):
                    return True
            elif addresses and all(address in parsed for address in addresses):
                return True
        return False

    async def check(self, url: str) -> None:
        """Raise `InvalidInputError` (path `url`) unless `url` may be called.

        Raises:
            InvalidInputError: not an http(s) URL, a host that does not resolve, or a private or
                loopback address that the allowed hosts do not name.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInputError("the URL must be an absolute http or https URL", path="url")
        if parts.username or parts.password:
            raise InvalidInputError("the URL must not carry credentials", path="url")
        host = parts.hostname.lower()
        addresses = await _resolve(host, parts.port or (443 if parts.scheme == "https" else 80))
        if self._listed(host, addresses):
            return
        if "*" in self.allowed and all(address.is_global for address in addresses):
            return
        raise InvalidInputError(
            f"the host {host} is not allowed: it is not public and WEBHOOK_ALLOWED_HOSTS does not"
            " name it",
            path="url",
        )


async def _resolve(host: str, port: int) -> list[Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise InvalidInputError(f"the host {host} does not resolve", path="url") from None
    # The scope of a link-local IPv6 address (`fe80::1%eth0`) is not part of the address.
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
