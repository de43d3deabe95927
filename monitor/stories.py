"""Near-duplicate stories: MinHash signatures over word shingles, banded for LSH.

Syndicated copies of one story differ in a headline, a byline, a trailing "Read more"
line; their word 3-shingles still overlap heavily. Each item gets a MinHash signature of
``NUM_PERM`` values (the estimated Jaccard similarity of two items is the share of equal
values), cut into ``BANDS`` bands of ``ROWS`` values. Two items whose signatures agree on
a whole band are candidates (the store finds them through an index on band hashes, so
this survives restarts and is a few indexed lookups per item); a candidate is the same
story when the estimated similarity reaches ``THRESHOLD``.

With 16 bands of 3 rows, a pair at Jaccard 0.7 becomes a candidate with probability
0.999, at 0.5 with 0.88, at 0.1 with 0.016. Chosen on Reuters articles and syndicated
copies of them (new headline, dateline, dropped paragraph, house style): 99% of copies
join their original and none of 3,000 unrelated articles merges with another (36
values in 12 bands at 0.5 found 97% and merged one pair of strangers). Items with
fewer than ``MIN_WORDS`` words are left to the exact fingerprint: too short to tell a
copy from a coincidence.

A source's boilerplate is dropped before the signature is computed: a footer
(subscribe, copyright, newsletter lines) or a paywall notice under every headline would
otherwise make two different stories of one outlet look like copies, and the second would
never alert. ``recurring`` finds it in the source's ``RECENT`` newest stored items and
the poll's own: the shingles at least ``RECUR`` of them, and ``RECUR_SHARE`` of all,
repeat, and the shingles of a short body carried under two titles. A copy in another
outlet still joins (each outlet's boilerplate is its own, dropped from its own items),
and so do a wire's ``UPDATE 1`` and ``UPDATE 2``: the versions of one story do not make
a template.
An item whose body is left with less than a story's worth of words binds its title (see
``Reading``).

The hashing is ours rather than datasketch's on purpose: signatures are stored, and a
library upgrade that changes its permutation scheme (datasketch 2.0 did) would silently
make old and new signatures incomparable. ``SCHEME`` names this one; stored signatures
of another scheme are ignored. Words are CRC32-hashed, three consecutive word hashes
combine into a shingle hash, and each permutation is a multiply-shift hash (odd 64-bit
multiplier, wrapping arithmetic, top 32 bits), all vectorised with numpy over a whole
poll's items at once (``signatures``): about 25 us for an 800-character article, where
one article at a time took 80.
"""

from __future__ import annotations

import math
import operator
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from itertools import chain
from typing import TYPE_CHECKING, Any

from monitor import dedup
from monitor.words import folded_utf8_words

if TYPE_CHECKING:
    import numpy as np

SCHEME = "mh3w-crc32-ms64-p48"
NUM_PERM = 48
BANDS = 16
ROWS = NUM_PERM // BANDS
THRESHOLD = 0.45
MIN_WORDS = 12
# Copies of a story arrive within days; a look further back only finds recurring
# templates ("Daily market report"), which are not the same story.
WINDOW = timedelta(days=7)
# A copy that joins a story this soon after its first sighting becomes one of its
# versions, which later copies are compared with too (a wire's UPDATE 2 is closer to
# UPDATE 1 than to the first take). Later joins do not: every day's "Fed adds reserves"
# would otherwise keep the story alive, and each day's report would join the last one's
# and never alert (the versions of a month of reports chain into one story).
VERSION_SPAN = timedelta(hours=12)
# A source's recent items read back to find its boilerplate (see ``recurring``): a
# shingle in at least RECUR of them, and RECUR_SHARE of all, is its template, not news
# (the few updates of one story do not reach a quarter of a busy feed's items).
RECENT = 40
# Of a long body only the first and last EDGE_WORDS words are searched for its source's
# template: a header and a footer are there, and a source of long documents (a folder of
# reports) would otherwise have RECENT whole documents shingled again at every poll.
EDGE_WORDS = 600
RECUR = 3
RECUR_SHARE = 0.25
# A body this short, carried under the headlines of two stories by one source, is a
# paywall notice; a longer one is when carried under three (an outlet re-titling one
# article twice does not keep every headline word apart).
REPEATED_BODY_WORDS = 40
# The share of a short first report's telling words that its full story keeps: over
# half ("Seoul to let GSOMIA lapse" keeps only Seoul and GSOMIA in another story).
STUB_KEPT = 0.6
REPEATED_LONG_BODY_STORIES = 3
# Words of three letters or more that tell nothing of what a text is about (see
# ``tells_of``): "Subscribe to read the full article, or sign in if you already have an
# account with us" would share "with" and "have" with many headlines.
FUNCTION_WORDS = frozenset(
    b"the and for from with are was were been has have had its this that these those "
    b"she they you our your their his her them not but who whom which what when where "
    b"why how all any can could may might will would shall should must says said say "
    b"also more most than then into onto over under about after before while out off "
    b"new now just only one two via per".split()
    # a wire's labels: "BREAKING: Seoul keeps GSOMIA" tells of Seoul and GSOMIA
    + b"breaking flash urgent update updated exclusive alert developing live".split()
)
# A headline that names one story: this many telling words (see ``_telling``) at least,
# none of a report that comes back under one headline with other news each time
# (results, market reports, digests: "Wall Street stocks lower in early trading", "Willcox
# and Gibbs Inc 4th qtr net" over two releases hours apart). Measured on the Reuters corpus
# (see ``distinctive_headline``).
HEADLINE_WORDS = 4
RECURRING_HEADLINE_WORDS = frozenset(
    b"qtr quarter quarterly 1st 2nd 3rd 4th net loss profit results earnings dividend "
    b"payout stocks shares market markets trading close prices report summary roundup "
    b"briefing weather".split()
)
# Two headlines sharing this share of their words (numbers aside) are one story's.
SAME_HEADLINE = 0.5
# Two bodies are nested (one story's versions) when at most this share of the shorter
# one's shingles are not the longer one's.
NESTED_SLACK = 0.02
# A band shared by very many stories is boilerplate; the newest few are enough.
MAX_CANDIDATES = 50
# Words hashed together (a poll of 50 articles is one batch): each array then stays
# under 64 kB, which glibc's malloc gives back to the system once freed.
BATCH_WORDS = 1 << 13

_SEED = 0x5EED_2026


@dataclass(frozen=True, slots=True)
class _Hashing:
    """The random constants of SCHEME: fixed by the seed, the same in every process."""

    multipliers: np.ndarray[Any, np.dtype[np.uint64]]
    offsets: np.ndarray[Any, np.dtype[np.uint64]]
    shingle_mix: np.ndarray[Any, np.dtype[np.uint64]]
    band_mix: np.ndarray[Any, np.dtype[np.uint64]]
    band_ids: np.ndarray[Any, np.dtype[np.uint64]]


@cache
def _hashing() -> _Hashing:
    # numpy is imported on first use: a poll that stores nothing new (all 304) never
    # pays for it.
    import numpy as np

    rng = np.random.default_rng(_SEED)

    def odd(count: int) -> np.ndarray[Any, np.dtype[np.uint64]]:
        return rng.integers(0, 2**63, count, dtype=np.uint64) * np.uint64(2) + np.uint64(1)

    multipliers = odd(NUM_PERM)
    offsets = rng.integers(0, 2**63, NUM_PERM, dtype=np.uint64)
    shingle_mix = odd(2)
    band_mix = odd(ROWS + 1)
    return _Hashing(multipliers, offsets, shingle_mix, band_mix, np.arange(BANDS, dtype=np.uint64))


@dataclass(frozen=True, slots=True)
class Signature:
    """An item's MinHash values and the hashes of its bands (signed 64-bit, for SQL)."""

    values: tuple[int, ...]
    bands: tuple[int, ...]

    def stored(self) -> list[object]:
        """The JSON kept in ``stories.signature``: the scheme's name, then the values."""
        return [SCHEME, *self.values]


@dataclass(frozen=True, slots=True)
class Reading:
    """What the story index needs of an item: its signature (None when too little of its
    text is left to compare), and whether its body, its source's boilerplate dropped, is
    too short to name a story on its own (its exact fingerprint must then bind its title,
    as a short body's does, see ``monitor.dedup``)."""

    signature: Signature | None
    template_body: bool = False


@dataclass(frozen=True, slots=True)
class Words:
    """An item's words as ``utf8_words`` makes them, case folded: its title's and its
    body's, and the CRC32 of each (``hashes``, the title's first), each made once for
    both ``recurring`` and ``signatures``: hashing every word, a C call each, was a
    third of their cost, and a new item's words were hashed in both."""

    title: list[bytes]
    body: list[bytes]
    hashes: np.ndarray[Any, np.dtype[np.uint64]] = field(compare=False)

    @classmethod
    def of(cls, title: str, body: str) -> Words:
        import numpy as np

        title_words, body_words = folded_utf8_words(title), folded_utf8_words(body)
        count = len(title_words) + len(body_words)
        hashes = np.fromiter(
            map(zlib.crc32, chain(title_words, body_words)), dtype=np.uint64, count=count
        )
        return cls(title_words, body_words, hashes)


def signatures(
    texts: Sequence[Words],
    boilerplate: np.ndarray[Any, np.dtype[np.uint64]] | None = None,
) -> list[Reading]:
    """The reading of each item of one source, its shingles in ``boilerplate`` (see
    ``recurring``) dropped first; computed together, a poll's items in a few numpy
    passes, where numpy's cost per call was most of the time of an item hashed alone."""
    if not texts:
        return []
    import numpy as np

    h = _hashing()  # numpy is loaded with a poll's first new items, however short
    words = [text.hashes for text in texts]
    common = np.empty(0, dtype=np.uint64) if boilerplate is None else boilerplate
    found = [Reading(None)] * len(words)
    for batch in _batches(words):
        titles = [len(texts[at].title) for at in batch]
        readings = _read(h, [words[at] for at in batch], titles, common)
        for at, reading in zip(batch, readings, strict=True):
            found[at] = reading
    return found


def recurring(texts: Sequence[Words], stored: int = 0) -> np.ndarray[Any, np.dtype[np.uint64]]:
    """A source's boilerplate, from its recent items, this poll's included: the
    shingles found in at least RECUR of them and RECUR_SHARE of all (a footer, a
    subscribe line), and every shingle of a body it carries under the headlines of
    different stories (a paywall notice: see ``_repeated_bodies``).

    The first ``stored`` texts are stored items. They count once per version chain
    (one headline, each body holding the last: see ``_story_groups``), not once per
    story: counted by story, a template that joined a new source's first items into one
    story would hide itself for good, and every later item would join that story and
    never alert. The new texts count once per story, by headline (see ``_one_story``):
    the versions of a story (an original, its "UPDATE 1") do not make its text a
    template, whether a poll brings them together or one by one."""
    import numpy as np

    h = _hashing()
    groups = _story_groups(texts, stored)
    # A body carried twice (a feed repeating an entry) is one text, not a template.
    distinct = {tuple(text.body): (text, group) for text, group in zip(texts, groups, strict=True)}
    words = [_edges(text) for text, _ in distinct.values()]
    found = [group for _, group in distinct.values()]
    needed = max(RECUR, math.ceil(RECUR_SHARE * len(set(found))))
    values, found_in = _spread(h, words, found)
    repeated = _repeated_bodies(texts)
    return np.union1d(
        values[found_in >= needed], _spread(h, repeated, list(range(len(repeated))))[0]
    )


def _edges(text: Words) -> np.ndarray[Any, np.dtype[np.uint64]]:
    """The word hashes of a text's title, and of its body or a long body's first and
    last EDGE_WORDS words."""
    import numpy as np

    if len(text.body) <= 2 * EDGE_WORDS:
        return text.hashes
    title = len(text.title)
    return np.concatenate((text.hashes[: title + EDGE_WORDS], text.hashes[-EDGE_WORDS:]))


def _story_groups(texts: Sequence[Words], stored: int) -> list[int]:
    """A story number for each text: that of the first text before it that is one
    story's with it, else its own (so is a text without a headline: it tells nothing).

    A new text is one story's with an earlier new text whose headline is the same
    story's (see ``_one_story``). A stored text is one story's with an earlier stored
    text only if, besides, one body holds the other (see ``_nested``): a wire's
    ``UPDATE 1`` and ``UPDATE 2`` under one headline, each the one before with a
    paragraph added. Headlines alone would not do for stored texts: a daily report
    under one headline and a long footer joins one story on a new source's first
    polls, and counted once, its footer would never be learned."""
    groups: list[int] = []
    headlines: list[frozenset[bytes]] = []
    having: dict[bytes, list[int]] = {}  # a headline word -> the texts with it
    shingled: dict[int, frozenset[tuple[bytes, ...]]] = {}  # made once, when compared

    def shingles(at: int) -> frozenset[tuple[bytes, ...]]:
        if at not in shingled:
            body = texts[at].body
            shingled[at] = frozenset(zip(body, body[1:], body[2:], strict=False))
        return shingled[at]

    for at, text in enumerate(texts):
        if at == stored:
            having = {}  # new texts are compared with new texts only
        headline = _headline(text.title)
        # Only a headline sharing a word can be the same story's.
        candidates = sorted({earlier for word in headline for earlier in having.get(word, ())})
        group = next(
            (
                groups[earlier]
                for earlier in candidates
                if _one_story(headline, headlines[earlier])
                and (at >= stored or _nested(shingles(at), shingles(earlier)))
            ),
            len(groups),
        )
        for word in headline:
            having.setdefault(word, []).append(at)
        headlines.append(headline)
        groups.append(group)
    return groups


def _nested(one: frozenset[tuple[bytes, ...]], other: frozenset[tuple[bytes, ...]]) -> bool:
    """Whether one body holds the other, given their word 3-shingles: all but
    NESTED_SLACK of the smaller set's are the larger's (a paragraph added before or
    after; in a body of 150 words or more, a word corrected too). Two reports under one
    footer are not nested: each has news of its own."""
    smaller, larger = sorted((one, other), key=len)
    return len(smaller - larger) <= NESTED_SLACK * len(smaller)


def _repeated_bodies(texts: Sequence[Words]) -> list[np.ndarray[Any, np.dtype[np.uint64]]]:
    """The word hashes of each body found under the headlines of different stories: two
    for a body under REPEATED_BODY_WORDS words, REPEATED_LONG_BODY_STORIES for a longer one.

    A short body counts only under the headlines it shares fewer than two telling words
    with (``_tells``; one shared word would be too often a notice's "first" or "free"): a
    short story its wire issues again under another headline is the story's text under
    both, while a notice tells of no headline. (A long body shares some word with nearly
    any headline, so it counts under all.)"""
    titles: dict[tuple[bytes, ...], dict[frozenset[bytes], None]] = {}
    hashes: dict[tuple[bytes, ...], np.ndarray[Any, np.dtype[np.uint64]]] = {}
    for text in texts:  # headlines in the order they come: the count below is greedy
        short = len(text.body) < REPEATED_BODY_WORDS
        # A body shorter than three words has no shingle to drop.
        if len(text.body) >= 3 and not (short and _tells(text.body, text.title, 2)):
            body = tuple(text.body)
            titles.setdefault(body, {})[_headline(text.title)] = None
            hashes.setdefault(body, text.hashes[len(text.title) :])
    return [
        hashes[body]
        for body, under in titles.items()
        if len(under) > 1
        and _stories_among(
            under, 2 if len(body) < REPEATED_BODY_WORDS else REPEATED_LONG_BODY_STORIES
        )
    ]


def _stories_among(headlines: Iterable[frozenset[bytes]], enough: int) -> bool:
    """Whether ``headlines`` name at least ``enough`` stories: counted greedily, each
    headline a new story unless it is one story's with a headline counted before, so a
    body under a thousand headlines costs a thousand comparisons per story, not pairs.

    Counted from each headline in turn while none found enough: "one story's" is not
    transitive, and a short headline first ("Korea Japan pact") is one story's with two
    that are not ("... talks collapse", "... renewal signed"). Counted from it alone,
    they were one story, and the count hung on which headline came first."""
    ordered = list(headlines)
    for start in range(len(ordered) - enough + 1):
        counted = [ordered[start]]
        for headline in ordered[start + 1 :]:
            if not any(_one_story(headline, other) for other in counted):
                counted.append(headline)
                if len(counted) >= enough:
                    return True
    return False


def short_body(body: str) -> bool:
    """Whether ``body`` is short enough to be a paywall notice (see ``_repeated_bodies``)."""
    return dedup.length_in_words(body) < REPEATED_BODY_WORDS


def versions(one: str, other: str) -> bool:
    """Whether two bodies can be versions of one document: one holds the other (see
    ``_nested``), or their word 3-shingles are THRESHOLD alike. A body too short to have
    a shingle tells nothing, and counts as a version."""
    shingles = [_body_shingles(body) for body in (one, other)]
    first, second = shingles
    if not first or not second:
        return True
    return _nested(first, second) or len(first & second) >= THRESHOLD * len(first | second)


def edited_version(body: str, new_body: str) -> bool:
    """Whether an item edited from ``body`` to ``new_body`` still tells its story: its
    new body is a version of the old one (see ``versions``), or the old one was a short
    first report (a breaking line, a flash under REPEATED_BODY_WORDS words) whose telling
    words are mostly in the new one, however its lead was rewritten. The headline proves
    nothing: a ticker's entry keeps "Breaking news" or a time stamp over each story, and a
    feed that reuses an entry's name for another story gives it text of its own."""
    if versions(body, new_body):
        return True
    if not short_body(body):
        return False
    stub = _telling(folded_utf8_words(body))
    kept = stub & _telling(folded_utf8_words(new_body))
    return bool(stub) and len(kept) >= STUB_KEPT * len(stub)


def _body_shingles(body: str) -> frozenset[tuple[bytes, ...]]:
    words = folded_utf8_words(body)
    return frozenset(zip(words, words[1:], words[2:], strict=False))


def one_story_headline(title: str, titles: Iterable[str]) -> bool:
    """Whether ``title`` is one story's headline with one of ``titles`` (see ``_one_story``)."""
    headline = _headline(folded_utf8_words(title))
    return any(_one_story(headline, _headline(folded_utf8_words(each))) for each in titles)


def tells_of(body: str, title: str) -> bool:
    """Whether ``body`` shares a word with the headline ``title`` (see ``_telling``; in
    Korean, Chinese or Japanese, two stretches of two characters). A story's short body
    tells what its headlines tell; a paywall or teaser notice tells of no story. Of
    Reuters' articles with bodies of 20 to 39 words, 92% share a word with their headline
    (the others are tables of figures under a company's name), while a notice ("This
    article is for subscribers only...") shares one with under 1% of its headlines."""
    return _tells(folded_utf8_words(body), folded_utf8_words(title))


def _tells(body: list[bytes], title: list[bytes], words: int = 1) -> bool:
    """Whether folded ``body`` shares ``words`` telling words with folded ``title`` (two
    two-character stretches for each)."""
    shared = _telling(body) & _telling(title)
    pairs = sum(word.startswith(_PAIR) for word in shared)
    return (len(shared) - pairs) + pairs // 2 >= words


_PAIR = b"\x00"  # marks a two-character stretch of a spaceless run among whole words


def _telling(words: list[bytes]) -> frozenset[bytes]:
    """The folded words that tell what a text is about: of three letters or more,
    numbers and FUNCTION_WORDS aside. A run of Korean, Chinese or Japanese (written
    without spaces, or with particles glued to its words: 유지하기로, 協定維持を) tells
    by its stretches of two characters, so 유지 in a headline is found in 유지하기로."""
    found: set[bytes] = set()
    for word in words:
        # An ASCII word (nearly every word of an English feed) holds no such run: it is
        # not decoded and looked at character by character, a Python step each.
        if not word.isascii():
            run = word.decode("utf-8", "replace")
            if any(char >= "\u1100" for char in run):
                found.update(_PAIR + run[at : at + 2].encode() for at in range(len(run) - 1))
                continue
        if len(word) >= 3 and not word.isdigit() and word not in FUNCTION_WORDS:
            found.add(word)
    return frozenset(found)


def notice(body: str, title: str) -> bool:
    """Whether ``body``, under ``title``, is a notice rather than a story: short enough to
    be a paywall or teaser notice, and telling nothing of its headline (see ``tells_of``)."""
    return short_body(body) and not tells_of(body, title)


def notice_under_boilerplate(
    text: Words, boilerplate: np.ndarray[Any, np.dtype[np.uint64]]
) -> bool:
    """Whether the body of ``text``, its source's ``boilerplate`` (see ``recurring``)
    discounted, is a notice: some of it is boilerplate, and the words left are fewer than
    REPEATED_BODY_WORDS and tell nothing of its headline (``_tells``). A paper's notice
    followed by its own footer ("Subscribe ... Terms of use ... newsletter"), which
    recurs under its other items, runs past REPEATED_BODY_WORDS on its own. A word is
    left when a shingle holding it is not boilerplate: the words around a story's own
    text count as its."""
    import numpy as np

    body = text.hashes[len(text.title) :]
    if len(body) < 3:
        return False
    shingles, _ = _shingles(_hashing(), [body])
    kept = ~np.isin(shingles, boilerplate)
    if kept.all():
        return False
    left = np.zeros(len(body), dtype=bool)
    for start in range(3):  # the three words of each kept shingle
        left[start : start + len(kept)] |= kept
    words = [word for word, own in zip(text.body, left.tolist(), strict=True) if own]
    return len(words) < REPEATED_BODY_WORDS and not _tells(words, text.title)


def distinctive_headline(title: str) -> bool:
    """Whether ``title`` is distinctive enough that a notice under it is the story another
    outlet carries under it: HEADLINE_WORDS telling words or more, none of
    RECURRING_HEADLINE_WORDS. In the Reuters corpus (19,043 articles, 18,241 headlines,
    73% of them distinctive), 32 articles tell another story than the first article under
    their headline (under 0.15 alike by 3-shingles, neither holding half of the other's,
    other first six words), 7 of them within VERSION_SPAN of it: two market reports, a
    daily price report and four companies' second quarterly release. None has a
    distinctive headline (see ``test_stories_dedup.py``)."""
    telling = _telling(folded_utf8_words(title))
    return len(telling) >= HEADLINE_WORDS and not telling & RECURRING_HEADLINE_WORDS


def several_stories(titles: Iterable[str]) -> bool:
    """Whether ``titles`` are the headlines of at least two stories (a body carried
    under them is a template, as ``_repeated_bodies`` finds among a source's recent
    items)."""
    return _stories_among((_headline(folded_utf8_words(each)) for each in titles), 2)


def _headline(title: list[bytes]) -> frozenset[bytes]:
    """A title's words but numbers."""
    return frozenset(word for word in title if not word.isdigit())


def _one_story(one: frozenset[bytes], other: frozenset[bytes]) -> bool:
    """Whether two headlines can be one story's: most of their words in common. One
    story's headlines differ by an added "UPDATE 1" or a new count ("kills three",
    "kills five", "3명", "5명"), two stories' by most words. An empty one tells nothing."""
    if not one or not other:
        return True
    shared = len(one & other)
    return shared >= SAME_HEADLINE * (len(one) + len(other) - shared)  # of the union


def _spread(
    h: _Hashing, words: Sequence[np.ndarray[Any, np.dtype[np.uint64]]], groups: list[int]
) -> tuple[np.ndarray[Any, np.dtype[np.uint64]], np.ndarray[Any, np.dtype[np.intp]]]:
    """The shingle hashes of the items (none of an item under three words), sorted and
    each once, and in how many of the items' ``groups`` (a number each) each is found."""
    import numpy as np

    kept = [at for at, item_words in enumerate(words) if len(item_words) >= 3]
    if not kept:
        return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.intp)
    shingles, counts = _shingles(h, [words[at] for at in kept])
    labels = np.repeat(np.array([groups[at] for at in kept], dtype=np.int64), counts)
    # Sorted by hash (in any order among equals), each shingle gets the number of its
    # run; each pair of a run's number and a group is then kept once, in a sort of small
    # integers. A stable sort of the hashes, to keep a group's repeats of a shingle
    # together, took three times as long.
    order = np.argsort(shingles)
    shingles = shingles[order]
    first = np.r_[True, shingles[1:] != shingles[:-1]]
    span = int(labels.max()) + 1
    pairs = np.sort((np.cumsum(first) - 1) * span + labels[order])
    pairs = pairs[np.r_[True, pairs[1:] != pairs[:-1]]]
    return shingles[first], np.bincount(pairs // span, minlength=int(first.sum()))


def _batches(words: list[np.ndarray[Any, np.dtype[np.uint64]]]) -> Iterator[list[int]]:
    """The indices of the items with enough words, in groups of about BATCH_WORDS words."""
    batch: list[int] = []
    size = 0
    for at, item_words in enumerate(words):
        if len(item_words) < MIN_WORDS:
            continue
        batch.append(at)
        size += len(item_words)
        if size >= BATCH_WORDS:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _shingles(
    h: _Hashing, words: Sequence[np.ndarray[Any, np.dtype[np.uint64]]]
) -> tuple[np.ndarray[Any, np.dtype[np.uint64]], np.ndarray[Any, np.dtype[np.intp]]]:
    """The shingle hashes of items of at least three words each (their word hashes),
    in one array (the shingles of every item one after another), and how many each
    item has."""
    import numpy as np

    lengths = np.fromiter(map(len, words), dtype=np.intp, count=len(words))
    ends = np.cumsum(lengths)
    hashes = np.concatenate(words)
    shingles = hashes[:-2] * h.shingle_mix[0] + hashes[1:-1] * h.shingle_mix[1] + hashes[2:]
    # A shingle starting in an item's last two words would run into the next item.
    inside = np.ones(len(hashes), dtype=bool)
    inside[ends - 1] = False
    inside[ends - 2] = False
    return shingles[inside[:-2]], lengths - 2


def _read(
    h: _Hashing,
    words: list[np.ndarray[Any, np.dtype[np.uint64]]],
    titles: list[int],
    boilerplate: np.ndarray[Any, np.dtype[np.uint64]],
) -> list[Reading]:
    """The readings of items of at least MIN_WORDS words each (``titles``: how many of
    them are the title's): their shingles in ``boilerplate`` dropped, an item left with
    fewer than MIN_WORDS - 2 gets no signature."""
    import numpy as np

    shingles, counts = _shingles(h, words)
    kept = ~np.isin(shingles, boilerplate)
    starts = counts.cumsum() - counts
    template = _template_bodies(kept, counts, starts, titles)
    left = np.add.reduceat(kept, starts)
    enough = left >= MIN_WORDS - 2
    computed = iter(_minhash(h, shingles[kept & np.repeat(enough, counts)], left[enough]))
    return [
        Reading(next(computed) if signed else None, bool(bound))
        for signed, bound in zip(enough.tolist(), template.tolist(), strict=True)
    ]


def _template_bodies(
    kept: np.ndarray[Any, np.dtype[np.bool_]],
    counts: np.ndarray[Any, np.dtype[np.intp]],
    starts: np.ndarray[Any, np.dtype[np.intp]],
    titles: list[int],
) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Which items lost some of their body's shingles to boilerplate and kept fewer than
    a body of STORY_WORDS words has: what is left is too short to name a story."""
    import numpy as np

    # A shingle starting in the body's words is the body's own.
    in_body = np.arange(len(kept)) - np.repeat(starts, counts) >= np.repeat(titles, counts)
    body_kept = np.add.reduceat(kept & in_body, starts)
    body_dropped = np.add.reduceat(~kept & in_body, starts)
    return (body_dropped > 0) & (body_kept < dedup.STORY_WORDS - 2)


def _minhash(
    h: _Hashing,
    shingles: np.ndarray[Any, np.dtype[np.uint64]],
    counts: np.ndarray[Any, np.dtype[np.intp]],
) -> list[Signature]:
    """The signatures of items of at least one shingle each, from their shingles one
    after another, each item's minimum taken over its own."""
    import numpy as np

    if not len(counts):
        return []
    starts = counts.cumsum() - counts  # each item's first shingle
    # One permutation at a time: a 2-D array of them all, several MB, would be kept by
    # the allocator of each polling thread once freed.
    minima = np.empty((len(counts), NUM_PERM), dtype=np.uint64)
    permuted = np.empty_like(shingles)
    for at in range(NUM_PERM):
        np.multiply(shingles, h.multipliers[at], out=permuted)
        permuted += h.offsets[at]
        minima[:, at] = np.minimum.reduceat(permuted, starts)
    # The top 32 bits of the minimum are the minimum of the top 32 bits.
    values = minima >> np.uint64(32)
    rows = values.reshape(len(counts), BANDS, ROWS)
    bands = (rows * h.band_mix[:ROWS]).sum(axis=2) + h.band_ids * h.band_mix[ROWS]
    return [
        Signature(tuple(item_values), tuple(item_bands))
        for item_values, item_bands in zip(
            values.tolist(), bands.view(np.int64).tolist(), strict=True
        )
    ]


def stored_values(stored: object) -> tuple[int, ...] | None:
    """The values of a stored signature, or None if it is missing or of another scheme."""
    if not isinstance(stored, list) or len(stored) != NUM_PERM + 1 or stored[0] != SCHEME:
        return None
    return tuple(map(int, stored[1:]))


def similarity(a: Sequence[int], b: Sequence[int]) -> float:
    """Estimated Jaccard similarity of two items' shingle sets."""
    if len(a) != len(b):
        raise ValueError(f"signatures of {len(a)} and {len(b)} values")
    equal: int = sum(map(operator.eq, a, b))
    return equal / NUM_PERM


def most_similar(sig: Signature, candidates: Iterable[tuple[int, Sequence[int]]]) -> int | None:
    """The id of the most similar candidate story at or above THRESHOLD (the oldest of
    equals), else None; the candidates' values already read from their stored form (a
    poll compares each new item with dozens of stories, each read once)."""
    best: tuple[float, int] | None = None
    for story_id, values in candidates:
        score = similarity(sig.values, values)
        if score >= THRESHOLD and (best is None or (score, -story_id) > (best[0], -best[1])):
            best = (score, story_id)
    return None if best is None else best[1]
