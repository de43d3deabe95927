"""Entry fields that both feed readers (feedparser and the ElementTree fast path) derive
the same way, so the two cannot drift apart: the body among the candidates, the date."""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

HTML_TYPES = ("text/html", "application/xhtml+xml")


def best_body(candidates: Iterable[tuple[str, str]]) -> tuple[str, bool]:
    """The fullest of the (value, content type) candidates, and whether it is HTML.

    Candidates come content first, then summary: the first of equal length wins.
    """
    best = max(candidates, key=lambda candidate: len(candidate[0]), default=None)
    if best is None:
        return "", False
    return best[0], best[1] in HTML_TYPES


def iso_date(value: Any) -> datetime | None:
    """An ISO 8601 date as written (feedparser's struct_time drops fractions of a second)."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):  # 0001-01-01T00:00+04:00 is before year 1 in UTC
        return None


# Zone abbreviations news feeds write that feedparser does not know: it reads each as
# UTC, which put a Korean outlet's "10:00:00 KST" nine hours late. Only the ones that
# name one offset: IST (India, Ireland, Israel) and CST (China, the US) are left to it.
_ZONE_OFFSETS = {
    "KST": "+0900", "JST": "+0900", "HKT": "+0800", "SGT": "+0800", "AWST": "+0800",
    "WIB": "+0700", "ICT": "+0700", "PKT": "+0500", "MSK": "+0300", "EEST": "+0300",
    "EET": "+0200", "CEST": "+0200", "CET": "+0100", "BST": "+0100", "WEST": "+0100",
    "WET": "+0000", "ACST": "+0930", "ACDT": "+1030", "AEST": "+1000",
    "AEDT": "+1100", "NZST": "+1200", "NZDT": "+1300", "HST": "-1000", "AKST": "-0900",
    "AKDT": "-0800", "NST": "-0330", "NDT": "-0230",
}  # fmt: skip
_ZONE_AT_END = re.compile(r"\s([A-Za-z]{3,4})\s*$")


def zoned_date(value: Any) -> datetime | None:
    """A date ending in one of ``_ZONE_OFFSETS``' abbreviations, read at its offset;
    None for any other (left to feedparser's reading)."""
    found = _ZONE_AT_END.search(value) if isinstance(value, str) else None
    if found is None or found[1].upper() not in _ZONE_OFFSETS:
        return None
    offset = _ZONE_OFFSETS[found[1].upper()]
    from feedparser.datetimes import _parse_date  # as feedparser itself: on first use

    return parsed_date(_parse_date(f"{value[: found.start()]} {offset}"))


def parsed_date(value: Any) -> datetime | None:
    """feedparser's reading of a date (a UTC struct_time), as a datetime."""
    if not value:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, ValueError, TypeError):
        return None
