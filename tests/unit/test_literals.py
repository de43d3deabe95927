"""The literal set that finds trigger anchors: the same answers as substring search."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_gathers_the_group_of_each_pattern_found_once() -> None:
    """``gather`` is ``find`` with each index replaced by its group (the trigger scan's
    watch-lists): a group per pattern found, each once, the others left out; and it
    counts the stories each pattern was found in."""
    groups = [[7, 9], [3], [5]]
    counts = [0, 0, 4]
    found = LiteralSet([" pact ", " pa", "한국"]).gather(" pact pact pa ", groups, counts)
    assert [3, 7, 9] == sorted(found)
    assert [1, 1, 4] == counts  # one more for each pattern found, however often
    assert [] == LiteralSet([" pact "]).gather(" impact ", [[1]], counts[:1])


def test_finds_one_pattern_among_thousands() -> None:
    patterns = [f" w{i:05d} " for i in range(5_000)]
    assert [4_321] == LiteralSet(patterns).find("text with w04321 in it")


def test_threads_scan_one_set_at_once_and_each_gets_its_own_answer() -> None:
    """The scan runs without the GIL: threads sharing scratch space would fail."""
    found = LiteralSet([" alpha ", " beta "])
    texts = [" alpha " * 50_000, " beta " * 50_000, " gamma " * 50_000]

    def scan(k: int) -> list[int]:
        return found.find(texts[k % 3])

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(scan, range(24)))
    assert answers == [[0], [1], []] * 8


def test_refuses_an_empty_set() -> None:
    with pytest.raises(ValueError, match="at least one pattern"):
        LiteralSet([])
