"""Signals to `monitor run`: SIGHUP reloads config and watch-lists, SIGTERM drains and exits 0.

Waits have generous deadlines; nothing asserts how long a step took.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from daemonproc import MonitorProcess, wait_until
from sqlalchemy import create_engine, text
from test_cli import mails

from monitor.store.migrate import MIGRATION_LOCK

QUOKKA = "  - name: quokka\n    query: quokka\n    channels: [mailbox]\n"


def subjects(root: Path) -> list[str]:
    return sorted(str(m["Subject"]) for m in mails(root / "var" / "mail"))


def with_subject(root: Path, prefix: str) -> list[str]:
    return [s for s in subjects(root) if s.startswith(prefix)]


def story(folder: Path, name: str, title: str) -> None:
    """A document no other in the test resembles: its own story."""
    folder.mkdir(exist_ok=True)
    body = f"{title}. The {name} report describes the {title.lower()} in detail, {name} said."
    (folder / f"{name}.txt").write_text(f"{title}\n\n{body}\n")


def test_sighup_applies_sources_and_watchlists_and_refuses_a_broken_config(
    default_config: Path,
) -> None:
    root = default_config.parent.parent
    fast = default_config.read_text().replace("every: 1m", "every: 1s") + "delivery: {every: 1s}\n"
    default_config.write_text(fast)
    watchlists = default_config.with_name("watchlists.yaml")
    with MonitorProcess(default_config, cwd=root) as daemon:
        wait_until(lambda: len(subjects(root)) == 3, "the seed's three alerts")

        # A new watch-list, by SIGHUP; a new file in the folder is noticed by itself.
        watchlists.write_text(watchlists.read_text() + QUOKKA)
        daemon.signal(signal.SIGHUP)
        daemon.wait_event("config_reloaded", watchlists=4)
        story(root / "seeds", "quokka-1", "Quokka seen on the ferry")
        wait_until(lambda: with_subject(root, "[quokka] Quokka seen"), "the new watch-list")

        # A source added; then the old one removed and the new one changed.
        default_config.write_text(
            fast.replace(
                "    every: 1s\n",
                "    every: 1s\n  - {name: extra, type: folder, path: ../extra, every: 1s}\n",
            )
        )
        daemon.signal(signal.SIGHUP)
        daemon.wait_event("config_reloaded", sources=2)
        story(root / "extra", "quokka-2", "Quokka spotted in a harbour")
        wait_until(lambda: with_subject(root, "[quokka] Quokka spotted"), "the added source")

        default_config.write_text(
            fast.replace(
                "  - name: seeds\n    type: folder\n    path: ../seeds\n    every: 1s\n",
                "  - {name: extra, type: folder, path: ../moved, every: 1s}\n",
            )
        )
        daemon.signal(signal.SIGHUP)
        # The third reload: the first one also logged sources=1.
        third = daemon.wait_event("config_reloaded", count=3)
        assert 1 == third["sources"]
        reloaded = daemon.events.index(third)
        story(root / "seeds", "quokka-3", "Quokka crosses a road")
        story(root / "moved", "quokka-4", "Quokka naps under a bench")
        wait_until(lambda: with_subject(root, "[quokka] Quokka naps"), "the changed source")

        # A poll of the removed source that began before the reload may end just after it;
        # between the new config's second and fourth polls (2 s at least), none may run.
        def extra_polls() -> list[int]:
            return daemon.indexes("source_polled", after=reloaded, source="extra")

        wait_until(lambda: len(extra_polls()) >= 4, "four polls under the new config")
        second, fourth = extra_polls()[1], extra_polls()[3]
        assert not [e for e in daemon.events[second:fourth] if e.get("source") == "seeds"]
        assert not with_subject(root, "[quokka] Quokka crosses")

        # A broken config is refused, and the running one goes on.
        default_config.write_text(fast.replace("every: 1s", "every: often"))
        daemon.signal(signal.SIGHUP)
        refused = daemon.wait_event("reload_refused")
        assert "not a duration: 'often'" in refused["error"]
        story(root / "moved", "quokka-5", "Quokka learns to swim")
        wait_until(lambda: with_subject(root, "[quokka] Quokka learns"), "the old config going on")

        assert 0 == daemon.stop()
    assert daemon.seen("daemon_stopped", abandoned=False)


class Hang(BaseHTTPRequestHandler):
    """Answers nothing until the test ends: a poll in flight that never finishes."""

    asked = threading.Event()
    release = threading.Event()

    def do_GET(self) -> None:
        Hang.asked.set()
        Hang.release.wait(120)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def hanging_feed() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hang)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/feed.xml"
    finally:
        Hang.release.set()
        server.shutdown()
        server.server_close()


def test_sigterm_exits_0_even_with_a_poll_that_never_finishes(
    tmp_path: Path, hanging_feed: str
) -> None:
    config = tmp_path / "monitor.yaml"
    config.write_text(
        "database: sqlite:///monitor.db\nwatchlists: []\nsources:\n"
        f"  - {{name: stuck, type: feed, url: '{hanging_feed}', every: 1m, timeout: 5m}}\n"
    )
    with MonitorProcess(config, cwd=tmp_path) as daemon:
        wait_until(Hang.asked.is_set, "the poll to reach the server")
        assert 0 == daemon.stop()
    assert daemon.seen("drain_timed_out")
    assert daemon.seen("daemon_stopped", abandoned=True)


@pytest.mark.postgres
def test_a_sighup_while_the_daemon_starts_is_a_reload_once_it_runs(
    default_config: Path, postgres_url: str
) -> None:
    """The daemon waits at the migration lock (held here) when the SIGHUP comes: it is
    not ended by it, and reloads once it runs."""
    root = default_config.parent.parent
    config = default_config.read_text().replace("sqlite:///../var/monitor.db", postgres_url)
    default_config.write_text(config)
    engine = create_engine(postgres_url)
    waiting_for_lock = text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    )
    try:
        with engine.connect() as holder:
            holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            with MonitorProcess(default_config, cwd=root) as daemon:
                wait_until(
                    lambda: holder.execute(waiting_for_lock).scalar_one(), "the daemon at the lock"
                )
                daemon.signal(signal.SIGHUP)
                holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
                holder.commit()
                daemon.wait_event("daemon_started")
                daemon.wait_event("config_reloaded")
                assert 0 == daemon.stop()
    finally:
        engine.dispose()
