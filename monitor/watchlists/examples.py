"""Running the examples a watch-list carries, for `monitor check`.

An example is a story written as the seeds are: its first line is the title and the
rest the body, so ``title:`` queries can be exercised too. `monitor match` reads a text
the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from monitor.config import WatchlistConfig
from monitor.model import Document
from monitor.normalise import title_and_body
from monitor.text import encodable
from monitor.watchlists.index import WatchlistIndex


def text_document(text: str) -> Document:
    """The document a plain text stands for: first line title, the rest body."""
    # A lone surrogate (an argument's byte that is not UTF-8, which Python keeps as
    # one) made U+FFFD, as the daemon stores it: left in, it hid the word it touches.
    title, _, body = encodable(text).strip().partition("\n")
    # Then as the daemon stores a story (title one line, entities decoded; both capped):
    # `monitor match --file` finds no word beyond the body's cap that the daemon would.
    title, body = title_and_body(title.strip(), body.strip())
    return Document(title, body)


@dataclass(frozen=True, slots=True)
class ExampleFailure:
    """An example that does not behave as it says: ``examples.<kind>[index]``."""

    watchlist: str
    kind: str  # "match" or "no_match"
    index: int
    text: str

    def __str__(self) -> str:
        return self.said("example")

    def said(self, example: str) -> str:
        """The failure, naming the example as ``example`` ("example", or its key)."""
        verdict = (
            "should match but does not" if self.kind == "match" else "should not match but does"
        )
        return f"watch-list {self.watchlist!r}: {example} {verdict}: {self.text!r}"

    @property
    def key(self) -> str:
        """The example's key in the watch-list: ``examples.no_match[1]``."""
        return f"examples.{self.kind}[{self.index}]"


def example_failures(
    index: WatchlistIndex, watchlists: Sequence[WatchlistConfig]
) -> list[ExampleFailure]:
    """One failure per example that does not behave as it says."""
    failures = []
    for watchlist in watchlists:
        only = (watchlist.name,)
        for kind, expected in (("match", True), ("no_match", False)):
            for number, text in enumerate(getattr(watchlist.examples, kind)):
                if bool(index.match(text_document(text), only)) != expected:
                    failures.append(ExampleFailure(watchlist.name, kind, number, text))
    return failures


def run_examples(index: WatchlistIndex, watchlists: Sequence[WatchlistConfig]) -> list[str]:
    """Human-readable failures, one per example that does not behave as it says."""
    return [str(failure) for failure in example_failures(index, watchlists)]
