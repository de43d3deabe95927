"""`monitor match`: explain a text, a file or stdin; back-test JSON lines."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.cli import build_parser
from monitor.errors import ConfigError, MonitorError


def match(config: Path, *args: str) -> int:
    parsed = build_parser().parse_args(["match", "-c", str(config), *args])
    return int(parsed.func(parsed))


@pytest.fixture
def seed(default_config: Path) -> Path:
    [path] = (default_config.parent.parent / "seeds").glob("*.txt")
    return path


def test_file_is_explained_per_watchlist(
    default_config: Path, seed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert 0 == match(default_config, "--file", str(seed))
    out = capsys.readouterr().out
    for name in ("gsomia", "scm", "cost-sharing"):
        assert f"\n{name}: matches\n  because: " in f"\n{out}"
    assert "  terms:   GSOMIA, Japan" in out
    assert (
        "… Korea\u2019s decision to scrap an intelligence-sharing pact with Japan known as GSOMIA"
        in out
    )


def test_text_without_a_match_exits_1(
    default_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert 1 == match(default_config, "Hanson Trust sells SCM Corp unit")
    assert "no watch-list matches\n" == capsys.readouterr().out


def test_dash_reads_stdin_and_w_restricts(
    default_config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("한미 국방장관, 제51차 SCM에서 방위비 논의"))
    assert 0 == match(default_config, "-w", "scm", "-")
    assert ["scm: matches"] == [
        line for line in capsys.readouterr().out.splitlines() if not line.startswith(" ")
    ]


def test_unknown_watchlist_is_a_config_error(default_config: Path) -> None:
    with pytest.raises(ConfigError, match="unknown watch-list 'nope'"):
        match(default_config, "-w", "nope", "text")


def test_jsonl_writes_one_line_per_input(
    default_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "archive.jsonl"
    stories = [
        {"id": "a", "title": "GSOMIA", "body": "Japan and South Korea"},
        {"id": 7, "title": "Nothing here", "body": "Grain prices rose."},
    ]
    archive.write_text("".join(json.dumps(s) + "\n" for s in stories), encoding="utf-8")
    assert 0 == match(default_config, "--jsonl", str(archive))
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert "a" == first["id"]
    assert ["gsomia"] == first["watchlists"]
    assert {"clause", "terms", "snippets", "spans"} == set(first["hits"]["gsomia"])
    assert ["title", 0, 6, "GSOMIA"] == first["hits"]["gsomia"]["spans"][0]
    assert {"id": 7, "watchlists": [], "hits": {}} == second


def test_jsonl_names_the_line_of_a_bad_record(default_config: Path, tmp_path: Path) -> None:
    archive = tmp_path / "archive.jsonl"
    archive.write_text('{"id": 1, "title": "a", "body": "b"}\n\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(MonitorError, match=r"archive.jsonl:3: expected a JSON object"):
        match(default_config, "--jsonl", str(archive))


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_jsonl_shows_progress_on_a_terminal(
    default_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "archive.jsonl"
    archive.write_text('{"id": 1, "title": "GSOMIA", "body": "Japan, Korea"}\n', encoding="utf-8")
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert 0 == match(default_config, "--jsonl", str(archive))
    assert terminal.getvalue().startswith("\r1 items, 1 matched, ")
    assert terminal.getvalue().endswith("/s\n")


def test_python_m_monitor_match_file(default_config: Path, seed: Path, tmp_path: Path) -> None:
    copy = tmp_path / "seed.txt"
    copy.write_text(seed.read_text(encoding="utf-8"), encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "monitor", "match", "-c", str(default_config), "--file", str(copy)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert 0 == run.returncode, run.stderr
    assert ["gsomia: matches", "scm: matches", "cost-sharing: matches"] == [
        line for line in run.stdout.splitlines() if not line.startswith(" ")
    ]


def test_replay_dry_run_lists_stored_items_that_match(
    default_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = default_config.parent.parent
    run = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--once", "-c", str(default_config)],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert 0 == run.returncode, run.stderr
    parsed = build_parser().parse_args(
        ["replay", "-c", str(default_config), "--since", "1d", "-w", "scm", "--dry-run"]
    )
    assert 0 == parsed.func(parsed)
    captured = capsys.readouterr()
    [line] = captured.out.splitlines()
    title = "U.S. defence officials converge in Seoul to discuss troop costs, Japan pact"
    status, item, watchlist, shown = line.split("\t")
    assert ("known", "scm", title) == (status, watchlist, shown)  # `run --once` matched it
    assert item.isdigit()
    assert "1 stored items match; 0 would be new matches (dry run: nothing enqueued)\n" == (
        captured.err
    )


@pytest.mark.parametrize("option", ["--file", "--jsonl"])
def test_a_missing_input_file_is_named_not_a_traceback(
    default_config: Path, tmp_path: Path, option: str
) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(ConfigError, match=r"nope\.txt: cannot read: No such file or directory"):
        match(default_config, option, str(missing))


@pytest.mark.parametrize("option", ["--file", "--jsonl"])
def test_an_input_file_that_is_not_utf8_is_named_not_a_traceback(
    default_config: Path, tmp_path: Path, option: str
) -> None:
    # Not a kind of file the folder source reads: --file takes it as UTF-8 text.
    latin = tmp_path / "latin.story"
    latin.write_bytes(b'{"id": 1, "title": "caf\xe9", "body": "x"}\n')
    where = r"latin\.story:1:" if option == "--jsonl" else r"latin\.story:"  # a line
    with pytest.raises(ConfigError, match=where + r" cannot read: not UTF-8 text"):
        match(default_config, option, str(latin))


@pytest.mark.parametrize(
    ("name", "content", "terms"),
    [
        # The seed's shape: title, date line, paragraphs. The date is no part of the body.
        ("a.txt", b"GSOMIA row\n# 14 November 2019 10:48 (UTC +04:00)\nJapan, Korea.\n", 3),
        # A legacy charset, as the folder reads it (not refused as not UTF-8).
        ("b.txt", b"Caf\xe9 GSOMIA\n\nJapan and South Korea in Seoul.\n", 4),
        # Markup is no text: <div class="gsomia"> would match the word otherwise.
        (
            "c.html",
            b'<html><head><title>Talks</title></head><body><div class="gsomia">'
            b"<p>Japan and Korea</p></div><p>GSOMIA stays.</p></body></html>",
            3,
        ),
        # An e-mail: the subject is the title, the headers are no text.
        ("d.eml", b"Subject: GSOMIA row\nFrom: gsomia@japan.example\n\nJapan and Korea.\n", 3),
    ],
)
def test_a_file_the_folder_source_reads_is_read_as_it_reads_it(
    default_config: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: bytes,
    terms: int,
) -> None:
    """`match --file` explains what the daemon would make of a file dropped in its
    folder: the same parser, so markup, headers and date lines match as they would."""
    path = tmp_path / name
    path.write_bytes(content)
    assert 0 == match(default_config, "-w", "gsomia", "--file", str(path))
    out = capsys.readouterr().out
    [found] = [line for line in out.splitlines() if line.startswith("  terms:")]
    assert terms == len(found.split(":", 1)[1].split(","))
    assert not [shown for shown in ("14 November", "class", "From") if shown in out]


def test_a_feed_file_heads_each_matching_entrys_hits_with_its_title(
    default_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    feed = tmp_path / "wire.xml"
    feed.write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>'
        "<item><title>Rain</title><description>Weather.</description><guid>1</guid></item>"
        "<item><title>GSOMIA row</title><description>Japan and Korea.</description>"
        "<guid>2</guid></item></channel></rss>",
        encoding="utf-8",
    )
    assert 0 == match(default_config, "--file", str(feed))
    out = capsys.readouterr().out.splitlines()
    assert ["== GSOMIA row", "gsomia: matches"] == out[:2]
    broken = tmp_path / "cut.xml"
    broken.write_text('<?xml version="1.0"?><rss version="2.0"><channel><item>', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"cut\.xml: cannot read: the feed document ends"):
        match(default_config, "--file", str(broken))


def test_jsonl_reports_the_lines_before_one_that_is_not_utf8(
    default_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "archive.jsonl"
    archive.write_bytes(
        b'{"id": 1, "title": "GSOMIA", "body": "Japan and South Korea"}\n'
        b'{"id": 2, "title": "caf\xe9", "body": "x"}\n'
    )
    with pytest.raises(ConfigError, match=r"archive\.jsonl:2: cannot read: not UTF-8 text"):
        match(default_config, "--jsonl", str(archive))
    [first] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (1, ["gsomia"]) == (first["id"], first["watchlists"])


def test_a_missing_input_file_exits_2_with_one_line(default_config: Path, tmp_path: Path) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor",
            "match",
            "-c",
            str(default_config),
            "--file",
            str(tmp_path / "nope.txt"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert 2 == run.returncode
    assert f"{tmp_path / 'nope.txt'}: cannot read: No such file or directory\n" == run.stderr


def test_jsonl_echoes_a_lone_surrogate_escape_instead_of_crashing(
    default_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An archive's unpaired "\ud800" escape is valid JSON; no UTF-8 writer takes it raw.
    archive = tmp_path / "archive.jsonl"
    archive.write_text(
        '{"id": "a\\ud800", "title": "GSOMIA \\udc00", "body": "Japan and South Korea"}\n',
        encoding="utf-8",
    )
    assert 0 == match(default_config, "--jsonl", str(archive))
    [line] = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    assert "a\ud800" == record["id"]
    assert ["gsomia"] == record["watchlists"]


def test_jsonl_reads_a_story_as_the_daemon_stores_it(
    default_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The body capped at MAX_BODY, the title made one line: a back-test matches no text
    the daemon would never have seen."""
    from monitor.normalise import MAX_BODY

    archive = tmp_path / "archive.jsonl"
    beyond = {"id": "late", "title": "Grain", "body": "x " * MAX_BODY + "GSOMIA"}
    split = {"id": "lines", "title": "Security\nConsultative Meeting", "body": "In Seoul."}
    archive.write_text(json.dumps(beyond) + "\n" + json.dumps(split) + "\n", encoding="utf-8")
    match(default_config, "--jsonl", str(archive))
    late, lines = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert [] == late["watchlists"]
    assert ["title", 0, 29, "Security Consultative Meeting"] == lines["hits"]["scm"]["spans"][0]


def test_replay_dry_run_creates_no_database(
    default_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parsed = build_parser().parse_args(
        ["replay", "-c", str(default_config), "--since", "1d", "--dry-run"]
    )
    assert 0 == parsed.func(parsed)
    assert not (default_config.parent.parent / "var").exists()
    assert "nothing is stored yet" in capsys.readouterr().err


def test_replay_dry_run_migrates_no_older_schema(default_config: Path) -> None:
    """A dry run changes nothing: a schema an older version left is not brought up."""
    from sqlalchemy import create_engine, text

    root = default_config.parent.parent
    (root / "var").mkdir()
    engine = create_engine(f"sqlite:///{root / 'var' / 'monitor.db'}")
    with engine.begin() as connection:  # a database an older version made, in short
        connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
        connection.execute(text("INSERT INTO alembic_version VALUES ('0004')"))
    parsed = build_parser().parse_args(
        ["replay", "-c", str(default_config), "--since", "1d", "--dry-run"]
    )
    with pytest.raises(MonitorError, match="older than this version's: run `monitor db upgrade`"):
        parsed.func(parsed)
    with engine.connect() as connection:
        assert ["alembic_version"] == list(
            connection.execute(
                text("SELECT name FROM sqlite_master WHERE type = 'table'")
            ).scalars()
        )
    engine.dispose()


@pytest.mark.parametrize(
    "raw",
    [
        b'{"id": 1, "title": "GSOMIA", "body": "x"}\r\n{"id": 2, "title": "SCM", "body": "y"}',
        b'{"id": 1, "title": "GSOMIA", "body": "x"}\r{"id": 2, "title": "SCM", "body": "y"}\r',
        b'\xef\xbb\xbf{"id": 1, "title": "GSOMIA", "body": "x"}\n{"id": 2, "title": "SCM"}\n',
    ],
    ids=["crlf-no-final-newline", "cr", "utf-8-bom"],
)
def test_jsonl_reads_lines_as_a_text_file_has_them(
    default_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], raw: bytes
) -> None:
    """Lines end in \\n, \\r\\n or a lone \\r, as a text file opened in Python reads them,
    and a byte order mark (PowerShell's UTF-8 has one) is no part of the first line."""
    archive = tmp_path / "archive.jsonl"
    archive.write_bytes(raw)
    match(default_config, "--jsonl", str(archive))
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [1, 2] == [record["id"] for record in records]


def _as_a_terminal_shows_it(written: str) -> list[str]:
    """The lines a terminal shows: a \\r returns to the line's start, ESC [K erases."""
    shown = []
    for line in written.split("\n"):
        start = line.rsplit("\r", 1)[-1]
        shown.append(start.replace("\x1b[K", ""))
    return shown


def test_jsonl_output_does_not_start_after_the_progress_line_on_one_terminal(
    default_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """stdout and stderr on the same terminal: each JSON line reads as JSON there, the
    progress line erased before it, not glued in front of it."""
    import monitor.watchlists.backtest as backtest_module

    monkeypatch.setattr(backtest_module, "PROGRESS_EVERY", 2)
    archive = tmp_path / "archive.jsonl"
    archive.write_text(
        "".join(
            json.dumps({"id": n, "title": "GSOMIA", "body": "Japan, Korea"}) + "\n"
            for n in range(5)
        ),
        encoding="utf-8",
    )
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(sys, "stdout", terminal)
    assert 0 == match(default_config, "--jsonl", str(archive))
    *records, summary, end = _as_a_terminal_shows_it(terminal.getvalue())
    assert list(range(5)) == [json.loads(line)["id"] for line in records]
    assert summary.startswith("5 items, 5 matched, ")
    assert "" == end


def test_jsonl_reads_a_lone_surrogate_beside_a_word_as_the_daemon_stores_it(
    default_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The daemon stores an unpaired "\\ud800" escape as U+FFFD, which separates words;
    a back-test lost the word it touched ("GSOMIA\\ud800" found no GSOMIA)."""
    archive = tmp_path / "archive.jsonl"
    archive.write_text(
        '{"id": 1, "title": "GSOMIA\\ud800", "body": "Japan\\udc00 and South Korea"}\n',
        encoding="utf-8",
    )
    assert 0 == match(default_config, "--jsonl", str(archive))
    record = json.loads(capsys.readouterr().out)
    assert ["gsomia"] == record["watchlists"]
    assert ["title", 0, 6, "GSOMIA"] == record["hits"]["gsomia"]["spans"][0]
    assert "GSOMIA\ufffd" in record["hits"]["gsomia"]["snippets"]


def test_a_text_argument_with_a_byte_that_is_not_utf8_still_finds_its_words(
    default_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Python keeps such a byte of an argument as a lone surrogate (\\udcff for 0xff)."""
    assert 0 == match(default_config, "GSOMIA\udcff Japan, South Korea")
    assert "gsomia: matches\n" in capsys.readouterr().out


def test_stdin_that_is_not_utf8_is_named_as_a_file_is(default_config: Path) -> None:
    """As --file: exit 2 naming <stdin>, whatever the locale makes of sys.stdin."""
    run = subprocess.run(
        [sys.executable, "-m", "monitor", "match", "-c", str(default_config), "-"],
        input=b"GSOMIA\xff Japan, South Korea",
        capture_output=True,
        env={**os.environ, "LC_ALL": "C.UTF-8"},
        check=False,
    )
    assert 2 == run.returncode
    assert b"<stdin>: cannot read: not UTF-8 text (invalid start byte)\n" == run.stderr


def test_stdin_lines_end_as_a_text_file_has_them(default_config: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "monitor", "match", "-c", str(default_config), "-w", "gsomia", "-"],
        input=b"Pact\r\nGSOMIA with Japan and South Korea\r\n",
        capture_output=True,
        check=False,
    )
    assert 0 == run.returncode, run.stderr
    assert b"\r" not in run.stdout


def _backtest_process(config: Path, archive: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", "match", "-c", str(config), "--jsonl", str(archive)],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not JSON: Expecting value"),
        (
            '{"id": 2, "headline": "GSOMIA", "text": "Japan, Korea"}',
            "expected a JSON object with title and body (its keys: 'id', 'headline', 'text')",
        ),
        ('{"id": NaN, "title": "GSOMIA", "body": "x"}', "not JSON: NaN is not JSON"),
        ('{"id": 2, "title": 5, "body": "x"}', "title, body and source must be strings"),
    ],
    ids=["not-json", "no-title-or-body", "nan", "not-a-string"],
)
def test_jsonl_a_bad_line_exits_2_naming_it_as_one_that_is_not_utf8_does(
    default_config: Path, tmp_path: Path, line: str, message: str
) -> None:
    """Like a line that is not UTF-8: `file:line: message`, exit 2 (1 is "no match" for
    `monitor match`), after the results of the lines before it. A story under other
    names than title and body is refused, not back-tested as an empty story."""
    archive = tmp_path / "archive.jsonl"
    archive.write_text(
        '{"id": 1, "title": "GSOMIA", "body": "Japan and South Korea"}\n' + line + "\n",
        encoding="utf-8",
    )
    run = _backtest_process(default_config, archive)
    assert 2 == run.returncode
    assert f"{archive}:2: {message}\n" == run.stderr
    [first] = [json.loads(out) for out in run.stdout.splitlines()]
    assert 1 == first["id"]


def test_a_file_is_read_as_the_daemon_stores_a_story(
    default_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As --jsonl reads one: the body capped (a word beyond the cap is one the daemon
    never matches), the title one line with its entities decoded."""
    from monitor.normalise import MAX_BODY

    late = tmp_path / "late.txt"
    late.write_text("Grain\n" + "x " * MAX_BODY + "GSOMIA Japan Korea\n", encoding="utf-8")
    assert 1 == match(default_config, "--file", str(late))
    capsys.readouterr()
    entities = tmp_path / "entities.txt"
    entities.write_text("Security&#32;Consultative Meeting\nIn Seoul.\n", encoding="utf-8")
    assert 0 == match(default_config, "-w", "scm", "--file", str(entities))
    assert "  terms:   Security Consultative Meeting, Seoul\n" in capsys.readouterr().out
