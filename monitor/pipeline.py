"""One poll of one source, end to end: fetch -> normalise -> store only new items ->
match -> enqueue deliveries, the last three in one transaction.

The daemon, `monitor run --once` and the tests all call ``poll_source``.
"""

from __future__ import annotations

import time
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import structlog
from sqlalchemy.exc import SQLAlchemyError

from monitor.alerts.route import plan_matches
from monitor.app import App
from monitor.config import SourceConfig
from monitor.cpu import CPU_WORK
from monitor.errors import SourceError, StoreError
from monitor.health import record_failure, record_success, silence_limit, staleness_change
from monitor.health_alerts import health_notices, notices
from monitor.leases import Leases
from monitor.logging import masked
from monitor.model import Document, Item
from monitor.normalise import normalise_entry
from monitor.store.repo import IngestedItem, IngestResult, Notice, PlannedMatch, SourceState
from monitor.text import utc_now

log = structlog.get_logger("monitor.pipeline")

# Polls that may run at once: slow servers overlap, while the CPU-bound stages take turns
# (monitor.cpu). The daemon's poll executor and `monitor run --once` both use this many.
POLL_WORKERS = 10


@dataclass(slots=True)
class PollOutcome:
    source: str
    ok: bool = True
    skipped: bool = False
    error: str | None = None
    new: int = 0
    updated: int = 0
    matches: int = 0
    deliveries: int = 0
    matched_watchlists: list[str] = field(default_factory=list)
    next_poll: datetime | None = None  # when the source is due again (the daemon plans it)


def poll_source(
    app: App,
    name: str,
    *,
    now: datetime | None = None,
    force: bool = False,
    leases: Leases | None = None,
) -> PollOutcome:
    """Poll source ``name`` once. Never raises for a bad source: it is recorded.

    ``leases`` takes the source's lease and writes back a poll that brought nothing
    (by default, a transaction each; see monitor.leases).
    """
    now = now or utc_now()
    clock = time.monotonic()  # with ``now``: when the fetch ended (_finished)
    config = app.source_configs[name]
    source = app.sources[name]
    leases = leases or Leases(app)
    state = leases.claim(name, now=now, force=force)
    if state is None:  # not due, or another instance is polling it
        return PollOutcome(name, skipped=True)
    with structlog.contextvars.bound_contextvars(source=name):
        try:
            result = source.fetch(state.cursor)
        except SourceError as exc:
            return _failed(app, name, state, str(exc), now, clock, exc.retry_after)
        except Exception as exc:
            log.exception("source_crashed")
            return _failed(app, name, state, f"unexpected error: {exc!r}", now, clock, None)
        # New until a poll brings entries: an empty first poll does not use up backfill.
        first_poll = state.fed_at is None or result.restarted
        new_state = record_success(
            state,
            result.cursor,
            now=now,
            finished=_finished(now, clock),
            every=config.every,
            not_before=result.not_before,
        )
        if isinstance(result.cursor.get("url"), str):  # a feed that moved permanently
            new_state = replace(new_state, url=result.cursor["url"])
        if first_poll:
            new_state = replace(new_state, fed_at=now if result.entries else None)
        with CPU_WORK:
            items = [
                normalise_entry(name, entry, identity=config.identity, now=now)
                for entry in result.entries
            ]
        alerting = _alerting_keys(items, config.backfill) if first_poll else None

        def route(ingested: IngestedItem) -> list[PlannedMatch]:
            item = ingested.item
            with CPU_WORK:
                hits = app.matcher.match(Document(item.title, item.body, item.source))
            silent = alerting is not None and item.key not in alerting
            return plan_matches(ingested, hits, app.watchlists, silent=silent)

        def staleness(outcome: IngestResult) -> str | None:
            return staleness_change(
                state,
                brought_news=outcome.new > 0,
                now=now,
                every=config.every,
                max_silence=config.max_silence,
            )

        def tell(outcome: IngestResult) -> list[Notice]:
            """The notices this poll calls for, written with the source's new state."""
            channels = app.config.monitor.on_source_error
            found = health_notices(channels, state, new_state, now=now)
            change = staleness(outcome)
            if change is not None:
                found += notices(channels, change, new_state, now=now)
            return found

        if items:
            try:
                ingested = app.store.ingest(
                    items, new_state, route, now=now, owner=app.owner, notices=tell
                )
            except (StoreError, SQLAlchemyError) as exc:
                # The database's fault, not the source's: nothing was stored (one
                # transaction), and the next poll fetches it all again. The state as it
                # was ends the lease, if the database takes it, so that poll need not
                # wait for the lease to run out.
                log.error("ingest_failed", error=str(exc))
                with suppress(StoreError, SQLAlchemyError):
                    app.store.save_source_state(state, owner=app.owner)
                return PollOutcome(name, ok=False, error=f"database: {exc}")
        else:
            if new_state.last_new_item is None:
                # Never any news: silent since it was first polled fine (so it can go
                # stale, see monitor.health.is_stale).
                new_state = replace(new_state, last_new_item=now)
            ingested = IngestResult()
            told = tell(ingested)
            if told:
                app.store.save_source_state(new_state, owner=app.owner, notices=told, now=now)
            else:
                leases.settle(new_state)
        if state.health not in ("healthy", "new"):
            log.info("source_recovered", after_failures=state.failures)
        _log_staleness(config, state, staleness(ingested), now=now)
        log.info(
            "source_polled",
            entries=len(items),
            new=ingested.new,
            updated=ingested.updated,
            matches=ingested.matches,
            not_modified=result.not_modified,
        )
        return PollOutcome(
            name,
            new=ingested.new,
            updated=ingested.updated,
            matches=ingested.matches,
            deliveries=ingested.deliveries,
            matched_watchlists=ingested.matched_watchlists,
            next_poll=new_state.next_poll,
        )


def _log_staleness(
    config: SourceConfig, old: SourceState, change: str | None, *, now: datetime
) -> None:
    """Log ``change`` when a source went stale or a stale one has news again (see
    monitor.health.staleness_change); the poll queued the notices with its state."""
    if change is None:
        return
    if change == "stale":
        log.warning(
            "source_stale",
            last_news=(old.last_new_item or old.last_success or now).isoformat(),
            limit_s=silence_limit(
                old, every=config.every, max_silence=config.max_silence
            ).total_seconds(),
        )
    else:
        log.info("source_fresh_again")


def _alerting_keys(items: list[Item], backfill: int | None) -> set[str] | None:
    """On a source's first poll, only the ``backfill`` newest entries may alert."""
    if backfill is None:
        return None
    newest = sorted(items, key=lambda item: item.published, reverse=True)[:backfill]
    return {item.key for item in newest}


def _finished(started: datetime, clock: float) -> datetime:
    """When a poll begun at ``started`` (``clock`` on the monotonic clock) ended: the
    next poll is counted from it (monitor.health). Elapsed time is added to ``started``
    rather than read off the wall clock, so a poll given its ``now`` stays on that time."""
    return started + timedelta(seconds=time.monotonic() - clock)


def _failed(
    app: App,
    name: str,
    state: SourceState,
    error: str,
    now: datetime,
    clock: float,
    retry_after: float | None,
) -> PollOutcome:
    """Record a poll begun at ``now`` (``clock``) that failed just now; the backoff and a
    server's Retry-After count from the failure. The error may name a secret (a token in
    a feed's path): it is stored, and queued in a notice, masked as the log masks it."""
    error = masked(error)
    failed_at = _finished(now, clock)
    config = app.source_configs[name]
    not_before = failed_at + timedelta(seconds=retry_after) if retry_after else None
    new_state = record_failure(
        state, error, now=now, finished=failed_at, every=config.every, not_before=not_before
    )
    told = health_notices(app.config.monitor.on_source_error, state, new_state, now=now)
    app.store.save_source_state(new_state, owner=app.owner, notices=told, now=now)
    event = "source_failed" if new_state.health != state.health else "source_still_failing"
    log.warning(
        event,
        error=error,
        health=new_state.health,
        failures=new_state.failures,
        next_poll=new_state.next_poll.isoformat() if new_state.next_poll else None,
    )
    return PollOutcome(name, ok=False, error=error, next_poll=new_state.next_poll)
