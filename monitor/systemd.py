"""sd_notify(3) over $NOTIFY_SOCKET with the stdlib only: READY, WATCHDOG, RELOADING, STOPPING.

Under ``Type=notify`` (or ``notify-reload``) systemd passes a datagram socket in
``$NOTIFY_SOCKET``; a leading ``@`` names a socket in the abstract namespace. With
``WatchdogSec=`` it also passes ``$WATCHDOG_USEC`` (and ``$WATCHDOG_PID``, which must be
ours): the service must send ``WATCHDOG=1`` more often than that, or it is restarted.
Outside systemd every call here does nothing and returns False.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping

import structlog

log = structlog.get_logger("monitor.systemd")


def _address(env: Mapping[str, str]) -> str | None:
    value = env.get("NOTIFY_SOCKET", "")
    if value.startswith("@"):
        return "\0" + value[1:]
    # Only filesystem and abstract unix sockets; "vsock:" addresses are for VMs.
    return value if value.startswith("/") else None


def notify(*fields: str, env: Mapping[str, str] | None = None) -> bool:
    """Send ``fields`` (``"READY=1"``, ``"STATUS=..."``) as one message; False when not
    under systemd or when the socket refused it (never raises: a lost notification must
    not stop the daemon)."""
    address = _address(os.environ if env is None else env)
    if address is None:
        return False
    message = "\n".join(fields).encode("utf-8")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message, address)
    except OSError as exc:
        log.warning("sd_notify_failed", error=str(exc))
        return False
    return True


def ready(status: str) -> bool:
    return notify("READY=1", f"STATUS={status}")


def reloading() -> bool:
    """``Type=notify-reload`` wants the monotonic time with RELOADING=1."""
    return notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")


def stopping() -> bool:
    return notify("STOPPING=1", "STATUS=draining")


def watchdog() -> bool:
    return notify("WATCHDOG=1")


def watchdog_seconds(env: Mapping[str, str] | None = None) -> float | None:
    """The watchdog timeout systemd set for this process, in seconds, or None."""
    env = os.environ if env is None else env
    pid = env.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    return int(usec) / 1_000_000
