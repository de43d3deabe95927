"""Which of a feed document's GUIDs and links can name its entries.

An item's identity is its GUID, else its canonical link, else its content
(``dedup.item_key``). A name that different entries of one document carry names none of
them, and is left out of their identity (``Entry.key_names``).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import replace

import structlog

from monitor.model import Entry, Names
from monitor.text import canonical_url, encodable

log = structlog.get_logger("monitor.sources.entrynames")


def without_shared_names(entries: list[Entry]) -> list[Entry]:
    """``entries``, their identity made without a GUID or link that different entries of
    the document share, so that what is left (a link, else the content) tells them apart
    (``dedup.item_key``). Some generators write the site's address as every entry's GUID,
    and a live report links each of its entries to one page: taken as an identity, such a
    name would make every entry but one an update of that one, none of them alerting. An
    entry the document carries twice (the same title and text) is one entry.

    A name that only entries of different polls share (a feed of one entry that keeps
    one GUID) is not seen here: ``identity: content`` is for such a feed."""
    guids = _shared((e.guid, (e.link, e.title, e.content)) for e in entries)
    links = _shared((e.link and _link_name(e.link), (e.title, e.content)) for e in entries)
    if not guids and not links:
        return entries
    log.info("feed_names_shared", guids=len(guids), links=len(links))  # at every poll
    return [_unshared(entry, guids, links) for entry in entries]


def _shared(named: Iterable[tuple[str | None, Hashable]]) -> set[str]:
    """The names given to different things."""
    things: dict[str, set[Hashable]] = {}
    for name, thing in named:
        if name and name.strip():
            things.setdefault(name.strip(), set()).add(thing)
    return {name for name, named_things in things.items() if len(named_things) > 1}


def _unshared(entry: Entry, guids: set[str], links: set[str]) -> Entry:
    """``entry``, its identity's names without those in ``guids`` and ``links``."""
    guid_shared = entry.guid is not None and entry.guid.strip() in guids
    link_shared = entry.link is not None and _link_name(entry.link).strip() in links
    if not (guid_shared or link_shared):
        return entry

    def kept(names: Names) -> Names:
        return (None if guid_shared else names[0], None if link_shared else names[1])

    return replace(
        entry,
        key_names=kept(entry.key_names or (entry.guid, entry.link)),
        former_names=entry.former_names and kept(entry.former_names),
    )


def _link_name(link: str) -> str:
    """A link as it names an entry: canonical, as stored (a lone surrogate, which no URL
    quoting takes, as U+FFFD; see normalise_entry)."""
    return canonical_url(encodable(link))
