"""The Channel seam: anything that can accept a rendered Message."""

from __future__ import annotations

from typing import Protocol

from monitor.model import Message


class Pending(Protocol):
    """A send whose outcome may still be on its way (a mail's final SMTP reply)."""

    def settle(self) -> None:
        """Return once the far side took the message, or raise a DeliveryError subclass;
        a second call gives the same answer without asking again."""


class Channel(Protocol):
    """Accepts messages; raises TransientDeliveryError or PermanentDeliveryError.

    ``send`` hands the message over and returns its ``Pending`` outcome: settled already
    for most channels, while an SMTP mail's final reply is read by ``settle``, so the
    outbox can render the next message while the server reads this one. Before the
    channel's next ``send``, the outbox settles the last. A channel may keep a connection
    open between sends of one burst; ``close`` ends it, after any reply still due.
    """

    name: str

    def send(self, message: Message) -> Pending:
        """Hand one message over, or raise a DeliveryError subclass."""

    def close(self) -> None:
        """Release any connection kept for a burst."""


class _Sent:
    """The outcome of a send that finished within ``send``: nothing left to wait for."""

    __slots__ = ()

    def settle(self) -> None:
        """The message was taken when ``send`` returned."""


SENT: Pending = _Sent()
