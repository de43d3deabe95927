"""`monitor replay`: a watch-list added later finds stored stories and alerts them once."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from monitor.alerts.outbox import deliver_due
from monitor.app import build_app
from monitor.cli import main
from monitor.config import load_config
from monitor.pipeline import poll_source

CONFIG = """\
database: sqlite:///db.sqlite
sources: [{{name: wire, type: folder, path: wire}}]
channels: {{box: {{type: maildir, path: mail, to: [desk@example.org]}}}}
watchlists:
  - {{name: pact, query: GSOMIA, channels: [box]}}
{extra}"""


def mail_count(tmp_path: Path) -> int:
    return len(list((tmp_path / "mail" / "new").glob("*")))


def deliver(path: Path) -> None:
    app = build_app(load_config(path))
    try:
        deliver_due(app)
    finally:
        app.close()


def listed(out: str) -> list[tuple[str, str, str]]:
    """A replay's listing as (new or known, watch-list, title), sorted: one line per item
    and watch-list, ``new\tITEM\tWATCHLIST\tTITLE``."""
    lines = [line.split("\t") for line in out.splitlines()]
    assert all(item.isdigit() for _, item, _, _ in lines), lines
    return sorted((status, watchlist, title) for status, _, watchlist, title in lines)


def polled(tmp_path: Path, stories: dict[str, str], deliver_too: bool = False) -> Path:
    """The config of a folder ``wire`` holding ``stories`` (file name -> text), polled
    once (and its alerts delivered if ``deliver_too``)."""
    (tmp_path / "wire").mkdir()
    for name, text in stories.items():
        (tmp_path / "wire" / name).write_text(text)
    path = tmp_path / "monitor.yaml"
    path.write_text(CONFIG.format(extra=""))
    app = build_app(load_config(path))
    try:
        poll_source(app, "wire")
        if deliver_too:
            deliver_due(app)
    finally:
        app.close()
    return path


def test_replay_enqueues_matches_of_a_new_watchlist_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stories = {
        "a.txt": "Pact\n\nGSOMIA stays, Esper said.\n",
        "b.txt": "Visit\n\nEsper lands in Seoul.\n",
        "c.txt": "Weather\n\nRain.\n",
    }
    path = polled(tmp_path, stories, deliver_too=True)
    assert 1 == mail_count(tmp_path)
    capsys.readouterr()  # the poll's log

    path.write_text(CONFIG.format(extra="  - {name: talks, query: Esper, channels: [box]}\n"))
    assert 0 == main(["replay", "--since", "1d", "--dry-run", "-c", str(path)])
    # pact's match of a is known; talks would be new on a and b.
    captured = capsys.readouterr()
    assert "2 stored items match; 2 would be new matches (dry run" in captured.err
    assert [
        ("known", "pact", "Pact"),
        ("new", "talks", "Pact"),
        ("new", "talks", "Visit"),
    ] == listed(captured.out)
    deliver(path)
    assert 1 == mail_count(tmp_path)

    assert 0 == main(["replay", "--since", "1d", "-w", "talks", "-c", str(path)])
    captured = capsys.readouterr()
    assert "2 stored items match; 2 alerts enqueued" in captured.err
    assert [("new", "talks", "Pact"), ("new", "talks", "Visit")] == listed(captured.out)
    deliver(path)
    assert 3 == mail_count(tmp_path)
    assert 0 == main(["replay", "--since", "1d", "--dry-run", "-c", str(path)])
    captured = capsys.readouterr()
    assert "2 stored items match; 0 would be new matches (dry run" in captured.err
    assert {"known"} == {status for status, _, _ in listed(captured.out)}

    assert 0 == main(["replay", "--since", "1d", "-c", str(path)])
    assert "2 stored items match; 0 alerts enqueued" in capsys.readouterr().err
    deliver(path)
    assert 3 == mail_count(tmp_path)


@pytest.mark.postgres
def test_replay_dry_run_makes_no_schema_in_an_empty_postgres_database(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """As with an SQLite file not made yet: a dry run writes nothing, not even tables."""
    from sqlalchemy import create_engine, inspect

    path = tmp_path / "monitor.yaml"
    path.write_text(CONFIG.format(extra="").replace("sqlite:///db.sqlite", postgres_url))
    assert 0 == main(["replay", "--since", "1d", "--dry-run", "-c", str(path)])
    assert "nothing is stored yet" in capsys.readouterr().err
    engine = create_engine(postgres_url)
    try:
        assert [] == inspect(engine).get_table_names()
    finally:
        engine.dispose()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_replay_listing_does_not_start_after_the_progress_line_on_one_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """stdout and stderr on one terminal: the progress line is erased before each line
    the listing prints, so a line never reads "1 items, 0 matched, 5/s2\\tpact\\tPact"."""
    import monitor.watchlists.backtest as backtest_module

    path = polled(tmp_path, {f"{n}.txt": f"Pact {n}\n\nGSOMIA stays.\n" for n in range(4)})
    monkeypatch.setattr(backtest_module, "PROGRESS_EVERY", 1)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(sys, "stdout", terminal)
    assert 0 == main(["replay", "--since", "1d", "--dry-run", "-c", str(path)])
    shown = [
        line.rsplit("\r", 1)[-1].replace("\x1b[K", "") for line in terminal.getvalue().split("\n")
    ]
    listed = [line.split("\t") for line in shown if "\t" in line]
    assert 4 == len(listed)
    assert all(
        fields[0] == "known" and fields[1].isdigit() and fields[2] == "pact" for fields in listed
    ), listed


@pytest.mark.parametrize("command", ["replay", "items"])
def test_since_further_back_than_any_date_means_everything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """--since 1000000d (or more than a timedelta holds) is "all", not a traceback."""
    path = polled(tmp_path, {"a.txt": "Pact\n\nGSOMIA stays.\n"})
    extra = ["--dry-run"] if command == "replay" else []
    assert 0 == main([command, "--since", "1000000d", *extra, "-c", str(path)])
    assert "Pact" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        main([command, "--since", "99999999999999d", *extra, "-c", str(path)])
    assert 2 == exited.value.code
    assert "too long a duration" in capsys.readouterr().err
    assert 0 == main([command, "--since", "0s", *extra, "-c", str(path)])  # none so recent
    assert "Pact" not in capsys.readouterr().out


def test_replay_of_a_digest_watchlist_counts_the_matches_it_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`alert: digest` enqueues no alert: the summary says the matches were recorded
    (for the digest), where "0 alerts enqueued" alone read as "nothing done"."""
    path = polled(tmp_path, {"a.txt": "Visit\n\nEsper lands in Seoul.\n"})
    digest = "  - {name: talks, query: Esper, alert: digest}\n"
    path.write_text(
        CONFIG.format(extra=digest)
        + "digests: [{name: daily, schedule: '0 7 * * *', channels: [box]}]\n"
    )
    assert 0 == main(["replay", "--since", "1d", "-c", str(path)])
    assert "1 stored items match; 0 alerts enqueued, 1 new matches" in capsys.readouterr().err
    assert 0 == main(["replay", "--since", "1d", "-c", str(path)])
    assert "1 stored items match; 0 alerts enqueued, 0 new matches" in capsys.readouterr().err


@pytest.mark.parametrize("flush_every", [1, 500], ids=["a-batch-each", "one-batch"])
def test_replay_lists_each_match_as_new_or_known_as_it_records_them(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    flush_every: int,
) -> None:
    """Two sources carry one story: its match is recorded once, so one copy's line says
    new and the other's known, the dry run's as the replay's, and the listing's new lines
    are the summary's count, however the items fall into batches."""
    import monitor.commands.replay as replay_module

    monkeypatch.setattr(replay_module, "FLUSH_EVERY", flush_every)
    text = "Visit\n\nEsper lands in Seoul for talks on troop costs.\n"
    path = polled(tmp_path, {"a.txt": text})
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "a.txt").write_text(text)
    two_sources = CONFIG.replace(
        "sources: [{{name: wire, type: folder, path: wire}}]",
        "sources: [{{name: wire, type: folder, path: wire}}, {{name: copy, type: folder, "
        "path: copy}}]",
    )
    path.write_text(two_sources.format(extra=""))
    app = build_app(load_config(path))
    try:
        poll_source(app, "copy")
    finally:
        app.close()
    capsys.readouterr()  # the polls' logs
    path.write_text(two_sources.format(extra="  - {name: talks, query: Esper, channels: [box]}\n"))

    expected = [("known", "talks", "Visit"), ("new", "talks", "Visit")]
    assert 0 == main(["replay", "--since", "1d", "-w", "talks", "--dry-run", "-c", str(path)])
    captured = capsys.readouterr()
    assert expected == listed(captured.out)
    assert "2 stored items match; 1 would be new matches (dry run" in captured.err
    assert 0 == main(["replay", "--since", "1d", "-w", "talks", "-c", str(path)])
    captured = capsys.readouterr()
    assert expected == listed(captured.out)
    assert "2 stored items match; 1 alerts enqueued, 1 new matches" in captured.err
    assert 0 == main(["replay", "--since", "1d", "-w", "talks", "-c", str(path)])
    assert [("known", "talks", "Visit")] * 2 == listed(capsys.readouterr().out)
