"""`monitor status`: sources' health, the outbox, the digests' windows.

Read from the database, so it works beside a running daemon (or several): a source's next
poll is the one stored after its last poll, and a digest's next run is computed from its
schedule. A table for a person; ``--json`` for scripts and monitoring.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta
from typing import Any

from monitor.alerts.digest import next_run
from monitor.commands._common import iso, load, print_json
from monitor.config import Config, FeedSourceConfig, SourceConfig
from monitor.health import is_stale
from monitor.logging import masked
from monitor.sources.cursorurls import CursorUrls
from monitor.sources.feed import polled_url
from monitor.store import Store, open_store
from monitor.store.repo import SourceState
from monitor.text import counted, display_url, utc_now

MAX_DEAD_LETTERS = 20
ERROR_WIDTH = 60


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON document")
    parser.set_defaults(func=run)


def collect_status(config: Config, store: Store, *, now: datetime) -> dict[str, Any]:
    """The status document: every configured source, the outbox, every digest."""
    states = {state.name: state for state in store.source_states()}
    sources = []
    for source in config.monitor.sources:
        state = states.get(source.name)
        health = state.health if state else "new"
        stale = state is not None and is_stale(
            state, now=now, every=source.every, max_silence=source.max_silence
        )
        if not source.enabled:
            health = "disabled"
        elif stale and health == "healthy":
            health = "stale"
        sources.append(
            {
                "name": source.name,
                "type": source.type,
                "enabled": source.enabled,
                "healthy": health in ("healthy", "new", "disabled"),  # nothing to worry about
                "health": health,
                "failures": state.failures if state else 0,
                "last_error": state.last_error if state else None,
                "last_error_at": iso(state.last_error_at) if state else None,
                "last_success": iso(state.last_success) if state else None,
                "next_poll": iso(state.next_poll) if state and source.enabled else None,
                "items": state.items if state else 0,
                "moved_to": _moved_to(source, state, config.env_secrets()),
            }
        )
    windows = store.digest_windows()
    digests = []
    for digest in config.monitor.digests:
        zone = digest.timezone or config.monitor.timezone
        window_end = windows[digest.name][0] if digest.name in windows else None
        digests.append(
            {
                "name": digest.name,
                "schedule": digest.schedule,
                "timezone": zone,
                "last_window_end": iso(window_end),
                "next_run": iso(next_run(digest, config.monitor.timezone, now)),
            }
        )
    return {
        "sources": sources,
        "outbox": {
            **store.outbox_counts(now=now),
            "dead_letters": store.dead_letters(limit=MAX_DEAD_LETTERS),
        },
        "digests": digests,
    }


def _moved_to(
    source: SourceConfig, state: SourceState | None, secrets: dict[str, str]
) -> str | None:
    """Where a feed moved by a permanent redirect, polled there since: the URL to put in
    the config (None for a feed polled at its configured URL, one the config gave
    another URL included, and for other sources)."""
    if state is None or not isinstance(source, FeedSourceConfig):
        return None
    polled = polled_url(CursorUrls(source.url, secrets), state.cursor)
    return None if polled == source.url else display_url(polled)


def run(args: argparse.Namespace) -> int:
    config = load(args)
    store = open_store(config.monitor.database)
    now = utc_now()
    try:
        status = collect_status(config, store, now=now)
    finally:
        store.close()
    # Errors were stored as they happened: a token in a feed's URL may be in them.
    status = masked(status)
    if args.json:
        print_json(status)
    else:
        print(render_table(status, now=now))
    return 0


def render_table(status: dict[str, Any], *, now: datetime) -> str:
    """The status for a person: times relative to ``now``."""
    rows = [("SOURCE", "HEALTH", "ITEMS", "LAST SUCCESS", "NEXT POLL", "LAST ERROR")]
    for s in status["sources"]:
        error = _current_error(s)
        rows.append(
            (
                s["name"],
                s["health"] + (f" ({s['failures']}x)" if s["failures"] else ""),
                str(s["items"]),
                ago(s["last_success"], now),
                ago(s["next_poll"], now),
                error if len(error) <= ERROR_WIDTH else error[: ERROR_WIDTH - 1] + "…",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.rjust(width) if i == 2 else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    lines.extend(
        f"  {s['name']} moved permanently to {s['moved_to']} (polled there; put it in the config)"
        for s in status["sources"]
        if s["moved_to"]
    )
    outbox = status["outbox"]
    lines.append("")
    lines.append(
        f"outbox: {outbox['pending']} pending ({outbox['due']} due now), "
        f"{outbox['sent']} sent, {counted(outbox['dead'], 'dead letter')}"
    )
    lines.extend(
        f"  dead: {dead['key']} via {dead['channel']} after {dead['attempts']} attempts: "
        f"{dead['last_error']}"
        for dead in outbox["dead_letters"][:5]
    )
    if outbox["dead"]:
        lines.append("  (monitor deliveries retry --dead sends them again)")
    for digest in status["digests"]:
        lines.append(
            f"digest {digest['name']} ({digest['schedule']} {digest['timezone']}): "
            f"last window ended {ago(digest['last_window_end'], now, never='never')}, "
            f"next {ago(digest['next_run'], now)}"
        )
    return "\n".join(lines).rstrip()


def _current_error(source: dict[str, Any]) -> str:
    """The error a source's last poll failed with, on one line; none once a poll has
    succeeded since: an old error beside a healthy source misleads (--json keeps it,
    with ``last_error_at``)."""
    if not source["failures"]:
        return ""
    return str(source["last_error"] or "").replace("\n", " ")


def ago(moment: str | None, now: datetime, *, never: str = "-") -> str:
    """``"3m ago"`` / ``"in 40s"`` for an ISO time from the status document."""
    if moment is None:
        return never
    delta = datetime.fromisoformat(moment) - now
    text = _duration(abs(delta))
    return f"in {text}" if delta > timedelta(0) else f"{text} ago"


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
