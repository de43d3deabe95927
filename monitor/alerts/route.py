"""Routing: which watch-list hits become matches, and which matches become deliveries.

Decisions only; the store writes them in the same transaction as the item.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from monitor.alerts.render import latin_word_char
from monitor.config import WatchlistConfig
from monitor.model import Hit, Item, StoredItem
from monitor.store.repo import IngestedItem, PlannedDelivery, PlannedMatch


def hit_record(hit: Hit) -> dict[str, Any]:
    """The JSON kept with a match: what fired and the evidence."""
    return {
        "clause": hit.clause,
        "terms": list(hit.terms),
        "snippets": list(hit.snippets),
        "spans": [[s.field, s.start, s.end, s.term] for s in hit.spans],
    }


def inside_words(hit: Hit, item: Item | StoredItem) -> list[str]:
    """The matched terms the hit found inside a longer word of ``item`` (a regex's:
    /nuclear/ in "Antinuclear", any letter for /./): alerts highlight those wherever
    they stand (see monitor.alerts.render.highlight). Decided now, on the text matched:
    the item may be edited before its alert is rendered."""
    found = []
    for span in hit.spans:
        text: str = getattr(item, span.field, "") or ""
        edges = text[span.start - 1 : span.start] + text[span.end : span.end + 1]
        if any(map(latin_word_char, edges)):
            found.append(span.term)
    return list(dict.fromkeys(found))


def plan_matches(
    ingested: IngestedItem,
    hits: Sequence[Hit],
    watchlists: Mapping[str, WatchlistConfig],
    *,
    silent: bool = False,
) -> list[PlannedMatch]:
    """Matches for the hits on a new or updated item.

    An update is matched per the watch-list's ``on_update``: ``ignore`` skips it,
    ``new_match`` (default) lets the story/watch-list unique key drop what already
    matched, ``always`` gives the update its own revision so it alerts again.
    A ``silent`` match is stored (and shows in replays) but sends nothing: backfill.
    """
    planned: list[PlannedMatch] = []
    for hit in hits:
        watchlist = watchlists.get(hit.watchlist)
        if watchlist is None:
            continue
        updated = ingested.status == "updated"
        if updated and watchlist.on_update == "ignore":
            continue
        revision = ingested.item.content_hash if updated and watchlist.on_update == "always" else ""
        deliveries: tuple[PlannedDelivery, ...] = ()
        if not silent and watchlist.alert in ("instant", "both"):
            deliveries = tuple(PlannedDelivery(channel=name) for name in watchlist.channels)
        planned.append(
            PlannedMatch(
                watchlist=watchlist.name,
                hits={**hit_record(hit), "loose": inside_words(hit, ingested.item)},
                revision=revision,
                silent=silent,
                deliveries=deliveries,
            )
        )
    return planned
