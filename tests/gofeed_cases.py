"""gofeed's one-feature feed documents (tests/data/feeds/gofeed, MIT) with the results
gofeed's translators expect of them."""

from __future__ import annotations

from pathlib import Path

GOFEED = Path(__file__).parent / "data" / "feeds" / "gofeed" / "testdata"


def translator_pairs() -> list[tuple[Path, Path]]:
    """(document, expected JSON) of every RSS, Atom and JSON Feed translator case."""
    pairs = [
        (source, source.with_suffix(".json"))
        for kind in ("rss", "atom")
        for source in sorted((GOFEED / "translator" / kind).glob("*.xml"))
    ]
    pairs += [
        (source, source.with_name(source.stem + "_expected.json"))
        for source in sorted((GOFEED / "translator" / "json").glob("*.json"))
        if not source.stem.endswith("_expected")
    ]
    return pairs
