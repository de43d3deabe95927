"""RFC 5322 messages from rendered alerts, shared by the Maildir and SMTP channels."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from email.charset import BASE64, Charset
from email.header import Header
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from monitor.model import Message

_LINE_BREAKS = re.compile(r"[\r\n\x00\u2028\u2029\x85]+")
MAX_SUBJECT = 250
# 7-bit bodies (quoted-printable or base64, whichever is shorter): an SMTP server that
# does not announce 8BITMIME must still take the mail unchanged.
POLICY = SMTP.clone(cte_type="7bit")


def header_value(value: str, limit: int = MAX_SUBJECT) -> str:
    """One line, no CR/LF (header injection), capped in length."""
    flat = _LINE_BREAKS.sub(" ", value).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def encoded_words(value: str, name: str) -> str:
    """A non-ASCII header value as folded RFC 2047 encoded words.

    Python 3.11's own folding drops the space where it splits two encoded words
    ("유예 결정" arrives as "유예결정"); the classic Header encoder keeps spaces inside
    the words, and its lines are short enough that the policy leaves them alone.
    """
    charset = Charset("utf-8")
    # Base64 explicitly: the shortest for most scripts, and immune to libraries that
    # re-register utf-8 process-wide (Apprise makes it quoted-printable).
    charset.header_encoding = BASE64
    return Header(value, charset, header_name=name).encode(linesep="\n")


def message_id(delivery_key: str, domain: str) -> str:
    """A Message-ID stable per delivery, so a resend after a crash is the same mail."""
    safe = re.sub(r"[^A-Za-z0-9.$_-]", "-", delivery_key)
    return f"<{safe}@{domain}>"


def build_email(
    message: Message,
    *,
    sender: str,
    to: Sequence[str],
    list_id: str | None = None,
    date: datetime | None = None,
) -> EmailMessage:
    """A multipart/alternative mail (text, then HTML) with stable identity headers."""
    mail = EmailMessage(policy=POLICY)
    domain = sender.rsplit("@", 1)[-1] or "news-monitor.invalid"
    mail["From"] = header_value(sender)
    mail["To"] = ", ".join(header_value(address) for address in to)
    subject = header_value(message.subject)
    if subject.isascii():
        mail["Subject"] = subject
    else:
        mail.set_raw("Subject", encoded_words(subject, "Subject"))
    mail["Date"] = format_datetime(date or datetime.now(UTC))
    mail["Message-ID"] = message_id(message.delivery_key, domain)
    if list_id:
        mail["List-Id"] = f"<{header_value(list_id, 100)}.{domain}>"
    mail["X-Monitor-Delivery"] = header_value(message.delivery_key, 200)
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(message.text, subtype="plain", charset="utf-8")
    mail.add_alternative(message.html, subtype="html", charset="utf-8")
    return mail
