"""The `monitor` command as a user runs it, on a private copy of the embedded default."""

from __future__ import annotations

import email
import email.policy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

DEFAULT_WATCHLISTS = {"gsomia", "scm", "cost-sharing"}


def monitor(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("MONITOR_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def mails(folder: Path) -> list[email.message.EmailMessage]:
    found = []
    for path in sorted((folder / "new").glob("*")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        found.append(message)
    return found


def test_first_run_alerts_every_default_watchlist_and_second_run_adds_none(
    default_config: Path,
) -> None:
    root = default_config.parent.parent
    first = monitor("run", "--once", cwd=root)
    assert 0 == first.returncode, first.stderr
    assert "seeds: 1 new" in first.stdout
    assert "delivered: 3 sent" in first.stdout
    inbox = root / "var" / "mail"
    messages = mails(inbox)
    subjects = sorted(str(m["Subject"]) for m in messages)
    assert (
        sorted(
            f"[{w}] U.S. defence officials converge in Seoul to discuss troop costs, Japan pact"
            for w in DEFAULT_WATCHLISTS
        )
        == subjects
    )
    for message in messages:
        for header in ("From", "To", "Date", "Message-ID"):
            assert message[header], header
        assert "multipart/alternative" == message.get_content_type()
        assert ["text/plain", "text/html"] == [p.get_content_type() for p in message.iter_parts()]
    assert [] == list((inbox / "tmp").iterdir())

    second = monitor("run", "--once", cwd=root)
    assert 0 == second.returncode, second.stderr
    assert "seeds: 0 new" in second.stdout
    assert 3 == len(mails(inbox))


def test_renamed_seed_is_not_a_new_story(default_config: Path) -> None:
    root = default_config.parent.parent
    assert 0 == monitor("run", "--once", cwd=root).returncode
    seed = next((root / "seeds").glob("*.txt"))
    seed.rename(seed.with_name("renamed.txt"))
    again = monitor("run", "--once", cwd=root)
    assert "seeds: 0 new, 0 updated" in again.stdout
    assert 3 == len(mails(root / "var" / "mail"))


def test_check_accepts_the_default_and_names_file_and_line_of_a_broken_one(
    default_config: Path,
) -> None:
    root = default_config.parent.parent
    ok = monitor("check", cwd=root)
    assert 0 == ok.returncode, ok.stderr
    assert ok.stdout.endswith(": OK (1 source, 3 watch-lists, 1 channel, 1 digest)\n")
    broken = default_config.with_name("broken.yaml")
    broken.write_text(default_config.read_text().replace("every: 1m", "every: often"))
    bad = monitor("check", "-c", str(broken), cwd=root)
    assert 2 == bad.returncode
    assert f"{broken}:10: sources[0].every: not a duration: 'often'" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert "warning" not in ok.stderr


def test_check_warns_of_a_source_folder_that_is_not_there(default_config: Path) -> None:
    moved = default_config.with_name("moved.yaml")
    moved.write_text(default_config.read_text().replace("path: ../seeds", "path: ../nowhere"))
    checked = monitor("check", "-c", str(moved), cwd=default_config.parent.parent)
    assert 0 == checked.returncode  # a mount may come later
    nowhere = default_config.parent.parent / "nowhere"
    assert f"{moved}: warning: source 'seeds': no folder {nowhere}\n" == checked.stderr


def test_check_reports_invalid_yaml_without_a_traceback(default_config: Path) -> None:
    broken = default_config.with_name("broken.yaml")
    broken.write_text("sources: [\n  {name: x\n")
    result = monitor("check", "-c", str(broken), cwd=default_config.parent)
    assert 2 == result.returncode
    assert result.stderr.startswith(f"{broken}:")
    assert "Traceback" not in result.stderr


def test_items_and_status_json(default_config: Path) -> None:
    root = default_config.parent.parent
    assert 0 == monitor("run", "--once", cwd=root).returncode
    items = [json.loads(line) for line in monitor("items", "--json", cwd=root).stdout.splitlines()]
    assert 1 == len(items)
    assert {"source", "guid", "url", "title", "published"} <= set(items[0])
    assert "2019-11-14T06:48:00Z" == items[0]["published"]
    assert "seeds" == items[0]["source"]
    assert 1 == len(monitor("items", "--source", "seeds", cwd=root).stdout.splitlines())
    typo = monitor("items", "--source", "seedz", cwd=root)
    assert (2, "") == (typo.returncode, typo.stdout)
    assert "unknown source 'seedz' (known: seeds)" in typo.stderr
    status = json.loads(monitor("status", "--json", cwd=root).stdout)
    [source] = status["sources"]
    assert ("seeds", True, None, 1) == (
        source["name"],
        source["healthy"],
        source["last_error"],
        source["items"],
    )
    assert source["last_success"]
    assert 3 == status["outbox"]["sent"]
    assert ["morning"] == [d["name"] for d in status["digests"]]


def test_match_file_explains_the_seed(default_config: Path) -> None:
    root = default_config.parent.parent
    seed = next((root / "seeds").glob("*.txt"))
    result = monitor("match", "--file", str(seed), cwd=root)
    assert 0 == result.returncode, result.stderr
    for name in DEFAULT_WATCHLISTS:
        assert name in result.stdout


def test_daemon_polls_then_stops_cleanly_on_sigterm(default_config: Path) -> None:
    root = default_config.parent.parent
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--log-format", "json"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    inbox = root / "var" / "mail" / "new"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(list(inbox.glob("*"))) < 3:
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert 0 == process.returncode, stderr
    assert 3 == len(list(inbox.glob("*")))
    events = [json.loads(line)["event"] for line in stderr.splitlines() if line.startswith("{")]
    assert "daemon_started" in events
    assert "daemon_stopped" in events


@pytest.mark.parametrize("command", [["run", "--once"], ["status"], ["items"]])
def test_missing_config_is_a_clear_error(tmp_path: Path, command: list[str]) -> None:
    result = monitor(*command, "-c", str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert 2 == result.returncode
    assert "nope.yaml: cannot read" in result.stderr


def test_a_database_folder_that_cannot_be_made_is_a_clear_error(default_config: Path) -> None:
    root = default_config.parent.parent
    (root / "var").write_text("a file where the database's folder should be")
    result = monitor("status", "-c", str(default_config), cwd=root)
    assert 1 == result.returncode
    assert "Traceback" not in result.stderr
    assert "cannot make the database's folder" in result.stderr


def test_items_and_replay_show_control_characters_in_titles_as_escapes(
    default_config: Path,
) -> None:
    # ESC sequences retitle the window and recolour the terminal; U+202E reverses what follows.
    root = default_config.parent.parent
    hostile = "GSOMIA \x1b]0;owned\x07\x1b[2J\x9b31m\u202eevil"
    (root / "seeds" / "hostile.txt").write_text(
        f"{hostile}\nJapan and South Korea extend GSOMIA.\n", encoding="utf-8"
    )
    assert 0 == monitor("run", "--once", cwd=root).returncode
    # The controls are spaces when the title is stored; the bidi override, which RTL
    # titles use too, is kept, and a listing shows it as an escape.
    stored = "GSOMIA ]0;owned [2J 31m\u202eevil"
    shown = r"GSOMIA ]0;owned [2J 31m\u202eevil"
    items = monitor("items", cwd=root)
    replay = monitor("replay", "--since", "1d", "--dry-run", cwd=root)
    for listing in (items.stdout, replay.stdout):
        [line] = [line for line in listing.splitlines() if "owned" in line]
        assert line.endswith(shown)
    [item] = [
        i
        for i in map(json.loads, monitor("items", "--json", cwd=root).stdout.splitlines())
        if "owned" in i["title"]
    ]
    assert hostile != stored == item["title"]  # JSON escapes it already
