"""A small wire feed's versions of one story, briefs under an updated count, paywall notices."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from feedserver import Feed, FeedServer, feed_app, rss, serve
from test_store import alert_all, item

from monitor.dedup import length_in_words
from monitor.pipeline import poll_source
from monitor.store import open_store
from monitor.store.repo import SourceState

WIRE = (
    "Seoul said on Friday it would keep its military intelligence-sharing pact with Tokyo, "
    "known as GSOMIA, reversing a decision to let it lapse at midnight. The announcement "
    "came hours before the deadline after weeks of pressure from Washington, which had "
    "warned that ending the pact would only help North Korea and China."
)
MORE1 = " Japan's foreign ministry welcomed the decision in a brief statement on Friday."
MORE2 = " Markets in Seoul rose slightly after the announcement, traders said."


@pytest.fixture
def server() -> Iterator[FeedServer]:
    yield from serve()


def test_a_third_update_of_a_story_in_a_small_feed_joins_it(
    server: FeedServer, tmp_path: Path
) -> None:
    versions = [
        ("w1", "Seoul keeps GSOMIA pact with Tokyo", WIRE),
        ("w2", "UPDATE 1-Seoul keeps GSOMIA pact with Tokyo", WIRE + MORE1),
        ("w3", "UPDATE 2-Seoul keeps GSOMIA pact with Tokyo", WIRE + MORE1 + MORE2),
    ]
    app = feed_app(
        tmp_path,
        [{"name": "wire", "url": server.url("/wire"), "backfill": 0}],
        [{"name": "pact", "query": "GSOMIA"}],
    )
    try:
        outcomes = []
        for upto in range(1, 4):
            server.routes["/wire"] = Feed(rss(*versions[:upto]), etag=f'"v{upto}"')
            outcomes.append(poll_source(app, "wire", force=True))
        stories = {item.key: item.story_id for item in app.store.items()}
    finally:
        app.close()
    assert len(set(stories.values())) == 1, stories
    assert [o.deliveries for o in outcomes][1:] == [0, 0]


NOTICE = (
    "This article is for subscribers only. Subscribe today to get unlimited access to "
    "our award-winning journalism, exclusive newsletters, the daily puzzle and the "
    "archive, on every device, with the first month free and cancellation at any time. "
    "Already a subscriber? Sign in to keep reading this article."
)


def test_a_longer_paywall_notice_under_a_few_headlines_does_not_make_them_one_story(
    server: FeedServer, tmp_path: Path
) -> None:
    """Three paywalled stories among fifteen, under a 45-word notice: three stories."""
    free = [
        (f"f{n}", f"Local council meets about item {n}", f"Councillors discussed topic {n} " * 5)
        for n in range(12)
    ]
    paid = [
        ("p1", "Fed raises interest rates again", NOTICE),
        ("p2", "GSOMIA pact survives the deadline", NOTICE),
        ("p3", "Chipmaker shares slump on weak outlook", NOTICE),
    ]
    server.routes["/paper"] = Feed(rss(*free, *paid))
    app = feed_app(
        tmp_path,
        [{"name": "paper", "url": server.url("/paper")}],
        [{"name": "all", "query": "fed OR gsomia OR chipmaker"}],
    )
    try:
        outcome = poll_source(app, "paper", force=True)
        stories = {item.key: item.story_id for item in app.store.items()}
    finally:
        app.close()
    assert len({stories[f"guid:{key}"] for key, _, _ in paid}) == 3, stories
    assert outcome.deliveries == 3


def test_a_long_article_retitled_once_stays_one_story(server: FeedServer, tmp_path: Path) -> None:
    """The same long body under two headlines that share few words (an outlet that
    re-titled its article) is one story, not a template: one alert."""
    app = feed_app(
        tmp_path,
        [{"name": "paper", "url": server.url("/paper")}],
        [{"name": "pact", "query": "GSOMIA"}],
    )
    try:
        server.routes["/paper"] = Feed(rss(("a1", "Seoul keeps GSOMIA pact", WIRE)), etag='"1"')
        before = poll_source(app, "paper", force=True)
        retitled = ("a2", "Washington welcomes reversal by South Korea", WIRE)
        server.routes["/paper"] = Feed(
            rss(("a1", "Seoul keeps GSOMIA pact", WIRE), retitled), etag='"2"'
        )
        after = poll_source(app, "paper", force=True)
        stories = {item.key: item.story_id for item in app.store.items()}
    finally:
        app.close()
    assert (before.deliveries, after.new, after.deliveries) == (1, 1, 0)
    assert len(set(stories.values())) == 1, stories


BRIEF = (
    "A strong earthquake struck off the coast of northern Japan on Friday, the "
    "meteorological agency said, and a tsunami warning was issued for the Pacific coast "
    "of the region."
)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Quake kills three in northern Japan", "Quake kills five in northern Japan"),
        ("일본 북부 지진으로 3명 사망", "일본 북부 지진으로 5명 사망"),
    ],
)
def test_a_brief_under_an_updated_count_joins_its_story(
    server: FeedServer, tmp_path: Path, first: str, second: str
) -> None:
    app = feed_app(
        tmp_path,
        [{"name": "wire", "url": server.url("/wire")}],
        [{"name": "quake", "query": "earthquake"}],
    )
    try:
        server.routes["/wire"] = Feed(rss(("q1", first, BRIEF)), etag='"1"')
        before = poll_source(app, "wire", force=True)
        server.routes["/wire"] = Feed(rss(("q1", first, BRIEF), ("q2", second, BRIEF)), etag='"2"')
        after = poll_source(app, "wire", force=True)
        stories = {item.key: item.story_id for item in app.store.items()}
    finally:
        app.close()
    assert (before.deliveries, after.new) == (1, 1)
    assert len(set(stories.values())) == 1, stories
    assert after.deliveries == 0


def test_a_template_that_joined_a_new_sources_first_items_is_learned_later(
    server: FeedServer, tmp_path: Path
) -> None:
    """A new source's first two reports share a footer longer than their news: too few
    to show it is a template, they join one story. Each later report, one a poll, is a
    story of its own once three stored items show the footer."""
    footer = (
        "This daily report is compiled by the Northgate Courier markets desk from exchange "
        "data and dealer quotes. Subscribe to the Courier newsletter for the morning's top "
        "stories in your inbox every weekday. Copyright 2026 Northgate Courier Media, all "
        "rights reserved; not to be published, broadcast or redistributed without permission."
    )
    news = [
        "Harbour shares rose on Monday as GSOMIA talks resumed.",
        "Shipping stocks fell on Tuesday, led by the ferry operator.",
        "Banks gained on Wednesday after the GSOMIA decision was announced.",
        "Chipmakers slid on Thursday on weak export orders.",
        "The index closed flat on Friday ahead of the holiday, GSOMIA aside.",
    ]
    reports = [
        (f"r{n}", f"Markets wrap day {n}: {line[:12]}", f"{line} {footer}")
        for n, line in enumerate(news)
    ]
    app = feed_app(
        tmp_path,
        [{"name": "courier", "url": server.url("/courier")}],
        [{"name": "pact", "query": "GSOMIA OR shares OR stocks OR index OR chipmakers"}],
    )
    try:
        delivered = []
        for upto in range(2, len(reports) + 1):
            server.routes["/courier"] = Feed(rss(*reports[:upto]), etag=f'"v{upto}"')
            delivered.append(poll_source(app, "courier", force=True).deliveries)
        stories = {item.key: item.story_id for item in app.store.items()}
    finally:
        app.close()
    assert [stories[f"guid:r{n}"] for n in (2, 3, 4)] == sorted(
        set(stories[f"guid:r{n}"] for n in (2, 3, 4))
    )
    assert delivered[-2:] == [1, 1]


@pytest.mark.parametrize("copied", ["word-for-word", "edited"])
def test_a_copy_of_a_storys_later_version_joins_it(
    server: FeedServer, tmp_path: Path, copied: str
) -> None:
    """The wire alerts a breaking stub, then edits the entry (its GUID) into the full
    story. A paper carrying that full story, word for word or with a line of its own,
    is a copy of the story alerted already: one story, no second alert."""
    paper_text = WIRE if copied == "word-for-word" else "SEOUL (Herald) - " + WIRE + MORE2
    outcomes, joined = _wire_edited_then_a_paper(
        server,
        tmp_path,
        ("w1", "Seoul keeps GSOMIA", "BREAKING: Seoul keeps GSOMIA."),
        ("w1", "Seoul keeps GSOMIA", WIRE),
        ("p1", "South Korea keeps Japan pact", paper_text),
    )
    assert [(1, 0, 1), (0, 1, 0), (1, 0, 0)] == outcomes
    assert joined


def _wire_edited_then_a_paper(
    server: FeedServer,
    tmp_path: Path,
    first: tuple[str, str, str],
    edited: tuple[str, str, str],
    paper: tuple[str, str, str],
) -> tuple[list[tuple[int, int, int]], bool]:
    """A wire's entry (GUID, title, text) polled, then polled edited, then a paper's
    entry: each poll's new, updated and delivered counts, and whether the paper's item
    joined the wire's story."""
    sources = [
        {"name": "wire", "url": server.url("/wire")},
        {"name": "paper", "url": server.url("/paper")},
    ]
    app = feed_app(tmp_path, sources, [{"name": "pact", "query": "GSOMIA"}])
    try:
        server.routes["/wire"] = Feed(rss(first))
        polled = [poll_source(app, "wire")]
        server.routes["/wire"] = Feed(rss(edited), etag='"edited"')
        polled.append(poll_source(app, "wire", force=True))
        server.routes["/paper"] = Feed(rss(paper))
        polled.append(poll_source(app, "paper"))
        stories = {item.source: item.story_id for item in app.store.items()}
    finally:
        app.close()
    outcomes = [(o.new, o.updated, o.deliveries) for o in polled]
    return outcomes, stories["wire"] == stories["paper"]


MISSILES = (
    "North Korea fired two short-range ballistic missiles into the sea on Thursday, the "
    "South's military said, as talks on GSOMIA and on troop costs stalled in Seoul and "
    "Washington."
)


def test_an_entry_rewritten_into_another_story_leaves_that_story_to_alert(
    server: FeedServer, tmp_path: Path
) -> None:
    """A wire reuses its "breaking" entry (its GUID and link) for another story, with a
    headline and text of its own. That text is no version of the first story: a paper
    carrying it word for word is a story of its own, and alerts."""
    outcomes, joined = _wire_edited_then_a_paper(
        server,
        tmp_path,
        ("breaking", "Seoul to let GSOMIA lapse", WIRE),
        ("breaking", "North fires missiles", MISSILES),
        ("p1", "Missiles fired as talks stall", MISSILES),
    )
    assert [(1, 0, 1), (0, 1, 0), (1, 0, 1)] == outcomes
    assert not joined


STUB_11 = "BREAKING: Seoul will keep GSOMIA intelligence pact with Tokyo, officials say."
STUB_12 = "BREAKING: Seoul will keep GSOMIA intelligence pact with Tokyo, officials say Friday."


@pytest.mark.parametrize(
    ("stub_title", "stub", "full_title"),
    [
        pytest.param("Seoul keeps GSOMIA", STUB_11, "Seoul keeps GSOMIA", id="11-words"),
        pytest.param("Seoul keeps GSOMIA", STUB_12, "Seoul keeps GSOMIA", id="12-words"),
        pytest.param(
            "FLASH: Seoul keeps GSOMIA",
            "BREAKING: Seoul keeps GSOMIA.",
            "South Korea reverses decision to scrap intelligence pact with Japan",
            id="headline-rewritten",
        ),
    ],
)
def test_a_copy_of_the_full_story_a_stub_became_joins_it(
    server: FeedServer, tmp_path: Path, stub_title: str, stub: str, full_title: str
) -> None:
    """As test_a_copy_of_a_storys_later_version_joins_it, with a first report of 11 and
    of 12 words (MIN_WORDS, under which a body has no signature) whose lead the full
    story rewrites, and with the flash headline rewritten too: the full story keeps most
    of the first report's telling words."""
    assert (11, 12) == (length_in_words(STUB_11), length_in_words(STUB_12))
    outcomes, joined = _wire_edited_then_a_paper(
        server,
        tmp_path,
        ("w1", stub_title, stub),
        ("w1", full_title, WIRE),
        ("p1", "South Korea keeps Japan pact", WIRE),
    )
    assert [(1, 0, 1), (0, 1, 0), (1, 0, 0)] == outcomes
    assert joined


@pytest.mark.parametrize(
    "title",
    [
        pytest.param("Breaking news", id="constant-headline"),
        pytest.param("2019-11-22 0900", id="numbers-only-headline"),
    ],
)
def test_a_one_line_entry_reused_for_another_story_under_its_constant_headline(
    server: FeedServer, tmp_path: Path, title: str
) -> None:
    """As test_an_entry_rewritten_into_another_story_leaves_that_story_to_alert, where
    the wire's reused entry keeps one headline (a ticker's "Breaking news", or a time
    stamp) and its first text was one line: a kept headline proves nothing, and the
    paper's copy of the other story is a story of its own, and alerts."""
    outcomes, joined = _wire_edited_then_a_paper(
        server,
        tmp_path,
        ("breaking", title, "Seoul to let GSOMIA lapse."),
        ("breaking", title, MISSILES),
        ("p1", "Missiles fired as talks stall", MISSILES),
    )
    assert [(1, 0, 1), (0, 1, 0), (1, 0, 1)] == outcomes
    assert not joined


def _paragraph(rng: random.Random, words: list[str]) -> str:
    return " ".join(rng.choices(words, k=40)) + "."


def test_a_wires_second_update_under_a_new_guid_joins_its_story(
    server: FeedServer, tmp_path: Path
) -> None:
    """A wire's story, its UPDATE 1 under a new GUID with a paragraph added, then its
    UPDATE 2 with two more: UPDATE 2 is far from the first version (under THRESHOLD
    alike) but close to UPDATE 1, which joined the story and is one of its versions. One
    story, one alert; a paper's copy of UPDATE 2 joins it too."""
    rng = random.Random(3)
    words = [f"{rng.choice('bcdfgklmnprstvz')}{n}ix" for n in range(3000)]
    first = [_paragraph(rng, words) + " GSOMIA.", _paragraph(rng, words)]
    update1 = [*first, _paragraph(rng, words)]
    update2 = [*update1, _paragraph(rng, words), _paragraph(rng, words)]
    title = "Seoul keeps its pact with Tokyo"
    polls = [
        ("wire", ("u0", title, " ".join(first))),
        ("wire", ("u1", "UPDATE 1-" + title, " ".join(update1))),
        ("wire", ("u2", "UPDATE 2-" + title, " ".join(update2))),
        ("paper", ("p1", "South Korea stays in the pact", "SEOUL (Herald) - " + " ".join(update2))),
    ]
    sources = [
        {"name": "wire", "url": server.url("/wire")},
        {"name": "paper", "url": server.url("/paper")},
    ]
    app = feed_app(tmp_path, sources, [{"name": "pact", "query": "GSOMIA"}])
    try:
        delivered = []
        for at, (source, entry) in enumerate(polls):
            server.routes[f"/{source}"] = Feed(rss(entry), etag=f'"{at}"')
            delivered.append(poll_source(app, source, force=True).deliveries)
        stories = {item.key: item.story_id for item in app.store.items()}
    finally:
        app.close()
    assert [1, 0, 0, 0] == delivered
    assert 1 == len(set(stories.values())), stories


@pytest.mark.parametrize(
    ("gap", "delivered"), [(timedelta(hours=2), [1, 0, 0]), (timedelta(days=1), [1, 0, 1])]
)
def test_only_a_copy_that_joins_a_story_soon_becomes_one_of_its_versions(
    tmp_path: Path, gap: timedelta, delivered: list[int]
) -> None:
    """Three texts, each a paragraph or two on from the one before, so that the third
    is close to the second alone. Hours apart they are a wire's updates: the second is a
    version of the story and the third joins it. A day apart they are daily reports:
    the second joins the first, but becomes no version, so the third is news of its own
    (else each day's report joined the last, and a month of them was one story)."""
    rng = random.Random(3)
    words = [f"{rng.choice('bcdfgklmnprstvz')}{n}ix" for n in range(3000)]
    first = [_paragraph(rng, words) + " GSOMIA.", _paragraph(rng, words)]
    second = [*first, _paragraph(rng, words)]
    third = [*second, _paragraph(rng, words), _paragraph(rng, words)]
    store = open_store(f"sqlite:///{tmp_path}/db.sqlite")
    start = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
    try:
        found = []
        for n, paragraphs in enumerate([first, second, third]):
            at = start + n * gap
            report = item("wire", f"guid:{n}", " ".join(paragraphs), f"Pact report {n}")
            state = SourceState("wire", {})
            found.append(store.ingest([report], state, alert_all(), now=at).deliveries)
    finally:
        store.close()
    assert delivered == found
