"""Socket operations cut short at a request's total deadline, under httpx's sync Client.

httpx's timeouts are per operation: every network read may take the whole read timeout
again, so a server that drips a header line every second holds a request for as long as
it likes. httpcore lets a connection pool take its own network backend; this one gives
each connect, TLS handshake, read and write the smaller of its own timeout and the time
left before the deadline that ``deadline()`` set, and fails it once none is left. The
sync Client does a request's I/O in the calling thread, so a ContextVar carries each
request's deadline to its socket even in one Client shared by many threads, and a
kept-alive connection serves each request under that request's own deadline.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpcore
import httpx

from monitor.sources.tls import FeedTLSContext

_DEADLINE: ContextVar[float | None] = ContextVar("http_deadline", default=None)
# httpcore._backends.base.SOCKET_OPTION, which httpcore does not export.
_SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


@contextmanager
def deadline(at: float) -> Iterator[None]:
    """Socket operations in this context end by ``at`` (``time.monotonic()`` seconds)."""
    token = _DEADLINE.set(at)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _bounded(timeout: float | None, error: type[httpcore.TimeoutException]) -> float | None:
    """``timeout`` cut to the time left before the deadline; ``error`` when none is."""
    at = _DEADLINE.get()
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise error("the request's total deadline has passed")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A connection whose every operation ends by the current request's deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, bounded))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's socket backend, its connections made and used within the deadline."""

    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        stream = self._backend.connect_tcp(host, port, bounded, local_address, socket_options)
        return DeadlineStream(stream)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class DeadlineTransport(httpx.HTTPTransport):
    """httpx's HTTP transport on ``DeadlineBackend``.

    httpx 0.28 takes no network backend, so the connection pool its constructor made is
    replaced by one built the same way (no proxy) with the backend.
    """

    def __init__(self, limits: httpx.Limits) -> None:
        # One TLS context for both pools (see monitor.sources.tls).
        ssl_context = FeedTLSContext(ssl.PROTOCOL_TLS_CLIENT)
        super().__init__(verify=ssl_context, limits=limits)
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=DeadlineBackend(),
        )
