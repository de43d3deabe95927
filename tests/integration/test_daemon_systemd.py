"""The daemon under a systemd-like supervisor: a real datagram socket as $NOTIFY_SOCKET."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from daemonkit import DaemonRun, wait_for


class Supervisor:
    """The notification socket's far side: every field heard, in order."""

    def __init__(self, path: Path) -> None:
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(str(path))
        self.socket.setblocking(False)
        self.heard: list[str] = []

    def listen(self) -> list[str]:
        while True:
            try:
                self.heard.extend(self.socket.recv(4096).decode().split("\n"))
            except BlockingIOError:
                return self.heard


def test_ready_watchdog_reloading_and_stopping_are_notified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    supervisor = Supervisor(tmp_path / "notify")
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    monkeypatch.setenv("WATCHDOG_USEC", "600000")  # 0.6 s: a ping every 0.2 s
    try:
        with DaemonRun(tmp_path, heartbeat=None) as run:
            assert 0.2 == pytest.approx(run.daemon.heartbeat_seconds)
            wait_for(lambda: supervisor.listen().count("WATCHDOG=1") >= 3, "watchdog pings")
            assert run.daemon.reload()
            wait_for(lambda: "RELOADING=1" in supervisor.listen(), "RELOADING=1")
        heard = wait_for(
            lambda: "STOPPING=1" in supervisor.listen() and supervisor.heard, "STOPPING=1"
        )
    finally:
        supervisor.socket.close()
    ready = [i for i, field in enumerate(heard) if field == "READY=1"]
    assert ready[0] < heard.index("WATCHDOG=1")
    assert heard.index("RELOADING=1") < ready[-1]  # ready again after the reload
    assert "STATUS=polling 1 sources" in heard
    assert 0 == run.code
