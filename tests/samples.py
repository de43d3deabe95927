"""Sample news and configs for alert tests.

- ``write_document``: a news file in the seeds' shape (title, date line, paragraphs) for
  a ``folder`` source;
- ``write_config`` / ``open_app``: a whole App on a SQLite file in a temporary folder;
- ``stored_item`` / ``alert_view`` / ``digest_view``: what templates and channels get,
  without a database.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from monitor.alerts.render import AlertView, DigestSection, DigestView
from monitor.app import App, build_app
from monitor.config import load_config
from monitor.model import StoredItem

PUBLISHED = datetime(2019, 11, 14, 6, 48, tzinfo=UTC)

SEED_BODY = (
    "Also high on the agenda is South Korea's decision to scrap an intelligence-sharing "
    "pact with Japan known as GSOMIA, as relations between the two U.S. allies sink to "
    "their lowest in decades.\n\n"
    "Milley was set to raise the troop cost sharing issue in his meeting with his South "
    "Korean counterpart."
)

WATCHLISTS: list[dict[str, Any]] = [
    {"name": "gsomia", "query": 'GSOMIA OR 지소미아 OR "intelligence sharing pact"'},
    {"name": "cost-sharing", "query": '"cost sharing" OR 방위비'},
]


def write_document(
    folder: Path, name: str, title: str, body: str = SEED_BODY, published: datetime = PUBLISHED
) -> Path:
    """A news document as the seeds are written: title, a date line, paragraphs."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.txt"
    stamp = published.astimezone(UTC).strftime("%d %B %Y %H:%M")
    path.write_text(f"{title}\n\n# {stamp} (UTC +00:00)\n\n{body}\n", encoding="utf-8")
    return path


def write_config(
    folder: Path,
    *,
    channels: Mapping[str, Mapping[str, Any]],
    watchlists: Sequence[Mapping[str, Any]] | None = None,
    digests: Sequence[Mapping[str, Any]] = (),
    **settings: Any,
) -> Path:
    """``folder/monitor.yaml``: SQLite in ``folder``, a folder source on ``folder/news``,
    and every watch-list alerting every channel unless ``watchlists`` says otherwise."""
    if watchlists is None:
        watchlists = [{**w, "channels": list(channels)} for w in WATCHLISTS]
    config = {
        "database": f"sqlite:///{folder}/db.sqlite",
        "timezone": "UTC",
        "sources": [{"name": "news", "type": "folder", "path": str(folder / "news")}],
        "watchlists": list(watchlists),
        "channels": {name: dict(channel) for name, channel in channels.items()},
        "digests": list(digests),
        "delivery": {"retry_base": "1m", "retry_max": "10m", "batch": 50},
        **settings,
    }
    path = folder / "monitor.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), "utf-8")
    return path


@contextmanager
def open_app(config_path: Path) -> Iterator[App]:
    """The App for a config file; closed (channels, database) on the way out."""
    app = build_app(load_config(config_path))
    try:
        yield app
    finally:
        app.close()


def stored_item(
    title: str = "U.S. defence officials converge in Seoul to discuss troop costs, Japan pact",
    *,
    body: str = SEED_BODY,
    source: str = "yonhap",
    item_id: int = 1,
    story_id: int = 1,
    url: str | None = "https://news.example.org/2019/11/14/seoul-talks",
    published: datetime = PUBLISHED,
) -> StoredItem:
    return StoredItem(
        id=item_id,
        story_id=story_id,
        source=source,
        key=f"doc:{item_id}",
        title=title,
        body=body,
        published=published,
        fetched_at=published,
        url=url,
    )


def alert_view(
    item: StoredItem | None = None,
    *,
    watchlist: str = "gsomia",
    terms: Sequence[str] = ("GSOMIA",),
    snippets: Sequence[str] = ("an intelligence-sharing pact with Japan known as GSOMIA, as",),
    also: Sequence[str] = (),
) -> AlertView:
    return AlertView(
        watchlist=watchlist,
        description="",
        item=item or stored_item(),
        hits={"clause": " OR ".join(terms), "terms": list(terms), "snippets": list(snippets)},
        also_reported_by=tuple(also),
    )


def digest_view(
    sections: Sequence[DigestSection], *, quiet: Sequence[str] = (), name: str = "morning"
) -> DigestView:
    return DigestView(
        name=name,
        start=datetime(2019, 11, 13, 22, 0, tzinfo=UTC),
        end=datetime(2019, 11, 14, 22, 0, tzinfo=UTC),
        sections=tuple(sections),
        quiet=tuple(quiet),
    )
