"""WebhookChannel without a network (httpx.MockTransport): Standard Webhooks signatures
checked by the ``standardwebhooks`` package, each format's body, and which answers retry."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from samples import alert_view, digest_view, stored_item
from servers import new_secret
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from monitor.alerts.render import DigestSection, Renderer
from monitor.channels.webhook import WebhookChannel
from monitor.config import WebhookChannelConfig
from monitor.errors import ConfigError, PermanentDeliveryError, TransientDeliveryError
from monitor.model import Message

URL = "https://hooks.example.org/services/T000/B000/XXXXSECRETTOKEN"
RENDERER = Renderer(timezone="Asia/Seoul")

Handler = Callable[[httpx.Request], httpx.Response]


def webhook(
    handler: Handler = lambda request: httpx.Response(204), **settings: Any
) -> WebhookChannel:
    config = WebhookChannelConfig.model_validate({"type": "webhook", "url": URL, **settings})
    return WebhookChannel("chat", config, RENDERER, transport=httpx.MockTransport(handler))


def alert(title: str = "Seoul talks on GSOMIA", **item: Any) -> Message:
    view = alert_view(stored_item(title, **item), also=("reuters",))
    return RENDERER.render_alert(view, "s1.gsomia.chat")


def digest(stories: int = 3, more: int = 0) -> Message:
    items = [stored_item(f"Story {n}", item_id=n, story_id=n) for n in range(stories)]
    held_back = tuple(range(stories, stories + more))  # story ids of their own
    sections = [DigestSection("gsomia", tuple(alert_view(item) for item in items), held_back)]
    return RENDERER.render_digest(digest_view(sections, quiet=["cost-sharing"]), "digest:m:1")


def body_of(channel: WebhookChannel, message: Message) -> Any:
    return json.loads(channel.body(message))


def test_signature_verifies_with_standardwebhooks() -> None:
    secret = new_secret()
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    webhook(handler, secret=secret).send(alert())

    [request] = seen
    headers = dict(request.headers)
    assert "s1.gsomia.chat" == headers["webhook-id"]
    assert headers["webhook-signature"].startswith("v1,")
    payload = Webhook(secret).verify(request.content, headers)
    assert "s1.gsomia.chat" == payload["id"]
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(request.content + b" ", headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(request.content, headers)


def test_configured_headers_cannot_replace_the_signature_headers() -> None:
    channel = webhook(headers={"Webhook-Id": "forged", "Authorization": "Bearer t"})

    headers = channel.headers("s1.gsomia.chat", b"{}")

    assert "s1.gsomia.chat" == headers["webhook-id"]
    assert "Bearer t" == headers["authorization"]
    assert "application/json" == headers["content-type"]


@pytest.mark.parametrize("secret", ["plain-text", "whsec_not*base64", "whsec_c2hvcnQ="])
def test_a_secret_that_is_not_whsec_base64_fails_at_load(secret: str) -> None:
    with pytest.raises(ConfigError, match="whsec_") as raised:
        webhook(secret=secret)
    assert secret not in str(raised.value)


@pytest.mark.parametrize(
    ("status", "headers", "expected", "retry_after"),
    [
        (500, {}, TransientDeliveryError, None),
        (502, {}, TransientDeliveryError, None),
        (503, {"retry-after": "120"}, TransientDeliveryError, 120.0),
        (429, {"retry-after": "30"}, TransientDeliveryError, 30.0),
        (429, {}, TransientDeliveryError, None),
        (408, {}, TransientDeliveryError, None),
        (400, {}, PermanentDeliveryError, None),
        (401, {}, PermanentDeliveryError, None),
        (404, {}, PermanentDeliveryError, None),
        (410, {}, PermanentDeliveryError, None),
        (301, {"location": "https://elsewhere.example.org/"}, PermanentDeliveryError, None),
    ],
)
def test_which_answers_retry(
    status: int, headers: dict[str, str], expected: type[Exception], retry_after: float | None
) -> None:
    channel = webhook(lambda request: httpx.Response(status, headers=headers, text="nope"))

    with pytest.raises(expected, match=f"HTTP {status}: nope") as raised:
        channel.send(alert())
    assert retry_after == getattr(raised.value, "retry_after", None)
    assert "SECRETTOKEN" not in str(raised.value)
    assert "webhook https://hooks.example.org: " in str(raised.value)


@pytest.mark.parametrize(
    "error", [httpx.ReadTimeout("slow"), httpx.ConnectError("refused"), httpx.ConnectTimeout("t")]
)
def test_network_failures_retry(error: httpx.HTTPError) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises(TransientDeliveryError) as raised:
        webhook(handler).send(alert())
    assert "SECRETTOKEN" not in str(raised.value)


def test_generic_body_is_the_versioned_payload() -> None:
    message = alert()

    assert message.payload == body_of(webhook(), message)
    assert 1 == message.payload["version"]


def test_slack_body_escapes_markup_and_respects_limits() -> None:
    hostile = "<!channel> <script>alert(1)</script> & " + "long " * 100
    body = body_of(webhook(format="slack"), alert(hostile, url="https://x.example/a|b>c"))

    header, section = body["blocks"]
    assert "header" == header["type"]
    assert len(header["text"]["text"]) <= 150
    text = section["text"]["text"]
    assert "<!channel>" not in text
    assert "<script>" not in text
    assert "&lt;!channel&gt; &lt;script&gt;alert(1)&lt;/script&gt; &amp;" in text
    assert "<https://x.example/a%7Cb%3Ec|" in text
    assert "<!channel>" not in body["text"]


def test_slack_digest_has_a_section_per_watchlist_and_the_quiet_line() -> None:
    body = body_of(webhook(format="slack"), digest(stories=12, more=3))

    _, gsomia, quiet = body["blocks"]
    assert gsomia["text"]["text"].startswith("*gsomia (15)*")
    assert 10 == gsomia["text"]["text"].count("• <")
    assert gsomia["text"]["text"].endswith("… and 5 more")
    assert "Nothing new on cost-sharing." == quiet["text"]["text"]


def test_discord_body_pings_no_one_and_escapes_markdown() -> None:
    body = body_of(webhook(format="discord"), alert("@everyone **Breaking** [click](http://evil)"))

    assert {"parse": []} == body["allowed_mentions"]
    [embed] = body["embeds"]
    assert "\\*\\*Breaking\\*\\* \\[click\\]\\(http\\:" in embed["description"]
    assert "](https://news.example.org/2019/11/14/seoul-talks)" in embed["description"]
    assert len(body["content"]) <= 2000


def test_discord_digest_stays_under_the_embed_limits() -> None:
    body = body_of(webhook(format="discord"), digest(stories=10))

    assert sum(len(e.get("title", "")) + len(e["description"]) for e in body["embeds"]) <= 6000
    assert "gsomia (10)" == body["embeds"][0]["title"]


def test_teams_body_is_an_adaptive_card_message() -> None:
    body = body_of(webhook(format="teams"), alert("Pact [update]"))

    assert "message" == body["type"]
    [attachment] = body["attachments"]
    assert "application/vnd.microsoft.card.adaptive" == attachment["contentType"]
    card = attachment["content"]
    assert ("AdaptiveCard", "1.4") == (card["type"], card["version"])
    texts = [block["text"] for block in card["body"]]
    assert "[Pact (update)](https://news.example.org/2019/11/14/seoul-talks)" in texts
    assert any(text.startswith("yonhap · 2019-11-14 15:48 KST") for text in texts)


def test_teams_links_only_the_story_whatever_its_text_says() -> None:
    view = alert_view(
        stored_item("Pact [Click here](http://evil.example/a) signed"),
        snippets=["GSOMIA, as [your bank](http://evil.example/login) says"],
    )
    body = body_of(webhook(format="teams"), RENDERER.render_alert(view, "s1.gsomia.chat"))

    texts = [block["text"] for block in body["attachments"][0]["content"]["body"]]
    links = [text for text in texts if "](" in text]
    assert [
        "[Pact (Click here)(http://evil.example/a) signed](https://news.example.org/2019/11/14/seoul-talks)"
    ] == links
    assert any("(your bank)(http://evil.example/login)" in text for text in texts)


def test_custom_body_from_a_template() -> None:
    template = '{"title": {{ payload.item.title | tojson }}, "id": {{ payload.id | tojson }}}'
    channel = webhook(format="custom", body_template=template)

    body = body_of(channel, alert('Quote " and <tag>'))

    assert {"title": 'Quote " and <tag>', "id": "s1.gsomia.chat"} == body


def test_a_broken_custom_template_fails_at_load() -> None:
    with pytest.raises(ConfigError, match="body_template"):
        webhook(format="custom", body_template="{{ payload.item.title ")


def test_one_client_serves_a_burst() -> None:
    channel = webhook()
    channel.send(alert())
    client = channel.client
    channel.send(alert())
    assert client is channel.client
    channel.close()
    assert client.is_closed
