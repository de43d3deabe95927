"""Webhook delivery: JSON over HTTP POST, signed per the Standard Webhooks spec.

Every request carries ``webhook-id`` (the delivery key, so a receiver can drop a repeat),
``webhook-timestamp`` and, with a secret, ``webhook-signature: v1,<base64 HMAC-SHA256>``
of ``id.timestamp.body`` keyed with the secret's bytes (``whsec_<base64>``): a receiver
verifies it with the ``standardwebhooks`` package.

Bodies by ``format``: ``generic`` is our versioned payload (docs/webhooks.md); ``slack``,
``discord`` and ``teams`` are bodies those services' incoming webhooks accept; ``custom``
is a Jinja2 template from config. Timeouts, connection errors, 408, 429 and 5xx are
transient (429/503 Retry-After is honoured); any other status is permanent.

A webhook URL is often itself a secret (Slack's and Discord's are), so errors and logs
name only its scheme and host, and the start of a refusal's answer they quote has the
URL's path and query taken out (a framework's 404 page echoes the path it was sent).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, assert_never
from urllib.parse import parse_qsl, quote, urlsplit

import httpx

from monitor.alerts.render import Renderer, web_url
from monitor.config import WebhookChannelConfig
from monitor.errors import (
    ConfigError,
    PermanentDeliveryError,
    RenderError,
    TransientDeliveryError,
)
from monitor.model import Message
from monitor.sources.http import retry_after
from monitor.text import cap, utc_now

USER_AGENT = "news-monitor/0.1 (webhook)"
SECRET_PREFIX = "whsec_"  # noqa: S105 - the spec's marker for a secret, not a secret
RETRY_STATUSES = frozenset({408, 425, 429})
MAX_RESPONSE_READ = 64 * 1024  # enough for any acknowledgement; the rest is not read
CHAT_LINKS = 10  # per section in chat formats; the rest fold into "and N more"


class WebhookChannel:
    """POSTs each message to one URL; keeps the connection open for a burst."""

    def __init__(
        self,
        name: str,
        config: WebhookChannelConfig,
        renderer: Renderer,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.renderer = renderer
        # Only a custom body template can show a message's HTML.
        self.wants_html = config.format == "custom"
        self.where = f"webhook {redact_url(config.url)}"
        self._hidden = url_secrets(config.url)
        self._key = signing_key(name, config.secret.get_secret_value()) if config.secret else None
        if config.body_template is not None:
            try:
                renderer.check_string(config.body_template)
            except RenderError as exc:
                raise ConfigError(f"channel {name!r}: body_template: {exc}") from exc
        self._transport = transport
        self._client: httpx.Client | None = None

    def send(self, message: Message) -> None:
        body = self.body(message)
        headers = self.headers(message.delivery_key, body)
        try:
            with self.client.stream("POST", self.config.url, content=body, headers=headers) as r:
                status, reply = r.status_code, _read_at_most(r, MAX_RESPONSE_READ)
                response_headers = r.headers
        except httpx.TimeoutException as exc:
            raise TransientDeliveryError(f"{self.where}: timed out") from exc
        except httpx.TransportError as exc:
            raise TransientDeliveryError(f"{self.where}: {exc or type(exc).__name__}") from exc
        if 200 <= status < 300:
            return
        detail = f"{self.where}: HTTP {status}"
        text = hide(" ".join(reply.decode("utf-8", "replace").split()), self._hidden)
        if text := text[:200]:
            detail += f": {text}"
        if status in RETRY_STATUSES or status >= 500:
            wait = retry_after(response_headers, utc_now())
            raise TransientDeliveryError(detail, retry_after=wait)
        raise PermanentDeliveryError(detail)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                timeout=self.config.timeout.total_seconds(),
                follow_redirects=False,
                headers={"user-agent": USER_AGENT},
                transport=self._transport,
            )
        return self._client

    def body(self, message: Message) -> bytes:
        """The request body for ``message`` in this channel's format."""
        document: dict[str, Any]
        match self.config.format:
            case "generic":
                document = message.payload
            case "slack":
                document = slack_body(self.chat_view(message))
            case "discord":
                document = discord_body(self.chat_view(message))
            case "teams":
                document = teams_body(self.chat_view(message))
            case "custom":
                template = self.config.body_template or ""
                rendered = self.renderer.render_string(
                    template, message=message, payload=message.payload
                )
                return rendered.encode("utf-8")
            case _:
                assert_never(self.config.format)
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def headers(self, message_id: str, body: bytes) -> httpx.Headers:
        """Configured headers, then ours (which win): content type and the signature."""
        headers = httpx.Headers({"content-type": "application/json"})
        headers.update(self.config.headers)
        timestamp = int(utc_now().timestamp())
        headers["webhook-id"] = message_id
        headers["webhook-timestamp"] = str(timestamp)
        if self._key is not None:
            headers["webhook-signature"] = sign(self._key, message_id, timestamp, body)
        return headers

    def chat_view(self, message: Message) -> ChatView:
        return chat_view(message, self.renderer.localtime)


# --- signing ---------------------------------------------------------------------------


def signing_key(channel: str, secret: str) -> bytes:
    """The HMAC key in a ``whsec_<base64>`` secret."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not secret.startswith(SECRET_PREFIX) or len(key) < 16:
        raise ConfigError(
            f"channel {channel!r}: secret must be 'whsec_' followed by at least 16 bytes "
            "in base64 (Standard Webhooks)"
        )
    return key


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` (Standard Webhooks)."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def redact_url(url: str) -> str:
    """``scheme://host[:port]``: the path and query of a webhook URL may hold its token."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}" + (f":{parts.port}" if parts.port else "")


SECRET_PIECE = 8  # a path segment or query value this long may be a token


def url_secrets(url: str) -> tuple[str, ...]:
    """What an answer quoting ``url`` must not repeat: its path and query, whole and the
    pieces long enough to be a token; longest first, so the whole goes before its parts."""
    parts = urlsplit(url)
    whole = [parts.path, parts.query] if parts.path not in ("", "/") else [parts.query]
    pieces = [*parts.path.split("/"), *(value for _, value in parse_qsl(parts.query))]
    found = {*whole, *(piece for piece in pieces if len(piece) >= SECRET_PIECE)} - {""}
    return tuple(sorted(found, key=len, reverse=True))


def hide(text: str, hidden: tuple[str, ...]) -> str:
    """``text`` with each of ``hidden`` (see ``url_secrets``) replaced by a marker."""
    for secret in hidden:
        text = text.replace(secret, "[redacted]")
    return text


def _read_at_most(response: httpx.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


# --- chat formats ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChatLink:
    title: str
    url: str | None
    detail: str  # outlet, local time


@dataclass(frozen=True, slots=True)
class ChatSection:
    heading: str  # a watch-list in a digest; empty for an alert
    links: tuple[ChatLink, ...] = ()
    notes: tuple[str, ...] = ()  # snippets, "and N more", "Nothing new on X."


@dataclass(frozen=True, slots=True)
class ChatView:
    """What every chat format shows, taken from the message's payload."""

    title: str
    sections: tuple[ChatSection, ...]


def chat_view(message: Message, localtime: Callable[[datetime], str]) -> ChatView:
    payload = message.payload

    def link(item: dict[str, Any], also: list[str] | None = None) -> ChatLink:
        detail = f"{item['source']} · {localtime(datetime.fromisoformat(item['published']))}"
        if also:
            detail += f" · also {', '.join(also)}"
        return ChatLink(str(item["title"]), web_url(item.get("url")), detail)

    match payload.get("type"):
        case "alert":
            snippets = tuple(f"… {s} …" for s in payload["match"]["snippets"][:2])
            section = ChatSection(
                "", (link(payload["item"], payload["also_reported_by"]),), snippets
            )
            return ChatView(message.subject, (section,))
        case "digest":
            sections = []
            for part in payload["sections"]:
                items = part["items"]
                more = part["more"] + max(0, len(items) - CHAT_LINKS)
                sections.append(
                    ChatSection(
                        f"{part['watchlist']} ({len(items) + part['more']})",
                        tuple(link(item) for item in items[:CHAT_LINKS]),
                        (f"… and {more} more",) if more else (),
                    )
                )
            if payload["quiet"]:
                notes = tuple(f"Nothing new on {name}." for name in payload["quiet"])
                sections.append(ChatSection("", (), notes))
            return ChatView(message.subject, tuple(sections))
        case _:
            return ChatView(message.subject, (ChatSection("", (), (cap(message.text, 2000),)),))


def _safe_url(url: str) -> str:
    """A URL that cannot end a markup link early (spaces, brackets, pipes encoded)."""
    return quote(url, safe=":/?#@!$&'*+,;=%~.-_")


# Slack: https://api.slack.com/reference/surfaces/formatting (only &, < and > are special).
SLACK_HEADER = 150
SLACK_SECTION = 3000
SLACK_BLOCKS = 50


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(view: ChatView) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": cap(view.title, SLACK_HEADER)}}
    ]
    for section in view.sections[: SLACK_BLOCKS - 1]:
        lines = [f"*{_slack_escape(section.heading)}*"] if section.heading else []
        for item in section.links:
            title = _slack_escape(item.title)
            lines.append(f"• <{_safe_url(item.url)}|{title}>" if item.url else f"• {title}")
            lines.append(f"    {_slack_escape(item.detail)}")
        lines.extend(_slack_escape(note) for note in section.notes)
        text = cap("\n".join(lines), SLACK_SECTION)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    return {
        "text": cap(_slack_escape(view.title), SLACK_SECTION),
        "blocks": blocks,
        "unfurl_links": False,
        "unfurl_media": False,
    }


# Discord: https://discord.com/developers/docs/resources/webhook#execute-webhook
DISCORD_CONTENT = 2000
DISCORD_TITLE = 256
DISCORD_DESCRIPTION = 4096
DISCORD_EMBEDS = 10
DISCORD_TOTAL = 6000  # characters across all embeds
_DISCORD_MARKUP = re.compile(r"([\\*_~`|>#\[\]()<:-])")


def _discord_escape(text: str) -> str:
    return _DISCORD_MARKUP.sub(r"\\\1", text)


def discord_body(view: ChatView) -> dict[str, Any]:
    sections = view.sections[:DISCORD_EMBEDS]
    budget = DISCORD_TOTAL // max(1, len(sections)) - DISCORD_TITLE
    embeds = []
    for section in sections:
        lines = []
        for item in section.links:
            title = _discord_escape(item.title)
            lines.append(f"• [{title}]({_safe_url(item.url)})" if item.url else f"• {title}")
            lines.append(_discord_escape(item.detail))
        lines.extend(_discord_escape(note) for note in section.notes)
        embed: dict[str, Any] = {
            "description": cap("\n".join(lines), min(budget, DISCORD_DESCRIPTION))
        }
        if section.heading:
            embed["title"] = cap(section.heading, DISCORD_TITLE)
        embeds.append(embed)
    return {
        "content": cap(_discord_escape(view.title), DISCORD_CONTENT),
        "embeds": embeds,
        "allowed_mentions": {"parse": []},  # a title saying @everyone pings no one
    }


# Teams: an Adaptive Card in a "message", as Workflows and incoming webhooks take it.
# https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using
ADAPTIVE_CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"


def _text_block(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _teams_text(text: str) -> str:
    """Text a TextBlock's Markdown cannot make a link of: no "[...](...)"."""
    return text.replace("[", "(").replace("]", ")")


def teams_body(view: ChatView) -> dict[str, Any]:
    # Every text from a feed (the subject holds its title, the notes its snippets) loses
    # its brackets: "[your bank](http://evil)" in a snippet would be a live link.
    body = [_text_block(_teams_text(view.title), weight="Bolder", size="Medium")]
    for section in view.sections:
        if section.heading:
            body.append(_text_block(section.heading, weight="Bolder", spacing="Medium"))
        for item in section.links:
            title = _teams_text(item.title)
            body.append(_text_block(f"[{title}]({_safe_url(item.url)})" if item.url else title))
            body.append(
                _text_block(_teams_text(item.detail), isSubtle=True, size="Small", spacing="None")
            )
        body.extend(_text_block(_teams_text(note), isSubtle=True) for note in section.notes)
    card = {
        "$schema": ADAPTIVE_CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "msteams": {"width": "Full"},
    }
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }
