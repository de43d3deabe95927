"""The mail an SMTP channel sends (headers, encoding, identity) and how SMTP errors map
to retry or dead letter. No network: the live server tests are in integration/."""

from __future__ import annotations

import binascii
import email
import email.charset
import email.policy
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.channels.mime import (
    MAX_SUBJECT,
    POLICY,
    _qp_not_longer,
    build_email,
    encoded_words,
    header_value,
    message_id,
)
from monitor.channels.smtp import delivery_error, dot_stuffed
from monitor.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from monitor.model import Message

SENDER = "monitor@example.org"


def mail_for(subject: str, *, key: str = "s1.gsomia.desk", text: str = "body") -> EmailMessage:
    message = Message(key, subject, text, f"<p>{text}</p>")
    raw = build_email(message, sender=SENDER, to=["desk@example.org"], list_id="desk")
    return cast(EmailMessage, email.message_from_bytes(raw, policy=email.policy.default))


def test_korean_subject_is_rfc2047_encoded_and_reads_back() -> None:
    subject = "[gsomia] 한국, 지소미아 종료 유예 결정"
    message = Message("s1.gsomia.desk", subject, "본문", "<p>본문</p>")
    raw = build_email(message, sender=SENDER, to=["desk@example.org"])

    raw_subject = raw.split(b"\r\nSubject: ", 1)[1].split(b"\r\nDate:", 1)[0]
    assert raw_subject.isascii()
    assert b"=?utf-8?" in raw_subject
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert subject == parsed["Subject"]


def test_the_subject_encoding_ignores_libraries_that_re_register_utf8(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Apprise's e-mail plugin does this when it is imported.
    monkeypatch.setitem(
        email.charset.CHARSETS, "utf-8", (email.charset.QP, email.charset.QP, "utf-8")
    )
    mail = build_email(Message("k", "[gsomia] 지소미아", "t", "h"), sender=SENDER, to=["a@b.org"])

    assert b"Subject: =?utf-8?b?" in mail


def test_every_byte_is_seven_bit_so_any_server_takes_it() -> None:
    message = Message("k", "제목", "한국어 본문 " * 50, "<p>한국어 <b>본문</b></p>")
    raw = build_email(message, sender=SENDER, to=["desk@example.org"])

    assert raw.isascii()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    parts = {part.get_content_type(): part.get_content() for part in parsed.iter_parts()}
    assert ("한국어 본문 " * 50).strip() == parts["text/plain"].strip()
    assert "<p>한국어 <b>본문</b></p>" == parts["text/html"].strip()


def test_crlf_in_a_title_cannot_add_a_header() -> None:
    mail = mail_for("[gsomia] Pact news\r\nBcc: victim@example.org\r\n\r\nforged body")

    assert mail["Bcc"] is None
    assert "[gsomia] Pact news Bcc: victim@example.org forged body" == mail["Subject"]
    assert ["desk@example.org"] == [str(a) for a in mail["To"].addresses]


def test_any_line_break_character_in_a_title_becomes_a_space() -> None:
    mail = mail_for("[gsomia] Pact\x0bnews\x1efrom\u2028Seoul")

    assert "[gsomia] Pact news from Seoul" == mail["Subject"]


@pytest.mark.parametrize(
    "title",
    [
        "=?utf-8?q?Pact=0D=0ABcc:_victim@example.org=0D=0A=0D=0Aforged?=",
        "Pact =?utf-8?b?DQpCY2M6IHZpY3RpbUBleGFtcGxlLm9yZw==?= news",
        "=?utf-8?b?AG51bA==?=",
    ],
)
def test_an_encoded_word_in_a_title_stays_literal_text(title: str) -> None:
    raw = build_email(
        Message("s1.gsomia.desk", title, "body", "<p>body</p>"),
        sender=SENDER,
        to=["desk@example.org"],
    )
    mail = cast(EmailMessage, email.message_from_bytes(raw, policy=email.policy.default))

    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in head
    assert b"\x00" not in head
    assert mail["Bcc"] is None
    assert title == mail["Subject"]
    assert ["desk@example.org"] == [str(a) for a in mail["To"].addresses]


def test_a_megabyte_title_is_capped_in_the_subject() -> None:
    mail = mail_for("[gsomia] " + "x" * 1_000_000)

    assert MAX_SUBJECT == len(mail["Subject"])
    assert mail["Subject"].endswith("…")


def test_message_id_is_stable_per_delivery_and_names_it() -> None:
    first, again, other = mail_for("a"), mail_for("b"), mail_for("a", key="s2.gsomia.desk")

    assert "<s1.gsomia.desk@example.org>" == first["Message-ID"]
    assert first["Message-ID"] == again["Message-ID"]
    assert first["Message-ID"] != other["Message-ID"]
    assert "<desk.example.org>" == first["List-Id"]
    assert first["Date"] is not None


def reference_email(message: Message, sender: str, to: list[str], date: datetime) -> bytes:
    """The mail as the email package builds it (``set_content``, then ``add_alternative``
    for HTML): what build_email writes by hand must read back the same."""
    mail = EmailMessage(policy=POLICY)
    mail["From"] = header_value(sender)
    mail["To"] = ", ".join(header_value(address) for address in to)
    subject = header_value(message.subject)
    if subject.isascii() and "=?" not in subject:
        mail["Subject"] = subject
    else:
        mail.set_raw("Subject", encoded_words(subject, "Subject"))
    mail["Date"] = format_datetime(date)
    mail["Message-ID"] = message_id(message.delivery_key, sender.rsplit("@", 1)[-1])
    mail["X-Monitor-Delivery"] = header_value(message.delivery_key, 200)
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(message.text, subtype="plain", charset="utf-8")
    if message.html is not None:
        mail.add_alternative(message.html, subtype="html", charset="utf-8")
    return mail.as_bytes()


def read_back(raw: bytes) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    """Headers (without the boundary) and each part's type, charset and text (a mail of
    one part has its part's headers: its encoding, which may differ, is not compared)."""
    mail = cast(EmailMessage, email.message_from_bytes(raw, policy=email.policy.default))
    headers = [
        (k, str(v))
        for k, v in mail.items()
        if k not in ("Content-Type", "Content-Transfer-Encoding")
    ]
    parts = [
        (part.get_content_type(), str(part.get_content_charset()), part.get_content())
        for part in (mail.iter_parts() if mail.is_multipart() else [mail])
    ]
    return [*headers, ("Content-Type", mail.get_content_type())], parts


TEXTS = st.text(st.characters(exclude_categories=["Cs"]), max_size=400) | st.sampled_from(
    ["", "plain ascii", "x" * 200, "line\r\nbreaks\rand\nmore", ".\n.leading dot", "tail  \n", "="]
)


@settings(max_examples=200, deadline=None)
@given(
    subject=TEXTS,
    text=TEXTS,
    html=TEXTS | st.none(),
    to=st.sampled_from(
        [["desk@example.org"], ["a@b.org", "c.d+e@f.example"], ["Desk Team <desk@example.org>"]]
    ),
    sender=st.sampled_from(["monitor@example.org", "News Monitor <monitor@example.org>"]),
)
def test_the_mail_reads_back_as_the_email_package_would_build_it(
    subject: str, text: str, html: str | None, to: list[str], sender: str
) -> None:
    message = Message("s1.gsomia.desk", subject, text, html)
    date = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    raw = build_email(message, sender=sender, to=to, date=date)

    assert raw.isascii()
    assert read_back(reference_email(message, sender, to, date)) == read_back(raw)


def refused(*codes: int) -> smtplib.SMTPRecipientsRefused:
    return smtplib.SMTPRecipientsRefused(
        {f"r{i}@example.org": (code, b"said no") for i, code in enumerate(codes)}
    )


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (smtplib.SMTPResponseException(421, b"4.7.0 too busy"), TransientDeliveryError),
        (smtplib.SMTPDataError(451, b"4.3.0 try later"), TransientDeliveryError),
        (smtplib.SMTPDataError(554, b"5.7.1 rejected as spam"), PermanentDeliveryError),
        (smtplib.SMTPSenderRefused(553, b"5.7.1 not yours", SENDER), PermanentDeliveryError),
        (smtplib.SMTPAuthenticationError(535, b"5.7.8 bad credentials"), PermanentDeliveryError),
        (smtplib.SMTPAuthenticationError(454, b"4.7.0 auth unavailable"), TransientDeliveryError),
        (refused(550, 550), PermanentDeliveryError),
        (refused(450, 550), TransientDeliveryError),
        (smtplib.SMTPNotSupportedError("STARTTLS extension not supported"), PermanentDeliveryError),
        (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), TransientDeliveryError),
        (TimeoutError("timed out"), TransientDeliveryError),
        (ConnectionRefusedError(111, "Connection refused"), TransientDeliveryError),
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), PermanentDeliveryError),
    ],
)
def test_smtp_errors_map_to_retry_or_dead_letter(
    error: Exception, expected: type[DeliveryError]
) -> None:
    mapped = delivery_error("smtp mail.example.org:587", error)

    assert expected is type(mapped)
    assert str(mapped).startswith("smtp mail.example.org:587: ")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b".", b"..", b"\r\n", b"\n", b"\r", b"x", b" ."]), max_size=30))
def test_dots_starting_lines_are_doubled_as_smtplib_doubles_them(pieces: list[bytes]) -> None:
    mail = b"".join(pieces)
    assert smtplib._quote_periods(mail) == dot_stuffed(mail)  # type: ignore[attr-defined]


# Lines around the 73-78 characters where quoted-printable breaks them, and the bytes its
# length depends on: encoded ones, dots, blanks, text in several scripts.
SNIFF_LINES = st.lists(
    st.text(st.sampled_from([*"ab =.\t", "é", "한", "—", "\x00", "\x7f", "\x0c"]), max_size=90)
    | st.integers(70, 80).map(lambda n: "x" * (n - 1) + ".")
    | st.text(st.sampled_from("ab=.é"), min_size=100, max_size=300),
    max_size=12,
)


@settings(max_examples=1000, deadline=None)
@given(SNIFF_LINES)
def test_quoted_printable_is_chosen_as_encoding_the_sniff_would_choose_it(lines: list[str]) -> None:
    sniff = b"".join(line.encode() + b"\r\n" for line in lines[:10]) or b"\r\n"
    encoded = binascii.b2a_qp(sniff, istext=True)
    assert (len(encoded) <= len(binascii.b2a_base64(sniff))) == _qp_not_longer(sniff)


def test_without_html_the_mail_is_the_text_alone() -> None:
    """A channel that sends no HTML (``format: text``) mails a message that has some as
    its plain text alone, with the same headers."""
    message = Message("s1.gsomia.desk", "[gsomia] Seoul talks", "본문 text", "<p>html</p>")
    date = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    raw = build_email(message, sender=SENDER, to=["desk@example.org"], date=date, html=False)

    headers, parts = read_back(raw)
    [(content_type, charset, content)] = parts
    assert ("text/plain", "utf-8", "본문 text") == (content_type, charset, content.rstrip())
    assert b"html" not in raw.lower().replace(b"text/plain", b"")
    text_alone = Message(message.delivery_key, message.subject, message.text, None)
    assert read_back(reference_email(text_alone, SENDER, ["desk@example.org"], date)) == (
        headers,
        parts,
    )
