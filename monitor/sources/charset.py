"""Which character set a feed document is written in, and the document recoded to UTF-8.

Run before any parser, so the entity check, the fast path and feedparser all read one
and the same text. The order: a byte order mark; the first bytes of a document that is
not ASCII-compatible (UTF-16, UTF-32, EBCDIC: XML 1.0 appendix F, as feedparser sniffs
them); the charset the server declares, then the XML declaration's, each only if the
bytes decode in it; UTF-8 if they decode in it; a server's Latin-1 (or windows-1252, or
ASCII) label only after those, as servers put it on anything; else chardet's guess.
feedparser alone
would fall back to windows-1252 there, and a Korean, Russian or Japanese feed served
without a charset (or with a false ``charset=utf-8``) would be stored as mojibake.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

import structlog

log = structlog.get_logger("monitor.sources.charset")

_BYTE_ORDER_MARKS = (  # UTF-32 LE before UTF-16 LE: its mark starts with the other's
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF8, "utf-8"),
)
_NOT_ASCII_COMPATIBLE = (  # how "<" or "<?" begins without a byte order mark
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00?\x00", "utf-16-le"),
    (b"\x00<\x00?", "utf-16-be"),
    (b"\x4c\x6f\xa7\x94", "cp037"),
)
_CHARSET_PARAMETER = re.compile(r";\s*charset\s*=\s*[\"']?([^\s;\"']+)", re.IGNORECASE)
_DECLARED_ENCODING = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([^"']+)["']""")
# feedparser's own pattern: the declaration it rewrites (or adds) after decoding.
_XML_DECLARATION = re.compile(r"^<\?xml[^>]*?>")
_UTF8_DECLARATION = "<?xml version='1.0' encoding='utf-8'?>"
_NON_ASCII = re.compile(rb"[\x80-\xff]")
# Charsets servers name for any document they serve (Python's codec names).
_LABELS_FOR_ANYTHING = frozenset({"iso8859-1", "cp1252", "ascii"})
# chardet reads this much from the first non-ASCII byte on: what comes before is ASCII,
# and may be megabytes of markup that tell nothing (a long comment, say).
_DETECTION_SAMPLE = 200_000


@dataclass(frozen=True, slots=True)
class Utf8Document:
    """A document recoded to UTF-8, whose XML declaration and content type say so."""

    body: bytes
    content_type: str | None
    encoding: str  # the Python codec it was read with


def recode(data: bytes, content_type: str | None) -> Utf8Document:
    """``data`` as UTF-8, read in the encoding ``document_encoding`` finds."""
    encoding, mark = document_encoding(data, content_type)
    text = data[mark:].decode(encoding, errors="replace")
    if _XML_DECLARATION.match(text):
        text = _XML_DECLARATION.sub(_UTF8_DECLARATION, text, count=1)
    else:
        text = f"{_UTF8_DECLARATION}\n{text}"
    media_type = (content_type or "").partition(";")[0].strip()
    return Utf8Document(
        text.encode("utf-8"), f"{media_type}; charset=utf-8" if media_type else None, encoding
    )


def document_encoding(data: bytes, content_type: str | None) -> tuple[str, int]:
    """The codec to read ``data`` with, and the length of its byte order mark."""
    for mark, encoding in _BYTE_ORDER_MARKS:
        if data.startswith(mark):
            return encoding, len(mark)
    for start, encoding in _NOT_ASCII_COMPATIBLE:
        if data.startswith(start):
            return encoding, 0
    header, declaration = _declared(data, content_type)
    declared = [name for name in (header, declaration) if name]
    # Many servers label every document Latin-1 whatever it holds: such a label comes
    # after the document's own declaration and after UTF-8 that decodes (Latin-1 text
    # seldom does). A document declaring Latin-1 itself is believed.
    generic = header in _LABELS_FOR_ANYTHING
    candidates = [
        *(name for name in (None if generic else header, declaration) if name),
        "utf-8",
        *([header] if generic and header else []),
    ]
    for encoding in dict.fromkeys(name for name in candidates if _ascii_compatible(name)):
        try:
            data.decode(encoding)
        except UnicodeError:
            continue
        return encoding, 0
    detected = _detected(data)
    log.info("charset_detected", declared=declared or None, encoding=detected)
    return detected, 0


def _declared(data: bytes, content_type: str | None) -> tuple[str | None, str | None]:
    """The codecs the charset parameter and the XML declaration name, in that order
    (None if one names none, or one Python does not know)."""
    parameter = _CHARSET_PARAMETER.search(content_type or "")
    declaration = _DECLARED_ENCODING.match(data)
    return (
        _codec(parameter.group(1) if parameter else None),
        _codec(declaration.group(1).decode("ascii", "replace") if declaration else None),
    )


def _codec(name: str | None) -> str | None:
    """The text codec ``name`` names; None for none, an unknown one, or one that is not
    a text encoding (``charset=rot13``, ``encoding="hex"``: a label is hostile input)."""
    if not name:
        return None
    try:
        codec = codecs.lookup(name)
        "<?a \u00e9".encode(codec.name, "replace").decode(codec.name, "replace")
    except (LookupError, ValueError):  # UnicodeError (idna), and a NUL in the name
        return None
    return codec.name


def _ascii_compatible(encoding: str) -> bool:
    """Whether ASCII markup reads as itself: a declared UTF-16 on 8-bit bytes is false."""
    return "<?a".encode(encoding, errors="replace") == b"<?a"


def _detected(data: bytes) -> str:
    # Imported on first use: most feeds declare a charset that decodes.
    import chardet

    first = _NON_ASCII.search(data)
    start = first.start() if first else 0
    # prefer_superset: cp949 for EUC-KR, cp1252 for Latin-1, ..., so that bytes past the
    # sample decode too. compat_names=False: Python's codec names.
    guess = chardet.detect(
        data[start : start + _DETECTION_SAMPLE], prefer_superset=True, compat_names=False
    )["encoding"]
    return guess or "cp1252"
