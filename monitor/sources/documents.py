"""Parsers for single news documents: plain text, Markdown, HTML and e-mail files.

The plain-text shape is the seed article's: title line(s), a date line such as
``# 14 November 2019 10:48 (UTC +04:00)``, then paragraphs.
"""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser

from monitor.dedup import DOCUMENT_GUID, normalised_words
from monitor.model import Entry
from monitor.text import html_to_text, one_line, tidy_text, to_utc

_DATE_LINE = re.compile(
    r"""^\s*\#*\s*(?P<day>\d{1,2})\s+(?P<month>[A-Za-z]+)\s+(?P<year>\d{4})
        (?:,?\s+(?P<hour>\d{1,2}):(?P<minute>\d{2}))?
        \s*(?:\(?\s*(?:UTC|GMT)\s*
            (?:(?P<sign>[+\-\N{MINUS SIGN}])\s*(?P<oh>\d{1,2})(?::?(?P<om>\d{2}))?)?
        \s*\)?)?\s*$""",
    re.VERBOSE,
)
_ISO_DATE_LINE = re.compile(
    r"^\s*#*\s*(?:Date:\s*)?(\d{4}-\d{2}-\d{2}[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)\s*$"
)
_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}


def document_guid(title: str) -> str:
    """Identity of a document by its words, so a renamed or edited file stays one story."""
    return DOCUMENT_GUID + " ".join(normalised_words(title))[:300]


def parse_date_line(line: str) -> datetime | None:
    """A date line of the seed shape, or an ISO 8601 one; None if the line is not one."""
    match = _DATE_LINE.match(line)
    if match:
        month = _MONTHS.get(match["month"].lower())
        if month is None:
            return None
        offset = timedelta(0)
        if match["sign"]:
            offset = timedelta(hours=int(match["oh"]), minutes=int(match["om"] or 0))
            if match["sign"] != "+":
                offset = -offset
        try:
            local = datetime(
                int(match["year"]),
                month,
                int(match["day"]),
                int(match["hour"] or 0),
                int(match["minute"] or 0),
                tzinfo=timezone(offset),
            )
            return local.astimezone(UTC)
        except (ValueError, OverflowError):  # 1 January 0001 (UTC +04:00): before year 1
            return None
    iso = _ISO_DATE_LINE.match(line)
    if iso:
        try:
            return to_utc(datetime.fromisoformat(iso.group(1).replace("Z", "+00:00")))
        except (ValueError, OverflowError):
            return None
    return None


def parse_text_document(text: str, fallback_date: datetime, origin: str) -> Entry | None:
    """Title line(s), an optional date line, paragraphs (plain text or Markdown)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    date_index = next(
        (i for i, line in enumerate(lines[:12]) if parse_date_line(line) is not None), None
    )
    head = lines[:date_index] if date_index is not None else lines[:1]
    titles = [one_line(line.lstrip("#")) for line in head if line.strip()]
    titles = [t for t in dict.fromkeys(titles) if t]
    if not titles:
        first = next((line for line in lines if line.strip()), "")
        titles = [one_line(first.lstrip("#"))] if first else []
        head = lines[: lines.index(first) + 1] if first else []
    if not titles:
        return None
    published = parse_date_line(lines[date_index]) if date_index is not None else None
    body_start = date_index + 1 if date_index is not None else len(head)
    return Entry(
        title=" — ".join(titles),
        content=tidy_text("\n".join(lines[body_start:])),
        guid=document_guid(titles[0]),
        published=published or fallback_date,
        origin=origin,
    )


class _HtmlMeta(HTMLParser):
    """Title and publication time of an HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.h1 = ""
        self.published: str | None = None
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag in ("title", "h1"):
            self._in = tag
        elif tag == "meta" and found.get("property") in (
            "article:published_time",
            "og:published_time",
        ):
            self.published = self.published or found.get("content")
        elif tag == "time" and found.get("datetime"):
            self.published = self.published or found.get("datetime")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "title":
            self.title += data
        elif self._in == "h1":
            self.h1 += data


def parse_html_document(markup: str, fallback_date: datetime, origin: str) -> Entry | None:
    """An HTML page: <title> (or the first <h1>), article time, visible text."""
    meta = _HtmlMeta()
    meta.feed(markup)
    meta.close()
    title = one_line(meta.title) or one_line(meta.h1)
    if not title:
        return None
    published = parse_date_line(meta.published) if meta.published else None
    return Entry(
        title=title,
        content=markup,
        content_is_html=True,
        guid=document_guid(title),
        published=published or fallback_date,
        origin=origin,
    )


def parse_email_document(raw: bytes, fallback_date: datetime, origin: str) -> Entry | None:
    """An .eml file: Subject, Date, Message-ID and the text (or HTML) part."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    if not isinstance(message, EmailMessage):
        return None
    title = one_line(str(message.get("Subject", "")))
    if not title:
        return None
    published = fallback_date
    if message.get("Date"):
        try:
            published = to_utc(parsedate_to_datetime(str(message["Date"])))
        except (TypeError, ValueError, OverflowError):
            published = fallback_date
    part = message.get_body(preferencelist=("plain", "html"))
    content = part.get_content() if part is not None else ""
    is_html = part is not None and part.get_content_subtype() == "html"
    message_id = str(message.get("Message-ID", "")).strip() or None
    return Entry(
        title=title,
        content=content if is_html else tidy_text(content),
        content_is_html=is_html,
        guid=message_id or document_guid(title),
        published=published,
        author=str(message.get("From", "")) or None,
        origin=origin,
    )


def html_entry_text(entry: Entry) -> str:
    """The plain text of an entry's content."""
    return html_to_text(entry.content) if entry.content_is_html else entry.content
