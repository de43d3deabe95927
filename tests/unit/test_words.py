"""The fast roads to text's words and tidy form give exactly what the regex gives: word
tokens feed fingerprints and signatures, which are stored and must not drift."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.text import tidy_text
from monitor.words import folded_utf8_words, utf8_words, words

ASCII = st.text(st.characters(max_codepoint=127), max_size=80)
SPACES = st.text(st.sampled_from(" \t\f\v\u00a0\r\nab\u2003\x1f"), max_size=40)


def reference_words(text: str) -> list[str]:
    return re.findall(r"\w+", text)


def reference_tidy(text: str) -> str:
    """tidy_text as first written: a regex pass per line."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = [re.sub(r"[ \t\f\v\u00a0]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n\s*\n\s*", "\n\n", "\n".join(lines)).strip()


@pytest.mark.parametrize(
    "text", ["", "   ", "snake_case and CamelCase, 3.14 -- x!", "Café ﬁn Ω_1 ٣", "a\x00b\x1fc"]
)
def test_words_are_the_regex_tokens(text: str) -> None:
    assert reference_words(text) == words(text)
    assert [word.encode() for word in reference_words(text)] == utf8_words(text)


@given(st.one_of(ASCII, st.text(max_size=80)))
def test_words_are_the_regex_tokens_of_any_text(text: str) -> None:
    assert reference_words(text) == words(text)
    assert [word.encode("utf-8", "surrogatepass") for word in reference_words(text)] == [
        word.encode("utf-8", "surrogatepass") for word in words(text)
    ]


@given(ASCII)
def test_utf8_words_of_ascii_text(text: str) -> None:
    assert [word.encode() for word in reference_words(text)] == utf8_words(text)


@given(st.one_of(ASCII, st.text(max_size=80)))
def test_folded_utf8_words_are_those_of_the_casefolded_text(text: str) -> None:
    assert utf8_words(text.casefold()) == folded_utf8_words(text)


@given(st.one_of(SPACES, st.text(max_size=60)))
def test_tidy_text_is_the_per_line_version(text: str) -> None:
    assert reference_tidy(text) == tidy_text(text)
