"""A channel that prints one line per alert: for trying things out and for `run --once`."""

from __future__ import annotations

import sys
from typing import TextIO

from monitor.channels.mime import header_value
from monitor.model import Message


class ConsoleChannel:
    wants_html = False

    def __init__(self, name: str, stream: TextIO | None = None) -> None:
        self.name = name
        self.stream = stream

    def send(self, message: Message) -> None:
        stream = self.stream or sys.stdout
        stream.write(f"alert: {header_value(message.subject, 200)}\n")
        stream.flush()

    def close(self) -> None:
        """Nothing to release."""
