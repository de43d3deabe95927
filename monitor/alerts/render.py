"""Rendering alerts and digests with Jinja2 templates shipped in the package.

A ``templates`` folder in the config overrides any template by name. HTML templates
are autoescaped; feed HTML reaches them only sanitised (see text.sanitize_html).
Jinja2 is loaded with the first template: a run that renders nothing never pays for it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache, cached_property, lru_cache
from itertools import chain, cycle
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from monitor.errors import ConfigError, RenderError
from monitor.model import Message, StoredItem
from monitor.text import cap

if TYPE_CHECKING:
    from jinja2 import Template, TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

BODY_EXCERPT = 600
TEMPLATE_NAMES = (
    "instant.subject.j2",
    "instant.txt.j2",
    "instant.html.j2",
    "digest.subject.j2",
    "digest.txt.j2",
    "digest.html.j2",
)
PAYLOAD_VERSION = 1


@dataclass(frozen=True, slots=True)
class AlertView:
    """One story for one watch-list, as templates see it."""

    watchlist: str
    description: str
    item: StoredItem
    hits: dict[str, Any]
    also_reported_by: tuple[str, ...] = ()

    @property
    def excerpt(self) -> str:
        return cap(self.item.body, BODY_EXCERPT)

    @property
    def loose_terms(self) -> tuple[str, ...]:
        """The matched terms the hit found inside longer words, to be highlighted
        wherever they stand (monitor.alerts.route.inside_words)."""
        return tuple(self.hits.get("loose", ()))


@dataclass(frozen=True, slots=True)
class DigestSection:
    watchlist: str
    stories: tuple[AlertView, ...]
    held_back: tuple[int, ...] = ()  # the story ids past ``max_items``, not shown

    @property
    def more(self) -> int:
        """How many stories of this section are held back ("… and N more")."""
        return len(self.held_back)


@dataclass(frozen=True, slots=True)
class DigestView:
    name: str
    start: datetime
    end: datetime
    sections: tuple[DigestSection, ...]
    quiet: tuple[str, ...] = field(default=())  # watch-lists with nothing new

    @property
    def total(self) -> int:
        """Stories in the digest: one that several watch-lists matched counts once,
        whether a section shows it or holds it back."""
        shown = {alert.item.story_id for s in self.sections for alert in s.stories}
        return len(shown.union(*(s.held_back for s in self.sections)))


SAMPLE_ITEM = StoredItem(
    id=1,
    story_id=1,
    source="sample",
    key="guid:sample",
    title="Seoul and Tokyo extend GSOMIA",
    body="Seoul and Tokyo agreed on Friday to extend GSOMIA, their intelligence pact.",
    published=datetime(2026, 1, 1, tzinfo=UTC),
    fetched_at=datetime(2026, 1, 1, tzinfo=UTC),
    url="https://example.org/gsomia",
    html="<p>Seoul and Tokyo agreed on Friday to extend <b>GSOMIA</b>.</p>",
    author="Desk",
)
SAMPLE_ALERT = AlertView(
    "sample-watchlist",
    "What `monitor check` renders the templates with",
    SAMPLE_ITEM,
    {
        "clause": "GSOMIA",
        "terms": ["GSOMIA"],
        "snippets": ["Seoul and Tokyo agreed on Friday to extend GSOMIA, their"],
        "spans": [["title", 23, 29, "GSOMIA"]],
        "loose": [],
    },
    also_reported_by=("another-outlet",),
)


class Renderer:
    """Renders Messages; built once by the composition root."""

    def __init__(self, *, timezone: str = "UTC", templates: Path | None = None) -> None:
        self.zone = ZoneInfo(timezone)
        self.templates = templates
        self._loaded: dict[str, Template] = {}

    @cached_property
    def shipped(self) -> Renderer:
        """This renderer without the config's templates (itself when it has none): what
        renders an alert that an override fails on. `monitor check` renders samples, not
        every item, and a broken override must hold no alert back."""
        return self if self.templates is None else Renderer(timezone=self.zone.key)

    @cached_property
    def env(self) -> ImmutableSandboxedEnvironment:
        from jinja2 import (
            ChoiceLoader,
            FileSystemLoader,
            PackageLoader,
            StrictUndefined,
            select_autoescape,
        )

        loaders: list[Any] = [PackageLoader("monitor", "alerts/templates")]
        if self.templates is not None:
            loaders.insert(0, FileSystemLoader(str(self.templates)))
        env = _sandbox()(
            loader=ChoiceLoader(loaders),
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            # Read once: a reload (SIGHUP) builds a new renderer, so edited templates are
            # picked up then, without a stat of the template file for every alert.
            auto_reload=False,
        )
        env.filters["localtime"] = self.localtime
        env.filters["highlight"] = highlight
        env.filters["emphasise"] = emphasise
        env.filters["web_url"] = web_url
        return env

    def check(self) -> list[ConfigError]:
        """Every template loads and compiles (`monitor check`, and the start of a run
        with a ``templates`` folder); a syntax error names the template's file and line.
        Then a sample alert and digest are rendered: a name the templates do not have
        (``{{ item.titel }}``) fails only when rendering, and would fail every alert."""
        from jinja2 import TemplateError, TemplateSyntaxError

        problems = []
        for name in TEMPLATE_NAMES:
            try:
                self.env.get_template(name)
            except TemplateSyntaxError as exc:
                problems.append(
                    ConfigError(
                        f"template {name}: {exc.message}", file=exc.filename, line=exc.lineno
                    )
                )
            except TemplateError as exc:
                problems.append(ConfigError(f"template {name}: {exc}"))
            except UnicodeDecodeError as exc:  # an override saved in another encoding
                overrides = self.templates or Path()  # the shipped templates are UTF-8
                problems.append(
                    ConfigError(
                        f"template {name}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                        file=str(overrides / name),
                        line=exc.object.count(b"\n", 0, exc.start) + 1,
                    )
                )
        if problems:
            return problems
        folder = None if self.templates is None else str(self.templates)
        for render in (self._sample_alert, self._sample_digest):
            try:
                render()
            except RenderError as exc:
                problems.append(ConfigError(f"{exc} (rendering a sample)", file=folder))
        return problems

    def _sample_alert(self) -> Message:
        return self.render_alert(SAMPLE_ALERT, "sample.check")

    def _sample_digest(self) -> Message:
        sample = DigestView(
            "sample",
            SAMPLE_ITEM.fetched_at,
            SAMPLE_ITEM.fetched_at,
            (DigestSection(SAMPLE_ALERT.watchlist, (SAMPLE_ALERT,), held_back=(2,)),),
            quiet=("quiet-watchlist",),
        )
        return self.render_digest(sample, "sample.check")

    def localtime(self, moment: datetime) -> str:
        return _local_time(moment, self.zone)

    def _render(self, name: str, **context: Any) -> str:
        try:
            return self._template(name).render(**context)
        except _template_error() as exc:  # evaluated only for an exception: jinja2 is loaded
            raise RenderError(f"template {name}: {exc}") from exc

    def _template(self, name: str) -> Template:
        """Template ``name``, loaded once, with its globals in a plain dict.

        Jinja2 gives a template its globals as a ChainMap over the environment's, which
        every render copies key by key into the new context, and looks the template up
        through its cache and loader for every render: together more than a tenth of the
        time an alert took to render. The environment's globals do not change after it
        is built (filters are not globals), so a copy holds the same.
        """
        found = self._loaded.get(name)
        if found is None:
            found = self.env.get_template(name)
            found.globals = dict(found.globals)
            self._loaded[name] = found
        return found

    def render_alert(self, alert: AlertView, key: str, *, html: bool = True) -> Message:
        """``html``: render the HTML too (see ``Channel.wants_html``)."""
        context = {"alert": alert, "item": alert.item, "hits": alert.hits}
        return Message(
            delivery_key=key,
            subject=self._render("instant.subject.j2", **context).strip(),
            text=self._render("instant.txt.j2", **context),
            html=self._render("instant.html.j2", **context) if html else None,
            payload=alert_payload(alert, key),
        )

    def render_digest(self, digest: DigestView, key: str, *, html: bool = True) -> Message:
        context = {"digest": digest}
        return Message(
            delivery_key=key,
            subject=self._render("digest.subject.j2", **context).strip(),
            text=self._render("digest.txt.j2", **context),
            html=self._render("digest.html.j2", **context) if html else None,
            payload=digest_payload(digest, key),
        )

    def check_string(self, source: str) -> None:
        """Compile a custom template from config, so a syntax error shows at load time."""
        from jinja2 import TemplateError

        try:
            self.env.from_string(source)
        except TemplateError as exc:
            raise RenderError(f"custom template: {exc}") from exc

    def render_string(self, source: str, **context: Any) -> str:
        """A custom template from config (webhook bodies), in the same sandbox."""
        from jinja2 import TemplateError

        try:
            return self.env.from_string(source).render(**context)
        except TemplateError as exc:
            raise RenderError(f"custom template: {exc}") from exc


@lru_cache(maxsize=256)
def _local_time(moment: datetime, zone: ZoneInfo) -> str:
    """``moment`` as a reader there sees it, once for both parts of an alert: equal
    datetimes are the same instant, which has one local time."""
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


@cache
def _template_error() -> type[TemplateError]:
    from jinja2 import TemplateError

    return TemplateError


@cache
def _sandbox() -> type[ImmutableSandboxedEnvironment]:
    """Jinja2's immutable sandbox, remembering its verdict on each (type, attribute).

    The sandbox decides whether a template may read an attribute from the object's type
    (functions, methods, frames, the mutable containers) and the attribute's name alone,
    and decided it anew at every read: a quarter of the time of rendering an alert.

    A plain dict's key read as an attribute (``hits.terms``) is looked up as Jinja2 does
    it, without the AttributeError its first try raised: a dict has no attributes but
    its type's.
    """
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class RememberingSandbox(ImmutableSandboxedEnvironment):
        verdicts: dict[tuple[type, str], bool]

        def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
            key = (type(obj), attr)
            verdict = self.verdicts.get(key)
            if verdict is None:
                verdict = self.verdicts[key] = super().is_safe_attribute(obj, attr, value)
            return verdict

        def getattr(self, obj: Any, attribute: str) -> Any:
            if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
                if attribute in obj:
                    return obj[attribute]
                return self.undefined(obj=obj, name=attribute)
            return super().getattr(obj, attribute)

    RememberingSandbox.verdicts = {}
    return RememberingSandbox


_DICT_ATTRIBUTES = frozenset(dir(dict))


def web_url(url: str | None) -> str | None:
    """``url`` if it is an http(s) link, else None: a feed's ``javascript:`` or ``data:``
    link must not become a live link in a mail or a chat message."""
    if url and urlsplit(url).scheme.lower() in ("http", "https"):
        return url
    return None


def highlight(snippet: str, terms: Sequence[str], loose: Sequence[str] = ()) -> Markup:
    """The snippet, HTML-escaped, with matched terms (the text of the hit's spans)
    wrapped in <mark> where they stand as the hit found them (see term_pattern); those
    in ``loose`` (found inside longer words: AlertView.loose_terms) wherever they are."""
    pieces = _matched_pieces(snippet, terms, loose)
    if pieces is None:
        return escape(snippet)
    if _OPEN in snippet or _CLOSE in snippet:
        marked = (
            f"<mark>{escape(piece)}</mark>" if odd else str(escape(piece))
            for odd, piece in zip(cycle((False, True)), pieces)
        )
        return Markup("".join(marked))  # noqa: S704 - every piece above is escaped
    # Each term between two characters that escaping leaves alone, then one escape.
    tagged = "".join(chain.from_iterable(zip(pieces, cycle((_OPEN, _CLOSE)))))[:-1]
    escaped = str(escape(tagged))
    return Markup(escaped.replace(_OPEN, "<mark>").replace(_CLOSE, "</mark>"))  # noqa: S704


_OPEN, _CLOSE = "\x02", "\x03"


def emphasise(snippet: str, terms: Sequence[str], loose: Sequence[str] = ()) -> str:
    """The snippet for a plain-text alert, matched terms between asterisks (*GSOMIA*),
    the emphasis mail readers and people read in plain text; marked as ``highlight``
    marks them."""
    pieces = _matched_pieces(snippet, terms, loose)
    if pieces is None:
        return snippet
    return "".join(
        f"*{piece}*" if odd else piece for odd, piece in zip(cycle((False, True)), pieces)
    )


def _matched_pieces(snippet: str, terms: Sequence[str], loose: Sequence[str]) -> list[str] | None:
    """``_term_pieces`` for the hit's matched terms, or None when it has none to mark."""
    words = sorted({t for t in terms if t and t.strip()}, key=lambda w: (-len(w), w))
    if not words:
        return None
    return _term_pieces(snippet, [(word, word in loose) for word in words])


def _term_pieces(snippet: str, words: list[tuple[str, bool]]) -> list[str]:
    """text, term, text, term, ..., text: the longer terms first (longest first, so a
    longer term wins where two start together), then single characters in the text
    between them.

    A catch-all watch-list (``/./``) brings a new set of single characters with every
    story: compiling a pattern for each set was most of the time an alert took to
    render, so each character has its own pattern, compiled once.
    """
    longer = tuple(word for word in words if len(word[0]) > 1)
    singles = [_single_pattern(*word) for word in words if len(word[0]) == 1]
    # split() with one group: text, term, text, term, ..., text.
    pieces = _terms_pattern(longer).split(snippet) if longer else [snippet]
    if not singles:
        return pieces
    out: list[str] = []
    for at, piece in enumerate(pieces):
        if at % 2:
            out.append(piece)
            continue
        starts = sorted({found.start() for pattern in singles for found in pattern.finditer(piece)})
        last = 0
        for start in starts:
            out += [piece[last:start], piece[start]]
            last = start + 1
        out.append(piece[last:])
    return out


@lru_cache(maxsize=256)
def _terms_pattern(words: tuple[tuple[str, bool], ...]) -> re.Pattern[str]:
    return re.compile("(" + "|".join(term_pattern(*word) for word in words) + ")")


@lru_cache(maxsize=4096)
def _single_pattern(character: str, loose: bool) -> re.Pattern[str]:
    return re.compile(term_pattern(character, loose))


_LATIN_WORD = "A-Za-z0-9"


def term_pattern(term: str, loose: bool = False) -> str:
    """A matched term as the hit found it: its own spelling (an =SCM hit is not "scm"),
    and, unless ``loose``, a Latin-script edge not inside a longer word ("SCM" is not in
    "SCMP", "Korea" not in "Korean"). A Hangul or Han term matched inside its word, and
    is marked there."""
    if loose:
        return re.escape(term)
    before = f"(?<![{_LATIN_WORD}])" if latin_word_char(term[0]) else ""
    after = f"(?![{_LATIN_WORD}])" if latin_word_char(term[-1]) else ""
    return before + re.escape(term) + after


def latin_word_char(character: str) -> bool:
    """A letter or digit of ASCII: what a Latin-script word is made of, here."""
    return character.isascii() and character.isalnum()


def zulu(moment: datetime) -> str:
    """A UTC moment as the webhook bodies write it: ISO 8601 with a Z."""
    return moment.isoformat().replace("+00:00", "Z")


def _item_payload(item: StoredItem) -> dict[str, Any]:
    return {
        "source": item.source,
        "guid": item.key,
        "url": item.url,
        "title": item.title,
        "published": zulu(item.published),
        "excerpt": cap(item.body, BODY_EXCERPT),
    }


def alert_payload(alert: AlertView, key: str) -> dict[str, Any]:
    """The documented webhook body for an instant alert (schema version 1)."""
    return {
        "version": PAYLOAD_VERSION,
        "type": "alert",
        "id": key,
        "watchlist": alert.watchlist,
        "item": _item_payload(alert.item),
        "match": {
            "clause": alert.hits.get("clause", ""),
            "terms": list(alert.hits.get("terms", [])),
            "snippets": list(alert.hits.get("snippets", [])),
        },
        "also_reported_by": list(alert.also_reported_by),
    }


def digest_payload(digest: DigestView, key: str) -> dict[str, Any]:
    """The documented webhook body for a digest (schema version 1)."""
    return {
        "version": PAYLOAD_VERSION,
        "type": "digest",
        "id": key,
        "digest": digest.name,
        "start": zulu(digest.start),
        "end": zulu(digest.end),
        "sections": [
            {
                "watchlist": section.watchlist,
                "items": [_item_payload(story.item) for story in section.stories],
                "more": section.more,
            }
            for section in digest.sections
        ],
        "quiet": list(digest.quiet),
    }
