"""Hostile feed text through the whole pipeline to real SMTP and webhook servers: markup
comes out escaped, CR/LF stripped from headers, a megabyte title capped, Korean readable."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

import pytest
from samples import open_app, write_config, write_document
from servers import HOST, ReceivedHook, ReceivedMail, SmtpServer, WebhookReceiver, new_secret

from monitor.alerts.outbox import deliver_due
from monitor.channels.mime import MAX_SUBJECT
from monitor.pipeline import poll_source
from monitor.text import MAX_TITLE

SECRET = new_secret()
WATCHLISTS = [
    {"name": "gsomia", "query": "GSOMIA OR 지소미아", "channels": ["desk", "chat", "slack"]}
]
KOREAN = "한미, 지소미아 종료 유예 합의"
# An RSS file whose title carries CR/LF and a Bcc header, as character references.
INJECTION_FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Hostile</title><link>https://hostile.example/</link>
<item><guid>inject-1</guid><link>javascript:alert(document.cookie)</link>
<title>GSOMIA extended&#13;&#10;Bcc: victim@example.org&#13;&#10;&#13;&#10;forged body</title>
<description>Seoul extends GSOMIA at the last minute.</description></item>
</channel></rss>
"""


@pytest.fixture(scope="module")
def delivered(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[list[ReceivedMail], list[ReceivedHook]]]:
    """Every hostile story polled and delivered to an SMTP server and two webhooks."""
    tmp_path = tmp_path_factory.mktemp("hostile")
    news = tmp_path / "news"
    write_document(
        news, "script", "<script>alert(1)</script> GSOMIA", "<img src=x onerror=alert(2)>"
    )
    write_document(news, "huge", "GSOMIA " + "x" * 1_000_000, "A title of a megabyte.")
    write_document(news, "korean", KOREAN, "한미 양국은 지소미아 종료를 유예하기로 합의했다.")
    (news / "inject.xml").write_text(INJECTION_FEED, encoding="utf-8")
    with SmtpServer() as mail, WebhookReceiver(SECRET) as hooks:
        channels = {
            "desk": {"type": "smtp", "host": HOST, "port": mail.port, "to": ["desk@example.org"]},
            "chat": {"type": "webhook", "url": hooks.url, "secret": SECRET},
            "slack": {"type": "webhook", "url": hooks.url, "secret": SECRET, "format": "slack"},
        }
        with open_app(write_config(tmp_path, channels=channels, watchlists=WATCHLISTS)) as app:
            assert 12 == poll_source(app, "news").deliveries
            report = deliver_due(app)
        assert (12, 0) == (report.sent, report.failed)
        assert [] == hooks.rejected
        yield mail.received(), hooks.received()


def by_title(mails: list[ReceivedMail], start: str) -> tuple[ReceivedMail, EmailMessage]:
    [found] = [m for m in mails if str(m.message["Subject"]).startswith(f"[gsomia] {start}")]
    return found, found.message


def parts(message: EmailMessage) -> tuple[str, str]:
    text, html = (message.get_body((kind,)) for kind in ("plain", "html"))
    assert text is not None
    assert html is not None
    return str(text.get_content()), str(html.get_content())


def headline(slack: dict[str, Any]) -> str:
    return str(slack["blocks"][0]["text"]["text"])


def hooks_for(hooks: list[ReceivedHook], start: str) -> tuple[dict[str, Any], dict[str, Any]]:
    bodies = [hook.json() for hook in hooks]
    [generic] = [b for b in bodies if b.get("item", {}).get("title", "").startswith(start)]
    [slack] = [b for b in bodies if "blocks" in b and headline(b).startswith(f"[gsomia] {start}")]
    return generic, slack


def test_markup_is_escaped_in_html_and_slack(
    delivered: tuple[list[ReceivedMail], list[ReceivedHook]],
) -> None:
    mails, hooks = delivered
    _, message = by_title(mails, "<script>")
    text, html = parts(message)

    assert "<script>" not in html
    assert "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; GSOMIA" in html
    assert "<script>alert(1)</script> GSOMIA" in text  # plain text is not markup
    generic, slack = hooks_for(hooks, "<script>")
    assert "<script>alert(1)</script> GSOMIA" == generic["item"]["title"]  # JSON is data
    assert "&lt;script&gt;" in slack["blocks"][1]["text"]["text"]


def test_crlf_in_a_title_cannot_forge_headers_or_recipients(
    delivered: tuple[list[ReceivedMail], list[ReceivedHook]],
) -> None:
    mails, hooks = delivered
    mail, message = by_title(mails, "GSOMIA extended")

    assert ("desk@example.org",) == mail.recipients
    assert message["Bcc"] is None
    assert "[gsomia] GSOMIA extended Bcc: victim@example.org forged body" == message["Subject"]
    assert b"\r\nBcc:" not in mail.raw.split(b"\r\n\r\n", 1)[0]
    _, html = parts(message)
    assert "javascript:" not in html  # the feed's javascript: link is not a link
    generic, _ = hooks_for(hooks, "GSOMIA extended")
    assert "\n" not in generic["item"]["title"]


def test_a_megabyte_title_is_capped_everywhere(
    delivered: tuple[list[ReceivedMail], list[ReceivedHook]],
) -> None:
    mails, hooks = delivered
    mail, message = by_title(mails, "GSOMIA xxx")

    assert MAX_SUBJECT == len(message["Subject"])
    assert len(mail.raw) < 20_000
    generic, slack = hooks_for(hooks, "GSOMIA xxx")
    assert MAX_TITLE == len(generic["item"]["title"])
    assert len(headline(slack)) <= 150


def test_korean_stays_readable_and_the_subject_is_rfc2047(
    delivered: tuple[list[ReceivedMail], list[ReceivedHook]],
) -> None:
    mails, hooks = delivered
    mail, _ = by_title(mails, KOREAN)

    raw_headers = mail.raw.split(b"\r\n\r\n", 1)[0]
    assert raw_headers.isascii()
    assert b"Subject: =?utf-8?b?" in raw_headers
    reparsed = email.message_from_bytes(mail.raw, policy=email.policy.default)
    assert f"[gsomia] {KOREAN}" == reparsed["Subject"]
    text, html = parts(cast(EmailMessage, reparsed))
    assert KOREAN in text
    assert KOREAN in html
    generic, _ = hooks_for(hooks, KOREAN)
    assert KOREAN == generic["item"]["title"]


def json_feed_file(tmp_path: Path, name: str, items: bytes) -> dict[str, Any]:
    """A JSON Feed of ``items`` (its raw JSON) as ``news/name`` under ``tmp_path``; the
    channels of a Maildir that takes the alerts."""
    news = tmp_path / "news"
    news.mkdir()
    feed = b'{"version": "https://jsonfeed.org/version/1.1", "items": [' + items + b"]}"
    (news / name).write_bytes(feed)
    return {"box": {"type": "maildir", "path": str(tmp_path / "mail"), "to": ["d@example.org"]}}


def test_lone_surrogates_in_a_json_feed_are_stored_as_replacement_characters(
    tmp_path: Path,
) -> None:
    # Valid JSON: a \ud800 escape with no pair decodes to a lone surrogate, which no
    # database driver encodes; one such entry failed the whole poll.
    channels = json_feed_file(
        tmp_path,
        "broken.json",
        b'{"id": "s\\ud800", "title": "GSOMIA \\udc00 extended", "url": "https://a.example/\\ud800",'
        b' "authors": [{"name": "Kim \\udfff"}], "content_html": "<p>GSOMIA \\ud800 body</p>"},'
        b'{"id": "ok", "title": "GSOMIA fine", "content_text": "GSOMIA"}',
    )
    with open_app(write_config(tmp_path, channels=channels)) as app:
        outcome = poll_source(app, "news")
        report = deliver_due(app)
        items = sorted(app.store.items(), key=lambda item: item.title)

    assert (True, 2) == (outcome.ok, outcome.new)
    assert (2, 0) == (report.sent, report.failed)
    assert ["GSOMIA fine", "GSOMIA \ufffd extended"] == [item.title for item in items]
    assert ("guid:s\ufffd", "Kim \ufffd") == (items[1].key, items[1].author)


def test_a_nul_is_replaced_alike_in_the_stored_text_and_the_alert(tmp_path: Path) -> None:
    channels = json_feed_file(
        tmp_path,
        "nul.json",
        b'{"id": "n", "title": "GSOMIA \\u0000 extended",'
        b' "content_text": "Seoul keeps GSOMIA\\u0000 alive"}',
    )
    with open_app(write_config(tmp_path, channels=channels)) as app:
        assert 1 == poll_source(app, "news").new
        assert 1 == deliver_due(app).sent
        [item] = app.store.items()
    # A title drops its control characters (one_line); a body's NUL is marked.
    assert ("GSOMIA extended", "Seoul keeps GSOMIA\ufffd alive") == (item.title, item.body)
    [mail] = (tmp_path / "mail" / "new").iterdir()
    message = email.message_from_bytes(mail.read_bytes(), policy=email.policy.default)
    text = cast(EmailMessage, message.get_body(("plain",))).get_content()
    assert "\x00" not in text
    assert "Seoul keeps GSOMIA\ufffd alive" in text  # the snippet, as stored


def test_a_control_character_in_a_title_still_separates_its_words(tmp_path: Path) -> None:
    """A BEL or NEL between two words is dropped from the stored title, but the words stay
    two: the watch-list matches the second, as it did when the title kept the control."""
    channels = json_feed_file(
        tmp_path,
        "bel.json",
        b'{"id": "bel", "title": "Seoul\\u0007GSOMIA extended", "content_text": "Talks."},'
        b'{"id": "nel", "title": "Tokyo\\u0085GSOMIA kept", "content_text": "Talks."}',
    )
    with open_app(
        write_config(
            tmp_path, channels=channels, watchlists=[{**WATCHLISTS[0], "channels": ["box"]}]
        )
    ) as app:
        assert 2 == poll_source(app, "news").deliveries
        titles = sorted(item.title for item in app.store.items())
    assert ["Seoul GSOMIA extended", "Tokyo GSOMIA kept"] == titles
