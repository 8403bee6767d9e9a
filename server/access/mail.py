"""Outgoing mail over SMTP (`server.smtp` says where it goes), and the invitation message.

Sending uses the standard library's `smtplib` in a worker thread: invitations are rare, so a thread
per message costs nothing worth a dependency, and the event loop never waits on a mail server.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from server.config import Settings

from server.smtp import SmtpServer, parse_smtp_url

log = logging.getLogger(__name__)


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
