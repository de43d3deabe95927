"""The tokenizer: FTS5 unicode61 (remove_diacritics 2) tokens, plus spaceless-script splits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.watchlists.tokens import (
    _FOLD_TABLE,
    fold,
    folded_text,
    is_spaceless,
    token_spans,
    tokenize,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GSOMIA pact", ["gsomia", "pact"]),
        ("cost-sharing", ["cost", "sharing"]),
        ("cost\u2013sharing cost\u2014sharing", ["cost", "sharing", "cost", "sharing"]),
        ("U.S. troops", ["u", "s", "troops"]),
        ("Café NAÏVE Škoda", ["cafe", "naive", "skoda"]),
        ("e\u0301te\u0301", ["ete"]),  # decomposed accents are dropped inside a token
        ("\u0301abc", ["abc"]),  # ...and cannot start one
        ("İstanbul \u017f µ", ["istanbul", "s", "μ"]),  # FTS5's own folds, not Python's lower()
        ("snake_case", ["snake", "case"]),  # underscore is punctuation to unicode61
        ("28,500-strong", ["28", "500", "strong"]),
        ("SCM에서 논의", ["scm", "에서", "논의"]),  # Latin and Hangul split where they meet
        ("2019年11月", ["2019", "年", "11", "月"]),
        ("日韓軍事情報包括保護協定\uff08GSOMIA\uff09", ["日韓軍事情報包括保護協定", "gsomia"]),
        ("한미안보협의회의", ["한미안보협의회의"]),
        ("", []),
        (" \t\n", []),
    ],
)
def test_tokenize(text: str, expected: list[str]) -> None:
    assert expected == tokenize(text)


@pytest.mark.parametrize(
    ("token", "expected"),
    [("지소미아", True), ("日韓", True), ("カタカナ", True), ("gsomia", False), ("2019", False)],
)
def test_is_spaceless(token: str, expected: bool) -> None:
    assert expected == is_spaceless(token)


def test_spans_are_offsets_into_the_original_text() -> None:
    text = "Seoul\u2019s cost\u2013sharing (SCM에서)"
    assert ["Seoul", "s", "cost", "sharing", "SCM", "에서"] == [
        text[a:b] for a, b in token_spans(text)
    ]


# Characters where the two paths could part: separators, dropped marks, script changes.
_TRICKY = st.text(alphabet=st.sampled_from(list("aZ9 -_.\u0301\u0300\u0305é한日カ。ー\U00020000")))


@given(st.one_of(st.text(), _TRICKY))
def test_both_paths_make_the_same_tokens(text: str) -> None:
    """The fast path matches; the offset path explains. They must never disagree."""
    assert tokenize(text) == [fold(text[a:b]) for a, b in token_spans(text)]


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_ascii_folds_as_the_unicode_table_does(text: str) -> None:
    """ASCII text is folded by a bytes table; it must agree with FTS5's folding table."""
    assert text.translate(_FOLD_TABLE) == fold(text)
    everything = "".join(map(chr, range(128)))
    assert everything.translate(_FOLD_TABLE) == fold(everything)


@given(st.lists(st.one_of(st.text(), _TRICKY), min_size=1, max_size=3))
def test_fields_folded_together_are_the_fields_folded_apart(fields: list[str]) -> None:
    """The index folds a story's fields joined, in one pass; a query's field is folded
    alone. Both must see the same tokens, none running from one field into the next."""
    joined = folded_text(" ".join(fields))
    assert joined.split() == [token for field in fields for token in folded_text(field).split()]
    assert joined == " ".join(folded_text(field) for field in fields)
