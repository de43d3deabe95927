"""Properties of the parser: any string gets a query or a QueryError, never a crash."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.config import WatchlistConfig
from monitor.errors import QueryError
from monitor.model import Document
from monitor.watchlists import compile_watchlists

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
