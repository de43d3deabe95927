"""Whether an XML feed document closes its root element: one that does not was cut short.

A feed cut inside an element still parses (feedparser reads what it got), and the entry
cut in two would be stored for good, alerting under half a title. The folder source
meets this in a file still being copied in; the feed source in a body whose end the
server marked by closing the connection (no Content-Length, HTTP/1.0's way), where a
connection lost midway looks like the end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# An XML document's end: the root's closing tag, then only whitespace, comments and
# processing instructions (a cache's "<!-- generated in 0.2 s -->" after </rss>).
_CLOSING = re.compile(
    rb"</([^<>\s]+)\s*>(?:\s|<!--(?:(?!-->).)*-->|<\?(?:(?!\?>).)*\?>)*\Z", re.DOTALL
)
_COMMENT = re.compile(rb"<!--.*?(?:-->|\Z)", re.DOTALL)
_FIRST_ELEMENT = re.compile(rb"<([A-Za-z_][^\s/>]*)")  # "<?" and "<!" start no element
# The rest of the root's start tag, "/>" for an empty root. Quoted attribute values are
# skipped whole: '>' needs no escape there, so "a &lt;br/>" may be one. Matched from the
# root's name only: searched for, a head of many '<' and no '>' took seconds.
_START_TAG_END = re.compile(rb"""(?:[^>"'/]|/(?!>)|"[^"]*"|'[^']*')*(/?)>""")
_TAG_END = re.compile(rb"\s*>")
_TAIL = 64 * 1024  # bytes of a document's ends in which its root's tags are looked for
# UTF-16/32, found as XML finds it: a byte order mark, or a zero among the first four
# bytes ("<\x00?\x00" without a mark). Such a document is not checked.
_WIDE = (b"\xff\xfe", b"\xfe\xff")


@dataclass(frozen=True, slots=True)
class Root:
    """A document's root element: its name, and whether it is empty (``<rss/>``)."""

    name: bytes
    empty: bool


def checked_text(raw: bytes) -> bytes | None:
    """``raw`` from its first markup on, if it is an XML document these checks read; None
    for a JSON one and a UTF-16/32 one."""
    text = raw.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith((b"{", b"[", *_WIDE)) or b"\x00" in text[:4]:
        return None
    return text


def root_element(document: bytes) -> Root | None:
    """The root element, found in the document's head; None before its start tag ends."""
    head = _COMMENT.sub(b"", document[:_TAIL])
    root = _FIRST_ELEMENT.search(head)
    start_tag = _START_TAG_END.match(head, root.end()) if root else None
    if root is None or start_tag is None:
        return None
    return Root(root.group(1), bool(start_tag.group(1)))


def closes_at_end(document: bytes, root: Root) -> bool:
    """Whether ``document`` ends with ``root``'s closing tag (or ``root`` is empty). Zeros
    and a DOS end-of-file mark after it are padding, not text."""
    if root.empty:
        return True
    closing = _CLOSING.search(document[-_TAIL:].rstrip(b"\x00\x1a \t\r\n"))
    return closing is not None and closing.group(1) == root.name


def closes(document: bytes, root: Root) -> bool:
    """Whether ``document`` has ``root``'s closing tag, whatever follows it (a page
    served may carry its host's script after the feed; feedparser reads past it)."""
    if root.empty:
        return True
    # From the end, where it is: a scan from the start would read the whole document.
    at = document.rfind(b"</" + root.name)
    return at >= 0 and _TAG_END.match(document, at + 2 + len(root.name)) is not None
