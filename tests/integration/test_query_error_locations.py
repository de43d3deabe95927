"""A query error names the file and line of the query (its `query:` key, or the line of the
mistake in a query of several lines), or of the term set's entry, whichever command loads
the watch-lists: `check`, `match` and `run` alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.cli import main

WATCHLISTS = """\
terms:
  gsomia: [GSOMIA]
  broken:
    - '"unterminated'
watchlists:
  - name: pact
    query: '@gsomia AND (talks'
"""


def _config(tmp_path: Path, watchlists: str) -> Path:
    (tmp_path / "wl.yaml").write_text(watchlists)
    config = {"database": f"sqlite:///{tmp_path}/db.sqlite", "watchlists": "wl.yaml"}
    path = tmp_path / "monitor.yaml"
    path.write_text(json.dumps(config))
    return path


@pytest.mark.parametrize("command", [["check"], ["match", "GSOMIA talks"], ["run", "--once"]])
def test_an_error_in_a_term_set_names_its_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """At the entry's own line (4), not the set's (3): a set may list a dozen entries."""
    path = _config(tmp_path, WATCHLISTS)
    assert 2 == main([*command, "-c", str(path)])
    assert f"{tmp_path / 'wl.yaml'}:4: term set 'broken':" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["check"], ["match", "GSOMIA talks"], ["run", "--once"]])
def test_an_error_in_a_query_names_the_file_and_line_of_the_query(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    path = _config(tmp_path, WATCHLISTS.replace("'\"unterminated'", "Japan"))
    assert 2 == main([*command, "-c", str(path)])
    assert f"{tmp_path / 'wl.yaml'}:7: watch-list 'pact':" in capsys.readouterr().err


def test_sets_chained_too_deep_are_an_error_naming_the_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chain = "".join(f"  s{i}: ['@s{i + 1}']\n" for i in range(100))
    watchlists = f"terms:\n{chain}  s100: [GSOMIA]\nwatchlists:\n  - name: pact\n    query: '@s0'\n"
    path = _config(tmp_path, watchlists)
    assert 2 == main(["check", "-c", str(path)])
    error = capsys.readouterr().err
    assert f"{tmp_path / 'wl.yaml'}:38: term set 's36': nested more than 64 levels deep" in error
    assert "Traceback" not in error


EXAMPLES = """\
watchlists:
  - name: pact
    query: GSOMIA
    examples:
      match: [GSOMIA talks, Nothing here]
      no_match:
        - Korea
        - |-
          A title
          and GSOMIA
"""


@pytest.mark.parametrize("inline", [False, True], ids=["file", "inline"])
def test_a_failing_example_names_its_own_line_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], inline: bool
) -> None:
    """Not the watch-list's first line: with many examples, which one fails is plain."""
    if inline:
        path = tmp_path / "monitor.yaml"
        path.write_text(f"database: sqlite:///{tmp_path}/db.sqlite\n" + EXAMPLES)
        offset = 1
    else:
        path = _config(tmp_path, EXAMPLES)
        offset = 0
    file = path if inline else tmp_path / "wl.yaml"
    assert 2 == main(["check", "-c", str(path)])
    assert [
        f"{file}:{5 + offset}: watch-list 'pact': examples.match[1]: should match but does "
        "not: 'Nothing here'",
        f"{file}:{8 + offset}: watch-list 'pact': examples.no_match[1]: should not match but "
        "does: 'A title\\nand GSOMIA'",
    ] == capsys.readouterr().err.splitlines()


def test_check_warns_of_a_watchlist_whose_matches_reach_no_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Still valid (exit 0): a watch-list kept for back-tests is one. But a watch-list
    added without channels, or for a digest that does not collect it, is named."""
    watchlists = """\
watchlists:
  - {name: quiet, query: GSOMIA}
  - {name: later, query: Korea, alert: digest}
  - {name: heard, query: Japan, alert: digest}
"""
    path = _config(tmp_path, watchlists)
    config = json.loads(path.read_text())
    config["channels"] = {"box": {"type": "maildir", "path": "mail", "to": ["d@example.org"]}}
    config["digests"] = [
        {"name": "daily", "schedule": "0 7 * * *", "channels": ["box"], "watchlists": ["heard"]}
    ]
    path.write_text(json.dumps(config))
    assert 0 == main(["check", "-c", str(path)])
    file = tmp_path / "wl.yaml"
    assert [
        f"{file}:2: warning: watch-list 'quiet' alerts no one: no channels for its instant alerts",
        f"{file}:3: warning: watch-list 'later' alerts no one: alert: digest, but no digest "
        "collects it",
    ] == capsys.readouterr().err.splitlines()


@pytest.mark.parametrize("command", [["check"], ["match", "GSOMIA talks"]])
def test_an_error_in_a_folded_query_names_the_line_that_holds_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """The default watch-lists write their queries as `>-` blocks: folded into one line,
    a mistake on the block's third line was named at the `query:` key's line, under a
    line the file does not have. Now as for a `|` block: that line, and a caret in it."""
    watchlists = """\
terms:
  korea: [Korea]
watchlists:
  - name: pact
    query: >-
      GSOMIA
      OR "intelligence pact"
      OR (Japan AND @korae)
    examples:
      match: [GSOMIA]
"""
    path = _config(tmp_path, watchlists)
    assert 2 == main([*command, "-c", str(path)])
    assert [
        f"{tmp_path / 'wl.yaml'}:8: watch-list 'pact': unknown term set '@korae' at line 3, "
        "column 15",
        "    OR (Japan AND @korae)",
        "                  ^",
    ] == capsys.readouterr().err.splitlines()


def test_an_error_after_a_blank_line_of_a_folded_query_names_the_line_that_holds_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A blank line in a `>-` block folds to a line break: the mistake after it was named
    at line 5 ("OR bar": the folded query's second line counted from the key), under the
    text of line 7, and as the query's line 2. Now line 7, the file's line 4 of the block."""
    watchlists = """\
watchlists:
  - name: pact
    query: >-
      GSOMIA
      OR bar

      OR (Japan AND @korae)
"""
    path = _config(tmp_path, watchlists)
    assert 2 == main(["check", "-c", str(path)])
    assert [
        f"{tmp_path / 'wl.yaml'}:7: watch-list 'pact': unknown term set '@korae' at line 4, "
        "column 15",
        "    OR (Japan AND @korae)",
        "                  ^",
    ] == capsys.readouterr().err.splitlines()


@pytest.mark.parametrize("opener", ["(", "NEAR("])
def test_an_unclosed_bracket_of_a_folded_query_is_named_where_the_file_shows_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], opener: str
) -> None:
    """The error shows the `>-` block's lines as the file has them; the bracket left open
    was named by its column in the one line folding made ("of column 11"), which is on
    no line shown."""
    watchlists = f"""\
watchlists:
  - name: pact
    query: >-
      GSOMIA OR
      {opener}Japan Korea
"""
    path = _config(tmp_path, watchlists)
    assert 2 == main(["check", "-c", str(path)])
    assert capsys.readouterr().err.splitlines()[0] == (
        f"{tmp_path / 'wl.yaml'}:5: watch-list 'pact': expected ')' to close the {opener!r}"
        f" of line 2, column 1 at line 2, column {len(opener) + 12}"
    ).replace("'NEAR('", "NEAR(")


def test_check_names_a_few_watchlists_that_reach_no_one_and_counts_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A config of many lists kept for back-tests: not a warning line for each."""
    from monitor.commands.check import MAX_WARNINGS

    lists = "".join(f"  - {{name: w{i}, query: word{i}}}\n" for i in range(MAX_WARNINGS + 7))
    path = _config(tmp_path, "watchlists:\n" + lists)
    assert 0 == main(["check", "-c", str(path)])
    warnings = capsys.readouterr().err.splitlines()
    assert MAX_WARNINGS + 1 == len(warnings)
    assert f"{path}: warning: 7 more watch-lists alert no one" == warnings[-1]


def test_an_error_in_a_set_of_monitor_yaml_names_the_entrys_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"database: sqlite:///{tmp_path}/db.sqlite\n"
        "terms:\n"
        "  names:\n"
        "    - GSOMIA\n"
        "    - General Security Agreement\n"
        "watchlists:\n"
        "  - {name: pact, query: '@names'}\n"
    )
    assert 2 == main(["check", "-c", str(path)])
    assert capsys.readouterr().err.startswith(
        f"{path}:5: term set 'names': term-set entries are alternatives"
    )


def test_check_warns_of_a_config_without_watchlists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty watch-list file is valid, as a glob that finds no file is not: said."""
    path = _config(tmp_path, "# the desk's lists: to do\n")
    assert 0 == main(["check", "-c", str(path)])
    assert [f"{tmp_path / 'wl.yaml'}: warning: no watch-lists: nothing will match"] == (
        capsys.readouterr().err.splitlines()
    )
