"""`monitor status` and `monitor db upgrade` as a user runs them."""

from __future__ import annotations

import json
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from test_cli import monitor


def test_status_table_and_json_after_a_run(default_config: Path) -> None:
    root = default_config.parent.parent
    assert 0 == monitor("run", "--once", cwd=root).returncode
    table = monitor("status", cwd=root)
    assert 0 == table.returncode, table.stderr
    header, seeds = table.stdout.splitlines()[:2]
    assert header.split() == [
        "SOURCE",
        "HEALTH",
        "ITEMS",
        "LAST",
        "SUCCESS",
        "NEXT",
        "POLL",
        "LAST",
        "ERROR",
    ]
    assert ["seeds", "healthy", "1"] == seeds.split()[:3]
    assert "ago" in seeds
    assert "in " in seeds  # the next poll, from the stored state
    assert "outbox: 0 pending (0 due now), 3 sent, 0 dead letters" in table.stdout
    assert "digest morning (0 7 * * * Asia/Seoul): last window ended never, next in" in (
        table.stdout
    )

    status = json.loads(monitor("status", "--json", cwd=root).stdout)
    [source] = status["sources"]
    assert {"name", "healthy", "health", "last_error", "last_success", "next_poll", "items"} <= set(
        source
    )
    assert source["next_poll"] > source["last_success"]
    assert {"pending": 0, "due": 0, "sent": 3, "dead": 0, "dead_letters": []} == status["outbox"]
    [digest] = status["digests"]
    assert (None, "Asia/Seoul") == (digest["last_window_end"], digest["timezone"])
    assert digest["next_run"].endswith(":00:00Z")  # 07:00 in Seoul, in UTC


def test_status_shows_a_failing_source_and_dead_letters(default_config: Path) -> None:
    root = default_config.parent.parent
    (root / "blocked").write_text("a file where the Maildir folder should be")
    config = default_config.read_text().replace("path: ../var/mail", "path: ../blocked")
    config = config.replace(
        "    every: 1m\n", "    every: 1m\n  - {name: gone, type: folder, path: ../nowhere}\n"
    )
    default_config.write_text(config + "delivery: {max_attempts: 1}\n")
    assert 1 == monitor("run", "--once", cwd=root).returncode
    status = json.loads(monitor("status", "--json", cwd=root).stdout)
    gone = next(s for s in status["sources"] if s["name"] == "gone")
    assert (False, "degraded", 1) == (gone["healthy"], gone["health"], gone["failures"])
    assert "nowhere is not a readable folder" in gone["last_error"]
    # The first alert's one attempt failed and buried it; the channel being down, the
    # other two wait for its retry time rather than being tried (and buried) at once.
    assert (1, 2) == (status["outbox"]["dead"], status["outbox"]["pending"])
    assert {"mailbox"} == {dead["channel"] for dead in status["outbox"]["dead_letters"]}
    table = monitor("status", cwd=root).stdout
    assert "gone" in table
    assert "degraded (1x)" in table
    assert "2 pending" in table
    assert "1 dead letter\n" in table
    assert "monitor deliveries retry --dead" in table


def test_a_recovered_source_shows_no_error_in_the_table_and_when_it_was_in_json(
    default_config: Path,
) -> None:
    """The table's LAST ERROR is the error a source is failing with now; --json keeps
    the last error with its time, to be read against ``last_success``."""
    root = default_config.parent.parent
    config = default_config.read_text().replace(
        "    every: 1m\n", "    every: 1m\n  - {name: gone, type: folder, path: ../nowhere}\n"
    )
    default_config.write_text(config)
    assert 1 == monitor("run", "--once", cwd=root).returncode
    failing = monitor("status", cwd=root).stdout
    (root / "nowhere").mkdir()
    assert 0 == monitor("run", "--once", "--force", cwd=root).returncode
    recovered = monitor("status", cwd=root).stdout
    status = json.loads(monitor("status", "--json", cwd=root).stdout)
    gone = next(s for s in status["sources"] if s["name"] == "gone")

    def row(table: str) -> str:
        return next(line for line in table.splitlines() if line.startswith("gone "))

    assert "degraded (1x)" in row(failing)
    assert "nowhere is not a readable folder" in row(failing)
    assert ["gone", "healthy", "0"] == row(recovered).split()[:3]
    assert "nowhere" not in row(recovered)
    assert (True, "healthy", 0) == (gone["healthy"], gone["health"], gone["failures"])
    assert "nowhere is not a readable folder" in gone["last_error"]
    assert gone["last_error_at"] < gone["last_success"]


def test_db_upgrade_and_a_database_newer_than_the_code_is_refused(default_config: Path) -> None:
    root = default_config.parent.parent
    upgraded = monitor("db", "upgrade", cwd=root)
    assert 0 == upgraded.returncode, upgraded.stderr
    assert upgraded.stdout.startswith("database at revision ")
    with sqlite3.connect(root / "var" / "monitor.db") as db:
        db.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    for command in (["db", "upgrade"], ["run", "--once"], ["status"]):
        refused = monitor(*command, cwd=root)
        assert 1 == refused.returncode, command
        assert "newer than this version of news-monitor" in refused.stderr
        assert "Traceback" not in refused.stderr


class _NotFound(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_error(404)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


def test_a_value_from_the_environment_is_in_no_log_summary_or_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A feed's token in its URL's path (``${FEED_TOKEN}``): the 404's error names the URL."""
    token = "tok-5f3a9c1e77"
    monkeypatch.setenv("FEED_TOKEN", token)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/private/${{FEED_TOKEN}}/rss.xml"
    (tmp_path / "monitor.yaml").write_text(
        "database: sqlite:///monitor.db\nwatchlists: []\n"
        f"sources:\n  - {{name: private, type: feed, url: '{url}'}}\n"
    )
    config = ("-c", str(tmp_path / "monitor.yaml"))
    try:
        once = monitor("run", "--once", "--log-format", "json", *config, cwd=tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    assert 1 == once.returncode
    assert "HTTP 404" in once.stdout
    table = monitor("status", *config, cwd=tmp_path)
    document = monitor("status", "--json", *config, cwd=tmp_path)
    assert "HTTP 404" in json.loads(document.stdout)["sources"][0]["last_error"]
    for output in (once.stdout, once.stderr, table.stdout, document.stdout):
        assert token not in output
