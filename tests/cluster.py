"""Several ``monitor run`` instances on one database, fed by one loopback feed server.

For tests/e2e/test_cluster.py and benchmarks/bench_scale.py:

- ``FeedFarm``: many RSS feeds on 127.0.0.1 that record the time of every fetch. Items
  come in rounds (``release``); each item has words of its own, so no two are near
  copies, and every ``match_every``-th mentions ``WATCHED``. A feed answers a conditional
  GET for the round it last served with 304, as a real feed would.
- ``cluster_config``: the config file of instance ``n``: the farm's feeds, one watch-list
  on ``WATCHED``, a webhook channel, short delivery leases.
- ``Instance``: one ``monitor run`` child process, its JSON log in a file.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from xml.sax.saxutils import escape

import waiting
import yaml
from background import BackgroundServer

WATCHED = "GSOMIA"
_FEED_PATH = re.compile(r"^/feed/(\d+)$")


class FeedFarm(BackgroundServer):
    """``feeds`` RSS feeds at ``url(n)``, ``per_round`` more items each per round."""

    def __init__(self, feeds: int, *, per_round: int = 2, match_every: int = 4) -> None:
        self.feeds = feeds
        self.per_round = per_round
        self.match_every = match_every
        self.rounds = 1
        self._fetches: list[list[float]] = [[] for _ in range(feeds)]
        self._lock = threading.Lock()
        super().__init__(ThreadingHTTPServer(("127.0.0.1", 0), _handler(self)))

    def url(self, feed: int) -> str:
        return f"{self.base_url()}/feed/{feed}"

    def release(self) -> float:
        """Every feed gets ``per_round`` new items; the ``time.monotonic()`` they came."""
        with self._lock:
            self.rounds += 1
            return time.monotonic()

    def fetches(self) -> list[list[float]]:
        """Per feed, the ``time.monotonic()`` of each fetch, in order."""
        with self._lock:
            return [list(times) for times in self._fetches]

    def all_fetched_since(self, moment: float) -> bool:
        """Whether every feed was fetched after ``moment`` (a ``time.monotonic()``)."""
        with self._lock:
            return all(times and times[-1] > moment for times in self._fetches)

    def items(self, *, matching: bool = False) -> set[str]:
        """The item keys (as the store keeps them) released so far, or only the matching."""
        return {
            f"guid:{guid}"
            for feed in range(self.feeds)
            for guid, match in self._entries(feed, self.rounds)
            if match or not matching
        }

    def _entries(self, feed: int, rounds: int) -> list[tuple[str, bool]]:
        return [
            (f"f{feed}-r{r}-i{i}", (feed + r * self.per_round + i) % self.match_every == 0)
            for r in range(rounds)
            for i in range(self.per_round)
        ]

    def document(self, feed: int, rounds: int) -> bytes:
        items = []
        for guid, match in self._entries(feed, rounds):
            words = " ".join(f"{guid.replace('-', '')}w{j}" for j in range(16))
            title = f"{WATCHED if match else 'Bulletin'} {guid}"
            items.append(
                f"<item><guid isPermaLink='false'>{guid}</guid><title>{escape(title)}</title>"
                f"<link>http://127.0.0.1/{guid}</link><description>{words}.</description></item>"
            )
        return (
            "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
            f"<title>Feed {feed}</title><link>http://127.0.0.1/</link>{''.join(items)}"
            "</channel></rss>"
        ).encode()

    def fetched(self, feed: int) -> int:
        """Record a fetch of ``feed``; the rounds it may see."""
        with self._lock:
            self._fetches[feed].append(time.monotonic())
            return self.rounds


def _handler(farm: FeedFarm) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            found = _FEED_PATH.match(self.path)
            if found is None or int(found.group(1)) >= farm.feeds:
                self._answer(404, b"", {})
                return
            feed = int(found.group(1))
            rounds = farm.fetched(feed)
            etag = f'"r{rounds}"'
            if self.headers.get("If-None-Match") == etag:
                self._answer(304, b"", {"ETag": etag})
                return
            body = farm.document(feed, rounds)
            self._answer(200, body, {"ETag": etag, "Content-Type": "application/rss+xml"})

        def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the farm counts fetches, it does not log them."""

    return Handler


def cluster_config(
    folder: Path,
    n: int,
    *,
    database: str,
    farm: FeedFarm,
    hook_url: str,
    every: str,
    jitter: str | None = None,
    secret: str | None = None,
) -> Path:
    """``folder/instance-<n>.yaml``: instance ``n`` of a cluster polling ``farm``."""
    channel: dict[str, Any] = {"type": "webhook", "url": hook_url, "format": "generic"}
    if secret is not None:
        channel["secret"] = secret
    config = {
        "database": database,
        "instance": f"instance-{n}",
        "sources": [
            {"name": f"feed-{feed}", "type": "feed", "url": farm.url(feed), "every": every}
            | ({} if jitter is None else {"jitter": jitter})
            for feed in range(farm.feeds)
        ],
        "watchlists": [{"name": "pact", "query": WATCHED, "channels": ["hook"]}],
        "channels": {"hook": channel},
        # A killed instance's claimed alerts go out again after a few seconds, not minutes.
        "delivery": {"every": "1s", "lease": "5s", "retry_base": "1s", "retry_max": "2s"},
    }
    path = folder / f"instance-{n}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


class Instance:
    """``monitor run`` for ``config``, logging JSON to a file next to it."""

    def __init__(self, config: Path) -> None:
        self.log = config.with_suffix(".log")
        environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
        environment.pop("MONITOR_CONFIG", None)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "monitor", "--log-format", "json", "run", "-c", str(config)],
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def kill(self) -> None:
        """SIGKILL: no drain, no cleanup, leases left behind."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM; the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def wait_until(condition: Callable[[], object], what: str, deadline: float = 120) -> None:
    """Return once ``condition()`` is true; fail after ``deadline`` seconds."""
    waiting.wait_until(condition, what, deadline)
