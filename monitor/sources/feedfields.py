"""Entry fields that both feed readers (feedparser and the ElementTree fast path) derive
the same way, so the two cannot drift apart: the body among the candidates, the date."""

from __future__ import annotations

import calendar
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


def parsed_date(value: Any) -> datetime | None:
    """feedparser's reading of a date (a UTC struct_time), as a datetime."""
    if not value:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, ValueError, TypeError):
        return None
