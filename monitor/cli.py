"""The `monitor` command: a thin dispatcher over one module per subcommand."""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from monitor.commands import COMMANDS
from monitor.errors import ConfigError, MonitorError
from monitor.malloc import limit_arenas


def _add_common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """-c and logging options, accepted before or after the subcommand."""
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        default=default,
        help="config file (default: $MONITOR_CONFIG, else config/monitor.yaml)",
    )
    parser.add_argument(
        "--log-format",
        choices=("auto", "json", "console"),
        default=argparse.SUPPRESS if suppress else "auto",
        help="log format on stderr: console on a TTY, JSON lines otherwise (auto)",
    )
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        default=argparse.SUPPRESS if suppress else "INFO",
        help="DEBUG, INFO, WARNING or ERROR (default INFO)",
    )


if TYPE_CHECKING:
    _SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]
else:  # not subscriptable at run time
    _SubParsers = argparse._SubParsersAction


class _LazyCommands(_SubParsers):
    """The subcommands, each's arguments added (its module imported) once it is chosen:
    a command needs only its own module's imports, and `monitor --help` none."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loaded: set[str] = set()

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        name = values[0] if values else None  # nargs=PARSER: the command, then its arguments
        if name in self.choices and name not in self._loaded:
            self._loaded.add(name)
            command = self.choices[name]
            importlib.import_module(f"monitor.commands.{name}").add_arguments(command)
            for each in (command, *_actions_of(command)):  # `db upgrade -c FILE` too
                _add_common(each, suppress=True)
        super().__call__(parser, namespace, values, option_string)


def _actions_of(command: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """A command's own subcommands (`db upgrade`, `deliveries retry`)."""
    return [
        parser
        for action in command._actions
        if isinstance(action, argparse._SubParsersAction)
        for parser in action.choices.values()
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monitor",
        description="news-monitor: watch news sources, match watch-lists, send alerts.",
    )
    _add_common(parser, suppress=False)
    subparsers = parser.add_subparsers(
        action=_LazyCommands, dest="command", required=True, metavar="COMMAND"
    )
    for name, help_line in COMMANDS.items():
        subparsers.add_parser(name, help=help_line)
    return parser


# Container objects allocated (and not freed) between two collections of the youngest
# generation: Python's default of 700 ran 300 collections over a cold pass of 200 feeds,
# each walking the poll's young items, words and rows (and every tenth the older ones),
# 3% of its CPU; at this many, a few. The objects are nearly all freed by their reference
# counts anyway: a collection rarely finds a cycle to free.
YOUNG_OBJECTS = 10_000


def main(argv: Sequence[str] | None = None) -> int:
    # Parsing imports the command, and with it most of the package and its libraries:
    # hundreds of thousands of objects, none of them garbage. Collections then would
    # only walk them (a tenth of a second); frozen afterwards, no collection ever will.
    # The logging module is imported here, not with this one, for the same reason: it
    # brings structlog (and asyncio with it).
    gc.disable()
    try:
        from monitor.logging import configure_logging, masked

        args = build_parser().parse_args(argv)
    finally:
        gc.freeze()
        gc.set_threshold(YOUNG_OBJECTS)
        gc.enable()
    configure_logging(args.log_format, args.log_level)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(exc.located(), file=sys.stderr)
        return 2
    except MonitorError as exc:
        print(masked(f"monitor: {exc}"), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def entry() -> NoReturn:
    """The console script: ``main()``, then exit without tearing the interpreter down.

    By then every command has closed what it opened (database, channels) and committed
    what it wrote; the flushes below are all that is left. The teardown itself (clearing
    every module of SQLAlchemy, pydantic, feedparser...) took 0.2-0.3 s, a quarter of a
    `monitor run --once` that finds nothing new.
    """
    limit_arenas()
    try:
        code = main()
    except SystemExit as exc:  # argparse's --help and usage errors
        if not isinstance(exc.code, int | None):
            raise
        code = exc.code or 0
    except BrokenPipeError:  # the reader went away (`monitor items | head`)
        code = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe has nothing to flush
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
