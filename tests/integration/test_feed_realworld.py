"""Real-world feeds over real HTTP, polled into the store: our stored titles, links and
dates agree with rss-parser's expected outputs for the same captures."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin

import pytest
from feedserver import Feed, FeedServer, feed_app, serve

from monitor.app import App
from monitor.model import StoredItem
from monitor.pipeline import poll_source
from monitor.text import canonical_url, one_line

DATA = Path(__file__).parents[1] / "data" / "feeds"
RSS_PARSER = DATA / "rss-parser" / "test"
NOW = datetime(2030, 1, 1, tzinfo=UTC)
# Upstream served encoding.rss as Latin-1 (and its expected file is Latin-1 too).
LATIN1 = {"encoding"}
# Upstream read this Latin-1 feed as UTF-8: every accented letter is U+FFFD there.
MISREAD = {"uolNoticias"}


def _captures() -> list[Path]:
    return sorted(
        path
        for path in (RSS_PARSER / "input").iterdir()
        if (RSS_PARSER / "output" / f"{path.stem}.json").exists()
    )


@pytest.fixture(scope="module")
def server() -> Iterator[FeedServer]:
    yield from serve()


@pytest.fixture(scope="module")
def polled(
    server: FeedServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[App, FeedServer]]:
    """Every capture served and polled once into one store."""
    sources = []
    for path in [*_captures(), RSS_PARSER / "input" / "unrecognized.rss"]:
        kind = "atom" if path.suffix == ".atom" else "rss"
        charset = "ISO-8859-1" if path.stem in LATIN1 else "utf-8"
        server.routes[f"/{path.name}"] = Feed(
            path.read_bytes(), content_type=f"application/{kind}+xml; charset={charset}"
        )
        sources.append({"name": path.stem, "url": server.url(f"/{path.name}")})
    app = feed_app(tmp_path_factory.mktemp("realworld"), sources, [{"name": "x", "query": "x"}])
    for source in sources:
        poll_source(app, source["name"], now=NOW)
    yield app, server
    app.close()


def _expected_items(name: str) -> list[dict[str, str]]:
    raw = (RSS_PARSER / "output" / f"{name}.json").read_bytes()
    document = json.loads(raw.decode("latin-1" if name in LATIN1 else "utf-8"))
    items: list[dict[str, str]] = document["feed"]["items"]
    return items


def _misread_matches(misread: str, title: str) -> bool:
    """Each U+FFFD stood for one Latin-1 letter or a no-break space (now a space)."""
    pattern = "".join("(?:[^\x00-\x7f]| )" if ch == "\ufffd" else re.escape(ch) for ch in misread)
    return re.fullmatch(pattern, title) is not None


@pytest.mark.parametrize("capture", _captures(), ids=lambda path: path.stem)
def test_stored_items_agree_with_rss_parser(polled: tuple[App, FeedServer], capture: Path) -> None:
    app, server = polled
    name = capture.stem
    stored = list(app.store.items(source=name))
    feed_url = server.url(f"/{capture.name}")
    by_url: dict[str | None, StoredItem] = {item.url: item for item in stored}
    expected = _expected_items(name)
    assert "healthy" == app.store.source_state(name).health
    for want in expected:
        url = canonical_url(urljoin(feed_url, want["link"])) if want.get("link") else None
        got = by_url[url] if url in by_url else _only_item_titled(stored, want.get("title"))
        if name in MISREAD:
            assert _misread_matches(one_line(want["title"]), got.title), got.title
        elif "title" in want:
            assert one_line(want["title"]) == got.title
        when = want.get("isoDate")
        assert (datetime.fromisoformat(when.replace("Z", "+00:00")) if when else NOW) == (
            got.published
        )
    distinct = {(w.get("guid") or w.get("id") or w.get("link"), w.get("title")) for w in expected}
    assert len(distinct) == len(stored)


def _only_item_titled(stored: list[StoredItem], title: str | None) -> StoredItem:
    [item] = [item for item in stored if title is None or item.title == one_line(title)]
    return item


def test_a_document_that_is_not_a_feed_marks_its_source_unhealthy(
    polled: tuple[App, FeedServer],
) -> None:
    app, _server = polled
    state = app.store.source_state("unrecognized")
    assert "degraded" == state.health
    assert state.last_error is not None
    assert "not a feed" in state.last_error
    healthy = [s.name for s in app.store.source_states() if s.health == "healthy"]
    assert len(_captures()) == len(healthy)
