"""Source health: the backoff schedule, never giving up, recovery, staleness."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from monitor.cadence import STALE_AFTER, next_cadence
from monitor.health import (
    BACKOFF_CAP,
    backoff,
    health_for,
    held_until,
    is_stale,
    record_failure,
    record_success,
    silence_limit,
    staleness_change,
)
from monitor.store.repo import SourceState

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
EVERY = timedelta(minutes=10)


class Midpoint(random.Random):
    """Jitter of exactly 1.0: the schedule without its noise."""

    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2


@pytest.mark.parametrize(
    ("failures", "health"),
    [(0, "healthy"), (1, "degraded"), (2, "degraded"), (3, "failing"), (50, "failing")],
)
def test_health_steps_down_with_failures_in_a_row(failures: int, health: str) -> None:
    assert health == health_for(failures)


def test_the_backoff_doubles_from_the_interval_up_to_the_cap() -> None:
    minutes = [backoff(n, EVERY, rng=Midpoint()) / timedelta(minutes=1) for n in range(1, 10)]
    assert [10, 20, 40, 80, 160, 320, 360, 360, 360] == minutes


@pytest.mark.parametrize("failures", [1, 4, 7, 40, 10_000])
def test_the_jitter_stays_within_20_percent_even_at_the_cap(failures: int) -> None:
    rng = random.Random(failures)
    plain = backoff(failures, EVERY, rng=Midpoint())
    delays = [backoff(failures, EVERY, rng=rng) for _ in range(200)]
    assert plain <= BACKOFF_CAP
    assert all(plain * 0.8 <= delay <= plain * 1.2 for delay in delays)
    assert len(set(delays)) > 100, "jitter spreads sources out"


def test_an_interval_longer_than_the_cap_is_kept() -> None:
    assert timedelta(days=1) == backoff(40, timedelta(days=1), rng=Midpoint())


def test_a_failing_source_is_never_given_up_and_one_success_restores_it() -> None:
    state = SourceState("feed", {"etag": '"a"'}, health="healthy")
    now = NOW
    for _ in range(200):
        state = record_failure(state, "http: timed out", now=now, every=EVERY, rng=Midpoint())
        assert state.next_poll is not None
        assert state.next_poll - now <= BACKOFF_CAP * 1.2
        now = state.next_poll
    assert ("failing", 200, "http: timed out") == (state.health, state.failures, state.last_error)
    recovered = record_success(state, {"etag": '"b"'}, now=now, every=EVERY)
    assert ("healthy", 0, now + EVERY, {"etag": '"b"'}) == (
        recovered.health,
        recovered.failures,
        recovered.next_poll,
        recovered.cursor,
    )
    assert "http: timed out" == recovered.last_error, "the last error stays visible"


def test_a_server_floor_outranks_a_shorter_schedule() -> None:
    state = SourceState("feed", {})
    floor = NOW + timedelta(hours=2)
    failed = record_failure(state, "HTTP 429", now=NOW, every=EVERY, not_before=floor)
    fine = record_success(state, {}, now=NOW, every=EVERY, not_before=floor)
    early = record_success(state, {}, now=NOW, every=EVERY, not_before=NOW + timedelta(seconds=5))
    assert (floor, floor, NOW + EVERY) == (failed.next_poll, fine.next_poll, early.next_poll)


def test_the_next_poll_counts_from_when_the_poll_ended() -> None:
    state = SourceState("feed", {})
    ended = NOW + timedelta(seconds=30)  # a read timeout
    failed = record_failure(
        state, "timed out", now=NOW, finished=ended, every=EVERY, rng=Midpoint()
    )
    fine = record_success(state, {}, now=NOW, finished=ended, every=EVERY)
    assert (NOW, ended, ended + EVERY) == (
        failed.last_attempt,
        failed.last_error_at,
        failed.next_poll,
    )
    assert (NOW, NOW, ended + EVERY) == (fine.last_attempt, fine.last_success, fine.next_poll)


def test_a_long_error_is_cut() -> None:
    state = record_failure(SourceState("feed", {}), "x" * 5000, now=NOW, every=EVERY)
    assert 500 == len(state.last_error or "")


@pytest.mark.parametrize(
    ("silent_for", "max_silence", "stale"),
    [
        (timedelta(hours=23), None, False),  # default: 10 intervals, at least a day
        (timedelta(hours=25), None, True),
        (timedelta(hours=2), timedelta(hours=1), True),
        (timedelta(minutes=50), timedelta(hours=1), False),
    ],
)
def test_staleness(silent_for: timedelta, max_silence: timedelta | None, stale: bool) -> None:
    state = SourceState(
        "feed", {}, health="healthy", last_success=NOW, last_new_item=NOW - silent_for
    )
    assert stale == is_stale(state, now=NOW, every=EVERY, max_silence=max_silence)


def test_a_source_that_never_answered_is_failing_not_stale() -> None:
    state = SourceState("feed", {}, health="failing", failures=9)
    assert not is_stale(state, now=NOW, every=EVERY, max_silence=timedelta(minutes=1))


def test_the_cadence_follows_the_gaps_between_news() -> None:
    assert None is next_cadence(None, None, NOW)  # first news: no gap yet
    assert 3600.0 == next_cadence(None, NOW - timedelta(hours=1), NOW)
    week = 7 * 86400.0
    cadence: float | None = None
    for weeks in range(1, 9):  # a weekly column, news every Monday
        cadence = next_cadence(
            cadence, NOW + timedelta(weeks=weeks - 1), NOW + timedelta(weeks=weeks)
        )
    assert cadence == pytest.approx(week)


def test_a_slow_source_is_stale_only_after_several_of_its_cadences() -> None:
    """A weekly column polled hourly: not stale two days after its last piece (the fixed
    floor alone, a day, would say so), stale after five weeks."""
    weekly = SourceState(
        "column", {}, health="healthy", last_success=NOW, last_new_item=NOW, cadence=7 * 86400.0
    )
    hourly = timedelta(hours=1)
    assert timedelta(weeks=STALE_AFTER) == silence_limit(weekly, every=hourly, max_silence=None)
    assert not is_stale(weekly, now=NOW + timedelta(days=2), every=hourly, max_silence=None)
    assert is_stale(weekly, now=NOW + timedelta(weeks=6), every=hourly, max_silence=None)
    configured = timedelta(days=1)
    assert configured == silence_limit(weekly, every=hourly, max_silence=configured)


@pytest.mark.parametrize(
    ("silent_before", "silent_now", "news", "change"),
    [
        (timedelta(hours=1), timedelta(days=2), False, "stale"),
        (timedelta(days=2), timedelta(days=3), False, None),  # stale already: said once
        (timedelta(days=2), timedelta(days=3), True, "fresh"),
        (timedelta(hours=1), timedelta(hours=2), True, None),
    ],
)
def test_staleness_changes_once_each_way(
    silent_before: timedelta, silent_now: timedelta, news: bool, change: str | None
) -> None:
    last_news = NOW - silent_now
    old = SourceState(
        "feed",
        {},
        health="healthy",
        last_success=last_news + silent_before,
        last_new_item=last_news,
    )
    found = staleness_change(old, brought_news=news, now=NOW, every=EVERY, max_silence=None)
    assert change == found


def test_only_a_servers_floor_or_a_backoff_holds_a_source_back() -> None:
    """A next poll far off because the interval was longer when it was planned (the
    config since shortened) holds nothing back; a server's floor and a backoff do."""
    polled = SourceState("feed", {}, health="healthy", last_attempt=NOW, last_success=NOW)
    planned_long_ago = replace(polled, next_poll=NOW + timedelta(hours=6))
    floored = record_success(polled, {}, now=NOW, every=EVERY, not_before=NOW + timedelta(hours=2))
    backing_off = record_failure(polled, "HTTP 500", now=NOW, every=EVERY)
    later = NOW + timedelta(minutes=1)
    assert None is held_until(planned_long_ago, now=later)
    assert NOW + timedelta(hours=2) == held_until(floored, now=later)
    assert backing_off.next_poll == held_until(backing_off, now=later)
    assert None is held_until(floored, now=NOW + timedelta(hours=3))
