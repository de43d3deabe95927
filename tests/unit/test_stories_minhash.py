"""MinHash signatures for near-duplicate stories: copies agree, strangers do not."""

from __future__ import annotations

import pytest

from monitor import stories
from monitor.stories import Signature

STORY = (
    "The finance ministry said on Tuesday that exports rose for a third month in a row, "
    "helped by strong demand for semiconductors and ships, while imports fell as oil "
    "prices eased. Economists had expected a smaller rise. The trade surplus widened to "
    "its highest level since the spring, the ministry said in a statement, adding that "
    "shipments to China and the United States both grew."
)
OTHER = (
    "Heavy rain flooded roads in the capital overnight and officials closed two bridges "
    "as the river rose above its warning level. Schools in the eastern districts will "
    "stay shut on Wednesday, the city said, and residents near the banks were told to "
    "move to higher ground until the water recedes later in the week."
)


def read(texts: list[tuple[str, str]]) -> list[stories.Words]:
    return [stories.Words.of(title, body) for title, body in texts]


def signature(title: str, body: str) -> Signature | None:
    return stories.signatures(read([(title, body)]))[0].signature


def best_match(sig: Signature, candidates: list[tuple[int, object]]) -> int | None:
    """What the story index does with stored candidates: unreadable ones left out."""
    readable = [(story_id, stories.stored_values(stored)) for story_id, stored in candidates]
    return stories.most_similar(sig, [(i, values) for i, values in readable if values])


def test_a_syndicated_copy_is_similar_enough() -> None:
    original = signature("Exports rise for third month", STORY)
    copy = signature(
        "UPDATE 1-Exports up again on chip demand",
        "SEOUL (Wire) - " + STORY + " Reporting by A. Reporter; editing by B. Editor.",
    )
    assert original is not None
    assert copy is not None
    assert stories.similarity(original.values, copy.values) >= stories.THRESHOLD
    assert set(original.bands) & set(copy.bands), "a copy must share a band to be found"


def test_different_stories_are_not_similar() -> None:
    one = signature("Exports rise", STORY)
    two = signature("Floods close bridges", OTHER)
    assert one is not None
    assert two is not None
    assert stories.similarity(one.values, two.values) < 0.2
    assert best_match(one, [(7, two.stored())]) is None


def test_too_short_a_text_has_no_signature() -> None:
    assert signature("Breaking", "Markets fall sharply") is None


def test_best_match_prefers_the_most_similar_then_the_oldest_story() -> None:
    mine = signature("Exports rise", STORY)
    near = signature("Exports rise", STORY + " More to follow.")
    assert mine is not None
    assert near is not None
    candidates = [(9, near.stored()), (3, mine.stored()), (5, mine.stored())]
    assert 3 == best_match(mine, candidates)


@pytest.mark.parametrize(
    "stored",
    [None, {"values": [1, 2]}, ["another-scheme", *range(stories.NUM_PERM)], [stories.SCHEME]],
)
def test_stored_signatures_of_another_shape_or_scheme_are_ignored(stored: object) -> None:
    assert stories.stored_values(stored) is None


def test_the_scheme_is_stable_across_processes_and_versions() -> None:
    """Signatures are stored: if this changes, bump SCHEME (old rows are then ignored)."""
    computed = signature("Exports rise", STORY)
    assert computed is not None
    assert "mh3w-crc32-ms64-p48" == stories.SCHEME
    assert GOLDEN_VALUES == computed.values[:4]
    assert GOLDEN_BANDS == computed.bands[:2]


GOLDEN_VALUES = (35911106, 68999373, 158665253, 36502883)
GOLDEN_BANDS = (220165199866859110, 5033814175548859625)


FOOTER = (
    "Sign up for our weekday newsletter and get the morning's headlines in your inbox. "
    "Copyright 2026 Valley Tribune. All rights reserved. No part of this article may be "
    "reproduced without written permission from the publisher."
)
BRIEF = "Subscribe to read the full article. Already a subscriber? Sign in to keep reading."


def test_a_footer_a_source_repeats_is_dropped_before_comparing() -> None:
    """Two short stories under one long footer look alike until the source's other items
    show the footer is its template."""
    texts = [
        ("Exports rise", f"Exports rose again in March, helped by chips. {FOOTER}"),
        ("Floods close bridges", f"Two bridges were shut as the river rose. {FOOTER}"),
        ("Mayor reelected", f"The mayor won a third term by a wide margin. {FOOTER}"),
    ]
    one, two = (reading.signature for reading in stories.signatures(read(texts[:2])))
    assert one is not None
    assert two is not None
    assert stories.similarity(one.values, two.values) >= stories.THRESHOLD
    boilerplate = stories.recurring(read(texts))
    one, two = (reading.signature for reading in stories.signatures(read(texts[:2]), boilerplate))
    assert one is not None
    assert two is not None
    assert stories.similarity(one.values, two.values) < 0.2


@pytest.mark.parametrize(
    ("second", "template"),
    [("UPDATE 1-Exports rise 5 pct", False), ("Floods close bridges", True)],
)
def test_a_short_body_is_a_template_under_two_stories_headlines(
    second: str, template: bool
) -> None:
    boilerplate = stories.recurring(read([("Exports rise 3 pct", BRIEF), (second, BRIEF)]))
    assert template == bool(len(boilerplate))


@pytest.mark.parametrize(("stored", "template"), [(3, True), (0, False)])
def test_new_versions_of_one_story_count_once_towards_a_template(
    stored: int, template: bool
) -> None:
    """A footer under three stored items is a template. Under three new ones, two of
    them an original and its update (one story's headlines), it is in two stories only,
    and may be the story's text."""
    texts = [
        ("Exports rise", f"Exports rose again in March, helped by chips. {FOOTER}"),
        ("Floods close bridges", f"Two bridges were shut as the river rose. {FOOTER}"),
        ("UPDATE 1-Exports rise", f"Exports rose again in March, helped by cars. {FOOTER}"),
    ]
    assert template == bool(len(stories.recurring(read(texts), stored=stored)))


@pytest.mark.parametrize(
    ("titles", "template"),
    [
        (("Exports rise", "UPDATE 1-Exports rise", "UPDATE 2-Exports rise"), False),
        (("Exports rise", "Floods close bridges", "Mayor reelected"), True),
    ],
)
def test_stored_versions_of_one_story_count_once_towards_a_template(
    titles: tuple[str, str, str], template: bool
) -> None:
    """Three stored items, each the one before with a sentence added: under one story's
    headlines they are its versions, and their text is no template; under three stories'
    headlines, the text all three carry is."""
    added = " Imports are expected to recover next quarter. Shares of shipbuilders rose."
    bodies = [STORY, STORY + added[:48], STORY + added]
    texts = list(zip(titles, bodies, strict=True))
    assert template == bool(len(stories.recurring(read(texts), stored=3)))


def test_a_footer_under_long_documents_is_found_at_their_edges() -> None:
    """Three reports of thousands of words under one footer: it is their template, and
    a phrase in the middle of all three (beyond the edges read) is not."""
    middle = "the committee heard evidence from regional officials"
    subjects = ("Harbour", "Budget", "Transport")

    def template(body: str) -> set[int]:
        texts = [(f"{subject} review", body.format(n=n)) for n, subject in enumerate(subjects)]
        return set(stories.recurring(read(texts)).tolist())

    long_body = " ".join(f"w{{n}}x{i}" for i in range(2000)) + f" {middle} "
    long_body += " ".join(f"v{{n}}x{i}" for i in range(2000)) + f" {FOOTER}"
    found = template(long_body)
    footer = template(f"Item {{n}} begins {{n}}. {FOOTER}")
    in_the_middle = template(f"Item {{n}} begins. {middle} and ends {{n}}.")
    assert footer
    assert footer <= found
    assert in_the_middle
    assert not in_the_middle & found


@pytest.mark.parametrize("first", [True, False])
def test_a_short_body_is_a_template_whatever_headline_comes_first(first: bool) -> None:
    """Two headlines of different stories under one notice make it a template, also when
    a third, shorter one comes first that could be either story's: counted from it alone,
    both were its story and the notice merged the two stories."""
    both = ("Korea Japan pact", BRIEF)
    texts = [("Korea Japan pact talks collapse", BRIEF), ("Korea Japan pact renewal signed", BRIEF)]
    boilerplate = stories.recurring(read([both, *texts] if first else [*texts, both]))
    assert len(boilerplate)


def test_an_items_word_hashes_are_the_crc32_of_its_title_words_then_its_body_words() -> None:
    """Words hashes each word once, for both recurring and signatures (SCHEME's hashes)."""
    import zlib

    (words,) = read([("Exports Rise", "Économie: exports rose 3%")])
    assert [b"exports", b"rise"] == words.title
    expected = [zlib.crc32(word) for word in words.title + words.body]
    assert expected == words.hashes.tolist()
