"""The Source seam: ``fetch(cursor) -> FetchResult``.

A cursor is the source's own memory between polls (ETag and Last-Modified for a feed,
file sizes and times for a folder); the pipeline stores it and hands it back.
"""

from __future__ import annotations

from typing import Any, Protocol

from monitor.model import FetchResult


class Source(Protocol):
    """Anything that can be polled for entries."""

    name: str

    def fetch(self, cursor: dict[str, Any]) -> FetchResult:
        """New or changed entries since ``cursor``; raises SourceError when unreadable."""
