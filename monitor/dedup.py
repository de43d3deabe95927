"""Identity of items and stories.

Three keys, three jobs:

- ``item_key``: an item's identity inside its source. GUID first, then canonical URL,
  then content, because some feeds reuse one GUID for every entry and some have no
  links; a per-source ``identity`` setting overrides the order. ``other_keys`` are the
  keys the same item may have been stored under (http or https, www or not).
- ``content_hash``: changes when the text changes, so an edited item is an update
  (``body_hash``: the body's alone, ``headline_hash``: the title's).
- ``fingerprint``: the same story across outlets, from its normalised words (a short
  body, which may be boilerplate, only with the item's own title and key).
"""

from __future__ import annotations

import hashlib
import unicodedata
from functools import cache, lru_cache
from typing import Literal

from monitor.text import canonical_url
from monitor.words import folded_utf8_words, words

Identity = Literal["auto", "guid", "link", "content"]


@cache
def _marks() -> dict[int, None]:
    """Combining marks (canonical combining class > 0), for str.translate to delete: one
    C loop instead of a Python test per character. None lies past U+1FFFF (a test checks);
    built on first use, as the scan takes 30 ms."""
    return dict.fromkeys(c for c in range(0x300, 0x20000) if unicodedata.combining(chr(c)))


def normalised_words(text: str) -> list[str]:
    """Lower-cased, accent-folded word tokens: what stays equal across republishing."""
    folded = text.casefold()
    if not folded.isascii():
        folded = unicodedata.normalize("NFKD", folded).translate(_marks())
    return words(folded)


# A text this long or shorter (a title, most bodies) is one of many kept: a poll's items
# are hashed as they are normalised and again as they are stored (body_hash,
# headline_hash), all of the poll's other texts between. A longer one is one of a few,
# for its own item's hashes: many would hold megabytes.
SHORT_TEXT = 10_000


def _joined_words(text: str) -> bytes:
    """normalised_words joined, in UTF-8 as they are hashed; cached because one item's
    texts are hashed several times."""
    return _short_joined(text) if len(text) <= SHORT_TEXT else _long_joined(text)


def _joined(text: str) -> bytes:
    """See _joined_words. ASCII text is folded and split as bytes in one pass each, where
    casefold, translate, split, join and encode took five."""
    if text.isascii():
        return b" ".join(folded_utf8_words(text))
    return " ".join(normalised_words(text)).encode("utf-8", "surrogatepass")


_short_joined = lru_cache(maxsize=512)(_joined)
_long_joined = lru_cache(maxsize=16)(_joined)


def _digest(*parts: bytes) -> str:
    hasher = hashlib.blake2b(digest_size=16)
    for part in parts:
        hasher.update(part)
        hasher.update(b"\x1f")
    return hasher.hexdigest()


def content_hash(title: str, body: str) -> str:
    """Changes whenever the words of the title or body change."""
    return _digest(_joined_words(title), _joined_words(body))


def body_hash(body: str) -> str:
    """Changes whenever the words of the body change, whatever the title: a source's items
    with one body (a paywall notice under many headlines) are found by it."""
    return _digest(_joined_words(body))


def headline_hash(title: str) -> str:
    """Changes whenever the words of the title change, whatever the body: the stored items
    under a paywall notice's headline are found by it (see ``storyindex``'s headline
    joins)."""
    return _digest(_joined_words(title))


# A body this long names its story: copies under other headlines share it. A shorter one
# is often a feed's boilerplate ("Comments", "Read more", a paywall notice), the same
# under every headline.
STORY_WORDS = 20


def fingerprint(title: str, body: str, key: str) -> str:
    """Same story, same fingerprint: the normalised body when it is long enough to name
    a story; else the title and body of this item (``key``, its identity in its
    source), so that items with a template body or none never pass for each other."""
    if length_in_words(body) >= STORY_WORDS:
        return "fp:" + _digest(_joined_words(body))
    return item_fingerprint(title, body, key)


def item_fingerprint(title: str, body: str, key: str) -> str:
    """The fingerprint of this item alone, for a body that does not name a story: too
    short, or (see ``monitor.store.storyindex``) little but its source's boilerplate."""
    joined_key = key.encode("utf-8", "surrogatepass")
    return "fp:" + _digest(_joined_words(title), _joined_words(body), joined_key)


def length_in_words(text: str) -> int:
    """How many words ``text`` holds. Chinese and Japanese are written without spaces,
    so a run of them is one token: it counts a word for every two characters (Korean
    separates its words with spaces, and counts as written)."""
    if text.isascii():
        # Casefolding ASCII moves no word boundary: the words the fingerprint joins (and
        # caches) count the same, and the text is not split a second time.
        joined = _joined_words(text)
        return joined.count(b" ") + 1 if joined else 0
    tokens = words(text)
    return sum(max(1, len(token) // 2) if _han_or_kana(token[0]) else 1 for token in tokens)


def _han_or_kana(character: str) -> bool:
    return unicodedata.name(character, "").startswith(_HAN_AND_KANA)


_HAN_AND_KANA = ("CJK ", "HIRAGANA", "KATAKANA", "HALFWIDTH KATAKANA")


def other_keys(key: str, *also: str | None) -> tuple[str, ...]:
    """The keys besides ``key`` that one item may have been stored under: ``also`` (see
    ``Item.other_keys``), and for each that is a URL, the URL under the other scheme and
    with or without ``www.``. A site that moves to https (or to its www host) changes
    every link in its feed, and the GUIDs that are its permalinks; taken as new, each
    item would be stored again, and a short one, too short to be known as a copy of its
    story, alerted again."""
    found: dict[str, None] = {}
    for each in (key, *also):
        if each is not None:
            kind, _, value = each.partition(":")
            if kind in ("guid", "url") and value.startswith(("http://", "https://")):
                found.update(dict.fromkeys(f"{kind}:{url}" for url in _url_variants(value)))
            found[each] = None
    found.pop(key)
    return tuple(found)


def _url_variants(url: str) -> list[str]:
    """``url`` under http and https, its host with and without ``www.``."""
    rest = url.split("://", 1)[1]
    host, slash, path = rest.partition("/")
    hosts = [host]
    if "@" not in host:  # user:password@ first: leave such a URL's host as it is
        hosts.append(host.removeprefix("www.") if host.startswith("www.") else "www." + host)
    return [f"{scheme}://{h}{slash}{path}" for scheme in ("http", "https") for h in hosts]


def story_key(key: str, url: str) -> str:
    """The key of another story at ``url`` that its feed gives the name (``key``) of a
    stored one: see ``Store._store_items``."""
    return f"{key} url:{url}"


# A folder document's GUID: its title's words (see sources.documents.document_guid).
DOCUMENT_GUID = "doc:"


def document_file(key: str, origin: str | None) -> str | None:
    """The file an item keyed ``key`` was read from, when its identity is a document's
    title: a file of its own is what tells another document under one recurring title
    ("Security daily brief") from an edit of the stored one (``repo._another_story``)."""
    return origin if key.startswith("guid:" + DOCUMENT_GUID) else None


def file_story_key(key: str, file: str) -> str:
    """The key of another document in ``file`` under the title (``key``) of a stored
    one: see ``story_key``."""
    return f"{key} file:{file}"


def item_key(
    *,
    guid: str | None,
    link: str | None,
    title: str,
    body: str,
    identity: Identity = "auto",
) -> str:
    """The item's identity inside its source; see the module docstring for the order."""
    # A blank GUID names nothing: taken as one, every such item would be one item.
    if identity in ("guid", "auto") and guid and guid.strip():
        return "guid:" + guid.strip()
    if identity in ("link", "auto") and link:
        url = canonical_url(link)  # only when it decides: most feeds have GUIDs
        if url:
            return "url:" + url
    return "content:" + content_hash(title, body)
