"""RFC 5322 messages from rendered alerts, shared by the Maildir and SMTP channels.

The bytes are written here, in the layout the email package's generator writes for a
multipart/alternative ``EmailMessage`` under ``POLICY``: each body encoded as
``set_content`` would (7bit when it can be, else quoted-printable or base64, whichever is
shorter), plain headers as they are. Building and writing an ``EmailMessage`` parsed
every header two or three times and cost 2-3 ms a mail, most of a delivery's CPU. A
header that is not plain (long, non-ASCII, an address with a display name) is still
parsed and folded by the policy, as it was.
"""

from __future__ import annotations

import binascii
import re
import secrets
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from email.charset import BASE64, Charset
from email.header import Header
from email.policy import SMTP, EmailPolicy
from email.utils import format_datetime
from functools import lru_cache
from typing import Any

from monitor.model import Message

# Whatever str.splitlines() breaks at (the email package refuses those in a header), and NUL.
_LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x1c\x1d\x1e\x00\u2028\u2029\x85]+")
MAX_SUBJECT = 250
# 7-bit bodies (quoted-printable or base64, whichever is shorter): an SMTP server that
# does not announce 8BITMIME must still take the mail unchanged.
POLICY = SMTP.clone(cte_type="7bit")
_LINE = 78  # POLICY.max_line_length
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")
_BASE64_CHUNK = _LINE // 4 * 3  # bytes per 76-character base64 line
# What b2a_qp(istext=True) always writes as =XX: "=", bytes beyond "~", and control
# characters other than tab, LF and CR.
_QP_ENCODED = bytes([*range(9), 11, 12, *range(14, 32), ord("="), *range(127, 256)])


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
    utf8: bool = False,
    html: bool = True,
) -> bytes:
    """A multipart/alternative mail (text, then HTML) with stable identity headers, as
    CRLF-ended bytes; the text alone unless ``html`` and the message has HTML.
    ``utf8``: headers the policy folds may keep UTF-8 (for SMTPUTF8)."""
    policy = POLICY.clone(utf8=True) if utf8 else POLICY
    domain = sender.rsplit("@", 1)[-1] or "news-monitor.invalid"
    subject = header_value(message.subject)
    headers = [
        _header(policy, "From", header_value(sender), address=True),
        _header(policy, "To", ", ".join(header_value(address) for address in to), address=True),
        # A title that holds an encoded word ("=?utf-8?q?=0D=0ABcc:...?=") is encoded
        # whole: the policy's parser would decode it, CR/LF and all, into the header.
        _header(policy, "Subject", subject)
        if subject.isascii() and "=?" not in subject
        else policy.fold_binary("Subject", encoded_words(subject, "Subject")),
        _header(policy, "Date", format_datetime(date) if date else _utc_date(int(time.time()))),
        _header(policy, "Message-ID", message_id(message.delivery_key, domain)),
    ]
    if list_id:
        headers.append(_header(policy, "List-Id", f"<{header_value(list_id, 100)}.{domain}>"))
    headers.append(_header(policy, "X-Monitor-Delivery", header_value(message.delivery_key, 200)))
    headers.append(b"Auto-Submitted: auto-generated\r\n")
    text = _text_part(message.text, "plain")
    if not html or message.html is None:
        # The email package writes a single part's MIME-Version after its content headers.
        head, body = text.split(b"\r\n\r\n", 1)
        return b"".join([*headers, head, b"\r\nMIME-Version: 1.0\r\n\r\n", body])
    parts = [text, _text_part(message.html, "html")]
    boundary = _boundary(parts)
    return b"".join(
        [
            *headers,
            b"MIME-Version: 1.0\r\n",
            b'Content-Type: multipart/alternative;\r\n boundary="%s"\r\n' % boundary,
            b"\r\n--%s\r\n" % boundary,
            parts[0],
            b"\r\n--%s\r\n" % boundary,
            parts[1],
            b"\r\n--%s--\r\n" % boundary,
        ]
    )


@lru_cache(maxsize=2)
def _utc_date(second: int) -> str:
    """The Date of a mail written in this second (Unix time): formatted once a second,
    not once a mail (``format_datetime`` writes whole seconds)."""
    return format_datetime(datetime.fromtimestamp(second, UTC))


def _header(policy: EmailPolicy[Any], name: str, value: str, *, address: bool = False) -> bytes:
    """One header line: as it is when the policy would write it so (printable ASCII that
    fits on its line, no encoded-word lookalike, bare addresses), else parsed and folded
    by the policy."""
    plain = (
        value.isascii()
        and value.isprintable()
        and len(name) + 2 + len(value) <= _LINE
        and "=?" not in value
    )
    if plain and address:
        plain = all(_PLAIN_ADDRESS.fullmatch(one) for one in value.split(", "))
    if plain:
        return f"{name}: {value}\r\n".encode("ascii")
    return policy.fold_binary(*policy.header_store_parse(name, value))


def _text_part(content: str, subtype: str) -> bytes:
    encoding, payload = encode_body(content)
    head = f'Content-Type: text/{subtype}; charset="utf-8"\nContent-Transfer-Encoding: {encoding}'
    return f"{head}\n\n{payload}".replace("\n", "\r\n").encode("ascii")


def encode_body(content: str) -> tuple[str, str]:
    """``(Content-Transfer-Encoding, payload)`` of UTF-8 text for a 7-bit channel, payload
    lines ended by LF: the text itself when it is ASCII in short lines, else
    quoted-printable or base64 by the size of its first ten lines, the rule
    ``set_content`` follows (base64 encodes the text's canonical CRLF line ends)."""
    lines = content.encode("utf-8").splitlines()
    body = b"\n".join(lines) + b"\n"
    if max(map(len, lines), default=0) <= _LINE and body.isascii():
        return "7bit", body.decode("ascii")
    if _qp_not_longer(b"\r\n".join(lines[:10]) + b"\r\n"):
        return "quoted-printable", binascii.b2a_qp(body, istext=True).decode("ascii")
    canonical = b"\r\n".join(lines) + b"\r\n"
    encoded = (
        binascii.b2a_base64(canonical[start : start + _BASE64_CHUNK])
        for start in range(0, len(canonical), _BASE64_CHUNK)
    )
    return "base64", b"".join(encoded).decode("ascii")


def _qp_not_longer(sniff: bytes) -> bool:
    """Whether ``b2a_qp(sniff, istext=True)`` is no longer than ``b2a_base64(sniff)``
    (``sniff``: lines ended by CRLF), told by bounds on its length where they can: the
    first ten lines of an alert's HTML are often all of it, and encoding them as
    quoted-printable only to measure them took as long as encoding the body.

    Quoted-printable writes ``n`` bytes as ``n + 2E + 2W + 3S`` (binascii's b2a_qp):
    E bytes written as ``=XX`` (at least those always encoded, at most those and every
    dot, since a dot that starts a line and ends it is encoded), W lines ending in a
    blank (its ``=20``; one at most per line) and S soft breaks (``=`` and a line end;
    one at most per 73 characters of a line). The bounds alone decided every sniff of
    5,000 of the corpus's articles, as text and as escaped HTML.
    """
    size = len(sniff)
    base64 = 4 * -(-size // 3) + 1  # one line and its newline
    encoded = size - len(sniff.translate(None, _QP_ENCODED))
    if size + 2 * encoded > base64:
        return False
    at_most = encoded + sniff.count(b".")
    longest = size + 2 * at_most + 2 * sniff.count(b"\n") + 3 * ((size + 2 * at_most) // 73)
    if longest <= base64:
        return True
    return len(binascii.b2a_qp(sniff, istext=True)) <= base64


def _boundary(parts: Sequence[bytes]) -> bytes:
    """A boundary no part contains."""
    while True:
        boundary = b"=_nm_" + secrets.token_hex(16).encode("ascii")
        if not any(boundary in part for part in parts):
            return boundary
