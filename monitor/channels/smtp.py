"""SMTP delivery: STARTTLS or implicit TLS, AUTH, timeouts, one connection per burst.

The outbox sends a batch and then calls ``close()``, so a burst of alerts costs one
connection, one TLS handshake and one login. The server's reply decides what happens to
a delivery: 4xx, a lost connection or a timeout is transient (retry later), 5xx is
permanent (dead letter). TLS is never downgraded: a server that does not offer STARTTLS
when it is configured fails the delivery instead of receiving it in clear.

``send`` writes a mail up to its body and returns without reading the server's final
reply to it: that reply is read by the returned ``Pending``'s ``settle``, which the
outbox calls after rendering its next message, so the server reads and stores this mail
while we render the next. No other command is written before that reply is read (plain
RFC 5321: no PIPELINING needed), the reply belongs to this mail alone, and the outbox
records the mail as sent only once ``settle`` read a 250. A dropped connection or a 421,
at any step of a mail on a connection an earlier mail used, costs the mail one more try
on a fresh connection, as before the reply was deferred.

When the server takes a mail for some recipients and refuses others, a 5xx refusal is
final (logged; the mail counts as sent) but a 4xx one is not: the error names the
recipients that took it (``TransientDeliveryError.delivered_to``), the outbox keeps them
with the delivery, and its retry (``Message.delivered_to``), by this process after a
restart or by another instance, goes to the others only: no one gets it twice and no
one loses it to a full or busy mailbox.
"""

from __future__ import annotations

import contextlib
import smtplib
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache

import structlog

from monitor.channels.base import SENT, Pending
from monitor.config import SmtpChannelConfig
from monitor.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from monitor.model import Message

log = structlog.get_logger("monitor.smtp")

# A server may end a reused connection between messages (idle or per-connection limits,
# often with 421); the message was not taken, so one fresh connection is worth a try.
_RECONNECT_CODES = frozenset({421})


class _Connection(smtplib.SMTP):
    """smtplib's connection, sending a mail in two steps (``begin_mail``, ``end_mail``)
    so that its final reply can be read later, and with its commands costing less CPU:
    an address is quoted (parsed as an email address) once, not again for every mail and
    recipient, and the dots starting lines are doubled by a replace, not a multiline
    regex over the mail. Both were about a tenth of a delivery's CPU. The commands, and
    what a refusal does to the session (RSET, or closing on a 421), are smtplib's
    ``sendmail``'s."""

    def begin_mail(
        self, sender: str, recipients: Sequence[str], mail: bytes, options: Sequence[str]
    ) -> dict[str, tuple[int, bytes]]:
        """``sendmail`` up to the mail's body, its final reply left unread; raises as
        ``sendmail`` does, returns the recipients refused (some, never all)."""
        self.ehlo_or_helo_if_needed()
        mail_options = list(options) if self.does_esmtp else []
        if self.does_esmtp and self.has_extn("size"):
            mail_options.insert(0, f"size={len(mail)}")
        code, reply = self.mail(sender, mail_options)
        if code != 250:
            self._refused(code)
            raise smtplib.SMTPSenderRefused(code, reply, sender)
        refused: dict[str, tuple[int, bytes]] = {}
        for recipient in recipients:
            code, reply = self.rcpt(recipient)
            if code not in (250, 251):
                refused[recipient] = (code, reply)
            if code == 421:
                self.close()
                raise smtplib.SMTPRecipientsRefused(refused)
        if len(refused) == len(recipients):
            self._reset()
            raise smtplib.SMTPRecipientsRefused(refused)
        self.putcmd("data")
        code, reply = self.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        stuffed = dot_stuffed(mail)
        if not stuffed.endswith(b"\r\n"):
            stuffed += b"\r\n"
        self.send(stuffed + b".\r\n")
        return refused

    def end_mail(self) -> None:
        """Read the final reply to the mail ``begin_mail`` sent; raise unless it is 250."""
        code, reply = self.getreply()
        if code != 250:
            self._refused(code)
            raise smtplib.SMTPDataError(code, reply)

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

    def _refused(self, code: int) -> None:
        """End the mail's transaction after a refusal, as ``sendmail`` does."""
        if code == 421:
            self.close()
        else:
            self._reset()

    def _reset(self) -> None:
        """RSET, the server's being gone not mattering here (smtplib's ``_rset``)."""
        with contextlib.suppress(smtplib.SMTPServerDisconnected):
            self.rset()


class _SslConnection(_Connection, smtplib.SMTP_SSL):
    """``_Connection`` over implicit TLS."""


_quoted = lru_cache(maxsize=1024)(smtplib.quoteaddr)


def dot_stuffed(mail: bytes) -> bytes:
    """``mail`` with a dot doubled where it starts a line, as smtplib's DATA does it."""
    stuffed = mail.replace(b"\n.", b"\n..")
    return b"." + stuffed if stuffed.startswith(b".") else stuffed


@dataclass(frozen=True, slots=True)
class _Mail:
    """A message as one mail: its bytes, and its envelope."""

    data: bytes
    recipients: list[str]  # all it is addressed to
    pending: list[str]  # those an earlier attempt did not reach: the envelope's
    taken: frozenset[str]  # those it did
    international: bool  # an address beyond ASCII: sent with SMTPUTF8


class _Sending:
    """A mail the server has up to its end, its final reply not read yet; ``settle``
    reads it once and keeps the outcome."""

    def __init__(
        self,
        channel: SmtpChannel,
        mail: _Mail,
        connection: _Connection,
        refused: dict[str, tuple[int, bytes]],
        *,
        reused: bool,
    ) -> None:
        self.channel = channel
        self.mail = mail
        self.connection = connection
        self.refused = refused  # recipients refused at RCPT
        self.reused = reused  # the connection carried an earlier mail: worth a new one
        self._settled = False
        self._error: DeliveryError | None = None

    def settle(self) -> None:
        if not self._settled:
            self._settled = True
            self._error = self.channel.finish(self)
        if self._error is not None:
            raise self._error


class SmtpChannel:
    """Sends each message as a multipart/alternative mail to the configured recipients
    (or to ``Message.recipient`` when the outbox addressed it to one person)."""

    def __init__(self, name: str, config: SmtpChannelConfig) -> None:
        self.name = name
        self.config = config
        self._connection: _Connection | None = None
        self._outstanding: _Sending | None = None  # its final reply still to read

    @property
    def where(self) -> str:
        return f"smtp {self.config.host}:{self.config.port}"

    def send(self, message: Message) -> Pending:
        recipients = [message.recipient] if message.recipient else list(self.config.to)
        taken = message.delivered_to
        pending = [address for address in recipients if address not in taken]
        if not pending:
            return SENT
        # Imported with the first mail: a pass that finds nothing new never needs
        # email.policy and its header parsers.
        from monitor.channels.mime import build_email

        # As smtplib's send_message decides: addresses beyond ASCII need SMTPUTF8.
        international = not all(a.isascii() for a in (self.config.sender, *recipients))
        data = build_email(
            message,
            sender=self.config.sender,
            to=recipients,
            list_id=self.name,
            utf8=international,
        )
        self._settle_outstanding()
        self._outstanding = self._begin(_Mail(data, recipients, pending, taken, international))
        return self._outstanding

    def finish(self, sending: _Sending) -> DeliveryError | None:
        """Read ``sending``'s final reply: None if the server took the mail (for all of
        its recipients, or some refused for good), else why not."""
        if self._outstanding is sending:
            self._outstanding = None
        try:
            refused = self._end(sending)
        except DeliveryError as exc:
            return exc
        return self._refusals(sending.mail, refused)

    def close(self) -> None:
        self._settle_outstanding()
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.quit()
        except (smtplib.SMTPException, OSError):
            connection.close()

    def _settle_outstanding(self) -> None:
        """Read the reply still due before the connection is used again; its outcome
        stays with its ``Pending`` for the outbox."""
        if self._outstanding is not None:
            with contextlib.suppress(DeliveryError):  # kept by the Pending for its owner
                self._outstanding.settle()

    def _begin(self, mail: _Mail) -> _Sending:
        """Send ``mail`` up to its end; a kept connection that is gone (or answers 421)
        is replaced once."""
        reused = self._connection is not None
        try:
            connection = self._connection or self._connect()
            self._connection = connection
            refused = self._transmit(connection, mail)
        except (smtplib.SMTPException, OSError) as exc:
            self._reconnect_or_fail(exc, reused)
            return self._begin(mail)  # on a fresh connection: at most once more
        return _Sending(self, mail, connection, refused, reused=reused)

    def _end(self, sending: _Sending) -> dict[str, tuple[int, bytes]]:
        """The recipients refused of a mail the server took; a kept connection that is
        gone (or answers 421) before the final reply costs one more try on a new one."""
        try:
            sending.connection.end_mail()
        except (smtplib.SMTPException, OSError) as exc:
            self._reconnect_or_fail(exc, sending.reused)
            return self._end(self._begin(sending.mail))
        return sending.refused

    def _reconnect_or_fail(self, exc: smtplib.SMTPException | OSError, reused: bool) -> None:
        """Drop the connection after ``exc``; raise the delivery's error unless a fresh
        connection is worth a try."""
        self._drop()
        if not (reused and _worth_reconnecting(exc)):
            raise delivery_error(self.where, exc) from exc
        log.info("smtp_reconnecting", host=self.config.host, reason=str(exc)[:200])

    def _transmit(self, connection: _Connection, mail: _Mail) -> dict[str, tuple[int, bytes]]:
        options: tuple[str, ...] = ()
        if mail.international:
            if not connection.has_extn("smtputf8"):
                raise smtplib.SMTPNotSupportedError(
                    "an address needs SMTPUTF8, which the server does not offer"
                )
            options = ("SMTPUTF8", "BODY=8BITMIME")
        return connection.begin_mail(self.config.sender, mail.pending, mail.data, options)

    def _refusals(
        self, mail: _Mail, refused: dict[str, tuple[int, bytes]]
    ) -> TransientDeliveryError | None:
        """What the recipients refused at RCPT mean once the server took the mail: those
        refused for now get it again, the others have it already."""
        if refused:
            log.warning(
                "smtp_recipients_refused",
                refused={address: code for address, (code, _) in refused.items()},
            )
        later = {a: reply for a, reply in refused.items() if not 500 <= reply[0] < 600}
        if not later:
            return None
        text = "; ".join(
            f"{address}: {code} {_text(reply)}" for address, (code, reply) in later.items()
        )
        return TransientDeliveryError(
            f"{self.where}: {len(later)} of {len(mail.recipients)} recipients refused for "
            f"now: {text}",
            whole_channel=False,
            delivered_to=mail.taken | {a for a in mail.pending if a not in later},
        )

    def _connect(self) -> _Connection:
        config = self.config
        timeout = config.timeout.total_seconds()
        connection: _Connection
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
