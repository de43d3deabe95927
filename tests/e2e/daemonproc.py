"""`monitor run` as a child process, its JSON log lines read as they come.

``MonitorProcess`` starts the daemon, collects every log event from its stderr in a
thread, and lets a test wait (with a generous deadline) for an event or for a condition.
Leaving the ``with`` block kills the process if the test did not stop it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import waiting

DEADLINE = 60.0
T = TypeVar("T")


def wait_until(condition: Callable[[], T], what: str, deadline: float = DEADLINE) -> T:
    """The first truthy value of ``condition()``; fails after ``deadline`` seconds."""
    return waiting.wait_until(condition, what, deadline)


class MonitorProcess:
    """``monitor run -c CONFIG --log-format json`` in ``cwd``."""

    def __init__(self, config: Path, *, cwd: Path, env: Mapping[str, str] | None = None) -> None:
        environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        environment.pop("MONITOR_CONFIG", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "-c", str(config), "--log-format", "json"],
            cwd=cwd,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                event = {"event": "unparsed", "line": line.rstrip()}
            self.events.append(event)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._reader.join(10)
        assert self.process.stderr is not None
        self.process.stderr.close()

    def seen(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        """Events named ``event`` whose fields include ``fields``."""
        return [
            e
            for e in list(self.events)
            if e.get("event") == event and all(e.get(k) == v for k, v in fields.items())
        ]

    def indexes(self, event: str, *, after: int = -1, **fields: Any) -> list[int]:
        """Positions in ``events`` of such events, after position ``after``."""
        return [
            i
            for i, e in enumerate(list(self.events))
            if i > after
            and e.get("event") == event
            and all(e.get(k) == v for k, v in fields.items())
        ]

    def wait_event(self, event: str, *, count: int = 1, **fields: Any) -> dict[str, Any]:
        """The ``count``-th such event, once it has been logged."""
        wait_until(
            lambda: len(self.seen(event, **fields)) >= count or self.process.poll() is not None,
            f"{count} x {event} {fields}",
        )
        matches = self.seen(event, **fields)
        assert len(matches) >= count, f"exited {self.process.returncode}: {self.tail()}"
        return matches[count - 1]

    def signal(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)

    def stop(self) -> int:
        """SIGTERM, then the exit code (waiting generously)."""
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(DEADLINE)
        self._reader.join(10)
        return code

    def tail(self, lines: int = 20) -> str:
        return "\n".join(json.dumps(e) for e in self.events[-lines:])
