"""A real HTTP server on 127.0.0.1 for feed tests, and an App whose sources poll it.

``FeedServer`` runs ``ThreadingHTTPServer`` in a thread; each route is a callable that
answers one request. Routes that never finish on their own (a hang, an endless body)
watch the server's ``stopping`` event, so leaving the ``with`` block ends them.
"""

from __future__ import annotations

import gzip
import json
import ssl
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import brotli
from background import BackgroundServer

from monitor.app import App, build_app
from monitor.config import load_config

Route = Callable[["Handler"], None]


@dataclass
class Seen:
    """One request as the server saw it."""

    path: str
    headers: dict[str, str]
    client_port: int = 0  # tells connections apart: one port per TCP connection


@dataclass
class Feed:
    """A document served with validators, answering conditional GETs with 304."""

    body: bytes
    content_type: str = "application/rss+xml; charset=utf-8"
    etag: str | None = '"v1"'
    last_modified: str | None = formatdate(1_700_000_000, usegmt=True)
    encoding: str | None = None  # gzip | deflate | br
    headers: dict[str, str] = field(default_factory=dict)

    def __call__(self, handler: Handler) -> None:
        asked_etag = handler.headers.get("If-None-Match")
        asked_since = handler.headers.get("If-Modified-Since")
        fresh = (asked_etag is not None and asked_etag == self.etag) or (
            asked_etag is None and asked_since is not None and asked_since == self.last_modified
        )
        validators = {"ETag": self.etag, "Last-Modified": self.last_modified}
        headers = {k: v for k, v in validators.items() if v} | self.headers
        if fresh:
            handler.answer(304, b"", headers)
            return
        body = _encode(self.body, self.encoding)
        if self.encoding:
            headers["Content-Encoding"] = self.encoding
        handler.answer(200, body, {"Content-Type": self.content_type, **headers})


def _encode(body: bytes, encoding: str | None) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    if encoding == "br":
        return bytes(brotli.compress(body))
    return body


def status(code: int, headers: dict[str, str] | None = None, body: bytes = b"") -> Route:
    return lambda handler: handler.answer(code, body, headers or {})


def redirect(code: int, location: str) -> Route:
    return status(code, {"Location": location})


def hang(handler: Handler) -> None:
    """Accept, then say nothing until the server stops."""
    handler.server_stopping.wait()


def endless(handler: Handler) -> None:
    """A 200 whose body never ends."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/rss+xml")
    handler.end_headers()
    handler.wfile.write(b"<?xml version='1.0'?><rss version='2.0'><channel>")
    chunk = b"<item><title>more</title></item>" * 1000
    try:
        while not handler.server_stopping.is_set():
            handler.wfile.write(chunk)
    except OSError:
        return  # the client hung up, as it should


def closed_after(body: bytes) -> Route:
    """A 200 without a Content-Length, ended by closing the connection (HTTP/1.0's way,
    still some servers' and proxies'): a body cut short there looks whole."""

    def route(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/rss+xml")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(body)
        handler.close_connection = True

    return route


def drip_headers(lines: int, every: float, body: bytes) -> Route:
    """A 200 that sends one header line each ``every`` seconds, ``lines`` of them, then
    ``body``: never silent for long, slow in all."""

    def route(handler: Handler) -> None:
        try:
            handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
            for number in range(lines):
                if handler.server_stopping.wait(every):
                    return
                handler.wfile.write(f"X-Drip-{number}: {number}\r\n".encode())
            handler.wfile.write(f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        except OSError:
            return  # the client hung up, as it should

    return route


class Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    @property
    def server_stopping(self) -> threading.Event:
        return self.server.stopping

    def do_GET(self) -> None:
        self.server.seen.append(
            Seen(self.path, dict(self.headers.items()), int(self.client_address[1]))
        )
        route = self.server.routes.get(self.path)
        if route is None:
            self.answer(404, b"no such feed", {})
            return
        route(self)

    def answer(self, code: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(code)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: pytest shows failures, not access logs."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    routes: dict[str, Route]
    seen: list[Seen]
    stopping: threading.Event


class FeedServer(BackgroundServer):
    """``with FeedServer() as server: server.routes["/a"] = Feed(b"...")``; over HTTPS
    with ``tls`` (a server-side context)."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self._http: _Server = _Server(("127.0.0.1", 0), Handler)
        if tls is not None:
            self._http.socket = tls.wrap_socket(self._http.socket, server_side=True)
        self._scheme = "http" if tls is None else "https"
        self._http.routes = {}
        self._http.seen = []
        self._http.stopping = threading.Event()
        super().__init__(self._http, poll_interval=0.05)

    @property
    def routes(self) -> dict[str, Route]:
        return self._http.routes

    @property
    def seen(self) -> list[Seen]:
        return self._http.seen

    def url(self, path: str) -> str:
        return f"{self._scheme}{self.base_url().removeprefix('http')}{path}"

    def stopping(self) -> None:
        self._http.stopping.set()


def serve() -> Iterator[FeedServer]:
    """Body of a pytest fixture: a running server, stopped afterwards."""
    with FeedServer() as server:
        yield server


def rss(*items: tuple[str, str, str]) -> bytes:
    """An RSS 2.0 document of (guid, title, description) items."""
    body = "".join(
        f"<item><guid isPermaLink='false'>{guid}</guid><title>{title}</title>"
        f"<link>http://news.test/{guid}</link><description>{text}</description>"
        f"<pubDate>Thu, 14 Nov 2019 0{i}:00:00 GMT</pubDate></item>"
        for i, (guid, title, text) in enumerate(items)
    )
    head = "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
    return f"{head}{body}</channel></rss>".encode()


def feed_app(
    tmp_path: Path,
    sources: list[dict[str, Any]],
    watchlists: list[dict[str, Any]],
    env: Mapping[str, str] | None = None,
) -> App:
    """An App over a fresh SQLite file, feed ``sources`` and a Maildir channel ``box``;
    ``${NAME}``s in the config read ``env`` (by default the process's environment)."""
    config = {
        "database": f"sqlite:///{tmp_path}/db.sqlite",
        "sources": [{"type": "feed", **source} for source in sources],
        "channels": {
            "box": {"type": "maildir", "path": str(tmp_path / "mail"), "to": ["desk@example.org"]}
        },
        "watchlists": [{"channels": ["box"], **watchlist} for watchlist in watchlists],
    }
    path = tmp_path / "monitor.yaml"
    path.write_text(json.dumps(config, indent=1))  # JSON is YAML
    return build_app(load_config(path, env))
