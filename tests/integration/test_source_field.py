"""`source:` terms can be tested where watch-lists are tested: examples written as a
story's fields."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.cli import main

WATCHLISTS = """\
watchlists:
  - name: at-wire
    query: source:wire AND GSOMIA
    examples:
      match:
        - {title: GSOMIA row, source: wire}
        - title: Talks
          body: GSOMIA stays.
          source: wire
      no_match:
        - GSOMIA row
        - {title: GSOMIA row, source: reuters}
  - name: at-reuters
    query: source:reuters AND GSOMIA
"""

# A feed file whose own title names another outlet: the daemon stores its entries under
# the folder source's name all the same.
FEED = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>Reuters</title>'
    "<item><title>GSOMIA row</title><description>Japan and Korea.</description>"
    "<guid>1</guid></item></channel></rss>"
)


def configured(tmp_path: Path, watchlists: str = WATCHLISTS) -> Path:
    """A config with the folder source ``wire`` (holding the feed file) and watch-lists."""
    (tmp_path / "wire").mkdir(exist_ok=True)
    (tmp_path / "wire" / "feed.xml").write_text(FEED, encoding="utf-8")
    (tmp_path / "wl.yaml").write_text(watchlists, encoding="utf-8")
    path = tmp_path / "monitor.yaml"
    path.write_text(
        "database: sqlite:///db.sqlite\n"
        "sources: [{name: wire, type: folder, path: wire}]\n"
        "watchlists: wl.yaml\n",
        encoding="utf-8",
    )
    return path


def matched(out: str) -> list[str]:
    """The watch-lists `monitor match` says match."""
    return [
        line.removesuffix(": matches") for line in out.splitlines() if line.endswith(": matches")
    ]


def test_check_runs_examples_that_give_a_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert 0 == main(["check", "-c", str(configured(tmp_path))])
    assert "OK (1 sources, 2 watch-lists" in capsys.readouterr().out


def test_a_failing_story_example_names_the_watchlist_the_example_and_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = WATCHLISTS.replace(
        "{title: GSOMIA row, source: reuters}", "{body: GSOMIA, source: wire}"
    )
    assert 2 == main(["check", "-c", str(configured(tmp_path, wrong))])
    assert [
        f"{tmp_path / 'wl.yaml'}:12: watch-list 'at-wire': examples.no_match[1]: should not "
        "match but does: {'body': 'GSOMIA', 'source': 'wire'}",
    ] == capsys.readouterr().err.splitlines()


def test_a_story_example_with_an_unknown_key_is_refused_at_its_line_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = WATCHLISTS.replace("          source: wire\n", "          sauce: wire\n")
    assert 2 == main(["check", "-c", str(configured(tmp_path, typo))])
    assert (
        f"{tmp_path / 'wl.yaml'}:9: watchlists[0].examples.match[1].sauce: unknown key\n"
        == capsys.readouterr().err
    )
