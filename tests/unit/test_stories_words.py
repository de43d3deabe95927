"""The words stories are keyed on: the fast path gives exactly the reference result,
since fingerprints and content hashes are stored and must not drift."""

from __future__ import annotations

import hashlib
import re
import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor import stories
from monitor.dedup import (
    SHORT_TEXT,
    STORY_WORDS,
    body_hash,
    content_hash,
    fingerprint,
    item_fingerprint,
    normalised_words,
)
from monitor.words import folded_utf8_words


def reference_words(text: str) -> list[str]:
    """The definition: NFKD, drop every combining mark, casefold, word tokens."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    return re.findall(r"\w+", "".join(ch for ch in folded if not unicodedata.combining(ch)))


def test_no_combining_mark_lies_past_the_scanned_range() -> None:
    assert [] == [c for c in range(0x20000, sys.maxunicode + 1) if unicodedata.combining(chr(c))]


@pytest.mark.parametrize(
    "text",
    [
        "Plain ASCII, with punctuation -- and numbers 1,234.5!",
        "Straße İstanbul Ǆemal ﬁnancial \uff26\uff55\uff4c\uff4c ①②",  # fullwidth "Full"
        "Café crème brûlée a\u0301b\u0327c",
        "서울 한국 東京 Москва عربي हिन्दी",
    ],
)
def test_normalised_words_match_the_reference(text: str) -> None:
    assert reference_words(text) == normalised_words(text)


@given(st.text(max_size=60))
def test_normalised_words_match_the_reference_on_any_text(text: str) -> None:
    assert reference_words(text) == normalised_words(text)


def test_keys_depend_on_words_not_spelling() -> None:
    body = "Café CRÈME " * STORY_WORDS
    assert fingerprint("A", body + "\n", "guid:1") == fingerprint("B", body.lower(), "guid:2")
    assert content_hash("A", "Café") != content_hash("B", "Café")
    assert fingerprint("Only a title", "", "k") == fingerprint("only a TITLE", "", "k")


@pytest.mark.parametrize(
    "body",
    [
        "日韓の軍事情報包括保護協定は失効の直前に延長が決まった。政府が発表した。"
        "両国は今後も協議を続ける方針で、米国は決定を歓迎するとの声明を出した。",
        "韩国政府宣布暂停终止韩日军事情报保护协定的决定\uff0c该协定原定于午夜到期。"
        "美国对此表示欢迎\uff0c并呼吁两国继续对话以改善关系。",
    ],
    ids=["japanese", "chinese"],
)
def test_a_body_in_a_script_without_spaces_names_its_story_by_its_length(body: str) -> None:
    """Two outlets, two headlines, one summary of some length: one story."""
    assert fingerprint("協定延長", body, "guid:a") == fingerprint("GSOMIA", body, "guid:b")


def test_a_short_korean_body_is_counted_by_its_words() -> None:
    """Korean separates words with spaces: a seven-word notice under two headlines is
    two stories, as it would be in English."""
    notice = "자세한 내용은 아래 링크의 기사 원문을 참조하세요"
    assert fingerprint("삼성전자 1분기 실적 발표", notice, "guid:a") != fingerprint(
        "북한 미사일 발사", notice, "guid:b"
    )


def test_a_short_body_names_no_story_without_its_title_and_item() -> None:
    """ "Comments" under every headline of a feed: these are different stories."""
    assert fingerprint("Python 3.14", "Comments", "k") != fingerprint("Rust 2", "Comments", "k")
    assert fingerprint("Daily report", "", "guid:1") != fingerprint("Daily report", "", "guid:2")


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_an_ascii_text_counts_its_words_from_its_normalised_words(text: str) -> None:
    """ASCII text is counted from the joined words the fingerprint caches, not split again."""
    from monitor.dedup import length_in_words

    assert len(re.findall(r"\w+", text)) == length_in_words(text)


def reference_digest(*parts: str) -> str:
    """The definition of the stored hashes: each part's words joined by spaces, hashed."""
    hasher = hashlib.blake2b(digest_size=16)
    for part in parts:
        hasher.update(part.encode("utf-8", "surrogatepass") + b"\x1f")
    return hasher.hexdigest()


@given(st.one_of(st.text(st.characters(max_codepoint=127)), st.text()), st.text())
def test_content_hashes_are_the_digests_of_the_joined_words(body: str, title: str) -> None:
    joined = [" ".join(reference_words(text)) for text in (title, body)]
    assert reference_digest(*joined) == content_hash(title, body)
    assert "fp:" + reference_digest(*joined, "k") == item_fingerprint(title, body, "k")


@pytest.mark.parametrize("word", ["Shares", "Café"])
def test_a_story_fingerprint_is_the_digest_of_its_body_words(word: str) -> None:
    body = f"{word}, rose! " * STORY_WORDS
    assert "fp:" + reference_digest(" ".join(reference_words(body))) == fingerprint("T", body, "k")


@pytest.mark.parametrize(
    ("title", "distinctive"),
    [
        ("Northgate council approves harbour ferry subsidy plan", True),
        ("BARCLAYS NAMES NEW NORTH AMERICAN CHIEF OFFICER", True),
        ("Harbour ferry plan", False),  # three telling words
        ("UPDATE 1-Ferry plan in 2026", False),  # a label and a number tell nothing
        ("WALL STREET STOCKS LOWER IN EARLY TRADING", False),
        ("WILLCOX AND GIBBS INC <WG> 4TH QTR NET", False),
        ("CASH WHOLESALE PORK PRICES", False),
    ],
)
def test_a_headline_is_distinctive_when_long_and_no_recurring_reports(
    title: str, distinctive: bool
) -> None:
    assert distinctive == stories.distinctive_headline(title)


@pytest.mark.parametrize(
    ("body", "is_notice"),
    [
        ("Subscribe to read the full story.", True),
        ("", True),
        ("The council voted to subsidise the harbour ferry on Sundays.", False),  # tells
        (" ".join(["Subscribe to read the full story."] * 8), False),  # 48 words: too long
    ],
)
def test_a_notice_is_short_and_tells_nothing_of_its_headline(body: str, is_notice: bool) -> None:
    assert is_notice == stories.notice(body, "Northgate council approves harbour ferry subsidy")


def reference_telling(words: list[bytes]) -> frozenset[bytes]:
    """``stories._telling`` as first written: every word decoded and looked at."""
    found: set[bytes] = set()
    for word in words:
        run = word.decode("utf-8", "replace")
        if any(char >= "\u1100" for char in run):
            found.update(b"\x00" + run[at : at + 2].encode() for at in range(len(run) - 1))
        elif len(word) >= 3 and not word.isdigit() and word not in stories.FUNCTION_WORDS:
            found.add(word)
    return frozenset(found)


@given(st.lists(st.one_of(st.text(st.characters(max_codepoint=127)), st.text()), max_size=8))
def test_telling_words_are_the_references(texts: list[str]) -> None:
    words = folded_utf8_words(" ".join([*texts, "Café 서울에서 協定維持を the 2026 Seoul"]))
    assert reference_telling(words) == stories._telling(words)


@pytest.mark.parametrize("size", [SHORT_TEXT - 1, SHORT_TEXT + 1])
def test_long_and_short_texts_hash_as_their_joined_words(size: int) -> None:
    body = ("Café crème, Seoul 서울 " * size)[:size]
    joined = " ".join(reference_words(body))
    assert reference_digest(joined) == body_hash(body)
    assert reference_digest("t", joined) == content_hash("T", body)
