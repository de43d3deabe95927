"""Crash safety: `monitor run` killed with SIGKILL at random moments, restarted each time,
ends with exactly the alerts of an undisturbed run: none lost, none twice.

The kill moments come from a fixed seed, so a failure can be replayed; MONITOR_CRASH_SEED
picks another (for repeated runs: `for s in 1 2 3; do MONITOR_CRASH_SEED=$s pytest
tests/e2e/test_crash.py; done`). The outbox lease
is short here so that deliveries a killed process had claimed come back within the test.
"""

from __future__ import annotations

import email
import email.policy
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from daemonproc import MonitorProcess, wait_until

SEED = int(os.environ.get("MONITOR_CRASH_SEED", "20261127"))
DOCUMENTS = 200
KILLS = 5
LATEST_KILL = 3.0  # seconds after the daemon said it started

CONFIG = """\
database: sqlite:///monitor.db
sources:
  - {name: docs, type: folder, path: docs, every: 1s}
watchlists:
  - {name: crash, query: zephyrine, channels: [box]}
channels:
  box: {type: maildir, path: mail, to: [desk@example.org]}
delivery: {every: 1s, batch: 20, lease: 2s}
"""


def write_documents(folder: Path, rng: random.Random) -> None:
    """Documents that each are a story of their own, all matching the watch-list."""
    syllables = ["ka", "lo", "mi", "ne", "su", "ta", "vi", "ro", "pe", "du", "zo", "ga", "hi"]
    vocabulary = sorted({"".join(rng.choices(syllables, k=3)) for _ in range(3000)})
    folder.mkdir()
    for n in range(DOCUMENTS):
        words = rng.choices(vocabulary, k=60)
        title = f"Story {n:03d}: " + " ".join(words[:3])
        (folder / f"story-{n:03d}.txt").write_text(f"{title}\n\n{' '.join(words)} zephyrine.\n")


def mailbox(root: Path) -> dict[str, email.message.EmailMessage]:
    """Delivered mails by file name; each must be whole (Maildir: tmp/, fsync, rename)."""
    found = {}
    for path in (root / "mail" / "new").glob("*"):
        mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(mail, email.message.EmailMessage)
        assert mail["Message-ID"], path.name
        assert ["text/plain", "text/html"] == [p.get_content_type() for p in mail.iter_parts()]
        found[path.name] = mail
    return found


def outbox(root: Path) -> dict[str, int]:
    with sqlite3.connect(root / "monitor.db") as db:
        return dict(db.execute("SELECT status, count(*) FROM deliveries GROUP BY status"))


def test_killed_at_random_moments_the_alerts_are_those_of_an_undisturbed_run(
    tmp_path: Path,
) -> None:
    rng = random.Random(SEED)
    write_documents(tmp_path / "documents", rng)

    calm = tmp_path / "calm" / "monitor.yaml"
    shutil.copytree(tmp_path / "documents", calm.parent / "docs")
    calm.write_text(CONFIG)
    undisturbed = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--once", "-c", str(calm)],
        cwd=calm.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert 0 == undisturbed.returncode, undisturbed.stderr
    expected = mailbox(calm.parent)
    assert DOCUMENTS == len(expected)

    root = tmp_path / "crashed"
    root.mkdir()
    (root / "monitor.yaml").write_text(CONFIG)
    (root / "docs").mkdir()
    config = root / "monitor.yaml"
    documents = sorted((tmp_path / "documents").glob("*"))
    size = DOCUMENTS // KILLS
    waves = [documents[n * size : (n + 1) * size] for n in range(KILLS)]
    progress = []
    for wave in waves:
        # Each restart finds new documents, so kills land in ingests as well as sends.
        for document in wave:
            shutil.copy(document, root / "docs")
        with MonitorProcess(config, cwd=root) as daemon:
            daemon.wait_event("daemon_started")
            time.sleep(rng.uniform(0, LATEST_KILL))
            daemon.process.send_signal(signal.SIGKILL)
            assert -signal.SIGKILL == daemon.process.wait(60)
        progress.append(len(list((root / "mail" / "new").glob("*"))))
    with MonitorProcess(config, cwd=root) as daemon:
        daemon.wait_event("daemon_started")
        wait_until(lambda: {"sent": DOCUMENTS} == outbox(root), "every delivery sent")
        assert 0 == daemon.stop()

    delivered = mailbox(root)
    assert expected.keys() == delivered.keys(), f"mails after each kill: {progress}"
    assert sorted(str(m["Message-ID"]) for m in expected.values()) == sorted(
        str(m["Message-ID"]) for m in delivered.values()
    )
    subjects = [str(m["Subject"]) for m in delivered.values()]
    assert len(subjects) == len(set(subjects))  # one alert per story, none twice
    assert sorted(str(m["Subject"]) for m in expected.values()) == sorted(subjects)
