"""Leases taken and quiet polls written back a batch at a time, for a pass over every
source (monitor.leases.BatchedLeases), against a real SQLite file."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from feedserver import feed_app
from sqlalchemy import select

from monitor.app import App
from monitor.leases import BATCH, BatchedLeases
from monitor.store.schema import sources_t
from monitor.text import utc_now


def _app(tmp_path: Path, count: int) -> App:
    sources = [{"name": f"s{n:02d}", "url": f"http://127.0.0.1:9/s{n}"} for n in range(count)]
    return feed_app(tmp_path, sources, [])


def _lease_owners(app: App) -> dict[str, str | None]:
    with app.store.engine.connect() as connection:
        rows = connection.execute(select(sources_t.c.name, sources_t.c.lease_owner))
        return {name: owner for name, owner in rows}


def test_sources_are_leased_a_batch_ahead_even_when_asked_out_of_order(tmp_path: Path) -> None:
    app = _app(tmp_path, BATCH + 5)
    order = sorted(app.sources, reverse=True)
    leases = BatchedLeases(app, order)
    now = utc_now()
    try:
        second = leases.claim(order[1], now=now, force=True)  # its poller asked first
        owners = _lease_owners(app)
        first = leases.claim(order[0], now=now, force=True)
    finally:
        app.close()
    assert (order[0], order[1]) == (first and first.name, second and second.name)
    assert {app.owner} == {owners[name] for name in order[:BATCH]}
    assert not any(owners.get(name) for name in order[BATCH:])


def test_quiet_polls_are_written_a_batch_at_a_time_and_at_flush(tmp_path: Path) -> None:
    app = _app(tmp_path, BATCH + 3)
    order = list(app.sources)
    leases = BatchedLeases(app, order)
    now = utc_now()
    try:
        for name in order:
            state = leases.claim(name, now=now, force=True)
            assert state is not None
            leases.settle(replace(state, health="healthy", cursor={"etag": name}))
        before_flush = _lease_owners(app)
        leases.flush()
        after_flush = _lease_owners(app)
        cursors = {state.name: state.cursor for state in app.store.source_states()}
    finally:
        app.close()
    assert not any(before_flush[name] for name in order[:BATCH])  # the first batch, written
    assert {app.owner} == {before_flush[name] for name in order[BATCH:]}  # still to write
    assert not any(after_flush.values())
    assert {name: {"etag": name} for name in order} == cursors


def test_a_batch_claim_takes_only_the_free_due_rows_and_creates_missing_ones(
    tmp_path: Path,
) -> None:
    """On SQLite a batch is leased by one UPDATE for each lease end (Store.claim_sources):
    it takes what one claim at a time took, each source until its own time."""
    app = _app(tmp_path, 0)
    store, now = app.store, utc_now()
    hour = timedelta(hours=1)
    try:
        store.claim_source("held", "other", now=now, until=now + hour)
        for name in ("due", "not_due", "ran_out"):
            store.claim_source(name, "other", now=now - 3 * hour, until=now - 2 * hour)
        not_due = replace(store.source_state("not_due"), next_poll=now + hour)
        store.save_source_state(not_due, owner="other")
        until = {
            "due": now + hour,
            "held": now + hour,
            "not_due": now + hour,
            "ran_out": now + 2 * hour,
            "missing": now + 2 * hour,
        }
        claimed = store.claim_sources(until, "me", now=now)
        forced = store.claim_sources({"not_due": now + hour}, "me", now=now, force=True)
        with store.engine.connect() as connection:
            rows = connection.execute(
                select(sources_t.c.name, sources_t.c.lease_owner, sources_t.c.lease_until)
            )
            leases = {name: (owner, end) for name, owner, end in rows}
    finally:
        app.close()
    assert {"due", "ran_out", "missing"} == set(claimed)
    assert ["not_due"] == list(forced)
    assert {
        "due": ("me", now + hour),
        "held": ("other", now + hour),
        "not_due": ("me", now + hour),
        "ran_out": ("me", now + 2 * hour),
        "missing": ("me", now + 2 * hour),
    } == leases
