"""Identity of items and stories.

Three keys, three jobs:

- ``item_key``: an item's identity inside its source. GUID first, then canonical URL,
  then content, because some feeds reuse one GUID for every entry and some have no
  links; a per-source ``identity`` setting overrides the order.
- ``content_hash``: changes when the text changes, so an edited item is an update.
- ``fingerprint``: the same story across outlets, from its normalised words.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Literal

from monitor.text import canonical_url

Identity = Literal["auto", "guid", "link", "content"]

_WORDS = re.compile(r"\w+", re.UNICODE)


def normalised_words(text: str) -> list[str]:
    """Lower-cased, accent-folded word tokens: what stays equal across republishing."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return _WORDS.findall(stripped)


def _digest(*parts: str) -> str:
    hasher = hashlib.blake2b(digest_size=16)
    for part in parts:
        hasher.update(part.encode("utf-8", "surrogatepass"))
        hasher.update(b"\x1f")
    return hasher.hexdigest()


def content_hash(title: str, body: str) -> str:
    """Changes whenever the words of the title or body change."""
    return _digest(" ".join(normalised_words(title)), " ".join(normalised_words(body)))


def fingerprint(title: str, body: str) -> str:
    """Same story, same fingerprint: the normalised body (or title when there is none)."""
    words = normalised_words(body) or normalised_words(title)
    return "fp:" + _digest(" ".join(words))


def item_key(
    *,
    guid: str | None,
    link: str | None,
    title: str,
    body: str,
    identity: Identity = "auto",
) -> str:
    """The item's identity inside its source; see the module docstring for the order."""
    url = canonical_url(link) if link else None
    if identity == "guid" and guid:
        return "guid:" + guid.strip()
    if identity == "link" and url:
        return "url:" + url
    if identity == "content":
        return "content:" + content_hash(title, body)
    if identity == "auto":
        if guid and guid.strip():
            return "guid:" + guid.strip()
        if url:
            return "url:" + url
    return "content:" + content_hash(title, body)
