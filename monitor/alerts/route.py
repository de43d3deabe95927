"""Routing: which watch-list hits become matches, and which matches become deliveries.

Decisions only; the store writes them in the same transaction as the item.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from monitor.config import WatchlistConfig
from monitor.model import Hit
from monitor.store.repo import IngestedItem, PlannedDelivery, PlannedMatch


def hit_record(hit: Hit) -> dict[str, Any]:
    """The JSON kept with a match: what fired and the evidence."""
    return {
        "clause": hit.clause,
        "terms": list(hit.terms),
        "snippets": list(hit.snippets),
        "spans": [[s.field, s.start, s.end, s.term] for s in hit.spans],
    }


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
                hits=hit_record(hit),
                revision=revision,
                silent=silent,
                deliveries=deliveries,
            )
        )
    return planned
