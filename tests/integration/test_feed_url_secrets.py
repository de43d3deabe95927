"""A feed URL's secrets from the environment, and its user:password, never at rest.

The operator keeps a token or a password out of the config file (``${TOKEN}``); the
feed's cursor, written to the database at every poll, must not hold it either: not the
configured URL, not where a permanent redirect moved the feed, not after the config
follows the move or the token is rotated, not after an upgrade from cursors that held
plain URLs. What the cursor serves goes on: validators, the move, the items' identity.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from feedserver import Feed, FeedServer, Handler, Route, feed_app, redirect, serve
from structlog.testing import capture_logs

from monitor.app import App
from monitor.commands.status import collect_status
from monitor.pipeline import PollOutcome, poll_source
from monitor.store.repo import SourceState
from monitor.text import utc_now

TOKEN, ROTATED, PASSWORD = "tok-4815162342", "tok-1123581321", "pw-s3cret-99"
HOME_URL = "http://reader:${FEED_PW}@{host}/feeds/${TOKEN}/rss?token=${TOKEN}"
ITEMS = (
    b"<?xml version='1.0'?><rss version='2.0'><channel>"
    b"<item><guid>/news/1</guid><title>Pact</title><description>GSOMIA stays.</description>"
    b"</item></channel></rss>"
)


@pytest.fixture
def server() -> Iterator[FeedServer]:
    yield from serve()


@pytest.fixture
def elsewhere() -> Iterator[FeedServer]:
    yield from serve()


def _home(token: str) -> str:
    return f"/feeds/{token}/rss?token={token}"


def _moved(token: str) -> str:
    return f"/v2/{token}/rss?token={token}"


def _private(feed: Feed) -> Route:
    """``feed`` for the reader with PASSWORD only."""
    basic = "Basic " + base64.b64encode(f"reader:{PASSWORD}".encode()).decode()

    def route(handler: Handler) -> None:
        if handler.headers.get("Authorization") != basic:
            handler.answer(401, b"", {"WWW-Authenticate": 'Basic realm="feed"'})
        else:
            feed(handler)

    return route


def _app(tmp_path: Path, url: str, token: str = TOKEN) -> App:
    env = {"TOKEN": token, "FEED_PW": PASSWORD}
    return feed_app(
        tmp_path, [{"name": "wire", "url": url}], [{"name": "pact", "query": "GSOMIA"}], env
    )


def _home_url(server: FeedServer) -> str:
    return HOME_URL.replace("{host}", server.url("").removeprefix("http://"))


def _poll(app: App) -> PollOutcome:
    outcome = poll_source(app, "wire", force=True)
    assert (outcome.ok, outcome.error) == (True, None)
    return outcome


def _at_rest(tmp_path: Path) -> list[dict[str, object]]:
    """The source_state cursors, once the store is closed; the database file's bytes
    (and its WAL's, if any) hold no token and no password, whatever the rows say."""
    for file in tmp_path.glob("db.sqlite*"):
        data = file.read_bytes()
        for secret in (TOKEN, ROTATED, PASSWORD):
            assert secret.encode() not in data, (file.name, secret)
    with sqlite3.connect(tmp_path / "db.sqlite") as db:
        rows = db.execute("SELECT cursor FROM source_state").fetchall()
    for (cursor,) in rows:
        assert not any(s in str(cursor) for s in (TOKEN, ROTATED, PASSWORD)), cursor
    return [json.loads(cursor) for (cursor,) in rows]


@pytest.mark.parametrize("origin", ["same", "other"])
def test_a_feed_s_secrets_stay_out_of_the_database_as_it_moves_and_the_config_follows(
    server: FeedServer, elsewhere: FeedServer, tmp_path: Path, origin: str
) -> None:
    """A first poll, a 301 (to the feed's own server, which is sent the user:password
    too, or to another), a conditional poll where it moved, `monitor status` naming the
    new URL, and the config following it: the database never holds the token or the
    password, and the feed goes on with its items and validators."""
    target = server if origin == "same" else elsewhere
    secured = _private if origin == "same" else (lambda feed: feed)
    server.routes[_home(TOKEN)] = _private(Feed(ITEMS))
    app = _app(tmp_path, _home_url(server))
    try:
        assert 1 == _poll(app).new
    finally:
        app.close()
    _at_rest(tmp_path)

    server.routes[_home(TOKEN)] = redirect(301, target.url(_moved(TOKEN)))
    target.routes[_moved(TOKEN)] = secured(Feed(ITEMS, etag='"v2"'))
    app = _app(tmp_path, _home_url(server))
    try:
        assert 0 == _poll(app).new
        assert 0 == _poll(app).new  # where it moved, with the validators it gave there
        moved_to = collect_status(app.config, app.store, now=utc_now())["sources"][0]["moved_to"]
    finally:
        app.close()
    assert '"v2"' == target.seen[-1].headers.get("If-None-Match")
    assert _moved(TOKEN) == target.seen[-1].path
    assert target.url(_moved(TOKEN)).removeprefix("http://").split("/")[0] in moved_to
    [cursor] = _at_rest(tmp_path)
    assert str(cursor["url"]).endswith("/v2/${TOKEN}/rss?token=${TOKEN}")

    followed = _home_url(target).replace(_home("${TOKEN}"), _moved("${TOKEN}"))
    if origin == "other":
        followed = followed.replace("reader:${FEED_PW}@", "")
    target.routes[_moved(TOKEN)] = secured(Feed(ITEMS + b" ", etag='"v3"'))
    app = _app(tmp_path, followed)
    try:
        with capture_logs() as logs:
            outcome = _poll(app)
        keys = [item.key for item in app.store.items()]
    finally:
        app.close()
    assert 0 == outcome.new  # the same feed, its item known by the key it had
    assert "feed_url_changed" not in [e["event"] for e in logs]
    assert '"v2"' == target.seen[-1].headers.get("If-None-Match")
    assert [f"guid:{server.url('/news/1')}"] == keys  # resolved at its first home
    _at_rest(tmp_path)


def test_a_rotated_token_polls_the_moved_feed_on_without_a_restart(
    server: FeedServer, tmp_path: Path
) -> None:
    """The token changes in the environment: the feed is the same feed, polled where it
    moved with the new token and the validators it had, and neither token is stored."""
    server.routes[_home(TOKEN)] = redirect(301, server.url(_moved(TOKEN)))
    server.routes[_moved(TOKEN)] = _private(Feed(ITEMS))
    app = _app(tmp_path, _home_url(server))
    try:
        _poll(app)
    finally:
        app.close()
    server.routes.clear()
    server.routes[_moved(ROTATED)] = _private(Feed(ITEMS))
    app = _app(tmp_path, _home_url(server), token=ROTATED)
    try:
        with capture_logs() as logs:
            outcome = _poll(app)
    finally:
        app.close()
    assert 0 == outcome.new
    assert "feed_url_changed" not in [e["event"] for e in logs]
    assert [(_moved(ROTATED), '"v1"')] == [
        (seen.path, seen.headers.get("If-None-Match")) for seen in server.seen[-1:]
    ]
    _at_rest(tmp_path)


def test_a_cursor_written_with_plain_urls_goes_on_and_is_rewritten_without_them(
    server: FeedServer, tmp_path: Path
) -> None:
    """After an upgrade, a cursor an earlier version wrote (its URLs as they were, the
    user:password after a move to the same server) is the same feed, polled where it
    moved with its validators, and the next poll writes it without the secrets."""
    server.routes[_moved(TOKEN)] = _private(Feed(ITEMS))
    plain = _home_url(server).replace("${FEED_PW}", PASSWORD).replace("${TOKEN}", TOKEN)
    old = {"configured": plain, "url": plain.replace(_home(TOKEN), _moved(TOKEN)), "etag": '"v1"'}
    app = _app(tmp_path, _home_url(server))
    try:
        app.store.save_source_state(SourceState(name="wire", cursor=old))
    finally:
        app.close()  # in the database file, as an earlier version left it
    assert TOKEN.encode() in (tmp_path / "db.sqlite").read_bytes()
    app = _app(tmp_path, _home_url(server))
    try:
        with capture_logs() as logs:
            outcome = _poll(app)
        cursor = app.store.source_state("wire").cursor
    finally:
        app.close()
    assert 0 == outcome.new  # 304: nothing new, and nothing restarted
    assert "feed_url_changed" not in [e["event"] for e in logs]
    assert [(_moved(TOKEN), '"v1"')] == [
        (seen.path, seen.headers.get("If-None-Match")) for seen in server.seen
    ]
    assert not any(s in json.dumps(cursor) for s in (TOKEN, PASSWORD)), cursor
    _at_rest(tmp_path)  # no trace of the old cursor left in the file either
