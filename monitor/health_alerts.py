"""Health-change notices for the ``on_source_error`` channels.

A notice goes out when a source starts failing (FAILING_AFTER failures in a row) and
when a failing source recovers: the two changes worth a person's attention. A degraded
source (one or two failures) is shown in ``monitor status`` but notifies no one, so a
flaky feed does not flood a channel. Notices go through the outbox like alerts
(kind ``health``), keyed per source and change, so a retried poll enqueues none twice.

Wiring: the pipeline calls ``notify_health_change`` with the state before and after a
poll; the delivery worker renders a ``health`` job with ``health_message``.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from monitor.model import Message
from monitor.store.repo import SourceState, Store


def health_change(old: SourceState, new: SourceState) -> str | None:
    """``"failing"`` or ``"recovered"`` when ``old`` -> ``new`` deserves a notice."""
    if new.health == "failing" and old.health != "failing":
        return "failing"
    if old.health == "failing" and new.health == "healthy":
        return "recovered"
    return None


def notify_health_change(
    store: Store, channels: Sequence[str], old: SourceState, new: SourceState, *, now: datetime
) -> int:
    """Enqueue a notice for each channel if the change deserves one; how many."""
    change = health_change(old, new)
    if change is None or not channels:
        return 0
    payload: dict[str, Any] = {
        "source": new.name,
        "change": change,
        "failures": new.failures if change == "failing" else old.failures,
        "error": new.last_error,
        "at": now.isoformat(),
        "next_poll": new.next_poll.isoformat() if new.next_poll else None,
    }
    key = f"health.{new.name}.{change}.{now.isoformat()}"
    return sum(
        store.enqueue_notice(
            key=f"{key}.{channel}", kind="health", channel=channel, payload=payload, now=now
        )
        for channel in channels
    )


def health_message(delivery_key: str, payload: dict[str, Any]) -> Message:
    """The message for a ``health`` delivery."""
    source, change = str(payload["source"]), str(payload["change"])
    if change == "failing":
        subject = f"[news-monitor] source {source} is failing"
        lines = [
            f"Source {source} failed {payload['failures']} times in a row.",
            f"Last error: {payload.get('error') or 'unknown'}",
            f"It keeps being retried; next try at {payload.get('next_poll') or 'soon'}.",
        ]
    else:
        subject = f"[news-monitor] source {source} recovered"
        lines = [f"Source {source} answers again after {payload['failures']} failures."]
    text = "\n".join(lines) + "\n"
    body = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    return Message(
        delivery_key=delivery_key,
        subject=" ".join(subject.split()),  # no CR/LF from a source name into a header
        text=text,
        html=f"<html><body>{body}</body></html>",
        payload=payload,
    )
