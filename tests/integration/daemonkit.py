"""A daemon running in a thread of the test process, on a private folder of its own.

``DaemonRun`` writes a config (folder source every second, Maildir out, the HTTP endpoint
on a free port), starts ``Daemon.run`` in a thread and waits until /readyz answers; leaving
the ``with`` block stops it and joins the thread. ``wait_for`` polls a condition with a
generous deadline: tests wait for things to happen, they never assert on durations.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

import httpx
import waiting

from monitor.config import load_config
from monitor.daemon import Daemon

DEADLINE = 30.0
T = TypeVar("T")

CONFIG = """
database: sqlite:///var/monitor.db
sources:
  - {name: inbox, type: folder, path: docs, every: 1s}
watchlists:
  - {name: pact, query: pact, alert: both, channels: [box]}
channels:
  box: {type: maildir, path: mail, to: [desk@example.org]}
delivery: {every: 1s}
digests:
  - {name: morning, schedule: "0 7 * * *", channels: [box]}
http: {port: 0}
"""


def wait_for(condition: Callable[[], T], what: str, deadline: float = DEADLINE) -> T:
    """The first truthy value of ``condition()``; fails after ``deadline`` seconds."""
    return waiting.wait_until(condition, what, deadline)


class DaemonRun:
    """``with DaemonRun(tmp_path) as run:`` a started daemon; ``run.daemon`` is it."""

    def __init__(self, root: Path, config: str = CONFIG, *, heartbeat: float | None = 0.2) -> None:
        self.root = root
        (root / "docs").mkdir(exist_ok=True)
        self.config_path = root / "monitor.yaml"
        self.config_path.write_text(config)
        self.daemon = Daemon(load_config(self.config_path))
        if heartbeat is not None:
            self.daemon.heartbeat_seconds = heartbeat
        self.code: int | None = None
        self._thread = threading.Thread(target=self._run, name="daemon-under-test")

    def _run(self) -> None:
        self.code = self.daemon.run()

    def __enter__(self) -> Self:
        self._thread.start()
        wait_for(lambda: self.get("/readyz").status_code == 200, "the daemon to be ready")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> int | None:
        self.daemon.stop()
        self._thread.join(DEADLINE)
        return self.code

    def get(self, path: str) -> httpx.Response:
        address = self.daemon.http_address
        if address is None:
            return httpx.Response(599)
        host, port = address
        try:
            return httpx.get(f"http://{host}:{port}{path}", timeout=10)
        except httpx.TransportError:
            return httpx.Response(599)

    def mails(self) -> list[Path]:
        return sorted((self.root / "mail" / "new").glob("*"))

    def write(self, name: str, text: str) -> Path:
        path = self.root / "docs" / name
        path.write_text(text)
        return path
