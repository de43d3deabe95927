"""Signatures computed a poll at a time are the ones an item alone gets, whatever the
mix of long, short and non-ASCII texts and wherever the batches are cut."""

from __future__ import annotations

import re
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import stories

WORDS = ["seoul", "tokyo", "pact", "said", "the", "on", "Friday", "GSOMIA", "Café", "日本", "x"]
TEXTS = st.lists(
    st.tuples(
        st.lists(st.sampled_from(WORDS), max_size=6).map(" ".join),
        st.lists(st.sampled_from(WORDS), max_size=60).map(" ".join),
    ),
    max_size=12,
)


def read(texts: list[tuple[str, str]]) -> list[stories.Words]:
    return [stories.Words.of(title, body) for title, body in texts]


def reference(title: str, body: str) -> stories.Signature | None:
    """One item's signature as first written, one numpy pass per item."""
    words = re.findall(r"\w+", f"{title}\n{body}".casefold())
    if len(words) < stories.MIN_WORDS:
        return None
    h = stories._hashing()
    hashes = np.fromiter(map(zlib.crc32, map(str.encode, words)), dtype=np.uint64)
    shingles = hashes[:-2] * h.shingle_mix[0] + hashes[1:-1] * h.shingle_mix[1] + hashes[2:]
    values = ((shingles[:, None] * h.multipliers + h.offsets) >> np.uint64(32)).min(axis=0)
    rows = values.reshape(stories.BANDS, stories.ROWS)
    bands = (rows * h.band_mix[: stories.ROWS]).sum(axis=1) + h.band_ids * h.band_mix[stories.ROWS]
    return stories.Signature(tuple(values.tolist()), tuple(bands.view(np.int64).tolist()))


@pytest.mark.parametrize("batch_words", [1, 40, stories.BATCH_WORDS])
@settings(max_examples=60, deadline=None)
@given(texts=TEXTS)
def test_a_batch_gives_each_item_its_own_signature(
    texts: list[tuple[str, str]], batch_words: int
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stories, "BATCH_WORDS", batch_words)
        computed = [reading.signature for reading in stories.signatures(read(texts))]
        assert [reference(title, body) for title, body in texts] == computed


@settings(max_examples=60, deadline=None)
@given(texts=TEXTS, recurring=TEXTS)
def test_a_batch_drops_each_item_the_same_boilerplate_it_would_alone(
    texts: list[tuple[str, str]], recurring: list[tuple[str, str]]
) -> None:
    boilerplate = stories.recurring(read(recurring))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stories, "BATCH_WORDS", 40)
        together = stories.signatures(read(texts), boilerplate)
    assert [stories.signatures(read([text]), boilerplate)[0] for text in texts] == together


def test_the_poll_path_finds_the_same_matches() -> None:
    body = " ".join(WORDS * 3)
    texts = [("A", body), ("B", body + " more words here")]
    one, two = (reading.signature for reading in stories.signatures(read(texts)))
    assert one is not None
    assert two is not None
    assert two.values == stories.stored_values(two.stored())
    assert 5 == stories.most_similar(one, [(5, two.values)])


@settings(max_examples=80, deadline=None)
@given(texts=TEXTS, groups=st.lists(st.integers(0, 4), min_size=12, max_size=12))
def test_each_shingle_counts_the_groups_it_is_found_in_once_each(
    texts: list[tuple[str, str]], groups: list[int]
) -> None:
    """A shingle repeated in one group (an item, or two items of one story) counts once,
    wherever the group's items come in the order."""
    words = [text.hashes for text in read(texts)]
    h = stories._hashing()
    found: dict[int, set[int]] = {}
    for item, group in zip(words, groups, strict=False):
        if len(item) >= 3:
            for shingle in stories._shingles(h, [item])[0].tolist():
                found.setdefault(shingle, set()).add(group)
    values, counts = stories._spread(h, words, groups[: len(words)])
    assert sorted(found) == values.tolist()
    assert [len(found[value]) for value in sorted(found)] == counts.tolist()
