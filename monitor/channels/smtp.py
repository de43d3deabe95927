"""SMTP delivery: STARTTLS or implicit TLS, AUTH, timeouts, one connection per burst.

The outbox sends a batch and then calls ``close()``, so a burst of alerts costs one
connection, one TLS handshake and one login. The server's reply decides what happens to
a delivery: 4xx, a lost connection or a timeout is transient (retry later), 5xx is
permanent (dead letter). TLS is never downgraded: a server that does not offer STARTTLS
when it is configured fails the delivery instead of receiving it in clear.

When the server takes a mail for some recipients and refuses others, a 5xx refusal is
final (logged; the mail counts as sent) but a 4xx one is not: the error names the
recipients that took it (``TransientDeliveryError.delivered_to``), the outbox keeps them
with the delivery, and its retry (``Message.delivered_to``), by this process after a
restart or by another instance, goes to the others only: no one gets it twice and no
one loses it to a full or busy mailbox.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Callable, Sequence
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING

import structlog

from monitor.config import SmtpChannelConfig
from monitor.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from monitor.model import Message

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

log = structlog.get_logger("monitor.smtp")

# A server may end a reused connection between messages (idle or per-connection limits,
# often with 421); the message was not taken, so one fresh connection is worth a try.
_RECONNECT_CODES = frozenset({421})


class _Connection(smtplib.SMTP):
    """smtplib's connection, with its commands for a mail costing less CPU: an address is
    quoted (parsed as an email address) once, not again for every mail and recipient,
    and the dots starting lines are doubled by a replace, not a multiline regex over the
    mail. Both were about a tenth of a delivery's CPU. ``sendmail``'s flow (refusals,
    421, RSET) is smtplib's own; each command here is as smtplib sends it."""

    def mail(self, sender: str, options: Sequence[str] = ()) -> tuple[int, bytes]:
        optionlist = ""
        if options and self.does_esmtp:
            if any(option.lower() == "smtputf8" for option in options):
                if not self.has_extn("smtputf8"):
                    raise smtplib.SMTPNotSupportedError("SMTPUTF8 not supported by server")
                self.command_encoding = "utf-8"
            optionlist = " " + " ".join(options)
        self.putcmd("mail", f"FROM:{_quoted(sender)}{optionlist}")
        return self.getreply()

    def rcpt(self, recip: str, options: Sequence[str] = ()) -> tuple[int, bytes]:
        optionlist = " " + " ".join(options) if options and self.does_esmtp else ""
        self.putcmd("rcpt", f"TO:{_quoted(recip)}{optionlist}")
        return self.getreply()

    def data(self, msg: ReadableBuffer | str) -> tuple[int, bytes]:
        if isinstance(msg, str):  # not what the channel sends: smtplib's own way
            return super().data(msg)
        self.putcmd("data")
        code, reply = self.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        stuffed = dot_stuffed(bytes(msg))
        if not stuffed.endswith(b"\r\n"):
            stuffed += b"\r\n"
        self.send(stuffed + b".\r\n")
        return self.getreply()


class _SslConnection(_Connection, smtplib.SMTP_SSL):
    """``_Connection`` over implicit TLS."""


_quoted = lru_cache(maxsize=1024)(smtplib.quoteaddr)


def dot_stuffed(mail: bytes) -> bytes:
    """``mail`` with a dot doubled where it starts a line, as smtplib's DATA does it."""
    stuffed = mail.replace(b"\n.", b"\n..")
    return b"." + stuffed if stuffed.startswith(b".") else stuffed


class SmtpChannel:
    """Sends each message as a mail (see ``build_email``) to the configured recipients
    (or to ``Message.recipient`` when the outbox addressed it to one person)."""

    def __init__(self, name: str, config: SmtpChannelConfig) -> None:
        self.name = name
        self.config = config
        self.wants_html = config.format == "html"
        self._connection: smtplib.SMTP | None = None

    @property
    def where(self) -> str:
        return f"smtp {self.config.host}:{self.config.port}"

    def send(self, message: Message) -> None:
        recipients = [message.recipient] if message.recipient else list(self.config.to)
        taken = message.delivered_to
        pending = [address for address in recipients if address not in taken]
        if not pending:
            return
        # Imported with the first mail: a pass that finds nothing new never needs
        # email.policy and its header parsers.
        from monitor.channels.mime import build_email

        # As smtplib's send_message decides: addresses beyond ASCII need SMTPUTF8.
        international = not all(a.isascii() for a in (self.config.sender, *recipients))
        mail = build_email(
            message,
            sender=self.config.sender,
            to=recipients,
            list_id=self.name,
            utf8=international,
            html=self.wants_html,
        )
        refused = self._send_mail(mail, pending, international)
        if refused:
            log.warning(
                "smtp_recipients_refused",
                refused={address: code for address, (code, _) in refused.items()},
            )
        # The others have the mail already: only those refused for now get it again.
        later = {a: reply for a, reply in refused.items() if not 500 <= reply[0] < 600}
        if not later:
            return
        text = "; ".join(
            f"{address}: {code} {_text(reply)}" for address, (code, reply) in later.items()
        )
        raise TransientDeliveryError(
            f"{self.where}: {len(later)} of {len(recipients)} recipients refused for now: {text}",
            whole_channel=False,
            delivered_to=taken | {a for a in pending if a not in later},
        )

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.quit()
        except (smtplib.SMTPException, OSError):
            connection.close()

    def _send_mail(
        self, mail: bytes, recipients: list[str], international: bool
    ) -> dict[str, tuple[int, bytes]]:
        reused = self._connection is not None
        try:
            return self._transmit(mail, recipients, international)
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            if not (reused and _worth_reconnecting(exc)):
                raise delivery_error(self.where, exc) from exc
            log.info("smtp_reconnecting", host=self.config.host, reason=str(exc)[:200])
        # On a fresh connection: at most once more.
        return self._send_mail(mail, recipients, international)

    def _transmit(
        self, mail: bytes, recipients: list[str], international: bool
    ) -> dict[str, tuple[int, bytes]]:
        if self._connection is None:
            self._connection = self._connect()
        options: tuple[str, ...] = ()
        if international:
            if not self._connection.has_extn("smtputf8"):
                raise smtplib.SMTPNotSupportedError(
                    "an address needs SMTPUTF8, which the server does not offer"
                )
            options = ("SMTPUTF8", "BODY=8BITMIME")
        return self._connection.sendmail(self.config.sender, recipients, mail, options)

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        timeout = config.timeout.total_seconds()
        connection: smtplib.SMTP
        if config.tls:
            connection = _SslConnection(
                config.host,
                config.port,
                local_hostname=self._local_hostname,
                timeout=timeout,
                context=self._tls_context,
            )
        else:
            connection = _Connection(
                config.host, config.port, local_hostname=self._local_hostname, timeout=timeout
            )
        try:
            connection.ehlo()
            if config.starttls:
                connection.starttls(context=self._tls_context)
                connection.ehlo()
            if config.username:
                password = config.password.get_secret_value() if config.password else ""
                connection.login(config.username, password)
        except BaseException:
            connection.close()
            raise
        log.debug("smtp_connected", host=config.host, port=config.port, security=self.security)
        return connection

    @property
    def security(self) -> str:
        return "tls" if self.config.tls else "starttls" if self.config.starttls else "plain"

    @cached_property
    def _tls_context(self) -> ssl.SSLContext:
        cafile = str(self.config.ca_file) if self.config.ca_file else None
        return ssl.create_default_context(cafile=cafile)

    @cached_property
    def _local_hostname(self) -> str:
        # smtplib would look the name up again for every connection.
        return socket.getfqdn()

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


def _worth_reconnecting(exc: BaseException) -> bool:
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return True
    return isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code in _RECONNECT_CODES


def delivery_error(where: str, exc: BaseException) -> DeliveryError:
    """What an smtplib or socket error means for the delivery: retry, or give up."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = list(exc.recipients.values())
        codes = [code for code, _ in replies]
        text = "; ".join(
            f"{address}: {code} {_text(reply)}" for address, (code, reply) in exc.recipients.items()
        )
        message = f"{where}: every recipient refused: {text}"
        if codes and min(codes) >= 500:
            return PermanentDeliveryError(message)
        # Refused addresses, answered at once: the channel's other mails may go now.
        return TransientDeliveryError(message, whole_channel=False)
    if isinstance(exc, smtplib.SMTPResponseException):
        kind = _by_code(exc.smtp_code)
        return kind(f"{where}: {exc.smtp_code} {_text(exc.smtp_error)}")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return PermanentDeliveryError(f"{where}: {exc} (check starttls/tls/username)")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return PermanentDeliveryError(f"{where}: certificate not trusted: {exc} (set ca_file?)")
    if isinstance(exc, TimeoutError):
        return TransientDeliveryError(f"{where}: timed out")
    return TransientDeliveryError(f"{where}: {exc or type(exc).__name__}")


def _by_code(code: int) -> Callable[[str], DeliveryError]:
    return PermanentDeliveryError if 500 <= code < 600 else TransientDeliveryError


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())[:300]
