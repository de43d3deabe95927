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
        self, message: str, *, query: str, column: int, watchlist: str | None = None
    ) -> None:
        self.query = query
        self.column = column  # 1-based
        self.watchlist = watchlist
        where = f"watch-list {watchlist!r}: " if watchlist else ""
        caret = " " * (column - 1) + "^"
        super().__init__(f"{where}{message} at column {column}\n    {query}\n    {caret}")

    def for_watchlist(self, name: str) -> QueryError:
        """The same error, naming the watch-list it came from."""
        detail = self.args[0].split("\n", 1)[0]
        prefix = f"watch-list {self.watchlist!r}: " if self.watchlist else ""
        bare = detail.removeprefix(prefix).rsplit(" at column ", 1)[0]
        return QueryError(bare, query=self.query, column=self.column, watchlist=name)


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
    """The channel may accept the message later: retry with backoff."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """The channel will never accept this message: it goes to dead letters."""
