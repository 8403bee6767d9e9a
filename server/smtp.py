"""Where mail goes and who it is from: `SMTP_URL` and `MAIL_FROM` as the settings read them.

`SMTP_URL` takes three schemes: `smtp://` (plain, for a local relay such as Mailpit), `smtp+tls://`
(STARTTLS, usually port 587) and `smtps://` (TLS from the first byte, usually port 465). A user and
password in the URL are used to log in; percent-encode any `@`, `:` or `/` in them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.utils import parseaddr
from typing import Literal
from urllib.parse import unquote, urlsplit

Security = Literal["none", "starttls", "tls"]

_SCHEMES: dict[str, tuple[Security, int]] = {
    "smtp": ("none", 25),
    "smtp+tls": ("starttls", 587),
    "smtps": ("tls", 465),
    "smtp+ssl": ("tls", 465),
}


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """Where mail is handed over, parsed from `SMTP_URL`."""

    host: str
    port: int
    security: Security = "none"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 10.0


def parse_smtp_url(url: str) -> SmtpServer:
    """Parse `smtp://[user:password@]host[:port]` (or `smtp+tls://`, `smtps://`).

    Raises:
        ValueError: an unknown scheme, no host, or a bad port; the message says which.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ValueError(
            f"must start with smtp://, smtp+tls:// or smtps:// (got scheme {parts.scheme!r})"
        )
    if not parts.hostname:
        raise ValueError("must name a host (smtp://host:port)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port must be a number 1..65535") from None
    security, default_port = _SCHEMES[scheme]
    return SmtpServer(
        host=parts.hostname,
        port=port or default_port,
        security=security,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def check_address(value: str) -> str:
    """A `From` value: `Name <address>` or a bare address, on one line.

    Raises:
        ValueError: no `@` in the address, or a line break (which would let a value add headers).
    """
    _, address = parseaddr(value)
    if "@" not in address or "\r" in value or "\n" in value:
        raise ValueError(f"must be an address such as 'CMS <cms@example.com>' (got {value!r})")
    return value.strip()
