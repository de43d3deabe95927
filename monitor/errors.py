"""The one exception tree of news-monitor.

::

    MonitorError
    ├── ConfigError              bad config, watch-list or template; carries file:line
    │   └── QueryError           a watch-list query that does not parse; carries the column
    ├── SourceError              a source could not be read (network, HTTP status, garbage)
    ├── StoreError               the database refused or is newer than the code
    ├── RenderError              a template failed to render
    └── DeliveryError            a channel did not accept a message
        ├── TransientDeliveryError   try again later (timeouts, 5xx, 429, connection refused)
        └── PermanentDeliveryError   never going to work (4xx, rejected recipient): dead letter

A wrapped error always chains its cause (``raise SourceError(...) from exc``).
"""

from __future__ import annotations

import unicodedata


class MonitorError(Exception):
    """Root of every error news-monitor raises on purpose."""


class ConfigError(MonitorError):
    """A configuration problem, located as precisely as we can (file, line, key)."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        self.message = message
        self.file = file
        self.line = line
        super().__init__(self.located())

    def located(self) -> str:
        """``file:line: message``, as `monitor check` prints it."""
        if self.file is None:
            return self.message
        if self.line is None:
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}: {self.message}"


class QueryError(ConfigError):
    """A watch-list query that does not parse: names the watch-list, query and column."""

    def __init__(
        self,
        message: str,
        *,
        query: str,
        column: int,
        watchlist: str | None = None,
        opened: int | None = None,
    ) -> None:
        self.query = query
        self.column = column  # 1-based, counted in the whole query
        self.watchlist = watchlist
        # The column of the bracket a mistake leaves open, named after ``message`` ("of
        # line 2, column 1") where the query is shown: in the lines of the file, not the
        # one line a folded YAML block made of them.
        self.opened = opened
        self.term_set: str | None = None  # the term set whose entry it is in, if any
        self.term_entry: int | None = None  # which entry of it (0-based)
        self.detail = message
        where = f"watch-list {watchlist!r}: " if watchlist else ""
        of = "" if opened is None else f" of {position(query, opened)}"
        super().__init__(f"{where}{message}{of} at {_pointer(query, column)}")

    def for_watchlist(self, name: str) -> QueryError:
        """The same error, naming the watch-list it came from."""
        return QueryError(
            self.detail, query=self.query, column=self.column, watchlist=name, opened=self.opened
        )


def _pointer(query: str, column: int) -> str:
    """Where ``column`` is, and the query's line holding it with a caret under it.

    A query of several lines (a YAML ``|`` block) shows only that line. The caret's
    padding copies tabs and gives wide (CJK) characters two cells and combining ones
    none, so it lines up in a terminal.
    """
    offset = min(column - 1, len(query))
    start = query.rfind("\n", 0, offset) + 1
    end = query.find("\n", offset)
    line = query[start : end if end >= 0 else len(query)]
    pad = "".join(map(_blank, query[start:offset]))
    return f"{position(query, column)}\n    {line}\n    {pad}^"


def position(query: str, column: int) -> str:
    """``column N`` of a one-line query; ``line L, column N`` (in that line) otherwise."""
    if "\n" not in query:
        return f"column {column}"
    start = query.rfind("\n", 0, column - 1) + 1
    number = query.count("\n", 0, start) + 1
    return f"line {number}, column {column - start}"


def _blank(char: str) -> str:
    """What takes ``char``'s place on a terminal, under it."""
    if char == "\t":
        return char
    if unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return ""
    return "  " if unicodedata.east_asian_width(char) in ("W", "F") else " "


class SourceError(MonitorError):
    """A source could not be fetched or parsed; the source is marked unhealthy.

    ``retry_after`` (seconds) is a server's request to wait (429/503 Retry-After).
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StoreError(MonitorError):
    """The database failed, or its schema is newer than this code."""


class RenderError(MonitorError):
    """A template failed to render."""


class DeliveryError(MonitorError):
    """A channel did not accept a message."""


class TransientDeliveryError(DeliveryError):
    """The channel may accept the message later: retry with backoff.

    ``whole_channel``: the channel itself is down or slow, so the outbox defers its other
    messages of the batch too; False when only this message (some of its recipients)
    failed and the others may go now. ``delivered_to``: the recipients that have the
    message now (the others refused it for now); the outbox keeps them with the delivery,
    so its retry, by this process or another, reaches only the rest.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        whole_channel: bool = True,
        delivered_to: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.whole_channel = whole_channel
        self.delivered_to = delivered_to


class PermanentDeliveryError(DeliveryError):
    """The channel will never accept this message: it goes to dead letters."""
