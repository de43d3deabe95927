"""Health notices for ``on_source_error``: a feed that starts failing, and recovers,
queues one notice per channel in the outbox, rendered as a plain message."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from feedserver import Feed, FeedServer, feed_app, rss, serve, status

from monitor.health_alerts import health_change, health_message, notify_health_change
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
    app = feed_app(tmp_path, [{"name": name, "url": server.url("/feed")}], [])
    queued = []
    try:
        now = utc_now()
        for step in range(5):
            if step == 4:
                server.routes["/feed"] = Feed(rss(("a", "Back", "The feed answers again.")))
            old = app.store.source_state(name)
            poll_source(app, name, now=now, force=True)
            new = app.store.source_state(name)
            queued.append(notify_health_change(app.store, ["box"], old, new, now=now))
            queued[-1] += notify_health_change(app.store, ["box"], old, new, now=now)
            now += timedelta(minutes=1)
        jobs = app.store.claim_deliveries(app.owner, now=now, lease=timedelta(minutes=1), limit=9)
    finally:
        app.close()
    assert [0, 0, 1, 0, 1] == queued, "third failure, then the recovery; each once"
    assert [("health", "box")] * 2 == [(job.kind, job.channel) for job in jobs]
    failing, recovered = (health_message(job.key, job.payload) for job in jobs)
    assert "[news-monitor] source wire is failing" == failing.subject
    assert "HTTP 500" in failing.text
    assert "failed 3 times" in failing.text
    assert "[news-monitor] source wire recovered" == recovered.subject
    assert "after 4 failures" in recovered.text
