"""Running the examples a watch-list carries, for `monitor check`.

An example is a story written as the seeds are: its first line is the title and the
rest the body, so ``title:`` queries can be exercised too. `monitor match` reads a text
the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

from monitor.config import WatchlistConfig
from monitor.model import Document
from monitor.text import encodable
from monitor.watchlists.index import WatchlistIndex


def text_document(text: str) -> Document:
    """The document a plain text stands for: first line title, the rest body."""
    # A lone surrogate (an argument's byte that is not UTF-8, which Python keeps as
    # one) made U+FFFD, as the daemon stores it: left in, it hid the word it touches.
    title, _, body = encodable(text).strip().partition("\n")
    return Document(title.strip(), body.strip())


def run_examples(index: WatchlistIndex, watchlists: Sequence[WatchlistConfig]) -> list[str]:
    """Human-readable failures, one per example that does not behave as it says."""
    failures = []
    for watchlist in watchlists:
        only = (watchlist.name,)
        for text in watchlist.examples.match:
            if not index.match(text_document(text), only):
                failures.append(
                    f"watch-list {watchlist.name!r}: example should match but does not: {text!r}"
                )
        for text in watchlist.examples.no_match:
            if index.match(text_document(text), only):
                failures.append(
                    f"watch-list {watchlist.name!r}: example should not match but does: {text!r}"
                )
    return failures
