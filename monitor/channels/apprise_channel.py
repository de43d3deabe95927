"""Apprise delivery: the many chat and push services Apprise reaches, behind our outbox.

Optional (``pip install 'news-monitor[apprise]'``): the package is imported only when a
channel of this type is built. Apprise reports success or failure, never why, so every
failure is transient and the outbox's backoff and attempt limit decide when to give up.

Each URL is notified on its own. After a partial failure the error names the URLs that
took the message, each by a hash (a URL may hold a token), the outbox keeps them with
the delivery (``TransientDeliveryError.delivered_to``), and the retry, by this process
or another, goes only to the others (``Message.delivered_to``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from monitor.channels.mime import header_value
from monitor.errors import ConfigError, TransientDeliveryError
from monitor.model import Message

# Mentions in chat services' syntax: Discord's @everyone, @here, <@user>, <@&role>;
# Slack's <!channel>, <!here>, <@user>, <#channel>.
# Apprise's Discord service reads "@123" and "@&456" as mentions too, brackets or not.
_MENTION = re.compile(r"@(?=(?:everyone|here)\b|&?[0-9])|<(?=[@!#])", re.IGNORECASE)


class AppriseChannel:
    wants_html = False  # Apprise gets the text (see send)

    def __init__(self, name: str, urls: Sequence[str]) -> None:
        try:
            import apprise
        except ImportError as exc:
            raise ConfigError(
                f"channel {name!r}: type apprise needs the apprise package: "
                "pip install 'news-monitor[apprise]'"
            ) from exc
        self.name = name
        self._text_format = apprise.NotifyFormat.TEXT
        self._services: list[tuple[str, Any]] = []  # (the URL's mark, its service)
        for index, url in enumerate(urls):
            service = apprise.Apprise()
            if not service.add(url):  # the URL itself may hold a token: never echo it
                raise ConfigError(f"channel {name!r}: urls[{index}] is not a URL Apprise knows")
            self._services.append((url_mark(url), service))

    def send(self, message: Message) -> None:
        done = set(message.delivered_to)
        for mark, service in self._services:
            if mark in done:
                continue
            accepted = service.notify(
                body=defuse_mentions(message.text),
                title=defuse_mentions(header_value(message.subject)),
                body_format=self._text_format,
            )
            if accepted:
                done.add(mark)
        failed = sum(mark not in done for mark, _ in self._services)
        if failed:
            raise TransientDeliveryError(
                f"apprise {self.name}: {failed} of {len(self._services)} services "
                "did not accept the message",
                delivered_to=frozenset(done),
            )

    def close(self) -> None:
        """Apprise keeps nothing open between notifications."""


def url_mark(url: str) -> str:
    """How a delivery records that ``url`` took its message: a hash, not the URL, which
    may hold a token; the same for the same URL after a reload or in another process."""
    return "apprise:" + hashlib.blake2b(url.encode(), digest_size=8).hexdigest()


def defuse_mentions(text: str) -> str:
    """``text`` with a zero-width space inside each mention: Apprise passes text to a
    chat service as it is (its Discord service even allows the mentions it finds), so
    a feed's "@everyone" would ping everyone."""
    return _MENTION.sub(lambda found: found.group() + "\u200b", text)
