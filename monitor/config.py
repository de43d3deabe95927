"""Configuration: YAML files -> validated, frozen pydantic models.

Every error names the file, line and key (``config/monitor.yaml:12: sources[0].every:
not a duration: 'often'``). Relative paths resolve against the folder of the file that
names them; ``${ENV}`` references are expanded while loading (see yamlsource).
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from monitor.errors import ConfigError
from monitor.yamlsource import KeyPath, LocatedYaml, dotted, load_yaml

DEFAULT_CONFIG = Path("config/monitor.yaml")
MIN_ENV_SECRET = 8  # characters: an environment value shorter than a token is not masked
M = TypeVar("M", bound=BaseModel)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


def parse_duration(value: Any) -> timedelta:
    """``90``, ``"30s"``, ``"10m"``, ``"1h"``, ``"7d"`` -> timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 10m, 1h, 7d)")
    try:
        if isinstance(value, int | float):
            return timedelta(seconds=value)
        match = _DURATION.match(str(value))
        if match is None:
            raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 10m, 1h, 7d)")
        return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    except OverflowError as exc:  # beyond timedelta's 999,999,999 days
        raise ValueError(f"too long a duration: {value!r}") from exc


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be greater than zero")
    return value


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base")
    path = value.expanduser()
    if base is not None and not path.is_absolute():
        path = Path(base) / path
    return Path(os.path.normpath(path))


def _existing_file(value: Path) -> Path:
    if not value.is_file():
        raise ValueError(f"no such file {value}")
    return value


def _existing_folder(value: Path) -> Path:
    if not value.is_dir():
        raise ValueError(f"no such folder {value}")
    return value


# The databases the store is built and tested for, with the drivers it installs.
DATABASES = {"sqlite": "pysqlite", "postgresql": "psycopg"}
DATABASE_FORMS = "sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST:PORT/NAME"


def _check_database_url(value: str) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(value)
    except ArgumentError:
        raise ValueError(f"not a database URL; expected {DATABASE_FORMS}") from None
    # The URL itself is not repeated in these messages: it may hold a password.
    backend = url.get_backend_name()
    if backend not in DATABASES:
        raise ValueError(f"{backend!r} is not supported; expected {DATABASE_FORMS}")
    driver = url.get_driver_name()  # the backend's default when the URL names none
    if DATABASES[backend] != driver:
        raise ValueError(f"{backend}+{driver} is not supported; expected {DATABASE_FORMS}")


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


def _check_cron(value: str) -> str:
    from monitor.alerts.cron import DigestTrigger  # the trigger the daemon will build

    try:
        DigestTrigger(value, "UTC")
    except ValueError as exc:
        raise ValueError(f"not a cron schedule {value!r}: {exc}") from exc
    return value


def _check_http_url(value: str) -> str:
    """A URL a channel or source can take apart (host, port): else building the channel
    raises a ValueError, a traceback instead of this file's line. The URL itself is not
    repeated: its path may hold a token."""
    try:
        parts = urlsplit(value)
        host, _ = parts.hostname, parts.port  # a bad port raises only when read
    except ValueError as exc:
        raise ValueError(f"not a URL: {exc}") from None
    if not host:
        raise ValueError("not a URL: no host")
    _check_requestable(value)
    return value


def _check_requestable(value: str) -> None:
    """That a request can go to ``value``: httpx refuses a control character and a host
    that is no IDNA name, and the resolver a label of over 63 characters (each failed
    every poll with an unexpected error, a traceback in the log)."""
    import httpx

    try:
        url = httpx.URL(value)
        # The host read as httpx reads it to send a request (an IDNA name decoded), and
        # encoded as the resolver encodes it.
        if url.host:
            url.raw_host.decode("ascii").encode("idna")
    except (httpx.InvalidURL, UnicodeError) as exc:
        raise ValueError(f"not a URL: {exc}") from None


# What a request can carry (RFC 9110: a token for a name; a value of visible characters
# and inner blanks, in ASCII, as httpx encodes it). Another fails every request, with an
# error from httpx that quotes the value.
_HEADER_NAME = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_HEADER_VALUE = re.compile(r"(?:[\x21-\x7e]+(?:[ \t]+[\x21-\x7e]+)*)?")


def _check_headers(value: dict[str, str]) -> dict[str, str]:
    """Headers a request can send. A value is not repeated: it may be a token."""
    for name, text in value.items():
        if not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not an HTTP header name")
        if not _HEADER_VALUE.fullmatch(text):
            raise ValueError(
                f"{name}: not an HTTP header value (printable ASCII, no line breaks,"
                " no blanks at either end)"
            )
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_positive)]
Headers = Annotated[dict[str, str], AfterValidator(_check_headers)]
HttpUrl = Annotated[str, Field(pattern=r"^https?://"), AfterValidator(_check_http_url)]
ConfigPath = Annotated[Path, AfterValidator(_resolve_path)]
ExistingFile = Annotated[Path, AfterValidator(_resolve_path), AfterValidator(_existing_file)]
ExistingFolder = Annotated[Path, AfterValidator(_resolve_path), AfterValidator(_existing_folder)]
Name = Annotated[str, Field(pattern=_NAME, max_length=100)]
TimeZoneName = Annotated[str, AfterValidator(_check_timezone)]
CronSchedule = Annotated[str, AfterValidator(_check_cron)]


class Strict(BaseModel):
    """Base for config models: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- sources ---------------------------------------------------------------------------


class SourceConfigBase(Strict):
    name: Name
    every: Duration = timedelta(minutes=10)
    jitter: Annotated[timedelta, BeforeValidator(parse_duration)] | None = None
    max_silence: Duration | None = None
    identity: Literal["auto", "guid", "link", "content"] = "auto"
    backfill: Annotated[int, Field(ge=0)] | None = None
    enabled: bool = True

    @property
    def jitter_seconds(self) -> float:
        """Explicit jitter, else a tenth of the interval (spreads many sources out)."""
        if self.jitter is not None:
            return self.jitter.total_seconds()
        return self.every.total_seconds() / 10


class FolderSourceConfig(SourceConfigBase):
    type: Literal["folder"]
    path: ConfigPath
    every: Duration = timedelta(minutes=1)


class FeedSourceConfig(SourceConfigBase):
    type: Literal["feed"]
    url: HttpUrl
    timeout: Duration = timedelta(seconds=30)  # the whole poll: connect, headers, body
    connect_timeout: Duration = timedelta(seconds=10)
    read_timeout: Duration = timedelta(seconds=15)  # each network read
    max_bytes: Annotated[int, Field(gt=0)] = 10 * 1024 * 1024
    max_redirects: Annotated[int, Field(ge=0, le=20)] = 5
    headers: Headers = Field(default_factory=dict)


SourceConfig = Annotated[FolderSourceConfig | FeedSourceConfig, Field(discriminator="type")]


# --- watch-lists -----------------------------------------------------------------------


class ExampleStory(Strict):
    """An example written as a story's fields, so that ``source:`` can be tested too (a
    text example has no source); a field left out is empty."""

    title: str | None = None
    body: str | None = None
    source: str | None = None

    @model_validator(mode="after")
    def _some_field(self) -> ExampleStory:
        if self.title is None and self.body is None and self.source is None:
            raise ValueError("an example needs a title, a body or a source")
        return self


def _example_form(value: Any) -> str | None:
    """Which form an example takes, so that a mistake in a story's keys is reported as
    that, not also as "Input should be a valid string"."""
    if isinstance(value, str):
        return "text"
    if isinstance(value, dict | ExampleStory):
        return "story"
    return None


Example = Annotated[
    Annotated[str, Tag("text")] | Annotated[ExampleStory, Tag("story")],
    Discriminator(
        _example_form,
        custom_error_type="example_form",
        custom_error_message="expected a text, or a mapping with title, body or source",
    ),
]


class ExamplesConfig(Strict):
    match: list[Example] = Field(default_factory=list)
    no_match: list[Example] = Field(default_factory=list)


class WatchlistConfig(Strict):
    name: Name
    query: Annotated[str, Field(min_length=1)]
    description: str = ""
    alert: Literal["instant", "digest", "both"] = "instant"
    channels: list[Name] = Field(default_factory=list)
    on_update: Literal["ignore", "new_match", "always"] = "new_match"
    examples: ExamplesConfig = Field(default_factory=ExamplesConfig)


TermSets = dict[Name, list[Annotated[str, Field(min_length=1)]]]


class WatchlistFileConfig(Strict):
    """A watch-list file: either a bare list of watch-lists or this mapping."""

    terms: TermSets = Field(default_factory=dict)
    watchlists: list[WatchlistConfig] = Field(default_factory=list)


# --- channels --------------------------------------------------------------------------


class QuietHours(Strict):
    """Hold instant alerts between ``start`` and ``end`` (local time; may wrap midnight)."""

    start: time
    end: time
    timezone: TimeZoneName | None = None


class ChannelConfigBase(Strict):
    max_per_hour: Annotated[int, Field(gt=0)] | None = None
    quiet_hours: QuietHours | None = None


class EmailChannelBase(ChannelConfigBase):
    to: Annotated[list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]], Field(min_length=1)]
    sender: Annotated[str, Field(alias="from")] = "news-monitor@localhost"
    # html: the text and an HTML alternative; text: the plain text alone.
    format: Literal["html", "text"] = "html"


class MaildirChannelConfig(EmailChannelBase):
    type: Literal["maildir"]
    path: ConfigPath


class SmtpChannelConfig(EmailChannelBase):
    type: Literal["smtp"]
    host: str
    port: Annotated[int, Field(gt=0, lt=65536)] = 25
    starttls: bool = False
    tls: bool = False
    username: str | None = None
    password: SecretStr | None = None
    timeout: Duration = timedelta(seconds=30)
    ca_file: ExistingFile | None = None

    @model_validator(mode="after")
    def _one_tls_mode(self) -> SmtpChannelConfig:
        if self.starttls and self.tls:
            raise ValueError("choose starttls or tls (implicit TLS), not both")
        return self


class WebhookChannelConfig(ChannelConfigBase):
    type: Literal["webhook"]
    url: HttpUrl
    format: Literal["generic", "slack", "discord", "teams", "custom"] = "generic"
    secret: SecretStr | None = None
    timeout: Duration = timedelta(seconds=15)
    headers: Headers = Field(default_factory=dict)
    body_template: str | None = None

    @model_validator(mode="after")
    def _custom_needs_template(self) -> WebhookChannelConfig:
        if (self.format == "custom") != (self.body_template is not None):
            raise ValueError("format: custom and body_template go together")
        return self


class ConsoleChannelConfig(ChannelConfigBase):
    type: Literal["console"]


class AppriseChannelConfig(ChannelConfigBase):
    type: Literal["apprise"]
    urls: Annotated[list[SecretStr], Field(min_length=1)]


ChannelConfig = Annotated[
    MaildirChannelConfig
    | SmtpChannelConfig
    | WebhookChannelConfig
    | ConsoleChannelConfig
    | AppriseChannelConfig,
    Field(discriminator="type"),
]


# --- digests, delivery, daemon ---------------------------------------------------------


class DigestConfig(Strict):
    name: Name
    schedule: CronSchedule
    timezone: TimeZoneName | None = None
    channels: Annotated[list[Name], Field(min_length=1)]
    # Empty: the watch-lists whose ``alert`` is ``digest`` or ``both`` (Config.covered_by).
    watchlists: list[Name] = Field(default_factory=list)
    max_items: Annotated[int, Field(gt=0)] = 50
    send_empty: bool = False


class DeliveryConfig(Strict):
    every: Duration = timedelta(seconds=5)
    retry_base: Duration = timedelta(seconds=30)
    retry_max: Duration = timedelta(hours=1)
    max_attempts: Annotated[int, Field(gt=0)] = 30
    batch: Annotated[int, Field(gt=0)] = 200
    # How long a claimed batch is this instance's: longer than sending it takes, and as
    # long as a killed instance's claimed alerts may wait before another sends them.
    lease: Duration = timedelta(minutes=5)


class HttpConfig(Strict):
    """The optional status endpoint (/healthz, /readyz, /metrics)."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, lt=65536)] = 9464


def _watchlists_form(value: Any) -> str | None:
    """Which form ``watchlists:`` takes, so that a mistake in an inline list is reported
    as that, not also as "Input should be a valid string" at the ``watchlists:`` line."""
    if isinstance(value, str):
        return "file"
    if isinstance(value, list | tuple):
        return "list"
    return None


WatchlistsSetting = Annotated[
    Annotated[str, Tag("file")] | Annotated[list[WatchlistConfig], Tag("list")],
    Discriminator(
        _watchlists_form,
        custom_error_type="watchlists_form",
        custom_error_message="expected a file, a glob, or a list of watch-lists",
    ),
]


class MonitorConfig(Strict):
    database: str = "sqlite:///../var/monitor.db"
    timezone: TimeZoneName = "UTC"
    sources: list[SourceConfig] = Field(default_factory=list)
    watchlists: WatchlistsSetting = "watchlists.yaml"
    terms: TermSets = Field(default_factory=dict)
    channels: dict[Name, ChannelConfig] = Field(default_factory=dict)
    digests: list[DigestConfig] = Field(default_factory=list)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    templates: ExistingFolder | None = None
    retention: Duration | None = timedelta(days=180)
    summary: bool = True
    http: HttpConfig | None = None
    on_source_error: list[Name] = Field(default_factory=list)
    instance: str | None = None

    @field_validator("database")
    @classmethod
    def _resolve_sqlite(cls, value: str, info: ValidationInfo) -> str:
        """A relative SQLite path is relative to the config file, like every other path;
        a database the store cannot open (another kind, a driver not installed) is a
        config error here, not a failure of the first command that connects."""
        _check_database_url(value)
        prefix = "sqlite:///"
        base = (info.context or {}).get("base")
        if value.startswith(prefix) and base is not None:
            path = value[len(prefix) :]
            if path and path != ":memory:" and not path.startswith("/"):
                return prefix + os.path.normpath(Path(base) / path)
        return value


@dataclass(frozen=True)
class Config:
    """Everything loaded from disk: the main config and the watch-lists it names."""

    path: Path
    monitor: MonitorConfig
    watchlists: tuple[WatchlistConfig, ...]
    terms: Mapping[str, list[str]]
    watchlist_files: tuple[Path, ...] = ()
    watchlist_lines: Mapping[str, tuple[str, int | None]] = field(default_factory=dict)
    term_lines: Mapping[str, tuple[str, int | None]] = field(default_factory=dict)
    query_lines: Mapping[str, tuple[str, int | None]] = field(default_factory=dict)
    channel_lines: Mapping[str, tuple[str, int | None]] = field(default_factory=dict)
    # watch-list -> its query as its lines are in the file, when a folded block (``>-``)
    # made one line of them (see LocatedYaml.unfolded)
    unfolded_queries: Mapping[str, str] = field(default_factory=dict)
    # (term set, entry index) -> (file, line) of that entry
    term_entry_lines: Mapping[tuple[str, int], tuple[str, int | None]] = field(default_factory=dict)
    # (watch-list, "match" or "no_match", index) -> (file, line) of that example
    example_lines: Mapping[tuple[str, str, int], tuple[str, int | None]] = field(
        default_factory=dict
    )
    # Every ``${NAME}`` read from the environment, with the value it took: secrets,
    # whatever their key, if long enough to be one (see ``env_secrets``).
    env_refs: Mapping[str, str] = field(default_factory=dict)

    def query_location(self, name: str, query: str, column: int) -> tuple[str, int | None]:
        """(file, line) of ``column`` of watch-list ``name``'s query: the line of its
        ``query:`` key, or for a query of several lines (a YAML ``|`` block, whose text
        starts on the line after the key; a ``>`` block as ``unfolded_queries`` has it)
        the line holding that column."""
        file, line = self.query_lines.get(name) or self.watchlist_location(name)
        if line is not None and "\n" in query:
            line += query.count("\n", 0, max(column - 1, 0)) + 1
        return file, line

    def example_location(self, name: str, kind: str, index: int) -> tuple[str, int | None]:
        """(file, line) of example ``index`` of watch-list ``name``'s ``examples.<kind>``,
        else of the watch-list."""
        return self.example_lines.get((name, kind, index)) or self.watchlist_location(name)

    def covered_by(self, digest: DigestConfig) -> list[str]:
        """The watch-lists whose matches ``digest`` collects: those it names, whatever
        their ``alert``, or else those that ask for digests (``alert: digest`` or ``both``)."""
        return digest.watchlists or [w.name for w in self.watchlists if w.alert != "instant"]

    def watchlist_location(self, name: str) -> tuple[str, int | None]:
        """(file, line) where watch-list ``name`` is defined."""
        return self.watchlist_lines.get(name, (str(self.path), None))

    def channel_location(self, name: str) -> tuple[str, int | None]:
        """(file, line) where channel ``name`` is defined: its settings are checked again
        when the channel is built (a webhook's secret), and that error needs a line too."""
        return self.channel_lines.get(name, (str(self.path), None))

    def term_location(self, name: str, entry: int | None = None) -> tuple[str, int | None]:
        """(file, line) of entry ``entry`` of term set ``name``, else of the set."""
        found = self.term_entry_lines.get((name, entry)) if entry is not None else None
        return found or self.term_lines.get(name, (str(self.path), None))

    def secrets(self) -> list[str]:
        """Every secret value in the config, so logs can mask them."""
        found = []
        for channel in self.monitor.channels.values():
            for name in ("password", "secret"):
                value = getattr(channel, name, None)
                if value is not None:
                    found.append(value.get_secret_value())
            found.extend(url.get_secret_value() for url in getattr(channel, "urls", []))
            if isinstance(channel, WebhookChannelConfig):
                found.append(channel.url)  # a chat service's hook URL is its credential
        # Passwords inside URLs: a feed's (https://user:pass@host/feed), the database's.
        from sqlalchemy.engine import make_url

        found.extend(
            _url_password(source.url)
            for source in self.monitor.sources
            if isinstance(source, FeedSourceConfig)
        )
        found.append(make_url(self.monitor.database).password or "")
        found.extend(self.env_secrets().values())
        return [value for value in dict.fromkeys(found) if value]

    def env_secrets(self) -> dict[str, str]:
        """Each ``${NAME}`` whose value is long enough to be a secret, with that value: a
        token in a feed's path or a header's value, but not a port or a short word
        ("2525", "true"), which masked would hide every count and word like it."""
        return {name: v for name, v in self.env_refs.items() if len(v) >= MIN_ENV_SECRET}

    def watchlist(self, name: str) -> WatchlistConfig:
        """The watch-list called ``name``."""
        for watchlist in self.watchlists:
            if watchlist.name == name:
                return watchlist
        raise KeyError(name)


def _url_password(url: str) -> str:
    try:
        return urlsplit(url).password or ""
    except ValueError:  # not a URL one could fetch either
        return ""


def default_config_path() -> Path:
    """``$MONITOR_CONFIG``, else ``config/monitor.yaml``."""
    return Path(os.environ.get("MONITOR_CONFIG") or DEFAULT_CONFIG)


class _ReadEnv(Mapping[str, str]):
    """The environment, remembering each value a ``${NAME}`` read from it."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.read: dict[str, str] = {}

    def __getitem__(self, name: str) -> str:
        value = self.env[name]
        self.read[name] = value
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self.env)

    def __len__(self) -> int:
        return len(self.env)


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load and validate the config at ``path`` and its watch-list files."""
    path = path or default_config_path()
    env = _ReadEnv(os.environ if env is None else env)
    located = load_yaml(path, env)
    monitor = validate(MonitorConfig, located, base=path.parent)
    watchlists: list[WatchlistConfig] = []
    terms: dict[str, list[str]] = dict(monitor.terms)
    files: list[Path] = []
    places = _Places()
    places.add_terms(monitor.terms, path, located)
    if isinstance(monitor.watchlists, str):
        for file in _watchlist_files(monitor.watchlists, path, located):
            files.append(file)
            loaded, file_terms = load_watchlist_file(file, env, places)
            watchlists.extend(loaded)
            _merge_terms(terms, file_terms, places.terms)
    else:
        watchlists = list(monitor.watchlists)
        places.add_watchlists(watchlists, path, located)
    config = Config(
        path,
        monitor,
        tuple(watchlists),
        terms,
        tuple(files),
        places.watchlists,
        places.terms,
        places.queries,
        channel_lines={
            name: (str(path), located.line_of(("channels", name))) for name in monitor.channels
        },
        env_refs=dict(env.read),
        example_lines=places.examples,
        unfolded_queries=places.unfolded,
        term_entry_lines=places.term_entries,
    )
    _check_references(config, located)
    return config


Place = tuple[str, int | None]  # (file, line)
Lines = dict[str, Place]  # name -> (file, line)


@dataclass
class _Places:
    """Where each named part of the config is written, gathered file by file (see the
    fields of Config that take them)."""

    watchlists: Lines = field(default_factory=dict)
    queries: Lines = field(default_factory=dict)
    examples: dict[tuple[str, str, int], Place] = field(default_factory=dict)
    unfolded: dict[str, str] = field(default_factory=dict)
    terms: Lines = field(default_factory=dict)
    term_entries: dict[tuple[str, int], Place] = field(default_factory=dict)

    def add_watchlists(
        self, watchlists: Sequence[WatchlistConfig], file: Path, located: LocatedYaml
    ) -> None:
        """Each watch-list's line, its query's and its examples', and each folded
        (``>-``) query as its lines are in the file."""
        for i, w in enumerate(watchlists):
            self.watchlists[w.name] = (str(file), located.line_of(("watchlists", i)))
            self.queries[w.name] = (str(file), located.line_of(("watchlists", i, "query")))
            for kind in ("match", "no_match"):
                for j in range(len(getattr(w.examples, kind))):
                    key = ("watchlists", i, "examples", kind, j)
                    self.examples[(w.name, kind, j)] = (str(file), located.line_of(key))
            text = located.unfolded.get(("watchlists", i, "query"))
            if text is not None:
                self.unfolded[w.name] = text

    def add_terms(self, terms: TermSets, file: Path, located: LocatedYaml) -> None:
        """Each term set's line, and each of its entries'."""
        for name, entries in terms.items():
            self.terms[name] = (str(file), located.line_of(("terms", name)))
            for i in range(len(entries)):
                self.term_entries[(name, i)] = (str(file), located.line_of(("terms", name, i)))


def load_watchlist_file(
    file: Path, env: Mapping[str, str] | None, places: _Places
) -> tuple[list[WatchlistConfig], TermSets]:
    """Watch-lists and term sets of one file; where each is written goes to ``places``."""
    located = load_yaml(file, env)
    if located.data is None:
        return [], {}
    if isinstance(located.data, list):
        located.data = {"watchlists": located.data}
        located.lines = {("watchlists", *k): v for k, v in located.lines.items()}
    parsed = validate(WatchlistFileConfig, located, base=file.parent)
    places.add_watchlists(parsed.watchlists, file, located)
    places.add_terms(parsed.terms, file, located)
    return list(parsed.watchlists), dict(parsed.terms)


def _watchlist_files(pattern: str, config_path: Path, located: LocatedYaml) -> list[Path]:
    """The files ``watchlists:`` names; a glob that matches none is an error like a missing
    file, not a daemon that quietly watches for nothing."""
    full = pattern if os.path.isabs(pattern) else str(config_path.parent / pattern)
    if glob.has_magic(full):
        found = [Path(p) for p in sorted(glob.glob(full))]
        if not found:
            raise located.error(f"watchlists: no file matches {full}", ("watchlists",))
        return found
    if not os.path.exists(full):
        raise located.error(f"watchlists: no such file {full}", ("watchlists",))
    return [Path(full)]


def _merge_terms(terms: dict[str, list[str]], new: TermSets, lines: Lines) -> None:
    for name, values in new.items():
        if name in terms:
            file, line = lines[name]
            raise ConfigError(f"term set {name!r} is defined twice", file=file, line=line)
        terms[name] = values


def validate(model: type[M], located: LocatedYaml, *, base: Path) -> M:
    """Validate YAML data against ``model``; the first problems become one ConfigError."""
    data = located.data if located.data is not None else {}
    try:
        return model.model_validate(data, context={"base": base})
    except ValidationError as exc:
        raise _config_error(exc, located) from None


def _config_error(exc: ValidationError, located: LocatedYaml) -> ConfigError:
    problems = []
    first_line: int | None = None
    for error in exc.errors()[:5]:
        loc = tuple(error["loc"])
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc = (*loc, "type")
        path, shown = _locate(loc, located, names_key=error["type"] in _KEY_ERRORS)
        line = located.line_of(path)
        first_line = first_line if first_line is not None else line
        message = _humane(error)
        problems.append((line, f"{dotted(shown)}: {message}"))
    if len(problems) == 1:
        return ConfigError(problems[0][1], file=located.file, line=problems[0][0])
    text = problems[0][1] + "".join(
        f"\n{located.file}:{line}: {message}" for line, message in problems[1:]
    )
    return ConfigError(text, file=located.file, line=first_line)


# Errors about a key the YAML lacks: the last part of their ``loc`` is that key.
_KEY_ERRORS = ("missing", "union_tag_not_found")


def _locate(loc: KeyPath, located: LocatedYaml, *, names_key: bool) -> tuple[KeyPath, KeyPath]:
    """Drop the union tags pydantic puts into ``loc``; keep a trailing missing key when
    the error ``names_key`` (else a trailing tag, after a model's own check, would be
    shown as a key: ``channels.desk.smtp``)."""
    path: list[str | int] = []
    for i, part in enumerate(loc):
        part = _yaml_key(tuple(path), part, located)
        if (*path, part) in located.lines:
            path.append(part)
        elif i == len(loc) - 1 and names_key:
            return tuple(path), (*path, part)
    return tuple(path), tuple(path)


def _yaml_key(path: KeyPath, part: str | int, located: LocatedYaml) -> str | int:
    """The key YAML built that ``part`` of a pydantic ``loc`` stands for: pydantic names a
    key that is not a string or an int by its repr (``'None'`` for ``~``), and without the
    key itself the error would be located at the mapping's first line."""
    if (*path, part) in located.lines or not isinstance(part, str):
        return part
    for known in located.lines:
        if len(known) == len(path) + 1 and known[: len(path)] == path:
            key = known[-1]
            if not isinstance(key, str | int) and repr(key) == part:
                return key
    return part


def _humane(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_invalid":
        context = error.get("ctx", {})
        return (
            f"unknown type {context.get('tag')!r} (expected one of {context.get('expected_tags')})"
        )
    if kind == "union_tag_not_found":
        return "needs a 'type' key"
    # pydantic's own words name its classes ("a valid dictionary or instance of
    # ExamplesConfig"): said in YAML's terms, with what was found (never its value,
    # which may be a secret).
    if kind in ("model_type", "dict_type"):
        return f"expected a mapping (key: value), not {_yaml_kind(error.get('input'))}"
    if kind == "list_type":
        return (
            "expected a list ([a, b], or lines starting with '- '), "
            f"not {_yaml_kind(error.get('input'))}"
        )
    if kind == "string_pattern_mismatch" and error.get("ctx", {}).get("pattern") == _NAME:
        return "not a name: letters, digits, '.', '_' and '-', starting with a letter or digit"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _yaml_kind(value: Any) -> str:
    """What a YAML value is, in YAML's words."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "a value of another kind"


def _check_references(config: Config, located: LocatedYaml) -> None:
    monitor = config.monitor
    _unique([s.name for s in monitor.sources], "source", located, "sources")
    _unique([d.name for d in monitor.digests], "digest", located, "digests")
    names = [w.name for w in config.watchlists]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            file, line = config.watchlist_location(name)
            raise ConfigError(f"watch-list {name!r} is defined twice", file=file, line=line)
        seen.add(name)
    for watchlist in config.watchlists:
        for channel in watchlist.channels:
            if channel not in monitor.channels:
                file, line = config.watchlist_location(watchlist.name)
                raise ConfigError(
                    f"watch-list {watchlist.name!r}: unknown channel {channel!r}",
                    file=file,
                    line=line,
                )
    for i, digest in enumerate(monitor.digests):
        for j, channel in enumerate(digest.channels):
            if channel not in monitor.channels:
                path: KeyPath = ("digests", i, "channels", j)
                raise located.error(f"{dotted(path)}: unknown channel {channel!r}", path)
        for j, name in enumerate(digest.watchlists):
            if name not in seen:
                path = ("digests", i, "watchlists", j)
                raise located.error(f"{dotted(path)}: unknown watch-list {name!r}", path)
        if not config.covered_by(digest):
            raise located.error(
                f"digests[{i}]: digest {digest.name!r} would collect no watch-list: name them "
                "in its watchlists, or give them alert: digest or both",
                ("digests", i),
            )
    for j, channel in enumerate(monitor.on_source_error):
        if channel not in monitor.channels:
            path = ("on_source_error", j)
            raise located.error(f"{dotted(path)}: unknown channel {channel!r}", path)


def _unique(names: list[str], what: str, located: LocatedYaml, key: str) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise located.error(f"{key}[{i}].name: {what} {name!r} is defined twice", (key, i))
        seen.add(name)
