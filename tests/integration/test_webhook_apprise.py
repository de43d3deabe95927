"""The optional Apprise channel, through Apprise's json:// service to a loopback receiver."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from servers import HOST, WebhookReceiver

from monitor.errors import ConfigError, TransientDeliveryError
from monitor.model import Message

pytest.importorskip("apprise")
# Apprise loads its plugins lazily, and one of them imports imghdr (deprecated in 3.11).
pytestmark = pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")

from monitor.channels.apprise_channel import AppriseChannel  # noqa: E402 - needs apprise


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

        with pytest.raises(TransientDeliveryError, match="1 of 2 services"):
            channel.send(alert())
        channel.send(alert())

        assert 1 == len(receiver.received())
        assert 1 == len(other.received())


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
