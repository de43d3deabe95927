"""The ElementTree fast path against the feedparser path: for every feed document we
have, the fast path either declines (None) or gives exactly the feedparser path's entries.

Documents: the feed fixtures in tests/data, every file of $MONITOR_CORPUS/feeds, the
poll benchmark's generated RSS, and generated RSS and Atom with the fields and quirks
real feeds have. Each is read as a folder reads it (no headers) and as a server sends
it (content type and location), and with a few more header sets for the generated ones.
"""

from __future__ import annotations

import importlib.util
import os
import random
import sys
from collections.abc import Callable, Iterator
from email.utils import formatdate
from pathlib import Path
from types import ModuleType

import pytest

from monitor.errors import SourceError
from monitor.model import Entry
from monitor.sources.fastfeed import fast_entries
from monitor.sources.feedparse import feedparser_entries, parse_feed

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "feeds"
BASE = "http://127.0.0.1:8080/feeds/news.xml"
HEADER_SETS: list[dict[str, str]] = [
    {},
    {"content-type": "application/rss+xml; charset=utf-8", "content-location": BASE},
]
MORE_HEADER_SETS: list[dict[str, str]] = [
    {"content-type": "text/xml"},
    {"content-type": "application/atom+xml", "content-location": "https://example.org/a/b?c"},
    {"content-type": "text/html; charset=iso-8859-1"},
    {"content-location": BASE},
]


def _compare(data: bytes, headers: dict[str, str]) -> tuple[bool, str | None]:
    """(accepted, a description of the difference or None)."""
    fast = fast_entries(data, "doc", headers)
    try:
        expected: list[Entry] | SourceError = feedparser_entries(data, "doc", headers)
    except SourceError as exc:
        expected = exc
    if fast is None:
        return False, None
    if isinstance(expected, SourceError):
        return True, f"fast path read {len(fast)} entries, feedparser: {expected}"
    if len(expected) != len(fast):
        return True, f"{len(fast)} entries, feedparser {len(expected)}"
    for number, (want, got) in enumerate(zip(expected, fast, strict=True)):
        for name in Entry.__slots__:
            if getattr(want, name) != getattr(got, name):
                return True, (
                    f"entry {number} {name}: {getattr(got, name)!r}, "
                    f"feedparser {getattr(want, name)!r}"
                )
    return True, None


def _check(documents: dict[str, bytes], header_sets: list[dict[str, str]]) -> int:
    """Fails on any difference; returns how many (document, headers) the fast path read."""
    accepted, differences = 0, []
    for name, data in documents.items():
        for headers in header_sets:
            took, difference = _compare(data, headers)
            accepted += took
            if difference:
                differences.append(f"{name} {headers}: {difference}")
    assert [] == differences
    return accepted


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def corpus_feeds() -> Path:
    """$MONITOR_CORPUS/feeds: skipped without MONITOR_CORPUS, except in CI; fails if missing."""
    value = os.environ.get("MONITOR_CORPUS")
    if not value:
        if os.environ.get("CI") == "true":
            pytest.fail("MONITOR_CORPUS is not set, and CI needs the corpus feeds")
        pytest.skip("MONITOR_CORPUS is not set")
    feeds = Path(value) / "feeds"
    if not feeds.is_dir():
        pytest.fail(f"MONITOR_CORPUS={value} has no feeds/ folder")
    return feeds


def test_fixture_feeds_agree() -> None:
    assert _check(_files(DATA), HEADER_SETS) > 20


def test_corpus_feeds_agree(corpus_feeds: Path) -> None:
    assert _check(_files(corpus_feeds), HEADER_SETS) > 20


def _bench_poll() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_poll", REPO / "benchmarks" / "bench_poll.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_bench_poll_feeds_are_read_by_the_fast_path(tmp_path: Path) -> None:
    bench = _bench_poll()
    bench.write_feeds(tmp_path / "feeds", 4, 25, bench.articles(100))
    documents = _files(tmp_path / "feeds")
    assert len(documents) * len(HEADER_SETS) == _check(documents, HEADER_SETS)
    data = next(iter(documents.values()))
    entries = parse_feed(data, "f", content_type="application/rss+xml", base_url=BASE)
    assert entries == fast_entries(data, "f", {"content-type": "application/rss+xml"})
    assert 25 == len(entries)
    assert all(entry.published and entry.link and entry.content_is_html for entry in entries)


# --- generated documents ---------------------------------------------------------------

NAMESPACES = (
    'xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
    'xmlns:media="http://search.yahoo.com/mrss/" '
    'xmlns:atom="http://www.w3.org/2005/Atom" '
    'xmlns:slash="http://purl.org/rss/1.0/modules/slash/" '
    'xmlns:nyt="http://www.nytimes.com/namespaces/rss/2.0" '
    'xmlns:thr="http://purl.org/syndication/thread/1.0"'
)
TEXTS = [
    "Seoul and Tokyo extend GSOMIA",
    "  Troop cost-sharing talks   resume\n in Washington ",
    "Café &amp; crème — “quoted” ☃",
    "Mojibake: Ã©tÃ© à la plage",
    "C1 controls: it&#x92;s &#x93;fine&#x94; &#128;",
    "Tags as text: &lt;b&gt;bold&lt;/b&gt; &amp;amp; more",
    "<![CDATA[CDATA with <em>markup</em> & an ampersand]]>",
    "",
]
BODIES = [
    "&lt;p&gt;First paragraph.&lt;/p&gt;&lt;p&gt;Second, with a "
    '&lt;a href="/rel/link"&gt;relative link&lt;/a&gt;.&lt;/p&gt;',
    "<![CDATA[<p>Body in CDATA, <b>bold</b> &amp; an entity.</p>]]>",
    "Plain text body without any markup at all, just words.",
    "Ã¼ber mojibake body with &#x92; and é",
    "",
]
DATES = [
    formatdate(1_600_000_000, usegmt=True),
    "Tue, 10 Jun 2003 04:00:00 +0900",
    "2024-03-01T12:30:45.123456Z",
    "2024-03-01T12:30:45+09:00",
    "2024-03-01",
    "not a date at all",
    "Mon, 31 Feb 2020 10:00:00 GMT",
    "",
]
LINKS = [
    "http://news.example/a/1",
    "https://news.example/a?x=1&amp;y=2",
    "/relative/path",
    "relative/path?q=1&amp;amp;r=2",
    "javascript:alert(1)",
    "http:///extra/slashes",
    "",
]
AUTHORS = ["Jane Doe", "jane@example.org (Jane Doe)", "  Kim  ", ""]


Fragment = Callable[[random.Random], str]
PERMALINKS = ["", ' isPermaLink="false"', ' isPermaLink="true"']
GUIDS = [*LINKS, "tag:x,2024:1", "12345"]
TEXT_KINDS = ["", ' type="text"', ' type="html"']
CONTENT_KINDS = [*TEXT_KINDS, ' type="text/html"']

# (chance, fragment): each field an item may have, drawn in this order.
RSS_FIELDS: list[tuple[float, Fragment]] = [
    (0.9, lambda rng: f"<title>{rng.choice(TEXTS)}</title>"),
    (0.8, lambda rng: f"<link>{rng.choice(LINKS)}</link>"),
    (
        0.7,
        lambda rng: f"<guid{rng.choice(PERMALINKS)}>{rng.choice(GUIDS)}</guid>",
    ),
    (0.8, lambda rng: f"<pubDate>{rng.choice(DATES)}</pubDate>"),
    (0.2, lambda rng: f"<dc:date>{rng.choice(DATES)}</dc:date>"),
    (0.8, lambda rng: f"<description>{rng.choice(BODIES)}</description>"),
    (0.4, lambda rng: f"<content:encoded>{rng.choice(BODIES)}</content:encoded>"),
    (0.3, lambda rng: _element(rng.choice(["author", "dc:creator"]), rng.choice(AUTHORS))),
    (0.3, lambda rng: '<category domain="x">World</category><category>Asia</category>'),
    (0.2, lambda rng: '<media:thumbnail url="http://img.example/1.jpg" width="100"/>'),
    (0.2, lambda rng: '<enclosure url="http://a.example/x.mp3" length="1" type="audio/mpeg"/>'),
    (
        0.2,
        lambda rng: (
            "<comments>http://news.example/c/1</comments><slash:comments>4</slash:comments>"
        ),
    ),
    (0.1, lambda rng: "<nyt:byline>By A. Writer</nyt:byline>"),
    (0.1, lambda rng: '<atom:link href="http://news.example/alt" rel="alternate"/>'),
    (0.05, lambda rng: "<media:title>A media title</media:title>"),  # declines
    (
        0.1,
        lambda rng: '<source url="http://wire.example/rss">Wire</source><dc:subject>x</dc:subject>',
    ),
    (0.1, lambda rng: "<thr:total>3</thr:total><PubDate>Tue, 10 Jun 2003 04:00:00 GMT</PubDate>"),
    (0.1, lambda rng: '<Title xml:lang="en">Up<!-- a comment -->per</Title>'),
]


def _atom_links(rng: random.Random) -> str:
    links = []
    for _ in range(rng.choice([0, 1, 1, 2])):
        rel = rng.choice(["", ' rel="alternate"', ' rel="self"', ' rel="enclosure"', ' rel="x"'])
        kind = rng.choice(["", ' type="text/html"', ' type="application/pdf"'])
        links.append(f'<link{rel}{kind} href="{rng.choice(LINKS)}"/>')
    return "".join(links)


def _atom_author(rng: random.Random) -> str:
    name = rng.choice(["<name>Jane Doe</name>", "<name> Kim </name>", "<name></name>", ""])
    email = rng.choice(["<email>jane@example.org</email>", ""])
    uri = rng.choice(["<uri>http://jane.example/</uri>", ""])
    image = rng.choice(['<gd:image xmlns:gd="http://schemas.google.com/g/2005" src="x"/>', ""])
    return f"<author>{name}{email}{image}{uri}</author>"


ATOM_FIELDS: list[tuple[float, Fragment]] = [
    (0.9, lambda rng: f"<title{rng.choice(TEXT_KINDS)}>{rng.choice(TEXTS)}</title>"),
    (1.0, _atom_links),
    (0.8, lambda rng: f"<published>{rng.choice(DATES)}</published>"),
    (0.8, lambda rng: f"<updated>{rng.choice(DATES)}</updated>"),
    (0.6, lambda rng: f"<summary{rng.choice(TEXT_KINDS)}>{rng.choice(BODIES)}</summary>"),
    (
        0.6,
        lambda rng: f"<content{rng.choice(CONTENT_KINDS)}>{rng.choice(BODIES)}</content>",
    ),
    (0.6, _atom_author),
    (0.3, lambda rng: '<category term="world" label="World"/>'),
    (
        0.05,
        lambda rng: (
            '<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">x</div></content>'
        ),
    ),
]


def _element(tag: str, text: str) -> str:
    return f"<{tag}>{text}</{tag}>"


def _fields(rng: random.Random, table: list[tuple[float, Fragment]], first: str = "") -> str:
    """Each field of ``table`` by its chance, in a shuffled order."""
    drawn = (make(rng) for chance, make in table if rng.random() < chance)
    parts = [part for part in (first, *drawn) if part]
    rng.shuffle(parts)
    return "".join(parts)


def _rss_item(rng: random.Random) -> str:
    return f"<item>{_fields(rng, RSS_FIELDS)}</item>"


def _atom_entry(rng: random.Random) -> str:
    ids = ["tag:news.example,2024:1", "urn:uuid:1", "http://x.example/1", "42"]
    return f"<entry>{_fields(rng, ATOM_FIELDS, first=f'<id>{rng.choice(ids)}</id>')}</entry>"


def _generated(count: int) -> Iterator[tuple[str, bytes]]:
    rng = random.Random(4)
    for number in range(count):
        items = "".join(_rss_item(rng) for _ in range(rng.randint(0, 6)))
        version = rng.choice(["2.0", "0.91", "0.92"])
        yield (
            f"rss{number}",
            (
                f'<?xml version="1.0" encoding="utf-8"?><rss version="{version}" {NAMESPACES}>'
                "<channel>"
                "<title>News</title><link>http://news.example/</link><description>d</description>"
                '<atom:link href="http://news.example/rss" rel="self" type="application/rss+xml"/>'
                f"<image><url>http://news.example/i.png</url><title>i</title></image>{items}"
                "</channel></rss>"
            ).encode(),
        )
        entries = "".join(_atom_entry(rng) for _ in range(rng.randint(0, 6)))
        yield (
            f"atom{number}",
            (
                '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
                "<title>News</title><id>urn:feed</id><updated>2024-01-01T00:00:00Z</updated>"
                f'<link href="http://news.example/"/><author><name>Desk</name></author>{entries}</feed>'
            ).encode(),
        )


def test_generated_feeds_agree() -> None:
    documents = dict(_generated(150))
    accepted = _check(documents, HEADER_SETS + MORE_HEADER_SETS)
    # Most generated documents are plain enough for the fast path.
    assert accepted > len(documents) * len(HEADER_SETS + MORE_HEADER_SETS) // 3


TYPICAL_ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">
  <title>Example News</title>
  <link href="https://news.example/"/>
  <link rel="self" href="https://news.example/atom.xml"/>
  <updated>2024-03-01T12:00:00Z</updated>
  <id>urn:uuid:60a76c80-d399-11d9-b93C-0003939e0af6</id>
  <entry>
    <title type="html">Allies meet &amp;amp; agree</title>
    <link rel="alternate" type="text/html" href="https://news.example/2024/03/01/meet"/>
    <id>tag:news.example,2024:meet</id>
    <published>2024-03-01T09:00:00+09:00</published>
    <updated>2024-03-01T10:00:00Z</updated>
    <author><name>Jane Doe</name><email>jane@news.example</email></author>
    <category term="asia"/>
    <summary>Short summary.</summary>
    <content type="html">&lt;p&gt;The story, with &lt;b&gt;markup&lt;/b&gt;.&lt;/p&gt;</content>
  </entry>
</feed>"""


def test_a_typical_atom_feed_is_read_by_the_fast_path() -> None:
    headers = {"content-type": "application/atom+xml", "content-location": BASE}
    [entry] = fast_entries(TYPICAL_ATOM, "a", headers) or []
    assert [entry] == feedparser_entries(TYPICAL_ATOM, "a", headers)
    assert "https://news.example/2024/03/01/meet" == entry.link
    assert "Jane Doe" == entry.author
    assert entry.content_is_html


@pytest.mark.parametrize("encoding", ["utf-8", "utf-32-le", "cp037"])
def test_an_entity_declaration_reaches_neither_parser_however_deep(encoding: str) -> None:
    bomb = (
        '<?xml version="1.0"?><!-- ' + "padding " * 300_000 + "-->"
        '<!DOCTYPE rss [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        '<rss version="2.0"><channel><item><title>&b;</title></item></channel></rss>'
    ).encode(encoding)
    assert fast_entries(bomb, "bomb", {}) is None
    with pytest.raises(SourceError, match="declares XML entities"):
        parse_feed(bomb, "bomb", content_type="application/rss+xml")


@pytest.mark.parametrize(
    "document",
    [
        b'<?xml version="1.0"?><!DOCTYPE rss SYSTEM "x.dtd"><rss version="2.0"><channel/></rss>',
        b'<rss version="2.0"><channel><item><title>&nbsp;</title></item></channel></rss>',
        b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
        b' xmlns="http://purl.org/rss/1.0/"><item><title>t</title></item></rdf:RDF>',
        b'<feed xmlns="http://www.w3.org/2005/Atom" xml:base="http://a.example/">'
        b'<entry><link href="x"/></entry></feed>',
        b'<feed xmlns="http://purl.org/atom/ns#" version="0.3">'
        b"<entry><title>t</title></entry></feed>",
        b'<rss version="2.0"><channel><item><title>a <b>b</b></title></item></channel></rss>',
        b'<rss version="2.0"><channel><item><title>a</title><title>b</title>'
        b"</item></channel></rss>",
        b'<rss version="2.0"><channel><item><author>me@x.org</author></item></channel></rss>',
        b'<rss version="2.0" xmlns:media="http://other.example/"><channel><item>'
        b"<media:title>x</media:title></item></channel></rss>",
        b'<rss version="2.0" xmlns="http://unknown.example/"><channel><item/></channel></rss>',
        b"  \n<?xml version='1.0'?><rss version=\"2.0\"><channel><item/></channel></rss>",
    ],
    ids=[
        "doctype",
        "undefined-entity",
        "rdf",
        "xml-base",
        "atom03",
        "title-markup",
        "two-titles",
        "author-email",
        "prefix-clash",
        "unknown-default-ns",
        "late-declaration",
    ],
)
def test_the_fast_path_declines_what_it_cannot_be_sure_of(document: bytes) -> None:
    assert fast_entries(document, "d", {}) is None


@pytest.mark.parametrize(
    "charset_case",
    [
        ("application/rss+xml; charset=utf-8", "latin-1"),  # a lying header
        ("text/xml", "utf-8"),  # us-ascii by RFC 3023, then feedparser's fallbacks
        (None, "iso-8859-1"),
    ],
)
def test_charset_questions_give_the_feedparser_answer(charset_case: tuple[str | None, str]) -> None:
    content_type, encoding = charset_case
    declaration = f'<?xml version="1.0" encoding="{encoding}"?>' if content_type is None else ""
    body = (
        f'{declaration}<rss version="2.0"><channel><item><title>Notícias de São Paulo</title>'
        "<description>Olá €</description></item></channel></rss>"
    ).encode(encoding if encoding != "latin-1" else "latin-1", errors="replace")
    headers = {"content-type": content_type} if content_type else {}
    assert None is _compare(body, headers)[1]
    assert "Notícias de São Paulo" == parse_feed(body, "c", content_type=content_type)[0].title


@pytest.mark.parametrize(
    "field",
    [
        "<summary><![CDATA[<p>A <b>bold</b> claim.</p>]]></summary>",
        '<description type="text">&lt;p&gt;Tagged &amp;amp; escaped&lt;/p&gt;</description>',
        "<content>Fish &amp;amp; chips</content>",
    ],
    ids=["summary", "typed-description", "content"],
)
def test_rss_text_that_looks_like_html_is_html_as_feedparser_guesses(field: str) -> None:
    # Outside Atom, feedparser takes a text/plain field that looks like HTML for HTML.
    document = f'<rss version="2.0"><channel><item><title>t</title>{field}</item></channel></rss>'
    fast = fast_entries(document.encode(), "r", {})
    assert fast is not None
    assert feedparser_entries(document.encode(), "r", {}) == fast
    assert fast[0].content_is_html


@pytest.mark.parametrize("seed", range(5))
def test_an_rss_date_in_gmt_is_read_as_feedparser_reads_it(seed: int) -> None:
    """The shortcut for "Sun, 13 Sep 2020 12:26:40 GMT" gives feedparser's reading, for
    dates that exist and for those that do not (31 Feb, hour 24, second 60, year 0)."""
    from feedparser.datetimes import _parse_date

    from monitor.sources.fastentry import _MONTHS, _date
    from monitor.sources.feedfields import parsed_date

    rng = random.Random(seed)
    for _ in range(300):
        day, hour, minute, second = (rng.randrange(0, limit) for limit in (33, 26, 61, 62))
        year = rng.choice([0, 1, 1969, 2020, 2024, 9999])
        weekday = rng.choice(["Sun", "Mon", "Fri"])
        month = rng.choice(_MONTHS)
        text = f"{weekday}, {day:02} {month} {year:04} {hour:02}:{minute:02}:{second:02} GMT"
        assert parsed_date(_parse_date(text)) == _date(text), text


@pytest.mark.parametrize(
    "base",
    [
        "",
        "http://127.0.0.1:8080/feeds/a.xml",
        "https://news.example/dir/",
        "HTTP://News.Example/x?y=1#z",
        "feed://news.example/rss",
        "/relative/base",
    ],
)
def test_a_plain_link_is_joined_to_any_base_as_feedparser_joins_it(base: str) -> None:
    """The shortcut for plain absolute links gives what feedparser's join gives, and a
    link that is not plain still goes to it."""
    from feedparser.urls import _urljoin

    from monitor.sources.fastentry import _join

    rng = random.Random(base)
    alphabet = "ab0Z.-_~/:@?#;%= é"
    for _ in range(400):
        host = "".join(rng.choices("ab0.-Z", k=rng.randrange(0, 6)))
        path = "".join(rng.choices(alphabet, k=rng.randrange(0, 10)))
        uri = (
            rng.choice(["http://", "https://", "HTTPS://", "http:///", "ftp://", ""]) + host + path
        )
        assert _urljoin(base, uri) == _join(base, uri), uri


# --- documents the differential fuzzer found (docs/design.md, eighth stop, issue 4) ----
# Each is one the fast path read differently from feedparser before its fix; each must
# now be declined or read exactly as the feedparser path reads it.
FUZZED = {
    # feedparser keys an attribute in a namespace it knows by its prefix (dc:type,
    # xml:ispermalink), one in an unknown namespace or Atom's by its local name, and a
    # plain attribute of the same name wins: only the plain type / rel / isPermaLink count.
    "namespaced-ispermalink": b'<rss version="2.0"><channel><item>'
    b'<guid xml:isPermaLink="false">http://x.example/g</guid></item></channel></rss>',
    "namespaced-type-rel": b'<feed xmlns="http://www.w3.org/2005/Atom"'
    b' xmlns:dc="http://purl.org/dc/elements/1.1/"><entry><id>i</id>'
    b'<link dc:rel="self" href="http://a.example/x"/>'
    b'<content dc:type="html">&lt;b&gt;x&lt;/b&gt;</content></entry></feed>',
    "unknown-namespace-type": b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>i</id>'
    b'<content xmlns:x="urn:x" type="text" x:type="html">&lt;b&gt;x&lt;/b&gt;</content>'
    b"</entry></feed>",
    # An element feedparser handles, even one harmless in an entry, may act on the author
    # it sits in: dc:contributor ends as a name, and empties the author's name.
    "contributor-in-author": b'<feed xmlns="http://www.w3.org/2005/Atom"'
    b' xmlns:dc="http://purl.org/dc/elements/1.1/"><entry><id>i</id>'
    b"<author><name>Jane</name><dc:contributor/></author></entry></feed>",
    # feedparser's GeoRSS handler fails (KeyError, ValueError) on GML it cannot place:
    # GML under a prefix of its own, an EPSG code that is no number, GML as the default
    # namespace. The fast path declines GeoRSS; the feedparser path must not crash.
    "gml-other-prefix": b'<rss version="2.0" xmlns:g="http://www.opengis.net/gml"><channel>'
    b"<item><title>t</title><g:pos>1 2</g:pos></item></channel></rss>",
    "gml-epsg-not-a-number": b'<rss version="2.0" xmlns:georss="http://www.georss.org/georss"'
    b' xmlns:gml="http://www.opengis.net/gml"><channel><item><title>t</title><georss:where>'
    b'<gml:Point srsName="EPSG:x"><gml:pos>1 2</gml:pos></gml:Point></georss:where>'
    b"</item></channel></rss>",
    "gml-default-namespace": b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>i</id>'
    b'<title>t</title><Point xmlns="http://www.opengis.net/gml" srsName="urn:ogc:def:crs:EPSG::y">'
    b"<pos>1 2</pos></Point></entry></feed>",
    # Markup in a text field: feedparser keeps the tags as text and runs no start
    # handler, but it runs the end handler, and width's and height's call int(None).
    "width-in-description": b'<rss version="2.0"><channel><item><title>t</title>'
    b"<description>x <width>1</width></description></item></channel></rss>",
    "height-in-atom-summary": b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>i</id>'
    b"<title>t</title><summary>x <height/></summary></entry></feed>",
}


@pytest.mark.parametrize("name", FUZZED)
def test_documents_the_fuzzer_found_agree(name: str) -> None:
    assert 0 <= _check({name: FUZZED[name]}, HEADER_SETS + MORE_HEADER_SETS)


@pytest.mark.parametrize(
    "name", [name for name in FUZZED if name.startswith(("gml-", "wid", "hei"))]
)
def test_markup_feedparsers_handlers_fail_on_costs_no_entry(name: str) -> None:
    [entry] = parse_feed(FUZZED[name], "g", content_type="application/xml")
    assert "t" == entry.title


def test_a_document_that_names_a_file_is_no_way_to_read_that_file(tmp_path: Path) -> None:
    """feedparser opens a file or URL its argument names: the document goes to it as a
    stream, so bytes that happen to be a path are a (broken) document, not that file."""
    feed = tmp_path / "private.xml"
    feed.write_bytes(
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        b"<item><title>Secret</title><guid>1</guid></item></channel></rss>"
    )
    with pytest.raises(SourceError):
        feedparser_entries(str(feed).encode(), "doc", {})
