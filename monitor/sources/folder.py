"""A folder of news documents as a source (the repo's seeds/ is one).

Reads .txt, .md, .html/.htm, .eml, and feed files (.xml, .rss, .atom, .json). The cursor
remembers each file's size and modification time, so an unchanged file is not re-read.

An XML feed file that ends before its root element does is still being written (copied
into the folder as it is read) or was cut short: feedparser would read the entries it has
so far, and one cut inside an element is an item of its own that would stay. Such a file
is not read. Modified in the last SETTLE_SECONDS, it waits for the next poll unremarked;
older, it is a broken file, reported as one (and retried at each poll).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from stat import S_ISREG
from typing import Any

import structlog

from monitor.errors import SourceError
from monitor.model import Entry, FetchResult
from monitor.sources.charset import document_encoding
from monitor.sources.documents import (
    parse_email_document,
    parse_html_document,
    parse_text_document,
)
from monitor.sources.entrynames import without_shared_names
from monitor.sources.feedparse import parse_feed
from monitor.sources.xmlroot import checked_text, closes_at_end, root_element

MAX_FILE_BYTES = 20 * 1024 * 1024
SETTLE_SECONDS = 60.0  # a file changed this recently may still be being written

FileParser = Callable[[bytes, datetime, str], list[Entry]]


def _text(parse: Callable[[str, datetime, str], Entry | None]) -> FileParser:
    def parse_file(raw: bytes, mtime: datetime, origin: str) -> list[Entry]:
        # Read as a feed is (charset.py): a byte order mark (Notepad's UTF-16, or a
        # UTF-8 one that would start the title) is no part of the text, and a file in a
        # legacy charset (EUC-KR, windows-1252) is not UTF-8 full of U+FFFD.
        encoding, mark = document_encoding(raw, None)
        entry = parse(raw[mark:].decode(encoding, errors="replace"), mtime, origin)
        return [entry] if entry else []

    return parse_file


def _email(raw: bytes, mtime: datetime, origin: str) -> list[Entry]:
    entry = parse_email_document(raw, mtime, origin)
    return [entry] if entry else []


class IncompleteDocument(SourceError):
    """A feed file that ends inside its root element (see the module's docstring)."""


def _feed(raw: bytes, mtime: datetime, origin: str) -> list[Entry]:
    text = checked_text(raw)
    root = root_element(text) if text is not None else None
    if text is not None and (root is None or not closes_at_end(text, root)):
        raise IncompleteDocument("the feed document ends before its root element does")
    return [
        entry if entry.published else replace(entry, published=mtime)
        for entry in parse_feed(raw, origin)
    ]


log = structlog.get_logger("monitor.sources.folder")

PARSERS: dict[str, FileParser] = {
    ".txt": _text(parse_text_document),
    ".md": _text(parse_text_document),
    ".markdown": _text(parse_text_document),
    ".html": _text(parse_html_document),
    ".htm": _text(parse_html_document),
    ".eml": _email,
    ".xml": _feed,
    ".rss": _feed,
    ".atom": _feed,
    ".json": _feed,
}


class FolderSource:
    """Documents in a folder (and its subfolders); hidden files are ignored."""

    def __init__(self, name: str, path: Path, identity: str = "auto") -> None:
        self.name = name
        self.path = path
        self.identity = identity

    def fetch(self, cursor: dict[str, Any]) -> FetchResult:
        if not self.path.is_dir():
            raise SourceError(f"folder: {self.path} is not a readable folder")
        seen: dict[str, list[int]] = dict(cursor.get("files", {}))
        current: dict[str, list[int]] = {}
        entries: list[Entry] = []
        errors: list[str] = []
        for file in sorted(self._files()):
            relative = file.relative_to(self.path).as_posix()
            try:
                stat = file.stat()
            except OSError:
                continue
            signature = [stat.st_mtime_ns, stat.st_size]
            current[relative] = signature
            if seen.get(relative) == signature:
                continue
            try:
                entries.extend(self._read(file, relative, stat.st_mtime, stat.st_size))
            except IncompleteDocument as exc:
                current.pop(relative)
                if time.time() - stat.st_mtime < SETTLE_SECONDS:
                    log.info("document_still_written", file=relative)
                else:
                    errors.append(f"{relative}: {exc}")
            except (OSError, SourceError) as exc:
                errors.append(f"{relative}: {exc}")
                current.pop(relative)
            except Exception as exc:  # a parser's bug: the folder's other files go on
                log.exception("document_crashed", file=relative)
                errors.append(f"{relative}: unexpected error: {exc!r}")
                current.pop(relative)
        if errors and not entries:
            # Only broken files changed: say so (the source turns unhealthy). A broken file
            # beside good ones is retried at every poll, since its signature is not kept.
            raise SourceError("folder: " + "; ".join(errors[:5]))
        return FetchResult(entries, {"files": current}, not_modified=not entries and not errors)

    def _files(self) -> list[Path]:
        return [
            file
            for file in self.path.rglob("*")
            if file.is_file()
            and file.suffix.lower() in PARSERS
            and not any(part.startswith(".") for part in file.relative_to(self.path).parts)
        ]

    def _read(self, file: Path, relative: str, mtime: float, size: int) -> list[Entry]:
        if size > MAX_FILE_BYTES:
            raise SourceError(f"larger than {MAX_FILE_BYTES} bytes")
        # A link to a file elsewhere (/etc/passwd, /proc/self/environ) would have the
        # daemon publish what only it can read: links stay inside the folder.
        if file.is_symlink() and not file.resolve().is_relative_to(self.path.resolve()):
            raise SourceError("a symbolic link to a file outside the folder")
        parse = PARSERS[file.suffix.lower()]
        entries = parse(_read_at_most(file), datetime.fromtimestamp(mtime, UTC), relative)
        # A feed file names its entries as the feed does (see FeedSource.fetch).
        return without_shared_names(entries) if self.identity == "auto" else entries


def _read_at_most(file: Path) -> bytes:
    """The file's bytes, up to the cap whatever its size said (a file in /proc says 0),
    from a regular file only (a FIFO put in its place would block the poll)."""
    descriptor = os.open(file, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(descriptor, "rb") as handle:
        if not S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise SourceError("not a regular file")
        raw = handle.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise SourceError(f"larger than {MAX_FILE_BYTES} bytes")
    return raw
