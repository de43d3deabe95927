"""Back-testing: run every watch-list over an archive in one process.

The archive is JSON lines (`monitor match --jsonl`: objects with at least ``title`` and
``body``, ``id`` and ``source`` optional) or stored items (`monitor replay`); each result
pairs the story's id with the hits. Progress goes to a callback, which shows it only on
a terminal.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import TextIO

from monitor.errors import ConfigError
from monitor.model import Document, Hit
from monitor.watchlists.examples import stored_document
from monitor.watchlists.index import WatchlistIndex

PROGRESS_EVERY = 1_000  # items between progress reports


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """One archived story and the watch-lists that matched it."""

    id: object
    document: Document
    hits: list[Hit]


@dataclass(slots=True)
class BacktestProgress:
    """Running totals, passed to the progress callback; ``done`` on the last call."""

    items: int = 0
    matched: int = 0
    done: bool = False


def backtest(
    index: WatchlistIndex,
    stories: Iterable[tuple[object, Document]],
    *,
    only: Collection[str] | None = None,
    progress: Callable[[BacktestProgress], None] | None = None,
) -> Iterator[BacktestResult]:
    """Match each ``(id, document)`` of ``stories``, reporting progress as it goes."""
    totals = BacktestProgress()
    for story_id, document in stories:
        hits = index.match(document, only)
        totals.items += 1
        totals.matched += bool(hits)
        if progress is not None and totals.items % PROGRESS_EVERY == 0:
            progress(totals)
        yield BacktestResult(story_id, document, hits)
    if progress is not None:
        totals.done = True
        progress(totals)


def read_jsonl(lines: Iterable[str], name: str) -> Iterator[tuple[object, Document]]:
    """``(id, document)`` per JSON line; a malformed line stops with its line number
    (a ConfigError, exit 2, as a line that is not UTF-8 or a missing file)."""
    for number, line in enumerate(lines, 1):
        if line.strip():
            yield _document(line, name, number)


class TerminalProgress:
    """A progress line that rewrites itself on a terminal (``stream``, stderr).

    When the command's output (``output``, stdout) goes to the same terminal, ``clear``
    takes the line away before each line of output, so that output never starts after
    the progress text ("1,000 items, 3 matched, 9,000/s{"id": ...}"); the next report
    draws it again."""

    def __init__(self, stream: TextIO, output: TextIO) -> None:
        self._stream = stream
        self._shared = _isatty(output)
        self._drawn = False
        self._started = time.monotonic()

    def __call__(self, progress: BacktestProgress) -> None:
        rate = progress.items / max(time.monotonic() - self._started, 1e-9)
        end = "\n" if progress.done else ""
        self._stream.write(
            f"\r{progress.items:,} items, {progress.matched:,} matched, {rate:,.0f}/s{end}"
        )
        self._stream.flush()
        self._drawn = not progress.done

    def clear(self) -> None:
        """Before a line of output: erase the progress line if it shares the terminal."""
        if self._drawn and self._shared:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._drawn = False


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no file behind it, or a closed one
        return False


def terminal_progress(stream: TextIO, output: TextIO) -> TerminalProgress | None:
    """Progress on ``stream``, or None if it is no terminal (see TerminalProgress)."""
    return TerminalProgress(stream, output) if _isatty(stream) else None


def _not_json(constant: str) -> object:
    raise ValueError(f"{constant} is not JSON")


def _document(line: str, name: str, number: int) -> tuple[object, Document]:
    def error(message: str) -> ConfigError:
        return ConfigError(message, file=name, line=number)

    try:
        # NaN and Infinity are Python's, not JSON's: an id read as one would be written
        # back as no JSON reader takes it.
        record = json.loads(line, parse_constant=_not_json)
    except json.JSONDecodeError as exc:
        raise error(f"not JSON: {exc.msg}") from exc
    except ValueError as exc:
        raise error(f"not JSON: {exc}") from exc
    if not isinstance(record, dict):
        raise error("expected a JSON object with title and body")
    if "title" not in record and "body" not in record:
        # An archive whose stories are under other names ("headline", "text") would
        # otherwise back-test as empty stories: nothing matches, and nothing says why.
        keys = ", ".join(map(repr, list(record)[:10])) or "none"
        raise error(f"expected a JSON object with title and body (its keys: {keys})")
    fields = [record.get(key) or "" for key in ("title", "body", "source")]
    if not all(isinstance(value, str) for value in fields):
        raise error("title, body and source must be strings")
    return record.get("id"), stored_document(*fields)
