"""Properties of the parser: any string gets a query or a QueryError, never a crash."""

from __future__ import annotations

import re
from itertools import islice

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.config import WatchlistConfig
from monitor.errors import QueryError
from monitor.model import Document
from monitor.watchlists import compile_watchlists
from monitor.watchlists.match import MAX_PER_TERM

TERMS = {"set": ["alpha", '"beta gamma"']}

# Query syntax is dense in these characters, so random strings mostly exercise the parser
# rather than the tokenizer; plain st.text() covers everything else.
_PIECES = [*' ab"()*-=/@:,\\\t', "AND", "OR", "NOT", "NEAR(", "title:", "@set", "@nope", "한"]
_SYNTAX = st.lists(st.sampled_from(_PIECES), max_size=30).map("".join)


@settings(max_examples=600, deadline=None)
@given(st.one_of(st.text(min_size=1), _SYNTAX.filter(bool)))
def test_any_string_is_a_query_or_a_query_error(text: str) -> None:
    try:
        index = compile_watchlists([WatchlistConfig(name="w", query=text)], TERMS)
    except QueryError as exc:
        error = exc
    else:
        # A query that compiled never fails at match time.
        index.match(Document("alpha beta gamma", "a b 한국 (title) x y", "src"))
        return
    assert 1 <= error.column <= len(text) + 1
    assert "w" == error.watchlist


# Every kind of term, so each evaluation path meets the text.
_EVERY_KIND = [
    WatchlistConfig(name="regex", query=r"/a|\bb|./"),
    WatchlistConfig(name="words", query='a OR "b a" OR b* OR =A OR 한 OR NEAR(a b, 2)'),
]


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(blacklist_categories=()), max_size=40))
def test_matching_any_text_never_raises_and_spans_lie_in_it(body: str) -> None:
    """Any str, lone surrogates included (a broken feed's), matches or not; never raises."""
    index = compile_watchlists(_EVERY_KIND, TERMS)
    document = Document(body[::-1], body)
    for hit in index.match(document):
        for span in hit.spans:
            text = getattr(document, span.field)
            assert " ".join(text[span.start : span.end].split()) == span.term


def test_a_regex_finds_its_spans_past_a_lone_surrogate() -> None:
    body = "a\ud800 gsomia \U0001f600 gsomia"
    index = compile_watchlists([WatchlistConfig(name="w", query="/gsomia/")], TERMS)
    [hit] = index.match(Document("title", body))
    assert [(3, 9), (12, 18)] == [(span.start, span.end) for span in hit.spans]


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_a_regex_spans_are_where_pythons_re_finds_it(body: str) -> None:
    """RE2 is given ASCII text as bytes, other text as str: the spans are the same
    character offsets either way."""
    index = compile_watchlists([WatchlistConfig(name="w", query="/[a-zé]+|[0-9]/")], TERMS)
    document = Document("title 7", body)
    expected = [
        (field, found.start(), found.end())
        for field in ("title", "body")
        for found in islice(re.finditer("[a-zé]+|[0-9]", getattr(document, field)), MAX_PER_TERM)
    ]
    [hit] = index.match(document)
    assert expected == [(span.field, span.start, span.end) for span in hit.spans]


# NEAR's groups: words, phrases of two, and a set whose alternatives differ in length.
_NEAR_TERMS = {"ab": ['"a b"', "c"]}
_NEAR_GROUPS = {"a": [("a",)], "b": [("b",)], '"b c"': [("b", "c")], "@ab": [("a", "b"), ("c",)]}


def _near_reference(
    tokens: list[str], groups: list[list[tuple[str, ...]]], distance: int
) -> list[tuple[int, int]] | None:
    """NEAR by its definition, trying every instance of every group in turn: each
    instance as the last one, with the first instance of each other group that starts no
    later and ends at most ``distance`` tokens before it; in the groups' order."""
    instances = [
        sorted(
            (start, len(phrase))
            for phrase in group
            for start in range(len(tokens))
            if tuple(tokens[start : start + len(phrase)]) == phrase
        )
        for group in groups
    ]
    for j, candidates in enumerate(instances):
        for last, length in candidates:
            window = []
            for k, other in enumerate(instances):
                pick = [(s, n) for s, n in other if s <= last and last - s - n <= distance]
                if k == j:
                    pick = [(last, length)]
                if not pick:
                    break
                window.append(pick[0])
            else:
                return window
    return None


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.sampled_from("abcx"), max_size=12),
    st.lists(st.sampled_from(sorted(_NEAR_GROUPS)), min_size=2, max_size=3),
    st.integers(0, 3),
)
def test_near_finds_the_instances_its_definition_does(
    tokens: list[str], groups: list[str], distance: int
) -> None:
    """Whether NEAR matches, and which instances explain it, are the exhaustive rule's."""
    query = f"NEAR({' '.join(groups)}, {distance})"
    index = compile_watchlists([WatchlistConfig(name="w", query=query)], _NEAR_TERMS)
    body = " ".join(tokens)
    window = _near_reference(tokens, [_NEAR_GROUPS[g] for g in groups], distance)
    starts = [len(" ".join(tokens[:i])) + (i > 0) for i in range(len(tokens))]
    expected = list(  # a span shown once, as a hit shows it
        dict.fromkeys(
            ("body", starts[start], starts[start + size - 1] + 1) for start, size in window or ()
        )
    )
    hits = index.match(Document("x", body))
    assert expected == [(s.field, s.start, s.end) for hit in hits for s in hit.spans]
