"""The optional Apprise channel, through Apprise's json:// service to a loopback receiver."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from samples import SEED_BODY, open_app, write_config, write_document
from servers import HOST, WebhookReceiver
from sqlalchemy import text as sql

from monitor.alerts.outbox import deliver_due
from monitor.errors import ConfigError, TransientDeliveryError
from monitor.model import Message
from monitor.pipeline import poll_source
from monitor.text import utc_now

pytest.importorskip("apprise")
# Apprise loads its plugins lazily, and one of them imports imghdr (deprecated in 3.11).
pytestmark = pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")

from monitor.channels.apprise_channel import AppriseChannel, url_mark  # noqa: E402


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


def json_url(receiver: WebhookReceiver) -> str:
    return f"json://{HOST}:{receiver.port}/hook"


def alert(subject: str = "[gsomia] 지소미아 Seoul talks") -> Message:
    return Message("s1.gsomia.push", subject, "Seoul talks\nhttps://news.example.org/x", "")


def test_a_message_reaches_the_service(receiver: WebhookReceiver) -> None:
    channel = AppriseChannel("push", [json_url(receiver)])
    channel.send(alert("[gsomia] 지소미아\r\nBcc: x@example.org"))
    channel.close()

    [hook] = receiver.received()
    body = hook.json()
    assert "[gsomia] 지소미아 Bcc: x@example.org" == body["title"]
    assert body["message"].startswith("Seoul talks")


def test_a_failure_retries_and_reaches_only_the_services_that_missed_it(
    receiver: WebhookReceiver,
) -> None:
    with WebhookReceiver() as other:
        channel = AppriseChannel("push", [json_url(receiver), json_url(other)])
        other.fail_next(500)

        with pytest.raises(TransientDeliveryError, match="1 of 2 services") as missed:
            channel.send(alert())
        # The retry's message carries what the outbox kept of the error.
        assert [url_mark(json_url(receiver))] == list(missed.value.delivered_to)
        channel.send(replace(alert(), delivered_to=missed.value.delivered_to))

        assert 1 == len(receiver.received())
        assert 1 == len(other.received())


def test_a_retry_by_another_process_reaches_only_the_services_that_missed_it(
    receiver: WebhookReceiver, tmp_path: Path
) -> None:
    """Which URLs took the alert is kept with the delivery: a second App on the database
    (a restart, another instance) retries it on the URL that missed it only."""
    write_document(tmp_path / "news", "pact", "South Korea to let GSOMIA lapse", SEED_BODY)
    with WebhookReceiver() as other:
        urls = [json_url(receiver), json_url(other)]
        config = write_config(
            tmp_path,
            channels={"push": {"type": "apprise", "urls": urls}},
            watchlists=[{"name": "pact", "query": "GSOMIA", "channels": ["push"]}],
        )
        other.fail_next(500)
        with open_app(config) as app:
            assert 1 == poll_source(app, "news").deliveries
            first = deliver_due(app)
            with app.store.engine.connect() as connection:
                kept = connection.execute(sql("SELECT delivered_to FROM deliveries")).scalar()
        with open_app(config) as app:
            retried = deliver_due(app, now=utc_now() + timedelta(hours=2))
        assert (0, 1) == (first.sent, first.retried)
        assert (1, 0) == (retried.sent, retried.failed)
        assert (1, 1) == (len(receiver.received()), len(other.received()))
        # Each URL by its mark: a URL may hold a token, which the database must not keep.
        assert json.dumps([url_mark(urls[0])]) == kept


def test_a_url_apprise_does_not_know_fails_at_load_without_echoing_it() -> None:
    with pytest.raises(ConfigError, match=r"urls\[0\]") as raised:
        AppriseChannel("push", ["nosuchservice://token-abc123"])
    assert "token-abc123" not in str(raised.value)


def test_feed_text_cannot_mention_everyone_through_a_chat_service(
    receiver: WebhookReceiver,
) -> None:
    """Apprise's Discord service lets Discord ping whatever the text mentions (and with
    format=markdown allows the mentions it finds): a title saying @everyone would."""
    channel = AppriseChannel("push", [json_url(receiver)])
    channel.send(
        Message(
            "s1.gsomia.push",
            "[gsomia] @everyone @here <!channel> <@123> <@&456>",
            "Pact @everyone signed, <!here> and <@!789>, mail desk@example.org\n",
            "",
        )
    )

    [hook] = receiver.received()
    body = hook.json()
    for text in (body["title"], body["message"]):
        assert re.search(r"@(?:everyone|here)\b|<[@!]|@&?[0-9]", text) is None
    assert "desk@example.org" in body["message"]
