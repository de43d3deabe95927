"""An RSS, Atom or JSON Feed over HTTP, polled politely.

The cursor carries what the next poll needs: the validators for a conditional GET
(ETag, Last-Modified), and the URL the feed now lives at after a permanent redirect,
together with the configured URL it came from (so editing the config starts afresh,
unless the config now names the URL the feed moved to: ``home`` then keeps the URL its
items' identity is resolved against). Its URLs are kept without user:password or the
secrets the config took from the environment (see monitor.sources.cursorurls).
A feed that fails where it moved is asked for at its configured URL in the same poll (a
move the site undid). A 304 is a success with nothing new; 429/503 raise SourceError
with the server's Retry-After; a Cache-Control max-age becomes the earliest next poll
(``not_before``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager, suppress
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import structlog

from monitor.config import FeedSourceConfig
from monitor.cpu import CPU_WORK
from monitor.errors import SourceError
from monitor.model import Entry, FetchResult
from monitor.sources.cursorurls import CursorUrls
from monitor.sources.entrynames import without_shared_names
from monitor.sources.feedparse import parse_feed
from monitor.sources.http import (
    HttpPool,
    Limits,
    Response,
    max_age,
    retry_after,
    without_userinfo,
)
from monitor.sources.xmlroot import checked_text, closes, root_element
from monitor.text import display_url, utc_now

log = structlog.get_logger("monitor.sources.feed")

THROTTLED = frozenset({429, 503})
# The cursor's keys for a conditional GET, and the request headers that send them.
_ASKED_BY = {"etag": "If-None-Match", "last_modified": "If-Modified-Since"}
_VALIDATORS = tuple(_ASKED_BY)


class FeedSource:
    """A feed at ``config.url``; requests go through ``pool`` (the shared one by default).
    ``secrets`` (each ``${NAME}`` of the config's environment and its value) never reach
    the cursor as values."""

    def __init__(
        self,
        config: FeedSourceConfig,
        pool: HttpPool | None = None,
        *,
        secrets: Mapping[str, str] | None = None,
    ) -> None:
        self.name = config.name
        self.config = config
        self.urls = CursorUrls(config.url, secrets or {})
        self.pool = pool or HttpPool.shared()
        self.limits = Limits(
            connect_timeout=config.connect_timeout.total_seconds(),
            read_timeout=config.read_timeout.total_seconds(),
            total_timeout=config.timeout.total_seconds(),
            max_bytes=config.max_bytes,
            max_redirects=config.max_redirects,
        )

    def host_turn(self, cursor: dict[str, Any], wait: float) -> AbstractContextManager[bool]:
        """A turn at the host the next poll with ``cursor`` requests, if one frees within
        ``wait`` seconds (see HttpPool.host_turn)."""
        return self.pool.host_turn(self.next_url(cursor), wait)

    def next_url(self, cursor: dict[str, Any]) -> str:
        """The URL a poll with ``cursor`` requests (see ``polled_url``)."""
        return polled_url(self.urls, cursor)

    def fetch(self, cursor: dict[str, Any]) -> FetchResult:
        url = self.next_url(cursor)
        started = time.monotonic()
        try:
            return self._fetch(url, cursor, self.limits)
        except SourceError as exc:
            left = self.limits.total_timeout - (time.monotonic() - started)
            if url == self.config.url or exc.retry_after is not None or left <= 0:
                raise
            # Where the feed moved fails: the move may have been undone (the configured
            # URL a feed again, the new one gone). Asked there, in the time left, it is
            # polled there from now on, or moves on again by its redirects; else the
            # failure stands, as the new home's.
            log.warning("feed_new_home_failed", new_url=display_url(url), error=str(exc))
            with suppress(SourceError):
                return self._fetch(
                    self.config.url, _unmoved(cursor), replace(self.limits, total_timeout=left)
                )
            raise

    def _fetch(self, url: str, cursor: dict[str, Any], limits: Limits) -> FetchResult:
        cursor, restarted = self._for_config(cursor)
        response = self.pool.get(
            url,
            self.config.headers,
            limits,
            validators=_conditional(cursor),
            credentials_for=self.config.url,  # not the server it moved to
        )
        now = utc_now()  # max-age and Retry-After count from the answer
        if response.moved_to:
            log.warning(
                "feed_moved", old_url=display_url(url), new_url=display_url(response.moved_to)
            )
        polled = response.moved_to or url
        next_cursor = {
            "configured": self.urls.stored(self.config.url),
            "url": self.urls.stored(polled),
        }
        if "home" in cursor:
            next_cursor["home"] = self.urls.stored(cursor["home"])
        floor = max_age(response.headers)
        not_before = now + timedelta(seconds=floor) if floor else None
        if response.status == 304:
            log.info("feed_not_modified")
            return FetchResult([], {**next_cursor, **_kept(cursor, response)}, True, not_before)
        if response.status in THROTTLED:
            wait = retry_after(response.headers, now)
            raise SourceError(
                f"feed: HTTP {response.status} from {display_url(response.url)}"
                + (f", retry after {math.ceil(wait)}s" if wait is not None else ""),
                retry_after=wait,
            )
        if not 200 <= response.status < 300:
            raise SourceError(f"feed: HTTP {response.status} from {display_url(response.url)}")
        # Polled elsewhere than the URL its items are named after: moved, or followed.
        moved = not self.urls.same(polled, self.config.url) or "home" in cursor
        with CPU_WORK:
            _check_whole(response)
            entries = self._parse(response, base_url=response.url)
            if moved and entries:
                home = without_userinfo(self.urls.revealed(cursor.get("home") or self.config.url))
                entries = self._named_at_home(response, entries, home)
            if self.config.identity == "auto":
                entries = without_shared_names(entries)
        log.info(
            "feed_fetched", status=response.status, size=len(response.body), entries=len(entries)
        )
        return FetchResult(
            entries,
            {**next_cursor, **_validators(response.headers)},
            not_before=not_before,
            restarted=restarted,
        )

    def _for_config(self, cursor: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """The cursor to poll with, and whether the feed starts afresh. A config naming
        another URL than the cursor's restarts it; one naming the URL the feed moved to
        (as `monitor status` advises) goes on, and its items keep the identity they had
        at the feed's first home (``home``, see ``_named_at_home``)."""
        configured = cursor.get("configured")
        if configured is None or self.urls.same(configured, self.config.url):
            return cursor, False
        old_url, new_url = display_url(configured), display_url(self.config.url)
        if self.urls.same(cursor.get("url") or configured, self.config.url):
            log.info("feed_url_followed", old_url=old_url, new_url=new_url)
            return {**cursor, "home": cursor.get("home") or configured}, False
        log.info("feed_url_changed", old_url=old_url, new_url=new_url)
        return {}, True

    def _parse(self, response: Response, *, base_url: str) -> list[Entry]:
        return parse_feed(
            response.body,
            display_url(response.url),
            content_type=response.headers.get("content-type"),
            base_url=base_url,
        )

    def _named_at_home(self, response: Response, entries: list[Entry], home: str) -> list[Entry]:
        """A moved feed's entries, their identity resolved against ``home``: its
        configured URL, or the one configured before the config followed its move.

        Relative GUIDs and links resolve against where the feed was fetched from, so after
        a permanent move (another server, http to https, a new path) the items stored
        before it would get new keys: stored again and, when too short to be known as a
        copy, alerted again. Their identity stays what it was at the feed's first home;
        the links shown point to where it lives now. The document is parsed twice, only
        for a feed that moved and only when it changed. (An earlier version keyed them
        against the new URL: the store looks for that key too, ``Item.other_keys``.)
        """
        named_at_home = self._parse(response, base_url=home)
        return [
            replace(entry, key_names=names, former_names=(entry.guid, entry.link))
            if (names := (at_home.guid, at_home.link)) != (entry.guid, entry.link)
            else entry
            for entry, at_home in zip(entries, named_at_home, strict=True)
        ]


def polled_url(urls: CursorUrls, cursor: dict[str, Any]) -> str:
    """The URL a poll of the feed configured at ``urls.configured`` requests with
    ``cursor``: where the feed moved, unless the config now names another URL than the
    one it moved from (see ``FeedSource._for_config``); the configured URL itself when
    the feed is polled there."""
    moved_to, configured = cursor.get("url"), cursor.get("configured")
    if not moved_to or urls.same(moved_to, urls.configured):
        return urls.configured
    if configured is None or urls.same(configured, urls.configured):
        return urls.restored(moved_to)
    return urls.configured


def _check_whole(response: Response) -> None:
    """Refuse an XML body that stops inside its root element: cut short (see
    monitor.sources.xmlroot), it is polled again rather than stored in part."""
    text = checked_text(response.body)
    root = root_element(text) if text is not None else None
    if text is not None and root is not None and not closes(text, root):
        raise SourceError(
            f"{display_url(response.url)}: cut short: the feed document ends before"
            " its root element does"
        )


def _unmoved(cursor: dict[str, Any]) -> dict[str, Any]:
    """``cursor`` for a request to the configured URL of a feed that moved: without the
    URL it moved to and that URL's validators."""
    return {key: value for key, value in cursor.items() if key not in ("url", *_VALIDATORS)}


def _conditional(cursor: dict[str, Any]) -> dict[str, str]:
    """The cursor's validators as request headers, those a header can carry: a server's
    ETag or Last-Modified outside ASCII would fail every request (httpx encodes headers
    in ASCII), and the failed polls keep the cursor that holds it."""
    found = {header: str(cursor.get(key) or "") for key, header in _ASKED_BY.items()}
    return {header: value for header, value in found.items() if value and value.isascii()}


def _kept(cursor: dict[str, Any], response: Response) -> dict[str, Any]:
    """The validators after a 304: those it answered with, and the cursor's it did not
    replace (RFC 9111 4.3.4), unless the feed moved: its old URL's stay behind."""
    kept = {} if response.moved_to else cursor
    old: dict[str, Any] = {key: kept[key] for key in _VALIDATORS if key in kept}
    return {**old, **_validators(response.headers)}


def _validators(headers: httpx.Headers) -> dict[str, str]:
    found = {"etag": headers.get("etag"), "last_modified": headers.get("last-modified")}
    return {key: value for key, value in found.items() if value}
