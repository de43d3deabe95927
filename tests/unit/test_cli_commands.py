"""The `monitor` command's parser: every command listed, only the chosen one imported."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import monitor.commands
from monitor.cli import build_parser
from monitor.commands import COMMANDS

MODULES = sorted(m.name for m in pkgutil.iter_modules(monitor.commands.__path__))


def imported_by(code: str, cwd: Path) -> set[str]:
    """The modules a fresh interpreter holds after ``code`` (which may exit)."""
    script = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: print(json.dumps(sorted(sys.modules))))\n" + code
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, check=False
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_every_command_module_is_registered() -> None:
    assert [m for m in MODULES if not m.startswith("_")] == sorted(COMMANDS)


def test_help_lists_every_command_with_its_line() -> None:
    text = " ".join(build_parser().format_help().split())
    for name, help_line in COMMANDS.items():
        assert f"{name} {help_line}" in text


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_has_its_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([name, "--help"])
    assert 0 == exited.value.code
    out = capsys.readouterr().out
    assert out.startswith(f"usage: monitor {name}")
    assert "--config" in out


@pytest.mark.parametrize("where", ["before", "after"])
def test_a_log_level_is_one_of_four_in_any_case(
    where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def parse(level: str) -> str:
        options = ["--log-level", level]
        argv = [*options, "check"] if where == "before" else ["check", *options]
        return str(build_parser().parse_args(argv).log_level)

    assert ["DEBUG", "WARNING"] == [parse("debug"), parse("Warning")]
    with pytest.raises(SystemExit) as exited:
        parse("trace")
    assert 2 == exited.value.code
    assert "invalid choice: 'TRACE'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["db", "upgrade", "-c", "x.yaml", "--log-level", "error"],
        ["db", "-c", "x.yaml", "upgrade", "--log-level", "error"],
        ["-c", "x.yaml", "deliveries", "retry", "--dead", "--log-level", "error"],
        ["deliveries", "retry", "-c", "x.yaml", "--log-level", "error", "--dead"],
    ],
)
def test_a_commands_own_subcommand_takes_the_common_options_too(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert (Path("x.yaml"), "ERROR") == (args.config, args.log_level)


def test_help_imports_no_command(tmp_path: Path) -> None:
    modules = imported_by("from monitor.cli import main\nmain(['--help'])", tmp_path)
    assert not {f"monitor.commands.{name}" for name in COMMANDS} & modules
    assert "sqlalchemy" not in modules


def test_the_command_module_leaves_the_libraries_to_main(tmp_path: Path) -> None:
    """Importing ``monitor.cli`` (the console script does, before ``main``) brings no
    structlog: ``main`` imports it with garbage collection off, as it parses."""
    modules = imported_by("import monitor.cli", tmp_path)
    assert not {"structlog", "sqlalchemy", "pydantic"} & modules


def test_a_warm_pass_imports_only_what_it_uses(default_config: Path) -> None:
    run = f"from monitor.cli import main\nmain(['run', '--once', '-c', {str(default_config)!r}])"
    cold = imported_by(run, default_config.parent)  # mails the seed's alerts
    assert "monitor.channels.mime" in cold
    warm = imported_by(run, default_config.parent)  # finds nothing new
    others = {f"monitor.commands.{name}" for name in COMMANDS if name != "run"}
    assert "monitor.commands.run" in warm
    assert not others & warm
    assert "monitor.watchlists.backtest" not in warm
    assert "monitor.channels.mime" not in warm


def test_a_command_runs_with_the_young_generation_collected_less_often(tmp_path: Path) -> None:
    """What the imports made is frozen, and the youngest generation waits for
    YOUNG_OBJECTS objects, not Python's 700, before it is collected."""
    code = (
        "import gc, json\nfrom monitor import cli\n"
        "cli.main(['status', '-c', 'missing.yaml'])\n"
        "print(json.dumps([gc.get_threshold()[0], gc.get_freeze_count() > 0]))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True
    ).stdout
    from monitor.cli import YOUNG_OBJECTS

    assert [YOUNG_OBJECTS, True] == json.loads(shown.splitlines()[-1])
