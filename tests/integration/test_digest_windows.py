"""Digests end to end on a real SMTP server, over SQLite and (where the machine has it)
PostgreSQL: grouping, caps, the empty case, and windows that neither drop nor repeat a
match across crashes and late commits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from samples import open_app, write_config, write_document
from servers import HOST, SmtpServer

from monitor.alerts.digest import run_digest
from monitor.alerts.outbox import deliver_due
from monitor.app import App
from monitor.cli import main
from monitor.pipeline import poll_source
from monitor.text import utc_now

NOW = utc_now()
WATCHLISTS = [
    {"name": "gsomia", "query": "GSOMIA", "alert": "digest"},
    {"name": "cost-sharing", "query": '"cost sharing"', "alert": "digest"},
    {"name": "scm", "query": "SCM", "alert": "digest"},
]
# name: (source, title, body, hours ago)
STORIES = {
    "lapse": ("yonhap", "Seoul lets GSOMIA lapse", "Seoul will let GSOMIA lapse at midnight.", 5),
    "lapse-copy": (
        "reuters",
        "Seoul lets GSOMIA lapse",
        "Seoul will let GSOMIA lapse at midnight.",
        4,
    ),
    "tokyo": (
        "yonhap",
        "Tokyo regrets GSOMIA call",
        "Japan's minister regrets the GSOMIA call.",
        2,
    ),
    "costs": ("yonhap", "Cost sharing talks resume", "The cost sharing talks resume in Hawaii.", 3),
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> str | None:
    """None for the default SQLite file, else a fresh PostgreSQL database's URL."""
    return None if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def mail() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


def configure(
    folder: Path, mail: SmtpServer, database: str | None, mail_format: str = "html", **digest: Any
) -> Path:
    for name, (source, title, body, hours) in STORIES.items():
        write_document(folder / source, name, title, body, NOW - timedelta(hours=hours))
    sources = [
        {"name": s, "type": "folder", "path": str(folder / s)} for s in ("yonhap", "reuters")
    ]
    channel = {
        "type": "smtp",
        "host": HOST,
        "port": mail.port,
        "to": ["desk@example.org"],
        "format": mail_format,
    }
    return write_config(
        folder,
        **({"database": database} if database else {}),
        channels={"desk": channel},
        watchlists=WATCHLISTS,
        digests=[{"name": "morning", "schedule": "0 7 * * *", "channels": ["desk"], **digest}],
        sources=sources,
    )


def poll_all(app: App) -> None:
    for source in ("yonhap", "reuters"):
        assert poll_source(app, source, force=True).ok


class Clock:
    """Digest firings a minute apart: further apart than a closed window stays leased
    (DIGEST_LEASE), as cron firings are."""

    def __init__(self) -> None:
        self.now = utc_now()

    def tick(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def digest_now(app: App, clock: Clock) -> int:
    """Close the window at the next firing and deliver what it queued."""
    now = clock.tick()
    queued = run_digest(app, "morning", now=now)
    assert queued is not None  # a minute on: the window's lease has run out
    assert 0 == deliver_due(app, now=now).failed
    return queued


def test_a_digest_sent_by_hand_twice_in_a_row_says_why_the_second_sent_nothing(
    tmp_path: Path, mail: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(configure(tmp_path, mail, None, send_empty=True))
    assert 0 == main(["digest", "morning", "--now", "-c", config])
    first = capsys.readouterr().out
    assert 0 == main(["digest", "morning", "--now", "-c", config])
    second = capsys.readouterr().out
    assert "digest morning: 1 message(s) queued" in first
    assert "digest morning: not sent: its window closed less than 30s ago" in second
    assert 1 == len(mail.received())


def text_of(message: EmailMessage) -> str:
    return str(message.get_body(("plain",)).get_content())  # type: ignore[union-attr]


def test_grouped_by_watchlist_then_story_newest_first_with_outlets(
    tmp_path: Path, mail: SmtpServer, clock: Clock, database: str | None
) -> None:
    with open_app(configure(tmp_path, mail, database)) as app:
        poll_all(app)
        assert 1 == digest_now(app, clock)

    [digest] = [m.message for m in mail.received()]
    assert "[morning] 3 stories: gsomia (2), cost-sharing (1)" == digest["Subject"]
    text = text_of(digest)
    order = ["== gsomia (2) ==", "Tokyo regrets", "Seoul lets GSOMIA lapse", "== cost-sharing (1)"]
    assert sorted(order, key=text.index) == order
    assert 1 == text.count("* Seoul lets GSOMIA lapse")  # one story, two outlets
    assert "yonhap · " in text
    assert "also reuters" in text
    assert "Nothing new on scm." in text
    html = str(digest.get_body(("html",)).get_content())  # type: ignore[union-attr]
    assert "also reuters" in html
    assert "Nothing new on scm." in html


def test_a_text_only_channel_gets_the_digest_as_its_text_alone(
    tmp_path: Path, mail: SmtpServer, clock: Clock
) -> None:
    with open_app(configure(tmp_path, mail, None, mail_format="text")) as app:
        poll_all(app)
        assert 1 == digest_now(app, clock)

    [digest] = [m.message for m in mail.received()]
    assert ("text/plain", False) == (digest.get_content_type(), digest.is_multipart())
    assert "[morning] 3 stories: gsomia (2), cost-sharing (1)" == digest["Subject"]
    assert "also reuters" in text_of(digest)
    assert "Nothing new on scm." in text_of(digest)


def test_a_capped_section_ends_with_and_n_more(
    tmp_path: Path, mail: SmtpServer, clock: Clock, database: str | None
) -> None:
    with open_app(configure(tmp_path, mail, database, max_items=1)) as app:
        poll_all(app)
        digest_now(app, clock)

    text = text_of(mail.received()[0].message)
    assert "Tokyo regrets" in text
    assert "Seoul lets GSOMIA lapse" not in text
    assert "… and 1 more" in text


def test_send_empty_chooses_between_silence_and_nothing_new(
    tmp_path: Path, mail: SmtpServer, clock: Clock, database: str | None
) -> None:
    quiet = configure(tmp_path / "quiet", mail, database, watchlists=["scm"])
    with open_app(quiet) as app:
        poll_all(app)
        assert 0 == digest_now(app, clock)
        assert "morning" in app.store.digest_windows()  # the window moved all the same
    assert [] == mail.received()

    talkative = configure(
        tmp_path / "talkative", mail, database, watchlists=["scm"], send_empty=True
    )
    with open_app(talkative) as app:
        poll_all(app)
        assert 1 == digest_now(app, clock)
    [digest] = [m.message for m in mail.received()]
    assert "[morning] nothing new" == digest["Subject"]
    assert "Nothing new on scm." in text_of(digest)


def test_a_crash_after_closing_the_window_loses_and_repeats_nothing(
    tmp_path: Path, mail: SmtpServer, clock: Clock, database: str | None
) -> None:
    config = configure(tmp_path, mail, database)
    with open_app(config) as app:
        poll_all(app)
        mail.stop()  # the digest is queued, then the process dies before it is sent
        closed = clock.tick()
        assert 1 == run_digest(app, "morning", now=closed)
        assert 1 == deliver_due(app, now=closed).retried
    mail.start()
    write_document(tmp_path / "yonhap", "later", "SCM opens in Seoul", "The SCM opens today.")

    with open_app(config) as app:  # the restart
        assert 1 == deliver_due(app, now=clock.tick() + timedelta(hours=1)).sent
        poll_all(app)
        assert 1 == digest_now(app, clock)
        assert 0 == digest_now(app, clock)  # nothing new since

    first, second = [text_of(m.message) for m in mail.received()]
    assert "Tokyo regrets" in first
    assert "Cost sharing talks" in first
    assert "SCM opens in Seoul" in second
    assert "Tokyo regrets" not in second
    assert "Cost sharing talks" not in second


def test_a_crash_while_closing_the_window_leaves_it_where_it_was(
    tmp_path: Path,
    mail: SmtpServer,
    clock: Clock,
    database: str | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with open_app(configure(tmp_path, mail, database)) as app:
        poll_all(app)

        def crash(*args: object, **kwargs: object) -> None:
            raise RuntimeError("power cut")

        with monkeypatch.context() as patched:
            patched.setattr(app.store, "matches_between", crash)
            with pytest.raises(RuntimeError, match="power cut"):
                run_digest(app, "morning", now=clock.tick())
        assert 0 == app.store.outbox_counts(now=utc_now())["pending"]
        assert 1 == digest_now(app, clock)

    [digest] = [m.message for m in mail.received()]
    assert "[morning] 3 stories: gsomia (2), cost-sharing (1)" == digest["Subject"]


def test_a_match_committed_after_its_window_closed_comes_in_the_next(
    tmp_path: Path, mail: SmtpServer, clock: Clock, database: str | None
) -> None:
    with open_app(configure(tmp_path, mail, database)) as app:
        poll_started = clock.now
        assert 0 == digest_now(app, clock)
        # A poll that started before that window closed commits only now, its matches
        # stamped with its start: inside the window that has already gone out.
        for source in ("yonhap", "reuters"):
            assert poll_source(app, source, now=poll_started, force=True).ok
        assert 1 == digest_now(app, clock)
        assert 0 == digest_now(app, clock)

    [digest] = [m.message for m in mail.received()]
    assert "[morning] 3 stories: gsomia (2), cost-sharing (1)" == digest["Subject"]


@pytest.mark.parametrize(("hours_ago", "sent"), [(26, 0), (22, 1)])
def test_a_new_digests_first_window_reaches_a_day_back(
    tmp_path: Path, mail: SmtpServer, clock: Clock, database: str | None, hours_ago: int, sent: int
) -> None:
    """A day, and the hour every window looks back for late commits (LATE_COMMIT)."""
    with open_app(configure(tmp_path, mail, database)) as app:
        for source in ("yonhap", "reuters"):
            then = clock.now - timedelta(hours=hours_ago)
            assert poll_source(app, source, now=then, force=True).ok
        assert sent == digest_now(app, clock)
