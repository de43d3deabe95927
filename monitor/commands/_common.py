"""What several subcommands share: loading config and app, durations, JSON output."""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime, timedelta
from typing import Any

from monitor.app import App, build_app
from monitor.config import Config, load_config, parse_duration
from monitor.logging import register_secrets


def load(args: argparse.Namespace) -> Config:
    """The config named by -c (or the default), its secrets registered for redaction."""
    config = load_config(getattr(args, "config", None))
    register_secrets(config.secrets())
    return config


def load_app(args: argparse.Namespace) -> App:
    return build_app(load(args))


def since_arg(value: str) -> timedelta:
    """argparse type for --since 7d."""
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 UTC with a Z, or None."""
    return moment.isoformat().replace("+00:00", "Z") if moment else None


# A lone surrogate: only ever inside a JSON string here, as a character from a value.
_SURROGATE = re.compile("[\ud800-\udfff]")


def print_json(value: Any) -> None:
    """One JSON line on stdout. A lone surrogate (a back-test archive's unpaired
    "\\ud800" escape) encodes in no charset: it is written as the escape it came as,
    so the line reads back to the same value instead of ending the command."""
    line = json.dumps(value, ensure_ascii=False)
    if not line.isascii():
        line = _SURROGATE.sub(lambda found: f"\\u{ord(found.group()):04x}", line)
    sys.stdout.write(line + "\n")
