"""Plain RSS 2.0 / 0.9x and Atom 1.0 documents -> Entries without feedparser's parser.

feedparser runs Python callbacks for every element and every piece of text, and that
is most of the CPU of a cold poll. The C ElementTree parser reads the same well-formed
documents in a fraction of the time, so for them this module builds the very Entries
the feedparser path builds (feedparse.py). It follows feedparser where it matters by
calling feedparser's own functions: its character-set conversion (so both parsers see
the same text), URI joining, date parser, content-type names and handler table.

It declines (returns None, and feedparser runs as before) whenever it cannot be sure
the result would be identical: a DOCTYPE or entity declaration, a parse error (where
feedparser falls back to its loose parser), xml:base, RDF / RSS 1.0 / Atom 0.3, a
namespace prefix feedparser would read differently, markup inside a text field, a
field given twice, base64 or XHTML content, an email address in an author line, or
any element to which feedparser gives a meaning this module does not model.
Entry elements are read by fastentry.py. tests/unit/test_fastfeed.py holds both to the
feedparser path over every feed document the tests have.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from functools import cache
from typing import Any

from feedparser.api import StrictFeedParser
from feedparser.encodings import convert_to_utf8
from feedparser.urls import make_safe_absolute_uri

from monitor.model import Entry
from monitor.sources.fastentry import CONTAINERS, ENTRIES, Namer, read_entry

_ATOM_FEED = "{http://www.w3.org/2005/Atom}feed"
_STRUCTURAL = CONTAINERS | ENTRIES  # elements that start a feed or an entry
# Declaring either makes feedparser call the document RSS 1.0 / 0.90 whatever its root.
_RDF_VERSIONS = ("http://purl.org/rss/1.0/", "http://my.netscape.com/rdf/simple/0.9/")
_NS_DECLARATION = re.compile(rb"""xmlns(?::([^\s=]+))?\s*=\s*(?:"([^"]*)"|'([^']*)')""")
# An attribute named base (xml:base) moves feedparser's base URI. The pattern starts with
# a literal, so re skips ahead fast; the character before it is checked separately.
_BASE_ATTRIBUTE = re.compile(rb"base\s*=")
# feedparser's namespace table: URI (lower case) -> the prefix it names elements with.
_KNOWN_NAMESPACES = {
    uri.lower(): prefix.lower() for uri, prefix in StrictFeedParser.namespaces.items()
}


def fast_entries(data: bytes, origin: str, headers: dict[str, str]) -> list[Entry] | None:
    """The document's entries as the feedparser path gives them, or None to leave it
    to feedparser. ``headers`` as feedparser gets them (content-type, content-location).
    """
    converted: dict[str, Any] = {}
    text: bytes = convert_to_utf8(headers, data, converted)
    if not converted.get("encoding") or b"<!DOCTYPE" in text or b"<!ENTITY" in text:
        return None
    if _moves_base(text):
        return None
    names = _namer(text)
    base = _base_uri(headers.get("content-location", ""))
    if names is None or base is None:
        return None
    try:
        # No DOCTYPE, so nothing can declare an entity to expand.
        root = ET.fromstring(text)  # noqa: S314
    except ET.ParseError:
        return None
    containers = _containers(root, names)
    if containers is None:
        return None
    entries = []
    for container in containers:
        for child in container:
            if names(child.tag) in ENTRIES:
                entry = read_entry(child, names, base, origin, id_is_link=root.tag != _ATOM_FEED)
                if entry is None:
                    return None
                entries.append(entry)
    return entries


def _moves_base(text: bytes) -> bool:
    """Whether an attribute may set feedparser's base URI (xml:base, or any name
    ending in base; feedparser lower-cases attribute names)."""
    lowered = text.lower()
    return any(
        lowered[at.start() - 1 : at.start()] in b" \t\r\n:"
        for at in _BASE_ATTRIBUTE.finditer(lowered)
    )


def _namer(text: bytes) -> Namer | None:
    """The name feedparser gives each element (prefix_local, lower case), from the
    document's namespace declarations; None when a prefix would be read differently."""
    prefixes: dict[str, str] = {}  # namespace URI -> the prefix of its elements' names
    uris: dict[str, str] = {}  # declared prefix -> namespace URI
    remap: dict[str, str] = {}  # feedparser's namespacemap: declared prefix -> its prefix
    known_names: set[str] = set()
    unknown_names: set[str] = set()
    for declared, double, single in _NS_DECLARATION.findall(text):
        prefix, uri = declared.decode(), (double or single).decode()
        lower = uri.lower()
        if "backend.userland.com/rss" in lower:
            lower = "http://backend.userland.com/rss"
        known = _KNOWN_NAMESPACES.get(lower)
        if lower in _RDF_VERSIONS or (prefix and uris.setdefault(prefix, uri) != uri):
            return None
        if len(uri.split()) > 1:
            return None  # SAX splits the element's name at that space
        if known is None and not prefix:
            return None  # an unknown default namespace reads as no namespace at all
        if known is not None and prefix:
            remap[prefix] = known
        # An unknown namespace's elements are named by the prefix the document gives it.
        naming = known if known is not None else prefix.lower()
        (known_names if known is not None else unknown_names).add(naming)
        if uri and prefixes.setdefault(uri, naming) != naming:
            return None
    if known_names & unknown_names or any(
        remap.get(prefix, prefix) != prefix for prefix in prefixes.values()
    ):
        return None  # feedparser would name one namespace's elements as another's

    @cache
    def name(tag: str) -> str | None:
        if not tag.startswith("{"):
            return tag.lower()
        uri, _, local = tag[1:].partition("}")
        prefix = prefixes.get(uri)
        if prefix is None:
            return None
        return f"{prefix}_{local.lower()}" if prefix else local.lower()

    return name


def _base_uri(location: str) -> str | None:
    """feedparser's base URI for the document's elements (None when unsure)."""
    if not location:
        return ""
    first = make_safe_absolute_uri(location, location) or location
    again = make_safe_absolute_uri(first, first) or first
    return first if again == first else None


def _containers(root: ET.Element, names: Namer) -> list[ET.Element] | None:
    """The elements whose children are the entries: the Atom feed or the RSS channels.

    None unless every entry-making or feed-making element is where it belongs.
    """
    if root.tag == _ATOM_FEED:
        containers = [root]
    elif names(root.tag) == "rss":
        containers = [child for child in root if names(child.tag) == "channel"]
    else:
        return None
    expected = {id(root)} | {id(container) for container in containers}
    expected |= {id(c) for container in containers for c in container if names(c.tag) in ENTRIES}
    for element in root.iter():
        name = names(element.tag)
        if name is None or (name in _STRUCTURAL and id(element) not in expected):
            return None
    return containers
