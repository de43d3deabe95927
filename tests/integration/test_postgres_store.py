"""The store on this machine's PostgreSQL (a private database per test, see tests/pg.py):
the same Alembic migrations, the SQLite store tests again, and the races several instances
on one database run into, with real concurrent connections.

Source and digest-window leases, on both databases, are in test_postgres_leases.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from pg import race
from sqlalchemy import text
from test_store import (  # noqa: F401 - pytest collects these tests again, on PostgreSQL
    NOW,
    alert_all,
    item,
    test_a_document_archived_as_the_next_is_written_under_its_name_is_found,
    test_a_document_in_another_file_under_a_stored_title_is_another_story,
    test_a_failing_router_rolls_back_the_whole_poll,
    test_a_poll_repeating_an_entry_stores_it_once,
    test_an_item_under_another_name_at_its_link_with_its_text_is_the_item,
    test_another_story_under_a_long_name_is_stored_and_found_again,
    test_claims_are_exclusive_until_the_lease_ends,
    test_copies_in_one_poll_share_a_story_and_alert_once,
    test_digest_window_moves_once_and_enqueues_with_it,
    test_edit_is_an_update_not_a_new_item,
    test_migrations_create_exactly_the_schema_the_code_declares,
    test_outcomes_only_count_for_the_claim_holder,
    test_retry_and_dead_letters_and_requeue,
    test_rows_stored_before_0012_are_found_by_their_body,
    test_rows_stored_before_0013_are_found_by_their_headline,
    test_same_item_twice_is_stored_once,
    test_source_state_round_trips,
    test_syndicated_copy_is_one_story_and_alerts_once,
)

from monitor.model import Item
from monitor.store import Store, open_store
from monitor.store.migrate import current_revision, head_revision
from monitor.store.repo import IngestedItem, PlannedMatch, SourceState

pytestmark = pytest.mark.postgres

WORKERS = 6


@pytest.fixture
def store(postgres_url: str) -> Iterator[Store]:
    """The store the imported SQLite tests get here: PostgreSQL, migrated."""
    store = open_store(postgres_url)
    yield store
    store.close()


def story(n: int) -> Item:
    """Story ``n``: words no other story shares, so near-duplicate matching keeps it apart,
    under a headline it tells of (else, under 40 words, it is a notice: see
    ``stories.notice``)."""
    return item("wire", f"k{n}", " ".join(f"w{n}x{j}" for j in range(20)), title=f"Story w{n}x0")


def test_instances_starting_together_migrate_once(postgres_url: str, tmp_path: Path) -> None:
    config = tmp_path / "monitor.yaml"
    config.write_text(yaml.safe_dump({"database": postgres_url, "watchlists": []}))
    env = {**os.environ, "MONITOR_CONFIG": str(config)}
    upgrades = [
        subprocess.Popen(
            [sys.executable, "-m", "monitor", "db", "upgrade"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [(upgrade.wait(timeout=120), upgrade.communicate()[1]) for upgrade in upgrades]
    assert [(0, "")] * 4 == [(code, "" if code == 0 else err) for code, err in results]
    store = open_store(postgres_url, upgrade=False)
    try:
        assert head_revision() == current_revision(store.engine)
    finally:
        store.close()


def test_racing_claimers_take_each_delivery_exactly_once(store: Store, postgres_url: str) -> None:
    total, batch = 300, 7
    store.ingest([story(n) for n in range(total)], SourceState("wire", {}), alert_all(), now=NOW)
    assert total == store.outbox_counts(now=NOW)["due"]

    def drain(n: int) -> list[int]:
        owner, taken = f"instance-{n}", []
        instance = open_store(postgres_url, upgrade=False)
        try:
            while jobs := instance.claim_deliveries(
                owner, now=NOW, lease=timedelta(minutes=5), limit=batch
            ):
                assert len(jobs) <= batch
                for job in jobs:
                    instance.mark_sent(job, owner, now=NOW)
                taken.extend(job.id for job in jobs)
        finally:
            instance.close()
        return taken

    claims = Counter(job for taken in race(WORKERS, drain) for job in taken)
    assert (total, {1}) == (len(claims), set(claims.values()))
    assert {"pending": 0, "due": 0, "sent": total, "dead": 0} == store.outbox_counts(now=NOW)


def test_polls_storing_the_same_stories_in_opposite_orders_all_commit(
    store: Store, postgres_url: str
) -> None:
    """Syndicated copies polled at once by several instances lock the same story rows in
    different orders; PostgreSQL aborts one as a deadlock and the store runs it again."""
    stories = [story(n) for n in range(60)]

    def poll(n: int) -> int:
        source = f"outlet-{n}"
        copies = [replace(copy, source=source) for copy in stories]
        instance = open_store(postgres_url, upgrade=False)
        try:
            ordered = copies if n % 2 else copies[::-1]
            return instance.ingest(ordered, SourceState(source, {}), alert_all(), now=NOW).new
        finally:
            instance.close()

    assert [60] * WORKERS == race(WORKERS, poll)
    story_ids = {stored.story_id for stored in store.items()}
    assert (60 * WORKERS, 60) == (len(list(store.items())), len(story_ids))
    assert 60 == store.outbox_counts(now=NOW)["due"]  # one alert per story


def test_an_ingest_aborted_as_a_deadlock_runs_again(store: Store) -> None:
    """The deadlock storing in fingerprint order cannot rule out: another transaction holds
    the poll's source row, which the poll writes last, and then waits for a story the poll
    has stored. The poll waited first, so PostgreSQL aborts it; the store runs it again,
    and it commits."""
    first, second = sorted((story(1), story(2)), key=lambda one: one.fingerprint)
    stories_stored, source_locked = threading.Event(), threading.Event()
    routed: list[str] = []

    def route(ingested: IngestedItem) -> list[PlannedMatch]:
        routed.append(ingested.item.key)
        if not stories_stored.is_set():  # first attempt: the stories are in, let the other in
            stories_stored.set()
            assert source_locked.wait(30)
        return []

    def interfere() -> None:
        now = NOW.replace(tzinfo=None)
        assert stories_stored.wait(30)
        with store.engine.begin() as connection:
            # Each waiting backend looks for a deadlock deadlock_timeout (1 s) after it
            # began to wait, and the one that looks first is aborted. The poll began to
            # wait only a poll of wait_for_a_lock_wait earlier (~10 ms): under load this
            # backend could look first and be the one aborted. It looks much later.
            connection.execute(text("SET LOCAL deadlock_timeout = '60s'"))
            connection.execute(
                text(
                    "INSERT INTO source_state (name, cursor, health, failures) "
                    "VALUES ('wire', '{}', 'new', 0)"
                )
            )
            source_locked.set()
            wait_for_a_lock_wait(store)
            connection.execute(
                text(
                    "INSERT INTO stories (fingerprint, first_seen) VALUES (:fingerprint, :now) "
                    "ON CONFLICT DO NOTHING"
                ),
                {"fingerprint": first.fingerprint, "now": now},
            )

    with ThreadPoolExecutor(1) as pool:
        other = pool.submit(interfere)
        result = store.ingest([second, first], SourceState("wire", {}), route, now=NOW)
        other.result()
    assert 2 == result.new
    assert [first.key, second.key, first.key, second.key] == routed


def wait_for_a_lock_wait(store: Store) -> None:
    """Return once a session of this database waits for a lock (fail after 30 s)."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + 30
    with store.engine.connect() as connection:
        while not connection.execute(waiting).scalar_one():
            assert time.monotonic() < deadline, "the poll never waited for the story"
            time.sleep(0.01)


def test_text_postgresql_would_refuse_is_stored_all_the_same(store: Store) -> None:
    """NUL characters (a JSON feed may carry \\u0000) and keys wider than the column (a
    long GUID): SQLite takes both as they are, PostgreSQL neither."""
    guid = "guid:https://example.org/?" + "q" * 700
    odd = [item("wire", guid + "1", "nul\x00inside"), item("wire", guid + "2", "other")]
    first = store.ingest(odd, SourceState("wire", {}), alert_all(), now=NOW)
    again = store.ingest(odd, SourceState("wire", {}), alert_all(), now=NOW)
    assert (2, 2) == (first.new, again.unchanged)
    stored = sorted(store.items(), key=lambda one: one.body)
    assert ["nul\ufffdinside", "other"] == [one.body for one in stored]
    assert [600, 600] == [len(one.key) for one in stored]


def test_syndicated_copies_stored_at_once_by_two_instances_are_one_story(
    store: Store, postgres_url: str
) -> None:
    """Two outlets' copies of one story (near, not exact, duplicates: no unique key to
    meet), polled at the same moment by two instances. Each looks for a similar story
    before the other's has committed; the second must still find the first's."""
    words = " ".join(f"w{n}" for n in range(60))
    first = item("a", "k1", words)
    copy = item("b", "k2", words + " Read more at the wire.")
    in_route, other_done = threading.Event(), threading.Event()

    def route(ingested: IngestedItem) -> list[PlannedMatch]:
        # Inside the first poll's transaction, its story stored but not committed: the
        # other instance polls now, and either finishes or waits for this one.
        in_route.set()
        deadline = time.monotonic() + 30
        while not other_done.is_set() and not lock_waits(store):
            assert time.monotonic() < deadline, "the other poll neither ended nor waited"
            time.sleep(0.01)
        return alert_all()(ingested)  # type: ignore[operator, no-any-return]

    def other() -> int:
        assert in_route.wait(30)
        instance = open_store(postgres_url, upgrade=False)
        try:
            return instance.ingest([copy], SourceState("b", {}), alert_all(), now=NOW).deliveries
        finally:
            other_done.set()
            instance.close()

    with ThreadPoolExecutor(1) as pool:
        second = pool.submit(other)
        store.ingest([first], SourceState("a", {}), route, now=NOW)
        second.result()
    story_ids = {stored.source: stored.story_id for stored in store.items()}
    assert story_ids["a"] == story_ids["b"]
    assert 1 == store.outbox_counts(now=NOW)["pending"]  # one alert


def lock_waits(store: Store) -> int:
    """How many sessions of this database wait for a lock now."""
    with store.engine.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        )
