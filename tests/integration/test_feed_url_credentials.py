"""A feed's URL credentials (user:password@) along a redirect to its own server."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from feedserver import Feed, FeedServer, Handler, feed_app, redirect, rss, serve

from monitor.pipeline import poll_source

BASIC = "Basic " + base64.b64encode(b"reader:s3cret").decode()


@pytest.fixture
def server() -> Iterator[FeedServer]:
    yield from serve()


def _private(feed: Feed):  # type: ignore[no-untyped-def]
    def route(handler: Handler) -> None:
        if handler.headers.get("Authorization") != BASIC:
            handler.answer(401, b"", {"WWW-Authenticate": 'Basic realm="feed"'})
        else:
            feed(handler)

    return route


@pytest.mark.parametrize("code", [302, 301])
def test_url_credentials_follow_a_redirect_to_the_same_server(
    server: FeedServer, tmp_path: Path, code: int
) -> None:
    """http://user:pw@host/feed answered with an absolute Location on the same host (a
    trailing slash, a new path): the feed is still the user's, and stays readable."""
    server.routes["/feed/"] = _private(Feed(rss(("g1", "GSOMIA kept", "Seoul keeps it."))))
    server.routes["/feed"] = redirect(code, server.url("/feed/"))
    url = server.url("/feed").replace("http://", "http://reader:s3cret@")
    app = feed_app(tmp_path, [{"name": "private", "url": url}], [])
    try:
        first = poll_source(app, "private", force=True)
        second = poll_source(app, "private", force=True)
    finally:
        app.close()
    assert (first.ok, first.error) == (True, None)
    assert (second.ok, second.error) == (True, None)


@pytest.mark.parametrize("moved", [False, True], ids=["at-home", "moved"])
def test_url_credentials_never_reach_an_item_link(
    server: FeedServer, tmp_path: Path, moved: bool
) -> None:
    """An item's relative link and GUID are resolved against the feed's URL without
    user:password: both go out in alerts. A feed that moved keeps its GUIDs resolved
    against its configured URL (see FeedSource), without user:password too."""
    body = (
        b"<?xml version='1.0'?><rss version='2.0'><channel><item><guid>g1</guid>"
        b"<title>GSOMIA kept</title><link>/story/1</link>"
        b"<description>Seoul keeps it.</description></item></channel></rss>"
    )
    server.routes["/feed"] = _private(Feed(body))
    if moved:
        server.routes["/feed/"] = server.routes.pop("/feed")
        server.routes["/feed"] = redirect(301, server.url("/feed/"))
    url = server.url("/feed").replace("http://", "http://reader:s3cret@")
    app = feed_app(tmp_path, [{"name": "private", "url": url}], [])
    try:
        outcome = poll_source(app, "private", force=True)
        links = [item.url for item in app.store.items()]
        keys = [item.key for item in app.store.items()]
    finally:
        app.close()
    assert outcome.ok, outcome.error
    assert links == [server.url("/story/1")]
    assert keys == ["guid:" + server.url("/g1")]  # the webhook payload's "guid"


def test_a_configured_cookie_and_a_redirect_cookie_both_go_on(
    server: FeedServer, tmp_path: Path
) -> None:
    """A site that sets a cookie and redirects back to check it (a consent wall), for a
    feed configured with a session Cookie: the check sees both."""
    feed = Feed(rss(("g1", "GSOMIA kept", "Seoul keeps it.")))

    def walled(handler: Handler) -> None:
        cookies = handler.headers.get("Cookie") or ""
        if "consent=yes" not in cookies:
            handler.answer(302, b"", {"Location": "/feed", "Set-Cookie": "consent=yes; Path=/"})
        elif "session=abc" not in cookies:
            handler.answer(403, b"", {})
        else:
            feed(handler)

    server.routes["/feed"] = walled
    source = {"name": "walled", "url": server.url("/feed"), "headers": {"Cookie": "session=abc"}}
    app = feed_app(tmp_path, [source], [])
    try:
        outcome = poll_source(app, "walled", force=True)
    finally:
        app.close()
    assert (outcome.ok, outcome.error, outcome.new) == (True, None, 1)


def test_a_redirect_cookie_no_request_can_carry_is_left_behind(
    server: FeedServer, tmp_path: Path
) -> None:
    """A cookie outside ASCII (httpx encodes headers in ASCII) is not sent on: the feed
    is fetched without it, not failed with an unexpected error at every poll."""
    server.routes["/feed"] = lambda handler: handler.answer(
        302, b"", {"Location": "/home", "Set-Cookie": "lang=fran\u00e7ais; Path=/"}
    )
    server.routes["/home"] = Feed(rss(("g1", "GSOMIA kept", "Seoul keeps it.")))
    app = feed_app(tmp_path, [{"name": "site", "url": server.url("/feed")}], [])
    try:
        outcome = poll_source(app, "site")
    finally:
        app.close()
    assert (outcome.ok, outcome.error, outcome.new) == (True, None, 1)
    assert "Cookie" not in server.seen[1].headers


def test_configured_credentials_do_not_follow_a_feed_that_moved_to_another_server(
    server: FeedServer, tmp_path: Path
) -> None:
    """A 301 to another server: neither that hop nor the later polls of the feed's new
    home carry the old server's Authorization and Cookie."""
    with FeedServer() as elsewhere:
        moved = elsewhere.url("/feed").replace("127.0.0.1", "localhost")
        elsewhere.routes["/feed"] = Feed(rss(("g1", "GSOMIA kept", "Seoul keeps it.")))
        server.routes["/feed"] = redirect(301, moved)
        headers = {"Authorization": "Bearer old-server-token", "Cookie": "session=abc"}
        source = {"name": "moving", "url": server.url("/feed"), "headers": headers}
        app = feed_app(tmp_path, [source], [])
        try:
            outcomes = [poll_source(app, "moving", force=True) for _ in range(2)]
        finally:
            app.close()
        sent = [(s.headers.get("Authorization"), s.headers.get("Cookie")) for s in elsewhere.seen]
    assert [o.ok for o in outcomes] == [True, True]
    assert sent == [(None, None), (None, None)]
