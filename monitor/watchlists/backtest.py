"""Back-testing: run every watch-list over an archive of JSON lines in one process.

Each input line is an object with at least ``title`` and ``body`` (``id`` and ``source``
are optional); each result pairs that id with the hits. Progress goes to a callback so
the command decides whether and where to show it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass

from monitor.errors import MonitorError
from monitor.model import Document, Hit
from monitor.watchlists.index import WatchlistIndex

PROGRESS_EVERY = 1_000  # items between progress reports


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """One archived story and the watch-lists that matched it."""

    id: object
    hits: list[Hit]


@dataclass(slots=True)
class BacktestProgress:
    """Running totals, passed to the progress callback."""

    items: int = 0
    matched: int = 0


def backtest(
    index: WatchlistIndex,
    lines: Iterable[str],
    *,
    name: str = "<jsonl>",
    only: Collection[str] | None = None,
    progress: Callable[[BacktestProgress], None] | None = None,
) -> Iterator[BacktestResult]:
    """Match each JSON line of ``lines``; a malformed line stops with its line number."""
    totals = BacktestProgress()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        document, story_id = _document(line, f"{name}:{number}")
        hits = index.match(document, only)
        totals.items += 1
        totals.matched += bool(hits)
        if progress is not None and totals.items % PROGRESS_EVERY == 0:
            progress(totals)
        yield BacktestResult(story_id, hits)
    if progress is not None:
        progress(totals)


def _document(line: str, where: str) -> tuple[Document, object]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise MonitorError(f"{where}: not JSON: {exc.msg}") from exc
    if not isinstance(record, dict):
        raise MonitorError(f"{where}: expected a JSON object with title and body")
    fields = [record.get(key) or "" for key in ("title", "body", "source")]
    if not all(isinstance(value, str) for value in fields):
        raise MonitorError(f"{where}: title, body and source must be strings")
    return Document(*fields), record.get("id")
