"""Digests: every match in a window, grouped by watch-list then story, in one message.

The window is persisted (digest_windows): closing it, enqueueing the digest's
deliveries and recording the matches it carries is one transaction, so a crash neither
drops nor repeats a match, and neither does a poll that commits late.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from monitor.alerts.render import AlertView, DigestSection, DigestView
from monitor.config import DigestConfig
from monitor.store.repo import MatchRecord
from monitor.text import utc_now

if TYPE_CHECKING:
    from monitor.app import App

log = structlog.get_logger("monitor.digest")

FIRST_WINDOW = timedelta(days=1)
# A poll stamps its matches with the time it started and commits after fetching, so a
# match can land in a window that already closed; each window looks back this far for
# matches the digest has not carried yet (the store keeps that ledger).
LATE_COMMIT = timedelta(hours=1)


def digest_config(app: App, name: str) -> DigestConfig:
    for digest in app.config.monitor.digests:
        if digest.name == name:
            return digest
    raise KeyError(name)


def next_run(digest: DigestConfig, default_timezone: str, now: datetime) -> datetime:
    """When ``digest``'s schedule fires next after ``now``, in UTC."""
    # Imported here: a poll that sends nothing never needs APScheduler's cron parser.
    from monitor.alerts.cron import DigestTrigger

    trigger = DigestTrigger(digest.schedule, digest.timezone or default_timezone)
    fire = trigger.get_next_fire_time(None, now)
    if fire is None:  # a crontab schedule has no end date
        raise ValueError(f"schedule {digest.schedule!r} never fires")
    return fire.astimezone(UTC)


def run_digest(app: App, name: str, *, now: datetime | None = None) -> int | None:
    """Close digest ``name``'s window at ``now`` and enqueue it; returns deliveries queued,
    or None if the window was not ours to close (see ``Store.close_digest_window``).

    A digest that never ran starts its first window a day back.
    """
    now = now or utc_now()
    config = digest_config(app, name)
    covered = app.config.covered_by(config)

    def build(start: datetime, end: datetime) -> tuple[list[tuple[str, str]], dict[str, Any]]:
        records = app.store.matches_between(start - LATE_COMMIT, end, covered, not_in_digest=name)
        payload = {"matches": [record.id for record in records], "watchlists": covered}
        if not records and not config.send_empty:
            return [], payload  # silence, unless a rate cap's overflow is waiting for us
        return [(channel, "") for channel in config.channels], payload

    with structlog.contextvars.bound_contextvars(digest=name):
        queued = app.store.close_digest_window(
            name,
            start_default=now - FIRST_WINDOW,
            end=now,
            build=build,
            overflow_channels=config.channels,
            sharing={
                channel: [d.name for d in app.config.monitor.digests if channel in d.channels]
                for channel in config.channels
            },
        )
        if queued is None:
            log.info("digest_window_taken")
        else:
            log.info("digest_closed", deliveries=queued)
    return queued


def digest_view(app: App, payload: dict[str, Any]) -> DigestView:
    """Rebuild a digest's content from the match ids its delivery row recorded."""
    name = str(payload.get("digest", "digest"))
    try:
        max_items = digest_config(app, name).max_items
    except KeyError:
        max_items = 50
    # "overflow": alerts a channel's rate cap held back for this digest (see noise.py).
    match_ids = dict.fromkeys([*payload.get("matches", []), *payload.get("overflow", [])])
    records = [
        record
        for match_id in match_ids
        if (record := app.store.match_record(int(match_id))) is not None
    ]
    sections = group_sections(app, records, max_items)
    present = {section.watchlist for section in sections}
    return DigestView(
        name=name,
        start=datetime.fromisoformat(payload["start"]),
        end=datetime.fromisoformat(payload["end"]),
        sections=tuple(sections),
        quiet=tuple(w for w in payload.get("watchlists", []) if w not in present),
    )


def group_sections(app: App, records: Sequence[MatchRecord], max_items: int) -> list[DigestSection]:
    """By watch-list (config order), then story newest first, one entry per story."""
    order = {w.name: i for i, w in enumerate(app.config.watchlists)}
    by_watchlist: dict[str, list[MatchRecord]] = {}
    for record in records:
        by_watchlist.setdefault(record.watchlist, []).append(record)
    sections = []
    for watchlist in sorted(by_watchlist, key=lambda w: (order.get(w, len(order)), w)):
        newest: dict[int, MatchRecord] = {}  # each story once, by its newest record
        for record in sorted(by_watchlist[watchlist], key=lambda r: r.item.published, reverse=True):
            newest.setdefault(record.item.story_id, record)
        firsts = list(newest.values())
        shown = [
            AlertView(
                watchlist=watchlist,
                description="",
                item=record.item,
                hits=record.hits,
                also_reported_by=tuple(
                    app.store.other_outlets(record.item.story_id, record.item.id)
                ),
            )
            for record in firsts[:max_items]  # the other outlets of shown stories only
        ]
        held_back = tuple(record.item.story_id for record in firsts[max_items:])
        sections.append(DigestSection(watchlist, tuple(shown), held_back))
    return sections
