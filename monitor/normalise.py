"""Entry -> Item: plain text for matching, sanitised HTML for rendering, UTC dates, keys."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from monitor.dedup import (
    Identity,
    content_hash,
    document_file,
    fingerprint,
    item_key,
    other_keys,
)
from monitor.model import Entry, Item, Names
from monitor.text import (
    MAX_BODY,
    MAX_TITLE,
    UNENCODABLE,
    canonical_url,
    cap,
    encodable,
    html_to_text,
    one_line,
    sanitize_html,
    to_utc,
    without_cdata,
)

MAX_HTML = 400_000
# The sanitiser's tree builder takes time quadratic in the depth of nesting: 40,000
# "<ul><li>" (320 KB) took half a minute. HTML nested deeper than this is kept as text
# only: no article nests so deep.
MAX_NESTING = 2_000
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)")
# Elements that never hold others (void), or that the next of their kind closes.
_FLAT = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
    "source", "track", "wbr", "p", "li", "dt", "dd", "option", "optgroup", "tr", "td", "th",
    "thead", "tbody", "tfoot", "rb", "rt", "rtc", "rp",
})  # fmt: skip
# A date more than a day in the future is a feed's mistake; it would sort above
# everything for ever, so the fetch time stands in for it.
FUTURE_TOLERANCE = timedelta(days=1)
# So is a date no later than the Unix epoch: a zero timestamp, a year 1 ("0001-01-01",
# an unset date field). No news feed's entry is that old, and year 1 is not even
# shown in a zone west of UTC (an alert's rendering raised OverflowError).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)


def _maybe_encodable(text: str | None) -> str | None:
    return text and encodable(text)


def _encodable_names(names: Names | None) -> Names | None:
    return names and (_maybe_encodable(names[0]), _maybe_encodable(names[1]))


def _unencodable(text: str | None) -> bool:
    """Whether ``text`` holds a lone surrogate or a NUL. ASCII text (nearly every field,
    a flag Python keeps on the string) holds no surrogate: a search for NUL alone is a
    C scan, where the regex stepped through each character."""
    if text is None:
        return False
    if text.isascii():
        return "\x00" in text
    return UNENCODABLE.search(text) is not None


def normalise_entry(source: str, entry: Entry, *, identity: Identity, now: datetime) -> Item:
    """The stored and matched form of ``entry``."""
    names = (*(entry.key_names or ()), *(entry.former_names or ()))
    texts = (entry.title, entry.content, entry.guid, entry.link, entry.author, *names)
    if any(map(_unencodable, texts)):
        entry = replace(
            entry,
            title=encodable(entry.title),
            content=encodable(entry.content),
            guid=_maybe_encodable(entry.guid),
            link=_maybe_encodable(entry.link),
            author=_maybe_encodable(entry.author),
            key_names=_encodable_names(entry.key_names),
            former_names=_encodable_names(entry.former_names),
        )
    markup = without_cdata(entry.content) if entry.content_is_html else None
    body = entry.content if markup is None else html_to_text(markup)
    title, body = title_and_body(entry.title, body)
    published = _published(entry, now)
    url = canonical_url(entry.link) if entry.link else None

    def key_of(names: Names) -> str:
        return item_key(guid=names[0], link=names[1], title=title, body=body, identity=identity)

    key = key_of(entry.key_names or (entry.guid, entry.link))
    former = key_of(entry.former_names) if entry.former_names else None
    return Item(
        source=source,
        key=key,
        title=title,
        body=body,
        published=published,
        fingerprint=fingerprint(title, body, key),
        content_hash=content_hash(title, body),
        url=url,
        html=None if markup is None else _sanitized(markup[:MAX_HTML]),
        author=cap(one_line(entry.author), 200) if entry.author else None,
        other_keys=other_keys(key, former),
        file=document_file(key, entry.origin and encodable(entry.origin)),
    )


def _published(entry: Entry, now: datetime) -> datetime:
    """The entry's date in UTC, or ``now`` (the fetch time) when it has none it can mean."""
    published = to_utc(entry.published) if entry.published else now
    return published if EARLIEST < published <= now + FUTURE_TOLERANCE else now


def title_and_body(title: str, body: str) -> tuple[str, str]:
    """A story's title and plain-text body as they are stored and matched: the title one
    line (or the body's start), both capped. A back-test reads an archive through it too,
    so it matches what the daemon would."""
    body = cap(body, MAX_BODY)
    return cap(one_line(title), MAX_TITLE) or cap(one_line(body[:200]), 200) or "(untitled)", body


def _sanitized(markup: str) -> str | None:
    """``markup`` sanitised, or None when it nests too deep to sanitise in good time."""
    # No deeper than its count of tags: most bodies need no closer look.
    if markup.count("<") > MAX_NESTING and _nesting(markup) > MAX_NESTING:
        return None
    return sanitize_html(markup)


def _nesting(markup: str) -> int:
    """How deep elements nest in ``markup``, about: an end tag closes up to the open
    element it names, and is ignored when none is open (as a browser does)."""
    stack: list[str] = []
    open_names: Counter[str] = Counter()
    deepest = 0
    for closing, tag in _TAG.findall(markup):
        name = tag.lower()
        if name in _FLAT:
            continue
        if not closing:
            stack.append(name)
            open_names[name] += 1
            deepest = max(deepest, len(stack))
        elif open_names[name]:
            while (top := stack.pop()) != name:
                open_names[top] -= 1
            open_names[name] -= 1
    return deepest
