"""Quiet hours and rate caps through the real outbox: held alerts wait, capped ones roll
into the next digest, and every alert still arrives exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from samples import open_app, write_config, write_document
from servers import HOST, SmtpServer

from monitor.alerts.digest import run_digest
from monitor.alerts.outbox import DeliveryReport, deliver_due
from monitor.app import App
from monitor.health_alerts import notices
from monitor.pipeline import poll_source
from monitor.text import utc_now

WATCHLISTS = [
    {"name": "gsomia", "query": "GSOMIA", "channels": ["desk"]},
    {"name": "costs", "query": '"cost sharing"', "alert": "digest"},
]
TITLES = ["Seoul weighs GSOMIA exit", "Tokyo urges Seoul to keep GSOMIA", "US presses on GSOMIA"]


@pytest.fixture
def mail() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


def desk(server: SmtpServer, **settings: Any) -> dict[str, Any]:
    return {
        "type": "smtp",
        "host": HOST,
        "port": server.port,
        "to": ["desk@example.org"],
        **settings,
    }


@contextmanager
def polled(
    folder: Path, watchlists: list[dict[str, Any]] = WATCHLISTS, **config: Any
) -> Iterator[App]:
    """An App whose outbox holds one gsomia alert per title, for the ``desk`` channel."""
    for n, title in enumerate(TITLES):
        write_document(folder / "news", f"story-{n}", title, f"{title}. Report number {n}: " * 3)
    with open_app(write_config(folder, watchlists=watchlists, **config)) as app:
        assert len(TITLES) == poll_source(app, "news").deliveries
        yield app


def subjects(server: SmtpServer) -> list[str]:
    return [str(mail.message["Subject"]) for mail in server.received()]


def test_quiet_hours_hold_alerts_until_the_window_ends(tmp_path: Path, mail: SmtpServer) -> None:
    now = utc_now()
    quiet = {
        "start": f"{now - timedelta(hours=1):%H:%M}",
        "end": f"{now + timedelta(hours=1):%H:%M}",
        "timezone": "UTC",
    }
    with polled(tmp_path, channels={"desk": desk(mail, quiet_hours=quiet)}) as app:
        now = utc_now()
        held = deliver_due(app, now=now)
        still_quiet = deliver_due(app, now=now + timedelta(minutes=30))
        after = deliver_due(app, now=now + timedelta(hours=2))

    assert (0, 3, 0) == (held.sent, held.held, held.failed)
    assert (0, 0) == (still_quiet.sent, still_quiet.held)  # nothing due before the end
    assert (3, 0) == (after.sent, after.failed)
    assert 3 == len(set(mail.message_ids())) == len(mail.received())


def capped_then_digested(
    app: App, now: datetime, later: timedelta
) -> tuple[DeliveryReport, DeliveryReport, DeliveryReport]:
    """Deliver at ``now`` (the cap holds some back), run the evening digest a minute on
    and deliver again, then deliver ``later``: the three reports."""
    capped = deliver_due(app, now=now)
    assert 1 == run_digest(app, "evening", now=now + timedelta(minutes=1))
    digested = deliver_due(app, now=now + timedelta(minutes=2))
    return capped, digested, deliver_due(app, now=now + later)


def test_a_capped_channel_rolls_its_overflow_into_the_next_digest(
    tmp_path: Path, mail: SmtpServer
) -> None:
    # The digest covers another watch-list: only the held-back gsomia alerts reach it.
    digest = {
        "name": "evening",
        "schedule": "0 22 * * *",
        "channels": ["desk"],
        "watchlists": ["costs"],
    }
    config = {"channels": {"desk": desk(mail, max_per_hour=1)}, "digests": [digest]}
    with polled(tmp_path, **config) as app:
        capped, digested, afterwards = capped_then_digested(app, utc_now(), timedelta(days=2))

    assert (1, 2) == (capped.sent, capped.held)
    assert (1, 0) == (digested.sent, digested.failed)
    assert (0, 0, 0) == (afterwards.sent, afterwards.held, afterwards.failed)
    instant, summary = mail.received()
    sent_title = str(instant.message["Subject"]).removeprefix("[gsomia] ")
    assert "[evening] 2 stories: gsomia (2)" == summary.message["Subject"]
    text = summary.message.get_body(("plain",)).get_content()
    assert [title != sent_title for title in TITLES] == [title in text for title in TITLES]
    assert "Nothing new on costs." in text


def test_without_a_digest_the_overflow_waits_for_room_in_the_hour(
    tmp_path: Path, mail: SmtpServer
) -> None:
    with polled(tmp_path, channels={"desk": desk(mail, max_per_hour=1)}) as app:
        now = utc_now()
        reports = [deliver_due(app, now=now + timedelta(minutes=m)) for m in (0, 30, 61, 122)]

    assert [(1, 2), (0, 0), (1, 1), (1, 0)] == [(r.sent, r.held) for r in reports]
    assert sorted(f"[gsomia] {title}" for title in TITLES) == sorted(subjects(mail))


def test_an_overflow_the_digest_already_carried_is_not_shown_again(
    tmp_path: Path, mail: SmtpServer
) -> None:
    # gsomia alerts at once and in the digest; its instant alerts are capped only after
    # the digest that carried its stories closed, so they roll into the next one.
    watchlists = [{**WATCHLISTS[0], "alert": "both"}, WATCHLISTS[1]]
    digest = {"name": "evening", "schedule": "0 22 * * *", "channels": ["desk"]}
    config = {
        "channels": {"desk": desk(mail, max_per_hour=1)},
        "digests": [digest],
        "watchlists": watchlists,
    }
    with polled(tmp_path, **config) as app:
        now = utc_now()
        assert 1 == run_digest(app, "evening", now=now + timedelta(minutes=1))
        capped = deliver_due(app, now=now + timedelta(minutes=2))
        next_digest = run_digest(app, "evening", now=now + timedelta(days=1))
        afterwards = deliver_due(app, now=now + timedelta(days=2))

    assert (2, 2) == (capped.sent, capped.held)  # the digest and one instant alert
    assert 0 == next_digest
    assert (0, 0, 0) == (afterwards.sent, afterwards.held, afterwards.failed)
    summary = next(m for m in mail.received() if "[evening]" in str(m.message["Subject"]))
    assert "[evening] 3 stories: gsomia (3)" == summary.message["Subject"]
    assert 2 == len(mail.received())


def test_a_capped_health_notice_waits_for_room_and_the_digest_still_closes(
    tmp_path: Path, mail: SmtpServer
) -> None:
    # A health notice has no match a digest could show: capped, it waits for the hour.
    digest = {"name": "evening", "schedule": "0 22 * * *", "channels": ["desk"]}
    config = {
        "channels": {"desk": desk(mail, max_per_hour=1)},
        "digests": [digest],
        "on_source_error": ["desk"],
    }
    with polled(tmp_path, **config) as app:
        now = utc_now()
        state = app.store.source_state("news")
        told = notices(["desk"], "failing", state, now=now)
        app.store.save_source_state(state, notices=told, now=now)
        capped, digested, later = capped_then_digested(app, now, timedelta(hours=2))

    assert (1, 3) == (capped.sent, capped.held)
    assert (1, 0) == (digested.sent, digested.failed)
    assert (1, 0) == (later.sent, later.failed)
    assert "[news-monitor] source news is failing" in subjects(mail)
    assert 3 == len(mail.received())
