"""Plain data that flows through the pipeline: no I/O here.

Datetimes are always timezone-aware UTC; local time appears only when rendering.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Names = tuple[str | None, str | None]  # an entry's (guid, link)


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry as a source read it, before normalisation.

    ``content`` may be HTML or plain text (``content_is_html`` says which);
    ``published`` is None when the source had no usable date.
    """

    title: str
    content: str
    guid: str | None = None
    link: str | None = None
    published: datetime | None = None
    content_is_html: bool = False
    author: str | None = None
    origin: str | None = None  # where it came from inside the source (a file name), for logs
    # The (guid, link) the item's identity is made of where they are not ``guid`` and
    # ``link``, and those an earlier version made it of (see FeedSource: a moved feed's
    # names are resolved against its first home; a name that several different entries
    # of the document share names none of them).
    key_names: Names | None = None
    former_names: Names | None = None


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What a source's fetch returns: new entries and the cursor for the next fetch.

    The cursor is opaque to everyone but the source (ETag and Last-Modified for a feed,
    file fingerprints for a folder) and is stored between polls.
    """

    entries: list[Entry]
    cursor: dict[str, Any]
    not_modified: bool = False
    not_before: datetime | None = None  # a server's floor for the next poll (max-age)
    # The source starts afresh (a feed given another URL in the config): its entries
    # are a new source's, as far as ``backfill`` goes.
    restarted: bool = False


@dataclass(frozen=True, slots=True)
class Item:
    """A normalised story from one source, ready to store and match.

    ``key`` is the item's identity within its source (GUID, canonical URL or content
    hash); ``fingerprint`` identifies the story across sources; ``content_hash``
    changes when the text changes (an update of the same item).
    """

    source: str
    key: str
    title: str
    body: str
    published: datetime
    fingerprint: str
    content_hash: str
    url: str | None = None
    html: str | None = None
    author: str | None = None
    # Keys the item may be stored under besides ``key`` (see dedup.other_keys).
    other_keys: tuple[str, ...] = ()
    # The file a document named by its title was read from (see dedup.document_file).
    file: str | None = None


@dataclass(frozen=True, slots=True)
class Document:
    """The fields a watch-list query can look at."""

    title: str
    body: str
    source: str = ""


@dataclass(frozen=True, slots=True)
class Span:
    """A matched stretch of a document field: ``text[start:end]`` of that field.

    ``term`` is that text on one line, cut at ``watchlists.match.MAX_TERM`` characters.
    """

    field: str
    start: int
    end: int
    term: str


@dataclass(frozen=True, slots=True)
class Hit:
    """One watch-list matching one document, with the evidence."""

    watchlist: str
    clause: str
    spans: tuple[Span, ...] = ()
    snippets: tuple[str, ...] = ()

    @property
    def terms(self) -> tuple[str, ...]:
        """The distinct matched terms, in the order first seen."""
        return tuple(dict.fromkeys(span.term for span in self.spans))


@dataclass(frozen=True, slots=True)
class StoredItem:
    """An item as the store returns it, with its database identity and story."""

    id: int
    story_id: int
    source: str
    key: str
    title: str
    body: str
    published: datetime
    fetched_at: datetime
    url: str | None = None
    html: str | None = None
    author: str | None = None


@dataclass(frozen=True, slots=True)
class Alert:
    """What a template renders: one story for one watch-list, or a digest of many."""

    watchlist: str
    item: StoredItem
    hits: tuple[Hit, ...]
    also_reported_by: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Message:
    """A rendered alert ready for a channel.

    ``delivery_key`` is the stable idempotency key (Message-ID, webhook-id).
    ``payload`` is the structured form webhooks send. ``delivered_to``: recipients that
    took it on an earlier attempt that others refused for now; they do not get it again.
    ``html`` is None when the channel it is for sends no HTML (``Channel.wants_html``).
    """

    delivery_key: str
    subject: str
    text: str
    html: str | None
    payload: dict[str, Any] = field(default_factory=dict)
    recipient: str | None = None
    delivered_to: frozenset[str] = frozenset()
