"""Leases, on SQLite and on this machine's PostgreSQL: several instances (each its own App
and connection pool, in threads released together) share one database. A due source is
fetched by exactly one of them per interval, a twin digest firing sends one digest, and a
dead instance's lease runs out so that another takes its work over."""

from __future__ import annotations

import email
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import waiting
from feedserver import FeedServer, drip_headers, rss
from pg import race
from samples import write_config, write_document
from test_store import NOW, alert_all, item

from monitor.alerts.outbox import deliver_due
from monitor.app import App, build_app
from monitor.config import load_config
from monitor.health import record_failure
from monitor.health_alerts import health_notices
from monitor.model import FetchResult
from monitor.pipeline import poll_source
from monitor.sources.base import Source
from monitor.store import Store, open_store
from monitor.store.repo import DIGEST_LEASE, SourceState

INSTANCES = 4
SOURCES = 12
EVERY = timedelta(minutes=1)
SLACK = timedelta(seconds=10)
MINUTE = timedelta(minutes=1)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database URL, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/db.sqlite"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(database: str) -> Iterator[Store]:
    store = open_store(database)
    yield store
    store.close()


# --- source leases ----------------------------------------------------------------------


def test_a_due_source_goes_to_exactly_one_of_racing_instances(store: Store, database: str) -> None:
    names = [f"source-{n}" for n in range(SOURCES)]
    store.save_source_state(SourceState(names[0], {"etag": "x"}, next_poll=NOW))  # due now

    def claim_all(n: int) -> list[str]:
        instance = open_store(database, upgrade=False)
        try:
            order = random.Random(n).sample(names, len(names))
            return [
                name
                for name in order
                if instance.claim_source(name, f"i{n}", now=NOW, until=NOW + EVERY) is not None
            ]
        finally:
            instance.close()

    winners = Counter(name for won in race(INSTANCES, claim_all) for name in won)
    assert dict.fromkeys(names, 1) == dict(winners)


def test_a_lease_holds_until_it_ends_and_a_written_poll_ends_it(store: Store) -> None:
    claimed = store.claim_source("wire", "a", now=NOW, until=NOW + EVERY)
    assert SourceState("wire", {}) == claimed  # never polled: a fresh state
    assert None is store.claim_source("wire", "b", now=NOW + EVERY / 2, until=NOW + EVERY)
    assert None is store.claim_source("wire", "b", now=NOW, until=NOW + EVERY, force=True)
    # "a" died: its lease runs out and "b" takes the source over
    taken = store.claim_source("wire", "b", now=NOW + EVERY * 2, until=NOW + EVERY * 3)
    assert taken is not None
    polled = SourceState("wire", {"polled": "by b"}, next_poll=NOW + EVERY * 3)
    store.save_source_state(polled, owner="b")
    later = NOW + EVERY * 2 + timedelta(seconds=1)
    assert None is store.claim_source("wire", "c", now=later, until=later + EVERY)  # not due
    forced = store.claim_source("wire", "c", now=later, until=later + EVERY, force=True)
    assert {"polled": "by b"} == (forced.cursor if forced else None)


def test_a_poll_that_outlived_its_lease_does_not_overwrite_the_next_one(store: Store) -> None:
    store.claim_source("wire", "slow", now=NOW, until=NOW + EVERY)
    store.claim_source("wire", "fast", now=NOW + EVERY * 2, until=NOW + EVERY * 3)
    newer = SourceState("wire", {"v": "fast"}, next_poll=NOW + EVERY * 3)
    store.ingest([item("wire", "k1", "fast")], newer, alert_all(), now=NOW, owner="fast")
    stale = SourceState("wire", {"v": "slow"}, next_poll=NOW + EVERY)
    result = store.ingest([item("wire", "k2", "slow")], stale, alert_all(), now=NOW, owner="slow")
    assert 1 == result.new  # what it found is kept: dedup makes that safe
    assert ({"v": "fast"}, NOW + EVERY * 3) == (
        store.source_state("wire").cursor,
        store.source_state("wire").next_poll,
    )


# --- deliveries -------------------------------------------------------------------------


def test_a_batch_that_outlived_its_lease_leaves_what_another_instance_took(store: Store) -> None:
    store.ingest(
        [item("wire", f"k{n}", f"body {n} " * n) for n in range(1, 4)],
        SourceState("wire", {}),
        alert_all(),
        now=NOW,
    )
    slow = store.claim_deliveries("slow", now=NOW, lease=MINUTE, limit=10)
    late = NOW + MINUTE * 2  # "slow" is still sending its batch; its lease ran out
    [taken] = store.claim_deliveries("other", now=late, lease=MINUTE, limit=1)
    renewed = [store.renew_claim(job, "slow", until=late + MINUTE) for job in slow]
    assert [job.id != taken.id for job in slow] == renewed
    assert [] == store.claim_deliveries("third", now=late, lease=MINUTE, limit=10)


# --- digest windows ---------------------------------------------------------------------


def test_twin_digest_firings_send_one_digest(store: Store, database: str) -> None:
    """Every instance fires the 07:00 digest within a few milliseconds of the others."""

    def fire(n: int) -> int | None:
        instance = open_store(database, upgrade=False)
        try:
            end = NOW + timedelta(milliseconds=n)
            return instance.close_digest_window(
                "morning",
                start_default=NOW - timedelta(days=1),
                end=end,
                build=lambda start, stop: ([("box", "")], {}),
            )
        finally:
            instance.close()

    queued = race(INSTANCES, fire)
    assert [1] + [None] * (INSTANCES - 1) == sorted(queued, key=lambda q: q is None)
    [closed] = store.digest_windows().values()
    assert NOW <= closed[0] < NOW + timedelta(milliseconds=INSTANCES)
    # the next firing, a minute on, takes the window from where the twin closed it
    windows = Windows()
    store.close_digest_window("morning", start_default=NOW, end=NOW + MINUTE, build=windows)
    assert [(closed[0], NOW + MINUTE)] == windows.built


def test_a_closer_that_dies_leaves_the_window_to_a_later_firing(store: Store) -> None:
    def crash(start: datetime, stop: datetime) -> None:
        raise RuntimeError("killed while building the digest")

    with pytest.raises(RuntimeError):
        store.close_digest_window("morning", start_default=NOW, end=NOW + MINUTE, build=crash)
    assert {"morning": (NOW, None)} == store.digest_windows()  # the window did not move
    windows = Windows()
    twin = NOW + MINUTE + DIGEST_LEASE / 2
    assert None is store.close_digest_window("morning", start_default=NOW, end=twin, build=windows)
    later = NOW + MINUTE * 2
    store.close_digest_window("morning", start_default=NOW, end=later, build=windows)
    assert [(NOW, later)] == windows.built


class Windows:
    """A digest builder that records the windows it was asked for and sends nothing."""

    def __init__(self) -> None:
        self.built: list[tuple[datetime, datetime]] = []

    def __call__(self, start: datetime, end: datetime) -> None:
        self.built.append((start, end))


# --- poll_source across instances -------------------------------------------------------


class CountingSource:
    """A real source that counts its fetches (a hand-written fake around it)."""

    lock = threading.Lock()

    def __init__(self, source: Source, fetches: Counter[str]) -> None:
        self.name = source.name
        self._source = source
        self._fetches = fetches

    def fetch(self, cursor: dict[str, Any]) -> FetchResult:
        with self.lock:
            self._fetches[self.name] += 1
        return self._source.fetch(cursor)


@pytest.fixture
def instances(database: str, tmp_path: Path) -> Iterator[tuple[list[App], Counter[str]]]:
    """INSTANCES Apps on one database, polling SOURCES folders whose fetches are counted."""
    sources = []
    for n in range(SOURCES):
        folder = tmp_path / f"news-{n}"
        words = " ".join(f"s{n}w{j}" for j in range(20))  # its own story, not a near copy
        write_document(folder, "story", f"GSOMIA story {n}", body=f"GSOMIA talks. {words}")
        sources.append({"name": f"news-{n}", "type": "folder", "path": str(folder), "every": "1m"})
    config = write_config(
        tmp_path,
        channels={"box": {"type": "maildir", "path": str(tmp_path / "mail"), "to": ["d@x.org"]}},
        database=database,
        sources=sources,
        delivery={"batch": 2},  # small claims, so that the instances interleave
    )
    fetches: Counter[str] = Counter()
    apps = []
    try:
        for n in range(INSTANCES):
            app = build_app(load_config(config))
            app.owner = f"instance-{n}"
            app.sources = {name: CountingSource(s, fetches) for name, s in app.sources.items()}
            apps.append(app)
        yield apps, fetches
    finally:
        for app in apps:
            app.close()


def poll_everything(apps: list[App], now: datetime) -> list[str]:
    """Every instance polls every source at ``now``, each in its own order; the polls."""

    def poll(n: int) -> list[str]:
        app = apps[n]
        order = random.Random(n).sample(sorted(app.sources), len(app.sources))
        return [name for name in order if not poll_source(app, name, now=now).skipped]

    return [name for polled in race(len(apps), poll) for name in polled]


def test_each_due_source_is_fetched_once_per_interval_across_instances(
    instances: tuple[list[App], Counter[str]],
) -> None:
    apps, fetches = instances
    everything = {f"news-{n}": 1 for n in range(SOURCES)}
    assert everything == Counter(poll_everything(apps, NOW)) == fetches
    assert [] == poll_everything(apps, NOW + EVERY / 2)  # none is due again yet
    fetches.clear()
    # A poll's next one counts from when it ended: after NOW in this simulated time by
    # as long as the real poll took, which is well under SLACK.
    next_interval = NOW + EVERY + SLACK
    # instance 0 takes news-0 at the next interval and dies before writing the poll
    assert apps[0].store.claim_source(
        "news-0", "instance-0", now=next_interval, until=next_interval + EVERY
    )
    survivors = apps[1:]
    assert everything.keys() - {"news-0"} == set(poll_everything(survivors, next_interval))
    assert [] == poll_everything(survivors, next_interval + EVERY / 2)  # news-0 still leased
    after = next_interval + EVERY + SLACK
    assert everything == Counter(poll_everything(survivors, after))
    assert {name: 2 for name in everything} | {"news-0": 1} == fetches


def test_each_alert_is_delivered_once_by_racing_instances(
    instances: tuple[list[App], Counter[str]], tmp_path: Path
) -> None:
    apps, _ = instances
    poll_everything(apps, NOW)

    def deliver(n: int) -> int:
        sent = 0
        while report := deliver_due(apps[n], now=NOW).sent:
            sent += report
        return sent

    assert SOURCES == sum(race(len(apps), deliver))
    mails = sorted((tmp_path / "mail" / "new").iterdir())
    ids = {email.message_from_bytes(mail.read_bytes())["Message-ID"] for mail in mails}
    assert (SOURCES, SOURCES) == (len(mails), len(ids))


def test_a_poll_slower_than_its_interval_keeps_its_source_from_other_instances(
    database: str, tmp_path: Path
) -> None:
    """``every: 1s``, while a fetch may take its ``timeout`` (30 s by default): the lease
    must last as long as the poll may, or a second instance fetches the source meanwhile."""
    with FeedServer() as server:
        server.routes["/wire.xml"] = drip_headers(8, 0.5, rss(("g1", "GSOMIA", "Talks.")))
        source = {"name": "wire", "type": "feed", "url": server.url("/wire.xml"), "every": "1s"}
        config = tmp_path / "monitor.yaml"
        config.write_text(json.dumps({"database": database, "sources": [source], "watchlists": []}))
        apps = [build_app(load_config(config)) for _ in range(2)]
        apps[0].owner, apps[1].owner = "slow", "other"
        try:
            slow = threading.Thread(target=poll_source, args=(apps[0], "wire"))
            slow.start()
            waiting.wait_until(lambda: server.seen, "the slow poll to reach the server", 30)
            time.sleep(2)  # the 1 s interval is long over; the fetch (4 s) is not
            assert poll_source(apps[1], "wire").skipped
            slow.join()
            assert 1 == len(server.seen)
        finally:
            for app in apps:
                app.close()


def test_a_failing_poll_that_outlived_its_lease_queues_no_second_notice(store: Store) -> None:
    """Both polls see the source go from degraded to failing; the one whose state is
    refused (its lease was taken over) must not tell of the change as well."""
    before = SourceState("wire", {}, health="degraded", failures=2)
    store.save_source_state(before)
    store.claim_source("wire", "slow", now=NOW, until=NOW + EVERY)
    later = NOW + EVERY * 2
    store.claim_source("wire", "fast", now=later, until=later + EVERY)
    for owner, at in (("fast", later), ("slow", NOW)):
        failed = record_failure(before, "down", now=at, every=EVERY)
        told = health_notices(["box"], before, failed, now=at)
        assert ["failing"] == [notice.payload["change"] for notice in told]
        store.save_source_state(failed, owner=owner, notices=told, now=at)
    assert 1 == store.outbox_counts(now=later)["pending"]
