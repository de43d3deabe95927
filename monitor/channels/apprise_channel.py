"""Apprise delivery: the many chat and push services Apprise reaches, behind our outbox.

Optional (``pip install 'news-monitor[apprise]'``): the package is imported only when a
channel of this type is built. Apprise reports success or failure, never why, so every
failure is transient and the outbox's backoff and attempt limit decide when to give up.

Each URL is notified on its own and the URLs that took a message are remembered (in
memory) by delivery key, so a retry after a partial failure goes only to the others.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from monitor.channels.mime import header_value
from monitor.errors import ConfigError, TransientDeliveryError
from monitor.model import Message

REMEMBERED = 10_000  # delivery keys whose partial success we keep
# Mentions in chat services' syntax: Discord's @everyone, @here, <@user>, <@&role>;
# Slack's <!channel>, <!here>, <@user>, <#channel>.
# Apprise's Discord service reads "@123" and "@&456" as mentions too, brackets or not.
_MENTION = re.compile(r"@(?=(?:everyone|here)\b|&?[0-9])|<(?=[@!#])", re.IGNORECASE)


class AppriseChannel:
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
        self._services: list[Any] = []
        for index, url in enumerate(urls):
            service = apprise.Apprise()
            if not service.add(url):  # the URL itself may hold a token: never echo it
                raise ConfigError(f"channel {name!r}: urls[{index}] is not a URL Apprise knows")
            self._services.append(service)
        self._done: OrderedDict[str, set[int]] = OrderedDict()

    def send(self, message: Message) -> None:
        done = self._done.setdefault(message.delivery_key, set())
        for index, service in enumerate(self._services):
            if index in done:
                continue
            accepted = service.notify(
                body=defuse_mentions(message.text),
                title=defuse_mentions(header_value(message.subject)),
                body_format=self._text_format,
            )
            if accepted:
                done.add(index)
        failed = len(self._services) - len(done)
        if failed:
            self._done.move_to_end(message.delivery_key)
            while len(self._done) > REMEMBERED:
                self._done.popitem(last=False)
            raise TransientDeliveryError(
                f"apprise {self.name}: {failed} of {len(self._services)} services "
                "did not accept the message"
            )
        del self._done[message.delivery_key]

    def close(self) -> None:
        """Apprise keeps nothing open between notifications."""


def defuse_mentions(text: str) -> str:
    """``text`` with a zero-width space inside each mention: Apprise passes text to a
    chat service as it is (its Discord service even allows the mentions it finds), so
    a feed's "@everyone" would ping everyone."""
    return _MENTION.sub(lambda found: found.group() + "\u200b", text)
