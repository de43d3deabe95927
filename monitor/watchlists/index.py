"""All watch-lists compiled once into one index, so matching costs about one tokenization.

The presearcher idea of Lucene Monitor and the Elasticsearch percolator. From each query
we take *groups* of anchor terms that every matching story must touch: each word of a
phrase, each side of an AND, one group for the alternatives of an OR (NOT and regexes
give none). An anchor is looked for in the story's folded text as `` word `` (a whole
token), `` pre`` (a prefix) or a bare spaceless-script substring; a literal set of all
of them (``literals``) finds, in one C pass, which a sampled story holds.

Each query is triggered by one group, the one expected in the fewest stories: the
triggers go into a literal set of their own, and a story is scanned with it (the fewer
the patterns, the faster the scan). Before a triggered query is evaluated in Python, its
other groups are checked, rarest first, by substring searches of the folded text in C;
most triggered queries fail there (a rare name without its context word). A story that
triggers many queries (a long one) has its tokens put in a set instead, and its whole
words are looked up there rather than searched for. "Expected" starts as a guess from
word length and becomes the share of stories that had the anchor, counted on the first
1,000 stories and then on one in 64, and for a trigger also on every story its scan
covered (one in 64 cannot tell a word in 0.05% of stories from one in 0.25%); the
triggers are re-chosen after 1,000 stories, then 4,000, 16,000 and so on, so a common
word picked by the guess ("international" over "yamaichi") stops triggering its
watch-lists. Any choice gives the same hits; only the work differs. Splitting the text
into tokens waits until a query is evaluated, so most stories cost a fold and one scan,
however many watch-lists there are. Queries with no group (a lone regex) are evaluated
for every story.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass

from monitor.config import WatchlistConfig
from monitor.errors import QueryError
from monitor.model import Document, Hit
from monitor.watchlists.literals import LiteralSet
from monitor.watchlists.match import DocumentView, evaluate, matching_hit
from monitor.watchlists.query import (
    SET_MENTION,
    And,
    Near,
    Node,
    Not,
    Or,
    Phrase,
    Regex,
    SetReferenceError,
    TermSet,
    Word,
    parse_query,
    parse_set_entry,
)

# Common English words make poor triggers: a query triggered by one is checked for nearly
# every story. Before stories have been seen, anything else is weighed by its length.
_COMMON_WORDS = (
    "a about after all also an and any are as at be been but by can could did do for from "
    "had has have he her his if in into is it its more new no not of on one or our out over "
    "said says she so than that the their them there these they this to two up was we were "
    "what when which who will with would year years you"
)
_COMMON = frozenset(_COMMON_WORDS.split())

Anchor = tuple[str, str]  # (kind, text): kind is "token", "prefix" or "substring"
FIRST_REPLAN = 1_000  # stories before trigger groups are re-chosen from what was seen
SAMPLE_EVERY = 64  # after the first stories, one in this many is scanned for all anchors
MANY_TRIGGERED = 20  # queries triggered by a story past which its checks use a token set
PRIOR_STORIES = 10  # how many stories' evidence the length-based guess is worth
_EMPTY_DOCUMENT = Document("", "", "")


@dataclass(frozen=True, slots=True)
class _TriggerScan:
    """One plan's trigger scan: the literal set of its trigger anchors, the queries each
    triggers and how many stories each was found in, by position in the set; ``keys``
    are their anchors' keys. One object, read once per story: the polling threads match
    stories while a re-plan replaces it, and a set read with another plan's queries
    would trigger the wrong watch-lists."""

    literals: LiteralSet | None
    queries: list[list[int]]
    keys: list[int]
    counts: list[int]


class WatchlistIndex:
    """Every watch-list's query, with the anchor automata that pick which to evaluate."""

    def __init__(self, queries: Sequence[tuple[str, Node]]) -> None:
        self.names: tuple[str, ...] = tuple(name for name, _ in queries)
        self.queries: dict[str, Node] = dict(queries)
        self._nodes = [node for _, node in queries]
        self._keys: dict[str, int] = {}  # pattern -> its key
        self._priors: list[float] = []
        self._grouped: list[int] = []  # queries with groups; the others are always evaluated
        self._always: list[int] = []
        for i, node in enumerate(self._nodes):
            if required_groups(node) is None:
                self._always.append(i)
                continue
            self._grouped.append(i)
            for anchor in possible_anchors(node):
                if _pattern(anchor) not in self._keys:
                    self._keys[_pattern(anchor)] = len(self._keys)
                    self._priors.append(_prior(anchor))
        self._anchors = LiteralSet(list(self._keys)) if self._keys else None
        self._seen = [0] * len(self._priors)  # stories found holding each anchor
        self._stories = 0
        self._sampled = 0
        self._exposure = [0] * len(self._priors)  # other stories scanned for each anchor
        self._replan_at = FIRST_REPLAN
        self._replanning = threading.Lock()
        self._plan()

    def match(self, doc: Document, only: Collection[str] | None = None) -> list[Hit]:
        """The hits of every watch-list (or of those named in ``only``) on ``doc``."""
        view = DocumentView(doc)
        hits = []
        for i in self._candidates(view):
            name = self.names[i]
            if only is not None and name not in only:
                continue
            hit = matching_hit(name, self._nodes[i], view)
            if hit is not None:
                hits.append(hit)
        return hits

    def _candidates(self, view: DocumentView) -> list[int]:
        """Queries to evaluate, in order: those without groups, and the triggered ones
        whose other groups have an anchor here too.

        Those checks are substring searches in C, rarest group first: they rule out
        most triggered queries (a rare name without its context word) before any Python
        evaluation.
        """
        if self._anchors is None:
            return self._always
        text = view.all_fields()
        triggered = self._triggered(text)
        if len(triggered) < MANY_TRIGGERED:
            found = _passing(triggered, self._checks, text)
        else:
            found = self._present_in_tokens(triggered, text)
        if not self._always and len(found) < 2:
            return found
        return sorted({*self._always, *found})

    def _present_in_tokens(self, triggered: list[int], text: str) -> list[int]:
        """The checks of many triggered queries, whole words looked up in the story's set
        of tokens: past MANY_TRIGGERED queries, building it costs less than searching
        the text for each word."""
        return _passing_by_tokens(triggered, self._token_checks, text, set(text.split(" ")))

    def _triggered(self, text: str) -> list[int]:
        """Queries whose trigger group has an anchor in ``text`` (perhaps repeated).

        The first stories, then one in SAMPLE_EVERY, are scanned for every anchor to
        learn how common each is; the rest only for the triggers.
        """
        self._stories += 1
        found: list[int] = []
        if self._anchors is None:
            return found
        if self._stories <= FIRST_REPLAN or self._stories % SAMPLE_EVERY == 0:
            self._sampled += 1
            found = self._anchors.gather(text, self._triggers, self._seen)
        else:
            scan = self._scan
            if scan.literals is not None:
                self._scanned += 1
                found = scan.literals.gather(text, scan.queries, scan.counts)
        if self._stories >= self._replan_at:
            with self._replanning:  # once, by the first thread past the mark
                if self._stories >= self._replan_at:
                    self._replan_at *= 4
                    self._tally()
                    self._plan()
        return found

    def _tally(self) -> None:
        """Add what the trigger scans of this plan found to what was seen: for the
        triggers, every story's evidence, where other anchors have the samples' only."""
        seen, exposure, scan = self._seen, self._exposure, self._scan
        for key, count in zip(scan.keys, scan.counts, strict=True):
            seen[key] += count
            exposure[key] += self._scanned

    def _plan(self) -> None:
        """Choose each query's trigger group: the one expected in the fewest stories.

        The query's other groups become its checks, rarest first: substring searches
        that rule most triggered queries out before they are evaluated.
        """
        triggers: list[list[int]] = [[] for _ in self._priors]
        checks: list[tuple[tuple[tuple[str, str], ...], ...]] = [() for _ in self._nodes]
        token_checks: list[tuple[tuple[tuple[str, str | None], ...], ...]] = [
            () for _ in self._nodes
        ]

        def share(anchor: Anchor) -> float:
            return self._share(self._keys[_pattern(anchor)])

        def weight(group: frozenset[Anchor]) -> float:
            return sum(map(share, group))

        for i in self._grouped:
            groups = sorted(required_groups(self._nodes[i], share) or [], key=weight)
            for anchor in groups[0]:
                triggers[self._keys[_pattern(anchor)]].append(i)
            checks[i] = tuple(tuple(map(_check, group)) for group in groups[1:])
            token_checks[i] = tuple(tuple(map(_token_check, group)) for group in groups[1:])
        patterns = list(self._keys)
        self._triggers = triggers
        self._checks = checks
        self._token_checks = token_checks
        keys = [key for key, ids in enumerate(triggers) if ids]
        self._scanned = 0  # stories scanned for the triggers
        self._scan = _TriggerScan(
            LiteralSet([patterns[k] for k in keys]) if keys else None,
            [triggers[k] for k in keys],
            keys,
            [0] * len(keys),
        )

    def _share(self, key: int) -> float:
        """The expected share of stories with anchor ``key``: the guess, then what was seen.

        The guess counts as PRIOR_STORIES stories' worth of evidence: the thousand
        stories before the first re-plan outweigh it, though it still parts anchors none
        of them had (a long word is likely the rarer). What was seen is the sampled
        stories, and for an anchor that has been a trigger, the stories scanned for it
        then: rare anchors are told apart there, which the samples cannot do.
        """
        seen = self._seen[key] + self._priors[key] * PRIOR_STORIES
        return seen / (self._sampled + self._exposure[key] + PRIOR_STORIES)


def _passing(
    triggered: Sequence[int], checks: Sequence[Sequence[Sequence[tuple[str, str]]]], text: str
) -> list[int]:
    """The triggered queries each of whose check groups has a pattern in ``text``.

    One call for all of a story's queries, and loops rather than all()/any(): this runs
    for every story. Most searches fail, and a search for the bare word fails faster
    than one for the word between spaces (a space is everywhere), so the pattern is
    searched for only when its bare word is found.
    """
    found = []
    for i in triggered:
        for group in checks[i]:
            for word, pattern in group:
                if word in text and pattern in text:
                    break
            else:
                break  # no pattern of this group here: the query fails
        else:
            found.append(i)
    return found


def _passing_by_tokens(
    triggered: Sequence[int],
    checks: Sequence[Sequence[Sequence[tuple[str, str | None]]]],
    text: str,
    tokens: Collection[str],
) -> list[int]:
    """``_passing`` with the story's set of tokens (its text split at spaces): a whole
    word (pattern None) is looked up there; other patterns are searched for."""
    found = []
    for i in triggered:
        for group in checks[i]:
            for word, pattern in group:
                if (word in tokens) if pattern is None else (word in text and pattern in text):
                    break
            else:
                break
        else:
            found.append(i)
    return found


def _check(anchor: Anchor) -> tuple[str, str]:
    return anchor[1], _pattern(anchor)


def _token_check(anchor: Anchor) -> tuple[str, str | None]:
    """A check for ``_passing_by_tokens``: no pattern for a whole word, looked up instead."""
    return (anchor[1], None) if anchor[0] == "token" else _check(anchor)


def _pattern(anchor: Anchor) -> str:
    """What to look for in folded text, where tokens are separated by spaces."""
    kind, text = anchor
    if kind == "token":
        return f" {text} "
    if kind == "prefix":
        return f" {text}"
    return text  # a substring of a spaceless run


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


def parse_term_sets(terms: Mapping[str, Sequence[str]]) -> dict[str, TermSet]:
    """Each named term set as an OR of its parsed entries; sets may use other sets.

    No recursion: an entry that uses a set not parsed yet stops, that set is parsed
    first, and the entry is parsed again. A chain of sets as long as the config makes
    costs no stack, and the nesting limit is checked where each set is used.
    """
    parsed: dict[str, TermSet] = {}
    for name in _mentioned_first(terms):
        _parse_term_set(name, terms, parsed)
    return {name: parsed[name] for name in terms}


def _mentioned_first(terms: Mapping[str, Sequence[str]]) -> list[str]:
    """The set names, each after the sets its entries mention, as far as their text
    tells. Parsed in this order, an entry rarely meets a set not parsed yet (each such
    meeting parses the entry again: a set naming a thousand sets defined after it would
    be parsed a thousand times). Any order gives the same sets."""
    order: list[str] = []
    seen: set[str] = set()

    def mentioned(name: str) -> Iterator[str]:
        return (
            found
            for entry in terms[name]
            for found in SET_MENTION.findall(entry)
            if found in terms and found not in seen
        )

    for root in terms:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, mentioned(root))]
        while stack:  # depth first, without recursion: a chain may be long
            name, pending = stack[-1]
            child = next(pending, None)
            if child is None:
                stack.pop()
                order.append(name)
            else:
                seen.add(child)
                stack.append((child, mentioned(child)))
    return order


class _Unparsed(Exception):
    """An entry used a term set not parsed yet: parse that one first."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _parse_term_set(
    first: str, terms: Mapping[str, Sequence[str]], parsed: dict[str, TermSet]
) -> None:
    """Parse ``first`` into ``parsed``, and the sets it uses before it, in a loop."""
    waiting = [first]  # each set waits for the one after it
    done: dict[str, list[tuple[Node, int]]] = {}  # entries parsed so far, by set

    def resolve(name: str) -> TermSet | None:
        if name in parsed:
            return parsed[name]
        if name not in terms:
            return None
        if name in waiting:  # a loop: name's entries use a set that (in the end) uses name
            loop = " -> ".join(f"@{each}" for each in (*waiting[waiting.index(name) :], name))
            raise SetReferenceError(f"term set '@{name}' refers to itself ({loop})")
        raise _Unparsed(name)

    while waiting:
        name = waiting[-1]
        if name in parsed:
            waiting.pop()
            continue
        entries = done.setdefault(name, [])
        try:
            for entry in terms[name][len(entries) :]:
                entries.append(parse_set_entry(entry, resolve, set_name=name))
        except _Unparsed as needed:
            waiting.append(needed.name)
            continue
        except QueryError as exc:
            if exc.term_set is None:  # the innermost set and its entry, to locate it
                exc.term_set, exc.term_entry = name, len(entries)
            raise
        height = max((entry_height for _, entry_height in entries), default=1)
        parsed[name] = TermSet(Or(tuple(node for node, _ in entries), f"@{name}"), height)
        waiting.pop()


def required_groups(
    node: Node, weight: Callable[[Anchor], float] | None = None
) -> list[frozenset[Anchor]] | None:
    """Groups of anchors a matching story touches every one of, or None if none are known.

    Where there is a choice (which group stands for an alternative of an OR), the group
    whose anchors weigh least is taken; ``weight`` is the expected share of stories
    holding an anchor, by default the length-based guess.
    """
    weigh = weight or _prior
    match node:
        case Phrase():
            return [frozenset({anchor}) for anchor in _phrase_anchors(node)]
        case Near():
            found = [_alternatives(group, weigh) for group in node.groups]
            return [group for group in found if group is not None] or None
        case And():
            groups = [g for child in node.children for g in required_groups(child, weigh) or ()]
            return groups or None
        case Or():
            group = _alternatives(node.children, weigh)
            return None if group is None else [group]
        case Not() | Regex():
            return None


def _alternatives(
    nodes: Sequence[Node], weight: Callable[[Anchor], float]
) -> frozenset[Anchor] | None:
    """One group for an OR: each alternative's lightest group, united."""
    united: set[Anchor] = set()
    for node in nodes:
        groups = required_groups(node, weight)
        if groups is None:
            return None
        united |= min(groups, key=lambda group: sum(map(weight, group)))
    return frozenset(united)


def possible_anchors(node: Node) -> set[Anchor]:
    """Every anchor ``required_groups`` could pick for ``node``, whatever the weights."""
    match node:
        case Phrase():
            return set(_phrase_anchors(node))
        case Near():
            return {a for group in node.groups for phrase in group for a in _phrase_anchors(phrase)}
        case And() | Or():
            return set().union(*map(possible_anchors, node.children))
        case Not() | Regex():
            return set()


def _phrase_anchors(phrase: Phrase) -> list[Anchor]:
    """A phrase's words as anchors, less the common ones (unless that leaves none)."""
    anchors = [_word_anchor(word) for word in phrase.words]
    telling = [anchor for anchor in anchors if anchor[1] not in _COMMON]
    return telling or [max(anchors, key=_length)]


def _word_anchor(word: Word) -> Anchor:
    if word.spaceless:
        return ("substring", word.text)
    return ("prefix" if word.prefix else "token", word.text)


def _length(anchor: Anchor) -> int:
    return len(anchor[1])


def _prior(anchor: Anchor) -> float:
    """A guess at the share of stories holding ``anchor``: longer is rarer."""
    kind, text = anchor
    if kind == "substring":
        return 4.0 ** -len(text)  # a Han or Hangul character carries about a syllable or two
    if text in _COMMON:
        return 0.5
    return min(0.5, 2.0 ** -len(text) * (4 if kind == "prefix" else 1))
