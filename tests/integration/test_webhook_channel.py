"""WebhookChannel against a real loopback receiver that verifies Standard Webhooks
signatures with the ``standardwebhooks`` package: formats, failures, connection reuse."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from samples import alert_view
from servers import WebhookReceiver, new_secret

from monitor.alerts.render import Renderer
from monitor.channels.webhook import WebhookChannel
from monitor.config import WebhookChannelConfig
from monitor.errors import PermanentDeliveryError, TransientDeliveryError
from monitor.model import Message

SECRET = new_secret()
RENDERER = Renderer()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SECRET) as server:
        yield server


def webhook(receiver: WebhookReceiver, **settings: Any) -> WebhookChannel:
    config = WebhookChannelConfig.model_validate(
        {"type": "webhook", "url": receiver.url, "secret": SECRET, "timeout": "5s", **settings}
    )
    return WebhookChannel("chat", config, RENDERER)


def alert(n: int = 1) -> Message:
    return RENDERER.render_alert(alert_view(), f"s{n}.gsomia.chat")


@pytest.mark.parametrize("format", ["generic", "slack", "discord", "teams"])
def test_each_format_arrives_signed(receiver: WebhookReceiver, format: str) -> None:
    channel = webhook(receiver, format=format)
    channel.send(alert())
    channel.close()

    [hook] = receiver.received()
    assert [] == receiver.rejected
    assert "s1.gsomia.chat" == hook.id
    assert "application/json" == hook.headers["content-type"]
    assert isinstance(hook.json(), dict)


def test_custom_format_arrives_signed(receiver: WebhookReceiver) -> None:
    channel = webhook(
        receiver, format="custom", body_template='{"text": {{ message.subject | tojson }}}'
    )
    channel.send(alert())
    channel.close()

    [hook] = receiver.received()
    assert {"text": alert().subject} == hook.json()


def test_a_wrong_secret_is_refused_by_the_receiver_and_not_retried(
    receiver: WebhookReceiver,
) -> None:
    channel = webhook(receiver, secret=new_secret())

    with pytest.raises(PermanentDeliveryError, match="HTTP 401"):
        channel.send(alert())
    channel.close()
    assert [] == receiver.received()
    assert 1 == len(receiver.rejected)


def test_a_burst_shares_one_connection(receiver: WebhookReceiver) -> None:
    channel = webhook(receiver)
    for n in range(5):
        channel.send(alert(n))
    channel.close()
    channel.send(alert(5))
    channel.close()

    peers = [hook.peer for hook in receiver.received()]
    assert 1 == len(set(peers[:5]))
    assert peers[5] != peers[0]


def test_5xx_and_429_retry_with_retry_after(receiver: WebhookReceiver) -> None:
    channel = webhook(receiver)
    receiver.fail_next(503, headers={"retry-after": "90"})
    with pytest.raises(TransientDeliveryError, match="HTTP 503") as unavailable:
        channel.send(alert())
    receiver.fail_next(429, headers={"retry-after": "7"})
    with pytest.raises(TransientDeliveryError, match="HTTP 429") as limited:
        channel.send(alert())
    channel.send(alert())
    channel.close()

    assert (90.0, 7.0) == (unavailable.value.retry_after, limited.value.retry_after)
    assert ["s1.gsomia.chat"] == receiver.ids()


def test_other_4xx_do_not_retry(receiver: WebhookReceiver) -> None:
    receiver.fail_next(404)
    channel = webhook(receiver)

    with pytest.raises(PermanentDeliveryError, match="HTTP 404"):
        channel.send(alert())
    channel.close()


def test_a_receiver_that_is_down_is_transient() -> None:
    receiver = WebhookReceiver(SECRET)
    channel = webhook(receiver)

    with pytest.raises(TransientDeliveryError):
        channel.send(alert())
    with receiver:
        channel.send(alert())
        channel.close()
        assert ["s1.gsomia.chat"] == receiver.ids()


def test_a_slow_receiver_times_out_and_keeps_nothing(receiver: WebhookReceiver) -> None:
    channel = webhook(receiver, timeout="0.2s")
    with receiver.stall(), pytest.raises(TransientDeliveryError, match="timed out"):
        channel.send(alert())
    channel.close()
    # The retry on the usual timeout: 0.2 s is for the stall, not for a loaded machine.
    again = webhook(receiver)
    again.send(alert())
    again.close()

    assert ["s1.gsomia.chat"] == receiver.ids()


def test_a_restarted_receiver_is_reached_on_a_new_connection(receiver: WebhookReceiver) -> None:
    channel = webhook(receiver)
    channel.send(alert(1))
    receiver.stop()
    receiver.start()
    channel.send(alert(2))
    channel.close()

    assert ["s1.gsomia.chat", "s2.gsomia.chat"] == receiver.ids()


def test_an_answer_that_echoes_the_url_does_not_carry_its_token(receiver: WebhookReceiver) -> None:
    # Express answers an unknown route "Cannot POST /path": a Slack-style URL's token.
    token = "T0001/B0002/k3yInTh3Path0fTheHook"
    channel = webhook(receiver, url=f"{receiver.url}/{token}?key=qu3ryS3cretValue")
    path = f"/hook/{token}"
    receiver.fail_next(404, body=f"<pre>Cannot POST {path}?key=qu3ryS3cretValue</pre>".encode())
    receiver.fail_next(503, body=f"upstream for {receiver.url}/{token} is down".encode())
    receiver.fail_next(400, body=b"bad hook k3yInTh3Path0fTheHook")

    errors = []
    for _ in range(3):
        with pytest.raises((PermanentDeliveryError, TransientDeliveryError)) as raised:
            channel.send(alert())
        errors.append(str(raised.value))
    channel.close()

    assert ["HTTP 404", "HTTP 503", "HTTP 400"] == [e.split(": ")[1] for e in errors]
    for error in errors:
        assert "k3yInTh3Path0fTheHook" not in error
        assert "qu3ryS3cretValue" not in error
