"""Outgoing mail over SMTP: where it goes (`SMTP_URL`), and the invitation message.

`SMTP_URL` takes three schemes: `smtp://` (plain, for a local relay such as Mailpit), `smtp+tls://`
(STARTTLS, usually port 587) and `smtps://` (TLS from the first byte, usually port 465). A user and
password in the URL are used to log in; percent-encode any `@`, `:` or `/` in them.

Sending uses the standard library's `smtplib` in a worker thread: invitations are rare, so a thread
per message costs nothing worth a dependency, and the event loop never waits on a mail server.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parseaddr
from typing import TYPE_CHECKING, Literal
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from server.config import Settings

log = logging.getLogger(__name__)

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


class Mailer:
    """Sends messages through one SMTP server, off the event loop."""

    def __init__(self, server: SmtpServer, *, sender: str) -> None:
        self.server = server
        self.sender = sender
        # References to sends in flight: the event loop keeps only weak ones to tasks.
        self._pending: set[asyncio.Task[None]] = set()

    @classmethod
    def from_settings(cls, settings: Settings) -> Mailer | None:
        """The configured mailer, or None when `SMTP_URL` is unset (no mail is sent)."""
        if settings.smtp_url is None:
            return None
        return cls(parse_smtp_url(settings.smtp_url), sender=settings.mail_from)

    def send(self, message: EmailMessage) -> None:
        """Deliver one message, blocking until the server accepts it.

        Raises:
            OSError: the server cannot be reached (`smtplib.SMTPException` is one).
        """
        if message["From"] is None:
            message["From"] = self.sender
        server = self.server
        context = ssl.create_default_context()
        client: smtplib.SMTP
        if server.security == "tls":
            client = smtplib.SMTP_SSL(
                server.host, server.port, timeout=server.timeout, context=context
            )
        else:
            client = smtplib.SMTP(server.host, server.port, timeout=server.timeout)
        with client:
            if server.security == "starttls":
                client.starttls(context=context)
            if server.username is not None:
                client.login(server.username, server.password or "")
            client.send_message(message)

    def send_in_background(self, message: EmailMessage) -> asyncio.Task[None]:
        """Start sending and return at once; a failure is logged, never raised to the caller."""
        task = asyncio.create_task(self._send_logged(message))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return task

    async def _send_logged(self, message: EmailMessage) -> None:
        try:
            await asyncio.to_thread(self.send, message)
        except (OSError, ValueError) as exc:
            # ValueError: smtplib's answer to a malformed address.
            log.warning(
                "could not send %r to %s via %s:%d: %s",
                message["Subject"],
                message["To"],
                self.server.host,
                self.server.port,
                exc,
            )
        else:
            log.info("sent %r to %s", message["Subject"], message["To"])

    async def aclose(self) -> None:
        """Wait for the sends in flight (at shutdown, so no accepted invitation mail is lost)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)


def _one_line(text: str) -> str:
    # Names are user input: a line break in a header would end it and start another.
    return " ".join(text.split())


def invitation_message(
    *,
    to: str,
    organization_name: str,
    role: str,
    token: str,
    expires_at: datetime,
    invited_by: str | None = None,
) -> EmailMessage:
    """The invitation mail, carrying the token that `acceptInvitation` takes.

    Args:
        to: the invited address.
        organization_name: the organization being joined.
        role: the role the invitee will have.
        token: the invitation's secret, shown nowhere else.
        expires_at: when the invitation lapses.
        invited_by: who invited, for the greeting.
    """
    organization = _one_line(organization_name)
    message = EmailMessage()
    message["To"] = to
    message["Subject"] = f"You are invited to join {organization}"
    inviter = f"{_one_line(invited_by)} has invited you" if invited_by else "You are invited"
    message.set_content(
        f"{inviter} to join {organization} as {role}.\n"
        "\n"
        "Sign in (or create an account with this email address), then accept with this token:\n"
        "\n"
        f"    {token}\n"
        "\n"
        'For example: mutation { acceptInvitation(token: "<the token>") { role } }\n'
        "\n"
        f"The invitation expires on {expires_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC and can be used once.\n"
        "If you did not expect it, ignore this mail.\n"
    )
    return message
