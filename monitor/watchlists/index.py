"""All watch-lists compiled once into one index, so matching costs about one tokenization.

The presearcher idea of Lucene Monitor and the Elasticsearch percolator: for each query
we pick *anchor* terms such that a story containing none of them cannot match (one
child of an AND, every child of an OR). A story's distinct tokens are intersected with
the anchor table in C (``set & frozenset``), prefix and spaceless-script anchors are
found by one Aho-Corasick pass over those tokens, and only the watch-lists anchored
there are evaluated. Queries with no possible anchor (a lone regex) are evaluated for
every story.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence

import ahocorasick

from monitor.config import WatchlistConfig
from monitor.errors import QueryError
from monitor.model import Document, Hit
from monitor.watchlists.match import DocumentView, evaluate, explain
from monitor.watchlists.query import (
    And,
    Near,
    Node,
    Not,
    Or,
    Phrase,
    Regex,
    SetReferenceError,
    Word,
    parse_query,
    parse_set_entry,
)

# Common English words make poor anchors: a query anchored on one is evaluated for
# nearly every story. Anything else is weighed by length, as Lucene Monitor does.
_COMMON_WORDS = (
    "a about after all also an and any are as at be been but by can could did do for from "
    "had has have he her his if in into is it its more new no not of on one or our out over "
    "said says she so than that the their them there these they this to two up was we were "
    "what when which who will with would year years you"
)
_COMMON = frozenset(_COMMON_WORDS.split())

Anchor = tuple[str, str]  # (kind, text): kind is "token", "prefix" or "substring"
_EMPTY_DOCUMENT = Document("", "", "")


class WatchlistIndex:
    """Every watch-list's query, with the anchor tables that pick which to evaluate."""

    def __init__(self, queries: Sequence[tuple[str, Node]]) -> None:
        self.names: tuple[str, ...] = tuple(name for name, _ in queries)
        self.queries: dict[str, Node] = dict(queries)
        self._nodes = [node for _, node in queries]
        by_token: dict[str, list[int]] = defaultdict(list)
        by_pattern: dict[str, list[int]] = defaultdict(list)
        self._always: list[int] = []
        for i, node in enumerate(self._nodes):
            found = anchors(node)
            if found is None:
                self._always.append(i)
                continue
            for kind, text in found:
                if kind == "token":
                    by_token[text].append(i)
                else:  # a prefix must start a token; tokens are joined with spaces
                    by_pattern[" " + text if kind == "prefix" else text].append(i)
        self._by_token = dict(by_token)
        self._token_keys = frozenset(by_token)
        self._automaton: ahocorasick.Automaton | None = None
        if by_pattern:
            self._automaton = ahocorasick.Automaton()
            for pattern, ids in by_pattern.items():
                self._automaton.add_word(pattern, ids)
            self._automaton.make_automaton()

    def match(self, doc: Document, only: Collection[str] | None = None) -> list[Hit]:
        """The hits of every watch-list (or of those named in ``only``) on ``doc``."""
        view = DocumentView(doc)
        hits = []
        for i in self._candidates(view):
            name = self.names[i]
            if only is not None and name not in only:
                continue
            if evaluate(self._nodes[i], view):
                hits.append(explain(name, self._nodes[i], view))
        return hits

    def _candidates(self, view: DocumentView) -> list[int]:
        """Watch-lists with an anchor in the document, plus those that have none."""
        present = set(view.tokens["title"])
        present.update(view.tokens["body"], view.tokens["source"])
        found = set(self._always)
        for token in present & self._token_keys:
            found.update(self._by_token[token])
        if self._automaton is not None and present:
            for _, ids in self._automaton.iter(" " + " ".join(present)):
                found.update(ids)
        return sorted(found)


def compile_watchlists(
    watchlists: Sequence[WatchlistConfig], terms: Mapping[str, Sequence[str]]
) -> WatchlistIndex:
    """Parse every term set and watch-list query; raise QueryError naming the culprit."""
    sets = parse_term_sets(terms)
    queries = []
    for watchlist in watchlists:
        try:
            node = parse_query(watchlist.query, sets.get)
        except QueryError as exc:
            raise exc.for_watchlist(watchlist.name) from None
        if evaluate(node, DocumentView(_EMPTY_DOCUMENT)):
            raise QueryError(
                "matches every story, even an empty one: give NOT (or a regex that can "
                "match nothing) a term to AND it with",
                query=watchlist.query,
                column=1,
                watchlist=watchlist.name,
            )
        queries.append((watchlist.name, node))
    return WatchlistIndex(queries)


def parse_term_sets(terms: Mapping[str, Sequence[str]]) -> dict[str, Node]:
    """Each named term set as an OR of its parsed entries; sets may use other sets."""
    parsed: dict[str, Node] = {}
    resolving: list[str] = []

    def resolve(name: str) -> Node | None:
        if name in parsed:
            return parsed[name]
        if name not in terms:
            return None
        if name in resolving:
            raise SetReferenceError(f"term set '@{name}' refers to itself")
        resolving.append(name)
        entries = tuple(parse_set_entry(entry, resolve, set_name=name) for entry in terms[name])
        resolving.pop()
        parsed[name] = Or(entries, f"@{name}")
        return parsed[name]

    for name in terms:
        resolve(name)
    return parsed


def anchors(node: Node) -> frozenset[Anchor] | None:
    """Terms one of which every matching story contains, or None if there are none."""
    match node:
        case Phrase():
            return frozenset({_word_anchor(max(node.words, key=_word_weight))})
        case Near():
            return _best([_union([anchors(phrase) for phrase in group]) for group in node.groups])
        case And():
            return _best([anchors(child) for child in node.children])
        case Or():
            return _union([anchors(child) for child in node.children])
        case Not() | Regex():
            return None


def _union(options: list[frozenset[Anchor] | None]) -> frozenset[Anchor] | None:
    if any(option is None for option in options):
        return None
    return frozenset().union(*(option for option in options if option is not None))


def _best(options: list[frozenset[Anchor] | None]) -> frozenset[Anchor] | None:
    """The most selective anchor set: its weakest anchor strongest, then the fewest."""
    usable = [option for option in options if option is not None]
    if not usable:
        return None
    return max(usable, key=lambda option: (min(map(_anchor_weight, option)), -len(option)))


def _word_anchor(word: Word) -> Anchor:
    if word.spaceless:
        return ("substring", word.text)
    return ("prefix" if word.prefix else "token", word.text)


def _word_weight(word: Word) -> float:
    return _anchor_weight(_word_anchor(word))


def _anchor_weight(anchor: Anchor) -> float:
    kind, text = anchor
    if kind == "substring":
        return 2.0 * len(text)  # a Han or Hangul character carries about a syllable or two
    if text in _COMMON:
        return 0.5
    return len(text) - (0.5 if kind == "prefix" else 0.0)
