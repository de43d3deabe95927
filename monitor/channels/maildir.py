"""Maildir delivery: write to tmp/, fsync, rename into new/ (the Maildir protocol).

Idempotent by delivery key: the file name is derived from it, so a resend after a
crash between rename and "mark sent" finds the mail already there and does nothing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from monitor.errors import TransientDeliveryError
from monitor.model import Message

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class MaildirChannel:
    """Writes each message as one file in ``path/new``."""

    def __init__(
        self, name: str, path: Path, *, sender: str, to: Sequence[str], html: bool = True
    ) -> None:
        self.name = name
        self.path = path
        self.sender = sender
        self.to = list(to)
        self.wants_html = html

    def file_name(self, message: Message) -> str:
        return _UNSAFE.sub("_", message.delivery_key)[:200] + ".news-monitor"

    def send(self, message: Message) -> None:
        name = self.file_name(message)
        try:
            for folder in ("tmp", "new", "cur"):
                (self.path / folder).mkdir(parents=True, exist_ok=True)
            if self._delivered(name):
                return
            # Imported with the first mail, as the SMTP channel's (see SmtpChannel.send).
            from monitor.channels.mime import build_email

            mail = build_email(
                message, sender=self.sender, to=self.to, list_id=self.name, html=self.wants_html
            )
            temporary = self.path / "tmp" / f"{name}.{os.getpid()}"
            with open(temporary, "wb") as handle:
                handle.write(mail)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path / "new" / name)
            _fsync_dir(self.path / "new")
        except OSError as exc:
            raise TransientDeliveryError(f"maildir: cannot write to {self.path}: {exc}") from exc

    def _delivered(self, name: str) -> bool:
        if (self.path / "new" / name).exists():
            return True
        # A mail client moves read mail to cur/ and appends ":2,FLAGS".
        return any(entry.name.startswith(name) for entry in os.scandir(self.path / "cur"))

    def close(self) -> None:
        """Nothing is kept open between messages."""


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
