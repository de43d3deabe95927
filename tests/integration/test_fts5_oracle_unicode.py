"""FTS5 as the oracle on text that is not ASCII: accents (precomposed and combining),
case pairs that fold oddly (dotless and dotted i, sharp s, final sigma), Cyrillic,
Arabic digits, ligatures, soft hyphens, zero-width spaces, curly apostrophes and dashes.

The Reuters corpus of the main oracle test is nearly all ASCII, so folding and offset
mapping for such text were compared with FTS5 nowhere else. Documents and queries are
random (fixed seed) over that alphabet; each query is a phrase, a prefix, a title-scoped
phrase or a NEAR cut from a document in its own spelling, so accents and case differ
between query and text as they do in the wild.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from itertools import islice

import pytest

from monitor.config import WatchlistConfig
from monitor.errors import QueryError
from monitor.model import Document
from monitor.watchlists import compile_watchlists
from monitor.watchlists.tokens import tokenize

SEED = 3
ALPHABET = [
    *"aA\u00e9\u00c9eE\u00f6\u00d6o\u00df\u0131\u0130iI\u00e7\u00c7",  # dotless i, dotted I
    *("e\u0301", "E\u0301", "\u0301"),  # combining acute, alone too
    *"\u01c5\u03a9\u03c9\u03c2\u042f\u044f\u0451",  # title-case digraph, Greek, Cyrillic
    *"\u0661\ufb01",  # an Arabic-Indic digit, the fi ligature
    *"-\u2013\u2019'._",  # hyphen, en dash, curly and straight apostrophes
    *("\u00ad", "\u200b"),  # soft hyphen, zero-width space
    *"   ",
]


def _text(rng: random.Random, most: int) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, most)))


def _queries(
    rng: random.Random, documents: list[tuple[str, str]], vocabulary: list[str]
) -> Iterator[tuple[str, str]]:
    """(ours, FTS5's) pairs of the same query."""
    while True:
        body = rng.choice(documents)[1]
        if len(body) < 3:
            continue
        start = rng.randrange(len(body))
        piece = body[start : start + rng.randint(1, 8)].replace('"', " ")
        if not tokenize(piece):
            continue  # a phrase of no token: we refuse it, FTS5 ignores it
        kind = rng.choice(["phrase", "prefix", "title", "near"])
        if kind == "phrase":
            yield f'"{piece}"', f'"{piece}"'
        elif kind == "prefix":
            yield f'"{piece}"*', f'"{piece}" *'
        elif kind == "title":
            yield f'title:"{piece}"', f'title : "{piece}"'
        else:
            other, gap = rng.choice(vocabulary), rng.randint(0, 3)
            query = f'NEAR("{piece}" "{other}", {gap})'
            yield query, query


def test_queries_on_text_beyond_ascii_select_what_fts5_selects() -> None:
    rng = random.Random(SEED)
    documents = [(_text(rng, 8), _text(rng, 30)) for _ in range(400)]
    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE VIRTUAL TABLE t USING fts5(title, body, tokenize='unicode61 remove_diacritics 2')"
    )
    db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'row')")
    db.executemany(
        "INSERT INTO t(rowid, title, body) VALUES (?, ?, ?)",
        [(n, *d) for n, d in enumerate(documents)],
    )
    vocabulary = [term for (term,) in db.execute("SELECT term FROM v")]
    compared, differences = 0, []
    for ours, theirs in islice(_queries(rng, documents, vocabulary), 600):
        try:
            expected = {row for (row,) in db.execute("SELECT rowid FROM t(?)", (theirs,))}
        except sqlite3.OperationalError:
            continue  # FTS5 refuses it (a piece with no token): not in the shared subset
        try:
            index = compile_watchlists([WatchlistConfig(name="w", query=ours)], {})
        except QueryError:
            assert not expected, f"{ours!r} refused, but FTS5 selects {sorted(expected)}"
            continue
        found = {
            n for n, (title, body) in enumerate(documents) if index.match(Document(title, body))
        }
        compared += 1
        if found != expected:
            differences.append((ours, sorted(found ^ expected)[:3]))
    assert compared > 300
    assert [] == differences


# Disagreements a differential fuzzer found, minimised: (our query, FTS5's spelling of it,
# documents as (title, body)). Each must select what FTS5 selects.
FUZZED: list[tuple[str, str, list[tuple[str, str]]]] = [
    # a keyword after a Unicode space is a word there, not an operator
    ("a \u00a0OR b", "a \u00a0OR b", [("", "a b"), ("", "a or b"), ("", "b")]),
    ("a \u3000OR\u3000b", "a \u3000OR\u3000b", [("", "a b"), ("", "a or b"), ("", "b")]),
    ("a \u2028NOT b", "a \u2028NOT b", [("", "a b"), ("", "a not b"), ("", "a")]),
    ("(a \u00a0AND b)", "(a \u00a0AND b)", [("", "a b"), ("", "a and b")]),
    # a doubled quote inside a phrase is FTS5's escape for a quote: one phrase
    ('"a""b"', '"a""b"', [("", "a b"), ("", "b a"), ("", "a x b")]),
    ('NEAR("a""b" x, 0)', 'NEAR("a""b" x, 0)', [("", "a x b"), ("", "a b x")]),
    ('"a"""', '"a"""', [("", "a"), ("", "b")]),
    # '+' inside a word is punctuation here and FTS5's phrase join there: the same phrase
    # (at a word's edge, where FTS5 would join it to the next term, it is refused)
    ("a+b", "a+b", [("", "a b"), ("", "b a"), ("", "a x b")]),
    ("NEAR(a+b x, 0)", "NEAR(a+b x, 0)", [("", "a b x"), ("", "a x b")]),
]


def fts5_table(documents: list[tuple[str, str]]) -> sqlite3.Connection:
    """An in-memory FTS5 table ``t`` of ``documents`` (title, body), rowid their index."""
    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE VIRTUAL TABLE t USING fts5(title, body, tokenize='unicode61 remove_diacritics 2')"
    )
    db.executemany(
        "INSERT INTO t(rowid, title, body) VALUES (?, ?, ?)",
        [(n, *d) for n, d in enumerate(documents)],
    )
    return db


@pytest.mark.parametrize(("ours", "theirs", "documents"), FUZZED)
def test_fuzzed_cases_select_what_fts5_selects(
    ours: str, theirs: str, documents: list[tuple[str, str]]
) -> None:
    db = fts5_table(documents)
    expected = {row for (row,) in db.execute("SELECT rowid FROM t(?)", (theirs,))}
    index = compile_watchlists([WatchlistConfig(name="w", query=ours)], {})
    found = {n for n, (title, body) in enumerate(documents) if index.match(Document(title, body))}
    assert expected == found


def test_near_distances_past_fts5s_int_are_refused() -> None:
    """FTS5 keeps NEAR's distance in a C int: 2147483648 wraps to a negative distance
    there, and the NEAR matches nothing. Up to 2147483647 we select what FTS5 selects;
    beyond, the query is refused when the config loads rather than read differently."""
    documents = [("", "a b"), ("", "a " + "x " * 40 + "b"), ("", "b x a"), ("", "a")]
    db = fts5_table(documents)

    def fts5(query: str) -> set[int]:
        return {row for (row,) in db.execute("SELECT rowid FROM t(?)", (query,))}

    for distance in (0, 1, 39, 40, 2147483647):
        query = f"NEAR(a b, {distance})"
        index = compile_watchlists([WatchlistConfig(name="w", query=query)], {})
        found = {n for n, d in enumerate(documents) if index.match(Document(*d))}
        assert fts5(query) == found, query
    assert set() == fts5("NEAR(a b, 2147483648)")  # wrapped: not what anyone meant
    with pytest.raises(QueryError, match="NEAR's distance is at most 2147483647"):
        compile_watchlists([WatchlistConfig(name="w", query="NEAR(a b, 2147483648)")], {})
