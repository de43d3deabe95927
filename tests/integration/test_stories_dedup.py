"""Story-level dedup across sources: syndicated copies share one story, alert once per
watch-list, credit the other outlets, and are recognised after a restart."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from feedserver import Feed, FeedServer, feed_app, rss, serve

from monitor.app import build_app
from monitor.config import load_config
from monitor.dedup import normalised_words
from monitor.model import Entry
from monitor.normalise import normalise_entry
from monitor.pipeline import poll_source
from monitor.store import open_store
from monitor.store.repo import SourceState
from monitor.stories import VERSION_SPAN, distinctive_headline

WIRE = (
    "Seoul said on Friday it would keep its military intelligence-sharing pact with Tokyo, "
    "known as GSOMIA, reversing a decision to let it lapse at midnight. The announcement "
    "came hours before the deadline after weeks of pressure from Washington, which had "
    "warned that ending the pact would only help North Korea and China."
)
WATCHLISTS = [{"name": "pact", "query": "GSOMIA"}]


@pytest.fixture
def server() -> Iterator[FeedServer]:
    yield from serve()


def test_items_sharing_a_boilerplate_body_are_stories_of_their_own(
    server: FeedServer, tmp_path: Path
) -> None:
    """A feed whose every description is a "Comments" link, and another outlet's item
    with no text but a headline: none is a copy of another, and each match alerts."""
    comments = "&lt;a href='http://news.test/c'&gt;Comments&lt;/a&gt;"
    server.routes["/board"] = Feed(
        rss(
            ("h1", "Python 3.14 released", comments),
            ("h2", "Why Python packaging is hard", comments),
            ("h3", "A new Rust edition", comments),
        )
    )
    server.routes["/other"] = Feed(rss(("o1", "Python 3.14 released", "")))
    sources = [
        {"name": "board", "url": server.url("/board")},
        {"name": "other", "url": server.url("/other")},
    ]
    app = feed_app(tmp_path, sources, [{"name": "py", "query": "python"}])
    try:
        board = poll_source(app, "board")
        other = poll_source(app, "other")
        stories = {item.story_id for item in app.store.items()}
    finally:
        app.close()
    assert (3, 2, 2) == (board.new, board.matches, board.deliveries)
    assert (1, 1) == (other.new, other.deliveries)
    assert 4 == len(stories)


def test_syndicated_copies_alert_once_and_credit_the_other_outlets(
    server: FeedServer, tmp_path: Path
) -> None:
    server.routes["/wire"] = Feed(rss(("w1", "Seoul keeps GSOMIA", WIRE)))
    server.routes["/paper"] = Feed(
        rss(
            (
                "p7",
                "South Korea reverses course on Japan pact",
                f"SEOUL (Daily) - {WIRE} Read more.",
            ),
            ("p8", "Other news", "Rain is expected across the south of the country tomorrow."),
        )
    )
    sources = [
        {"name": "wire", "url": server.url("/wire")},
        {"name": "paper", "url": server.url("/paper")},
    ]
    app = feed_app(tmp_path, sources, WATCHLISTS)
    try:
        wire = poll_source(app, "wire")
        paper = poll_source(app, "paper")
        items = {item.source + ":" + item.key: item for item in app.store.items()}
    finally:
        app.close()
    original, copy = items["wire:guid:w1"], items["paper:guid:p7"]
    assert original.story_id == copy.story_id
    assert items["paper:guid:p8"].story_id != original.story_id
    assert (1, 1) == (wire.deliveries, wire.matches)
    assert (2, 0, 0) == (paper.new, paper.matches, paper.deliveries)
    store = open_store(f"sqlite:///{tmp_path}/db.sqlite")
    try:
        assert ["paper"] == store.other_outlets(original.story_id, original.id)
    finally:
        store.close()

    # Another process, a third outlet: the story is still known (bands live in the DB).
    server.routes["/late"] = Feed(rss(("l1", "Japan pact survives", f"{WIRE} (Agencies)")))
    app = feed_app(tmp_path, [*sources, {"name": "late", "url": server.url("/late")}], WATCHLISTS)
    try:
        late = poll_source(app, "late")
        [stored] = list(app.store.items(source="late"))
        credited = app.store.other_outlets(stored.story_id, stored.id)
    finally:
        app.close()
    assert (1, 0) == (late.new, late.deliveries)
    assert original.story_id == stored.story_id
    assert ["paper", "wire"] == credited


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = normalised_words(text)
    return {tuple(words[i : i + 3]) for i in range(len(words) - 2)}


def _syndicate(title: str, body: str, rng: random.Random) -> tuple[str, str]:
    """How outlets republish a wire story: a new headline, a dateline, a dropped last
    paragraph or an added tag line, and house style on a few words."""
    paragraphs = [p for p in body.split("\n\n") if p.strip()]
    if len(paragraphs) > 3 and rng.random() < 0.5:
        paragraphs = paragraphs[:-1]
    text = "\n\n".join(paragraphs)
    text = re.sub(r"\bpct\b", "percent", text)
    text = re.sub(r"\bmln\b", "million", text)
    tail = rng.choice(["", " (Reporting by the wire desk)", " Copyright the wire service."])
    return f"{title.title()} - report", f"LONDON (Agencies) - {text}{tail}"


Article = dict[str, str]


def _articles(corpus: Path) -> list[Article]:
    lines = (corpus / "news" / "articles.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def _stories(tmp_path: Path, sources: dict[str, list[tuple[str, str, str]]]) -> dict[str, int]:
    """Each source's (id, title, body) stored as a poll of it, in order; the story of
    each item by "source:id"."""
    now = datetime(2026, 11, 27, tzinfo=UTC)
    store = open_store(f"sqlite:///{tmp_path}/db.sqlite")
    try:
        for source, articles in sources.items():
            items = [
                normalise_entry(
                    source, Entry(title=title, content=body, guid=id), identity="auto", now=now
                )
                for id, title, body in articles
            ]
            store.ingest(items, SourceState(source, {}), lambda _ingested: [], now=now)
        return {f"{i.source}:{i.key.removeprefix('guid:')}": i.story_id for i in store.items()}
    finally:
        store.close()


@pytest.mark.corpus
def test_near_duplicates_on_reuters_articles(corpus: Path, tmp_path: Path) -> None:
    """Copies of 400 Reuters stories join their original's story; any two originals
    that end up together are real near-duplicates (Reuters re-sent some stories)."""
    rng = random.Random(4)
    articles = _articles(corpus)
    chosen = rng.sample([a for a in articles if 80 <= len(a["body"].split()) <= 800], 400)
    originals = [(a["id"], a["title"], a["body"]) for a in chosen]
    copies = [(a["id"], *_syndicate(a["title"], a["body"], rng)) for a in chosen]
    story = _stories(tmp_path, {"reuters": originals, "outlet": copies})
    joined = sum(story[f"reuters:{a['id']}"] == story[f"outlet:{a['id']}"] for a in chosen)
    assert joined >= 0.975 * len(chosen)
    by_story: dict[int, list[Article]] = {}
    for article in chosen:
        by_story.setdefault(story[f"reuters:{article['id']}"], []).append(article)
    for together in by_story.values():
        for other in together[1:]:
            first, second = _shingles(together[0]["body"]), _shingles(other["body"])
            assert len(first & second) / len(first | second) > 0.3, (together[0]["id"], other["id"])


@pytest.mark.corpus
def test_stories_reuters_sent_twice_are_one_and_same_headlines_are_not(
    corpus: Path, tmp_path: Path
) -> None:
    """Real pairs: stories Reuters sent again under the same headline, edited (body
    3-word-shingle Jaccard from 0.5 to under 1), join one story; pairs of different
    stories under one recurring headline (Jaccard under 0.15) never do."""
    by_title = _by_headline(_articles(corpus))
    resent: list[tuple[Article, Article]] = []
    different: list[tuple[Article, Article]] = []
    for group in by_title.values():
        for first, second in zip(group[::2], group[1::2], strict=False):  # disjoint pairs
            a, b = _shingles(first["body"]), _shingles(second["body"])
            similarity = len(a & b) / len(a | b) if a and b else 0.0
            if 0.5 <= similarity < 1:
                resent.append((first, second))
            elif similarity < 0.15 and a and b:
                different.append((first, second))
    pairs = resent + different
    story = _stories(
        tmp_path,
        {
            "first": [(a["id"], a["title"], a["body"]) for a, _ in pairs],
            "again": [(b["id"], b["title"], b["body"]) for _, b in pairs],
        },
    )

    def together(pair: tuple[Article, Article]) -> bool:
        return story[f"first:{pair[0]['id']}"] == story[f"again:{pair[1]['id']}"]

    assert len(resent) > 100
    assert len(different) > 20
    assert sum(map(together, resent)) >= 0.95 * len(resent)
    assert [] == [(a["id"], b["id"]) for a, b in different if together((a, b))]


def _replay(tmp_path: Path, events: list[tuple[datetime, str, str, str, str]]) -> dict[str, int]:
    """Each (time, source, id, title, body), in time order, stored as a poll of its source
    at that time; the story of each item by "source:id"."""
    store = open_store(f"sqlite:///{tmp_path}/db.sqlite")
    try:
        for when, source, id, title, body in sorted(events):
            entry = Entry(title=title, content=body, guid=id)
            item = normalise_entry(source, entry, identity="auto", now=when)
            store.ingest([item], SourceState(source, {}), lambda _ingested: [], now=when)
        return {f"{i.source}:{i.key.removeprefix('guid:')}": i.story_id for i in store.items()}
    finally:
        store.close()


def _published(article: Article) -> datetime:
    return datetime.fromisoformat(article["published"]).replace(tzinfo=UTC)


def _by_headline(articles: Iterable[Article]) -> dict[str, list[Article]]:
    """The articles under each headline (its normalised words), in the order given."""
    by_title: dict[str, list[Article]] = {}
    for article in articles:
        by_title.setdefault(" ".join(normalised_words(article["title"])), []).append(article)
    return by_title


def _dated_by_headline(corpus: Path) -> dict[str, list[Article]]:
    """The dated articles under each headline, oldest first."""
    return _by_headline(sorted((a for a in _articles(corpus) if a["published"]), key=_published))


def _telling_another_story(
    by_title: dict[str, list[Article]],
) -> list[tuple[list[Article], Article]]:
    """Each later article under a shared headline that tells another story than the
    first, with the articles under that headline."""
    return [
        (group, a)
        for group in by_title.values()
        for a in group[1:]
        if _different_stories(group[0], a)
    ]


def _different_stories(first: Article, second: Article) -> bool:
    """Two articles under one headline that tell different stories: under 0.15 alike by
    3-shingles, neither holding half of the other's, and different first six words (a
    flash and its full story, or a take resent with a garbled table, tell one)."""
    a, b = _shingles(first["body"]), _shingles(second["body"])
    if not a or not b:
        return False
    shared = len(a & b)
    leads = [normalised_words(article["body"])[:6] for article in (first, second)]
    return (
        shared < 0.15 * len(a | b) and shared < 0.5 * min(len(a), len(b)) and leads[0] != leads[1]
    )


@pytest.mark.corpus
def test_notices_under_reuters_headlines_join_only_the_story_told_under_them(
    corpus: Path, tmp_path: Path
) -> None:
    """Reuters' headlines, each article at its own time. Of every headline several
    articles share, the first is told in full by the wire and each later one comes only
    as a paper's paywall notice (the worst case: never told in full anywhere): no notice
    of a story other than the first joins the first's story, though some come within
    hours. And under 300 distinctive headlines of one article each, a notice two hours
    after the story in full, or the story two hours after its notice, joins it."""
    by_title = _dated_by_headline(corpus)
    events = []
    for group in (g for g in by_title.values() if len(g) > 1):
        first = group[0]
        events.append((_published(first), "wire", first["id"], first["title"], first["body"]))
        events += [(_published(a), "paper", a["id"], a["title"], NOTICE) for a in group[1:]]
    alone = [g[0] for g in by_title.values() if len(g) == 1 and distinctive_headline(g[0]["title"])]
    chosen = random.Random(6).sample(alone, 300)
    later = timedelta(hours=2)
    for at, article in enumerate(chosen):
        when, id, title = _published(article), article["id"], article["title"]
        notice_at, story_at = (when + later, when) if at % 2 else (when, when + later)
        events.append((story_at, "wire", id, title, article["body"]))
        events.append((notice_at, "paper", id, title, NOTICE))
    story = _replay(tmp_path, events)

    def joined(first: Article, notice: Article) -> bool:
        return story[f"wire:{first['id']}"] == story[f"paper:{notice['id']}"]

    different = [(group[0], a) for group, a in _telling_another_story(by_title)]
    soon = [(f, a) for f, a in different if _published(a) - _published(f) <= VERSION_SPAN]
    assert len(different) > 20
    assert len(soon) >= 5
    assert [] == [(f["id"], a["id"]) for f, a in different if joined(f, a)]
    for order in (0, 1):
        pairs = chosen[order::2]
        assert sum(joined(a, a) for a in pairs) >= 0.95 * len(pairs)


@pytest.mark.corpus
def test_papers_notices_under_reuters_headlines_join_only_their_own_story(
    corpus: Path, tmp_path: Path
) -> None:
    """Reuters' headlines, each article at its own time, and every article under a
    headline several share comes only as a paper's paywall notice (three papers in turn,
    each with its own notice), the first's full text from the wire two hours later: no
    notice of another story joins the first's notice or its full text, though some come
    within hours. And under 300 distinctive headlines of one article each, two papers'
    notices an hour apart and the story in full an hour later are one story."""
    notices = [NOTICE, SHORT_NOTICE, "This content is for subscribers. Log in to read on."]
    by_title = _dated_by_headline(corpus)
    hour = timedelta(hours=1)
    events = []
    for group in (g for g in by_title.values() if len(g) > 1):
        first = group[0]
        events.append((_published(first) + 2 * hour, "wire", *_told(first)))
        for turn, a in enumerate(group):
            events.append(
                (_published(a), f"paper{turn % 3}", a["id"], a["title"], notices[turn % 3])
            )
    alone = [g[0] for g in by_title.values() if len(g) == 1 and distinctive_headline(g[0]["title"])]
    chosen = random.Random(7).sample(alone, 300)
    for article in chosen:
        when, id, title = _published(article), article["id"], article["title"]
        events.append((when, "paper0", id, title, notices[0]))
        events.append((when + hour, "paper1", id, title, notices[1]))
        events.append((when + 2 * hour, "wire", *_told(article)))
    story = _replay(tmp_path, events)

    def paper(article: Article, group: list[Article]) -> str:
        return f"paper{group.index(article) % 3}:{article['id']}"

    different = _telling_another_story(by_title)
    soon = [(g, a) for g, a in different if _published(a) - _published(g[0]) <= VERSION_SPAN]
    assert len(different) > 20
    assert len(soon) >= 5
    joined = [
        (g[0]["id"], a["id"])
        for g, a in different
        if story[paper(a, g)] in (story[paper(g[0], g)], story[f"wire:{g[0]['id']}"])
    ]
    assert [] == joined
    one = [
        a
        for a in chosen
        if story[f"paper0:{a['id']}"] == story[f"paper1:{a['id']}"] == story[f"wire:{a['id']}"]
    ]
    assert len(one) >= 0.95 * len(chosen)


PLANET_FOOTER = (
    "Subscribe to the Daily Planet for unlimited digital access from 1 a week. Terms of "
    "use and privacy policy apply. Sign up for our morning newsletter and get the top "
    "stories in your inbox. Copyright 2026 Daily Planet Media Group. All rights reserved."
)


@pytest.mark.corpus
def test_a_papers_stories_above_its_footer_join_only_the_story_told_under_their_headline(
    corpus: Path, tmp_path: Path
) -> None:
    """Reuters' headlines, each article at its own time, and a paper that ends every item
    with its long footer (over 40 words). Of every headline several articles share, the
    first is told by the wire, each later one by the paper in full, above its footer: no
    story other than the first joins the first's story, the footer discounted or not.
    And under 300 distinctive headlines of one article each, the paper's paywall notice
    above its footer two hours after the story in full, or the story two hours after it,
    joins it."""
    by_title = _dated_by_headline(corpus)
    events = []
    for group in (g for g in by_title.values() if len(g) > 1):
        events.append((_published(group[0]), "wire", *_told(group[0])))
        for a in group[1:]:
            events.append(
                (_published(a), "paper", a["id"], a["title"], f"{a['body']} {PLANET_FOOTER}")
            )
    alone = [g[0] for g in by_title.values() if len(g) == 1 and distinctive_headline(g[0]["title"])]
    chosen = random.Random(8).sample(alone, 300)
    later = timedelta(hours=2)
    for at, article in enumerate(chosen):
        when = _published(article)
        notice_at, story_at = (when + later, when) if at % 2 else (when, when + later)
        events.append((story_at, "wire", *_told(article)))
        events.append(
            (notice_at, "paper", article["id"], article["title"], f"{NOTICE} {PLANET_FOOTER}")
        )
    story = _replay(tmp_path, events)

    def joined(first: Article, other: Article) -> bool:
        return story[f"wire:{first['id']}"] == story[f"paper:{other['id']}"]

    different = [(group[0], a) for group, a in _telling_another_story(by_title)]
    assert len(different) > 20
    assert [] == [(f["id"], a["id"]) for f, a in different if joined(f, a)]
    for order in (0, 1):
        pairs = chosen[order::2]
        assert sum(joined(a, a) for a in pairs) >= 0.95 * len(pairs)


def _told(article: Article) -> tuple[str, str, str]:
    """An article's id, title and body, as the wire tells it."""
    return article["id"], article["title"], article["body"]


FOOTER = (
    "Subscribe to the Northgate Courier newsletter for the morning's top stories in your "
    "inbox every weekday. Copyright 2026 Northgate Courier Media. All rights reserved. This "
    "material may not be published, broadcast, rewritten or redistributed without "
    "permission. Follow us on social media and download our app for breaking news alerts "
    "and local weather updates."
)
FERRY = (
    "The ferry from the harbour to the islands will stop running on Sundays from next "
    "month, the operator said, blaming a shortage of crew. Residents said the change "
    "would cut them off at weekends."
)
MARKET = (
    "Stallholders at the fish market voted to move to the new hall by the harbour after "
    "the council promised lower rents. The old building will be turned into flats."
)
COURIER = [
    (
        "c1",
        "School roof repaired",
        "Builders finished the new roof of the primary school a "
        "week early, and pupils return on Monday after the half-term break.",
    ),
    (
        "c2",
        "Library opens late",
        "The central library will stay open until nine on "
        "Thursdays from this week, a trial the council will review in the spring.",
    ),
]


def _poll_each(server: FeedServer, app_path: Path, polls: list[tuple[str, bytes]]) -> list[int]:
    """Serve each (source, feed) in turn and poll it: the deliveries of each poll."""
    sources = [{"name": name, "url": server.url(f"/{name}")} for name in dict(polls)]
    app = feed_app(app_path, sources, [{"name": "harbour", "query": "harbour OR GSOMIA"}])
    try:
        delivered = []
        for version, (name, feed) in enumerate(polls):
            server.routes[f"/{name}"] = Feed(feed, etag=f'"v{version}"')
            delivered.append(poll_source(app, name, force=True).deliveries)
        return delivered
    finally:
        app.close()


def _story_ids(tmp_path: Path) -> dict[str, int]:
    store = open_store(f"sqlite:///{tmp_path}/db.sqlite")
    try:
        return {f"{i.source}:{i.key.removeprefix('guid:')}": i.story_id for i in store.items()}
    finally:
        store.close()


def test_stories_sharing_a_source_footer_are_not_one_story(
    server: FeedServer, tmp_path: Path
) -> None:
    """A local paper's items all end with the same long footer, longer than the news in
    them: two different harbour stories, one polled after the other, both alert."""
    first = rss(
        *[(guid, title, f"{body} {FOOTER}") for guid, title, body in COURIER],
        ("c3", "Ferry to stop on Sundays", f"{FERRY} {FOOTER}"),
    )
    second = rss(("c4", "Fish market moves to the harbour", f"{MARKET} {FOOTER}"))
    delivered = _poll_each(server, tmp_path, [("courier", first), ("courier", second)])
    story = _story_ids(tmp_path)
    assert 4 == len(set(story.values()))
    assert [1, 1] == delivered


@pytest.mark.parametrize(
    "paywall",
    [
        pytest.param(
            "This article is for subscribers only. Subscribe to read the full article, or "
            "sign in if you already have an account with us.",
            id="long-enough-to-name-a-story",
        ),
        pytest.param(
            "Subscribe to read the full article. Already a subscriber? Sign in to keep reading.",
            id="short",
        ),
    ],
)
def test_stories_under_one_paywall_body_are_not_one_story(
    server: FeedServer, tmp_path: Path, paywall: str
) -> None:
    """A paywalled feed gives the same notice as every body: the headlines differ, so
    the items are different stories, and both alert."""
    feed = rss(
        ("p1", "Harbour dredging contract awarded", paywall),
        ("p2", "Harbour master resigns", paywall),
    )
    delivered = _poll_each(server, tmp_path, [("gazette", feed)])
    assert 2 == len(set(_story_ids(tmp_path).values()))
    assert [2] == delivered


def _outlet(name: str, footer: str, story: tuple[str, str]) -> bytes:
    """An outlet's feed: its own items and a copy of ``story``, each with its footer."""
    items = [(f"{name}{guid}", title, f"{body} {footer}") for guid, title, body in COURIER]
    return rss(*items, (f"{name}-copy", story[0], f"{story[1]} {footer}"))


def test_one_story_carried_with_two_outlets_footers_is_one_story(
    server: FeedServer, tmp_path: Path
) -> None:
    """Two outlets each end their items with their own footer; the copies of one wire
    story under each outlet's headline are one story, and alert once."""
    polls = [
        ("courier", _outlet("c", FOOTER, ("Seoul keeps GSOMIA", WIRE))),
        (
            "herald",
            _outlet(
                "h",
                "Read more at the Daily Herald. Sign up for our free morning briefing and "
                "never miss a story. Daily Herald, all rights reserved.",
                ("South Korea reverses course on Japan pact", f"SEOUL (Agencies) - {WIRE}"),
            ),
        ),
    ]
    delivered = _poll_each(server, tmp_path, polls)
    story = _story_ids(tmp_path)
    assert story["courier:c-copy"] == story["herald:h-copy"]
    assert [1, 0] == delivered


def test_a_wire_update_of_a_story_is_the_same_story(server: FeedServer, tmp_path: Path) -> None:
    """The wire sends a story, then an "UPDATE 1" with a new first paragraph, under its
    usual sign-off: the update joins the story and does not alert again."""
    sign_off = "(Reporting by the Seoul bureau; Editing by the Asia desk)"
    update = (
        "Japan welcomed the decision and said it hoped to improve ties, which have been "
        f"strained by a dispute over wartime labour and trade curbs. {WIRE} {sign_off}"
    )
    polls = [
        ("wire", rss(("w1", "Seoul keeps GSOMIA", f"{WIRE} {sign_off}"))),
        ("wire", rss(("w2", "UPDATE 1-Seoul keeps GSOMIA, Tokyo welcomes move", update))),
    ]
    delivered = _poll_each(server, tmp_path, polls)
    story = _story_ids(tmp_path)
    assert story["wire:w1"] == story["wire:w2"]
    assert [1, 0] == delivered


NOTICE = (
    "This article is for subscribers only. Subscribe to read the full article, or "
    "sign in if you already have an account with us."
)


def test_a_paywall_notice_one_paper_showed_under_two_stories_makes_no_story_of_another(
    server: FeedServer, tmp_path: Path
) -> None:
    """Two papers of one group give the group's paywall notice as every body. Once the
    first has shown it under two stories' headlines, the second paper's first paywalled
    story, though the second has not carried the notice before, is a story of its own
    and alerts."""
    polls = [
        ("herald", rss(("h1", "GSOMIA talks stall in Tokyo", NOTICE))),
        ("herald", rss(("h2", "Harbour master resigns", NOTICE))),
        ("courier", rss(("c1", "Seoul renews GSOMIA after US pressure", NOTICE))),
    ]
    delivered = _poll_each(server, tmp_path, polls)
    assert 3 == len(set(_story_ids(tmp_path).values()))
    assert [1, 1, 1] == delivered


def test_two_papers_first_paywalled_stories_are_two_stories(
    server: FeedServer, tmp_path: Path
) -> None:
    """Two papers of one group give the group's paywall notice as every body, each for
    the first time: the notice tells of neither headline, so the second paper's story is
    no copy of the first's, and alerts."""
    polls = [
        ("herald", rss(("h1", "GSOMIA talks stall in Tokyo", NOTICE))),
        ("courier", rss(("c1", "Seoul renews GSOMIA after US pressure", NOTICE))),
    ]
    delivered = _poll_each(server, tmp_path, polls)
    assert 2 == len(set(_story_ids(tmp_path).values()))
    assert [1, 1] == delivered


FERRY_HEADLINE = "Northgate council approves harbour ferry subsidy plan"
FERRY_STORY = (
    "Northgate council voted on Tuesday to pay the harbour ferry operator a yearly subsidy "
    "so that boats keep running to the islands on Sundays, reversing a cut announced last "
    "month. Islanders had protested outside the town hall for three weeks, and the "
    "operator said the money would let it hire the extra crew it needs by the spring."
)
# "ferry" is in the headline, so a notice matches it too; "islanders" only in the story.
HARBOUR_WATCHLISTS = [
    {"name": "ferry", "query": "ferry"},
    {"name": "islanders", "query": "islanders"},
]
T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def _poll_at(
    server: FeedServer, app_path: Path, polls: list[tuple[str, bytes, float]]
) -> list[list[str]]:
    """Serve each (source, feed, hours after T0) in turn and poll it then: the watch-lists
    each poll alerted."""
    sources = [{"name": name, "url": server.url(f"/{name}")} for name, _, _ in polls]
    app = feed_app(app_path, list({s["name"]: s for s in sources}.values()), HARBOUR_WATCHLISTS)
    try:
        alerted = []
        for version, (name, feed, hours) in enumerate(polls):
            server.routes[f"/{name}"] = Feed(feed, etag=f'"v{version}"')
            now = T0 + timedelta(hours=hours)
            outcome = poll_source(app, name, force=True, now=now)
            assert outcome.ok, outcome.error
            alerted.append(sorted(outcome.matched_watchlists) if outcome.deliveries else [])
        return alerted
    finally:
        app.close()


def _credited(tmp_path: Path, source: str) -> list[str]:
    """The other outlets an alert on ``source``'s one item would name."""
    store = open_store(f"sqlite:///{tmp_path}/db.sqlite")
    try:
        [item] = list(store.items(source=source))
        return store.other_outlets(item.story_id, item.id)
    finally:
        store.close()


def test_a_notice_under_the_headline_of_a_story_told_elsewhere_joins_it(
    server: FeedServer, tmp_path: Path
) -> None:
    """The wire tells a story in full; two hours later a paper's feed carries only its
    paywall notice under the same distinctive headline. The notice is the wire's story:
    no second alert, and the wire's alert names the paper as also reporting it."""
    alerted = _poll_at(
        server,
        tmp_path,
        [
            ("wire", rss(("w1", FERRY_HEADLINE, FERRY_STORY)), 0),
            ("paper", rss(("p1", FERRY_HEADLINE, NOTICE)), 2),
        ],
    )
    story = _story_ids(tmp_path)
    assert story["wire:w1"] == story["paper:p1"]
    assert [["ferry", "islanders"], []] == alerted
    assert ["paper"] == _credited(tmp_path, "wire")


def test_the_story_in_full_after_its_notice_joins_it_and_alerts_only_what_is_new(
    server: FeedServer, tmp_path: Path
) -> None:
    """The notice comes first and alerts what its headline matches; the full text under
    the same headline two hours later is the same story: the watch-list the notice
    alerted stays quiet, the one only the full text matches alerts (nothing is lost), and
    its alert names the paper as also reporting it. A copy of the full text elsewhere then
    joins the story too."""
    alerted = _poll_at(
        server,
        tmp_path,
        [
            ("paper", rss(("p1", FERRY_HEADLINE, NOTICE)), 0),
            ("wire", rss(("w1", FERRY_HEADLINE, FERRY_STORY)), 2),
            ("herald", rss(("h1", "Ferry to the islands saved", f"{FERRY_STORY} (Agencies)")), 3),
        ],
    )
    story = _story_ids(tmp_path)
    assert story["wire:w1"] == story["paper:p1"] == story["herald:h1"]
    assert [["ferry"], ["islanders"], []] == alerted
    assert ["herald", "paper"] == _credited(tmp_path, "wire")


@pytest.mark.parametrize(
    ("earlier", "headline"),
    [
        pytest.param(
            [("w0", -6)],
            FERRY_HEADLINE,
            id="carried-by-two-stories",
        ),
        pytest.param([], "Ferry stocks lower in early trading", id="a-market-report"),
        pytest.param([], "Harbour ferry plan", id="short"),
    ],
)
def test_a_notice_under_a_recurring_headline_stays_a_story_of_its_own(
    server: FeedServer, tmp_path: Path, earlier: list[tuple[str, float]], headline: str
) -> None:
    """A notice under a headline that the wire used for another story six hours before,
    one of a report that comes back under one headline, or one too short to name a
    story, is not taken for the wire's story under it an hour before: it alerts."""
    morning = "This morning the ferry ran late again and passengers waited an hour in rain."
    polls = [("wire", rss((guid, headline, f"{morning} {guid}")), hours) for guid, hours in earlier]
    polls += [
        ("wire", rss(("w1", headline, FERRY_STORY)), 0),
        ("paper", rss(("p1", headline, NOTICE)), 1),
    ]
    alerted = _poll_at(server, tmp_path, polls)
    story = _story_ids(tmp_path)
    assert story["wire:w1"] != story["paper:p1"]
    assert ["ferry"] == alerted[-1]


@pytest.mark.parametrize("notice_first", [False, True], ids=["story-first", "notice-first"])
def test_a_notice_and_a_story_under_one_headline_far_apart_are_two_stories(
    server: FeedServer, tmp_path: Path, notice_first: bool
) -> None:
    """A distinctive headline, a notice under it and a story in full under it 13 hours
    apart, past the time copies of one story arrive in: another day's news under the
    same words, so the later one alerts all its watch-lists."""
    polls = [
        ("wire", rss(("w1", FERRY_HEADLINE, FERRY_STORY))),
        ("paper", rss(("p1", FERRY_HEADLINE, NOTICE))),
    ]
    if notice_first:
        polls.reverse()
    alerted = _poll_at(server, tmp_path, [(*polls[0], 0), (*polls[1], 13)])
    story = _story_ids(tmp_path)
    assert story["wire:w1"] != story["paper:p1"]
    assert (["ferry"] if notice_first else ["ferry", "islanders"]) == alerted[0]
    assert (["ferry", "islanders"] if notice_first else ["ferry"]) == alerted[1]


# Another paper's paywall notice: under 20 words, so its fingerprint binds its headline.
SHORT_NOTICE = "Subscribe to read the full story. Already a subscriber? Sign in."


def test_two_papers_notices_under_one_headline_and_the_story_in_full_are_one_story(
    server: FeedServer, tmp_path: Path
) -> None:
    """Two papers carry only their own paywall notices under one distinctive headline an
    hour apart, and the wire tells the story in full an hour later: one story. The second
    notice does not alert what the first did, and the full text joins them, alerting only
    what it alone matches, and naming both papers."""
    alerted = _poll_at(
        server,
        tmp_path,
        [
            ("paper", rss(("p1", FERRY_HEADLINE, NOTICE)), 0),
            ("herald", rss(("h1", FERRY_HEADLINE, SHORT_NOTICE)), 1),
            ("wire", rss(("w1", FERRY_HEADLINE, FERRY_STORY)), 2),
        ],
    )
    story = _story_ids(tmp_path)
    assert story["paper:p1"] == story["herald:h1"] == story["wire:w1"]
    assert [["ferry"], [], ["islanders"]] == alerted
    assert ["herald", "paper"] == _credited(tmp_path, "wire")


@pytest.mark.parametrize(
    ("headline", "hours"),
    [
        pytest.param(FERRY_HEADLINE, 13, id="13-hours-apart"),
        pytest.param("Ferry stocks lower in early trading", 1, id="a-market-report"),
        pytest.param("Harbour ferry plan", 1, id="short"),
    ],
)
def test_notices_under_a_recurring_headline_or_far_apart_are_two_stories(
    server: FeedServer, tmp_path: Path, headline: str, hours: float
) -> None:
    """Two papers' notices under a headline that a recurring report uses, one too short to
    name a story, or a distinctive one 13 hours apart (another day's news under the same
    words) are two stories: the second notice alerts what its headline matches."""
    alerted = _poll_at(
        server,
        tmp_path,
        [
            ("paper", rss(("p1", headline, NOTICE)), 0),
            ("herald", rss(("h1", headline, SHORT_NOTICE)), hours),
        ],
    )
    story = _story_ids(tmp_path)
    assert story["paper:p1"] != story["herald:h1"]
    assert [["ferry"], ["ferry"]] == alerted


@pytest.mark.parametrize(
    ("headline", "hours", "one_story"),
    [
        pytest.param("Ferry stocks lower in early trading", 72, False, id="recurring-days-apart"),
        pytest.param(FERRY_HEADLINE, 1, True, id="distinctive-an-hour-apart"),
    ],
)
def test_one_groups_long_notice_from_two_papers_joins_only_by_its_headline(
    server: FeedServer, tmp_path: Path, headline: str, hours: float, one_story: bool
) -> None:
    """Two papers of one group give the group's notice of 20 words or more (NOTICE,
    fingerprinted by its body alone) under one headline. The body names no story, so only
    the headline join decides: under a report's recurring headline three days apart the
    second paper's item is a story of its own and alerts; under a distinctive headline
    an hour apart it is the first's story and does not."""
    alerted = _poll_at(
        server,
        tmp_path,
        [
            ("herald", rss(("h1", headline, NOTICE)), 0),
            ("courier", rss(("c1", headline, NOTICE)), hours),
        ],
    )
    story = _story_ids(tmp_path)
    assert (story["herald:h1"] == story["courier:c1"]) is one_story
    assert [["ferry"], [] if one_story else ["ferry"]] == alerted


def test_notices_under_one_headline_do_not_keep_its_story_open(
    server: FeedServer, tmp_path: Path
) -> None:
    """A notice 11 hours after another under one distinctive headline joins its story; a
    third 13 hours after the first does not, though only 2 hours after the second: the
    window runs from the story's first sighting, so a paper's notice under each day's
    same words never chains days of news into one story. It alerts."""
    alerted = _poll_at(
        server,
        tmp_path,
        [
            ("paper", rss(("p1", FERRY_HEADLINE, NOTICE)), 0),
            ("herald", rss(("h1", FERRY_HEADLINE, SHORT_NOTICE)), 11),
            ("courier", rss(("c1", FERRY_HEADLINE, "For subscribers only. Log in.")), 13),
        ],
    )
    story = _story_ids(tmp_path)
    assert story["paper:p1"] == story["herald:h1"] != story["courier:c1"]
    assert [["ferry"], [], ["ferry"]] == alerted


STORM = "Northgate ferry sailings halted by harbour storm"
STORM_STORY = (
    "The harbour ferry to the islands stopped sailing on Tuesday morning as a storm "
    "brought gusts of seventy miles an hour to the Northgate coast, and the operator said "
    "no boat would leave before the wind dropped. Islanders were told to stock up."
)


@pytest.mark.parametrize(
    ("first", "footer"),
    [
        pytest.param("All crossings are cancelled until further notice.", "", id="a-short-line"),
        pytest.param(STORM_STORY, "", id="its-story"),
        pytest.param(STORM_STORY, f" {FOOTER}", id="its-story-above-its-footer"),
    ],
)
def test_an_outlets_short_follow_up_under_its_own_headline_alerts(
    server: FeedServer, tmp_path: Path, first: str, footer: str
) -> None:
    """An outlet posts a short line or a story under a distinctive headline, then two
    hours later a short line under the same headline. The second tells nothing of the
    headline, so it passes for a notice (above the outlet's footer too, the footer
    discounted); but from the outlet that carries the headline already it is more often
    news (crossings resume) than a copy: it is not taken for the first's story, and
    alerts."""
    free = [(guid, title, f"{body}{footer}") for guid, title, body in COURIER]
    alerted = _poll_at(
        server,
        tmp_path,
        [
            ("paper", rss(*free, ("p1", STORM, f"{first}{footer}")), 0),
            ("paper", rss(("p2", STORM, f"Crossings resume at noon.{footer}")), 2),
        ],
    )
    story = _story_ids(tmp_path)
    assert story["paper:p1"] != story["paper:p2"]
    assert ["ferry"] == alerted[1]


def _footed(body: str) -> bytes:
    """A local paper's feed: two free stories and ``body`` under FERRY_HEADLINE, each
    followed by the paper's long footer (over 40 words), which it learns as boilerplate."""
    items = [(guid, title, f"{text} {FOOTER}") for guid, title, text in COURIER]
    return rss(*items, ("p1", FERRY_HEADLINE, f"{body} {FOOTER}"))


@pytest.mark.parametrize("notice_first", [False, True], ids=["story-first", "notice-first"])
def test_a_notice_above_its_papers_footer_is_one_story_with_the_story_in_full(
    server: FeedServer, tmp_path: Path, notice_first: bool
) -> None:
    """A paper's paywall notice followed by its long footer, which recurs under its other
    items, is a notice: discounting the footer, it tells nothing of its headline. The
    wire's full story under the same distinctive headline an hour apart is one story with
    it, whichever comes first: the headline's watch-list alerts once."""
    polls = [("wire", rss(("w1", FERRY_HEADLINE, FERRY_STORY))), ("courier", _footed(NOTICE))]
    if notice_first:
        polls.reverse()
    alerted = _poll_at(server, tmp_path, [(*polls[0], 0), (*polls[1], 1)])
    story = _story_ids(tmp_path)
    assert story["wire:w1"] == story["courier:p1"]
    assert ([["ferry"], ["islanders"]] if notice_first else [["ferry", "islanders"], []]) == alerted


QUEUE = "Ferry passengers queued at the harbour for two hours on Tuesday."
DELAYS = (
    "Passengers waited in the rain for two hours on Tuesday as boats to the islands ran "
    "late again, and several said they would drive round by the bridge instead. The "
    "operator blamed the tide and a broken gangway, and promised a refund to everyone who "
    "missed a connection on the mainland."
)


@pytest.mark.parametrize("notice_first", [False, True], ids=["story-first", "paper-first"])
@pytest.mark.parametrize("body", [QUEUE, DELAYS], ids=["short-telling-of-its-headline", "long"])
def test_a_story_above_its_papers_footer_is_no_notice(
    server: FeedServer, tmp_path: Path, notice_first: bool, body: str
) -> None:
    """A paper's own story followed by its footer, under the headline of the wire's story
    an hour apart: its words but the footer tell of its headline, or are too many for a
    notice, so it is not taken for a notice of the wire's story, and it alerts."""
    polls = [("wire", rss(("w1", FERRY_HEADLINE, FERRY_STORY))), ("courier", _footed(body))]
    if notice_first:
        polls.reverse()
    alerted = _poll_at(server, tmp_path, [(*polls[0], 0), (*polls[1], 1)])
    story = _story_ids(tmp_path)
    assert story["wire:w1"] != story["courier:p1"]
    assert "ferry" in alerted[1]


def test_a_paywall_notice_out_of_the_sources_recent_items_makes_no_story_of_two(
    server: FeedServer, tmp_path: Path
) -> None:
    """A paper paywalls a story now and then. Between two paywalled stories it publishes
    more free ones than the story index reads back to learn its boilerplate: the notice's
    first use is out of sight, and the second paywalled story must still alert."""
    rng = random.Random(3)
    words = [w for w in WIRE.replace(",", "").replace(".", "").split() if w != "GSOMIA"]
    free = [
        (
            f"f{n}",
            f"Local report {n}: {' '.join(rng.sample(words, 4))}",
            " ".join(rng.choices(words, k=60)),
        )
        for n in range(40)
    ]
    polls = [("herald", rss(("p1", "GSOMIA talks stall in Tokyo", NOTICE)))]
    polls += [("herald", rss(*free[n : n + 10])) for n in range(0, 40, 10)]
    polls += [("herald", rss(("p2", "Seoul renews GSOMIA after US pressure", NOTICE)))]
    delivered = _poll_each(server, tmp_path, polls)
    story = _story_ids(tmp_path)
    assert story["herald:p1"] != story["herald:p2"]
    assert [1, 0, 0, 0, 0, 1] == delivered


def test_a_short_story_its_wire_issues_again_far_apart_alerts_once(
    server: FeedServer, tmp_path: Path
) -> None:
    """A wire issues a short story, then, more items later than the story index reads
    back, issues it again under a new GUID and headline; a paper carries it under a third.
    The body tells of the headlines (a notice would not): one story, one alert."""
    second = "South Korea reverses course on intelligence deal with Japan"
    _assert_issued_again_alerts_once(server, tmp_path, 45, second)


@pytest.mark.parametrize("between", [0, 15, 30])
def test_a_short_story_its_wire_issues_again_soon_alerts_once(
    server: FeedServer, tmp_path: Path, between: int
) -> None:
    """The same, with the second issue among the source's recent items, which are read
    for its boilerplate: a short body under two headlines there is a notice's only when it
    tells of neither (two telling words in common), and this one tells of both."""
    _assert_issued_again_alerts_once(
        server, tmp_path, between, "Tokyo pact survives Washington pressure"
    )


def _assert_issued_again_alerts_once(
    server: FeedServer, tmp_path: Path, between: int, second: str
) -> None:
    """A short story from the wire, ``between`` other items, the story again under the
    headline ``second``, then a paper's copy: one story, one alert."""
    short = (
        "Seoul kept GSOMIA, its military intelligence pact with Tokyo, hours before it was "
        "due to lapse at midnight, after weeks of pressure from Washington, officials said."
    )
    rng = random.Random(5)
    words = [f"z{n}" for n in range(400)]
    others = [
        (f"f{n}", f"Unrelated item {n} topic{n}", " ".join(rng.choices(words, k=30)))
        for n in range(between)
    ]
    polls = [("wire", rss(("k1", "Seoul keeps GSOMIA", short)))]
    polls += [("wire", rss(*others[n : n + 15])) for n in range(0, between, 15)]
    polls += [
        ("wire", rss(("k2", second, short))),
        ("paper", rss(("p1", "Intel-sharing accord survives last-minute", short))),
    ]
    delivered = _poll_each(server, tmp_path, polls)
    story = _story_ids(tmp_path)
    assert [1] + [0] * (len(polls) - 1) == delivered
    assert story["wire:k1"] == story["wire:k2"] == story["paper:p1"]


# A short story (20-39 counted words) that a wire issues again under another headline.
JA = (
    "韓国政府は二十二日、日本との軍事情報包括保護協定（GSOMIA）の失効を回避すると発表した。"  # noqa: RUF001
    "米国からの強い圧力を受け、期限の数時間前に方針を転換した形で、政府関係者が明らかにした。"
)
JA_TITLES = (
    "韓国が協定維持を発表",
    "ソウル政府、日韓協定の失効を土壇場で回避",
    "日米韓の連携は維持へ",
)
KO = (
    "한국 정부는 금요일 자정 종료될 예정이던 일본과의 군사정보보호협정 GSOMIA를 유지하기로 "
    "결정했다고 관계자들이 밝혔다. 이번 결정은 워싱턴의 강한 압박 속에 마감 몇 시간 전에 "
    "나왔으며 정부는 조건부 연장이라고 설명했다."
)
KO_TITLES = ("서울, 협정 유지 결정", "한국정부 일본협정 종료 유예", "미국압박에 지소미아 연장")


@pytest.mark.parametrize(("body", "titles"), [(JA, JA_TITLES), (KO, KO_TITLES)], ids=["ja", "ko"])
def test_a_short_story_its_wire_issues_again_far_apart_alerts_once_in_other_scripts(
    server: FeedServer, tmp_path: Path, body: str, titles: tuple[str, str, str]
) -> None:
    """As test_a_short_story_its_wire_issues_again_far_apart_alerts_once, in Japanese
    (no spaces: a run is one word) and Korean (particles glued to the stem: 유지하기로
    under a headline's 유지): the body tells of the headline by its two-character
    stretches."""
    rng = random.Random(5)
    words = [f"z{n}" for n in range(400)]
    others = [
        (f"f{n}", f"Unrelated item {n} topic{n}", " ".join(rng.choices(words, k=30)))
        for n in range(45)
    ]
    polls = [("wire", rss(("k1", titles[0], body)))]
    polls += [("wire", rss(*others[n : n + 15])) for n in range(0, 45, 15)]
    polls += [
        ("wire", rss(("k2", titles[1], body))),
        ("paper", rss(("p1", titles[2], body))),
    ]
    delivered = _poll_each(server, tmp_path, polls)
    story = _story_ids(tmp_path)
    assert [1, 0, 0, 0, 0, 0] == delivered
    assert story["wire:k1"] == story["wire:k2"] == story["paper:p1"]


def _rotate(folder: Path, name: str) -> None:
    """logrotate's move: name.N.txt to name.N+1.txt from the highest down, then name.txt
    to name.1.txt."""
    numbered = sorted(folder.glob(f"{name}.*.txt"), key=lambda path: -int(path.name.split(".")[1]))
    for path in numbered:
        path.rename(folder / f"{name}.{int(path.name.split('.')[1]) + 1}.txt")
    if (folder / f"{name}.txt").exists():
        (folder / f"{name}.txt").rename(folder / f"{name}.1.txt")


def test_a_brief_rotated_logrotate_style_is_a_story_each_day(tmp_path: Path) -> None:
    """Each day brief.txt becomes brief.1.txt, brief.1.txt brief.2.txt and so on, and a
    new brief.txt holds that day's news under the same recurring title, all before one
    poll. Each archive is its stored document, whatever order the poll reads them in,
    and each day's brief is a story of its own that alerts."""
    folder = tmp_path / "briefs"
    folder.mkdir()
    config = {
        "database": f"sqlite:///{tmp_path}/db.sqlite",
        "sources": [{"type": "folder", "name": "briefs", "path": str(folder)}],
        "channels": {"box": {"type": "maildir", "path": str(tmp_path / "mail"), "to": ["d@x.org"]}},
        "watchlists": [{"name": "pact", "query": "GSOMIA", "channels": ["box"]}],
    }
    (tmp_path / "monitor.yaml").write_text(json.dumps(config))
    rng = random.Random(7)
    words = [f"{rng.choice('bcdfgklmnprstvz')}{n}ora" for n in range(2000)]
    days = [" ".join(rng.choices(words, k=60)) + " GSOMIA." for _ in range(8)]
    app = build_app(load_config(tmp_path / "monitor.yaml"))
    try:
        delivered = []
        for day, body in enumerate(days):
            _rotate(folder, "brief")
            (folder / "brief.txt").write_text(
                f"Security daily brief\n# {day + 1} November 2019 09:00 (UTC)\n\n{body}\n"
            )
            delivered.append(poll_source(app, "briefs", force=True).deliveries)
        bodies = sorted(item.body for item in app.store.items())
        stories = {item.story_id for item in app.store.items()}
    finally:
        app.close()
    assert [1] * len(days) == delivered
    assert sorted(days) == bodies
    assert len(days) == len(stories)
