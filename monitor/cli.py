"""The `monitor` command: a thin dispatcher over one module per subcommand."""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import logging
import os
import pkgutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import monitor.commands
from monitor.errors import ConfigError, MonitorError
from monitor.logging import configure_logging, masked
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
        default=argparse.SUPPRESS if suppress else "INFO",
        help="DEBUG, INFO, WARNING or ERROR (default INFO)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monitor",
        description="news-monitor: watch news sources, match watch-lists, send alerts.",
    )
    _add_common(parser, suppress=False)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = sorted(m.name for m in pkgutil.iter_modules(monitor.commands.__path__))
    for name in (m for m in modules if not m.startswith("_")):
        importlib.import_module(f"monitor.commands.{name}").add_parser(subparsers)
    for sub in subparsers.choices.values():
        _add_common(sub, suppress=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Building the parser imports every command, and with them most of the package and its
    # libraries: hundreds of thousands of objects, none of them garbage. Collections then
    # would only walk them (a tenth of a second); frozen afterwards, no collection ever will.
    gc.disable()
    try:
        parser = build_parser()
    finally:
        gc.freeze()
        gc.enable()
    args = parser.parse_args(argv)
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
