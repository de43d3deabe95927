"""RSS, Atom and JSON Feed documents -> Entries, through feedparser.

Shared by the HTTP feed source and the folder source (feed files dropped in a folder).
First the document is recoded to UTF-8 (charset.py: BOM, HTTP charset, XML declaration,
UTF-8, then detection, so a server that lies about the charset still gives readable
text), and both parsers below read that. Before they do, two cheap checks on its
prolog: an entity declaration is refused outright (a billion-laughs feed is never
expanded, whatever the parser below would do), and an HTML page is named as such
rather than reported as a broken feed.
Plain RSS 2.0 and Atom 1.0 documents take a faster road to the same entries
(fastfeed.py), which hands anything it is not sure about back to feedparser.
"""

from __future__ import annotations

import io
import json
import re
from datetime import datetime
from typing import Any
from urllib.parse import urljoin

from monitor.errors import SourceError
from monitor.model import Entry
from monitor.sources.charset import recode
from monitor.sources.feedfields import best_body, iso_date, parsed_date, zoned_date
from monitor.text import one_line

# The prolog is comments, processing instructions and declarations (the DOCTYPE) up to
# the root element: the first "<" followed by a name character outside all of them.
_PROLOG_MARKUP = re.compile(rb"<(?:(!--)|(\?)|(!)|[A-Za-z_:\x80-\xff])")
_ROOT = re.compile(rb"<([^\s/>]+)")
# Inside a declaration: literals, comments and PIs may hold a ">" that does not end it,
# and the DOCTYPE's internal subset runs from "[" to "]".
_DECLARATION_PARTS = re.compile(rb"[\"'\[\]>]|<!--|<\?")
_ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.IGNORECASE)
# GML and GeoRSS, taken out when feedparser's GeoRSS handler fails on them: the tags
# under the prefixes gml and georss or any other the document binds to their namespaces,
# and a default namespace declaration of either (feedparser names those elements gml_*).
_GEO_NAMESPACE = (
    rb"""(?P<q>["'])(?:http://www\.opengis\.net/gml|http://www\.georss\.org/georss)(?P=q)"""
)
_GEO_PREFIXES = re.compile(rb"xmlns:([^\s=/>]+)\s*=\s*" + _GEO_NAMESPACE)
_GEO_DEFAULT_NAMESPACE = re.compile(rb"xmlns\s*=\s*" + _GEO_NAMESPACE)
# width and height tags, taken out when feedparser fails on them: inside a text field
# (markup kept as text) their end handler runs without their start handler's push, and
# calls int(None). They only size a channel's image, which no Entry reads.
_SIZE_TAGS = re.compile(rb"</?(?:width|height)(?:\s[^>]*)?/?>")
# "https://jsonfeed.org/version/1.1" by the spec; bare "1.1" in the wild.
_JSON_FEED_VERSION = re.compile(r"jsonfeed\.org/version/|^1(\.\d+)?$")


def parse_feed(
    data: bytes,
    origin: str,
    *,
    content_type: str | None = None,
    base_url: str | None = None,
) -> list[Entry]:
    """Entries of a feed document; SourceError when it is not a feed at all.

    ``base_url`` (where the document was fetched from) resolves relative links.
    """
    stripped = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not stripped:  # a 200 or 204 with no body: said so, not as XML's "no element found"
        raise SourceError(f"{origin}: not a feed (an empty document)")
    if stripped.startswith((b"{", b"[")):
        return parse_json_feed(stripped, origin, base_url=base_url)
    document = recode(data, content_type)
    check_prolog(document.body, origin)
    headers = {"content-type": document.content_type} if document.content_type else {}
    if base_url:
        headers["content-location"] = base_url
    # Imported on first use (as feedparser is): a poll answered 304 never parses anything.
    from monitor.sources.fastfeed import fast_entries

    entries = fast_entries(document.body, origin, headers)
    if entries is None:
        entries = feedparser_entries(document.body, origin, headers)
    return entries


def feedparser_entries(data: bytes, origin: str, headers: dict[str, str]) -> list[Entry]:
    """Entries as feedparser reads the document (``headers`` as the server sent them)."""
    import feedparser

    def parse(document: bytes) -> Any:
        # As a stream: bytes that name a file or a URL, feedparser would open and read.
        return feedparser.parse(
            io.BytesIO(document),
            response_headers=headers,
            sanitize_html=False,
            resolve_relative_uris=False,
        )

    try:
        parsed = parse(data)
    except (KeyError, ValueError, TypeError):
        # feedparser's GeoRSS handler fails on GML outside a <georss:where> (KeyError
        # 'where') and on an EPSG code that is no number (ValueError); its width and
        # height handlers on those tags inside a text field (TypeError). That markup is
        # nothing we read: the document goes again without it.
        try:
            parsed = parse(_SIZE_TAGS.sub(b"", _without_geo(data)))
        except (KeyError, ValueError, TypeError) as exc:
            raise SourceError(f"{origin}: feedparser failed on the document ({exc!r})") from exc
    version = parsed.get("version") or ""
    if not version and not parsed.entries:
        reason = parsed.get("bozo_exception")
        raise SourceError(f"{origin}: not a feed ({reason or 'no RSS, Atom or JSON Feed found'})")
    # An Atom id is a name, not a location, even when it looks like a URL; only RSS's
    # permalink guid doubles as the link (feedparser treats both alike).
    id_is_link = not version.startswith("atom")
    return [_entry_from_feedparser(raw, origin, id_is_link=id_is_link) for raw in parsed.entries]


def _without_geo(data: bytes) -> bytes:
    """``data`` without GML and GeoRSS tags (their text stays, as text of the parent)."""
    prefixes = {b"gml", b"georss", *(found[0] for found in _GEO_PREFIXES.findall(data))}
    tags = re.compile(rb"</?(?:" + b"|".join(map(re.escape, sorted(prefixes))) + rb"):[^>]*>")
    return _GEO_DEFAULT_NAMESPACE.sub(b'xmlns=""', tags.sub(b"", data))


def check_prolog(document: bytes, origin: str) -> None:
    """Refuse entity declarations and HTML pages before any XML parser runs.

    ``document`` is UTF-8 (``recode``), as the parsers get it. The whole prolog is read,
    however long, in one pass that expands nothing: a declaration behind a megabyte of
    comment is refused like one on the first line. A comment, PI or literal left open
    runs to the end, as a parser would read it.
    """
    position = 0
    while (markup := _PROLOG_MARKUP.search(document, position)) is not None:
        comment, instruction, declaration = markup.groups()
        if comment:
            position = _after(document, b"-->", markup.end())
        elif instruction:
            position = _after(document, b"?>", markup.end())
        elif declaration:
            position = _declaration_end(document, markup.end())
            if _ENTITY_DECLARATION.search(document, markup.start(), position):
                raise SourceError(f"{origin}: refused: the document declares XML entities")
        else:
            root = _ROOT.match(document, markup.start())
            if root is not None and root.group(1).lower() == b"html":
                raise SourceError(f"{origin}: not a feed (an HTML page)")
            return


def _declaration_end(document: bytes, position: int) -> int:
    """Where the declaration (a DOCTYPE, say) that goes on at ``position`` ends."""
    depth = 0
    while (part := _DECLARATION_PARTS.search(document, position)) is not None:
        token = part.group()
        position = part.end()
        if token in (b'"', b"'"):
            position = _after(document, token, position)
        elif token == b"<!--":
            position = _after(document, b"-->", position)
        elif token == b"<?":
            position = _after(document, b"?>", position)
        elif token == b"[":
            depth += 1
        elif token == b"]":
            depth = max(depth - 1, 0)
        elif depth == 0:
            return position
    return len(document)


def _after(document: bytes, end: bytes, position: int) -> int:
    """Just past the next ``end`` from ``position``, or the end of the document."""
    found = document.find(end, position)
    return len(document) if found < 0 else found + len(end)


def _entry_from_feedparser(raw: Any, origin: str, *, id_is_link: bool) -> Entry:
    content_html, is_html = _best_content(raw)
    published = _entry_date(raw, "published") or _entry_date(raw, "updated")
    return Entry(
        title=one_line(raw.get("title", "") or ""),
        content=content_html,
        content_is_html=is_html,
        guid=(raw.get("id") or raw.get("guid") or None),
        link=(raw.get("link") if id_is_link or raw.get("links") else None) or None,
        published=published,
        author=(raw.get("author_detail") or {}).get("name") or raw.get("author") or None,
        origin=origin,
    )


def _best_content(raw: Any) -> tuple[str, bool]:
    """The fullest body: content:encoded / atom content, else summary/description."""
    candidates = list(raw.get("content") or [])
    if raw.get("summary_detail"):
        candidates.append(raw["summary_detail"])
    elif raw.get("summary"):
        candidates.append({"value": raw["summary"], "type": "text/html"})
    return best_body((c.get("value") or "", c.get("type") or "text/html") for c in candidates)


def _entry_date(raw: Any, field: str) -> datetime | None:
    """An ISO 8601 date as written, else feedparser's reading of whatever format it was."""
    # dict.get: FeedParserDict answers a missing "updated" with "published", and warns.
    written = dict.get(raw, field)
    return iso_date(written) or zoned_date(written) or parsed_date(dict.get(raw, f"{field}_parsed"))


def parse_json_feed(data: bytes, origin: str, *, base_url: str | None = None) -> list[Entry]:
    """JSON Feed 1.0/1.1 (feedparser does not read it). Relative links resolve against
    ``base_url``, else the feed's own ``feed_url``, as an RSS or Atom feed's do."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceError(f"{origin}: not a feed (invalid JSON: {exc})") from exc
    except RecursionError as exc:  # json's decoder recurses once an array or object deep
        raise SourceError(f"{origin}: not a feed (JSON nested too deeply)") from exc
    if not isinstance(document, dict) or not _JSON_FEED_VERSION.search(
        str(document.get("version", ""))
    ):
        raise SourceError(f"{origin}: not a feed (JSON without a JSON Feed version)")
    items = document.get("items")
    if not isinstance(items, list):
        raise SourceError(f"{origin}: not a feed (JSON Feed without items)")
    # An item without authors has the feed's (JSON Feed 1.1).
    author = _author(document)
    base = base_url or _text(document.get("feed_url"))
    return [_json_item(item, origin, author, base) for item in items if isinstance(item, dict)]


def _json_item(item: dict[str, Any], origin: str, feed_author: str | None, base: str) -> Entry:
    html = _text(item.get("content_html"))
    text = _text(item.get("content_text")) or _text(item.get("summary"))
    link = next((url for url in (item.get("url"), item.get("external_url")) if _string(url)), None)
    return Entry(
        title=one_line(_text(item.get("title"))),
        content=html or text,
        content_is_html=bool(html),
        guid=str(item["id"]) if item.get("id") is not None else None,
        link=urljoin(base, link) if link else None,
        published=iso_date(item.get("date_published")) or iso_date(item.get("date_modified")),
        author=_author(item) or feed_author,
        origin=origin,
    )


def _author(holder: dict[str, Any]) -> str | None:
    """The first author's name of a feed or an item: its ``authors`` (JSON Feed 1.1),
    else its ``author`` (1.0)."""
    authors = holder.get("authors") or ([holder["author"]] if holder.get("author") else [])
    if not isinstance(authors, list):
        return None
    # Only strings are text: a feed's {"url": {...}} or {"name": 5} is no link, no author.
    return next(
        (a["name"] for a in authors if isinstance(a, dict) and _string(a.get("name"))), None
    )


def _text(value: Any) -> str:
    """``value`` if it is a string, else "": a feed's {"a": 1} or [..] for a title or a
    body is no text (its Python spelling was matched, stored and shown)."""
    return value if isinstance(value, str) else ""


def _string(value: Any) -> bool:
    """A non-empty string (JSON gives any type where a feed should have put text)."""
    return bool(_text(value))
