"""poll_source end to end on real SQLite files and folders, delivered into a Maildir."""

from __future__ import annotations

import email
import email.policy
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.alerts.outbox import deliver_due
from monitor.app import App, build_app
from monitor.config import load_config
from monitor.pipeline import PollOutcome, poll_source

CONFIG = """\
database: sqlite:///db.sqlite
sources:
  - {{name: wire, type: folder, path: wire{backfill}}}
  - {{name: paper, type: folder, path: paper}}
channels:
  box: {{type: maildir, path: mail, to: [desk@example.org]}}
watchlists:
  - {{name: pact, query: GSOMIA, channels: [box]}}
  - {{name: talks, query: Esper, channels: [box], on_update: {on_update}}}
"""


def make_app(tmp_path: Path, *, backfill: str = "", on_update: str = "new_match") -> App:
    for folder in ("wire", "paper"):
        (tmp_path / folder).mkdir(exist_ok=True)
    path = tmp_path / "monitor.yaml"
    path.write_text(CONFIG.format(backfill=backfill, on_update=on_update))
    return build_app(load_config(path))


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    app = make_app(tmp_path)
    yield app
    app.close()


def doc(folder: Path, name: str, title: str, body: str) -> Path:
    path = folder / name
    path.write_text(f"{title}\n# 15 November 2019 09:00 (UTC +09:00)\n\n{body}\n", encoding="utf-8")
    return path


def mails(app: App, tmp_path: Path) -> list[email.message.EmailMessage]:
    deliver_due(app)
    found = []
    for path in sorted((tmp_path / "mail" / "new").glob("*")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        found.append(message)
    return found


def subjects(messages: list[email.message.EmailMessage]) -> list[str]:
    return sorted(str(m["Subject"]) for m in messages)


def test_new_matching_item_alerts_once(app: App, tmp_path: Path) -> None:
    doc(tmp_path / "wire", "a.txt", "Pact extended", "Seoul keeps GSOMIA, Esper said.")
    doc(tmp_path / "wire", "b.txt", "Weather", "Rain in Seoul.")
    outcome = poll_source(app, "wire")
    assert (True, 2, 2) == (outcome.ok, outcome.new, outcome.matches)
    assert ["[pact] Pact extended", "[talks] Pact extended"] == subjects(mails(app, tmp_path))
    again = poll_source(app, "wire", force=True)
    assert (0, 0) == (again.new, again.matches)
    assert 2 == len(mails(app, tmp_path))


def test_copy_in_another_source_does_not_alert_again_and_is_credited(
    app: App, tmp_path: Path
) -> None:
    body = (
        "Seoul said on Friday it would keep GSOMIA, its military intelligence-sharing pact "
        "with Tokyo, hours before the deadline."
    )
    doc(tmp_path / "wire", "a.txt", "Pact extended", body)
    doc(tmp_path / "paper", "copy.txt", "PACT EXTENDED (wire copy)", body.upper())
    poll_source(app, "wire")
    copy = poll_source(app, "paper")
    assert (1, 0) == (copy.new, copy.matches)
    [message] = mails(app, tmp_path)
    text = message.get_body(preferencelist=("plain",))
    assert text is not None
    assert "Also reported by: paper" in text.get_content()


def test_also_reported_by_names_other_outlets_only(app: App, tmp_path: Path) -> None:
    """A source carrying a story twice (a wire's "UPDATE 1" under a new title) is not
    another outlet of its own alert."""
    body = (
        "Seoul said on Friday it would keep GSOMIA, its military intelligence-sharing pact "
        "with Tokyo, hours before the deadline."
    )
    doc(tmp_path / "wire", "a.txt", "Pact extended", body)
    doc(tmp_path / "wire", "b.txt", "UPDATE 1-Pact extended", body)
    doc(tmp_path / "paper", "copy.txt", "Pact extended (wire copy)", body)
    poll_source(app, "wire")
    poll_source(app, "paper")
    [message] = mails(app, tmp_path)
    text = message.get_body(preferencelist=("plain",))
    assert text is not None
    credited = [line for line in text.get_content().splitlines() if "reported by" in line]
    assert ["Also reported by: paper"] == credited


def test_broken_source_is_recorded_and_others_go_on(app: App, tmp_path: Path) -> None:
    (tmp_path / "paper").rmdir()
    doc(tmp_path / "wire", "a.txt", "Pact", "GSOMIA")
    broken = poll_source(app, "paper")
    fine = poll_source(app, "wire")
    assert (False, True) == (broken.ok, fine.ok)
    state = app.store.source_state("paper")
    assert ("degraded", 1) == (state.health, state.failures)
    assert state.last_error is not None
    assert "not a readable folder" in state.last_error
    assert poll_source(app, "paper").skipped  # backing off until next_poll
    (tmp_path / "paper").mkdir()
    assert poll_source(app, "paper", force=True).ok
    assert ("healthy", 0) == (
        app.store.source_state("paper").health,
        app.store.source_state("paper").failures,
    )


def assert_the_newest_two_of_five_alert_then_later_news(
    app: App, tmp_path: Path, outcome: PollOutcome
) -> None:
    """With ``backfill: 2``: the five stories of the first poll are stored and matched,
    the newest two alert, and a story of a later poll alerts as usual."""
    assert (5, 5) == (outcome.new, outcome.matches)
    assert ["[pact] Story 4", "[pact] Story 5"] == subjects(mails(app, tmp_path))
    (tmp_path / "wire" / "6.txt").write_text("Story 6\n\nGSOMIA later\n")
    poll_source(app, "wire", force=True)
    assert 3 == len(mails(app, tmp_path))


def test_backfill_limits_alerts_on_a_new_source(tmp_path: Path) -> None:
    app = make_app(tmp_path, backfill=", backfill: 2")
    try:
        for day in range(1, 6):
            path = tmp_path / "wire" / f"{day}.txt"
            path.write_text(
                f"Story {day}\n# {day} November 2019 09:00 (UTC +00:00)\n\nGSOMIA {day}\n"
            )
        outcome = poll_source(app, "wire")
        assert_the_newest_two_of_five_alert_then_later_news(app, tmp_path, outcome)
    finally:
        app.close()


@pytest.mark.parametrize("first_poll", ["empty", "a feed file still being copied"])
def test_a_first_poll_that_brings_nothing_leaves_backfill_for_the_next(
    tmp_path: Path, first_poll: str
) -> None:
    app = make_app(tmp_path, backfill=", backfill: 2")
    items = "".join(
        f"<item><guid>{day}</guid><title>Story {day}</title><description>GSOMIA {day}"
        f"</description><pubDate>0{day} Nov 2019 09:00:00 GMT</pubDate></item>"
        for day in range(1, 6)
    )
    feed = f"<rss version='2.0'><channel><title>Wire</title>{items}</channel></rss>"
    copying = tmp_path / "wire" / "wire.xml"
    try:
        if first_poll != "empty":
            copying.write_text(feed[: len(feed) // 2])
        assert 0 == poll_source(app, "wire").new
        copying.write_text(feed)
        outcome = poll_source(app, "wire", force=True)
        assert_the_newest_two_of_five_alert_then_later_news(app, tmp_path, outcome)
    finally:
        app.close()


def test_a_feed_file_that_gives_every_entry_one_guid_loses_none_of_them(
    app: App, tmp_path: Path
) -> None:
    """As a feed over HTTP: a GUID that different entries share names none of them."""
    items = "".join(
        f"<item><guid>daily-briefing</guid><title>Briefing {n}</title>"
        f"<description>GSOMIA, day {n}.</description></item>"
        for n in range(3)
    )
    (tmp_path / "wire" / "wire.xml").write_text(
        f"<rss version='2.0'><channel>{items}</channel></rss>"
    )
    outcome = poll_source(app, "wire")
    assert (3, 3) == (outcome.new, outcome.deliveries)
    assert 3 == len(mails(app, tmp_path))


def test_backfill_alerts_a_story_whose_newest_copy_is_in_the_window(tmp_path: Path) -> None:
    """A new source carrying a story twice ("UPDATE 1" under a new title, the original
    outside the backfill window): the story alerts with its newest copy, whichever copy
    the store takes first (items are stored in fingerprint order)."""
    from monitor.dedup import fingerprint

    app = make_app(tmp_path, backfill=", backfill: 1")
    try:
        base = (
            "Seoul said on Friday it would keep GSOMIA, its military intelligence-sharing "
            "pact with Tokyo, hours before the deadline, after weeks of pressure from "
            "Washington, which had warned that ending it would help North Korea and China"
        )
        # The original's fingerprint sorts first, so the store plans its (silent) match
        # before the update's.
        tail = next(
            f" {n}."
            for n in range(100)
            if fingerprint("", base + f" {n}.", "") < fingerprint("", f"SEOUL - {base} {n}.", "")
        )
        (tmp_path / "wire" / "old.txt").write_text(
            f"Pact kept\n# 22 November 2019 09:00 (UTC +00:00)\n\n{base}{tail}\n"
        )
        (tmp_path / "wire" / "new.txt").write_text(
            f"UPDATE 1-Pact kept\n# 22 November 2019 12:00 (UTC +00:00)\n\nSEOUL - {base}{tail}\n"
        )
        outcome = poll_source(app, "wire")
        assert (2, 1) == (outcome.new, len({item.story_id for item in app.store.items()}))
        assert ["[pact] UPDATE 1-Pact kept"] == subjects(mails(app, tmp_path))
    finally:
        app.close()


def test_a_story_stored_silently_by_backfill_is_known_to_other_sources(tmp_path: Path) -> None:
    """Backfill declares a new source's older entries old news: a copy of one of them that
    another source carries later is a copy of a known story, and does not alert."""
    app = make_app(tmp_path, backfill=", backfill: 1")
    try:
        old = (
            "Seoul said on Friday it would keep GSOMIA, its military intelligence-sharing "
            "pact with Tokyo, hours before the deadline, after weeks of pressure from "
            "Washington, which had warned that ending it would help North Korea and China."
        )
        new = "Defence ministers met in Bangkok on Sunday and spoke of GSOMIA and of missiles."
        for name, title, day, body in (
            ("old", "Pact kept", 22, old),
            ("new", "Ministers meet", 24, new),
        ):
            (tmp_path / "wire" / f"{name}.txt").write_text(
                f"{title}\n# {day} November 2019 09:00 (UTC +00:00)\n\n{body}\n"
            )
        assert 2 == poll_source(app, "wire").new
        assert ["[pact] Ministers meet"] == subjects(mails(app, tmp_path))

        doc(tmp_path / "paper", "copy.txt", "Seoul keeps the pact", old)
        outcome = poll_source(app, "paper")
        assert (1, 0) == (outcome.new, outcome.matches)  # the story has its match
        assert 2 == len({item.story_id for item in app.store.items()})  # grouped with old
        assert 1 == len(mails(app, tmp_path))
    finally:
        app.close()


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("new_match", ["[pact] Pact", "[talks] Pact"]),
        ("ignore", ["[pact] Pact"]),
    ],
)
def test_update_alerts_only_for_new_matches(
    tmp_path: Path, policy: str, expected: list[str]
) -> None:
    app = make_app(tmp_path, on_update=policy)
    try:
        path = doc(tmp_path / "wire", "a.txt", "Pact", "GSOMIA stays.")
        poll_source(app, "wire")
        doc(tmp_path / "wire", "a.txt", "Pact", "GSOMIA stays, Esper said.")
        os.utime(path, ns=(1, 1))
        outcome = poll_source(app, "wire", force=True)
        assert (0, 1) == (outcome.new, outcome.updated)
        assert expected == subjects(mails(app, tmp_path))
    finally:
        app.close()


def test_two_documents_under_one_recurring_title_are_two_stories(tmp_path: Path) -> None:
    """Two files side by side under one recurring title ("Security daily brief") with
    news of their own: the second is another story and alerts, not an edit of the first.
    Each stays itself: an edit of either is its update, and a renamed one is known."""
    app = make_app(tmp_path)
    wire = tmp_path / "wire"
    lapse = "Seoul said GSOMIA would lapse at midnight unless Tokyo lifted its export curbs."
    kept = "In a reversal, Seoul kept GSOMIA hours before the deadline after US pressure."
    try:
        doc(wire, "brief-21.txt", "Security daily brief", lapse)
        first = poll_source(app, "wire")
        second_file = doc(wire, "brief-22.txt", "Security daily brief", kept)
        second = poll_source(app, "wire", force=True)
        doc(wire, "brief-22.txt", "Security daily brief", kept + " Esper welcomed it.")
        os.utime(second_file, ns=(1, 1))
        edited = poll_source(app, "wire", force=True)
        second_file.rename(wire / "brief-22-final.txt")
        renamed = poll_source(app, "wire", force=True)
        bodies = sorted(item.body for item in app.store.items())
        sent = subjects(mails(app, tmp_path))
    finally:
        app.close()
    assert [(1, 0), (1, 0), (0, 1), (0, 0)] == [
        (o.new, o.updated) for o in (first, second, edited, renamed)
    ]
    assert [kept + " Esper welcomed it.", lapse] == bodies
    assert ["[pact] Security daily brief"] * 2 + ["[talks] Security daily brief"] == sent


def test_a_brief_archived_under_another_name_as_the_next_is_written_is_two_stories(
    tmp_path: Path,
) -> None:
    """Each day brief.txt is renamed (archived) and a new brief.txt holds that day's news
    under the same recurring title, both before one poll: the archived file is the stored
    document, and the new one another story that alerts. A rename alone, and the new
    brief a poll later, is the same."""
    app = make_app(tmp_path)
    wire = tmp_path / "wire"
    title = "Security daily brief"
    days = [
        "Seoul said GSOMIA would lapse at midnight unless Tokyo lifted its export curbs.",
        "In a reversal, Seoul kept GSOMIA hours before the deadline after US pressure.",
        "Tokyo welcomed the GSOMIA decision and said export talks would resume next week.",
        "Washington praised both allies for saving GSOMIA, and Esper flew on to Hanoi.",
    ]
    try:
        doc(wire, "brief.txt", title, days[0])
        outcomes = [poll_source(app, "wire")]
        for day in (1, 2):
            (wire / "brief.txt").rename(wire / f"brief-{day}.txt")
            doc(wire, "brief.txt", title, days[day])
            outcomes.append(poll_source(app, "wire", force=True))
        (wire / "brief.txt").rename(wire / "brief-3.txt")
        outcomes.append(poll_source(app, "wire", force=True))
        doc(wire, "brief.txt", title, days[3])
        outcomes.append(poll_source(app, "wire", force=True))
        bodies = sorted(item.body for item in app.store.items())
        stories = {item.story_id for item in app.store.items()}
        sent = subjects(mails(app, tmp_path))
    finally:
        app.close()
    assert [(1, 0, 1), (1, 0, 1), (1, 0, 1), (0, 0, 0), (1, 0, 2)] == [
        (o.new, o.updated, o.deliveries) for o in outcomes
    ]
    assert sorted(days) == bodies
    assert 4 == len(stories)
    assert ["[pact] Security daily brief"] * 4 + ["[talks] Security daily brief"] == sent


def test_always_policy_alerts_on_every_update(tmp_path: Path) -> None:
    app = make_app(tmp_path, on_update="always")
    try:
        path = doc(tmp_path / "wire", "a.txt", "Talks", "Esper arrives.")
        poll_source(app, "wire")
        for version in range(2):
            doc(tmp_path / "wire", "a.txt", "Talks", f"Esper arrives, update {version}.")
            os.utime(path, ns=(version + 5, version + 5))
            poll_source(app, "wire", force=True)
        assert 3 == len(mails(app, tmp_path))
    finally:
        app.close()


def test_failing_source_notifies_on_source_error_channels_once(tmp_path: Path) -> None:
    (tmp_path / "wire").mkdir()
    path = tmp_path / "monitor.yaml"
    path.write_text(
        "database: sqlite:///db.sqlite\n"
        "sources: [{name: gone, type: folder, path: gone}]\n"
        "channels: {ops: {type: maildir, path: mail, to: [ops@example.org]}}\n"
        "watchlists: [{name: pact, query: GSOMIA}]\n"
        "on_source_error: [ops]\n"
    )
    app = build_app(load_config(path))
    try:
        for _ in range(5):
            assert not poll_source(app, "gone", force=True).ok
        assert ["[news-monitor] source gone is failing"] == subjects(mails(app, tmp_path))
        (tmp_path / "gone").mkdir()
        assert poll_source(app, "gone", force=True).ok
        assert [
            "[news-monitor] source gone is failing",
            "[news-monitor] source gone recovered",
        ] == subjects(mails(app, tmp_path))
    finally:
        app.close()


def test_moved_feed_url_is_kept_in_the_source_state(tmp_path: Path) -> None:
    from monitor.model import FetchResult

    app = make_app(tmp_path)
    try:

        class MovedSource:
            name = "wire"

            def fetch(self, cursor: dict[str, object]) -> FetchResult:
                return FetchResult([], {"url": "https://new.example/rss"}, not_modified=True)

        app.sources["wire"] = MovedSource()
        assert poll_source(app, "wire").ok
        assert "https://new.example/rss" == app.store.source_state("wire").url
    finally:
        app.close()


def test_a_database_error_while_storing_fails_the_poll_and_loses_nothing(
    app: App, tmp_path: Path
) -> None:
    """Not the source's fault, and no traceback: the poll says what went wrong, and the
    next one stores what this one could not."""
    import sqlite3

    doc(tmp_path / "wire", "a.txt", "Pact", "GSOMIA")
    with sqlite3.connect(tmp_path / "db.sqlite") as db:  # a table gone under the daemon
        db.execute("ALTER TABLE items RENAME TO items_away")
    failed = poll_source(app, "wire")
    with sqlite3.connect(tmp_path / "db.sqlite") as db:
        db.execute("ALTER TABLE items_away RENAME TO items")
    again = poll_source(app, "wire", force=True)

    assert (False, 0) == (failed.ok, failed.new)
    assert failed.error is not None
    assert failed.error.startswith("database: ")
    assert (True, 1, 1) == (again.ok, again.new, again.deliveries)
    assert "healthy" == app.store.source_state("wire").health


def test_a_file_name_that_is_not_utf8_is_read_with_the_others(tmp_path: Path) -> None:
    """Python reads such a name with surrogate escapes, which no database takes: the
    file a document came from is kept as it is shown (U+FFFD for each such byte)."""
    app = make_app(tmp_path)
    try:
        wire = tmp_path / "wire"
        doc(wire, "good.txt", "Talks go on", "Esper flies to Seoul for the cost talks.")
        named = os.fsencode(wire) + b"/brief-\xff.txt"
        with open(named, "w", encoding="utf-8") as handle:
            handle.write("Pact kept\n\nSeoul kept GSOMIA hours before the deadline.\n")
        outcome = poll_source(app, "wire")
        assert (True, 2) == (outcome.ok, outcome.new)
        assert ["[pact] Pact kept", "[talks] Talks go on"] == subjects(mails(app, tmp_path))
    finally:
        app.close()
