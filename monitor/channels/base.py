"""The Channel seam: anything that can accept a rendered Message."""

from __future__ import annotations

from typing import Protocol

from monitor.model import Message


class Channel(Protocol):
    """Accepts messages; raises TransientDeliveryError or PermanentDeliveryError.

    ``send`` returns only once the far side accepted the message. A channel may keep a
    connection open between sends of one burst; ``close`` ends it. ``wants_html``: whether
    it sends a message's HTML; rendering it for a channel that does not is wasted work.
    """

    name: str
    wants_html: bool

    def send(self, message: Message) -> None:
        """Deliver one message, or raise a DeliveryError subclass."""

    def close(self) -> None:
        """Release any connection kept for a burst."""
