"""The HTTP layer and the feed source's cursor, against httpx.MockTransport."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from monitor.config import FeedSourceConfig
from monitor.errors import SourceError
from monitor.sources.feed import FeedSource
from monitor.sources.http import MAX_SERVER_DELAY, HttpPool, Limits, max_age, retry_after

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
RSS = b'<rss version="2.0"><channel><item><guid>1</guid><title>One</title></item></channel></rss>'
Answer = Callable[[httpx.Request], httpx.Response]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
        (format_datetime(NOW - timedelta(hours=1), usegmt=True), 0.0),
        ("10000000", MAX_SERVER_DELAY),
        # HTTP dates are GMT, whether they say so or not (asctime; RFC 5322's "-0000").
        ((NOW + timedelta(seconds=90)).strftime("%a %b %d %H:%M:%S %Y"), 90.0),
        (format_datetime((NOW + timedelta(seconds=90)).replace(tzinfo=None)), 90.0),
        ("soon", None),
        ("", None),
    ],
)
def test_retry_after(value: str, expected: float | None) -> None:
    assert expected == retry_after(httpx.Headers({"Retry-After": value}), NOW)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("public, max-age=300", 300.0),
        ('max-age="60"', 60.0),
        ("no-cache", None),
        ("s-maxage=10", None),
        ("max-age=99999999", MAX_SERVER_DELAY),
    ],
)
def test_max_age(value: str, expected: float | None) -> None:
    assert expected == max_age(httpx.Headers({"Cache-Control": value}))


@pytest.mark.parametrize(("age", "expected"), [("3590", 10.0), ("7200", 0.0), ("soon", 3600.0)])
def test_max_age_counts_from_when_a_cache_on_the_way_took_the_answer(
    age: str, expected: float
) -> None:
    assert expected == max_age(httpx.Headers({"Cache-Control": "max-age=3600", "Age": age}))


def _recorder() -> tuple[list[httpx.Headers], Answer]:
    """A feed that answers 200 and keeps the headers of each request it is sent."""
    asked: list[httpx.Headers] = []

    def feed(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers)
        return _ok(request)

    return asked, feed


def _pool(routes: dict[str, Answer]) -> HttpPool:
    def handle(request: httpx.Request) -> httpx.Response:
        answer = routes.get(request.url.path)
        return answer(request) if answer else httpx.Response(404)

    return HttpPool(transport=httpx.MockTransport(handle))


def _to(code: int, location: str) -> Answer:
    return lambda _request: httpx.Response(code, headers={"Location": location})


def _ok(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=RSS)


@pytest.mark.parametrize(
    ("hops", "moved_to"),
    [
        ({"/a": _to(301, "/b"), "/b": _to(308, "/c"), "/c": _ok}, "http://feeds.test/c"),
        ({"/a": _to(301, "/b"), "/b": _to(302, "/c"), "/c": _ok}, "http://feeds.test/b"),
        ({"/a": _to(302, "/b"), "/b": _to(301, "/c"), "/c": _ok}, None),
        ({"/a": _ok}, None),
    ],
    ids=["permanent-chain", "permanent-then-temporary", "temporary-first", "no-redirect"],
)
def test_only_a_leading_run_of_permanent_redirects_moves_the_feed(
    hops: dict[str, Answer], moved_to: str | None
) -> None:
    response = _pool(hops).get("http://feeds.test/a", {}, Limits())
    assert (200, moved_to) == (response.status, response.moved_to)


@pytest.mark.parametrize(
    ("first", "validated"),
    [(301, False), (308, False), (302, True), (307, True)],
)
def test_validators_follow_a_temporary_redirect_but_not_a_permanent_one(
    first: int, validated: bool
) -> None:
    asked, feed = _recorder()
    pool = _pool({"/a": _to(first, "/b"), "/b": feed})
    pool.get("http://feeds.test/a", {"X-Key": "k"}, Limits(), validators={"If-None-Match": '"a"'})
    assert (validated, "k") == ("If-None-Match" in asked[0], asked[0]["X-Key"])


@pytest.mark.parametrize(
    ("location", "kept"),
    [
        ("/b", True),
        ("https://feeds.test/b", True),  # an upgrade to https on the same host
        ("http://cdn.test/b", False),
        ("http://feeds.test:8080/b", False),
        ("https://feeds.test:8443/b", False),
    ],
)
def test_credentials_go_no_further_than_a_redirect_to_another_origin(
    location: str, kept: bool
) -> None:
    asked, feed = _recorder()
    pool = _pool({"/a": _to(302, location), "/b": feed})
    secrets = {"Authorization": "Bearer t", "Cookie": "s=1", "Proxy-Authorization": "Basic x"}
    pool.get("http://feeds.test/a", {**secrets, "X-Key": "k"}, Limits())
    assert "k" == asked[0]["X-Key"]
    assert [kept] * 3 == [name in asked[0] for name in secrets]


def test_credentials_dropped_on_the_way_stay_dropped_on_the_way_back() -> None:
    asked, feed = _recorder()
    routes = {"/a": _to(302, "http://cdn.test/c"), "/c": _to(302, "http://feeds.test/b")}
    _pool({**routes, "/b": feed}).get("http://feeds.test/a", {"Authorization": "t"}, Limits())
    assert ["feeds.test"] == [headers["Host"] for headers in asked]
    assert "Authorization" not in asked[0]


def _asking(asked: list[httpx.Headers], answer: Answer = _ok) -> Answer:
    def record(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers)
        return answer(request)

    return record


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer t"}], ids=["alone", "over-a-configured-one"]
)
def test_a_url_s_user_and_password_go_as_basic_auth(headers: dict[str, str]) -> None:
    """As httpx.Client sends them: percent-decoded, UTF-8, replacing a configured
    Authorization header; and never in the Host header."""
    asked: list[httpx.Headers] = []
    _pool({"/feed": _asking(asked)}).get("http://r:p%C3%A9ss@feeds.test/feed", headers, Limits())
    assert ("Basic cjpww6lzcw==", "feeds.test") == (asked[0]["Authorization"], asked[0]["Host"])


def test_a_request_carries_the_default_headers_under_the_configured_ones() -> None:
    asked: list[httpx.Headers] = []
    pool = _pool({"/feed": _asking(asked)})
    pool.get(
        "http://feeds.test/feed",
        {"user-agent": "desk/1", "Accept": "application/rss+xml"},
        Limits(),
    )
    sent = asked[0]
    assert ("desk/1", "application/rss+xml") == (sent["User-Agent"], sent["Accept"])
    assert ("gzip, deflate, br", "keep-alive") == (sent["Accept-Encoding"], sent["Connection"])
    assert [1, 1] == [len(sent.get_list(name)) for name in ("User-Agent", "Accept")]


def test_cookies_follow_a_poll_s_redirects_and_go_no_further() -> None:
    """A site that sets a cookie and redirects to check it gets it back on that chain;
    the next poll, of this feed or another on the site, starts without it."""
    asked: list[httpx.Headers] = []
    check = {"Location": "/feed", "Set-Cookie": "seen=1; Path=/"}
    routes = {
        "/a": lambda _request: httpx.Response(302, headers=check),
        "/feed": _asking(asked, lambda _r: httpx.Response(200, headers={"Set-Cookie": "s=2"})),
    }
    pool = _pool(routes)
    pool.get("http://feeds.test/a", {}, Limits())
    pool.get("http://feeds.test/feed", {}, Limits())
    assert ["seen=1", None] == [headers.get("Cookie") for headers in asked]


@pytest.mark.parametrize(
    ("hops", "message"),
    [
        ({"/a": _to(302, "/b"), "/b": _to(302, "/a")}, "redirect loop"),
        ({f"/{i}": _to(302, f"/{i + 1}") for i in range(10)}, "more than 3 redirects"),
        ({"/0": lambda _r: httpx.Response(301)}, "without a Location"),
        ({"/0": _to(301, "http://[::1")}, "301 redirect to an invalid Location"),
    ],
)
def test_redirect_trouble_is_a_source_error(hops: dict[str, Answer], message: str) -> None:
    pool = _pool(hops)
    with pytest.raises(SourceError, match=message):
        pool.get(f"http://feeds.test/{'a' if '/a' in hops else 0}", {}, Limits(max_redirects=3))


def test_the_size_cap_counts_decoded_bytes() -> None:
    bomb = b"<rss>" + b" " * 50_000
    pool = _pool(
        {
            "/a": lambda _r: httpx.Response(
                200, content=gzip.compress(bomb), headers={"Content-Encoding": "gzip"}
            )
        }
    )
    with pytest.raises(SourceError, match="over the 10000 byte cap"):
        pool.get("http://feeds.test/a", {}, Limits(max_bytes=10_000))


def _source(pool: HttpPool, url: str = "http://feeds.test/feed") -> FeedSource:
    config = FeedSourceConfig.model_validate({"name": "test", "type": "feed", "url": url})
    return FeedSource(config, pool)


def test_validators_go_into_the_cursor_and_come_back_as_conditional_headers() -> None:
    asked: list[httpx.Headers] = []

    def feed(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers)
        if request.headers.get("If-None-Match") == '"v1"':
            return httpx.Response(304, headers={"Cache-Control": "max-age=600"})
        return httpx.Response(
            200, content=RSS, headers={"ETag": '"v1"', "Last-Modified": "Tue, 01 Jan 2030"}
        )

    source = _source(_pool({"/feed": feed}))
    first = source.fetch({})
    second = source.fetch(first.cursor)
    assert ["One"] == [entry.title for entry in first.entries]
    assert '"v1"' == asked[1]["If-None-Match"]
    assert "Tue, 01 Jan 2030" == asked[1]["If-Modified-Since"]
    assert (True, [], first.cursor) == (second.not_modified, second.entries, second.cursor)
    assert second.not_before is not None
    assert second.not_before - datetime.now(UTC) > timedelta(seconds=590)


def test_a_cursor_from_another_configured_url_is_not_used() -> None:
    asked: list[httpx.Request] = []

    def feed(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return httpx.Response(200, content=RSS)

    source = _source(_pool({"/new": feed}), "http://feeds.test/new")
    cursor = {
        "configured": "http://feeds.test/old",
        "url": "http://feeds.test/moved",
        "etag": '"v9"',
    }
    source.fetch(cursor)
    assert "/new" == asked[0].url.path
    assert "If-None-Match" not in asked[0].headers


@pytest.mark.parametrize("code", [429, 503])
def test_throttling_carries_retry_after(code: int) -> None:
    def throttled(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(code, headers={"Retry-After": "120"})

    with pytest.raises(SourceError, match=f"HTTP {code}") as raised:
        _source(_pool({"/feed": throttled})).fetch({})
    assert 120.0 == raised.value.retry_after


def test_a_304_from_a_moved_feed_keeps_only_the_validators_of_its_new_url() -> None:
    """A server that answers 304 without being asked (or to a configured header): the
    cursor's validators were the old URL's and are not carried over to the new one."""

    def not_modified(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(304, headers={"ETag": '"new"'})

    source = _source(_pool({"/feed": _to(301, "/moved"), "/moved": not_modified}))
    cursor = {"configured": "http://feeds.test/feed", "etag": '"old"', "last_modified": "x"}
    result = source.fetch(cursor)
    assert result.not_modified
    assert {"url": "http://feeds.test/moved", "etag": '"new"'} == {
        key: value for key, value in result.cursor.items() if key != "configured"
    }


def test_a_304_s_validators_replace_those_it_names_and_keep_the_others() -> None:
    def not_modified(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(304, headers={"ETag": '"v2"'})

    cursor = {"configured": "http://feeds.test/feed", "etag": '"v1"', "last_modified": "x"}
    result = _source(_pool({"/feed": not_modified})).fetch(cursor)
    assert {**cursor, "url": "http://feeds.test/feed", "etag": '"v2"'} == result.cursor


def test_a_permanent_redirect_is_remembered_in_the_cursor() -> None:
    source = _source(_pool({"/feed": _to(301, "/moved"), "/moved": _ok}))
    result = source.fetch({})
    assert "http://feeds.test/moved" == result.cursor["url"]
    assert "http://feeds.test/feed" == result.cursor["configured"]


CREDENTIALED = "http://reader:hunter2-pass@feeds.test/feed?token=s3cr3t-tok&format=rss"


@pytest.mark.parametrize(
    "answer",
    [
        lambda _request: httpx.Response(500),
        lambda _request: httpx.Response(429),
        lambda _request: httpx.Response(200, content=b"not a feed at all"),
        lambda _request: httpx.Response(
            302, headers={"Location": "/feed?token=s3cr3t-tok&format=rss"}
        ),
    ],
    ids=["500", "429", "not-a-feed", "redirect-loop"],
)
def test_a_feed_url_s_credentials_stay_out_of_its_errors(answer: Answer) -> None:
    with pytest.raises(SourceError) as raised:
        _source(_pool({"/feed": answer}), CREDENTIALED).fetch({})
    message = str(raised.value)
    assert "feeds.test/feed" in message
    assert "hunter2-pass" not in message
    assert "s3cr3t-tok" not in message


def test_a_timeout_names_the_feed_without_its_credentials() -> None:
    def slow(_request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow")

    with pytest.raises(SourceError, match="timed out") as raised:
        _source(_pool({"/feed": slow}), CREDENTIALED).fetch({})
    assert "hunter2-pass" not in str(raised.value)
    assert "s3cr3t-tok" not in str(raised.value)


def test_a_host_turn_serves_its_threads_next_request_and_no_other_thread() -> None:
    """While one thread holds the host's only slot, another is refused after its short
    wait; the holder's request to that host goes through on the turn (no self-deadlock)
    and ends it, so the slot is free again before the holder leaves the block."""
    pool = HttpPool(per_host=1, transport=httpx.MockTransport(_ok))
    url = "http://feeds.test/a"
    with pool.host_turn(url, wait=0) as mine:
        assert mine
        assert not _turn_from_another_thread(lambda: pool.host_turn(url, wait=0.05))
        with pool.host_turn(url, wait=0) as again:  # the holder asking again is not refused
            assert again
        assert 200 == pool.get(url, {}, Limits()).status
        assert _turn_from_another_thread(
            lambda: pool.host_turn(url, wait=0.05)
        )  # the request ended the turn
    with pool.host_turn(url, wait=0) as after:
        assert after


def _turn_from_another_thread(take: Callable[[], AbstractContextManager[bool]]) -> bool:
    """Whether another thread gets the turn ``take`` asks for."""
    turns: list[bool] = []

    def elsewhere() -> None:
        with take() as turn:
            turns.append(turn)

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join(10)
    return turns[-1]


def test_a_feed_source_has_three_time_limits() -> None:
    settings = {"name": "t", "type": "feed", "url": "http://feeds.test/a"}
    config = FeedSourceConfig.model_validate({**settings, "read_timeout": "3s"})
    limits = FeedSource(config, _pool({})).limits
    assert (10.0, 3.0, 30.0) == (limits.connect_timeout, limits.read_timeout, limits.total_timeout)


CONFIGURED = "http://old.test/feed"


@pytest.mark.parametrize(
    ("cursor", "polled_at"),
    [
        ({}, CONFIGURED),
        ({"configured": CONFIGURED, "url": "http://new.test/feed"}, "http://new.test/feed"),
        ({"url": "http://new.test/feed"}, "http://new.test/feed"),  # before "configured"
        ({"configured": "http://older.test/feed", "url": CONFIGURED}, CONFIGURED),  # followed
        ({"configured": "http://other.test/feed", "url": "http://new.test/feed"}, CONFIGURED),
    ],
    ids=["new", "moved", "moved-before-configured", "config-followed", "config-changed"],
)
def test_a_poll_goes_where_the_feed_moved_unless_the_config_names_another_url(
    cursor: dict[str, str], polled_at: str
) -> None:
    asked: list[str] = []

    def feed(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(200, content=RSS)

    source = _source(HttpPool(transport=httpx.MockTransport(feed)), CONFIGURED)
    assert polled_at == source.next_url(cursor)
    source.fetch(cursor)
    assert [polled_at] == asked


def test_a_moved_feed_takes_its_turn_at_the_host_it_is_polled_at() -> None:
    """Its host turn is the new host's: it waits while another poll holds that host's
    only slot, and takes none of its old host's, which the feeds living there need."""
    pool = HttpPool(per_host=1, transport=httpx.MockTransport(_ok))
    source = _source(pool, CONFIGURED)
    moved = {"configured": CONFIGURED, "url": "http://new.test/feed"}
    with pool.host_turn("http://new.test/other", wait=0):
        assert not _turn_from_another_thread(lambda: source.host_turn(moved, wait=0.05))
    with source.host_turn(moved, wait=0.05) as turn:
        assert turn
        assert _turn_from_another_thread(lambda: pool.host_turn(CONFIGURED, wait=0.05))
        assert not _turn_from_another_thread(lambda: pool.host_turn("http://new.test/x", wait=0.05))
        assert 200 == pool.get(source.next_url(moved), {}, Limits()).status
