"""The shipped watch-lists: the seed article fires all three; nothing in Reuters does.

The Reuters-21578 corpus predates all three topics, so every hit there would be a false
positive; it does hold the traps WATCHLISTS.md names ("SCM Corp", R&D "cost sharing",
bank "burden sharing"), and loose probe queries run in the same pass prove they are there.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.config import WatchlistConfig, load_config
from monitor.model import Document
from monitor.sources.documents import parse_text_document
from monitor.watchlists import compile_watchlists, run_examples
from monitor.watchlists.examples import text_document

REPO = Path(__file__).resolve().parents[2]
DEFAULTS = ("gsomia", "scm", "cost-sharing")
# Loose queries for the traps, and the articles where each is known to fire.
PROBES = {
    "probe-scm": ("SCM", {"reuters21578-10419", "reuters21578-11441"}),
    "probe-cost-sharing": ('"cost sharing"', {"reuters21578-1414", "reuters21578-11453"}),
    "probe-burden-sharing": ('"burden sharing"', {"reuters21578-9835"}),
}


@pytest.fixture(scope="module")
def config() -> tuple[list[WatchlistConfig], dict[str, list[str]]]:
    loaded = load_config(REPO / "config" / "monitor.yaml")
    return list(loaded.watchlists), dict(loaded.terms)


def test_defaults_are_the_three_desk_watchlists_and_their_examples_pass(
    config: tuple[list[WatchlistConfig], dict[str, list[str]]],
) -> None:
    watchlists, terms = config
    assert DEFAULTS == tuple(w.name for w in watchlists)
    for watchlist in watchlists:
        assert ["mailbox"] == watchlist.channels
        assert "instant" == watchlist.alert
        assert watchlist.examples.match
        assert watchlist.examples.no_match
    assert [] == run_examples(compile_watchlists(watchlists, terms), watchlists)


def test_the_seed_article_matches_every_default_watchlist(
    config: tuple[list[WatchlistConfig], dict[str, list[str]]],
) -> None:
    [seed] = (REPO / "seeds").glob("*.txt")
    entry = parse_text_document(seed.read_text(encoding="utf-8"), datetime.now(UTC), seed.name)
    assert entry is not None
    hits = compile_watchlists(*config).match(Document(entry.title, entry.content))
    assert DEFAULTS == tuple(hit.watchlist for hit in hits)
    terms = {hit.watchlist: hit.terms for hit in hits}
    assert "GSOMIA" in terms["gsomia"]
    assert "Security Consultative Meeting" in terms["scm"]
    assert "defence cost-sharing" in terms["cost-sharing"]


# Stories WATCHLISTS.md says a list must catch, or must not, that the lists once got
# wrong: (story as `monitor match` reads it, the lists that must fire).
DESK_CASES = [
    # gsomia: the pact is also "the intelligence pact (with Japan)"
    ("South Korea to scrap intelligence pact with Japan", {"gsomia"}),
    ("Seoul to end intelligence-sharing accord with Tokyo", {"gsomia"}),
    # not intelligence sharing in general: the 2014 trilateral arrangement is another pact
    ("US, Japan and South Korea sign trilateral intelligence-sharing agreement", set()),
    # scm in Japanese (米韓定例安保協議) and with a Korean dateline (서울) alone
    ("米韓、ソウルで定例安保協議（SCM）\n国防長官が会談した。", {"scm"}),  # noqa: RUF001
    ("米韓定例安保協議、共同声明を発表", {"scm"}),
    ("에스퍼 美국방, 서울서 SCM 참석", {"scm"}),
    # not supply chain management, even in Korea's defence ministry
    ("South Korean military to adopt supply chain management (SCM) system", set()),
    # cost-sharing in Japanese about US forces in Korea, not only in Japan
    ("米韓、在韓米軍駐留経費の負担で合意", {"cost-sharing"}),
    ("在韓米軍の駐留経費、韓国に大幅増額を要求", {"cost-sharing"}),
    ("韓米防衛費分担金交渉が妥結", {"cost-sharing"}),
    ("NATO加盟国、防衛費分担の見直しを協議", set()),  # allies' defence budgets
    # not cost sharing in a business contract, even for a troop carrier
    ("Boeing accepts cost sharing on Army troop helicopter contract", set()),
]


@pytest.mark.parametrize(("story", "expected"), DESK_CASES)
def test_the_defaults_catch_what_the_desk_wants_and_nothing_else(
    config: tuple[list[WatchlistConfig], dict[str, list[str]]], story: str, expected: set[str]
) -> None:
    hits = compile_watchlists(*config).match(text_document(story))
    assert expected == {hit.watchlist for hit in hits}


@pytest.mark.corpus
def test_no_default_watchlist_fires_on_reuters_though_its_traps_are_there(
    config: tuple[list[WatchlistConfig], dict[str, list[str]]], corpus: Path
) -> None:
    watchlists, terms = config
    probes = [WatchlistConfig(name=name, query=query) for name, (query, _) in PROBES.items()]
    index = compile_watchlists([*watchlists, *probes], terms)
    fired: dict[str, set[str]] = {name: set() for name in index.names}
    with (corpus / "news" / "articles.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            article = json.loads(line)
            document = Document(article["title"], article["body"], article["source"])
            for hit in index.match(document):
                fired[hit.watchlist].add(article["id"])
    assert {name: set() for name in DEFAULTS} == {name: fired[name] for name in DEFAULTS}
    assert {name: ids for name, (_, ids) in PROBES.items()} == {
        name: fired[name] for name in PROBES
    }
