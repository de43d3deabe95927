"""The RE2 literal set that finds trigger anchors: the same answers as substring search."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.watchlists import literals
from monitor.watchlists.literals import LiteralSet

# Spaces, ASCII, accented and spaceless-script letters, and a lone surrogate.
_CHARS = st.sampled_from(list(" abcé한국\ud800"))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(_CHARS, min_size=1, max_size=4), min_size=1, max_size=8), st.text(_CHARS))
def test_finds_exactly_the_patterns_that_are_substrings(patterns: list[str], text: str) -> None:
    patterns = list(dict.fromkeys(patterns))
    expected = {i for i, pattern in enumerate(patterns) if pattern in text}
    assert expected == set(LiteralSet(patterns).find(text))


def test_reports_each_pattern_once_however_often_it_occurs() -> None:
    found = LiteralSet([" pact ", " pa", "한국"]).find(" pact pact 한국어 pact ")
    assert [0, 1, 2] == sorted(found)


def test_grows_its_memory_until_re2_can_compile_and_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Too little memory makes RE2 fail to compile the set, or match nothing at all."""
    monkeypatch.setattr(literals, "_MIN_MEMORY", 1 << 12)
    monkeypatch.setattr(literals, "_MEMORY_PER_BYTE", 0)
    patterns = [f" w{i:05d} " for i in range(5_000)]
    found = LiteralSet(patterns)
    assert [4_321] == found.find("text with w04321 in it")
