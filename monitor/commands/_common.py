"""What several subcommands share: loading config and app, durations, JSON output."""

from __future__ import annotations

import argparse
import json
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


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
