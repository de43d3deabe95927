"""gofeed's translator cases (RSS 0.9x to 2.0, Atom 0.3 and 1.0, JSON Feed 1.0 and 1.1),
each served by a real HTTP server on 127.0.0.1 as its own source and polled in one
`run --once` pass: the stored titles and links are the ones gofeed expects."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from feedserver import Feed, FeedServer, feed_app, serve
from gofeed_cases import translator_pairs

from monitor.commands.run import run_once
from monitor.text import canonical_url, one_line

CONTENT_TYPES = {".xml": "application/xml", ".json": "application/feed+json"}


@pytest.fixture
def server() -> Iterator[FeedServer]:
    yield from serve()


def _expected(path: Path) -> tuple[int, set[tuple[str, str | None]]]:
    """How many items gofeed finds, and (title, canonical link) of those with a title
    (for the others, the store makes one from the text)."""
    items = json.loads(path.read_text()).get("items", [])
    titled = {
        (one_line(item["title"]), canonical_url(item["link"]) if item.get("link") else None)
        for item in items
        if one_line(item.get("title", ""))
    }
    return len(items), titled


def test_every_translator_case_over_http(server: FeedServer, tmp_path: Path) -> None:
    cases = {f"case{n:03d}": pair for n, pair in enumerate(translator_pairs())}
    for name, (document, _) in cases.items():
        server.routes[f"/{name}"] = Feed(
            document.read_bytes(), content_type=CONTENT_TYPES[document.suffix]
        )
    sources = [{"name": name, "url": server.url(f"/{name}")} for name in cases]
    app = feed_app(tmp_path, sources, [])
    try:
        outcomes, _ = run_once(app)
        stored: dict[str, set[tuple[str, str | None]]] = {name: set() for name in cases}
        counts = dict.fromkeys(cases, 0)
        for item in app.store.items():
            stored[item.source].add((item.title, item.url))
            counts[item.source] += 1
    finally:
        app.close()
    failed = {o.source: (cases[o.source][0].name, o.error) for o in outcomes if not o.ok}
    assert {} == failed
    wrong = {}
    for name, (document, expected_file) in cases.items():
        count, titled = _expected(expected_file)
        if count != counts[name] or not titled <= stored[name]:
            wrong[document.name] = (count, sorted(titled), counts[name], sorted(stored[name]))
    assert {} == wrong
