"""Health notices for ``on_source_error``: a feed that starts failing, and recovers,
queues one notice per channel in the outbox, rendered as a plain message."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from feedserver import Feed, FeedServer, rss, serve, status
from structlog.testing import capture_logs

from monitor.app import build_app
from monitor.commands.status import collect_status
from monitor.config import load_config
from monitor.health_alerts import health_change, health_message, health_notices
from monitor.pipeline import poll_source
from monitor.store.repo import SourceState
from monitor.text import utc_now


@pytest.fixture
def server() -> Iterator[FeedServer]:
    yield from serve()


@pytest.mark.parametrize(
    ("old", "new", "change"),
    [
        ("healthy", "degraded", None),
        ("degraded", "failing", "failing"),
        ("failing", "failing", None),
        ("failing", "healthy", "recovered"),
        ("degraded", "healthy", None),
        ("new", "failing", "failing"),
    ],
)
def test_which_changes_notify(old: str, new: str, change: str | None) -> None:
    assert change == health_change(
        SourceState("s", {}, health=old), SourceState("s", {}, health=new)
    )


def test_a_failing_feed_and_its_recovery_queue_one_notice_each(
    server: FeedServer, tmp_path: Path
) -> None:
    server.routes["/feed"] = status(500)
    name = "wire"
    app = build_app(load_config(_wire_config(server, tmp_path)))
    queued = []

    def pending() -> int:
        return app.store.outbox_counts(now=now)["pending"]

    try:
        now = utc_now()
        for step in range(5):
            if step == 4:
                server.routes["/feed"] = Feed(rss(("a", "Back", "The feed answers again.")))
            old = app.store.source_state(name)
            before = pending()
            poll_source(app, name, now=now, force=True)
            new = app.store.source_state(name)
            # The same change told again (a poll retried) queues nothing twice.
            told = health_notices(["box"], old, new, now=now)
            app.store.save_source_state(new, notices=told, now=now)
            queued.append(pending() - before)
            now += timedelta(minutes=1)
        jobs = app.store.claim_deliveries(app.owner, now=now, lease=timedelta(minutes=1), limit=9)
    finally:
        app.close()
    assert [0, 0, 1, 0, 1] == queued, "third failure, then the recovery; each once"
    assert [("health", "box")] * 2 == [(job.kind, job.channel) for job in jobs]
    failing, recovered = (health_message(job.key, job.payload, str) for job in jobs)
    assert "[news-monitor] source wire is failing" == failing.subject
    assert "HTTP 500" in failing.text
    assert "failed 3 times" in failing.text
    assert "[news-monitor] source wire recovered" == recovered.subject
    assert "after 4 failures" in recovered.text


WATCHED = ("source_stale", "source_fresh")


def _wire_config(server: FeedServer, tmp_path: Path) -> Path:
    """A config of one feed, ``wire`` (at /feed, max_silence 1d), telling a Maildir."""
    config = {
        "database": f"sqlite:///{tmp_path}/db.sqlite",
        "sources": [
            {"type": "feed", "name": "wire", "url": server.url("/feed"), "max_silence": "1d"}
        ],
        "channels": {"box": {"type": "maildir", "path": str(tmp_path / "mail"), "to": ["d@x"]}},
        "on_source_error": ["box"],
        "watchlists": [],
    }
    path = tmp_path / "monitor.yaml"
    path.write_text(json.dumps(config))
    return path


def test_a_feed_silent_too_long_is_noticed_once_and_again_when_news_returns(
    server: FeedServer, tmp_path: Path
) -> None:
    """A feed that answers (304 after 304) but brings nothing for longer than its
    max_silence: one warning and one notice when it goes stale, none while it stays
    so, and one more when it has news again."""
    server.routes["/feed"] = Feed(rss(("a", "First", "The first story.")), etag='"1"')
    app = build_app(load_config(_wire_config(server, tmp_path)))
    events = []
    try:
        now = utc_now()
        for day in range(5):
            if day == 4:
                server.routes["/feed"] = Feed(rss(("b", "Second", "News at last.")), etag='"2"')
            with capture_logs() as logs:
                poll_source(app, "wire", now=now + timedelta(days=day, hours=1), force=True)
            events.append(
                [e["event"] for e in logs if "stale" in e["event"] or "fresh" in e["event"]]
            )
        later = now + timedelta(days=6)
        jobs = app.store.claim_deliveries(app.owner, now=later, lease=timedelta(minutes=1), limit=9)
    finally:
        app.close()
    assert [[], [], ["source_stale"], [], ["source_fresh_again"]] == events
    stale, fresh = (health_message(job.key, job.payload, str) for job in jobs)
    assert "[news-monitor] source wire is stale" == stale.subject
    assert "nothing new since" in stale.text
    assert "[news-monitor] source wire has news again" == fresh.subject


def test_a_feed_that_never_brings_an_item_goes_stale_after_its_max_silence(
    server: FeedServer, tmp_path: Path
) -> None:
    """A feed that answers but has never had an entry is as silent as one whose news
    stopped: stale once it has been watched for longer than its max_silence (shown in
    `monitor status`, logged, told to on_source_error), fresh when its first story comes."""
    server.routes["/feed"] = Feed(rss(), etag='"0"')
    loaded = load_config(_wire_config(server, tmp_path))
    app = build_app(loaded)
    events, shown = [], []
    try:
        now = utc_now()
        for day in range(4):
            if day == 3:
                server.routes["/feed"] = Feed(rss(("a", "First", "News at last.")), etag='"1"')
            at = now + timedelta(days=day, hours=1)
            with capture_logs() as logs:
                poll_source(app, "wire", now=at, force=True)
            events.append(
                [e["event"] for e in logs if "stale" in e["event"] or "fresh" in e["event"]]
            )
            shown.append(collect_status(loaded, app.store, now=at)["sources"][0]["health"])
        later = now + timedelta(days=6)
        jobs = app.store.claim_deliveries(app.owner, now=later, lease=timedelta(minutes=1), limit=9)
    finally:
        app.close()
    assert [[], [], ["source_stale"], ["source_fresh_again"]] == events
    assert ["healthy", "healthy", "stale", "healthy"] == shown
    assert ["stale", "fresh"] == [job.payload["change"] for job in jobs]


def test_a_poll_cut_short_before_its_notice_is_written_loses_neither(
    server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies (here: the store raises) as the poll that makes a source failing,
    then the one that makes it recover, queues its notice: the source's new health is
    written with its notice or not at all, so the next poll queues the notice instead."""
    server.routes["/feed"] = status(500)
    config = {
        "database": f"sqlite:///{tmp_path}/db.sqlite",
        "sources": [{"type": "feed", "name": "wire", "url": server.url("/feed"), "every": "1m"}],
        "channels": {"box": {"type": "maildir", "path": str(tmp_path / "mail"), "to": ["d@x"]}},
        "on_source_error": ["box"],
        "watchlists": [],
    }
    path = tmp_path / "monitor.yaml"
    path.write_text(json.dumps(config))
    app = build_app(load_config(path))
    enqueue = app.store._enqueue

    def dies_at_a_notice(connection: object, **fields: object) -> int:
        if fields["kind"] == "health":
            raise RuntimeError("killed")
        return enqueue(connection, **fields)  # type: ignore[arg-type]

    try:
        now = utc_now()
        for step in range(8):
            if step == 4:
                server.routes["/feed"] = Feed(rss(("a", "Back", "The feed answers again.")))
            dies = step in (2, 4)
            with monkeypatch.context() as patch:
                if dies:
                    patch.setattr(app.store, "_enqueue", dies_at_a_notice)
                try:
                    poll_source(app, "wire", now=now, force=True)
                except RuntimeError:
                    assert dies
            now += timedelta(minutes=2)  # past the lease a poll that died left
        jobs = app.store.claim_deliveries(app.owner, now=now, lease=timedelta(minutes=1), limit=9)
    finally:
        app.close()
    assert ["failing", "recovered"] == [job.payload["change"] for job in jobs]


def _failing_three_times(config: dict[str, object], tmp_path: Path) -> None:
    """Write ``config`` and run three passes, each failing: the third failure in a row
    is told to ``on_source_error``."""
    from monitor.cli import main

    path = tmp_path / "monitor.yaml"
    path.write_text(json.dumps(config))
    for _ in range(3):
        assert 1 == main(["run", "--once", "--force", "-c", str(path)])


def _mailed_notice(tmp_path: Path) -> str:
    """The text of the one notice in the Maildir of ``_wire_config``."""
    from email import message_from_bytes, policy

    (mail,) = (tmp_path / "mail" / "new").iterdir()
    text = message_from_bytes(mail.read_bytes(), policy=policy.default).get_body(("plain",))
    assert text is not None
    return str(text.get_content())


def test_a_notice_masks_the_secrets_its_error_names(
    server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token in a feed's path, from the environment, is masked in the log and
    `monitor status`: the notice that tells a channel of the failure masks it too."""
    monkeypatch.setenv("FEED_TOKEN", "t0ken-in-the-path")
    config = json.loads(_wire_config(server, tmp_path).read_text())
    config["sources"][0]["url"] = server.url("/feeds/${FEED_TOKEN}/rss")  # not served: 404
    _failing_three_times(config, tmp_path)
    said = _mailed_notice(tmp_path)
    assert "/feeds/***/rss" in said
    assert "t0ken-in-the-path" not in said


def test_a_failing_feed_s_token_is_stored_masked_in_its_error_and_its_notice(
    server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The error a failing poll stores (for `monitor status`, and in the notice queued
    for ``on_source_error``) names the feed's URL: its token from the environment is
    masked before it reaches the database, whose file then holds no trace of it."""
    monkeypatch.setenv("FEED_TOKEN", "t0ken-kept-out-of-the-db")
    config = json.loads(_wire_config(server, tmp_path).read_text())
    config["sources"][0]["url"] = server.url("/feeds/${FEED_TOKEN}/rss")  # not served: 404
    _failing_three_times(config, tmp_path)
    app = build_app(load_config(tmp_path / "monitor.yaml"))
    try:
        error = app.store.source_state("wire").last_error
    finally:
        app.close()
    assert error == f"feed: HTTP 404 from {server.url('/feeds/***/rss')}"
    assert "/feeds/***/rss" in _mailed_notice(tmp_path)
    for file in tmp_path.glob("db.sqlite*"):
        assert b"t0ken-kept-out-of-the-db" not in file.read_bytes(), file.name


def test_a_notice_to_a_webhook_is_a_documented_generic_body(
    server: FeedServer, tmp_path: Path
) -> None:
    """As alerts and digests are: `version`, `type` and `id` first, times in UTC with Z
    (docs/webhooks.md), so a receiver can tell a notice from an alert."""
    from servers import WebhookReceiver

    server.routes["/feed"] = status(500)
    config = json.loads(_wire_config(server, tmp_path).read_text())
    with WebhookReceiver() as receiver:
        config["channels"] = {"hook": {"type": "webhook", "url": receiver.url}}
        config["on_source_error"] = ["hook"]
        _failing_three_times(config, tmp_path)
        (hook,) = receiver.received()
    body = hook.json()
    assert (1, "health", hook.id) == (body["version"], body["type"], body["id"])
    assert ("wire", "failing", 3) == (body["source"], body["change"], body["failures"])
    assert f"feed: HTTP 500 from {server.url('/feed')}" == body["error"]
    assert body["at"].endswith("Z")
    assert body["next_poll"].endswith("Z")
    assert body["last_news"] is None


def test_a_notice_says_its_times_in_the_configured_time_zone(
    server: FeedServer, tmp_path: Path
) -> None:
    """`timezone` is the zone of rendered dates (docs/configuration.md), a notice's
    "next try at" and "nothing new since" among them."""
    server.routes["/feed"] = status(500)
    config = json.loads(_wire_config(server, tmp_path).read_text())
    config["timezone"] = "Asia/Seoul"
    _failing_three_times(config, tmp_path)
    said = _mailed_notice(tmp_path)
    assert " KST." in said
    assert "+00:00" not in said
