"""Retention and SQLite upkeep on a real SQLite file.

Retention forgets whole stories, and only those nothing can bring back as new: every item
older than the retention, none among its source's newest (a feed still serving an old
entry must not alert again), and no delivery pending.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.dedup import content_hash, fingerprint
from monitor.model import Item
from monitor.store import Store, open_store, repo
from monitor.store.repo import IngestedItem, PlannedDelivery, PlannedMatch, SourceState
from monitor.text import utc_before

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=200)
RETENTION = timedelta(days=180)
WORDS = [f"{a}{b}" for a in "bcdfghklmnprstvz" for b in ("ana", "elo", "iru", "oka", "umi")]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/db.sqlite"
    else:
        url = request.getfixturevalue("postgres_url")
    store = open_store(url)
    yield store
    store.close()


def story(source: str, n: int, *, words: int = 40) -> Item:
    """An item whose body shares nothing with another ``n``'s: a story of its own."""
    body = " ".join(random.Random(n).choices(WORDS, k=words))
    return Item(
        source=source,
        key=f"guid:{n}",
        title=f"Story {n}",
        body=body,
        published=NOW,
        fingerprint=fingerprint(f"Story {n}", body, f"guid:{n}"),
        content_hash=content_hash(f"Story {n}", body),
    )


def alert(ingested: IngestedItem) -> list[PlannedMatch]:
    return [PlannedMatch("pact", {"terms": ["x"]}, deliveries=(PlannedDelivery("box"),))]


def ingest(store: Store, items: list[Item], at: datetime, source: str = "a") -> int:
    return store.ingest(items, SourceState(source, {}), alert, now=at).deliveries


def send_all(store: Store, at: datetime) -> None:
    for job in store.claim_deliveries("w", now=at, lease=timedelta(minutes=1), limit=1000):
        store.mark_sent(job, "w", now=at)


def test_old_stories_go_whole_but_each_sources_newest_stay(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(repo, "KEEP_NEWEST_PER_SOURCE", 2)
    ingest(store, [story("a", n) for n in range(5)], OLD)
    send_all(store, OLD)
    newest_old = max(store.items(), key=lambda item: item.id)
    ingest(store, [story("a", 5)], NOW)
    pruned = store.prune(NOW - RETENTION)
    # Old sent deliveries all go; four old stories go with their items and matches; the
    # newest old one is among source a's two newest and stays, with its match: it must
    # not alert again.
    assert {"deliveries": 5, "matches": 4, "items": 4, "stories": 4} == pruned
    assert ["guid:5", newest_old.key] == [item.key for item in store.items()]
    assert 0 == ingest(store, [story("a", int(newest_old.key.removeprefix("guid:")))], NOW)
    assert {"deliveries": 0, "matches": 0, "items": 0, "stories": 0} == store.prune(NOW - RETENTION)


def test_a_story_still_carried_recently_or_still_pending_is_kept(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(repo, "KEEP_NEWEST_PER_SOURCE", 0)
    ingest(store, [story("a", 1), story("a", 2)], OLD)
    send_all(store, OLD)
    ingest(store, [story("a", 3)], OLD)  # its delivery never went out
    ingest(store, [story("b", 1)], NOW, source="b")  # a recent copy of story 1
    pruned = store.prune(NOW - RETENTION)
    assert {"deliveries": 2, "matches": 1, "items": 1, "stories": 1} == pruned
    assert {("a", "guid:1"), ("a", "guid:3"), ("b", "guid:1")} == {
        (item.source, item.key) for item in store.items()
    }
    assert 1 == store.outbox_counts(now=NOW)["pending"]


def test_a_retention_longer_than_the_calendar_keeps_everything(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``retention: 9999999d`` passes the config's checks; housekeeping prunes before
    the calendar's first day (nothing), not an OverflowError every day."""
    monkeypatch.setattr(repo, "KEEP_NEWEST_PER_SOURCE", 0)
    ingest(store, [story("a", 1)], OLD)
    send_all(store, OLD)
    empty = {"deliveries": 0, "matches": 0, "items": 0, "stories": 0}
    assert empty == store.prune(utc_before(timedelta(days=9_999_999)))
    assert ["guid:1"] == [item.key for item in store.items()]


def test_an_entry_forgotten_by_retention_comes_back_as_new(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The price of retention, and why a source's newest entries are never forgotten."""
    monkeypatch.setattr(repo, "KEEP_NEWEST_PER_SOURCE", 0)
    ingest(store, [story("a", 1)], OLD)
    send_all(store, OLD)
    store.prune(NOW - RETENTION)
    assert 1 == ingest(store, [story("a", 1)], NOW)


def test_an_old_entry_edited_lately_is_kept_and_its_next_edit_is_no_new_item(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An entry first fetched before the retention but edited within it is still
    served: forgotten, its next edit would come back as a new item and alert again."""
    monkeypatch.setattr(repo, "KEEP_NEWEST_PER_SOURCE", 0)
    first = story("a", 1)
    ingest(store, [first], OLD)
    edited = replace(first, body=first.body + " corrected", content_hash="edited")
    ingest(store, [edited], NOW - timedelta(days=10))
    send_all(store, NOW)
    assert 0 == store.prune(NOW - RETENTION)["stories"]
    again = replace(edited, body=edited.body + " twice", content_hash="edited twice")
    result = store.ingest([again], SourceState("a", {}), alert, now=NOW)
    assert (result.new, result.updated) == (0, 1)


def test_optimize_vacuums_only_when_much_of_the_file_is_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(repo, "KEEP_NEWEST_PER_SOURCE", 0)
    store = open_store(f"sqlite:///{tmp_path}/db.sqlite")
    ingest(store, [story("a", n, words=1000) for n in range(100)], OLD)
    send_all(store, OLD)
    assert not store.optimize()
    full = (tmp_path / "db.sqlite").stat().st_size
    assert 100 == store.prune(NOW - RETENTION)["items"]
    assert store.optimize()
    assert (tmp_path / "db.sqlite").stat().st_size < full / 2
    assert 0 == (tmp_path / "db.sqlite-wal").stat().st_size  # checkpointed and truncated
    assert not store.optimize()
    store.close()


def test_a_story_a_pending_digest_carries_is_kept(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A digest's delivery names its matches (payload ids, no match_id): while it is
    pending (its channel down), their stories are its content and must stay."""
    monkeypatch.setattr(repo, "KEEP_NEWEST_PER_SOURCE", 0)
    seen = NOW - RETENTION - timedelta(hours=1)  # an hour older than the retention
    digest_only = [PlannedMatch("pact", {"terms": ["x"]})]  # no instant delivery
    store.ingest([story("a", 1)], SourceState("a", {}), lambda _: digest_only, now=seen)
    [match] = store.matches_between(seen - timedelta(days=1), seen, ["pact"])

    def build(start: datetime, end: datetime) -> tuple[list[tuple[str, str]], dict[str, object]]:
        return [("box", "")], {"matches": [match.id]}

    closed = seen + timedelta(minutes=30)  # the half-hourly digest, not sent yet
    assert 1 == store.close_digest_window(
        "digest", start_default=seen - timedelta(minutes=30), end=closed, build=build
    )
    store.prune(NOW - RETENTION)
    assert 1 == store.outbox_counts(now=NOW)["pending"]
    assert [match.id] == list(store.match_records([match.id]))  # the digest still shows it


def test_a_latest_headline_feeds_story_stays_known_once_its_first_is_forgotten(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A "latest headline" feed keeps one GUID for whatever its one entry is now: the
    first story is stored under the GUID's key, each later one under a key of its own.
    Once retention forgets the first, the story current then, polled again, is still
    known: not stored again, not alerted again (a short one is too short to be known as
    a copy of its story)."""
    monkeypatch.setattr(repo, "KEEP_NEWEST_PER_SOURCE", 1)

    def latest(n: int) -> Item:
        short = story("a", n, words=6)
        return replace(short, key="guid:latest", url=f"https://news.test/{n}")

    assert 1 == ingest(store, [latest(1)], OLD)
    assert 1 == ingest(store, [latest(2)], OLD)
    send_all(store, OLD)
    assert 1 == store.prune(NOW - RETENTION)["stories"]
    assert 0 == ingest(store, [latest(2)], NOW)
    edited = replace(latest(2), body=latest(2).body + " Seoul said.", content_hash="edited")
    result = store.ingest([edited], SourceState("a", {}), alert, now=NOW)
    assert (0, 1) == (result.new, result.updated)
    [kept] = store.items()
    assert ("guid:latest url:https://news.test/2", edited.body) == (kept.key, kept.body)
