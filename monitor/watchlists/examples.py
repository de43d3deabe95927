"""Running the examples a watch-list carries, for `monitor check`.

An example is a story written as the seeds are: its first line is the title and the
rest the body, so ``title:`` queries can be exercised too. `monitor match` reads a text
the same way. An example may also give the story's fields by name (``title``, ``body``,
``source``), so that ``source:`` queries can be exercised as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from monitor.config import Example, ExampleStory, WatchlistConfig
from monitor.model import Document
from monitor.normalise import title_and_body
from monitor.text import encodable
from monitor.watchlists.index import WatchlistIndex


def stored_document(title: str, body: str, source: str = "") -> Document:
    """The document the daemon would store and match for these fields: the title one
    line (entities decoded), both capped, so that `monitor match`, a back-test and an
    example find no word beyond the body's cap that the daemon would not."""
    # A lone surrogate (an argument's byte that is not UTF-8, which Python keeps as
    # one, or an archive's unpaired escape) made U+FFFD, as the daemon stores it: left
    # in, it hid the word it touches.
    title, body = title_and_body(encodable(title), encodable(body))
    return Document(title, body, encodable(source))


def text_document(text: str, source: str = "") -> Document:
    """The document a plain text stands for: first line title, the rest body."""
    title, _, body = text.strip().partition("\n")
    return stored_document(title.strip(), body.strip(), source)


def example_document(example: Example) -> Document:
    """The document an example stands for: a text as ``text_document`` reads it, a
    story by its fields (a field left out is empty)."""
    if isinstance(example, str):
        return text_document(example)
    return stored_document(example.title or "", example.body or "", example.source or "")


def _shown(example: Example) -> str:
    """An example as a failure quotes it: a text as a string, a story as the fields it
    gives."""
    if isinstance(example, str):
        return repr(example)
    return repr(example.model_dump(exclude_none=True))


@dataclass(frozen=True, slots=True)
class ExampleFailure:
    """An example that does not behave as it says: ``examples.<kind>[index]``."""

    watchlist: str
    kind: str  # "match" or "no_match"
    index: int
    example: str | ExampleStory

    def __str__(self) -> str:
        return self.said("example")

    def said(self, example: str) -> str:
        """The failure, naming the example as ``example`` ("example", or its key)."""
        verdict = (
            "should match but does not" if self.kind == "match" else "should not match but does"
        )
        return f"watch-list {self.watchlist!r}: {example} {verdict}: {_shown(self.example)}"

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
            for number, example in enumerate(getattr(watchlist.examples, kind)):
                if bool(index.match(example_document(example), only)) != expected:
                    failures.append(ExampleFailure(watchlist.name, kind, number, example))
    return failures


def run_examples(index: WatchlistIndex, watchlists: Sequence[WatchlistConfig]) -> list[str]:
    """Human-readable failures, one per example that does not behave as it says."""
    return [str(failure) for failure in example_failures(index, watchlists)]
