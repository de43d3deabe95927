"""Polite polling through poll_source against a real server: conditional GET round
trips, compression, moved feeds, Retry-After and max-age, updates and backfill."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from feedserver import (
    Feed,
    FeedServer,
    Handler,
    Route,
    feed_app,
    hang,
    redirect,
    rss,
    serve,
    status,
)
from structlog.testing import capture_logs

from monitor.app import App
from monitor.commands.run import run_once
from monitor.pipeline import PollOutcome, poll_source
from monitor.store.repo import SourceState
from monitor.text import utc_now

STORY = ("s1", "Pact extended", "Seoul keeps GSOMIA for now.")


@pytest.fixture
def server() -> Iterator[FeedServer]:
    yield from serve()


def _app(tmp_path: Path, server: FeedServer, **settings: Any) -> App:
    watchlists = settings.pop("watchlists", [{"name": "pact", "query": "GSOMIA"}])
    source = {"name": "wire", "url": server.url("/feed"), **settings}
    return feed_app(tmp_path, [source], watchlists)


@pytest.mark.parametrize(
    ("etag", "last_modified", "asked"),
    [
        ('"abc"', None, ("If-None-Match", '"abc"')),
        (
            None,
            "Wed, 13 Nov 2019 10:00:00 GMT",
            ("If-Modified-Since", "Wed, 13 Nov 2019 10:00:00 GMT"),
        ),
    ],
    ids=["etag", "last-modified"],
)
def test_conditional_get_round_trip(
    server: FeedServer,
    tmp_path: Path,
    etag: str | None,
    last_modified: str | None,
    asked: tuple[str, str],
) -> None:
    server.routes["/feed"] = Feed(rss(STORY), etag=etag, last_modified=last_modified)
    app = _app(tmp_path, server)
    try:
        first = poll_source(app, "wire")
        with capture_logs() as logs:
            second = poll_source(app, "wire", force=True)
        state = app.store.source_state("wire")
    finally:
        app.close()
    assert (1, 1) == (first.new, first.deliveries)
    assert asked[1] == server.seen[1].headers.get(asked[0])
    assert (True, 0, 0) == (second.ok, second.new, second.matches)
    assert ["feed_not_modified"] == [e["event"] for e in logs if e["event"].startswith("feed_")]
    assert ("healthy", 0) == (state.health, state.failures)


def test_validators_a_request_cannot_carry_are_not_sent_back(
    server: FeedServer, tmp_path: Path
) -> None:
    """An ETag or Last-Modified outside ASCII (a server's mistake) cannot go in a request
    header: the feed is polled without it, not failed from then on (the cursor kept it)."""
    server.routes["/feed"] = Feed(
        rss(STORY), etag='"caf\u00e9"', last_modified="Fr, 01 M\u00e4r 2024 00:00:00 GMT"
    )
    app = _app(tmp_path, server)
    try:
        first = poll_source(app, "wire")
        server.routes["/feed"] = Feed(rss(STORY, ("s2", "Pact ends", "GSOMIA ends.")))
        second = poll_source(app, "wire", force=True)
    finally:
        app.close()
    assert (True, True, 1) == (first.ok, second.ok, second.new)
    conditional = {"If-None-Match", "If-Modified-Since"}
    assert set() == conditional & server.seen[1].headers.keys()


def test_polls_of_an_unchanged_feed_reuse_one_connection(
    server: FeedServer, tmp_path: Path
) -> None:
    server.routes["/feed"] = Feed(rss(STORY))
    app = _app(tmp_path, server)
    try:
        for _ in range(4):
            assert poll_source(app, "wire", force=True).ok
    finally:
        app.close()
    assert 4 == len(server.seen)
    assert 1 == len({seen.client_port for seen in server.seen})


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_compressed_feeds(server: FeedServer, tmp_path: Path, encoding: str) -> None:
    server.routes["/feed"] = Feed(rss(STORY), encoding=encoding)
    app = _app(tmp_path, server)
    try:
        outcome = poll_source(app, "wire")
    finally:
        app.close()
    assert "gzip, deflate, br" == server.seen[0].headers["Accept-Encoding"]
    assert (True, 1) == (outcome.ok, outcome.new)


def test_a_permanent_redirect_moves_the_feed_for_later_polls(
    server: FeedServer, tmp_path: Path
) -> None:
    server.routes["/feed"] = redirect(301, "/new-home")
    server.routes["/new-home"] = Feed(rss(STORY))
    app = _app(tmp_path, server)
    try:
        with capture_logs() as logs:
            poll_source(app, "wire")
        poll_source(app, "wire", force=True)
        cursor = app.store.source_state("wire").cursor
    finally:
        app.close()
    moved = [e for e in logs if e["event"] == "feed_moved"]
    assert [(server.url("/feed"), server.url("/new-home"))] == [
        (e["old_url"], e["new_url"]) for e in moved
    ]
    assert server.url("/new-home") == cursor["url"]
    assert ["/feed", "/new-home", "/new-home"] == [seen.path for seen in server.seen]


def test_a_feed_whose_new_home_fails_is_asked_for_at_its_configured_url(
    server: FeedServer, tmp_path: Path
) -> None:
    """A move undone (the new URL gone, the configured one a feed again) is followed
    back: the feed does not fail for ever at a URL the config never named."""
    server.routes["/feed"] = redirect(301, "/new-home")
    server.routes["/new-home"] = Feed(rss(STORY))
    app = _app(tmp_path, server)
    try:
        assert poll_source(app, "wire").ok
        server.routes["/new-home"] = status(404)
        server.routes["/feed"] = Feed(rss(STORY, ("s2", "Pact ends", "GSOMIA ends.")))
        back = poll_source(app, "wire", force=True)
        cursor = app.store.source_state("wire").cursor
    finally:
        app.close()
    assert (True, 1) == (back.ok, back.new)
    assert server.url("/feed") == cursor["url"]
    assert ["/feed", "/new-home", "/new-home", "/feed"] == [seen.path for seen in server.seen]


def test_a_feed_still_moved_fails_with_its_new_home_s_error(
    server: FeedServer, tmp_path: Path
) -> None:
    server.routes["/feed"] = redirect(301, "/new-home")
    server.routes["/new-home"] = Feed(rss(STORY))
    app = _app(tmp_path, server)
    try:
        assert poll_source(app, "wire").ok
        server.routes["/new-home"] = status(500)
        failed = poll_source(app, "wire", force=True)
        cursor = app.store.source_state("wire").cursor
    finally:
        app.close()
    assert f"feed: HTTP 500 from {server.url('/new-home')}" == failed.error
    assert server.url("/new-home") == cursor["url"]


def test_a_redirect_to_another_server_is_not_sent_the_configured_credentials(
    server: FeedServer, tmp_path: Path
) -> None:
    headers = {"Authorization": "Bearer secret-token", "X-Desk": "seoul"}
    with FeedServer() as elsewhere:
        elsewhere.routes["/feed"] = Feed(rss(STORY))
        server.routes["/feed"] = redirect(302, elsewhere.url("/feed"))
        app = _app(tmp_path, server, headers=headers)
        try:
            assert poll_source(app, "wire").ok
        finally:
            app.close()
    (first,), (second,) = server.seen, elsewhere.seen
    assert ("Bearer secret-token", "seoul") == (
        first.headers["Authorization"],
        first.headers["X-Desk"],
    )
    assert (None, "seoul") == (second.headers.get("Authorization"), second.headers["X-Desk"])


def test_a_moved_feed_is_never_sent_the_validators_of_its_old_url(
    server: FeedServer, tmp_path: Path
) -> None:
    """The validators belong to the URL that issued them: the new home's first request
    is unconditional, its next one carries only what the new home answered with."""
    server.routes["/feed"] = Feed(rss(STORY), etag='"old"')
    with FeedServer() as new_home:
        new_home.routes["/feed"] = Feed(rss(STORY), etag='"new"', last_modified=None)
        app = _app(tmp_path, server)
        try:
            poll_source(app, "wire")
            server.routes["/feed"] = redirect(301, new_home.url("/feed"))
            poll_source(app, "wire", force=True)
            poll_source(app, "wire", force=True)
            cursor = app.store.source_state("wire").cursor
        finally:
            app.close()
    conditional = ("If-None-Match", "If-Modified-Since")
    asked = [{k: v for k, v in seen.headers.items() if k in conditional} for seen in new_home.seen]
    assert [{}, {"If-None-Match": '"new"'}] == asked
    assert {"url": new_home.url("/feed"), "etag": '"new"'} == {
        key: value for key, value in cursor.items() if key != "configured"
    }


def test_retry_after_and_max_age_are_floors_for_the_next_poll(
    server: FeedServer, tmp_path: Path
) -> None:
    server.routes["/feed"] = status(503, {"Retry-After": "7200"})
    app = _app(tmp_path, server, every="1m")
    try:
        throttled = poll_source(app, "wire")
        server.routes["/feed"] = Feed(rss(STORY), headers={"Cache-Control": "max-age=5400"})
        cached = poll_source(app, "wire", force=True)
        too_soon = poll_source(app, "wire", now=utc_now() + timedelta(minutes=30))
    finally:
        app.close()
    assert throttled.next_poll is not None
    assert cached.next_poll is not None
    assert throttled.next_poll - utc_now() > timedelta(seconds=7000)
    assert cached.next_poll - utc_now() > timedelta(seconds=5300)
    assert too_soon.skipped
    assert 2 == len(server.seen)


def test_a_retry_after_date_is_said_in_whole_seconds(server: FeedServer, tmp_path: Path) -> None:
    """An HTTP date is counted from the answer's own moment: the wait was shown with the
    fraction of a second the request took ("retry after 3599.55s")."""
    later = formatdate((utc_now() + timedelta(hours=1)).timestamp(), usegmt=True)
    server.routes["/feed"] = status(503, {"Retry-After": later})
    app = _app(tmp_path, server, every="1m")
    try:
        throttled = poll_source(app, "wire")
    finally:
        app.close()
    assert throttled.error is not None
    assert re.search(r", retry after 3[56]\d\ds$", throttled.error), throttled.error


def test_a_max_age_and_an_age_past_any_number_are_capped_not_a_crash(
    server: FeedServer, tmp_path: Path
) -> None:
    """Each read as infinity, their difference was no number: every poll of the feed
    failed with an unexpected error."""
    endless_digits = "9" * 400
    server.routes["/feed"] = Feed(
        rss(STORY), headers={"Cache-Control": f"max-age={endless_digits}", "Age": endless_digits}
    )
    app = _app(tmp_path, server)
    try:
        outcome = poll_source(app, "wire")
    finally:
        app.close()
    assert (True, None, 1) == (outcome.ok, outcome.error, outcome.new)


def _poll_once(app: App) -> tuple[datetime, PollOutcome, SourceState]:
    """One poll of ``wire`` at the time it starts, its outcome and the state it left."""
    try:
        started = utc_now()
        outcome = poll_source(app, "wire", now=started)
        return started, outcome, app.store.source_state("wire")
    finally:
        app.close()


def test_a_poll_that_hung_backs_off_from_when_it_failed(server: FeedServer, tmp_path: Path) -> None:
    """A 1 s backoff after a 2 s hang: counted from the poll's start, it would be over
    before the failure was recorded."""
    server.routes["/feed"] = hang
    started, outcome, state = _poll_once(_app(tmp_path, server, every="1s", timeout="2s"))
    assert not outcome.ok
    assert state.next_poll is not None
    assert state.last_error_at is not None
    # The failure came after the 2 s timeout; the backoff (1 s, -20% jitter) after it.
    assert state.next_poll - started >= timedelta(seconds=2 + 0.8)
    assert state.next_poll - state.last_error_at >= timedelta(seconds=0.8)
    assert state.last_error_at - started >= timedelta(seconds=2)
    assert started == state.last_attempt, "the attempt is when the poll started"
    assert outcome.next_poll == state.next_poll


def test_the_next_regular_poll_counts_from_when_a_slow_poll_ended(
    server: FeedServer, tmp_path: Path
) -> None:
    feed = Feed(rss(STORY))

    def slow(handler: Handler) -> None:
        time.sleep(1.5)
        feed(handler)

    server.routes["/feed"] = slow
    started, outcome, state = _poll_once(_app(tmp_path, server, every="1s"))
    assert outcome.ok
    assert started == state.last_success
    assert state.next_poll is not None
    assert state.next_poll - started >= timedelta(seconds=2.5)


def test_run_once_waits_as_servers_ask_unless_forced(server: FeedServer, tmp_path: Path) -> None:
    """Run from cron, a pass must be as polite as the daemon: a feed throttled with
    Retry-After, one cached with max-age and one backing off after a failure are not
    asked again by the next pass (the plain feed is: passes ignore intervals), until
    --force."""
    server.routes["/throttled"] = status(429, {"Retry-After": "3600"})
    server.routes["/cached"] = Feed(rss(STORY), headers={"Cache-Control": "max-age=7200"})
    server.routes["/broken"] = status(500)
    server.routes["/plain"] = Feed(rss(STORY))
    names = ("throttled", "cached", "broken", "plain")
    sources = [{"name": name, "url": server.url(f"/{name}"), "every": "1m"} for name in names]
    app = feed_app(tmp_path, sources, [{"name": "pact", "query": "GSOMIA"}])
    try:
        run_once(app)
        asked_first = [seen.path for seen in server.seen]
        server.seen.clear()
        second, _ = run_once(app)
        asked_second = [seen.path for seen in server.seen]
        server.seen.clear()
        forced, _ = run_once(app, force=True)
        asked_forced = sorted(seen.path for seen in server.seen)
    finally:
        app.close()
    assert sorted(asked_first) == sorted(f"/{name}" for name in names)
    assert ["/plain"] == asked_second
    waiting = {o.source: o.next_poll for o in second if o.skipped}
    assert {"throttled", "cached", "broken"} == set(waiting)
    assert all(until is not None and until > utc_now() for until in waiting.values())
    # Backing off after a failure (the 429 was one) still counts as failed: run from
    # cron, the pass exits 1 while a source is broken; waiting for max-age does not.
    assert {"broken", "throttled"} == {o.source for o in second if not o.ok}
    assert sorted(f"/{name}" for name in names) == asked_forced
    assert not any(o.skipped for o in forced)


@pytest.mark.parametrize(
    ("on_update", "alerts"),
    [
        ("new_match", ["pact", "troops"]),
        ("always", ["pact", "troops", "pact"]),
        ("ignore", ["pact"]),
    ],
)
def test_on_update_policies(
    server: FeedServer, tmp_path: Path, on_update: str, alerts: list[str]
) -> None:
    watchlists = [
        {"name": "pact", "query": "GSOMIA", "on_update": on_update},
        {"name": "troops", "query": "troops", "on_update": on_update},
    ]
    server.routes["/feed"] = Feed(rss(STORY), etag='"v1"')
    app = _app(tmp_path, server, watchlists=watchlists)
    try:
        first = poll_source(app, "wire")
        edited = (STORY[0], STORY[1], STORY[2] + " US troops stay too.")
        server.routes["/feed"] = Feed(rss(edited), etag='"v2"')
        second = poll_source(app, "wire", force=True)
    finally:
        app.close()
    assert (1, 1) == (first.new, second.updated)
    assert sorted(alerts) == sorted(first.matched_watchlists + second.matched_watchlists)


def test_backfill_lets_only_the_newest_entries_of_a_new_feed_alert(
    server: FeedServer, tmp_path: Path
) -> None:
    entries = [(f"g{i}", f"GSOMIA story {i}", f"Item {i} about GSOMIA.") for i in range(5)]
    server.routes["/feed"] = Feed(rss(*entries), etag='"v1"')
    app = _app(tmp_path, server, backfill=2)
    try:
        first = poll_source(app, "wire")
        later = (("g9", "GSOMIA story 9", "A later GSOMIA item."), *entries)
        server.routes["/feed"] = Feed(rss(*later), etag='"v2"')
        second = poll_source(app, "wire", force=True)
    finally:
        app.close()
    assert (5, 5, 2) == (first.new, first.matches, first.deliveries)
    assert (1, 1, 1) == (second.new, second.matches, second.deliveries)


def test_a_feed_given_another_url_is_backfilled_as_a_new_one(
    server: FeedServer, tmp_path: Path
) -> None:
    """The config points the source at another feed: that feed's existing entries are
    a new source's, and only ``backfill`` of them alert."""
    server.routes["/feed"] = Feed(rss(STORY))
    entries = [(f"o{i}", f"GSOMIA story {i}", f"Item {i} about GSOMIA.") for i in range(5)]
    server.routes["/other"] = Feed(rss(*entries))
    app = _app(tmp_path, server, backfill=2)
    try:
        first = poll_source(app, "wire")
    finally:
        app.close()
    source = {"name": "wire", "url": server.url("/other"), "backfill": 2}
    app = feed_app(tmp_path, [source], [{"name": "pact", "query": "GSOMIA"}])
    try:
        with capture_logs() as logs:
            moved = poll_source(app, "wire", force=True)
    finally:
        app.close()
    assert (1, 1) == (first.new, first.deliveries)
    assert (5, 5, 2) == (moved.new, moved.matches, moved.deliveries)
    assert ["feed_url_changed"] == [e["event"] for e in logs if e["event"] == "feed_url_changed"]


def rendezvous(asked: threading.Barrier, feed: Feed) -> Route:
    """``feed``, answered once every party of ``asked`` has its request in flight (a
    503 if they never all come)."""

    def answer(handler: Handler) -> None:
        try:
            asked.wait()
        except threading.BrokenBarrierError:
            handler.answer(503, b"", {})
            return
        feed(handler)

    return answer


def test_run_once_polls_sources_side_by_side(server: FeedServer, tmp_path: Path) -> None:
    """`run --once` polls as the daemon does, several at a time: each of these servers
    answers only once the other's request is in flight too, so one after the other would
    fail both (the first waits for a second request that never comes)."""
    both_asked = threading.Barrier(2, timeout=10)
    pact = Feed(rss(("a1", "Pact extended", "GSOMIA stays.")))
    server.routes["/a"] = rendezvous(both_asked, pact)
    server.routes["/b"] = rendezvous(both_asked, Feed(rss(("b1", "Talks resume", "GSOMIA talks."))))
    sources = [{"name": "a", "url": server.url("/a")}, {"name": "b", "url": server.url("/b")}]
    app = feed_app(tmp_path, sources, [{"name": "pact", "query": "GSOMIA"}])
    try:
        outcomes, report = run_once(app)
    finally:
        app.close()
    assert [("a", True, 1), ("b", True, 1)] == [(o.source, o.ok, o.new) for o in outcomes]
    assert 2 == report.sent


def test_run_once_widens_while_a_slow_channel_holds_the_deliveries(
    server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alerts an earlier run left due go out first, while the first polls run: a channel
    slow to answer must not hold the pass at one poll. Here it answers only once the
    three feeds are in flight together, and each feed answers only then too."""
    met = threading.Event()
    all_asked = threading.Barrier(3, action=met.set, timeout=5)
    server.routes["/early"] = Feed(rss(STORY))
    names = ("a", "b", "c")
    for name in names:
        server.routes[f"/{name}"] = rendezvous(
            all_asked, Feed(rss((name, "Quiet day", "Nothing.")))
        )
    sources = [{"name": name, "url": server.url(f"/{name}")} for name in ("early", *names)]
    app = feed_app(tmp_path, sources, [{"name": "pact", "query": "GSOMIA"}])
    channel = app.channels["box"]
    send = channel.send

    def slow_send(message: Any) -> None:
        met.wait(5)
        send(message)

    monkeypatch.setattr(channel, "send", slow_send)
    try:
        assert 1 == poll_source(app, "early").deliveries  # due when the pass starts
        outcomes, report = run_once(app)
    finally:
        app.close()
    assert [("early", True), ("a", True), ("b", True), ("c", True)] == [
        (o.source, o.ok) for o in outcomes
    ]
    assert 1 == report.sent


def test_a_pass_cut_short_by_an_error_still_polls_every_source(
    server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As when every poll was submitted at once: an error in the pass's loop (here the
    outbox's database) goes up once every source's poll has ended, so none is left
    leased to this process without being polled (the next pass would skip it)."""
    import monitor.commands.run as run_module

    def broken(app: App, **_: Any) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(run_module, "deliver_due", broken)
    names = [f"f{n}" for n in range(12)]
    for name in names:
        server.routes[f"/{name}"] = Feed(rss((name, "Quiet day", "Nothing.")))
    sources = [{"name": name, "url": server.url(f"/{name}")} for name in names]
    app = feed_app(tmp_path, sources, [{"name": "pact", "query": "GSOMIA"}])
    try:
        with pytest.raises(RuntimeError, match="went away"):
            run_once(app)
        attempted = {s.name for s in app.store.source_states() if s.last_attempt is not None}
    finally:
        app.close()
    assert sorted(f"/{name}" for name in names) == sorted(seen.path for seen in server.seen)
    assert set(names) == attempted


def test_run_once_with_no_sources_still_ends(tmp_path: Path) -> None:
    """No poll ever ends to say the polling is over: the pass must see that there were
    none, drain the outbox and return, not wait for ever."""
    app = feed_app(tmp_path, [], [])
    passes: list[tuple[list[Any], Any]] = []
    try:
        worker = threading.Thread(target=lambda: passes.append(run_once(app)), daemon=True)
        worker.start()
        worker.join(10)
    finally:
        app.close()
    assert passes, "run_once did not return within 10 s"
    outcomes, report = passes[0]
    assert ([], 0) == (outcomes, report.sent)


def test_passes_over_many_feeds_reuse_database_connections(
    server: FeedServer, tmp_path: Path
) -> None:
    """Each poll borrows a connection twice (its lease, its results) while nine other
    pollers and the outbox hold theirs: a pool smaller than that closed and reopened a
    connection (and ran its PRAGMAs) again and again. No more are opened than there
    are threads at the database, however many polls."""
    from sqlalchemy import event

    from monitor.pipeline import POLL_WORKERS

    sources = []
    for n in range(120):
        server.routes[f"/f{n}"] = Feed(rss(STORY), etag='"v1"')
        sources.append({"name": f"f{n}", "url": server.url(f"/f{n}")})
    app = feed_app(tmp_path, sources, [{"name": "pact", "query": "GSOMIA"}])
    opened: list[object] = []
    event.listen(app.store.engine, "connect", lambda connection, _record: opened.append(1))
    try:
        passes = [run_once(app) for _ in range(3)]
    finally:
        app.close()
    assert all(o.ok for outcomes, _ in passes for o in outcomes)
    assert len(opened) <= POLL_WORKERS + 1, f"{len(opened)} connections opened"


def test_one_host_gets_its_few_connections_while_other_hosts_go_on(
    server: FeedServer, tmp_path: Path
) -> None:
    """Twelve feeds on one host, listed before a feed on another. The busy host answers
    a request only once the other host has been polled and it has had HttpPool's four
    requests in flight at once (or all twelve have come), then after a moment in which
    a fifth would show: it never sees a fifth, and the other host is not kept waiting.
    Polled in config order, ten pollers would all wait on the busy host instead."""
    from monitor.sources.http import HttpPool

    per_host = HttpPool.shared().per_host
    busy_feeds = [f"/busy{n}" for n in range(3 * per_host)]
    counts = {"in_flight": 0, "most": 0, "arrived": 0}
    changed = threading.Condition()
    other_polled = threading.Event()

    def busy(handler: Handler) -> None:
        with changed:
            counts["arrived"] += 1
            counts["in_flight"] += 1
            counts["most"] = max(counts["most"], counts["in_flight"])
            changed.notify_all()
            ready = changed.wait_for(
                lambda: (
                    other_polled.is_set()
                    and (counts["in_flight"] >= per_host or counts["arrived"] == len(busy_feeds))
                ),
                timeout=10,
            )
        time.sleep(0.2)  # room for a request over the limit to arrive
        with changed:
            counts["in_flight"] -= 1
        if ready:
            Feed(rss(STORY))(handler)
        else:
            handler.answer(503, b"", {})

    def other(handler: Handler) -> None:
        Feed(rss(("o1", "Talks resume", "GSOMIA talks.")))(handler)
        with changed:
            other_polled.set()
            changed.notify_all()

    for path in busy_feeds:
        server.routes[path] = busy
    sources = [{"name": path[1:], "url": server.url(path)} for path in busy_feeds]
    with FeedServer() as elsewhere:
        elsewhere.routes["/other"] = other
        sources.append({"name": "other", "url": elsewhere.url("/other")})
        app = feed_app(tmp_path, sources, [{"name": "pact", "query": "GSOMIA"}])
        try:
            outcomes, _ = run_once(app)
        finally:
            app.close()
    assert [s["name"] for s in sources] == [o.source for o in outcomes]
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]
    assert per_host == counts["most"]


def test_run_once_delivers_while_sources_are_polled(server: FeedServer, tmp_path: Path) -> None:
    """As the daemon does: an alert goes out while a slow source is still being polled.
    The slow server answers only once the first alert is in the Maildir."""
    mailbox = tmp_path / "mail" / "new"

    def after_first_alert(handler: Handler) -> None:
        deadline = time.monotonic() + 10
        while not (mailbox.is_dir() and any(mailbox.iterdir())):
            if time.monotonic() > deadline:
                handler.answer(503, b"", {})
                return
            time.sleep(0.05)
        Feed(rss(("s1", "Talks resume", "GSOMIA talks.")))(handler)

    server.routes["/fast"] = Feed(rss(("f1", "Pact extended", "GSOMIA stays.")))
    server.routes["/slow"] = after_first_alert
    sources = [
        {"name": "fast", "url": server.url("/fast")},
        {"name": "slow", "url": server.url("/slow")},
    ]
    app = feed_app(tmp_path, sources, [{"name": "pact", "query": "GSOMIA"}])
    try:
        outcomes, report = run_once(app)
    finally:
        app.close()
    assert [("fast", True), ("slow", True)] == [(o.source, o.ok) for o in outcomes]
    assert 2 == report.sent
    assert 2 == len(list(mailbox.iterdir()))


# name -> (title, encoding, Content-Type); the documents declare no encoding of their own.
LEGACY_CHARSETS = {
    "korean": (
        "지소미아 종료 유예, 한일 양국 막판 협상 끝에 합의",
        "euc-kr",
        "application/rss+xml",
    ),
    "korean-said-utf8": (
        "정부, 지소미아 조건부 연장 발표… 일본 수출규제 협의 계속",
        "euc-kr",
        "application/rss+xml; charset=utf-8",
    ),
    "russian": ("Россия и Япония обсудили мирный договор в Токио", "windows-1251", "text/xml"),
    "japanese-said-utf8": (
        "日韓の軍事情報包括保護協定、失効の直前に延長が決まる",
        "shift_jis",
        "application/rss+xml; charset=utf-8",
    ),
}


def test_feeds_in_legacy_charsets_are_stored_as_written(server: FeedServer, tmp_path: Path) -> None:
    sources = []
    for name, (title, encoding, content_type) in LEGACY_CHARSETS.items():
        document = rss((name, title, f"{title}. {title}")).replace(b" encoding='utf-8'", b"")
        server.routes[f"/{name}"] = Feed(document.decode().encode(encoding), content_type)
        sources.append({"name": name, "url": server.url(f"/{name}")})
    app = feed_app(tmp_path, sources, [{"name": "pact", "query": "지소미아"}])
    try:
        outcomes = {name: poll_source(app, name) for name in LEGACY_CHARSETS}
        stored = {item.source: item.title for item in app.store.items()}
    finally:
        app.close()
    assert {name: title for name, (title, _e, _t) in LEGACY_CHARSETS.items()} == stored
    assert {"korean": 1, "korean-said-utf8": 1, "russian": 0, "japanese-said-utf8": 0} == {
        name: outcome.matches for name, outcome in outcomes.items()
    }


def _relative_rss(*items: tuple[str, str, str], links: bool) -> bytes:
    """RSS whose items name themselves by relative permalink GUIDs, or (``links``) by
    relative links and no GUID, as some site generators write them."""
    name = "<link>{}</link>" if links else "<guid isPermaLink='true'>{}</guid>"
    body = "".join(
        f"<item>{name.format(path)}<title>{title}</title><description>{text}</description></item>"
        for path, title, text in items
    )
    return f"<?xml version='1.0'?><rss version='2.0'><channel>{body}</channel></rss>".encode()


@pytest.mark.parametrize("links", [False, True], ids=["relative-guids", "relative-links"])
def test_a_feed_that_moves_keeps_the_identity_of_items_named_relative_to_it(
    server: FeedServer, tmp_path: Path, links: bool
) -> None:
    """Relative names resolve against where the feed is fetched from; after a permanent
    move (another server, https) the same items would get new keys, be stored again and,
    short as these are, alert again. Their identity stays that of the feed's first home;
    the links shown point to the new one."""
    old = ("news/1", "Pact", "GSOMIA stays.")
    with FeedServer() as new_home:
        server.routes["/feed"] = Feed(_relative_rss(old, links=links))
        new_home.routes["/feed"] = Feed(
            _relative_rss(old, ("news/2", "Pact again", "GSOMIA, again."), links=links)
        )
        app = _app(tmp_path, server)
        try:
            first = poll_source(app, "wire")
            server.routes["/feed"] = redirect(301, new_home.url("/feed"))
            moved = poll_source(app, "wire", force=True)
            items = sorted(app.store.items(), key=lambda item: item.title)
        finally:
            app.close()
    assert (1, 1) == (first.new, first.deliveries)
    assert (1, 1) == (moved.new, moved.deliveries)  # the second item only
    assert [server.url("/news/1"), new_home.url("/news/2")] == [item.url for item in items]


def test_a_feed_moved_under_an_earlier_version_keeps_the_keys_it_stored_there(
    server: FeedServer, tmp_path: Path
) -> None:
    """An earlier version keyed a moved feed's relative GUIDs against its new URL: the
    items it stored since the move are found by that key (``Item.other_keys``) and keep
    it, instead of being stored, and short ones alerted, once more."""
    import sqlite3

    story = ("news/1", "Pact", "GSOMIA stays.")
    with FeedServer() as new_home:
        server.routes["/feed"] = redirect(301, new_home.url("/feed"))
        new_home.routes["/feed"] = Feed(_relative_rss(story, links=False))
        app = _app(tmp_path, server)
        try:
            first = poll_source(app, "wire")
            with sqlite3.connect(tmp_path / "db.sqlite") as db:  # as the earlier version did
                db.execute("UPDATE items SET key = ?", ["guid:" + new_home.url("/news/1")])
            new_home.routes["/feed"] = Feed(_relative_rss(story, links=False), etag='"v2"')
            again = poll_source(app, "wire", force=True)
            edited = ("news/1", "Pact", "GSOMIA stays, Seoul says.")
            new_home.routes["/feed"] = Feed(_relative_rss(edited, links=False), etag='"v3"')
            updated = poll_source(app, "wire", force=True)
            keys = [item.key for item in app.store.items()]
        finally:
            app.close()
    assert (1, 1) == (first.new, first.deliveries)
    assert (0, 0, 0) == (again.new, again.updated, again.deliveries)
    assert (0, 1) == (updated.new, updated.updated)
    assert ["guid:" + new_home.url("/news/1")] == keys


@pytest.mark.parametrize("moved_to", ["https://news.test", "https://www.news.test"])
@pytest.mark.parametrize("named_by", ["link", "guid"])
def test_a_site_moving_to_https_stores_and_alerts_nothing_again(
    server: FeedServer, tmp_path: Path, named_by: str, moved_to: str
) -> None:
    """Every link in the feed, and the GUIDs that are its permalinks, change from http to
    https (and to the www host): the items are found under the keys they were stored
    with, and keep them."""

    def feed(site: str) -> bytes:
        url = f"{site}/2019/pact"
        name = f"<link>{url}</link>" if named_by == "link" else f"<guid>{url}</guid>"
        item = f"<item>{name}<title>Pact</title><description>GSOMIA stays.</description></item>"
        return f"<?xml version='1.0'?><rss version='2.0'><channel>{item}</channel></rss>".encode()

    server.routes["/feed"] = Feed(feed("http://news.test"))
    app = _app(tmp_path, server)
    try:
        first = poll_source(app, "wire")
        server.routes["/feed"] = Feed(feed(moved_to), etag='"moved"')
        moved = poll_source(app, "wire", force=True)
        (item,) = app.store.items()
    finally:
        app.close()
    assert (1, 1) == (first.new, first.deliveries)
    assert (0, 0, 0) == (moved.new, moved.updated, moved.deliveries)
    kind = "url" if named_by == "link" else "guid"
    assert f"{kind}:http://news.test/2019/pact" == item.key


def test_status_shows_where_a_feed_moved(server: FeedServer, tmp_path: Path) -> None:
    """The URL to put in the config, in the table and in --json."""
    from monitor.commands.status import collect_status, render_table

    with FeedServer() as new_home:
        server.routes["/feed"] = redirect(301, new_home.url("/feed"))
        new_home.routes["/feed"] = Feed(rss(STORY))
        app = _app(tmp_path, server)
        try:
            assert (
                None
                is collect_status(app.config, app.store, now=utc_now())["sources"][0]["moved_to"]
            )
            poll_source(app, "wire")
            now = utc_now()
            status = collect_status(app.config, app.store, now=now)
        finally:
            app.close()
    assert new_home.url("/feed") == status["sources"][0]["moved_to"]
    assert (
        f"  wire moved permanently to {new_home.url('/feed')} (polled there; put it in the config)"
        in render_table(status, now=now).splitlines()
    )


def test_status_names_no_move_for_a_feed_the_config_gave_another_url(
    server: FeedServer, tmp_path: Path
) -> None:
    """A feed given a new `url` is polled there, whatever it answers: the URL it was
    polled at before is not where it "moved" (nor to be put back in the config)."""
    from monitor.commands.status import collect_status, render_table

    server.routes["/feed"] = Feed(rss(STORY))
    app = _app(tmp_path, server)
    try:
        assert poll_source(app, "wire").ok
    finally:
        app.close()
    app = _app(tmp_path, server, url=server.url("/renamed"))  # not served yet: a 404
    try:
        before = collect_status(app.config, app.store, now=utc_now())
        assert not poll_source(app, "wire", force=True).ok
        now = utc_now()
        after = collect_status(app.config, app.store, now=now)
    finally:
        app.close()
    assert (None, None) == (before["sources"][0]["moved_to"], after["sources"][0]["moved_to"])
    assert "moved permanently" not in render_table(after, now=now)


def test_a_config_that_follows_a_moved_feed_goes_on_with_its_items(
    server: FeedServer, tmp_path: Path
) -> None:
    """`monitor status` says to put a moved feed's new URL in the config: done, the feed
    is the same feed, not a new one, and its items keep their identity."""
    old = ("news/1", "Pact", "GSOMIA stays.")
    new = ("news/2", "Pact again", "GSOMIA, again.")
    with FeedServer() as new_home:
        server.routes["/feed"] = Feed(_relative_rss(old, links=False))
        app = _app(tmp_path, server)
        try:
            poll_source(app, "wire")
            server.routes["/feed"] = redirect(301, new_home.url("/feed"))
            new_home.routes["/feed"] = Feed(_relative_rss(old, links=False))
            poll_source(app, "wire", force=True)
        finally:
            app.close()
        new_home.routes["/feed"] = Feed(_relative_rss(old, new, links=False), etag='"2"')
        app = _app(tmp_path, new_home)  # the config names the new URL now
        try:
            with capture_logs() as logs:
                followed = poll_source(app, "wire", force=True)
            keys = sorted(item.key for item in app.store.items())
        finally:
            app.close()
    assert (1, 1) == (followed.new, followed.deliveries)
    assert "feed_url_followed" in [e["event"] for e in logs]
    assert ["guid:" + server.url("/news/1"), "guid:" + server.url("/news/2")] == keys


@pytest.mark.parametrize("shared", ["guid", "link"])
def test_a_feed_that_gives_every_entry_one_name_loses_none_of_them(
    server: FeedServer, tmp_path: Path, shared: str
) -> None:
    """Some generators write the site's address as every entry's GUID; a live report
    links each entry to one page. Taken as the identity, every story but one would be an
    update of that one, and never alert: such a name names no entry, and the entries are
    told apart by their links, else their content."""

    def entry(n: int) -> str:
        names = (
            f"<guid>https://news.test/</guid><link>https://news.test/{n}</link>"
            if shared == "guid"
            else "<link>https://news.test/live?utm_source=rss</link>"
        )
        text = f"<title>Pact {n}</title><description>GSOMIA, day {n}.</description>"
        return f"<item>{names}{text}</item>"

    # The third entry twice: one entry, not a name shared.
    entries = "".join(entry(n) for n in (0, 1, 2, 2))
    body = f"<?xml version='1.0'?><rss version='2.0'><channel>{entries}</channel></rss>"
    server.routes["/feed"] = Feed(body.encode())
    app = _app(tmp_path, server)
    try:
        with capture_logs() as logs:
            first = poll_source(app, "wire")
        server.routes["/feed"] = Feed(body.encode(), etag='"again"')
        again = poll_source(app, "wire", force=True)
        keys = sorted(item.key for item in app.store.items())
    finally:
        app.close()
    assert (3, 3) == (first.new, first.deliveries)
    assert (0, 0, 0) == (again.new, again.updated, again.deliveries)
    if shared == "guid":
        assert [f"url:https://news.test/{n}" for n in range(3)] == keys
    else:
        assert all(key.startswith("content:") for key in keys)
    assert ["feed_names_shared"] == [e["event"] for e in logs if "shared" in e["event"]]


def _live(n: int) -> str:
    """An entry of a live report without a GUID, linked to the report's one page."""
    return (
        "<item><link>https://news.test/live?utm_source=rss</link>"
        f"<title>Live: talks, update {n}</title>"
        f"<description>Update {n}: GSOMIA talks go on.</description></item>"
    )


def _rss_of(entries: list[str]) -> bytes:
    body = "".join(entries)
    return f"<?xml version='1.0'?><rss version='2.0'><channel>{body}</channel></rss>".encode()


def _weather(n: int) -> str:
    return (
        f"<item><link>https://news.test/weather/{n}</link><title>Weather {n}</title>"
        f"<description>Rain on day {n}.</description></item>"
    )


def test_an_entry_whose_link_stops_or_starts_being_shared_is_the_same_entry(
    server: FeedServer, tmp_path: Path
) -> None:
    """A live report's entries share its page's link, so they are keyed by their content.
    Once the older scrolls out, the newer is alone under the link, keyed by it: it is the
    entry stored before, unchanged, and neither stored nor alerted again; nor when the
    link is shared once more. The report's next entry alone under the link is news."""
    polls = [
        [_live(1), _live(2), _weather(1)],
        [_live(2), _weather(1), _weather(2)],
        [_live(3), _live(2), _weather(2)],
        [_live(4), _weather(2), _weather(3)],
    ]
    outcomes, titles = _polled_in_turn(tmp_path, server, polls)
    assert [(3, 0, 2), (1, 0, 0), (1, 0, 1), (2, 0, 1)] == outcomes
    live = [title for title in titles if title.startswith("Live")]
    assert [f"Live: talks, update {n}" for n in (1, 2, 3, 4)] == live


def test_an_entry_first_alone_under_its_link_is_found_once_the_link_is_shared(
    server: FeedServer, tmp_path: Path
) -> None:
    """The other way: an entry stored under its link, then joined there by the live
    report's next entry (both keyed by content from then on). The first is the entry
    stored, unchanged; the second is news, not an edit of the first."""
    polls = [[_live(1)], [_live(2), _live(1)], [_live(2)]]
    outcomes, titles = _polled_in_turn(tmp_path, server, polls)
    assert [(1, 0, 1), (1, 0, 1), (0, 0, 0)] == outcomes
    assert ["Live: talks, update 1", "Live: talks, update 2"] == titles


def _polled_in_turn(
    tmp_path: Path, server: FeedServer, polls: list[list[str]]
) -> tuple[list[tuple[int, int, int]], list[str]]:
    """The feed polled with each list of entries in turn: each poll's new, updated and
    delivered counts, and the stored titles at the end, sorted."""
    app = _app(tmp_path, server)
    outcomes = []
    try:
        for n, entries in enumerate(polls):
            server.routes["/feed"] = Feed(_rss_of(entries), etag=f'"{n}"')
            outcome = poll_source(app, "wire", force=True)
            outcomes.append((outcome.new, outcome.updated, outcome.deliveries))
        return outcomes, sorted(item.title for item in app.store.items())
    finally:
        app.close()


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(
            "https://news.test/a/1?utm_source=rss&amp;utm_campaign=mon",
            "https://news.test/a/1?utm_source=rss&amp;utm_campaign=tue",
            id="tracking-parameters",
        ),
        pytest.param("https://news.test/a/1#top", "https://news.test/a/1", id="fragment"),
        pytest.param("https://news.test:443/a/1", "https://news.test/a/1", id="default-port"),
        pytest.param("https://news.test/?p=1", "https://news.test/a/1", id="another-style"),
    ],
)
def test_an_entry_whose_guid_is_spelled_anew_is_not_stored_or_alerted_again(
    server: FeedServer, tmp_path: Path, first: str, second: str
) -> None:
    """The same entry (its link, title and text) under a GUID spelled otherwise at the
    next poll: rotating tracking parameters, a fragment, a default port, a generator's
    other GUID style. Too short to be known as a copy of its own story, taken as new it
    would alert again."""

    def feed(guid: str) -> bytes:
        item = (
            f"<item><guid>{guid}</guid><link>https://news.test/a/1</link>"
            "<title>GSOMIA kept</title><description>Seoul keeps GSOMIA.</description></item>"
        )
        return f"<?xml version='1.0'?><rss version='2.0'><channel>{item}</channel></rss>".encode()

    app = _app(tmp_path, server)
    outcomes = []
    try:
        for n, guid in enumerate((first, second)):
            server.routes["/feed"] = Feed(feed(guid), etag=f'"{n}"')
            outcomes.append(poll_source(app, "wire", force=True))
        keys = [item.key for item in app.store.items()]
    finally:
        app.close()
    assert [(1, 0, 1), (0, 0, 0)] == [(o.new, o.updated, o.deliveries) for o in outcomes]
    assert ["guid:" + first.replace("&amp;", "&")] == keys


def test_another_story_under_the_same_guid_is_another_item(
    server: FeedServer, tmp_path: Path
) -> None:
    """A "latest headline" feed keeps one GUID while its one entry becomes another story
    (another title at another link): that story is new, and alerts, where as an update
    of the first it would not (the watch-list matched the first already). An edit of it
    (its text; the same title and link) is an update as before."""

    def latest(path: str, title: str, text: str) -> bytes:
        item = (
            f"<item><guid isPermaLink='false'>latest</guid><link>https://news.test/{path}</link>"
            f"<title>{title}</title><description>{text}</description></item>"
        )
        return f"<?xml version='1.0'?><rss version='2.0'><channel>{item}</channel></rss>".encode()

    polls = [
        latest("1", "GSOMIA kept", "Seoul keeps GSOMIA."),
        latest("2", "GSOMIA talks end", "Talks on GSOMIA ended in Tokyo."),
        latest("2", "GSOMIA talks end", "Talks on GSOMIA ended in Tokyo."),
        latest("2", "GSOMIA talks end", "Talks on GSOMIA ended in Tokyo on Friday."),
        latest("1", "GSOMIA kept", "Seoul keeps GSOMIA."),
    ]
    app = _app(tmp_path, server)
    outcomes = []
    try:
        for n, document in enumerate(polls):
            server.routes["/feed"] = Feed(document, etag=f'"{n}"')
            outcomes.append(poll_source(app, "wire", force=True))
        keys = sorted(item.key for item in app.store.items())
    finally:
        app.close()
    assert [(1, 0, 1), (1, 0, 1), (0, 0, 0), (0, 1, 0), (0, 0, 0)] == [
        (o.new, o.updated, o.deliveries) for o in outcomes
    ]
    assert ["guid:latest", "guid:latest url:https://news.test/2"] == keys
