"""Composition root: builds sources, matcher, store, channels and renderer from config,
once. Stage modules never read config files or globals; they get what they need here."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import assert_never

from monitor.alerts.render import Renderer
from monitor.channels.base import Channel
from monitor.config import (
    AppriseChannelConfig,
    ChannelConfig,
    Config,
    ConsoleChannelConfig,
    FeedSourceConfig,
    FolderSourceConfig,
    MaildirChannelConfig,
    SmtpChannelConfig,
    SourceConfig,
    WatchlistConfig,
    WebhookChannelConfig,
)
from monitor.errors import ConfigError, QueryError
from monitor.sources.base import Source
from monitor.store import Store, open_store
from monitor.watchlists import WatchlistIndex, compile_watchlists
from monitor.yamlsource import unfolded_column


@dataclass
class App:
    """Everything a poll, a delivery or a digest needs, built from one Config."""

    config: Config
    store: Store
    matcher: WatchlistIndex
    renderer: Renderer
    sources: dict[str, Source] = field(default_factory=dict)
    source_configs: dict[str, SourceConfig] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    # channel -> its failures as a whole in a row, since it last took a delivery: the
    # backoff of its next probe (see monitor.alerts.outbox)
    channel_failures: dict[str, int] = field(default_factory=dict)

    @property
    def watchlists(self) -> dict[str, WatchlistConfig]:
        return {w.name: w for w in self.config.watchlists}

    def take_over(self, previous: App) -> None:
        """Keep what ``previous`` (the App a reload replaces) learned that no config says:
        each channel's failures in a row (its probes' backoff). Shared, not copied: a job
        still on ``previous`` may add to them."""
        self.channel_failures = previous.channel_failures

    def close(self) -> None:
        for channel in self.channels.values():
            channel.close()
        self.store.close()


def build_matcher(config: Config) -> WatchlistIndex:
    """All watch-lists compiled once; a query error names the file and line of the
    query (the line of the mistake in a query of several lines), or of the term set."""
    try:
        return compile_watchlists(config.watchlists, config.terms)
    except QueryError as exc:
        if exc.term_set is not None:
            exc.file, exc.line = config.term_location(exc.term_set, exc.term_entry)
            raise
        unfolded = config.unfolded_queries.get(exc.watchlist or "")
        column = None if unfolded is None else unfolded_column(exc.query, unfolded, exc.column)
        if unfolded is not None and column is not None:
            # A folded (``>-``) query: the line of the file that holds the mistake is
            # shown, as for a ``|`` block, not the one line folding made of them all.
            opened = (
                None if exc.opened is None else unfolded_column(exc.query, unfolded, exc.opened)
            )
            located = QueryError(
                exc.detail, query=unfolded, column=column, watchlist=exc.watchlist, opened=opened
            )
            located.file, located.line = config.query_location(
                exc.watchlist or "", unfolded, column
            )
            raise located from None
        exc.file, exc.line = config.query_location(exc.watchlist or "", exc.query, exc.column)
        raise


def build_renderer(config: Config) -> Renderer:
    return Renderer(timezone=config.monitor.timezone, templates=config.monitor.templates)


def template_problems(config: Config, renderer: Renderer) -> list[ConfigError]:
    """``renderer.check()``, each problem located in its template or else in the config."""
    return [
        ConfigError(p.message, file=p.file or str(config.path), line=p.line)
        for p in renderer.check()
    ]


def build_app(config: Config, *, store: Store | None = None) -> App:
    """The whole application for ``config``; opens (and migrates) the store if not given."""
    matcher = build_matcher(config)
    renderer = build_renderer(config)
    if config.monitor.templates is not None:  # the shipped ones are tested
        for problem in template_problems(config, renderer):  # else every alert a dead letter
            raise problem
    app = App(
        config=config,
        store=store or open_store(config.monitor.database),
        matcher=matcher,
        renderer=renderer,
    )
    if config.monitor.instance:
        app.owner = config.monitor.instance
    for source in config.monitor.sources:
        if source.enabled:
            app.sources[source.name] = build_source(source, config.env_secrets())
            app.source_configs[source.name] = source
    for name in config.monitor.channels:
        app.channels[name] = build_located_channel(config, name, renderer)
    return app


def build_located_channel(config: Config, name: str, renderer: Renderer) -> Channel:
    """``build_channel`` for channel ``name``; a setting it refuses (a webhook secret that
    is not whsec_...) is a ConfigError at the channel's line, as the config's others are."""
    try:
        return build_channel(name, config.monitor.channels[name], renderer)
    except ConfigError as exc:
        exc.file, exc.line = config.channel_location(name)
        raise


def build_source(config: SourceConfig, secrets: Mapping[str, str]) -> Source:
    """The source for ``config``; ``secrets`` (the environment's, by ``${NAME}``) are
    kept out of what a feed stores."""
    match config:
        case FolderSourceConfig():
            from monitor.sources.folder import FolderSource

            return FolderSource(config.name, config.path, config.identity)
        case FeedSourceConfig():
            from monitor.sources.feed import FeedSource

            return FeedSource(config, secrets=secrets)
        case _:
            assert_never(config)


def build_channel(name: str, config: ChannelConfig, renderer: Renderer | None = None) -> Channel:
    """The channel for ``config``; a webhook renders custom bodies and dates with
    ``renderer`` (by default the packaged templates in UTC, enough for `monitor check`).

    Each kind's module is imported when a channel of that kind is configured."""
    match config:
        case MaildirChannelConfig():
            from monitor.channels.maildir import MaildirChannel

            return MaildirChannel(
                name,
                config.path,
                sender=config.sender,
                to=config.to,
                html=config.format == "html",
            )
        case ConsoleChannelConfig():
            from monitor.channels.console import ConsoleChannel

            return ConsoleChannel(name)
        case SmtpChannelConfig():
            from monitor.channels.smtp import SmtpChannel

            return SmtpChannel(name, config)
        case WebhookChannelConfig():
            from monitor.channels.webhook import WebhookChannel

            return WebhookChannel(name, config, renderer or Renderer())
        case AppriseChannelConfig():
            from monitor.channels.apprise_channel import AppriseChannel

            return AppriseChannel(name, [url.get_secret_value() for url in config.urls])
        case _:
            assert_never(config)
