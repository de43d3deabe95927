"""A feed's URLs as its cursor keeps them: fit to lie at rest in the database.

The cursor (table source_state) is written at every poll, to an SQLite file or a shared
PostgreSQL, and so to their backups. A feed's URL may carry a secret the operator kept
out of the config file (``https://host/rss?token=${TOKEN}``, ``/feeds/${TOKEN}/rss``,
``https://reader:${FEED_PW}@host/rss``), and so may the URL the feed moved to. Stored, a
URL has no ``user:password@`` and each secret value the config took from the
environment is its ``${NAME}`` again. Read back, each ``${NAME}`` is the value it has
now (a rotated token polls the same feed, and does not restart it) and the configured
URL's user:password goes with a request to its server, as its redirects carried it.
A cursor written before held plain URLs: read through ``stored`` too, they compare
equal to the new form, and the next poll writes them in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from urllib.parse import urlsplit, urlunsplit

import httpx

from monitor.sources.http import with_userinfo_of


class CursorUrls:
    """The URLs of the feed configured at ``configured``, written and read through
    ``secrets`` (each ``${NAME}`` of the config's environment and its value)."""

    def __init__(self, configured: str, secrets: Mapping[str, str]) -> None:
        self.configured = configured
        names = {
            spelling: f"${{{name}}}" for name, v in secrets.items() for spelling in _spelled(v)
        }
        # The longest first: a secret that holds another is named as itself.
        self._names = sorted(names.items(), key=lambda pair: len(pair[0]), reverse=True)
        self._values = {f"${{{name}}}": value for name, value in secrets.items()}

    def stored(self, url: str) -> str:
        """``url`` as a cursor keeps it: no user:password, each secret its ``${NAME}``."""
        text = _without_userinfo(url)
        for spelling, name in self._names:
            text = text.replace(spelling, name)
        return text

    def revealed(self, stored: str) -> str:
        """A stored URL (or an older cursor's plain one) with each ``${NAME}`` its value
        now, still without user:password: a base for relative links."""
        text = self.stored(stored)
        for name, value in self._values.items():
            text = text.replace(name, value)
        return text

    def restored(self, stored: str) -> str:
        """A stored URL to request: ``revealed``, with the configured URL's user:password
        when on its server."""
        return with_userinfo_of(self.configured, self.revealed(stored))

    def same(self, url: str, other: str) -> bool:
        """Whether two URLs, stored or not, name the same feed whatever the secrets'
        values and user:password."""
        return self.stored(url) == self.stored(other)


def _without_userinfo(url: str) -> str:
    """``url`` without ``user:password@``, its other characters as they were (a parsed and
    written URL would escape the braces of a ``${NAME}`` in its path)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _spelled(value: str) -> set[str]:
    """``value`` as a URL may spell it: as configured, and as a URL written by httpx (a
    redirect's target) escapes it in a path or a query."""
    spellings = {value}
    with suppress(httpx.InvalidURL):
        spellings.add(httpx.URL("http://h/").copy_with(path="/" + value).raw_path.decode()[1:])
    with suppress(httpx.InvalidURL):
        spellings.add(httpx.URL("http://h/?" + value).query.decode())
    return {spelling for spelling in spellings if spelling}
