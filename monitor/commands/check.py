"""`monitor check`: validate config, watch-lists (and their examples), templates, channels."""

from __future__ import annotations

import argparse
import sys

from monitor.app import build_located_channel, build_matcher, build_renderer, template_problems
from monitor.commands._common import load
from monitor.config import Config, FolderSourceConfig
from monitor.errors import ConfigError
from monitor.text import counted
from monitor.watchlists.examples import example_failures

MAX_WARNINGS = 5  # watch-lists named as alerting no one; the rest are counted


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load(args)
    problems: list[str] = []
    try:
        matcher = build_matcher(config)
    except ConfigError as exc:  # located by build_matcher
        problems.append(exc.located())
    else:
        for failure in example_failures(matcher, config.watchlists):
            file, line = config.example_location(failure.watchlist, failure.kind, failure.index)
            message = failure.said(f"{failure.key}:")
            problems.append(ConfigError(message, file=file, line=line).located())
    renderer = build_renderer(config)
    problems.extend(problem.located() for problem in template_problems(config, renderer))
    for name in config.monitor.channels:
        try:
            build_located_channel(config, name, renderer).close()
        except ConfigError as exc:
            problems.append(exc.located())
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 2
    monitor = config.monitor
    for source in monitor.sources:
        if isinstance(source, FolderSourceConfig) and not source.path.is_dir():
            # Not an error: a mount may come later; until then its polls fail, and say so.
            print(
                f"{config.path}: warning: source {source.name!r}: no folder {source.path}",
                file=sys.stderr,
            )
    if not config.watchlists:  # an empty file, a list left out: a daemon that alerts never
        files = ", ".join(map(str, config.watchlist_files)) or str(config.path)
        print(f"{files}: warning: no watch-lists: nothing will match", file=sys.stderr)
    unheard = _unheard_watchlists(config)
    for file, line, message in unheard[:MAX_WARNINGS]:
        where = f"{file}:{line}" if line is not None else file
        print(f"{where}: warning: {message}", file=sys.stderr)
    if len(unheard) > MAX_WARNINGS:  # a config of lists kept for back-tests: not 10,000 lines
        more = len(unheard) - MAX_WARNINGS
        lists = counted(more, "more watch-list")
        print(f"{config.path}: warning: {lists} alert no one", file=sys.stderr)
    counts = (
        counted(len(monitor.sources), "source"),
        counted(len(config.watchlists), "watch-list"),
        counted(len(monitor.channels), "channel"),
        counted(len(monitor.digests), "digest"),
    )
    print(f"{config.path}: OK ({', '.join(counts)})")
    return 0


def _unheard_watchlists(config: Config) -> list[tuple[str, int | None, str]]:
    """Watch-lists whose matches reach no one: no channel for their instant alerts and
    no digest collecting them. Not an error (a list kept for back-tests and `monitor
    replay`), but a daemon that says nothing about it alerts on them never."""
    collected = {name for digest in config.monitor.digests for name in config.covered_by(digest)}
    found = []
    for watchlist in config.watchlists:
        instant = watchlist.alert != "digest" and watchlist.channels
        if instant or watchlist.name in collected:
            continue
        why = (
            "no channels and no digest collects it"
            if watchlist.alert == "both"
            else "no channels for its instant alerts"
            if watchlist.alert == "instant"
            else "alert: digest, but no digest collects it"
        )
        file, line = config.watchlist_location(watchlist.name)
        found.append((file, line, f"watch-list {watchlist.name!r} alerts no one: {why}"))
    return found
