"""Text helpers shared by sources and rendering: HTML to text, sanitising, URLs, dates."""

from __future__ import annotations

import html
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qsl, quote, quote_plus, unquote_plus, urlsplit, urlunsplit

import nh3

MAX_TITLE = 1_000
MAX_BODY = 200_000

_BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "br", "caption", "dd", "div", "dl", "dt",
    "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
    "li", "main", "nav", "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul",
})  # fmt: skip
_SKIP_TAGS = frozenset({"script", "style", "head", "template", "noscript"})
# A run of spaces to collapse into one " ": any but a lone " " already (most of them,
# which the regex then passes over instead of replacing each with itself). Each such
# run holds two spaces in a row or one of the other characters.
_SPACES = re.compile(r"[\t\f\v\u00a0][ \t\f\v\u00a0]*| [ \t\f\v\u00a0]+")
_RUN_MARKS = ("  ", "\t", "\f", "\v", "\u00a0")
_BLANK_LINES = re.compile(r"\n\s*\n\s*")
# How _markupbase ends a marked section of each kind ("<![CDATA[...]]>", "<![if x]>").
_SECTION_CLOSES = {
    **dict.fromkeys(("temp", "cdata", "ignore", "include", "rcdata"), re.compile(r"]\s*]\s*>")),
    **dict.fromkeys(("if", "else", "endif"), re.compile(r"]\s*>")),
}


class _TextExtractor(HTMLParser):
    """Collects visible text, turning block elements into paragraph breaks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0
        self._searched: str | None = None  # the rawdata _unclosed is about
        self._unclosed: dict[re.Pattern[str], int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)

    def parse_marked_section(self, i: int, report: bool = True) -> int:
        """_markupbase's, remembering where a search for a section's end failed.

        A "<![CDATA[" that nothing closes is searched to the end of the document, and
        at close() so is each "<![" after it: a megabyte of them took minutes. None can
        close where the same search from an earlier place found nothing.
        """
        name, j = self._scan_name(i + 3, i)  # type: ignore[attr-defined]
        if j < 0:
            return int(j)
        close = _SECTION_CLOSES.get(name)
        if close is None:
            raise AssertionError(f"unknown status keyword {name!r} in marked section")
        if self._searched is not self.rawdata:
            self._searched, self._unclosed = self.rawdata, {}
        if i >= self._unclosed.get(close, len(self.rawdata) + 1):
            return -1
        found = close.search(self.rawdata, i + 3)
        if found is None:
            self._unclosed[close] = min(i, self._unclosed.get(close, i))
            return -1
        return found.end()


def html_to_text(markup: str) -> str:
    """Visible text of an HTML fragment, paragraphs kept as blank-line breaks."""
    text = _simple_html_text(markup)
    if text is None:
        text = _parsed_html_text(markup)
    return tidy_text(text)


_CDATA = re.compile(r"<!\[CDATA\[(.*?)(?:\]\]>|\Z)", re.DOTALL)


def without_cdata(markup: str) -> str:
    """``markup`` with each CDATA section's content in its place, as markup. A feed that
    wraps its HTML body in CDATA twice (or escapes the wrapper) hands over HTML that
    starts "<![CDATA[": an HTML reader takes the whole section for a comment, and the
    story's text was lost to matching and shown garbled."""
    return _CDATA.sub(r"\1", markup) if "<![CDATA[" in markup else markup


def _parsed_html_text(markup: str) -> str:
    """What _TextExtractor collects from ``markup``, at a cost linear in its length.

    After the last ">" no tag can end, yet HTMLParser (before Python 3.11.13, 3.12.11,
    CVE-2025-6069) scans to the end of the document for every "<" there: 100 KB of
    "<a b='" took a minute. Each such "<" is text as HTMLParser reads it, so it goes in
    as "&lt;". A marked section it cannot read ("<![x") raises AssertionError from
    _markupbase: those are taken as text too.
    """
    end = markup.rfind(">") + 1
    if "<" in markup[end:]:
        markup = markup[:end] + markup[end:].replace("<", "&lt;")
    try:
        return _extract(markup)
    except AssertionError:
        return _extract(markup.replace("<![", "&lt;!["))


def _extract(markup: str) -> str:
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    return "".join(extractor.parts)


# Tags HTMLParser reads the same way as this regex does: a name of letters, digits and
# -.:_, attributes each after ASCII white space (a bare name, or =value unquoted, in
# double or in single quotes), an optional "/" before ">"; an end tag with nothing but
# white space after its name. HTMLParser's names end only at ASCII white space, "/" or
# ">", so a name that went on past these would not be read the same: no match.
_SIMPLE_TAG = re.compile(
    r"<(?:/([a-zA-Z][-.a-zA-Z0-9:_]*)[ \t\n\r\f]*"
    r"|([a-zA-Z][-.a-zA-Z0-9:_]*)"
    r"(?:[ \t\n\r\f]+[^ \t\n\r\f\"'<>/=]+"
    r"(?:[ \t\n\r\f]*=[ \t\n\r\f]*(?:\"[^\"]*\"|'[^']*'|[^ \t\n\r\f\"'=<>`]+))?)*"
    r"[ \t\n\r\f]*(/?))>"
)
# HTMLParser reads these elements' content as raw text: left to it.
_RAW_TEXT = frozenset({"script", "style"})


def _simple_html_text(markup: str) -> str | None:
    """What _TextExtractor collects from ``markup``, when every "<" in it starts a tag
    ``_SIMPLE_TAG`` reads (no comment, declaration or raw-text element); else None.
    Feed bodies are nearly always such HTML, and a regex over it is several times
    faster than HTMLParser's Python loop. One split gives the texts and each tag's
    groups in a list (text, end, start, self-closing, text...): no match object a tag."""
    pieces = _SIMPLE_TAG.split(markup)
    if any("<" in text for text in pieces[::4]):
        return None
    parts: list[str] = []
    skipping = 0
    if pieces[0]:
        parts.append(html.unescape(pieces[0]))
    for at in range(1, len(pieces), 4):
        end, start, self_closing, text = pieces[at : at + 4]
        name = (end or start).lower()
        if name in _RAW_TEXT:
            return None
        opens, closes = start is not None, end is not None or bool(self_closing)
        if name in _SKIP_TAGS:
            skipping += opens
            if closes:
                skipping = max(0, skipping - 1)
        elif name in _BLOCK_TAGS:
            parts.append("\n\n" * (opens + closes))
        if text and not skipping:
            parts.append(html.unescape(text))
    return "".join(parts)


def tidy_text(text: str) -> str:
    """Collapse runs of spaces, keep paragraph breaks, NFC-normalise."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    # _SPACES never spans a line break: one pass over the text, not one per line.
    lines = [line.strip() for line in _collapse_spaces(text).split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


# Control characters that are no kind of space: a feed's ESC or BEL would travel into
# mail subjects, chat messages and terminals.
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1b\x7f-\x9f]")

# A lone surrogate (a JSON Feed's unpaired "\ud800" escape) encodes in no charset: no
# database driver, URL quoting or mail would take it. PostgreSQL takes no NUL in text.
UNENCODABLE = re.compile("[\ud800-\udfff\x00]")


def encodable(text: str) -> str:
    """``text`` with each lone surrogate and NUL made U+FFFD: replaced before matching
    and storing, so the text matched (and quoted in snippets) is the text stored."""
    return UNENCODABLE.sub("\ufffd", text)


def one_line(text: str) -> str:
    """A title: one line of plain text, entities decoded, control characters spaces.

    A control becomes a space, not nothing: it separated words for the matcher, the
    content hash and the content key, so 'Seoul', a BEL and 'GSOMIA' still match GSOMIA,
    and a stored title keeps its hash (an item polled again is no update, alerting again)."""
    # split() takes every kind of space, the controls that are spaces among them
    return " ".join(_CONTROLS.sub(" ", html.unescape(text)).split())


# C0 and C1 controls, DEL, and the bidi embeddings, overrides and isolates.
_TERMINAL_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_line(text: str) -> str:
    """``text`` as a terminal shows it as it is: each control character as its escape
    (``\\x1b``). A feed's ESC would start a sequence that retitles the window, recolours
    or clears the screen; a bidi override (U+202E) reverses what follows it."""
    return _TERMINAL_CONTROLS.sub(lambda found: ascii(found.group())[1:-1], text)


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` and its noun, singular for one: "1 source", "3 watch-lists",
    "2 deliveries" (``plural`` where adding an "s" will not do)."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


def _collapse_spaces(text: str) -> str:
    """Each run of spaces as one " ". Most text has none to collapse, which a few
    substring searches tell several times faster than the regex's scan."""
    if any(mark in text for mark in _RUN_MARKS):
        return _SPACES.sub(" ", text)
    return text


def cap(text: str, limit: int) -> str:
    """At most ``limit`` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Built once: nh3.clean builds its sanitiser's rules anew at every call, a third of the
# time of cleaning a feed item's HTML.
_SANITIZER = nh3.Cleaner(link_rel="noopener noreferrer nofollow")


def sanitize_html(markup: str) -> str:
    """HTML safe to embed in an alert: scripts, handlers and unknown tags removed."""
    return _SANITIZER.clean(markup)


# --- URLs -------------------------------------------------------------------------------

_TRACKING_PARAMS = re.compile(
    r"^(utm_\w+|fbclid|gclid|dclid|gbraid|wbraid|msclkid|mc_cid|mc_eid|mc_\w+|"
    r"_hsenc|_hsmi|igshid|yclid|ref_src|cmpid|ocid)$",
    re.IGNORECASE,
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Every printable ASCII character but the space: what a query may hold as written, so
# only a character past ASCII (an IRI's) is escaped, as UTF-8, before it is read.
_QUERY_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))
# Redirect wrappers: host -> (the wrapper's path, or None for any, the parameters that
# may hold the target). Only those that carry the target in the URL: a shortener's
# (t.co, bit.ly) or a Google News article's (news.google.com/rss/articles/CBMi...) is
# known only to its server, and stays as it is.
_REDIRECT_WRAPPERS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "www.google.com": ("/url", ("url", "q")),
    "google.com": ("/url", ("url", "q")),
    "news.google.com": ("/url", ("url", "q")),
    "l.facebook.com": ("/l.php", ("u",)),
    "lm.facebook.com": ("/l.php", ("u",)),
    "www.facebook.com": ("/l.php", ("u",)),
    "m.facebook.com": ("/l.php", ("u",)),
    "facebook.com": ("/l.php", ("u",)),
    "l.instagram.com": ("/", ("u",)),
    "www.youtube.com": ("/redirect", ("q",)),
    "out.reddit.com": (None, ("url",)),
}


# A URL spelled as canonical_url would spell it (but for the "/" of an empty path): a
# lower-case http(s) scheme and host, no user, port, query or fragment, a path of
# characters that need no escape. Joined to any base, it is itself (monitor.sources).
PLAIN_URL = re.compile(r"https?://([a-z0-9.-]+)(/[\w.~/-]*)?", re.ASCII)


def canonical_url(url: str, *, depth: int = 0) -> str:
    """One spelling per page: tracking parameters, fragments and default ports dropped,
    host lower-cased, and redirect wrappers (google.com/url?url=...) unwrapped.

    Most feed links are spelled so already (``PLAIN_URL``): they are taken as they are,
    where taking them apart and together took 5 us."""
    plain = PLAIN_URL.fullmatch(url)
    if plain:  # no query, so no redirect wrapper's target to unwrap either
        return url if plain[2] else url + "/"
    return _canonical_url(url, depth)


def _canonical_url(url: str, depth: int) -> str:
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    host = _ascii_host((parts.hostname or "").lower())
    if not scheme or not host:
        return url
    target = _wrapped(host, parts.path, parts.query) if depth < 3 else None
    if target is not None:
        return canonical_url(target, depth=depth + 1)
    # urlsplit gives an IPv6 literal without its brackets; the URL needs them back.
    netloc = f"[{host}]" if ":" in host else host
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{netloc}:{port}"
    path = _normal_escapes(quote(parts.path, safe="/%:@!$&'()*+,;=-._~")) or "/"
    return urlunsplit((scheme, netloc, path, _kept_query(parts.query), ""))


def _wrapped(host: str, path: str, query: str) -> str | None:
    """The web address a redirect wrapper at ``host`` and ``path`` points to, if any."""
    wrapper = _REDIRECT_WRAPPERS.get(host)
    if wrapper is None or wrapper[0] not in (None, path):
        return None
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in wrapper[1] and value[:8].lower().startswith(("http://", "https://")):
            # parse_qsl has decoded the value once, which is the wrapper's encoding; the
            # target's own escapes (%20 in its path) must stay.
            return value
    return None


def _ascii_host(host: str) -> str:
    """An internationalised host name as the DNS and HTTP know it (IDNA, UTS 46:
    "Bücher.example" is "xn--bcher-kva.example"), so that a feed's two spellings of
    one host give one key. A name IDNA refuses stays as written."""
    if host.isascii():
        return host
    import idna  # httpx's own IDNA library, loaded only for such a host

    try:
        return str(idna.encode(host, uts46=True), "ascii")
    except idna.IDNAError:
        return host


_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _normal_escapes(path: str) -> str:
    """``path`` with its escapes spelled one way (RFC 3986 6.2.2): an unreserved
    character as itself, any other byte in upper-case hex. "caf%c3%a9", "caf%C3%A9" and
    "café" are one page; so are "%7Euser" and "~user"."""
    if "%" not in path:
        return path
    return _ESCAPE.sub(_normal_escape, path)


def _normal_escape(escape: re.Match[str]) -> str:
    character = chr(int(escape[1], 16))
    return character if character in _UNRESERVED else "%" + escape[1].upper()


def _kept_query(query: str) -> str:
    """``query`` without tracking parameters, each other one spelled one way. Escapes
    are read as bytes (Latin-1 maps each to itself), not as UTF-8: a value in EUC-KR
    would come back as U+FFFD, and two pages as one. A bare name (``?12345``) stays
    bare: ``?12345=`` is another query to a server that reads it whole."""
    kept = []
    for pair in quote(query, safe=_QUERY_SAFE).split("&"):
        name, equals, value = pair.partition("=")
        name = unquote_plus(name, encoding="latin-1")
        if not pair or _TRACKING_PARAMS.match(name):
            continue
        spelled = quote_plus(name, encoding="latin-1")
        if equals:
            spelled += "=" + quote_plus(unquote_plus(value, encoding="latin-1"), encoding="latin-1")
        kept.append(spelled)
    return "&".join(kept)


def display_url(url: str) -> str:
    """``url`` as logs, errors and ``monitor status`` may show it: without the
    ``user:password@`` of its authority, each query value masked (``?token=***``)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(an invalid URL)"
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    query = "&".join(
        f"{pair.split('=', 1)[0]}=***" if "=" in pair else "***"
        for pair in parts.query.split("&")
        if pair
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


# --- dates ------------------------------------------------------------------------------


def to_utc(moment: datetime) -> datetime:
    """Aware UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def utc_now() -> datetime:
    """The current time, aware UTC (one place to read the clock)."""
    return datetime.now(UTC)


def utc_before(span: timedelta) -> datetime:
    """``utc_now() - span``; for a span reaching before the calendar's first day
    (``--since 1000000d``, ``retention: 9999999d``: "everything", "keep for ever"),
    that first day, not an OverflowError."""
    try:
        return utc_now() - span
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)
