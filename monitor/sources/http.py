"""HTTP GET with limits, for feed sources: one bounded connection pool for the process.

Every feed source in a process shares one ``HttpPool`` (``HttpPool.shared()``) unless the
composition root hands it another. The pool holds one httpx transport (thread-safe, a
bounded number of connections, kept alive between polls) and a semaphore per host, so a
thousand feeds on one site never hold more than ``per_host`` connections to it. Polls run
on the scheduler's bounded worker threads, never a thread per source.

Requests go to the transport directly, built as ``httpx.Client`` would build them (its
default headers, a URL's ``user:password`` sent as Basic auth): a Client's auth flow,
event hooks, redirect machinery and cookie jar were about a quarter of the HTTP CPU of a
poll answered 304, and are unused here (redirects are followed below) or unwanted. No
jar is kept between polls, so one feed's cookies never reach another feed's requests;
cookies set during a poll's redirects are sent on along that poll's chain (``_Cookies``).

Limits, all enforced here: connect timeout, read timeout (per network read), a total
deadline over connecting, the headers and the body alike (deadline.py: a server that
drips its headers still ends at it), a size cap on the *decoded* body, counted as it
is decoded (so a gzip or brotli bomb is cut off before it inflates), and a bounded
number of redirects, followed by hand so a permanent one (301/308) can be reported and
a loop named as such. A conditional GET's
validators belong to the URL that issued them: they follow temporary redirects, never a
permanent one (the feed moved; its new home has not issued them). Credentials among a
feed's configured headers stay with its server: a redirect to another origin is sent the
other headers only.
"""

from __future__ import annotations

import re
import threading
import time
import zlib
from base64 import b64encode
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import ClassVar

import brotli
import httpx

from monitor.errors import SourceError
from monitor.sources.deadline import DeadlineTransport, deadline
from monitor.text import display_url

USER_AGENT = "news-monitor/0.1 (feed monitor; honours 304, Retry-After and max-age)"
REDIRECTS = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECTS = frozenset({301, 308})
# What httpx.Client sends unless told otherwise, with our User-Agent and the encodings
# httpx decodes here (brotli is a dependency).
DEFAULT_HEADERS = httpx.Headers(
    {
        "Accept": "*/*",
        "Connection": "keep-alive",
        "User-Agent": USER_AGENT,
        "Accept-Encoding": "gzip, deflate, br",
    }
)
# Configured headers a redirect to another origin does not receive (httpx drops
# Authorization the same way when it follows redirects itself).
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
# A server's request to wait (Retry-After, max-age) is honoured up to this long, so a
# wrong header can delay a source but never silence it.
MAX_SERVER_DELAY = 24 * 3600.0
# A non-2xx body up to this size is read so its connection can be reused.
DRAIN_LIMIT = 64 * 1024
# The most one step of decoding a body yields (about: brotli may overshoot a little).
# The size cap is checked between steps: a few hundred bytes of brotli are gigabytes
# decoded, and httpx decodes each network read whole.
DECODE_STEP = 64 * 1024
_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Limits:
    """What one request may cost: seconds, bytes and hops."""

    connect_timeout: float = 10.0
    read_timeout: float = 15.0  # each network read (and write)
    total_timeout: float = 30.0  # the whole request, redirects included
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5


@dataclass(frozen=True, slots=True)
class Response:
    """A response read to the end: final URL (without user:password), status, headers and
    decoded body.

    ``moved_to`` is where an unbroken chain of permanent redirects from the requested URL
    ended (the feed's new home), else None.
    """

    url: str
    status: int
    headers: httpx.Headers
    body: bytes
    moved_to: str | None = None


class HttpPool:
    """One httpx transport with bounded connections, plus a concurrency limit per host."""

    _shared: ClassVar[HttpPool | None] = None
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        *,
        max_connections: int = 32,
        per_host: int = 4,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.per_host = per_host
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self.transport = transport or DeadlineTransport(limits)
        self._hosts: dict[str, threading.BoundedSemaphore] = {}
        self._hosts_lock = threading.Lock()
        self._turns = threading.local()  # .hosts: the hosts whose slot this thread holds

    @classmethod
    def shared(cls) -> HttpPool:
        """The process-wide pool every feed source uses unless given its own."""
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def close(self) -> None:
        self.transport.close()

    def get(
        self,
        url: str,
        headers: Mapping[str, str],
        limits: Limits,
        *,
        validators: Mapping[str, str] | None = None,
        credentials_for: str | None = None,
    ) -> Response:
        """GET ``url``, following at most ``limits.max_redirects`` redirects.

        ``validators`` (If-None-Match, If-Modified-Since) are those ``url`` issued:
        dropped at a permanent redirect, as ``headers`` are not; but credentials among
        ``headers`` (CREDENTIAL_HEADERS) go no further than a redirect to another origin,
        as a browser's would not, nor to ``url`` itself when it is another origin than
        ``credentials_for`` (a feed's configured URL, ``url`` where it moved). Any status
        comes back as a Response; transport failures, limits and redirect trouble raise
        SourceError (with the httpx error chained).
        """
        deadline_at = time.monotonic() + limits.total_timeout
        seen = {url}
        moved_to: str | None = None
        permanent = True
        carried, own = dict(validators or {}), dict(headers)
        if credentials_for not in (None, url) and not _same_origin(
            httpx.URL(credentials_for), httpx.URL(url)
        ):
            own = _without_credentials(own)
        cookies = _Cookies()
        for _hop in range(limits.max_redirects + 1):
            response = self._get_once(url, {**carried, **own}, limits, deadline_at, cookies)
            if response.status not in REDIRECTS:
                return Response(
                    response.url, response.status, response.headers, response.body, moved_to
                )
            cookies.keep(url, response.headers)
            location = response.headers.get("location")
            if not location:
                raise SourceError(f"http: {response.status} redirect without a Location")
            here = httpx.URL(url)
            try:
                target_url = here.join(location)
            except (httpx.InvalidURL, ValueError) as exc:
                raise SourceError(
                    f"http: {response.status} redirect to an invalid Location: {exc}"
                ) from exc
            target_url = _userinfo_carried(here, target_url)
            target = str(target_url)
            permanent = permanent and response.status in PERMANENT_REDIRECTS
            if permanent:  # the feed moved: its old URL's validators stay behind
                moved_to, carried = target, {}
            if not _same_origin(here, target_url):
                own = _without_credentials(own)
            # Back to a URL with a cookie just set is a site checking it (a consent wall),
            # not yet a loop; max_redirects still bounds it.
            if target in seen and "set-cookie" not in response.headers:
                raise SourceError(f"http: redirect loop at {display_url(target)}")
            seen.add(target)
            url = target
        raise SourceError(f"http: more than {limits.max_redirects} redirects")

    def _get_once(
        self,
        url: str,
        headers: Mapping[str, str],
        limits: Limits,
        deadline_at: float,
        cookies: _Cookies,
    ) -> Response:
        remaining = deadline_at - time.monotonic()
        if remaining <= 0:
            raise _total_timeout(url, limits)
        # Each is cut to the time left by the network backend (deadline.py).
        timeout = httpx.Timeout(limits.read_timeout, connect=limits.connect_timeout, pool=remaining)
        target = httpx.URL(url)  # parsed once, for the host and the request
        try:
            request = _request(target, headers, timeout)
        except (httpx.InvalidURL, UnicodeError) as exc:  # a redirect's host no name
            raise _unrequestable(url, exc) from exc
        cookies.send(request)
        host = _host(target)
        slot = self._host_slot(host)
        held = self._held()
        if host in held:
            held.discard(host)  # this request takes the turn held for it, and ends it
        elif not slot.acquire(timeout=remaining):
            raise SourceError(f"http: {host} stayed busy for {limits.total_timeout:g}s")
        try:
            with deadline(deadline_at), closing(self.transport.handle_request(request)) as response:
                body = b""
                if 200 <= response.status_code < 300:
                    body = _read_capped(response, limits)
                else:
                    _drain(response)
                # Without user:password: the URL is a base for the feed's relative links
                # (item links and GUIDs go out in alerts) and is shown in errors.
                final = without_userinfo(target)
                return Response(final, response.status_code, response.headers, body)
        except httpx.TimeoutException as exc:
            if time.monotonic() >= deadline_at:
                raise _total_timeout(url, limits) from exc
            raise SourceError(
                f"http: timed out ({type(exc).__name__}) on {display_url(url)}"
            ) from exc
        except httpx.HTTPError as exc:
            raise SourceError(f"http: {type(exc).__name__}: {exc}") from exc
        except UnicodeError as exc:  # the resolver's: a label over 63 characters
            raise _unrequestable(url, exc) from exc
        finally:
            slot.release()

    @contextmanager
    def host_turn(self, url: str, wait: float) -> Iterator[bool]:
        """One of the slots of ``url``'s host for this thread's next request to it, if
        one frees within ``wait`` seconds (True), else False.

        The daemon takes a turn before a poll: a poller never waits long for a busy host
        while other hosts' polls wait for a poller; the source is polled a little later.
        The request ends the turn, so the slot is held as long as the request, no longer.
        """
        host = _host(httpx.URL(url))
        held = self._held()
        if host in held:
            yield True
            return
        slot = self._host_slot(host)
        if not slot.acquire(timeout=wait):
            yield False
            return
        held.add(host)
        try:
            yield True
        finally:
            if host in held:  # no request took it
                held.discard(host)
                slot.release()

    def _held(self) -> set[str]:
        hosts: set[str] | None = getattr(self._turns, "hosts", None)
        if hosts is None:
            hosts = self._turns.hosts = set()
        return hosts

    def _host_slot(self, host: str) -> threading.BoundedSemaphore:
        with self._hosts_lock:
            slot = self._hosts.get(host)
            if slot is None:
                slot = self._hosts[host] = threading.BoundedSemaphore(self.per_host)
            return slot


def _request(url: httpx.URL, headers: Mapping[str, str], timeout: httpx.Timeout) -> httpx.Request:
    """A GET as httpx.Client builds one: ``headers`` over DEFAULT_HEADERS, and a URL's
    ``user:password`` as Basic auth, replacing any configured Authorization."""
    merged = httpx.Headers(DEFAULT_HEADERS)
    merged.update(headers)
    if url.username or url.password:
        merged["Authorization"] = _basic(url.username, url.password)
    return httpx.Request("GET", url, headers=merged, extensions={"timeout": timeout.as_dict()})


def _basic(username: str, password: str) -> str:
    token = b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


class _Cookies:
    """Cookies set by the redirects of one poll, sent on along its chain (a site that
    sets a cookie and redirects back to check it), and forgotten with the poll. The jar
    is made only when a redirect sets one: most polls never pay for it."""

    __slots__ = ("_jar",)

    def __init__(self) -> None:
        self._jar: httpx.Cookies | None = None

    def keep(self, url: str, headers: httpx.Headers) -> None:
        """Remember the cookies ``url`` set in its (redirect) response ``headers``, those
        a request can carry: one outside ASCII would fail every request it went on in
        (httpx encodes headers in ASCII)."""
        if "set-cookie" not in headers:
            return
        if self._jar is None:
            self._jar = httpx.Cookies()
        sendable = httpx.Headers(
            [(k, v) for k, v in headers.multi_items() if k != "set-cookie" or v.isascii()]
        )
        self._jar.extract_cookies(
            httpx.Response(302, headers=sendable, request=httpx.Request("GET", url))
        )

    def send(self, request: httpx.Request) -> None:
        """Add those of the kept cookies that ``request``'s URL may have, as the
        cookie rules say (domain, path, secure), after a configured Cookie header's (the
        jar alone would send none beside one: a site checking the cookie it set would
        redirect for ever)."""
        if self._jar is None:
            return
        configured = request.headers.pop("cookie", None)
        self._jar.set_cookie_header(request)
        if configured is not None:
            kept = request.headers.get("cookie")
            request.headers["Cookie"] = configured if kept is None else f"{configured}; {kept}"


def _host(url: httpx.URL) -> str:
    return url.netloc.decode("ascii", "replace")


def _same_origin(here: httpx.URL, there: httpx.URL) -> bool:
    """Whether a redirect stays with the same server: scheme, host and port, or moves
    from http to https on the same host (an upgrade, not another party). Hosts compare
    as sent (``raw_host``, IDNA-encoded): decoding a name that is no IDNA name raises."""
    upgrade = (here.scheme, here.port, there.scheme, there.port) == ("http", None, "https", None)
    return here.raw_host == there.raw_host and (
        upgrade or (here.scheme, here.port) == (there.scheme, there.port)
    )


def _userinfo_carried(here: httpx.URL, there: httpx.URL) -> httpx.URL:
    """``there`` with ``here``'s user:password if it has none and is on the same server:
    an absolute Location there (a trailing slash, an upgrade to https) is still the feed
    the user:password was given for."""
    if here.userinfo and not there.userinfo and _same_origin(here, there):
        return there.copy_with(userinfo=here.userinfo)
    return there


def with_userinfo_of(configured: str, url: str) -> str:
    """``url`` with the user:password of ``configured`` when on its server, as a redirect
    from ``configured`` to ``url`` carries it (a feed's new home, read from its cursor,
    which keeps no user:password)."""
    return str(_userinfo_carried(httpx.URL(configured), httpx.URL(url)))


def _without_credentials(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in CREDENTIAL_HEADERS}


def _unrequestable(url: str, exc: Exception) -> SourceError:
    """A URL no request can go to (config.py refuses such a feed URL; a redirect may
    still name one): said as the poll's failure, not raised as a crash."""
    return SourceError(f"http: cannot request {display_url(url)}: {exc}")


def _total_timeout(url: str, limits: Limits) -> SourceError:
    return SourceError(
        f"http: timed out: no complete answer within the total timeout"
        f" ({limits.total_timeout:g}s) from {display_url(url)}"
    )


def _read_capped(response: httpx.Response, limits: Limits) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise SourceError(f"http: body of {declared} bytes is over the {limits.max_bytes} cap")
    chunks: list[bytes] = []
    size = 0
    for chunk in _decoded(response):
        size += len(chunk)
        if size > limits.max_bytes:
            raise SourceError(f"http: body over the {limits.max_bytes} byte cap")
        chunks.append(chunk)
    return b"".join(chunks)


def _drain(response: httpx.Response) -> None:
    """Read a small non-2xx body (a 304 has none), so the connection goes back to the
    pool instead of being closed: polls of unchanged feeds then reuse connections. A
    larger body, or one still arriving at the deadline, is left unread and its
    connection closed: the status is the answer."""
    if response.is_stream_consumed:  # read on arrival (httpx.MockTransport's)
        return
    size = 0
    try:
        for chunk in response.iter_raw():  # undecoded: nobody reads it
            size += len(chunk)
            if size > DRAIN_LIMIT:
                return
    except httpx.TimeoutException:
        return


Decoder = Callable[[Iterable[bytes]], Iterator[bytes]]


def _decoded(response: httpx.Response) -> Iterator[bytes]:
    """The body as ``response.iter_bytes()`` decodes it (each Content-Encoding, the last
    applied first; an unknown one passed through, as httpx does), in steps of about
    DECODE_STEP bytes however far one network read inflates."""
    if response.is_stream_consumed:  # read and decoded on arrival (httpx.MockTransport's)
        return response.iter_bytes()
    steps: Iterator[bytes] = response.iter_raw()
    for coding in reversed(response.headers.get_list("content-encoding", split_commas=True)):
        decoder = _DECODERS.get(coding.strip().lower())
        if decoder is not None:
            steps = decoder(steps)
    return steps


def _inflated(wbits: int, fallback: int | None = None, *, members: bool = False) -> Decoder:
    """A zlib decoder for ``wbits``; ``fallback`` is tried when the first read fails
    (deflate: zlib-wrapped as the spec says, or raw, as httpx also accepts it).
    ``members``: gzip's, one after another (RFC 1952: ``cat a.gz b.gz``), are each read;
    other bytes after the stream are ignored, as httpx ignored them. A stream that stops
    before its end is a body cut short: an error, not the feed read so far."""

    def decode(chunks: Iterable[bytes]) -> Iterator[bytes]:
        decompressor, retry, started = zlib.decompressobj(wbits), fallback, False
        trailing = False  # past the end, in bytes that start no member
        try:
            for chunk in chunks:
                while chunk and not trailing:
                    if decompressor.eof:
                        chunk = chunk.lstrip(b"\0")  # gzip's zero padding
                        trailing = bool(chunk) and not (members and chunk.startswith(b"\x1f"))
                        if trailing or not chunk:
                            break
                        decompressor = zlib.decompressobj(wbits)
                    try:
                        step = decompressor.decompress(chunk, DECODE_STEP)
                    except zlib.error:
                        if started or retry is None:
                            raise
                        decompressor, retry = zlib.decompressobj(retry), None
                        continue
                    started = True
                    yield step
                    chunk = decompressor.unconsumed_tail or decompressor.unused_data
            yield decompressor.flush()
        except zlib.error as exc:
            raise httpx.DecodingError(str(exc)) from exc
        if started and not decompressor.eof:
            raise httpx.DecodingError(_CUT_SHORT)

    return decode


def _unbrotli(chunks: Iterable[bytes]) -> Iterator[bytes]:
    decompressor, started = brotli.Decompressor(), False
    try:
        for chunk in chunks:
            if not chunk:
                continue
            started = True
            yield decompressor.process(chunk, output_buffer_limit=DECODE_STEP)
            while not decompressor.can_accept_more_data():
                yield decompressor.process(b"", output_buffer_limit=DECODE_STEP)
    except brotli.error as exc:
        raise httpx.DecodingError(str(exc)) from exc
    if started and not decompressor.is_finished():
        raise httpx.DecodingError(_CUT_SHORT)


_CUT_SHORT = "the compressed body stops before its end (cut short)"
_DECODERS: dict[str, Decoder] = {
    "gzip": _inflated(zlib.MAX_WBITS | 16, members=True),
    "deflate": _inflated(zlib.MAX_WBITS, fallback=-zlib.MAX_WBITS),
    "br": _unbrotli,
}


def retry_after(headers: httpx.Headers, now: datetime) -> float | None:
    """Seconds a 429/503 asks us to wait (delta-seconds or an HTTP date), capped."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        seconds = _delta_seconds(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # asctime and "-0000" dates: HTTP dates are in GMT
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    return min(max(seconds, 0.0), MAX_SERVER_DELAY)


def without_userinfo(url: httpx.URL | str) -> str:
    """``url`` without its ``user:password@``: a form fit for a base of relative links."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(userinfo=b"") if parsed.userinfo else parsed)


def max_age(headers: httpx.Headers) -> float | None:
    """Seconds the answer stays fresh, capped: Cache-Control max-age less the Age a cache
    on the way already held it (RFC 9111 4.2); None without a max-age."""
    match = _MAX_AGE.search(headers.get("cache-control", ""))
    if match is None:
        return None
    age = headers.get("age", "").strip()
    held = _delta_seconds(age) if age.isdigit() else 0.0
    return min(max(_delta_seconds(match.group(1)) - held, 0.0), MAX_SERVER_DELAY)


def _delta_seconds(digits: str) -> float:
    """A header's delta-seconds, at most 2**31 as RFC 9111 (1.2.2) says for one too large
    to hold: read as infinity, a max-age less an Age was no number (NaN)."""
    return min(float(digits), 2.0**31)
