"""SQLite FTS5 is the oracle for the shared subset of the query language.

Two checks: our tokenizer tables agree with FTS5's ``unicode61 remove_diacritics 2`` on every
code point it knows, and hundreds of random queries (fixed seed) select the same Reuters
articles through ``monitor match --jsonl`` as through an FTS5 ``MATCH``.

Run this file as a script to regenerate ``monitor/watchlists/_unicode61.py`` from the SQLite
at hand: ``python tests/integration/test_fts5_oracle.py > monitor/watchlists/_unicode61.py``.
"""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from monitor.watchlists import _unicode61
from monitor.watchlists.tokens import tokenize

UNICODE61 = "unicode61 remove_diacritics 2"
SEED = 20191122  # the day Seoul suspended its decision to end GSOMIA
QUERIES = 400
FLAT_QUERIES = 100  # of the QUERIES: operators mixed without parentheses


@dataclass(frozen=True)
class Unicode61Tables:
    """How FTS5 treats a range of code points: what separates, what is dropped, what folds."""

    separators: list[tuple[int, int]]
    dropped: list[int]
    folds: dict[int, int]


def probe_unicode61(first: int, last: int) -> Unicode61Tables:
    """Ask FTS5 about every code point in ``first..last``.

    Each code point ``c`` is indexed as ``"c qcq"``: a separator yields the tokens q, q; a
    mark that FTS5 drops inside a token yields only qq (it cannot start a token); any other
    code point is a token character, and its first token shows what it folds to.
    """
    db = sqlite3.connect(":memory:")
    db.execute(f"CREATE VIRTUAL TABLE t USING fts5(x, tokenize='{UNICODE61}')")
    db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
    points = [c for c in range(first, last + 1) if not 0xD800 <= c <= 0xDFFF]
    db.executemany(
        "INSERT INTO t(rowid, x) VALUES (?, ?)", ((c, f"{chr(c)} q{chr(c)}q") for c in points)
    )
    found: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for term, doc, offset in db.execute("SELECT term, doc, offset FROM v"):
        found[doc].append((offset, term))
    separators: list[tuple[int, int]] = []
    dropped: list[int] = []
    folds: dict[int, int] = {}
    for c in points:
        tokens = [term for _, term in sorted(found[c])]
        if tokens == ["q", "q"]:
            if separators and separators[-1][1] == c - 1:
                separators[-1] = (separators[-1][0], c)
            else:
                separators.append((c, c))
        elif tokens == ["qq"]:
            dropped.append(c)
        elif len(tokens) == 2 and len(tokens[0]) == 1 and tokens[1] == f"q{tokens[0]}q":
            if tokens[0] != chr(c):
                folds[c] = ord(tokens[0])
        else:
            raise AssertionError(f"unexpected FTS5 tokens for U+{c:04X}: {tokens}")
    db.close()
    return Unicode61Tables(separators, dropped, folds)


def _rows(items: list[str], per_line: int) -> Iterator[str]:
    for i in range(0, len(items), per_line):
        yield "    " + " ".join(items[i : i + per_line])


def render_unicode61_module(tables: Unicode61Tables) -> str:
    """The source of ``monitor/watchlists/_unicode61.py`` for ``tables``."""
    separators = [f"(0x{a:04X}, 0x{b:04X})," for a, b in tables.separators]
    dropped = [f"0x{c:04X}," for c in tables.dropped]
    folds = [f"0x{a:04X}: 0x{b:04X}," for a, b in sorted(tables.folds.items())]
    return "\n".join(
        [
            '"""SQLite FTS5 ``unicode61 remove_diacritics 2`` tables. Generated: do not edit.',
            "",
            f"Made from SQLite {sqlite3.sqlite_version} by",
            "``python tests/integration/test_fts5_oracle.py > monitor/watchlists/_unicode61.py``,",
            "which asks FTS5 how it tokenizes every code point; a test in that file checks these",
            "tables against the SQLite it runs with. Code points not listed are token characters",
            "that fold to themselves.",
            '"""',
            "",
            "# fmt: off",
            "# Inclusive ranges of code points that separate tokens.",
            "SEPARATORS: tuple[tuple[int, int], ...] = (",
            *_rows(separators, 4),
            ")",
            "",
            "# Combining marks removed inside a token; elsewhere they separate like punctuation.",
            "DROPPED: tuple[int, ...] = (",
            *_rows(dropped, 8),
            ")",
            "",
            "# Code point -> the code point it folds to (lower case, diacritics removed).",
            "FOLDS: dict[int, int] = {",
            *_rows(folds, 5),
            "}",
            "# fmt: on",
            "",
        ]
    )


def test_tokenizer_tables_agree_with_sqlite_on_the_bmp_and_smp() -> None:
    """Every code point below U+20000, asked of the SQLite this test runs with."""
    last = 0x1FFFF
    probed = probe_unicode61(0, last)
    shipped = Unicode61Tables(
        [(a, min(b, last)) for a, b in _unicode61.SEPARATORS if a <= last],
        [c for c in _unicode61.DROPPED if c <= last],
        {a: b for a, b in _unicode61.FOLDS.items() if a <= last},
    )
    assert shipped == probed


# --- differential test over the Reuters corpus ----------------------------------------


@dataclass(frozen=True)
class GeneratedQuery:
    """One random query written twice: in our language and in FTS5's."""

    ours: str
    fts5: str


class QueryGenerator:
    """Random terms, phrases, prefixes, NEAR, AND/OR/NOT and title:/body: scopes.

    Terms come from the corpus vocabulary with a document frequency that makes results
    neither empty nor huge; phrases are consecutive tokens of random articles, so they
    occur. ``query`` parenthesises every operator; ``flat`` mixes them without
    parentheses, so the two sides must agree on precedence too. ``-term`` has no FTS5
    equivalent (FTS5 reads ``-x`` as a column filter) and is left out.
    """

    def __init__(self, rng: random.Random, vocabulary: list[str], bodies: list[str]) -> None:
        self.rng = rng
        self.vocabulary = vocabulary
        self.bodies = bodies

    def query(self, depth: int = 0) -> GeneratedQuery:
        kind = self.rng.choice(
            ["leaf", "leaf", "near", "and", "implicit", "or", "not", "field", "flat"]
        )
        if depth >= 2 or kind == "leaf":
            return self.leaf()
        if kind == "near":
            return self.near()
        if kind == "field":
            return self.scoped()
        if kind == "flat":
            flat = self.flat()
            return GeneratedQuery(f"({flat.ours})", f"({flat.fts5})")
        left, right = self.query(depth + 1), self.query(depth + 1)
        ours_op, fts_op = {
            "and": (" AND ", " AND "),
            "implicit": (" ", " AND "),  # FTS5 allows implicit AND between phrases only
            "or": (" OR ", " OR "),
            "not": (" NOT ", " NOT "),
        }[kind]
        return GeneratedQuery(
            f"({left.ours}{ours_op}{right.ours})", f"({left.fts5}{fts_op}{right.fts5})"
        )

    def flat(self) -> GeneratedQuery:
        """Operands joined by AND, OR, NOT or nothing (FTS5 allows that between phrases,
        NEARs and scoped phrases), without parentheses."""
        first, *rest = [
            self.rng.choice([self.leaf, self.leaf, self.near, self.scoped])()
            for _ in range(self.rng.randint(3, 5))
        ]
        ours, fts5 = first.ours, first.fts5
        for operand in rest:
            operator = self.rng.choice([" ", " AND ", " OR ", " NOT "])
            ours += operator + operand.ours
            fts5 += operator + operand.fts5
        return GeneratedQuery(ours, fts5)

    def scoped(self) -> GeneratedQuery:
        field = self.rng.choice(["title", "body"])
        leaf = self.rng.choice([self.leaf, self.near])()
        return GeneratedQuery(f"{field}:{leaf.ours}", f"{field} : {leaf.fts5}")

    def leaf(self) -> GeneratedQuery:
        kind = self.rng.choice(["term", "term", "phrase", "prefix", "phrase-prefix"])
        if kind == "term":
            word = self.rng.choice(self.vocabulary)
            return GeneratedQuery(word, f'"{word}"')
        if kind == "prefix":
            word = self.rng.choice(self.vocabulary)
            stem = word[: self.rng.randint(3, max(3, len(word) - 1))]
            return GeneratedQuery(f"{stem}*", f'"{stem}" *')
        phrase = " ".join(self.phrase_words())
        if kind == "phrase-prefix":
            phrase = phrase[: len(phrase) - self.rng.randint(0, 2)].rstrip()
            return GeneratedQuery(f'"{phrase}"*', f'"{phrase}" *')
        return GeneratedQuery(f'"{phrase}"', f'"{phrase}"')

    def phrase_words(self) -> list[str]:
        while True:
            tokens = tokenize(self.rng.choice(self.bodies))
            size = self.rng.randint(2, 3)
            if len(tokens) > size:
                start = self.rng.randrange(len(tokens) - size)
                return tokens[start : start + size]

    def near(self) -> GeneratedQuery:
        operands = [self.leaf() for _ in range(self.rng.choice([2, 2, 3]))]
        distance = self.rng.randint(0, 12)
        return GeneratedQuery(
            f"NEAR({' '.join(o.ours for o in operands)}, {distance})",
            f"NEAR({' '.join(o.fts5 for o in operands)}, {distance})",
        )


@pytest.fixture(scope="module")
def articles(corpus: Path) -> Path:
    return corpus / "news" / "articles.jsonl"


@pytest.fixture(scope="module")
def fts5(articles: Path) -> Iterator[tuple[sqlite3.Connection, list[str]]]:
    """The corpus in an FTS5 table (title, body); rowid i is the i-th article's id."""
    db = sqlite3.connect(":memory:")
    db.execute(f"CREATE VIRTUAL TABLE t USING fts5(title, body, tokenize='{UNICODE61}')")
    ids = []
    with articles.open(encoding="utf-8") as lines:
        rows = []
        for i, line in enumerate(lines):
            record = json.loads(line)
            ids.append(record["id"])
            rows.append((i, record["title"], record["body"]))
    db.executemany("INSERT INTO t(rowid, title, body) VALUES (?, ?, ?)", rows)
    yield db, ids
    db.close()


def _generate(db: sqlite3.Connection, articles: Path) -> list[GeneratedQuery]:
    db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS v USING fts5vocab(t, 'row')")
    vocabulary = [
        term
        for (term,) in db.execute(
            "SELECT term FROM v WHERE doc BETWEEN 3 AND 1500 AND length(term) > 2 ORDER BY term"
        )
    ]
    rng = random.Random(SEED)
    with articles.open(encoding="utf-8") as lines:
        bodies = [json.loads(line)["body"] for line in lines]
    generator = QueryGenerator(rng, vocabulary, bodies)
    nested = [generator.query() for _ in range(QUERIES - FLAT_QUERIES)]
    return nested + [generator.flat() for _ in range(FLAT_QUERIES)]


@pytest.mark.corpus
@pytest.mark.slow
def test_match_jsonl_agrees_with_fts5_on_random_queries(
    fts5: tuple[sqlite3.Connection, list[str]], articles: Path, tmp_path: Path
) -> None:
    db, ids = fts5
    queries = _generate(db, articles)
    for form in ("NEAR(", " NOT ", " OR ", " AND ", ") (", '"', "*", "title:", "body:"):
        assert any(form in query.ours for query in queries), f"no query uses {form!r}"
    unparenthesised = [q.ours for q in queries if "(" not in q.ours.replace("NEAR(", "")]
    for operator in (" NOT ", " OR ", " AND "):
        assert any(operator in query for query in unparenthesised), f"no bare {operator!r}"
    (tmp_path / "monitor.yaml").write_text("watchlists: watchlists.yaml\n", encoding="utf-8")
    watchlists = [{"name": f"q{i:03d}", "query": q.ours} for i, q in enumerate(queries)]
    (tmp_path / "watchlists.yaml").write_text(yaml.safe_dump(watchlists), encoding="utf-8")
    config = tmp_path / "monitor.yaml"
    command = ["-m", "monitor", "match", "-c", str(config), "--jsonl", str(articles)]
    run = subprocess.run([sys.executable, *command], capture_output=True, text=True, check=False)
    assert 0 == run.returncode, run.stderr
    ours: dict[str, set[str]] = defaultdict(set)
    for line in run.stdout.splitlines():
        record = json.loads(line)
        for name in record["watchlists"]:
            ours[name].add(record["id"])
    disagreements = []
    total = 0
    for i, query in enumerate(queries):
        theirs = {ids[rowid] for (rowid,) in db.execute("SELECT rowid FROM t(?)", (query.fts5,))}
        total += len(theirs)
        if theirs != ours[f"q{i:03d}"]:
            only_ours = sorted(ours[f"q{i:03d}"] - theirs)[:3]
            only_fts5 = sorted(theirs - ours[f"q{i:03d}"])[:3]
            disagreements.append(f"{query.ours!r}: only ours {only_ours}, only FTS5 {only_fts5}")
    assert [] == disagreements
    assert total > QUERIES * 10  # the queries found something: the comparison means something


if __name__ == "__main__":
    sys.stdout.write(render_unicode61_module(probe_unicode61(0, 0x10FFFF)))
