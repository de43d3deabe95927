"""Which of a feed document's GUIDs and links can name its entries."""

from __future__ import annotations

from monitor.model import Entry, Names
from monitor.sources.entrynames import without_shared_names


def _entry(title: str, guid: str | None, link: str | None, **names: Names | None) -> Entry:
    return Entry(title=title, content=f"text of {title}", guid=guid, link=link, **names)


def test_names_that_name_one_entry_each_stay() -> None:
    entries = [_entry("a", "g1", "http://x/1"), _entry("b", "g2", "http://x/2")]
    assert entries == without_shared_names(entries)


def test_an_entry_the_document_repeats_shares_no_name() -> None:
    entries = [_entry("a", "g", "http://x/1"), _entry("a", "g", "http://x/1")]
    assert entries == without_shared_names(entries)


def test_a_guid_that_different_entries_carry_names_none_of_them() -> None:
    a, b = without_shared_names([_entry("a", "g", "http://x/1"), _entry("b", "g", "http://x/2")])
    assert [(None, "http://x/1"), (None, "http://x/2")] == [a.key_names, b.key_names]
    assert ("g", "g") == (a.guid, b.guid)  # what is shown and sent stays as it was


def test_a_link_shared_under_tracking_parameters_is_one_link() -> None:
    a, b = without_shared_names(
        [_entry("a", None, "http://x/live?utm_source=a"), _entry("b", None, "http://x/live")]
    )
    assert [(None, None), (None, None)] == [a.key_names, b.key_names]


def test_a_moved_feeds_home_and_former_names_both_lose_a_shared_guid() -> None:
    moved: dict[str, Names | None] = {
        "key_names": ("http://old/", "http://old/1"),
        "former_names": ("https://new/", None),
    }
    entries = [
        _entry("a", "https://new/", "https://new/1", **moved),
        _entry("b", "https://new/", "https://new/2"),
    ]
    a, b = without_shared_names(entries)
    assert ((None, "http://old/1"), (None, None)) == (a.key_names, a.former_names)
    assert ((None, "https://new/2"), None) == (b.key_names, b.former_names)
