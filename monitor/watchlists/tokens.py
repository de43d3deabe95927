"""Tokens as SQLite FTS5's ``unicode61`` tokenizer (``remove_diacritics 2``) makes them.

A token is a maximal run of token characters (letters, digits and the other code points
FTS5's Unicode 6.1 tables do not call separators), lower-cased and stripped of diacritics
by FTS5's own folding table (``_unicode61``, generated from SQLite). Matching that exactly
lets tests use FTS5 as an oracle.

One deliberate difference: FTS5 makes ``SCM에서`` (Latin letters with a Korean particle
attached, no space) a single token. We split a token wherever it passes between a
*spaceless* script (Han, kana, Hangul) and any other, so ``SCM`` is its own token there;
runs of spaceless scripts are then searched by substring (see ``is_spaceless``).

Two paths give the same tokens: ``tokenize`` (``str.translate`` + ``split``, C speed, used
for every story) and ``token_spans`` (offsets, used only to explain a match). A property
test keeps them in step.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from functools import cache
from itertools import accumulate, compress

from monitor.watchlists._unicode61 import DROPPED, FOLDS, SEPARATORS

# Scripts written without spaces between words: Han (with its radicals, iteration marks
# and compatibility forms), Hiragana, Katakana, Hangul and Bopomofo. Korean does use
# spaces, but particles attach to the word before them, so it is searched the same way.
_SPACELESS_RANGES: tuple[tuple[int, int], ...] = (
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x2E80, 0x2FDF),  # CJK radicals, Kangxi radicals
    (0x3005, 0x3007),  # iteration mark, closing mark, ideographic zero
    (0x3021, 0x3029),  # Hangzhou numerals
    (0x3031, 0x3035),  # kana repeat marks
    (0x3038, 0x303C),
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3100, 0x312F),  # Bopomofo
    (0x3130, 0x318F),  # Hangul compatibility Jamo
    (0x31A0, 0x31BF),  # Bopomofo extended
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xA960, 0xA97F),  # Hangul Jamo extended A
    (0xAC00, 0xD7FF),  # Hangul syllables, Jamo extended B
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFFDC),  # half-width Katakana and Hangul
    (0x1B000, 0x1B16F),  # kana supplement and extensions
    (0x20000, 0x3134F),  # CJK extensions B to G, compatibility supplement
)


def _subtract(
    ranges: Iterable[tuple[int, int]], holes: Iterable[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Inclusive ``ranges`` minus inclusive ``holes`` (both sorted)."""
    result: list[tuple[int, int]] = []
    hole_list = list(holes)
    for start, end in ranges:
        for hole_start, hole_end in hole_list:
            if hole_end < start or hole_start > end:
                continue
            if hole_start > start:
                result.append((start, hole_start - 1))
            start = hole_end + 1
            if start > end:
                break
        if start <= end:
            result.append((start, end))
    return result


def _char_class(ranges: Iterable[tuple[int, int]]) -> str:
    return "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges)


_SPACELESS_SPANS = _subtract(_SPACELESS_RANGES, SEPARATORS)
_SPACELESS_STARTS = [start for start, _ in _SPACELESS_SPANS]
_SPACELESS_CLASS = _char_class(_SPACELESS_SPANS)
_SEPARATOR_CODES = [code for a, b in SEPARATORS for code in range(a, b + 1)]

# Separators become spaces, dropped marks vanish, everything else folds as FTS5 folds it.
_FOLD_TABLE: dict[int, str | None] = {code: chr(folded) for code, folded in FOLDS.items()}
_FOLD_TABLE.update((code, None) for code in DROPPED)
_FOLD_TABLE.update((code, " ") for code in _SEPARATOR_CODES)

# The same shape, one character for one, so regex offsets are offsets into the original:
# separators become spaces and dropped marks \x01 (they continue a token, never start one).
_SHAPE_TABLE: dict[int, str] = {code: " " for code in _SEPARATOR_CODES}
_SHAPE_TABLE.update((code, "\x01") for code in DROPPED)


# The two regexes below are compiled on first use, by text that is not ASCII: their
# classes of several thousand ranges cost every command's start-up about 10 ms.
@cache
def _shaped_token() -> re.Pattern[str]:
    return re.compile(
        f"[{_SPACELESS_CLASS}][{_SPACELESS_CLASS}\x01]*"
        f"|[^ \x01{_SPACELESS_CLASS}][^ {_SPACELESS_CLASS}]*"
    )


@cache
def _script_change() -> re.Pattern[str]:
    return re.compile(
        f"(?<=[{_SPACELESS_CLASS}])(?=[^ {_SPACELESS_CLASS}])"
        f"|(?<=[^ {_SPACELESS_CLASS}])(?=[{_SPACELESS_CLASS}])"
    )


def _ascii_fold() -> bytes | None:
    """``_FOLD_TABLE`` on ASCII as a ``bytes.translate`` table, if it keeps ASCII ASCII."""
    table = bytearray(range(256))
    for code in range(128):
        folded = _FOLD_TABLE.get(code, chr(code))
        if folded is None or len(folded) != 1 or not folded.isascii():
            return None
        table[code] = ord(folded)
    return bytes(table)


_ASCII_FOLD = _ascii_fold()


def fold(text: str) -> str:
    """``text`` case- and accent-folded, separators turned into spaces."""
    if _ASCII_FOLD is not None and text.isascii():
        # str.translate asks the dict about each distinct character on every call (two
        # thirds of a story's fold); bytes.translate is one table lookup per byte.
        return text.encode("ascii").translate(_ASCII_FOLD).decode("ascii")
    return text.translate(_FOLD_TABLE)


def folded_text(text: str) -> str:
    """``text`` folded, with a space wherever a token ends: ``tokenize`` is its split()."""
    folded = fold(text)
    if not folded.isascii():
        folded = _script_change().sub(" ", folded)
    return folded


def tokenize(text: str) -> list[str]:
    """The folded tokens of ``text``, in order."""
    return folded_text(text).split()


class TokenSpans:
    """``(start, end)`` offsets in a text of each token ``tokenize`` returns, by index.

    An explanation needs the offsets of a few tokens, and a tuple per token cost more
    than tokenizing. For ASCII text the offsets come from C: splitting the shaped text
    on single spaces gives the tokens and, by running sums of the pieces' lengths,
    where each starts; one offset is then worked out when asked for. Other text goes
    through the regex, which knows dropped marks and script changes. ``folded`` is
    ``folded_text(text)`` when the caller has it already.
    """

    __slots__ = ("_ends", "_parts", "_spans", "_tokens")

    def __init__(self, text: str, folded: str | None = None) -> None:
        self._spans: list[tuple[int, int]] | None = None
        if text.isascii():
            # Folding ASCII changes no lengths and no separator positions.
            shape = text.translate(_SHAPE_TABLE) if folded is None else folded
            self._parts = shape.split(" ")
            self._ends = list(accumulate(map(len, self._parts)))
            self._tokens = list(compress(range(len(self._parts)), self._parts))
        else:
            shape = text.translate(_SHAPE_TABLE)
            self._spans = [match.span() for match in _shaped_token().finditer(shape)]

    def __len__(self) -> int:
        return len(self._spans) if self._spans is not None else len(self._tokens)

    def __getitem__(self, i: int) -> tuple[int, int]:
        if self._spans is not None:
            return self._spans[i]
        part = self._tokens[i]
        end = self._ends[part] + part  # one separator before each part
        return end - len(self._parts[part]), end

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return (self[i] for i in range(len(self)))


def token_spans(text: str) -> TokenSpans:
    """``(start, end)`` offsets in ``text`` of each token ``tokenize(text)`` returns."""
    return TokenSpans(text)


def is_spaceless(token: str) -> bool:
    """Whether ``token`` is a run of a spaceless script, searched by substring."""
    if not token:
        return False
    code = ord(token[0])
    span = bisect_right(_SPACELESS_STARTS, code) - 1
    return span >= 0 and code <= _SPACELESS_SPANS[span][1]
