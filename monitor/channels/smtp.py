"""SMTP delivery: STARTTLS or implicit TLS, AUTH, timeouts, one connection per burst.

The outbox sends a batch and then calls ``close()``, so a burst of alerts costs one
connection, one TLS handshake and one login. The server's reply decides what happens to
a delivery: 4xx, a lost connection or a timeout is transient (retry later), 5xx is
permanent (dead letter). TLS is never downgraded: a server that does not offer STARTTLS
when it is configured fails the delivery instead of receiving it in clear.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Callable
from functools import cached_property

import structlog

from monitor.channels.mime import build_email
from monitor.config import SmtpChannelConfig
from monitor.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from monitor.model import Message

log = structlog.get_logger("monitor.smtp")

# A server may end a reused connection between messages (idle or per-connection limits,
# often with 421); the message was not taken, so one fresh connection is worth a try.
_RECONNECT_CODES = frozenset({421})


class SmtpChannel:
    """Sends each message as a multipart/alternative mail to the configured recipients
    (or to ``Message.recipient`` when the outbox addressed it to one person)."""

    def __init__(self, name: str, config: SmtpChannelConfig) -> None:
        self.name = name
        self.config = config
        self._connection: smtplib.SMTP | None = None

    @property
    def where(self) -> str:
        return f"smtp {self.config.host}:{self.config.port}"

    def send(self, message: Message) -> None:
        recipients = [message.recipient] if message.recipient else list(self.config.to)
        # As smtplib's send_message decides: addresses beyond ASCII need SMTPUTF8.
        international = not all(a.isascii() for a in (self.config.sender, *recipients))
        mail = build_email(
            message,
            sender=self.config.sender,
            to=recipients,
            list_id=self.name,
            utf8=international,
        )
        refused = self._send_mail(mail, recipients, international)
        if refused:
            # The others have the mail already: sending it again would duplicate it.
            log.warning(
                "smtp_recipients_refused",
                refused={address: code for address, (code, _) in refused.items()},
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
            connection = smtplib.SMTP_SSL(
                config.host,
                config.port,
                local_hostname=self._local_hostname,
                timeout=timeout,
                context=self._tls_context,
            )
        else:
            connection = smtplib.SMTP(
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
        kind = _by_code(min(codes) if codes else 0)
        return kind(f"{where}: every recipient refused: {text}")
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
