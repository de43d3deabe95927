"""Watch-lists: the query language, one compiled index for all lists, and explanations.

``compile_watchlists`` parses every query and term set when config loads (errors name the
watch-list and column); ``WatchlistIndex.match`` returns hits with spans and snippets;
``run_examples`` checks the examples each watch-list carries.
"""

from monitor.watchlists.examples import run_examples
from monitor.watchlists.index import WatchlistIndex, compile_watchlists

__all__ = ["WatchlistIndex", "compile_watchlists", "run_examples"]
