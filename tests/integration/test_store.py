"""The store on a real SQLite file: dedup by constraint, one-transaction ingest, claims."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from monitor.dedup import body_hash, content_hash, fingerprint
from monitor.errors import StoreError
from monitor.model import Item
from monitor.store import Store, open_store
from monitor.store.migrate import current_revision, head_revision, known_head
from monitor.store.repo import CACHE_KIB, IngestedItem, PlannedDelivery, PlannedMatch, SourceState

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(f"sqlite:///{tmp_path}/db.sqlite")
    yield store
    store.close()


def item(source: str, key: str, body: str, title: str = "Title") -> Item:
    return Item(
        source=source,
        key=key,
        title=title,
        body=body,
        published=NOW,
        fingerprint=fingerprint(title, body, key),
        content_hash=content_hash(title, body),
    )


def alert_all(channel: str = "box") -> object:
    def route(ingested: IngestedItem) -> list[PlannedMatch]:
        return [PlannedMatch("pact", {"terms": ["x"]}, deliveries=(PlannedDelivery(channel),))]

    return route


def test_schema_is_at_head_and_wal_is_on(store: Store) -> None:
    assert head_revision() == current_revision(store.engine)
    with store.engine.connect() as connection:
        assert "wal" == connection.execute(text("PRAGMA journal_mode")).scalar()
        # KiB, given negative; every pooled connection, so their caches stay small
        assert -CACHE_KIB == connection.execute(text("PRAGMA cache_size")).scalar()


def test_the_head_read_from_the_migration_files_is_alembics() -> None:
    """Starts skip Alembic when the database is at this head (see migrate.known_head)."""
    assert head_revision() == known_head()


def test_same_item_twice_is_stored_once(store: Store) -> None:
    state = SourceState("a", cursor={"n": 1})
    first = store.ingest([item("a", "k1", "body")], state, alert_all(), now=NOW)
    second = store.ingest([item("a", "k1", "body")], state, alert_all(), now=NOW)
    assert (1, 1, 1) == (first.new, first.matches, first.deliveries)
    assert (0, 1, 0, 0) == (second.new, second.unchanged, second.matches, second.deliveries)
    assert 1 == len(list(store.items()))
    assert {"n": 1} == store.source_state("a").cursor


@pytest.mark.parametrize(
    "key", ['guid:tag:news.test,2026:😀 "quoted" \\ 서울 café', "url:https://bücher.test/ä?q=1"]
)
def test_an_item_under_a_key_outside_ascii_is_found_again(store: Store, key: str) -> None:
    """Keys and texts are looked up as one list parameter each (a JSON array on
    SQLite): any character of a key must come back as itself."""
    state = SourceState("a", {})
    body = "Seoul café 😀 talks"
    store.ingest([item("a", key, body)], state, alert_all(), now=NOW)
    again = store.ingest([item("a", key, body)], state, alert_all(), now=NOW)
    assert (0, 1) == (again.new, again.unchanged)
    assert 1 == len(list(store.items()))


def test_an_item_under_another_name_at_its_link_with_its_text_is_the_item(store: Store) -> None:
    """A stored row at an item's canonical link with its text is the item, whatever name
    found it or none: not stored again, nor taken as an edit of another row."""
    state = SourceState("a", {})
    at_link = "https://news.test/live"
    first = replace(item("a", "content:1", "Update 1."), url=at_link)
    second = replace(item("a", "content:2", "Update 2."), url=at_link)
    store.ingest([first, second], state, alert_all(), now=NOW)
    alone = store.ingest([replace(second, key="url:" + at_link)], state, alert_all(), now=NOW)
    elsewhere = store.ingest(
        [replace(second, key="url:https://news.test/other", url="https://news.test/other")],
        state,
        alert_all(),
        now=NOW,
    )
    assert (0, 0, 1) == (alone.new, alone.updated, alone.unchanged)
    assert (1, 0) == (elsewhere.new, elsewhere.unchanged)
    assert ["content:1", "content:2", "url:https://news.test/other"] == sorted(
        i.key for i in store.items()
    )


def test_a_document_in_another_file_under_a_stored_title_is_another_story(store: Store) -> None:
    """A folder document is named by its title. Another file's document under it, with
    news of its own, is another item and story; its edit is its own update, and an edit
    of the first file stays the first's."""
    state = SourceState("drop", {})
    key = "guid:doc:security daily brief"

    def brief(file: str, body: str) -> Item:
        return replace(item("drop", key, body, title="Security daily brief"), file=file)

    monday = "Seoul said the pact would lapse at midnight unless export curbs were lifted."
    tuesday = "In a reversal, Seoul kept the pact hours before the deadline after pressure."
    store.ingest([brief("mon.txt", monday)], state, alert_all(), now=NOW)
    other = store.ingest([brief("tue.txt", tuesday)], state, alert_all(), now=NOW)
    edits = store.ingest(
        [brief("tue.txt", tuesday + " Officials said so."), brief("mon.txt", monday + " Noted.")],
        state,
        alert_all(),
        now=NOW,
    )
    stored = {i.key: i for i in store.items()}
    assert (1, 1) == (other.new, other.deliveries)
    assert (0, 2) == (edits.new, edits.updated)
    assert [key, f"{key} file:tue.txt"] == sorted(stored)
    assert stored[key].body.endswith("Noted.")
    assert stored[key].story_id != stored[f"{key} file:tue.txt"].story_id


@pytest.mark.parametrize("kind", ["document", "entry"])
def test_another_story_under_a_long_name_is_stored_and_found_again(store: Store, kind: str) -> None:
    """Another story under a stored name gets a key of its own (the name and its file or
    link), which can be longer than the key column: it is cut as every key is, and the
    same story polled again is found under it, not stored again."""
    state = SourceState("drop", {})
    title = " ".join(["security daily brief"] * 15)
    key = "guid:doc:" + title[:300]
    place = "/".join(["region-" + "x" * 40] * 6)  # about 290 characters

    def story(name: str, body: str, headline: str) -> Item:
        if kind == "document":
            return replace(item("drop", key, body, title=title), file=f"{place}/{name}.txt")
        at = f"https://news.test/{place}/{name}"
        return replace(item("drop", f"guid:{at}", body, title=headline), url=at)

    monday = "Seoul said the pact would lapse at midnight unless export curbs were lifted."
    tuesday = "In a reversal, Seoul kept the pact hours before the deadline after pressure."
    first = story("mon", monday, "Pact to lapse")
    second = replace(story("tue", tuesday, "Pact kept"), key=first.key)
    store.ingest([first], state, alert_all(), now=NOW)
    other = store.ingest([second], state, alert_all(), now=NOW)
    again = store.ingest([second], state, alert_all(), now=NOW)
    assert (1, 1) == (other.new, other.deliveries)
    assert (0, 0, 1) == (again.new, again.deliveries, again.unchanged)
    assert all(len(i.key) <= 600 for i in store.items())


def _copies_work(tmp_path: Path, stored: int) -> int:
    """SQLite's work (virtual machine steps, in thousands) to store 20 copies, under
    other headlines, of short stories a wire carried among ``stored`` of its own."""
    from random import Random

    from sqlalchemy import event

    rng = Random(1)
    words = [f"w{n}" for n in range(3000)]
    store = open_store(f"sqlite:///{tmp_path}/{stored}.sqlite")
    wire = [
        item("wire", f"g{n}", " ".join(rng.choices(words, k=30)), title=f"Wire headline {n}")
        for n in range(stored)
    ]
    for start in range(0, stored, 500):
        store.ingest(wire[start : start + 500], SourceState("wire", {}), lambda i: [], now=NOW)
    copies = [
        item("agg", f"a{n}", wire[-1 - n].body, title=f"Other words {n} entirely")
        for n in range(20)
    ]
    steps = [0]

    def step() -> int:
        steps[0] += 1
        return 0

    @event.listens_for(store.engine, "before_cursor_execute")
    def count(connection: Any, *_: object) -> None:
        connection.connection.dbapi_connection.set_progress_handler(step, 1000)

    try:
        out = store.ingest(copies, SourceState("agg", {}), lambda i: [], now=NOW)
    finally:
        store.close()
    assert (0, 20) == (out.unchanged, out.new)
    return steps[0]


def test_a_copy_of_a_short_story_costs_the_same_whatever_its_source_stored(
    tmp_path: Path,
) -> None:
    """A short copy under another headline is checked against the bodies its story's
    sources carry (is it their paywall notice?): looked up by an index, the lookup
    reads the rows with the body, not every row of the source."""
    few, many = _copies_work(tmp_path, 100), _copies_work(tmp_path, 2000)
    assert many < 2 * few, (few, many)


def test_a_document_archived_as_the_next_is_written_under_its_name_is_found(
    store: Store,
) -> None:
    """brief.txt is renamed and a new brief.txt written under the same title, in one poll,
    day after day: the stored document follows its text to the archived file (with the
    key of that file, when it had one of its own), and each new brief is another story."""
    state = SourceState("drop", {})
    key = "guid:doc:security daily brief"

    def brief(file: str, body: str) -> Item:
        return replace(item("drop", key, body, title="Security daily brief"), file=file)

    days = [
        "Seoul said the pact would lapse at midnight unless export curbs were lifted.",
        "In a reversal, Seoul kept the pact hours before the deadline after pressure.",
        "Tokyo welcomed the decision and said export talks would resume next week.",
    ]
    store.ingest([brief("brief.txt", days[0])], state, alert_all(), now=NOW)
    polls = [
        store.ingest(
            [brief("brief.txt", days[day]), brief(f"brief-{day}.txt", days[day - 1])],
            state,
            alert_all(),
            now=NOW,
        )
        for day in (1, 2)
    ]
    stored = {i.key: (i.body, i.story_id) for i in store.items()}
    assert [(1, 1, 1), (1, 1, 1)] == [(p.new, p.unchanged, p.deliveries) for p in polls]
    assert {
        key: days[0],
        f"{key} file:brief-2.txt": days[1],
        f"{key} file:brief.txt": days[2],
    } == {k: body for k, (body, _) in stored.items()}
    assert 3 == len({story for _, story in stored.values()})


def test_syndicated_copy_is_one_story_and_alerts_once(store: Store) -> None:
    state_a, state_b = SourceState("a", {}), SourceState("b", {})
    # The body tells of its headline: one of under 40 words that does not is a notice,
    # which joins by its headline alone.
    words, title = "Same words, long enough to name a story. " * 3, "Story in words"
    store.ingest([item("a", "k1", words, title)], state_a, alert_all(), now=NOW)
    copy = store.ingest([item("b", "other", words.upper(), title)], state_b, alert_all(), now=NOW)
    assert (1, 0, 0) == (copy.new, copy.matches, copy.deliveries)
    stored = {i.source: i for i in store.items()}
    assert stored["a"].story_id == stored["b"].story_id
    assert ["b"] == store.other_outlets(stored["a"].story_id, stored["a"].id)


def test_a_poll_repeating_an_entry_stores_it_once(store: Store) -> None:
    """One poll carrying an entry twice: the second copy is compared with the first, as
    if it came a poll later (the store handles a poll's items all at once)."""
    state = SourceState("a", {})
    twice = [item("a", "k1", "body"), item("a", "k1", "body")]
    versions = sorted([item("a", "k2", "v1"), item("a", "k2", "v2")], key=lambda i: i.fingerprint)
    same = store.ingest(twice, state, alert_all(), now=NOW)
    edited = store.ingest(versions, state, alert_all(), now=NOW)
    assert (1, 0, 1, 1) == (same.new, same.updated, same.unchanged, same.deliveries)
    assert (1, 1, 0) == (edited.new, edited.updated, edited.unchanged)
    # Items are stored in fingerprint order: the later one is the update.
    assert ["body", versions[1].body] == sorted(i.body for i in store.items())


def test_copies_in_one_poll_share_a_story_and_alert_once(store: Store) -> None:
    """A poll's own new items are candidates for each other: an exact copy and a near
    copy (same words, one sentence more) join the first one's story."""
    words = " ".join(f"w{n}" for n in range(40))
    items = [
        item("a", "k1", words),
        item("a", "k2", words.upper()),
        item("a", "k3", words + " Read more at the wire."),
        item("a", "k4", " ".join(f"z{n}" for n in range(40))),
    ]
    result = store.ingest(items, SourceState("a", {}), alert_all(), now=NOW)
    story = {i.key: i.story_id for i in store.items()}
    assert (4, 2, 2) == (result.new, result.matches, result.deliveries)
    assert story["k1"] == story["k2"] == story["k3"] != story["k4"]


# Another process (`monitor run --once` beside the daemon) storing an item on the same
# file: it prints each statement SQLite starts, so the test knows when it writes.
OTHER_PROCESS = textwrap.dedent(
    """
    import sys
    from sqlalchemy import event
    from monitor.store import open_store
    from monitor.store.repo import SourceState
    from test_store import NOW, alert_all, item

    store = open_store(sys.argv[1], upgrade=False)
    event.listen(
        store.engine,
        "connect",
        lambda dbapi, _: dbapi.set_trace_callback(lambda sql: print(sql, flush=True)),
    )
    copy = item("b", "k2", sys.argv[2])
    result = store.ingest([copy], SourceState("b", {}), alert_all(), now=NOW)
    print("deliveries", result.deliveries, flush=True)
    """
)


def test_copies_stored_at_once_by_two_processes_are_one_story(tmp_path: Path) -> None:
    """A syndicated copy meets no unique key: the second process must look for a
    similar story only once the first one's is committed, not before it waits for the
    write lock."""
    url = f"sqlite:///{tmp_path}/db.sqlite"
    store = open_store(url)
    words = " ".join(f"w{n}" for n in range(60))
    others: list[subprocess.Popen[str]] = []

    def route(ingested: IngestedItem) -> list[PlannedMatch]:
        # The first poll's story is stored, uncommitted: the other process polls now,
        # and this one commits once the other has started its first write.
        other = subprocess.Popen(
            [sys.executable, "-c", OTHER_PROCESS, url, words + " Read more at the wire."],
            cwd=Path(__file__).parent,
            stdout=subprocess.PIPE,
            text=True,
        )
        others.append(other)
        assert other.stdout is not None
        for line in other.stdout:
            if line.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
                break
        return alert_all()(ingested)  # type: ignore[operator, no-any-return]

    try:
        store.ingest([item("a", "k1", words)], SourceState("a", {}), route, now=NOW)
        [other] = others
        rest, _ = other.communicate(timeout=60)
        assert 0 == other.returncode
        assert "deliveries 0" in rest
        story_ids = {stored.source: stored.story_id for stored in store.items()}
        assert story_ids["a"] == story_ids["b"]
    finally:
        for other in others:
            other.kill()
        store.close()


def test_edit_is_an_update_not_a_new_item(store: Store) -> None:
    state = SourceState("a", {})
    store.ingest([item("a", "k1", "v1")], state, alert_all(), now=NOW)
    seen: list[str] = []

    def route(ingested: IngestedItem) -> list[PlannedMatch]:
        seen.append(ingested.status)
        return []

    result = store.ingest([item("a", "k1", "v2")], state, route, now=NOW)
    assert (0, 1, ["updated"]) == (result.new, result.updated, seen)
    assert ["v2"] == [i.body for i in store.items()]


def test_a_match_is_read_back_with_its_whole_item(store: Store) -> None:
    """By id for an alert and by time for a digest, each field where it belongs."""
    stored = replace(
        item("a", "k1", "body", title="Seoul talks"),
        url="https://news.example/1",
        html="<p>body</p>",
        author="Desk",
        published=NOW - timedelta(hours=1),
    )
    store.ingest([stored], SourceState("a", {}), alert_all(), now=NOW)
    [job] = store.claim_deliveries("one", now=NOW, lease=timedelta(minutes=5), limit=1)
    [from_items] = store.items()
    assert job.match_id is not None

    by_id = store.match_records([job.match_id])[job.match_id]
    [by_time] = store.matches_between(NOW - timedelta(days=1), NOW, None)

    for record in (by_id, by_time):
        assert (job.match_id, "pact", NOW, {"terms": ["x"]}) == (
            record.id,
            record.watchlist,
            record.matched_at,
            record.hits,
        )
        assert from_items == record.item
        assert ("Seoul talks", "body", "https://news.example/1") == (
            record.item.title,
            record.item.body,
            record.item.url,
        )
        assert ("<p>body</p>", "Desk", NOW - timedelta(hours=1)) == (
            record.item.html,
            record.item.author,
            record.item.published,
        )


def test_a_failing_router_rolls_back_the_whole_poll(store: Store) -> None:
    def route(ingested: IngestedItem) -> list[PlannedMatch]:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.ingest([item("a", "k1", "b")], SourceState("a", {"x": 1}), route, now=NOW)
    assert [] == list(store.items())
    assert {} == store.source_state("a").cursor


def test_claims_are_exclusive_until_the_lease_ends(store: Store) -> None:
    store.ingest(
        [item("a", f"k{i}", f"body {i}") for i in range(3)],
        SourceState("a", {}),
        alert_all(),
        now=NOW,
    )
    lease = timedelta(minutes=5)
    first = store.claim_deliveries("one", now=NOW, lease=lease, limit=2)
    second = store.claim_deliveries("two", now=NOW, lease=lease, limit=10)
    assert (2, 1) == (len(first), len(second))
    assert not {j.id for j in first} & {j.id for j in second}
    assert [] == store.claim_deliveries("three", now=NOW, lease=lease, limit=10)
    later = store.claim_deliveries("three", now=NOW + lease * 2, lease=lease, limit=10)
    assert 3 == len(later)


def test_outcomes_only_count_for_the_claim_holder(store: Store) -> None:
    store.ingest([item("a", "k", "b")], SourceState("a", {}), alert_all(), now=NOW)
    [job] = store.claim_deliveries("one", now=NOW, lease=timedelta(seconds=1), limit=5)
    [stolen] = store.claim_deliveries(
        "two", now=NOW + timedelta(seconds=5), lease=timedelta(minutes=1), limit=5
    )
    store.mark_sent(job, "one", now=NOW)  # too late: "two" holds it now
    assert 1 == store.outbox_counts(now=NOW)["pending"]
    store.mark_sent(stolen, "two", now=NOW)
    assert {"pending": 0, "due": 0, "sent": 1, "dead": 0} == store.outbox_counts(now=NOW)


def test_retry_and_dead_letters_and_requeue(store: Store) -> None:
    store.ingest([item("a", "k", "b")], SourceState("a", {}), alert_all(), now=NOW)
    lease = timedelta(minutes=1)
    [job] = store.claim_deliveries("w", now=NOW, lease=lease, limit=5)
    store.mark_retry(job, "w", error="down", due_at=NOW + timedelta(minutes=10))
    assert [] == store.claim_deliveries("w", now=NOW + timedelta(minutes=2), lease=lease, limit=5)
    [job] = store.claim_deliveries("w", now=NOW + timedelta(minutes=11), lease=lease, limit=5)
    assert 1 == job.attempts
    store.mark_dead(job, "w", error="rejected")
    assert 1 == store.outbox_counts(now=NOW)["dead"]
    assert "rejected" == store.dead_letters()[0]["last_error"]
    assert 1 == store.requeue(dead=True, now=NOW)
    assert 1 == store.outbox_counts(now=NOW)["due"]


def test_digest_window_moves_once_and_enqueues_with_it(store: Store) -> None:
    store.ingest([item("a", "k", "b")], SourceState("a", {}), alert_all(), now=NOW)
    end = NOW + timedelta(hours=1)
    calls: list[tuple[datetime, datetime]] = []

    def build(start: datetime, stop: datetime) -> tuple[list[tuple[str, str]], dict[str, object]]:
        calls.append((start, stop))
        ids = [r.id for r in store.matches_between(start, stop, ["pact"])]
        return [("box", "")], {"matches": ids}

    assert 1 == store.close_digest_window(
        "d", start_default=NOW - timedelta(days=1), end=end, build=build
    )
    assert None is store.close_digest_window("d", start_default=NOW, end=end, build=build)
    assert [(NOW - timedelta(days=1), end)] == calls
    assert end == store.digest_windows()["d"][0]


def test_database_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/db.sqlite"
    open_store(url).close()
    store = open_store(url, upgrade=False)
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    store.close()
    with pytest.raises(StoreError, match="newer than this version"):
        open_store(url)


def test_source_state_round_trips(store: Store) -> None:
    state = SourceState(
        "a",
        {"etag": "x"},
        health="degraded",
        failures=2,
        last_error="500",
        last_error_at=NOW,
        next_poll=NOW + timedelta(minutes=4),
    )
    store.save_source_state(state)
    assert replace(state, items=0) == store.source_state("a")


def test_migrations_create_exactly_the_schema_the_code_declares(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from monitor.store.schema import metadata

    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert [] == differences


def test_story_bands_lose_their_rowid_and_keep_their_rows_across_0006(tmp_path: Path) -> None:
    """0006 rebuilds story_bands WITHOUT ROWID on SQLite (one b-tree, not two), copying
    its rows; its downgrade rebuilds the rowid table with them."""
    from alembic import command

    from monitor.store.migrate import _alembic_config

    store = open_store(f"sqlite:///{tmp_path}/db.sqlite")
    config = _alembic_config()

    def migrate(to: str, action: Callable[..., None]) -> None:
        with store.engine.begin() as connection:
            config.attributes["connection"] = connection
            action(config, to)

    def bands() -> tuple[str, list[tuple[int, int]]]:
        with store.engine.connect() as connection:
            table = connection.execute(
                text("SELECT sql FROM sqlite_master WHERE name = 'story_bands'")
            ).scalar_one()
            rows = connection.execute(text("SELECT band, story_id FROM story_bands")).all()
        return table, sorted((int(band), int(story)) for band, story in rows)

    assert bands()[0].rstrip().endswith("WITHOUT ROWID")
    migrate("0005", command.downgrade)
    with store.engine.begin() as connection:
        connection.execute(
            text("INSERT INTO stories (id, fingerprint, first_seen) VALUES (7, 'f', '2026-11-28')")
        )
        connection.execute(text("INSERT INTO story_bands VALUES (-5, 7), (3, 7)"))
    table, rows = bands()
    assert "WITHOUT ROWID" not in table
    assert [(-5, 7), (3, 7)] == rows
    migrate("head", command.upgrade)
    table, rows = bands()
    assert table.rstrip().endswith("WITHOUT ROWID")
    assert [(-5, 7), (3, 7)] == rows
    store.close()


def _migrate(store: Store, to: str, action: Callable[..., None]) -> None:
    """Run an Alembic ``action`` (upgrade, downgrade) to revision ``to`` on ``store``."""
    from monitor.store.migrate import _alembic_config

    config = _alembic_config()
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        action(config, to)


def test_rows_stored_before_0012_are_found_by_their_body(store: Store) -> None:
    """A paper showed its paywall notice under two stories' headlines before the upgrade
    that hashes bodies (0012): its rows get their hashes, and another paper's first
    paywalled story is still known as the notice, not as the first paper's story."""
    from alembic import command

    notice = (
        "This article is for subscribers only. Subscribe to read the full article, or "
        "sign in if you already have an account with us."
    )
    herald = SourceState("herald", {})
    for key, title in [("h1", "GSOMIA talks stall in Tokyo"), ("h2", "Harbour master resigns")]:
        store.ingest([item("herald", key, notice, title=title)], herald, alert_all(), now=NOW)
    _migrate(store, "0011", command.downgrade)
    _migrate(store, "head", command.upgrade)
    with store.engine.connect() as connection:  # the downgrade kept them (see 0012)
        assert 2 == connection.execute(text("SELECT count(*) FROM matches")).scalar()
    courier = store.ingest(
        [item("courier", "c1", notice, title="Seoul renews GSOMIA after US pressure")],
        SourceState("courier", {}),
        alert_all(),
        now=NOW,
    )
    assert (1, 1) == (courier.new, courier.deliveries)
    assert 3 == len({i.story_id for i in store.items()})
    with store.engine.connect() as connection:
        hashes = connection.execute(text("SELECT DISTINCT body_hash FROM items")).scalars()
        assert {body_hash(notice)} == set(hashes)


def test_rows_stored_before_0013_are_found_by_their_headline(store: Store) -> None:
    """The wire told a story in full before the upgrade that hashes headlines (0013): its
    row gets its hash, and a paper's paywall notice under the same headline an hour later
    is found to be that story, and alerts nothing again."""
    from alembic import command

    headline = "Northgate council approves harbour ferry subsidy plan"
    story = " ".join(["Northgate council will pay the harbour ferry operator a subsidy."] * 5)
    wire = store.ingest(
        [item("wire", "w1", story, title=headline)], SourceState("wire", {}), alert_all(), now=NOW
    )
    _migrate(store, "0012", command.downgrade)
    _migrate(store, "head", command.upgrade)
    notice = "Subscribe to read the full article. Already a subscriber? Sign in to keep reading."
    paper = store.ingest(
        [item("paper", "p1", notice, title=headline)],
        SourceState("paper", {}),
        alert_all(),
        now=NOW + timedelta(hours=1),
    )
    assert (1, 1) == (wire.new, wire.deliveries)
    assert (1, 0) == (paper.new, paper.deliveries)
    assert 1 == len({i.story_id for i in store.items()})


@pytest.mark.parametrize(
    "moment",
    [
        NOW,
        datetime(5, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        datetime(2026, 11, 28, 9, 30, 0, 123456, tzinfo=timezone(timedelta(hours=9))),
        None,
    ],
)
def test_a_moment_is_stored_as_sqlalchemys_sqlite_datetime_stores_it(
    moment: datetime | None,
) -> None:
    """UtcDateTime's own SQLite bind processor writes the text SQLAlchemy's would."""
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.types import TypeDecorator

    from monitor.store.schema import UtcDateTime

    dialect = sqlite.dialect()
    ours = UtcDateTime()._cached_bind_processor(dialect)  # as a statement gets it
    theirs = TypeDecorator.bind_processor(UtcDateTime().dialect_impl(dialect), dialect)
    assert ours is not None
    assert theirs is not None
    assert theirs(moment) == ours(moment)


def test_waiting_source_states_are_those_backing_off_or_asked_to_wait(store: Store) -> None:
    """What `monitor run --once` reads to find the sources it must not poll yet
    (monitor.health.held_until): not every source's row, only those not due that back
    off after failures or whose server set a floor past now."""
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    later, earlier = now + timedelta(hours=1), now - timedelta(hours=1)
    states = [
        SourceState("quiet", {}, health="healthy", next_poll=later),
        SourceState("due", {}, health="failing", next_poll=earlier),
        SourceState("failing", {}, health="failing", next_poll=later),
        SourceState("degraded", {}, health="degraded", next_poll=later),
        SourceState("throttled", {}, health="healthy", next_poll=later, not_before=later),
        SourceState("floor_past", {}, health="healthy", next_poll=later, not_before=earlier),
        SourceState("never", {}, health="new"),
    ]
    store.save_source_states(states)
    waiting = store.waiting_source_states(now=now, backing_off={"degraded", "failing"})
    assert ["degraded", "failing", "throttled"] == sorted(state.name for state in waiting)
