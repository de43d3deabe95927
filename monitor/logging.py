"""structlog setup: readable on a TTY, JSON lines otherwise; secrets never logged.

Redaction has two layers: keys that name a secret (password, secret, token,
authorization) are masked whatever their value, and the secret values the config
holds are registered here and masked wherever they appear in a log line.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, Literal, TextIO, TypeVar, cast

import structlog

LogFormat = Literal["auto", "json", "console"]
T = TypeVar("T")
MASK = "***"
_SECRET_KEYS = re.compile(r"pass(word)?|secret|token|authorization|api[_-]?key", re.IGNORECASE)
_secrets: set[str] = set()


def register_secrets(values: Iterable[str]) -> None:
    """Values to mask wherever they appear in a log line (passwords, webhook secrets)."""
    _secrets.update(v for v in values if v and len(v) >= 4)


def masked(value: T) -> T:
    """``value`` (text, or a document of them) with every registered secret replaced by
    ``***``: for what commands print, which does not go through the log's processors."""
    return cast(T, _mask(value))


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        for secret in _secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {k: MASK if _SECRET_KEYS.search(str(k)) else _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_mask(v) for v in value)
    return value


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask secret keys and registered secret values."""
    for key in list(event):
        if _SECRET_KEYS.search(key):
            event[key] = MASK
        else:
            event[key] = _mask(event[key])
    return event


class _CurrentStderr:
    """Whatever ``sys.stderr`` is at each write, not the one seen at configure time: a
    caller that swaps stderr (a test's capture, a daemon redirecting it) never leaves
    the logger writing to a closed file."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(fmt: LogFormat = "auto", level: str = "INFO") -> None:
    """Route structlog (and stdlib logging) to stderr in the chosen format."""
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(ensure_ascii=False)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    numeric = logging.getLevelName(level.upper())
    stamped: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *stamped,
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=cast(TextIO, _CurrentStderr())),
        cache_logger_on_first_use=False,
    )
    # Libraries log through the stdlib: their lines get the same format and redaction,
    # so a log shipper reads one JSON stream and a secret in an exception is masked.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *stamped],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact,
                renderer,
            ],
        )
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), handlers=[handler], force=True)
