"""`monitor match`: which watch-lists match a text and why, or a back-test over JSON lines."""

from __future__ import annotations

import argparse
import codecs
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, TextIO

from monitor.alerts.route import hit_record
from monitor.app import build_matcher
from monitor.commands._common import load, print_json
from monitor.config import Config, FolderSourceConfig
from monitor.errors import ConfigError, SourceError
from monitor.model import Document, Hit
from monitor.normalise import normalise_entry
from monitor.sources.folder import PARSERS
from monitor.text import utc_now
from monitor.watchlists import WatchlistIndex
from monitor.watchlists.backtest import backtest, read_jsonl, terminal_progress
from monitor.watchlists.examples import text_document


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Explain which watch-lists match a story: the clause that fired, the matched "
        "terms and snippets. The text's first line is its title, the rest its body; a "
        "--file the folder source reads (.txt, .md, .html, .eml, a feed) is read as it "
        "reads it. With --jsonl, back-test: one JSON line out per JSON line in."
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("text", nargs="?", help="the story's text, or - to read stdin")
    source.add_argument("--file", type=Path, help="read the story from this file")
    source.add_argument(
        "--jsonl",
        metavar="PATH",
        help='back-test an archive of {"id", "title", "body", "source"} lines (- for stdin)',
    )
    parser.add_argument(
        "--source",
        metavar="NAME",
        help="the source the story came from, as source: terms see it (a --file in a "
        "folder source's folder: that source's name; --jsonl: each line's own)",
    )
    add_watchlist_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load(args)
    only = selected_watchlists(config, args.watchlist)
    index = build_matcher(config)
    if args.jsonl is not None:
        if args.source is not None:
            raise ConfigError(
                "--source names the source of a text or --file; in a --jsonl archive each "
                'line gives its own "source"'
            )
        if args.jsonl == "-":
            with _reading("<stdin>"):
                return _backtest(index, _utf8_lines(sys.stdin.buffer, "<stdin>"), "<stdin>", only)
        with _reading(args.jsonl), open(args.jsonl, "rb") as raw:
            return _backtest(index, _utf8_lines(raw, args.jsonl), args.jsonl, only)
    stories = _stories(args, config)
    matched = False
    for story in stories:
        hits = index.match(story, only)
        if hits and len(stories) > 1:  # a feed file's entries: say whose hits follow
            print(f"== {story.title}")
        for hit in hits:
            _explain(hit, sys.stdout)
        matched |= bool(hits)
    if not matched:
        print("no watch-list matches")
    return 0 if matched else 1


def _stories(args: argparse.Namespace, config: Config) -> list[Document]:
    """The story of the text, stdin or --file, from the source --source names."""
    if args.file is not None:
        source = args.source if args.source is not None else folder_source_of(config, args.file)
        with _reading(str(args.file)):
            return _file_stories(args.file, source)
    if args.text == "-":
        with _reading("<stdin>"):
            return [text_document(_read_stdin(), args.source or "")]
    return [text_document(args.text, args.source or "")]


def folder_source_of(config: Config, path: Path) -> str:
    """The name of the configured folder source whose folder holds ``path`` (the first,
    as configured), else "": the daemon stores a file's stories, a feed file's entries
    too, under the name of the source that read it, never under a feed's own title."""
    where = Path(os.path.abspath(path))
    for source in config.monitor.sources:
        if isinstance(source, FolderSourceConfig) and where.is_relative_to(
            os.path.abspath(source.path)
        ):
            return source.name
    return ""


def _file_stories(path: Path, source: str) -> list[Document]:
    """The stories in ``path`` as the daemon stores them: a file of a kind the folder
    source reads (a text with its date line, an HTML page, an e-mail, a feed) through
    its parser, so markup, headers and the date line are what the daemon makes of them;
    any other file as a text, its first line the title."""
    parse = PARSERS.get(path.suffix.lower())
    if parse is None:
        return [text_document(path.read_text(encoding="utf-8"), source)]
    now = utc_now()
    try:
        entries = parse(path.read_bytes(), now, path.name)
    except SourceError as exc:  # a feed file that is no feed, cut short, ...
        raise ConfigError(f"cannot read: {exc}", file=str(path)) from exc
    items = [normalise_entry(source, entry, identity="auto", now=now) for entry in entries]
    return [Document(item.title, item.body, item.source) for item in items]


def _read_stdin() -> str:
    """stdin as UTF-8, strictly, and its lines as a text file's, as --file reads a file:
    Python's own stdin would turn bytes that are not UTF-8 into lone surrogates or
    fail, depending on the locale."""
    raw: BinaryIO | None = getattr(sys.stdin, "buffer", None)
    if raw is None:  # replaced by text (a test's StringIO)
        return sys.stdin.read()
    return raw.read().decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")


def _utf8_lines(raw: BinaryIO, name: str) -> Iterator[str]:
    """An archive's lines, decoded one by one: a line that is not UTF-8 is named by its
    number, after the results of the lines before it. Lines end as in a file opened as
    text (a lone \\r too), and a first line's byte order mark (PowerShell writes one in
    UTF-8) is no part of its JSON."""
    number = 0
    for chunk in raw:  # chunks end at b"\n"; bytes' splitlines() cuts at \r\n, \r and \n
        for line in chunk.splitlines() or [b""]:
            number += 1
            try:
                yield (line.removeprefix(codecs.BOM_UTF8) if number == 1 else line).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ConfigError(
                    f"cannot read: not UTF-8 text ({exc.reason})", file=name, line=number
                ) from exc


@contextmanager
def _reading(name: str) -> Iterator[None]:
    """An input that cannot be read (missing, a folder, not UTF-8) is named, exit 2."""
    try:
        yield
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read: not UTF-8 text ({exc.reason})", file=name) from exc
    except BrokenPipeError:  # stdout's reader went away: not the input's fault
        raise
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=name) from exc


def add_watchlist_option(parser: argparse.ArgumentParser) -> None:
    """``-w NAME``, repeatable; read back with ``selected_watchlists``."""
    parser.add_argument(
        "-w",
        "--watchlist",
        action="append",
        metavar="NAME",
        help="only this watch-list (repeat for more)",
    )


def selected_watchlists(config: Config, names: list[str] | None) -> frozenset[str] | None:
    """The watch-lists named by -w, checked against the config; None for all."""
    if not names:
        return None
    known = {w.name for w in config.watchlists}
    for name in names:
        if name not in known:
            raise ConfigError(f"unknown watch-list {name!r} (known: {', '.join(sorted(known))})")
    return frozenset(names)


def _explain(hit: Hit, out: TextIO) -> None:
    out.write(f"{hit.watchlist}: matches\n")
    out.write(f"  because: {hit.clause}\n")
    out.write(f"  terms:   {', '.join(hit.terms)}\n")
    for snippet in hit.snippets:
        out.write(f"  … {snippet} …\n")


def _backtest(
    index: WatchlistIndex, lines: Iterable[str], name: str, only: frozenset[str] | None
) -> int:
    stories = read_jsonl(lines, name)
    progress = terminal_progress(sys.stderr, sys.stdout)
    for result in backtest(index, stories, only=only, progress=progress):
        if progress is not None:
            progress.clear()
        record = {
            "id": result.id,
            "watchlists": [hit.watchlist for hit in result.hits],
            "hits": {hit.watchlist: hit_record(hit) for hit in result.hits},
        }
        print_json(record)
    return 0
