"""One RSS item or Atom entry element -> the Entry the feedparser path would build.

The fast path's other half (fastfeed.py reads the document). Each child is stored the
way feedparser's start and end handlers store it, by the name feedparser gives it
(prefix_local, lower case): the same text clean-up, URI joining and date parser, the
same quirks (an Atom id stands in as the link when no alternate link came first; the
content is copied as the summary). Any child it does not model, unless feedparser's
handling of it touches nothing an Entry reads, makes it give up (None).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache, lru_cache

from feedparser.api import StrictFeedParser
from feedparser.datetimes import _parse_date
from feedparser.html import _cp1252
from feedparser.urls import _urljoin
from feedparser.util import FeedParserDict

from monitor.model import Entry
from monitor.sources.feedfields import best_body, iso_date, parsed_date, zoned_date
from monitor.text import PLAIN_URL, one_line

# An ElementTree tag -> the name feedparser gives that element (prefix_local, lower
# case), None when the document's namespaces leave it in doubt.
Namer = Callable[[str], str | None]
CONTAINERS = frozenset({"rss", "channel", "feed"})  # what makes feedparser start a feed
ENTRIES = frozenset({"item", "entry"})  # what makes feedparser start an entry

# Entry children read here, by the name feedparser's handlers use.
_ROLES = {
    "title": "title",
    "link": "link",
    "enclosure": "enclosure",
    "guid": "guid",
    "id": "guid",
    "pubdate": "published",
    "published": "published",
    "issued": "published",
    "dcterms_issued": "published",
    "updated": "updated",
    "modified": "updated",
    "lastbuilddate": "updated",
    "dc_date": "updated",
    "dcterms_modified": "updated",
    "description": "summary",
    "summary": "summary",
    "content": "content",
    "content_encoded": "content",
    "author": "author",
    "dc_creator": "author",
    "dc_author": "author",
}
# Default content types, as feedparser's start handlers give them.
_DEFAULT_TYPES = {
    "title": "text/plain",
    "description": "text/html",
    "summary": "text/plain",
    "content": "text/plain",
    "content_encoded": "text/html",
}
_TEXT_TYPES = ("text/plain", "text/html")
# Entry keys the feedparser path reads, and keys feedparser's dict renames on the way in:
# an unknown element of either name would change an Entry.
_MEANINGFUL = (
    frozenset({"title", "link", "links", "id", "guid", "author", "authors", "author_detail"})
    | frozenset({"summary", "summary_detail", "content", "published", "published_parsed"})
    | frozenset({"updated", "updated_parsed"})
    | frozenset(FeedParserDict.keymap)
    | CONTAINERS
    | ENTRIES
    | frozenset(_ROLES)
)
# Elements with a feedparser handler that touches nothing an Entry reads.
_HARMLESS = frozenset({
    "category", "keywords", "source", "rights", "copyright", "language", "created",
    "expirationdate", "subtitle", "dc_subject", "dc_language", "dc_rights", "dc_publisher",
    "dc_contributor", "dcterms_created", "dcterms_valid", "media_content", "media_thumbnail",
    "media_credit", "media_category", "media_keywords", "media_rating", "media_restriction",
    "media_license", "media_group", "media_player", "itunes_image", "itunes_keywords",
    "itunes_explicit", "itunes_block", "itunes_category", "itunes_subtitle",
})  # fmt: skip
# An attribute's namespace URI (lower case) -> the prefix feedparser keys it by.
_ATTRIBUTE_PREFIXES = {uri.lower(): prefix for uri, prefix in StrictFeedParser.namespaces.items()}
# Entry attributes feedparser reads (rdf:about as the id; CDF's lastmod and href).
_ENTRY_ATTRIBUTES = frozenset({"about", "lastmod", "href"})

# A guid is often the link again: join each only once.
_cached_join = lru_cache(maxsize=1024)(_urljoin)
# The RSS date most feeds write (RFC 822 in GMT, a four-digit year), read directly.
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_GMT_DATE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d\d) (" + "|".join(_MONTHS) + r") (\d{4}) "
    r"(\d\d):(\d\d):(\d\d) GMT"
)


@dataclass(slots=True)
class _Fields:
    """What feedparser would have stored for one entry, by the keys the Entry reads."""

    title: str | None = None
    link: str | None = None
    links: int = 0
    guid: str | None = None
    published: str | None = None
    updated: str | None = None
    summary: tuple[str, str] | None = None
    content: tuple[str, str] | None = None
    author: str | None = None
    seen: set[str] = field(default_factory=set)


def read_entry(
    item: ET.Element, names: Namer, base: str, origin: str, *, id_is_link: bool
) -> Entry | None:
    """The Entry of an item / entry element, or None when unsure. ``base``: the base
    URI feedparser joins links to; ``id_is_link``: RSS (an RSS permalink guid is a link)."""
    if any(_local(key) in _ENTRY_ATTRIBUTES for key in item.attrib):
        return None
    fields = _Fields()
    for child in item:
        name = names(child.tag)
        role = _ROLES.get(name or "")
        if role is None:
            if not _ignorable(child, names):
                return None
            continue
        if role in fields.seen and role not in ("link", "enclosure"):
            return None
        fields.seen.add(role)
        if len(child) and role != "author":
            return None
        if not _read(fields, role, name or "", child, names, base, guess_html=id_is_link):
            return None
    return _assemble(fields, origin, id_is_link=id_is_link)


def _read(
    fields: _Fields,
    role: str,
    name: str,
    child: ET.Element,
    names: Namer,
    base: str,
    *,
    guess_html: bool,
) -> bool:
    """Store one child as feedparser's handlers would; False when unsure.

    ``guess_html``: outside Atom, feedparser takes a text/plain field whose text looks
    like HTML (a close tag or an entity, known tags only) for HTML, and so must we."""
    attrs = _attributes(child)
    text = child.text or ""
    if role in ("title", "summary", "content"):
        kind = StrictFeedParser.map_content_type(attrs.get("type", _DEFAULT_TYPES[name]))
        if "mode" in attrs or "src" in attrs or kind not in _TEXT_TYPES:
            return False
        if guess_html and kind == "text/plain" and StrictFeedParser.looks_like_html(text.strip()):
            kind = "text/html"
        value = _finish(text)
        if role == "title":
            fields.title = value
        elif role == "summary":
            fields.summary = (value, kind)
        else:
            fields.content = (value, kind)
    elif role == "link":
        _read_link(fields, attrs, text, base)
    elif role == "enclosure":
        fields.links += 1
    elif role == "guid":
        permalink = attrs.get("ispermalink", "true") == "true"
        fields.guid = _finish(text, base if permalink else None)
        if permalink and fields.link is None:
            fields.link = fields.guid
    elif role == "published":
        fields.published = _finish(text)
    elif role == "updated":
        fields.updated = _finish(text)
    else:
        author = _author(child, names) if len(child) else _author_line(text)
        if author is None:
            return False
        fields.author = author
    return True


def _read_link(fields: _Fields, attrs: dict[str, str], text: str, base: str) -> None:
    """An Atom link (href, rel, type) or an RSS link (its text), as _start_link reads it."""
    fields.links += 1
    rel = attrs.setdefault("rel", "alternate")
    attrs.setdefault("type", "application/atom+xml" if rel == "self" else "text/html")
    href = attrs.get("url", attrs.get("uri", attrs.get("href")))
    if href:
        attrs["href"] = href
    if "href" in attrs:
        if rel == "alternate" and StrictFeedParser.map_content_type(attrs["type"]) in (
            "text/html",
            "application/xhtml+xml",
        ):
            fields.link = _join(base, attrs["href"])
        return
    # feedparser's repair of query strings it once mangled as entity references.
    link = _finish(text, base).replace("&amp;", "&")
    fields.link = re.sub("&([A-Za-z0-9_]+);", r"&\g<1>", link) if "&" in link else link


def _author_line(text: str) -> str | None:
    """An RSS author / dc:creator line; None if it holds an email address, which
    feedparser picks apart with its own heuristics."""
    value = _finish(text)
    return None if "@" in value else value


def _author(author: ET.Element, names: Namer) -> str | None:
    """An Atom author: its name, else its email ('' when neither); None when unsure."""
    direct = (author.text or "") + "".join(child.tail or "" for child in author)
    if direct.strip():
        return None
    parts: dict[str, str] = {}
    for child in author:
        part = names(child.tag)
        if part not in ("name", "email", "uri"):
            # Blogger's gd:image: harmless, if it holds no text for the author line and
            # nothing in it has a feedparser handler (dc:contributor saves a name).
            if _inert(child, names) and not "".join(child.itertext()).strip():
                continue
            return None
        if len(child):
            return None
        # feedparser keeps name and email as written, only stripped.
        parts[part] = (child.text or "").strip()
    return parts.get("name") or parts.get("email") or ""


def _assemble(fields: _Fields, origin: str, *, id_is_link: bool) -> Entry:
    candidates = [fields.content] if fields.content else []
    if fields.summary is not None:
        candidates.append(fields.summary)
    elif fields.content and fields.content[0]:
        candidates.append((fields.content[0], "text/html"))  # feedparser's copy as summary
    content, is_html = best_body(candidates)
    return Entry(
        title=one_line(fields.title or ""),
        content=content,
        content_is_html=is_html,
        guid=fields.guid or None,
        link=(fields.link if id_is_link or fields.links else None) or None,
        published=_date(fields.published) or _date(fields.updated),
        author=fields.author or None,
        origin=origin,
    )


def _date(text: str | None) -> datetime | None:
    return _gmt_date(text) or iso_date(text) or zoned_date(text) or parsed_date(_parse_date(text))


def _gmt_date(text: str | None) -> datetime | None:
    """A date in ``_GMT_DATE``'s form as feedparser reads it (its weekday unchecked),
    without its list of formats to try, each a regex or an exception: a fifth of the
    time. None for any other text, and for a date no calendar has (left to feedparser)."""
    found = _GMT_DATE.fullmatch(text) if text else None
    if found is None:
        return None
    day, month, year, hour, minute, second = found.groups()
    with suppress(ValueError):
        month_number = _MONTHS.index(month) + 1
        return datetime(
            int(year), month_number, int(day), int(hour), int(minute), int(second), tzinfo=UTC
        )
    return None


def _join(base: str, uri: str) -> str:
    """``uri`` joined to ``base`` as feedparser joins them. A plain absolute link (see
    monitor.text.PLAIN_URL, most feed links) is its own join, without feedparser's regex
    substitution and urljoin taking it apart and together: a fifth of an entry's reading."""
    return uri if PLAIN_URL.fullmatch(uri) else _cached_join(base, uri)


def _finish(text: str, base: str | None = None) -> str:
    """An element's text as feedparser stores it: stripped, joined to the base URI when
    it is a link, re-read as UTF-8 if that is what it was, C1 controls as cp1252."""
    value = text.strip()
    if base is not None and value:
        value = _join(base, value)
    if value.isascii():
        return value
    with suppress(UnicodeEncodeError, UnicodeDecodeError):
        value = value.encode("iso-8859-1").decode("utf-8")
    return value.translate(_cp1252)


def _attributes(element: ET.Element) -> dict[str, str]:
    """Attributes as feedparser keys them: the name in lower case; rel and type values in
    lower case too. One in a namespace feedparser knows is keyed prefix:name (dc:type,
    xml:lang), so only an unprefixed, Atom or unknown-namespace name is read, and a
    plain attribute wins over a namespaced one of the same name."""
    attrs = {}
    plain = True
    for key, value in element.attrib.items():
        if key[0] == "{":
            plain = False
            continue
        name = key.lower()
        attrs[name] = value.lower() if name in ("rel", "type") else value
    if plain:
        return attrs
    namespaced = {}
    for key, value in element.attrib.items():
        if key[0] == "{":
            uri, _, local = key[1:].partition("}")
            prefix = _ATTRIBUTE_PREFIXES.get(uri.lower(), "")
            name = f"{prefix}:{local}".lower() if prefix else local.lower()
            namespaced[name] = value.lower() if name in ("rel", "type") else value
    return namespaced | attrs


def _local(key: str) -> str:
    return key.rpartition("}")[2].lower()


def _ignorable(element: ET.Element, names: Namer) -> bool:
    """An element, with all it holds, that changes nothing an Entry reads. Walked by
    ``iter`` rather than recursively: a feed may nest deeper than Python recurses."""
    return all(
        (name := names(child.tag)) is not None and _ignorable_name(name) for child in element.iter()
    )


def _inert(element: ET.Element, names: Namer) -> bool:
    """An element that feedparser only stores, as all it holds: no handler runs."""
    return all(
        (name := names(child.tag)) is not None and _ignorable_name(name) and not _handled(name)
        for child in element.iter()
    )


@cache
def _ignorable_name(name: str) -> bool:
    if name in _MEANINGFUL:
        return False
    return name in _HARMLESS or not _handled(name)


@cache
def _handled(name: str) -> bool:
    return hasattr(StrictFeedParser, f"_start_{name}") or hasattr(StrictFeedParser, f"_end_{name}")
