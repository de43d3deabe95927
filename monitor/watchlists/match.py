"""Evaluating a query tree against one document, and explaining a match.

``DocumentView`` folds a document's fields once and caches what queries ask of it
(folded fields, token lists, sets, positions, original spellings, offsets), so the
watch-lists the index selects share that work. Words and ASCII phrases are found by
searching the folded text; tokens are split out only for what needs positions (NEAR,
phrases in other scripts or with case-sensitive words), offsets and original spellings
only when a case-sensitive term or an explanation needs them.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from functools import lru_cache
from itertools import islice
from operator import attrgetter

from monitor.model import Document, Hit, Span
from monitor.watchlists.query import FIELDS, And, Near, Node, Not, Or, Phrase, Regex, Word
from monitor.watchlists.tokens import TokenSpans, folded_text

SNIPPET_CONTEXT = 80  # characters of context either side of a match
MAX_SNIPPETS = 3
MAX_SPANS = 20  # per hit: enough to highlight, bounded for pathological stories
MAX_PER_TERM = 5  # occurrences of one term shown: the sixth "Korea" explains nothing new
MAX_TERM = 200  # characters of a matched term shown (a regex can match a whole body)
_SURROGATE = re.compile("[\ud800-\udfff]")
# A line break of a query of several lines, with the blanks around it: the clause an
# alert shows is one line, as its terms and snippets are (spaces inside it as written).
_QUERY_BREAK = re.compile(r"[ \t]*(?:\r?\n[ \t]*)+")
_FIELD_TEXTS = attrgetter(*FIELDS)  # a document's fields, in FIELDS order, in one C call
# Each run of fields next to each other in FIELDS order, with its first and last field:
# their padded text is a slice of ``DocumentView.all_fields()``.
_RUNS = {
    FIELDS[i:j]: (FIELDS[i], FIELDS[j - 1])
    for i in range(len(FIELDS))
    for j in range(i + 1, len(FIELDS) + 1)
}


class DocumentView:
    """One document, folded, with caches for query evaluation.

    All fields are folded together into one padded text, which is all the index needs
    to pick candidate watch-lists; each field's folded text is a slice of it. Token
    lists, sets and positions are made on first use, so a story no watch-list could
    match costs one fold and a scan.
    """

    __slots__ = (
        "_bounds",
        "_folded",
        "_joined",
        "_offsets",
        "_original",
        "_padded",
        "_positions",
        "_regex_texts",
        "_sets",
        "_sorted",
        "_tokens",
        "ascii",
        "document",
    )

    def __init__(self, document: Document) -> None:
        self.document = document
        self.ascii = False  # whether every field is ASCII, once all_fields() knows
        self._joined = ""
        self._bounds: dict[str, tuple[int, int]] = {}
        self._folded: dict[str, str] = {}
        self._tokens: dict[str, list[str]] = {}
        self._padded: dict[tuple[str, ...], str] = {}
        self._sets: dict[str, frozenset[str]] = {}
        self._sorted: dict[str, list[str]] = {}
        self._positions: dict[tuple[str, Word], list[int]] = {}
        self._offsets: dict[str, TokenSpans] = {}
        self._original: dict[str, list[str]] = {}
        self._regex_texts: dict[str, str | bytes] = {}

    def all_fields(self) -> str:
        """Every field's folded text, in FIELDS order, with a space at each end and
        between them: every token has a space either side, none runs into the next field.
        """
        if not self._joined:
            texts = _FIELD_TEXTS(self.document)
            padded = f" {' '.join(texts)} "
            self.ascii = padded.isascii()
            if self.ascii:
                # Folding ASCII keeps every length, so one fold does: each field's
                # folded text lies where the field lay (a space folds to a space).
                self._joined = folded_text(padded)
            else:
                folded = self._folded
                for field, text in zip(FIELDS, texts, strict=True):
                    folded[field] = folded_text(text)
                self._joined = f" {' '.join([folded[field] for field in FIELDS])} "
        return self._joined

    def folded(self, field: str) -> str:
        found = self._folded.get(field)
        if found is None:
            start, end = self._span(field)
            found = self._folded[field] = self._joined[start:end]
        return found

    def _span(self, field: str) -> tuple[int, int]:
        """Where ``field``'s folded text lies in ``all_fields()``."""
        bounds = self._bounds
        if not bounds:
            self.all_fields()
            start = 1
            for other in FIELDS:
                # ASCII folds to the same length; other text has every fold cached.
                folded = self._folded.get(other)
                length = len(self.text(other) if folded is None else folded)
                bounds[other] = (start, start + length)
                start += length + 1
        return bounds[field]

    def bounds(self, field: str) -> tuple[str, int, int]:
        """``all_fields()`` and where ``padded(field)`` lies in it, ``text[start:end]``:
        searching there with bounds spares copying the field out."""
        start, end = self._span(field)
        return self._joined, start - 1, end + 1

    def tokens(self, field: str) -> list[str]:
        found = self._tokens.get(field)
        if found is None:
            found = self._tokens[field] = self.folded(field).split()
        return found

    def text(self, field: str) -> str:
        text: str = getattr(self.document, field)
        return text

    def regex_text(self, field: str) -> str | bytes:
        """The field's text for RE2, whose matches' offsets are the field's own.

        ASCII text is given as bytes, encoded once: RE2 works on UTF-8, and its wrapper
        encoded a str again for every search and mapped each match's offsets back, most
        of the time a catch-all regex (``/./``) took to explain. Other text stays str,
        each lone surrogate (a broken feed's) made U+FFFD, one character for one, since
        RE2 takes only what encodes as UTF-8.
        """
        found = self._regex_texts.get(field)
        if found is None:
            text = self.text(field)
            found = text.encode("ascii") if text.isascii() else _SURROGATE.sub("\ufffd", text)
            self._regex_texts[field] = found
        return found

    def padded(self, *fields: str) -> str:
        """The fields' folded texts joined, with a space at each end and between them."""
        found = self._padded.get(fields)
        if found is None:
            run = _RUNS.get(fields)
            if run is not None:
                # Fields next to each other in FIELDS order: a slice, padding included.
                start, end = self._span(run[0])[0], self._span(run[1])[1]
                found = self._joined[start - 1 : end + 1]
            else:
                found = f" {' '.join(map(self.folded, fields))} "
            self._padded[fields] = found
        return found

    def contains(self, word: Word, *fields: str) -> bool:
        """Whether some token of ``fields`` could match ``word``, by a substring search.

        Exact for everything but case-sensitive words. Searching the folded text in C is
        cheaper than building the token set for the few words a query asks about.
        """
        padded = self.padded(*fields)
        if word.spaceless:
            return word.text in padded
        return (f" {word.text}" if word.prefix else f" {word.text} ") in padded

    def token_set(self, field: str) -> frozenset[str]:
        found = self._sets.get(field)
        if found is None:
            found = self._sets[field] = frozenset(self.tokens(field))
        return found

    def offsets(self, field: str) -> TokenSpans:
        found = self._offsets.get(field)
        if found is None:
            found = self._offsets[field] = TokenSpans(self.text(field), self.folded(field))
        return found

    def original(self, field: str) -> list[str]:
        """Each token as written (NFC), for case-sensitive terms."""
        found = self._original.get(field)
        if found is None:
            text = self.text(field)
            found = self._original[field] = [
                unicodedata.normalize("NFC", text[a:b]) for a, b in self.offsets(field)
            ]
        return found

    def positions(self, field: str, word: Word) -> list[int]:
        """Indexes of the tokens of ``field`` that ``word`` matches."""
        key = (field, word)
        found = self._positions.get(key)
        if found is None:
            found = self._positions[key] = self._find(field, word)
        return found

    def _find(self, field: str, word: Word) -> list[int]:
        if not self.contains(word, field):
            return []
        tokens = self.tokens(field)
        if word.spaceless:
            distinct = [token for token in self.token_set(field) if word.text in token]
        elif word.prefix:
            distinct = self._with_prefix(field, word.text)
        else:
            distinct = [word.text]
        found = [i for token in distinct for i in _indexes(tokens, token)]
        if len(distinct) > 1:
            found.sort()
        if word.cased is not None or (word.spaceless and (word.joins_previous or word.joins_next)):
            found = [i for i in found if self.word_at(field, word, i)]
        return found

    def _with_prefix(self, field: str, prefix: str) -> list[str]:
        """The field's distinct tokens starting with ``prefix``, by bisecting them sorted."""
        ordered = self._sorted.get(field)
        if ordered is None:
            ordered = self._sorted[field] = sorted(self.token_set(field))
        found = []
        for token in ordered[bisect_left(ordered, prefix) :]:
            if not token.startswith(prefix):
                break
            found.append(token)
        return found

    def word_at(self, field: str, word: Word, i: int) -> bool:
        """Whether token ``i`` of ``field`` is matched by ``word``."""
        token = self.tokens(field)[i]
        if word.spaceless:
            return _spaceless_at(word, token)
        if word.prefix:
            if not token.startswith(word.text):
                return False
        elif token != word.text:
            return False
        if word.cased is None:
            return True
        original = self.original(field)[i]
        return original.startswith(word.cased) if word.prefix else original == word.cased


def _spaceless_at(word: Word, token: str) -> bool:
    """Whether spaceless ``word`` is in ``token``: anywhere, or at the edge where it
    touches its neighbour in the query (the whole token if it touches both)."""
    if word.joins_previous and word.joins_next:
        return token == word.text
    if word.joins_previous:
        return token.startswith(word.text)
    if word.joins_next:
        return token.endswith(word.text)
    return word.text in token


def _touching(view: DocumentView, field: str, start: int, words: tuple[Word, ...]) -> bool:
    """Whether the tokens from ``start`` touch in the text where ``words`` touch in the
    query (``6자회담``, split where the script changes, is not "6 자회담")."""
    offsets = view.offsets(field)
    for k, word in enumerate(words):
        if word.joins_previous and offsets[start + k - 1][1] != offsets[start + k][0]:
            return False
    return True


def _indexes(tokens: list[str], token: str) -> list[int]:
    # list.index scans in C; a Python loop over every token would cost more than tokenizing.
    found = []
    i = -1
    try:
        while True:
            i = tokens.index(token, i + 1)
            found.append(i)
    except ValueError:
        return found


def phrase_starts(view: DocumentView, phrase: Phrase, field: str) -> list[int]:
    """Token indexes where ``phrase`` starts in ``field``.

    A phrase with a word missing from the field is rejected by set lookups; otherwise it
    is located by its longest word (likely the rarest) and the others checked around it.
    """
    words = phrase.words
    if len(words) == 1:
        return view.positions(field, words[0])
    offset = 0
    for k, word in enumerate(words):
        if not view.contains(word, field):
            return []
        if not (word.prefix or word.spaceless) and len(word.text) > len(words[offset].text):
            offset = k
    last = len(view.tokens(field)) - len(words)
    starts = [
        start
        for start in (position - offset for position in view.positions(field, words[offset]))
        if 0 <= start <= last
        and all(view.word_at(field, word, start + k) for k, word in enumerate(words) if k != offset)
    ]
    if starts and any(word.joins_previous for word in words):
        starts = [start for start in starts if _touching(view, field, start, words)]
    return starts


def _phrase_found(view: DocumentView, phrase: Phrase) -> bool:
    words = phrase.words
    fields = phrase.fields or ()
    if len(words) == 1 and words[0].cased is None:
        return view.contains(words[0], *fields)  # one search, whatever the fields
    for field in fields:
        bounds = _search_bounds(view, phrase, field)
        if bounds is not None:
            # A search of the folded text in C; token positions would mean splitting
            # the field, which costs more than the search.
            if next(_phrase_matches(words, *bounds), None) is not None:
                return True
        elif phrase_starts(view, phrase, field):
            return True
    return False


def _search_bounds(view: DocumentView, phrase: Phrase, field: str) -> tuple[str, int, int] | None:
    """``view.bounds(field)``, where ``phrase`` can be found in ``field`` by
    ``_phrase_pattern``: folding ASCII moves no offsets, and no word needs its original
    spelling checked. None elsewhere. One call for both questions, and no look at the
    field's text when the view knows every field is ASCII: this runs for every phrase
    of every candidate, field by field."""
    for word in phrase.words:
        if word.cased:
            return None
    if view.ascii or view.text(field).isascii():
        return view.bounds(field)
    return None


def near_window(view: DocumentView, near: Near, field: str) -> list[tuple[int, Phrase]] | None:
    """One instance per group, in the groups' order, satisfying NEAR in ``field``: the
    token it starts at and the phrase found there; None if there is none.

    FTS5's rule: with ``last`` the latest start among the chosen instances, each instance
    ends at most ``distance`` tokens before ``last``. Trying each instance as ``last`` and
    taking, per other group, the first instance that starts no later and ends close
    enough is exhaustive, since the groups' choices are then independent. That pick is
    a bisection per phrase length (``_NearGroup``), so a story with thousands of
    instances of each term costs n log n, not n squared.
    """
    groups: list[_NearGroup] = []
    for group in near.groups:
        found = _NearGroup(
            (start, phrase) for phrase in group for start in phrase_starts(view, phrase, field)
        )
        if not found.instances:
            return None
        groups.append(found)
    for j, candidates in enumerate(groups):
        for last, length in candidates.instances:
            window = []  # in the order of the groups, as a hit lists its terms
            for k, other in enumerate(groups):
                pick = (last, length) if k == j else other.first_near(last, near.distance)
                if pick is None:
                    break
                window.append((pick[0], other.phrases[pick]))
            else:
                return window
    return None


class _NearGroup:
    """A NEAR group's instances, ``(start, length)`` in order, the phrase found at each,
    and their starts by length.

    A group's phrases have few distinct lengths; for each, the instances ending close
    enough before a token are a run of starts found by bisection.
    """

    __slots__ = ("instances", "phrases", "starts")

    def __init__(self, found: Iterable[tuple[int, Phrase]]) -> None:
        self.phrases: dict[tuple[int, int], Phrase] = {}
        for start, phrase in found:
            self.phrases.setdefault((start, len(phrase.words)), phrase)
        self.instances = sorted(self.phrases)
        self.starts: dict[int, list[int]] = {}
        for start, length in self.instances:
            self.starts.setdefault(length, []).append(start)

    def first_near(self, last: int, distance: int) -> tuple[int, int] | None:
        """The first instance (in order) starting at or before ``last`` and ending at
        most ``distance`` tokens before it, or None."""
        best: tuple[int, int] | None = None
        for length, starts in self.starts.items():
            # last - start - length <= distance, that is start >= last - distance - length
            i = bisect_left(starts, last - distance - length)
            if i < len(starts) and starts[i] <= last:
                candidate = (starts[i], length)
                if best is None or candidate < best:
                    best = candidate
        return best


def evaluate(node: Node, view: DocumentView) -> bool:
    """Whether ``node`` matches the document behind ``view``."""
    # Loops rather than all()/any() over generators: this is the hot path per candidate.
    match node:
        case Phrase():
            return _phrase_found(view, node)
        case And():
            for child in node.children:  # noqa: SIM110 - the loop is the point, see above
                if not evaluate(child, view):
                    return False
            return True
        case Or():
            for child in node.children:  # noqa: SIM110 - the loop is the point, see above
                if evaluate(child, view):
                    return True
            return False
        case Not():
            return not evaluate(node.child, view)
        case Near():
            return any(near_window(view, node, field) is not None for field in node.fields or ())
        case Regex():
            return any(node.compiled.search(view.regex_text(field)) for field in node.fields or ())


def matching_hit(watchlist: str, node: Node, view: DocumentView) -> Hit | None:
    """The hit of ``node`` on the document behind ``view``, None if it does not match.

    What fires is the first of its top-level alternatives that matches by itself (a
    query without alternatives is its own), and the hit explains that clause. A phrase
    has spans exactly where it matches, so a phrase clause is not evaluated first: its
    spans are gathered at once, sparing a second search of the text.
    """
    if isinstance(node, Or):
        for child in node.children:
            hit = matching_hit(watchlist, child, view)
            if hit is not None:
                return hit
        return None
    if isinstance(node, Phrase):
        found: dict[tuple[str, int, int], None] = {}
        _gather_phrase(node, view, found)
        return _hit(watchlist, node, view, found) if found else None
    if not evaluate(node, view):
        return None
    return _hit(watchlist, node, view, _evidence(node, view))


def _gather(node: Node, view: DocumentView, found: dict[tuple[str, int, int], None]) -> bool:
    """Add the ``(field, start, end)`` character spans of what made a matching ``node``
    match to ``found``, in order; True once it holds MAX_SPANS. Loops and lists, not
    generators: this runs for every hit."""
    match node:
        case Phrase():
            return _gather_phrase(node, view, found)
        case And():
            for child in node.children:
                if _gather(child, view, found):
                    return True
        case Or():
            for child in node.children:
                # A phrase's or a regex's evidence is empty unless it matches: no need to
                # evaluate it first (for a phrase, finding it twice).
                if (isinstance(child, Phrase | Regex) or evaluate(child, view)) and _gather(
                    child, view, found
                ):
                    return True
        case Near():
            for field in node.fields or ():
                for start, phrase in near_window(view, node, field) or ():
                    found[(field, *_instance_span(view, field, phrase, start))] = None
                    if len(found) >= MAX_SPANS:
                        return True
        case Regex():
            for field in node.fields or ():
                for match in islice(node.compiled.finditer(view.regex_text(field)), MAX_PER_TERM):
                    start, end = match.span()  # one call: RE2's checks the group each time
                    if end > start:
                        found[field, start, end] = None
                        if len(found) >= MAX_SPANS:
                            return True
    return False


def _gather_phrase(
    phrase: Phrase, view: DocumentView, found: dict[tuple[str, int, int], None]
) -> bool:
    """``_gather`` for a phrase, which a phrase clause's hit calls directly."""
    for field in phrase.fields or ():
        for start, end in _phrase_spans(view, phrase, field):
            found[field, start, end] = None
            if len(found) >= MAX_SPANS:
                return True
    return False


def _phrase_spans(view: DocumentView, phrase: Phrase, field: str) -> list[tuple[int, int]]:
    """Character spans of the first occurrences of ``phrase`` in ``field``."""
    bounds = _search_bounds(view, phrase, field)
    if bounds is not None:
        # A search of the folded text finds the spans without mapping every token to
        # its offsets (which costs more than tokenizing).
        text, start, end = bounds
        words = phrase.words
        if len(words) == 1 and not words[0].prefix:
            return _token_spans(text, start, end, words[0].text)
        found = _phrase_matches(words, text, start, end)
        # A match starts at the space before the phrase: the phrase's offset in the
        # field, as the padded field starts with a space.
        spans = []
        for match in islice(found, MAX_PER_TERM):
            first, last = match.span()
            spans.append((first - start, last - 1 - start))
        return spans
    starts = phrase_starts(view, phrase, field)[:MAX_PER_TERM]
    # Offsets only for a phrase that is there: mapping them costs.
    return [_instance_span(view, field, phrase, start) for start in starts]


def _instance_span(view: DocumentView, field: str, phrase: Phrase, start: int) -> tuple[int, int]:
    """The characters of ``phrase`` found at token ``start`` of ``field``."""
    words = phrase.words
    return (
        _word_span(view, field, words[0], start)[0],
        _word_span(view, field, words[-1], start + len(words) - 1)[1],
    )


def _word_span(view: DocumentView, field: str, word: Word, i: int) -> tuple[int, int]:
    """The characters of token ``i`` that ``word`` matched: the token, or for a word in
    a spaceless script, the stretch of the run it matched (協定 in 保護協定の破棄).

    Where folding changed the run's length (a dropped mark), its folded characters do
    not line up with the written ones, and the run is shown whole.
    """
    start, end = view.offsets(field)[i]
    if not word.spaceless:
        return start, end
    token = view.tokens(field)[i]
    if end - start != len(token):
        return start, end
    if word.joins_previous:
        at = 0
    elif word.joins_next:
        at = len(token) - len(word.text)
    else:
        at = token.find(word.text)
    return start + at, start + at + len(word.text)


def _token_spans(text: str, start: int, end: int, token: str) -> list[tuple[int, int]]:
    """Spans of the first occurrences of ``token`` in a padded field, ``text[start:end]``,
    as its regex would find them, by ``str.find``: a word needs no regex (nor a place in
    the cache)."""
    needle = f" {token} "
    found: list[tuple[int, int]] = []
    at = text.find(needle, start, end)
    while at >= 0 and len(found) < MAX_PER_TERM:
        # ``at`` is the space before the token, which the padding's leading space makes
        # the token's offset in the field.
        found.append((at - start, at - start + len(token)))
        at = text.find(needle, at + len(token) + 1, end)
    return found


# Larger than the prefixes and multi-word phrases of 10,000 watch-lists: a cache that
# thrashes compiles a regex per hit.
MAX_PATTERNS = 16_384


@lru_cache(maxsize=MAX_PATTERNS)
def _phrase_pattern(words: tuple[Word, ...]) -> re.Pattern[str]:
    """A regex for ``words`` in padded folded text: whole tokens separated by spaces.

    It starts with a literal, the space before the first word and the word: see
    ``_phrase_matches``.
    """
    parts = (re.escape(word.text) + (r"\S*" if word.prefix else "") for word in words)
    return re.compile(" " + " +".join(parts) + "(?= )")


# Each phrase's regex by the identity of its words. The cache above hashes the words
# (a tuple of dataclasses) on every call, and compares them with an equal phrase's from
# another watch-list (50 lists may share a name): more than the search costs.
_PATTERNS: dict[int, tuple[tuple[Word, ...], re.Pattern[str]]] = {}


def _pattern_of(words: tuple[Word, ...]) -> re.Pattern[str]:
    """``_phrase_pattern(words)``, looked up by ``id(words)``: an entry holds its words,
    so no other object can have that id while it is there."""
    entry = _PATTERNS.get(id(words))
    if entry is None:
        if len(_PATTERNS) >= MAX_PATTERNS:
            _PATTERNS.clear()  # a reload's phrases replace the old ones
        entry = _PATTERNS[id(words)] = (words, _phrase_pattern(words))
    return entry[1]


def _phrase_matches(
    words: tuple[Word, ...], text: str, start: int, end: int
) -> Iterator[re.Match[str]]:
    """The matches of ``_phrase_pattern(words)`` in ``text[start:end]``, as ``finditer``
    finds them, each place found by ``str.find`` and confirmed by the regex.

    Every match starts with a space and the first word, and ``str.find`` looks for that
    about three times faster than ``re`` scans for its literal prefix.
    """
    needle = f" {words[0].text}"
    at = text.find(needle, start, end)
    if at < 0:
        return  # the field lacks the first word (most do): no regex to look up
    pattern = _pattern_of(words)
    while at >= 0:
        match = pattern.match(text, at, end)
        if match is None:
            at = text.find(needle, at + 1, end)
        else:
            yield match
            at = text.find(needle, match.end(), end)


def _evidence(clause: Node, view: DocumentView) -> dict[tuple[str, int, int], None]:
    """The ``(field, start, end)`` spans ``_gather`` finds for ``clause``, in order."""
    found: dict[tuple[str, int, int], None] = {}
    _gather(clause, view, found)
    return found


def _hit(
    watchlist: str, clause: Node, view: DocumentView, found: dict[tuple[str, int, int], None]
) -> Hit:
    """The hit of a matching ``clause`` with its evidence ``found``: spans and snippets.

    Spans, and so terms and snippets, follow the clause's order: the term written first
    (usually the telling one, GSOMIA before its context words) comes first.
    """
    document = view.document
    spans = [
        Span(field, start, end, _shown_term(getattr(document, field)[start:end]))
        for field, start, end in found
    ]
    return Hit(
        watchlist, _QUERY_BREAK.sub(" ", clause.text), tuple(spans), snippets(document, spans)
    )


def _shown_term(matched: str) -> str:
    """A matched stretch as a term: on one line, at most MAX_TERM characters (here, not
    with text.cap: the matcher does without text.py's HTML sanitiser and its import)."""
    term = " ".join(matched.split())
    return term if len(term) <= MAX_TERM else term[: MAX_TERM - 1] + "…"


def snippets(document: Document, spans: list[Span]) -> tuple[str, ...]:
    """Up to MAX_SNIPPETS passages, one around each span not already shown, collapsed.
    A span longer than MAX_TERM (``/GSOMIA[^.]*/`` over a body without full stops)
    shows its start: every alert, payload and stored match quotes the snippets."""
    windows: list[tuple[str, int, int]] = []
    for span in spans:  # loops, not any() over a generator: this runs for every hit
        field, first, last = span.field, span.start, span.end
        for shown, a, b in windows:
            if shown == field and a <= first and last <= b:
                break
        else:
            text: str = getattr(document, field)
            start = _word_start(text, max(0, first - SNIPPET_CONTEXT))
            end = _word_end(text, min(len(text), min(last, first + MAX_TERM) + SNIPPET_CONTEXT))
            windows.append((field, start, end))
            if len(windows) >= MAX_SNIPPETS:
                break
    return tuple([" ".join(getattr(document, f)[a:b].split()) for f, a, b in windows])


def _word_start(text: str, pos: int) -> int:
    """``pos`` moved forward past a cut-off word, so a snippet starts cleanly."""
    if pos == 0:
        return 0
    space = text.find(" ", pos)
    return _cluster_edge(text, pos, -1) if space < 0 or space - pos > 20 else space + 1


def _word_end(text: str, pos: int) -> int:
    if pos >= len(text):
        return len(text)
    space = text.rfind(" ", 0, pos)
    return _cluster_edge(text, pos, 1) if space < 0 or pos - space > 20 else space


def _cluster_edge(text: str, pos: int, step: int) -> int:
    """``pos`` moved by ``step`` until it is not inside a character as a reader sees it.

    A snippet cut in a long run without spaces (Thai, a URL, text in NFD) must not start
    with a combining mark or vowel sign that lost its letter, nor end on a letter that
    lost its marks, nor split an emoji joined with ZWJ."""
    while 0 < pos < len(text) and (_continues(text[pos]) or text[pos - 1] == "\u200d"):
        pos += step
    return pos


def _continues(character: str) -> bool:
    """Whether ``character`` belongs to the one before it: a mark (accents, Thai vowel
    signs and tone marks, variation selectors) or a zero-width joiner."""
    return unicodedata.category(character)[0] == "M" or character == "\u200d"
