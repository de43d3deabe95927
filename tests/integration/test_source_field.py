"""`source:` terms can be tested where watch-lists are tested: `monitor match --source`
(a file in a folder source's folder takes that source's name, as the daemon stores it),
back-test lines with a "source", and examples written as a story's fields."""

from __future__ import annotations

import io
import json
import sqlite3
import sys
from pathlib import Path

import pytest

from monitor.app import build_app
from monitor.cli import main
from monitor.config import load_config
from monitor.pipeline import poll_source

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
    assert "OK (1 source, 2 watch-lists" in capsys.readouterr().out


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


def test_match_source_names_the_outlet_of_a_text_stdin_or_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = configured(tmp_path)
    story = tmp_path / "story.txt"  # in no source's folder
    story.write_text("GSOMIA row\nJapan and Korea.\n", encoding="utf-8")
    assert 1 == main(["match", "-c", str(path), "GSOMIA row"])  # a text has no source
    assert 1 == main(["match", "-c", str(path), "--file", str(story)])
    capsys.readouterr()
    assert 0 == main(["match", "-c", str(path), "--source", "reuters", "GSOMIA row"])
    out = capsys.readouterr().out
    assert ["at-reuters"] == matched(out)
    assert "  terms:   reuters, GSOMIA\n" in out
    monkeypatch.setattr(sys, "stdin", io.StringIO("GSOMIA row"))
    assert 0 == main(["match", "-c", str(path), "--source", "wire", "-"])
    assert ["at-wire"] == matched(capsys.readouterr().out)
    assert 0 == main(["match", "-c", str(path), "--source", "wire", "--file", str(story)])
    assert ["at-wire"] == matched(capsys.readouterr().out)


def test_a_file_in_a_folder_source_matches_as_the_daemon_stored_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The feed file's entries are the folder source's (``wire``), not its own title's
    (Reuters): `match --file` finds what the daemon found when it read the file."""
    path = configured(tmp_path)
    app = build_app(load_config(path))
    try:
        poll_source(app, "wire")
    finally:
        app.close()
    with sqlite3.connect(tmp_path / "db.sqlite") as db:
        stored = [watchlist for (watchlist,) in db.execute("SELECT watchlist FROM matches")]
    assert ["at-wire"] == stored
    assert 0 == main(["match", "-c", str(path), "--file", str(tmp_path / "wire" / "feed.xml")])
    assert stored == matched(capsys.readouterr().out)
    # --source says otherwise, for a file one means to drop into another source's folder.
    feed = str(tmp_path / "wire" / "feed.xml")
    assert 0 == main(["match", "-c", str(path), "--source", "reuters", "--file", feed])
    assert ["at-reuters"] == matched(capsys.readouterr().out)


def test_jsonl_reads_each_lines_source_and_refuses_a_source_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = configured(tmp_path)
    archive = tmp_path / "archive.jsonl"
    lines = [
        {"id": 1, "title": "GSOMIA row", "body": "", "source": "wire"},
        {"id": 2, "title": "GSOMIA row", "body": "", "source": "reuters"},
        {"id": 3, "title": "GSOMIA row", "body": ""},
    ]
    archive.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    assert 0 == main(["match", "-c", str(path), "--jsonl", str(archive)])
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [["at-wire"], ["at-reuters"], []] == [result["watchlists"] for result in results]
    assert ["source", 0, 4, "wire"] == results[0]["hits"]["at-wire"]["spans"][0]
    assert 2 == main(["match", "-c", str(path), "--source", "wire", "--jsonl", str(archive)])
    captured = capsys.readouterr()
    assert "" == captured.out
    assert 'in a --jsonl archive each line gives its own "source"' in captured.err
