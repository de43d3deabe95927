"""Hostile servers on 127.0.0.1: each marks only its own source unhealthy, with a clear
error, while a good feed beside them is polled as usual."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path

import brotli
import pytest
from feedserver import (
    Feed,
    FeedServer,
    Handler,
    Route,
    closed_after,
    drip_headers,
    endless,
    feed_app,
    hang,
    redirect,
    rss,
    serve,
    status,
)

from monitor.errors import SourceError
from monitor.pipeline import poll_source
from monitor.sources.http import HttpPool, Limits

GOOD = rss(("g1", "Good news", "All is well in the good feed today."))
BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>
<rss version="2.0"><channel><item><title>&d;&d;&d;&d;</title></item></channel></rss>"""
HTML = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>Login</body></html>"
LATIN1 = (
    b"<?xml version='1.0'?><rss version='2.0'><channel><item><guid>l1</guid>"
    b"<title>S\xe3o Paulo: not\xedcias</title></item></channel></rss>"
)

# name -> (route, extra source settings, words the error must contain)
HOSTILE = {
    "error500": (status(500, body=b"oops"), {}, "HTTP 500"),
    "missing": (status(404), {}, "HTTP 404"),
    "hang": (hang, {"timeout": "1s"}, "timed out"),
    "endless": (endless, {"max_bytes": 200_000}, "byte cap"),
    "bomb": (Feed(BOMB), {}, "declares XML entities"),
    "html": (Feed(HTML, content_type="text/html"), {}, "an HTML page"),
    "empty": (Feed(b""), {}, "not a feed (an empty document)"),
    "loop": (redirect(302, "/loop-b"), {}, "redirect loop"),
    "throttled": (status(429, {"Retry-After": "3600"}), {}, "HTTP 429"),
    # Hosts no request can go to: punycode for no valid name, a label over 63 characters.
    "to-no-name": (redirect(302, "http://xn--ls8h.test/feed"), {}, "http: cannot request"),
    "to-long-name": (redirect(302, f"http://{'a' * 64}.test/"), {}, "http: cannot request"),
}


@pytest.fixture
def server() -> Iterator[FeedServer]:
    yield from serve()


def test_each_hostile_server_fails_only_its_own_source(server: FeedServer, tmp_path: Path) -> None:
    server.routes["/good"] = Feed(GOOD)
    server.routes["/loop-b"] = redirect(302, "/loop")
    server.routes["/latin1-said-utf8"] = Feed(
        LATIN1, content_type="application/rss+xml; charset=utf-8"
    )
    # Says UTF-16, is UTF-8: read as UTF-16 it would be CJK noise and no feed at all.
    server.routes["/utf8-said-utf16"] = Feed(
        rss(("u1", "Good news said wrongly", "x")),
        content_type="application/rss+xml; charset=utf-16",
    )
    sources = [
        {"name": "good", "url": server.url("/good")},
        {"name": "latin1-said-utf8", "url": server.url("/latin1-said-utf8")},
        {"name": "utf8-said-utf16", "url": server.url("/utf8-said-utf16")},
    ]
    for name, (route, settings, _words) in HOSTILE.items():
        server.routes[f"/{name}"] = route
        sources.append({"name": name, "url": server.url(f"/{name}"), **settings})
    app = feed_app(tmp_path, sources, [{"name": "news", "query": "news"}])
    try:
        outcomes = {source["name"]: poll_source(app, source["name"]) for source in sources}
        states = {state.name: state for state in app.store.source_states()}
        stored = {item.source: item.title for item in app.store.items()}
    finally:
        app.close()
    assert {"good", "latin1-said-utf8", "utf8-said-utf16"} == {
        name for name, o in outcomes.items() if o.ok
    }
    assert "healthy" == states["good"].health
    assert 1 == states["good"].items
    # A charset header that lies is survived when the bytes say otherwise.
    assert "São Paulo: notícias" == stored["latin1-said-utf8"]
    assert "Good news said wrongly" == stored["utf8-said-utf16"]
    for name, (_route, _settings, words) in HOSTILE.items():
        assert ("degraded", 1) == (states[name].health, states[name].failures), name
        assert words in (states[name].last_error or ""), name
        assert states[name].next_poll is not None


def test_a_failing_source_comes_back_when_its_server_does(
    server: FeedServer, tmp_path: Path
) -> None:
    server.routes["/flaky"] = status(503)
    app = feed_app(tmp_path, [{"name": "flaky", "url": server.url("/flaky")}], [])
    try:
        for _ in range(4):
            assert not poll_source(app, "flaky", force=True).ok
        assert ("failing", 4) == (
            app.store.source_state("flaky").health,
            app.store.source_state("flaky").failures,
        )
        server.routes["/flaky"] = Feed(GOOD)
        assert poll_source(app, "flaky", force=True).ok
        state = app.store.source_state("flaky")
        stored = [item.title for item in app.store.items(source="flaky")]
    finally:
        app.close()
    assert ("healthy", 0, ["Good news"]) == (state.health, state.failures, stored)


def test_a_feed_cut_short_by_a_closed_connection_stores_nothing_until_it_comes_whole(
    server: FeedServer, tmp_path: Path
) -> None:
    whole = rss(("c1", "First news", "One."), ("c2", "Second news", "Two, at length."))
    server.routes["/cut"] = closed_after(whole[: whole.index(b"Second") + 3])
    app = feed_app(tmp_path, [{"name": "cut", "url": server.url("/cut")}], [])
    try:
        cut = poll_source(app, "cut")
        stored_when_cut = [item.title for item in app.store.items()]
        # Whole, with what some hosts append after a page (no part of the feed).
        server.routes["/cut"] = closed_after(whole + b"<script>count()</script>")
        came_whole = poll_source(app, "cut", force=True)
        stored = sorted(item.title for item in app.store.items())
    finally:
        app.close()
    assert (False, []) == (cut.ok, stored_when_cut)
    assert "cut short" in (cut.error or "")
    assert (True, ["First news", "Second news"]) == (came_whole.ok, stored)


def _last_error(server: FeedServer, tmp_path: Path, route: Route, **limits: str) -> str | None:
    """Poll a source served by ``route`` with these limits: its error, None if it
    succeeded."""
    server.routes["/slow"] = route
    app = feed_app(tmp_path, [{"name": "slow", "url": server.url("/slow"), **limits}], [])
    try:
        outcome = poll_source(app, "slow")
    finally:
        app.close()
    return outcome.error


def test_headers_dripped_slowly_end_at_the_total_timeout(
    server: FeedServer, tmp_path: Path
) -> None:
    """Each header line comes well within the read timeout: only the total timeout can
    end the poll before the whole answer (a good feed, 15 s later) is in."""
    dripped = drip_headers(lines=60, every=0.25, body=GOOD)
    error = _last_error(server, tmp_path, dripped, timeout="2s", read_timeout="5s")
    assert error is not None
    assert "timed out: no complete answer within the total timeout (2s)" in error


def test_a_server_silent_for_the_read_timeout_fails_the_poll_before_the_total(
    server: FeedServer, tmp_path: Path
) -> None:
    """Silent for 20 s, then a good feed: well within the total timeout, but past the
    read timeout."""

    def late(handler: Handler) -> None:
        if not handler.server_stopping.wait(20):
            Feed(GOOD)(handler)

    error = _last_error(server, tmp_path, late, timeout="60s", read_timeout="1s")
    assert error is not None
    assert "timed out (ReadTimeout)" in error


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    """Bodies a few hundred kilobytes at most on the wire, hundreds of megabytes decoded."""
    return {
        "br": bytes(brotli.compress(b"<rss>" + b" " * (256 << 20), quality=5)),
        "gzip": gzip.compress(b"<rss>" + b" " * (64 << 20), compresslevel=1),
    }


@pytest.mark.parametrize("code", [200, 404])
@pytest.mark.parametrize("encoding", ["br", "gzip"])
def test_a_compression_bomb_is_never_inflated_past_the_cap(
    server: FeedServer, bombs: dict[str, bytes], encoding: str, code: int
) -> None:
    """The cap is counted while decoding, not after a network read's whole expansion:
    a 400-byte brotli body is 256 MB decoded. A non-2xx body is drained undecoded."""

    def bomb(handler: Handler) -> None:
        try:
            handler.answer(code, bombs[encoding], {"Content-Encoding": encoding})
        except OSError:
            return  # the client hung up at the cap, as it should

    server.routes["/bomb"] = bomb
    pool = HttpPool()
    tracemalloc.start()
    try:
        if code == 200:
            with pytest.raises(SourceError, match="over the 1048576 byte cap"):
                pool.get(server.url("/bomb"), {}, Limits(max_bytes=1 << 20))
        else:
            assert code == pool.get(server.url("/bomb"), {}, Limits(max_bytes=1 << 20)).status
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        pool.close()
    assert peak < 8 << 20


TWO_ITEMS = rss(
    ("c1", "First story", "The first story is whole."),
    ("c2", "Second story cut", "The second story is cut in two by the server's cache."),
)


def _compressed(encoding: str, body: bytes) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    return bytes(brotli.compress(body))


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_a_compressed_body_that_ends_mid_stream_is_an_error(
    server: FeedServer, tmp_path: Path, encoding: str
) -> None:
    """A whole HTTP answer (its Content-Length) whose compressed stream stops short, as a
    cache that stored half a file serves it: the feed read so far is not taken for the
    feed (its second item cut in two, or gone), the poll fails and names the cause."""
    whole = _compressed(encoding, TWO_ITEMS)
    cut = whole[: len(whole) * 3 // 4]
    server.routes["/cut"] = lambda handler: handler.answer(
        200, cut, {"Content-Type": "application/rss+xml", "Content-Encoding": encoding}
    )
    app = feed_app(tmp_path, [{"name": "cut", "url": server.url("/cut")}], [])
    try:
        outcome = poll_source(app, "cut")
        stored = [item.title for item in app.store.items()]
    finally:
        app.close()
    assert ([], False) == (stored, outcome.ok)
    assert "compressed body stops before its end (cut short)" in (outcome.error or "")


def test_a_gzip_body_of_several_members_is_read_whole(server: FeedServer, tmp_path: Path) -> None:
    """A gzip file may be several members one after the other (RFC 1952; ``cat a.gz
    b.gz``, a server compressing as it streams): all of them are the body."""
    half = len(TWO_ITEMS) // 2
    members = gzip.compress(TWO_ITEMS[:half]) + gzip.compress(TWO_ITEMS[half:])
    server.routes["/members"] = lambda handler: handler.answer(
        200, members, {"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"}
    )
    app = feed_app(tmp_path, [{"name": "members", "url": server.url("/members")}], [])
    try:
        assert poll_source(app, "members").ok
        stored = sorted(item.title for item in app.store.items())
    finally:
        app.close()
    assert ["First story", "Second story cut"] == stored
