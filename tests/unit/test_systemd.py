"""sd_notify over a real unix datagram socket, as systemd listens for it."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor import systemd


@pytest.fixture
def listener(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A datagram socket named by $NOTIFY_SOCKET, as systemd provides it."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(10)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        yield sock


def test_ready_sends_ready_and_status(listener: socket.socket) -> None:
    assert systemd.ready("polling 3 sources")
    assert b"READY=1\nSTATUS=polling 3 sources" == listener.recv(4096)


def test_watchdog_reloading_and_stopping(listener: socket.socket) -> None:
    assert systemd.watchdog()
    assert b"WATCHDOG=1" == listener.recv(4096)
    assert systemd.reloading()
    reloading, monotonic = listener.recv(4096).decode().split("\n")
    assert "RELOADING=1" == reloading
    assert monotonic.startswith("MONOTONIC_USEC=")
    assert monotonic.split("=")[1].isdigit()
    assert systemd.stopping()
    assert b"STOPPING=1\nSTATUS=draining" == listener.recv(4096)


def test_abstract_namespace_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"news-monitor-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(10)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert systemd.watchdog()
        assert b"WATCHDOG=1" == sock.recv(4096)


def test_outside_systemd_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not systemd.ready("x")


def test_a_socket_nobody_listens_on_is_not_an_error(tmp_path: Path) -> None:
    assert not systemd.notify("READY=1", env={"NOTIFY_SOCKET": str(tmp_path / "gone")})


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 30.0),
        ({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": str(os.getpid())}, 0.5),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_seconds(env: dict[str, str], expected: float | None) -> None:
    assert expected == systemd.watchdog_seconds(env)
