"""Source health as pure decisions: what a success or a failure does to a source's state.

healthy -> degraded (1-2 failures in a row) -> failing (3 or more). A failing source is
never given up: it is probed with exponential backoff plus jitter up to a cap, and one
success returns it to its interval. The next poll, regular or backed off, is counted
from when a poll finished, not from when it started: a poll that hung for its whole
timeout must not spend its backoff hanging. A source that succeeds but brings nothing
new for longer than ``max_silence`` (default: 10 intervals, at least a day, or five
times its usual cadence if longer) is "stale".
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from monitor.cadence import STALE_AFTER
from monitor.store.repo import SourceState

DEGRADED_AFTER = 1
FAILING_AFTER = 3
BACKOFF_CAP = timedelta(hours=6)
MAX_ERROR_TEXT = 500


def health_for(failures: int) -> str:
    if failures >= FAILING_AFTER:
        return "failing"
    if failures >= DEGRADED_AFTER:
        return "degraded"
    return "healthy"


def backoff(
    failures: int,
    every: timedelta,
    *,
    cap: timedelta = BACKOFF_CAP,
    rng: random.Random | None = None,
) -> timedelta:
    """Delay before the next try after ``failures`` failures in a row: the interval
    doubled per failure up to ``cap``, then +-20% jitter so that many failing sources
    (all at the cap after a long outage) spread out. Never more than 1.2 x ``cap`` (or
    the interval, if longer): a failing source is probed for ever."""
    rng = rng or random.SystemRandom()
    # 2**20 intervals is past any cap, and keeps timedelta far from overflowing.
    base = min(every * (2 ** min(failures - 1, 20)), max(cap, every)) if failures > 0 else every
    return base * rng.uniform(0.8, 1.2)


def record_success(
    state: SourceState,
    cursor: dict[str, Any],
    *,
    now: datetime,
    every: timedelta,
    finished: datetime | None = None,
    not_before: datetime | None = None,
) -> SourceState:
    """State after a good poll that started at ``now`` and ended at ``finished`` (default
    ``now``); ``not_before`` is a server's floor (Retry-After, max-age)."""
    return replace(
        state,
        cursor=cursor,
        health="healthy",
        failures=0,
        last_attempt=now,
        last_success=now,
        next_poll=_floored((finished or now) + every, not_before),
        not_before=not_before,
    )


def record_failure(
    state: SourceState,
    error: str,
    *,
    now: datetime,
    every: timedelta,
    finished: datetime | None = None,
    not_before: datetime | None = None,
    rng: random.Random | None = None,
) -> SourceState:
    """State after a failed poll that started at ``now`` and failed at ``finished``
    (default ``now``): health steps down, the next try backs off from the failure."""
    failures = state.failures + 1
    failed_at = finished or now
    return replace(
        state,
        health=health_for(failures),
        failures=failures,
        last_attempt=now,
        last_error=error[:MAX_ERROR_TEXT],
        last_error_at=failed_at,
        next_poll=_floored(failed_at + backoff(failures, every, rng=rng), not_before),
        not_before=not_before,
    )


def _floored(when: datetime, not_before: datetime | None) -> datetime:
    return max(when, not_before) if not_before is not None else when


def held_until(state: SourceState | None, *, now: datetime) -> datetime | None:
    """Until when a source must not be polled even by a pass that ignores intervals
    (`monitor run --once`): while failures back it off, or before the floor its server
    set (Retry-After, max-age). None when it may be polled now."""
    if state is None or state.next_poll is None or state.next_poll <= now:
        return None
    if backing_off(state):
        return state.next_poll
    if state.not_before is not None and state.not_before > now:
        return state.not_before
    return None


# The health of a source whose last polls failed, so that its next one is put off.
BACKING_OFF = frozenset({"degraded", "failing"})


def backing_off(state: SourceState) -> bool:
    """Whether the source's last polls failed, so its next one is put off (backoff)."""
    return state.health in BACKING_OFF


def silence_limit(
    state: SourceState, *, every: timedelta, max_silence: timedelta | None
) -> timedelta:
    """How long ``state``'s source may stay silent before it is stale: ``max_silence``
    if configured; else 10 intervals and at least a day, or STALE_AFTER times its usual
    cadence (monitor.cadence) if that is longer: a weekly column is not stale on day 2."""
    if max_silence:
        return max_silence
    floor = max(every * 10, timedelta(days=1))
    if state.cadence is None:
        return floor
    return max(floor, timedelta(seconds=state.cadence * STALE_AFTER))


def is_stale(
    state: SourceState, *, now: datetime, every: timedelta, max_silence: timedelta | None
) -> bool:
    """Polled fine but silent for too long: worth a look."""
    if state.last_success is None:
        return False
    last_news = state.last_new_item or state.last_success
    return now - last_news > silence_limit(state, every=every, max_silence=max_silence)


def staleness_change(
    old: SourceState,
    *,
    brought_news: bool,
    now: datetime,
    every: timedelta,
    max_silence: timedelta | None,
) -> str | None:
    """``"stale"`` when a good poll at ``now`` without news finds the source silent too
    long where the previous good poll (``old``) did not; ``"fresh"`` when a stale source
    brings news again."""
    if old.last_success is None:
        return None
    was = is_stale(old, now=old.last_success, every=every, max_silence=max_silence)
    if was and brought_news:
        return "fresh"
    if not was and not brought_news:
        return "stale" if is_stale(old, now=now, every=every, max_silence=max_silence) else None
    return None
