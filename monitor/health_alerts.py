"""Health-change notices for the ``on_source_error`` channels.

A notice goes out when a source starts failing (FAILING_AFTER failures in a row), when
a failing source recovers, when a source that answers goes stale (silent for too long,
see monitor.health.silence_limit) and when a stale one has news again: the changes
worth a person's attention. A degraded
source (one or two failures) is shown in ``monitor status`` but notifies no one, so a
flaky feed does not flood a channel. Notices go through the outbox like alerts
(kind ``health``), keyed per source and change, so a retried poll enqueues none twice.

Wiring: the pipeline asks ``health_notices`` (and ``notices``) with the state before
and after a poll and writes them with the source's new state, in one transaction, so a
process killed in between loses no notice; the delivery worker renders a ``health`` job
with ``health_message``.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from monitor.alerts.render import PAYLOAD_VERSION, zulu
from monitor.logging import masked
from monitor.model import Message
from monitor.store.repo import Notice, SourceState


def health_change(old: SourceState, new: SourceState) -> str | None:
    """``"failing"`` or ``"recovered"`` when ``old`` -> ``new`` deserves a notice."""
    if new.health == "failing" and old.health != "failing":
        return "failing"
    if old.health == "failing" and new.health == "healthy":
        return "recovered"
    return None


def health_notices(
    channels: Sequence[str], old: SourceState, new: SourceState, *, now: datetime
) -> list[Notice]:
    """The notices (one per channel) that ``old`` -> ``new`` deserves, if any."""
    change = health_change(old, new)
    if change is None:
        return []
    failures = new.failures if change == "failing" else old.failures
    return notices(channels, change, new, now=now, failures=failures)


def notices(
    channels: Sequence[str],
    change: str,
    state: SourceState,
    *,
    now: datetime,
    failures: int = 0,
) -> list[Notice]:
    """A notice of ``change`` of ``state``'s source for each of ``channels``, to queue
    with the source's state (Store.save_source_state, Store.ingest)."""
    payload: dict[str, Any] = {
        "source": state.name,
        "change": change,
        "failures": failures,
        "error": state.last_error,
        "at": now.isoformat(),
        "next_poll": state.next_poll.isoformat() if state.next_poll else None,
        "last_news": state.last_new_item.isoformat() if state.last_new_item else None,
    }
    key = f"health.{state.name}.{change}.{now.isoformat()}"
    return [Notice(f"{key}.{channel}", "health", channel, payload) for channel in channels]


def health_message(
    delivery_key: str, payload: dict[str, Any], localtime: Callable[[datetime], str]
) -> Message:
    """The message for a ``health`` delivery, its times as ``localtime`` says them (the
    renderer's: the configured zone). Its error was stored as the poll failed, and may
    name a secret (a token in a feed's path): masked here, as in the log and `monitor
    status`, before it goes to a channel."""
    payload = masked(payload)
    source, change = str(payload["source"]), str(payload["change"])

    def said(key: str, otherwise: str) -> str:
        moment = payload.get(key)
        return localtime(datetime.fromisoformat(moment)) if moment else otherwise

    if change == "failing":
        subject = f"[news-monitor] source {source} is failing"
        lines = [
            f"Source {source} failed {payload['failures']} times in a row.",
            f"Last error: {payload.get('error') or 'unknown'}",
            f"It keeps being retried; next try at {said('next_poll', 'soon')}.",
        ]
    elif change == "stale":
        subject = f"[news-monitor] source {source} is stale"
        lines = [
            f"Source {source} answers, but has brought nothing new since "
            f"{said('last_news', 'it was added')}.",
            "It is polled as usual; a notice follows when it has news again.",
        ]
    elif change == "fresh":
        subject = f"[news-monitor] source {source} has news again"
        lines = [f"Source {source}, stale until now, brought new items."]
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
        payload=_document(delivery_key, payload),
    )


def _document(delivery_key: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The documented webhook body of a notice (docs/webhooks.md, schema version 1):
    ``version``, ``type`` and ``id`` as an alert's and a digest's, times with a Z."""
    return {
        "version": PAYLOAD_VERSION,
        "type": "health",
        "id": delivery_key,
        "source": payload["source"],
        "change": payload["change"],
        "failures": payload.get("failures", 0),
        "error": payload.get("error"),
        **{key: _utc(payload.get(key)) for key in ("at", "next_poll", "last_news")},
    }


def _utc(moment: str | None) -> str | None:
    """A stored ISO time (UTC) as the bodies write one, with a Z."""
    return zulu(datetime.fromisoformat(moment)) if moment else None
