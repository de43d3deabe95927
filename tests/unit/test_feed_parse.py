"""Feed documents -> entries: gofeed's one-feature cases, format detection, refusals."""

from __future__ import annotations

import codecs
import json
from datetime import datetime
from pathlib import Path

import pytest
from gofeed_cases import GOFEED, translator_pairs

from monitor.errors import SourceError
from monitor.sources.feedparse import parse_feed
from monitor.text import one_line


def _date(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


@pytest.mark.parametrize(
    ("source", "expected_file"), translator_pairs(), ids=lambda path: path.stem
)
def test_gofeed_translator_case(source: Path, expected_file: Path) -> None:
    """Title, link, guid, date and author agree with gofeed's normalised result."""
    expected_items = json.loads(expected_file.read_text()).get("items", [])
    entries = parse_feed(source.read_bytes(), source.name)
    assert len(expected_items) == len(entries)
    for want, got in zip(expected_items, entries, strict=True):
        assert one_line(want.get("title", "")) == got.title
        assert want.get("link") == got.link
        if "guid" in want:
            assert want["guid"] == got.guid
        assert _date(want.get("publishedParsed") or want.get("updatedParsed")) == got.published
        authors = want.get("authors") or [{}]
        if authors[0].get("name"):
            assert authors[0]["name"] == got.author


@pytest.mark.parametrize(
    "name",
    [
        "atom03_feed.xml",
        "atom10_feed.xml",
        "rss_feed.xml",
        "rss_feed_bom.xml",
        "rss_feed_leading_spaces.xml",
        "rdf_feed.xml",
        "sample.json",
        "json10_feed.json",
        "json11_feed.json",
    ],
)
def test_gofeed_universal_feeds_are_recognised(name: str) -> None:
    parse_feed((GOFEED / "parser" / "universal" / name).read_bytes(), name)


@pytest.mark.parametrize("name", ["unknown_feed.xml", "empty_feed.xml", "invalid.json"])
def test_gofeed_universal_non_feeds_are_source_errors(name: str) -> None:
    with pytest.raises(SourceError, match="not a feed"):
        parse_feed((GOFEED / "parser" / "universal" / name).read_bytes(), name)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<rss version="2.0"><channel><item><title>&lol3;</title></item></channel></rss>"""
# More than the first megabyte of prolog, and a literal that looks like a root element.
LONG_COMMENT = b"<!-- " + b"padding " * 300_000 + b"-->\n"
LITERAL_LIKE_A_ROOT = b'<!DOCTYPE rss SYSTEM "<x" ['


def _without_declaration(document: bytes) -> bytes:
    return document.split(b"?>", 1)[1].lstrip()


@pytest.mark.parametrize(
    "document",
    [
        BILLION_LAUGHS,
        codecs.BOM_UTF16_LE + BILLION_LAUGHS.decode().encode("utf-16-le"),
        BILLION_LAUGHS.replace(b"<!ENTITY lol ", b'<!ENTITY lol SYSTEM "file:///etc/passwd"'),
        BILLION_LAUGHS.replace(b"<!DOCTYPE", b"<!-- <x --><!DOCTYPE"),
        BILLION_LAUGHS.replace(b"<!DOCTYPE", b"<?pi <x ?><!DOCTYPE"),
        BILLION_LAUGHS.replace(b"<!DOCTYPE", LONG_COMMENT + b"<!DOCTYPE"),
        LONG_COMMENT + _without_declaration(BILLION_LAUGHS),
        BILLION_LAUGHS.replace(b"<!DOCTYPE", b"<?pi " + LONG_COMMENT + b"?><!DOCTYPE"),
        BILLION_LAUGHS.replace(b"<!DOCTYPE rss [", LITERAL_LIKE_A_ROOT),
        BILLION_LAUGHS.decode().encode("utf-16-le"),
        BILLION_LAUGHS.decode().encode("utf-32-le"),
        BILLION_LAUGHS.decode().encode("utf-32"),
        BILLION_LAUGHS.decode().encode("cp037"),
        _without_declaration(BILLION_LAUGHS).decode().encode("utf-16"),
    ],
    ids=[
        "utf-8",
        "utf-16",
        "external",
        "after-a-comment",
        "after-a-processing-instruction",
        "after-a-megabyte-of-comment",
        "after-a-megabyte-of-comment-first",
        "after-a-megabyte-of-processing-instruction",
        "after-a-literal-holding-<x",
        "utf-16-without-a-byte-order-mark",
        "utf-32-without-a-byte-order-mark",
        "utf-32",
        "ebcdic",
        "utf-16-without-an-xml-declaration",
    ],
)
def test_entity_declarations_are_refused_before_parsing(document: bytes) -> None:
    with pytest.raises(SourceError, match="declares XML entities"):
        parse_feed(document, "bomb.xml")


def test_an_entity_declaration_inside_an_entry_is_text_not_a_refusal() -> None:
    feed = b"""<?xml version="1.0"?>
<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"
  "http://my.netscape.com/publish/formats/rss-0.91.dtd">
<rss version="0.91"><channel><title>XML news</title>
<item><title>Entities explained</title>
<description><![CDATA[<p>Write <!DOCTYPE x [<!ENTITY y "z">]> at the top.</p>]]></description>
</item></channel></rss>"""
    [entry] = parse_feed(feed, "xml-news")
    assert "Entities explained" == entry.title
    assert '<!ENTITY y "z">' in entry.content


@pytest.mark.parametrize(
    "document",
    [
        b"<!DOCTYPE html>\n<html><head><title>Oops</title></head><body>Hi</body></html>",
        b"  <HTML lang=en><body><p>login</p></body></HTML>",
        b'<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><body/></html>',
    ],
)
def test_an_html_page_is_named_as_such(document: bytes) -> None:
    with pytest.raises(SourceError, match="an HTML page"):
        parse_feed(document, "page")


@pytest.mark.parametrize(
    "document", [b"\x00\x01\x02garbage\xff\xfe", b"just some words", b'{"version": 3}']
)
def test_garbage_is_not_a_feed(document: bytes) -> None:
    with pytest.raises(SourceError, match="not a feed"):
        parse_feed(document, "garbage")


def test_relative_links_resolve_against_the_feed_url() -> None:
    feed = b"""<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>tag:x,2024:1</id>
    <title>One</title><link href="/posts/1"/></entry></feed>"""
    [entry] = parse_feed(feed, "f", base_url="http://127.0.0.1:8080/feeds/atom.xml")
    assert "http://127.0.0.1:8080/posts/1" == entry.link


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b'{"version": "1.1", "items": [], "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
         "JSON nested too deeply"),
        (b'{"version": "1.1", "items": [{"id": ' + b"9" * 5_000 + b"}]}", "invalid JSON"),
        (b"[]", "JSON without a JSON Feed version"),
    ],
    ids=["deep", "huge-number", "array"],
)  # fmt: skip
def test_hostile_json_is_a_source_error(document: bytes, reason: str) -> None:
    with pytest.raises(SourceError, match=f"not a feed \\({reason}"):
        parse_feed(document, "feed.json")


def test_relative_json_feed_links_resolve_against_the_feed_url() -> None:
    document = _json_feed(
        {"id": "1", "url": "/posts/1"},
        {"id": "2", "external_url": "../elsewhere/2"},
        {"id": "3", "url": "https://other.example/3"},
    )
    fetched = parse_feed(document, "f", base_url="http://127.0.0.1:8080/feeds/feed.json")
    at_its_own_url = parse_feed(
        json.dumps({**json.loads(document), "feed_url": "https://blog.example/feed.json"}).encode(),
        "feed.json",
    )

    assert [
        "http://127.0.0.1:8080/posts/1",
        "http://127.0.0.1:8080/elsewhere/2",
        "https://other.example/3",
    ] == [entry.link for entry in fetched]
    assert "https://blog.example/posts/1" == at_its_own_url[0].link


def test_an_atom_id_is_not_a_link_but_an_rss_permalink_guid_is() -> None:
    atom = b"""<feed xmlns="http://www.w3.org/2005/Atom">
    <entry><id>http://example.org/a</id><title>A</title></entry></feed>"""
    rss = b"""<rss version="2.0"><channel>
    <item><guid>http://example.org/b</guid><title>B</title></item></channel></rss>"""
    assert parse_feed(atom, "atom")[0].link is None
    assert "http://example.org/b" == parse_feed(rss, "rss")[0].link


def test_a_lying_charset_header_still_gives_readable_text() -> None:
    """Served as UTF-8 but written in Latin-1: feedparser's fallbacks recover the text."""
    feed = '<rss version="2.0"><channel><item><title>Notícias de São Paulo</title></item>'
    body = (feed + "</channel></rss>").encode("latin-1")
    [entry] = parse_feed(body, "lying", content_type="application/rss+xml; charset=utf-8")
    assert "Notícias de São Paulo" == entry.title


KOREAN = "지소미아 종료 유예: 한일 양국이 막판 협상 끝에 협정을 조건부로 연장했다"
RUSSIAN = "Правительство объявило новые меры поддержки экономики в понедельник"
JAPANESE = "日韓の軍事情報包括保護協定は失効の直前に延長が決まった。政府が発表した"
# RSS 2.0 takes the fast path; RSS 1.0 (RDF) is feedparser's.
RSS2 = (
    "<rss version='2.0'><channel><item>"
    "<title>{0}</title><description>{0}</description></item></channel></rss>"
)
RDF = (
    "<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#' "
    "xmlns='http://purl.org/rss/1.0/'><item rdf:about='http://news.test/1'>"
    "<title>{0}</title><description>{0}</description></item></rdf:RDF>"
)


@pytest.mark.parametrize("template", [RSS2, RDF], ids=["fast-path", "feedparser"])
@pytest.mark.parametrize(
    ("text", "encoding"),
    [(KOREAN, "euc-kr"), (RUSSIAN, "windows-1251"), (JAPANESE, "shift_jis")],
    ids=["korean", "russian", "japanese"],
)
@pytest.mark.parametrize(
    "content_type",
    [None, "application/rss+xml", "text/xml", "application/rss+xml; charset=utf-8"],
    ids=["no-header", "no-charset", "text-xml", "lying-utf-8"],
)
def test_an_undeclared_charset_is_detected(
    template: str, text: str, encoding: str, content_type: str | None
) -> None:
    document = template.format(text).encode(encoding)
    [entry] = parse_feed(document, "f", content_type=content_type, base_url="http://news.test/")
    assert (text, text) == (entry.title, entry.content)


@pytest.mark.parametrize(
    ("encoding", "declaration"),
    [("utf-8", ""), ("euc-kr", "<?xml version='1.0' encoding='euc-kr'?>")],
)
def test_a_latin_1_label_gives_way_to_utf_8_and_to_the_documents_own(
    encoding: str, declaration: str
) -> None:
    """Servers label anything ISO-8859-1: UTF-8 bytes, or a document that says it is
    EUC-KR, are read as what they are (Latin-1 decodes any bytes, into mojibake)."""
    document = (declaration + RSS2.format(KOREAN)).encode(encoding)
    content_type = "application/rss+xml; charset=ISO-8859-1"
    [entry] = parse_feed(document, "f", content_type=content_type)
    assert KOREAN == entry.title


@pytest.mark.parametrize(
    ("content_type", "declaration"),
    [
        ("application/rss+xml; charset=rot13", ""),
        ("application/rss+xml; charset=idna", ""),
        (None, "<?xml version='1.0' encoding='hex'?>"),
        (None, "<?xml version='1.0' encoding='utf-8\x00'?>"),
        (None, "<?xml version='1.0' encoding='undefined'?>"),
    ],
)
def test_a_label_naming_no_text_encoding_is_ignored(
    content_type: str | None, declaration: str
) -> None:
    """A label is hostile input: one naming a codec that is no text encoding (or no
    codec) is as good as none, not an exception out of the parser."""
    document = (declaration + RSS2.format("Größere Änderungen")).encode("utf-8")
    [entry] = parse_feed(document, "f", content_type=content_type)
    assert "Größere Änderungen" == entry.title


def test_a_document_declaring_windows_1252_is_believed_though_it_decodes_as_utf_8() -> None:
    """ "CAF\u00c9\u2026" in windows-1252 is C9 85, valid UTF-8 too: the document says
    which it is, and the server agrees."""
    declared = "<?xml version='1.0' encoding='windows-1252'?>"
    document = (declared + RSS2.format("CAF\u00c9\u2026")).encode("cp1252")
    content_type = "application/rss+xml; charset=windows-1252"
    [entry] = parse_feed(document, "f", content_type=content_type)
    assert "CAF\u00c9\u2026" == entry.title


def test_a_charset_that_decodes_is_believed() -> None:
    """Detection is for a charset missing or failing: one that decodes is not second-guessed."""
    document = RSS2.format("Größere Änderungen à Paris").encode("iso-8859-15")
    declared = b"<?xml version='1.0' encoding='iso-8859-15'?>" + document
    [entry] = parse_feed(declared, "f")
    assert "Größere Änderungen à Paris" == entry.title


def _json_feed(*items: dict[str, object]) -> bytes:
    return json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": items}).encode()


def test_json_fields_of_the_wrong_type_cost_only_those_fields() -> None:
    document = _json_feed(
        {"id": "1", "title": "Bad url", "url": {"href": "https://a.example/"}},
        {"id": "2", "title": "Bad external_url", "url": 7, "external_url": ["x"]},
        {"id": "3", "title": "Bad author", "authors": [{"name": 5}], "author": {"name": []}},
        {"id": "4", "title": "Good", "url": "https://a.example/4", "authors": [{"name": "Kim"}]},
    )
    entries = parse_feed(document, "feed.json")

    assert [None, None, None, "https://a.example/4"] == [entry.link for entry in entries]
    assert [None, None, None, "Kim"] == [entry.author for entry in entries]


@pytest.mark.parametrize("published", ["Sat, 28 Nov 2026 10:00:00 GMT", "", 1764324000, None])
def test_a_json_item_without_a_readable_date_published_takes_date_modified(
    published: object,
) -> None:
    document = _json_feed(
        {"id": "1", "date_published": published, "date_modified": "2026-11-28T10:00:00+09:00"}
    )
    (entry,) = parse_feed(document, "feed.json")

    assert _date("2026-11-28T01:00:00Z") == entry.published


@pytest.mark.parametrize(
    "feed_authors",
    [{"authors": [{"url": "https://k.example"}, {"name": "Kim"}]}, {"author": {"name": "Kim"}}],
    ids=["1.1", "1.0"],
)
def test_a_json_item_without_authors_has_the_feeds(feed_authors: dict[str, object]) -> None:
    document = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            **feed_authors,
            "items": [{"id": "1"}, {"id": "2", "authors": [{"name": "Lee"}]}, {"id": "3"}],
        }
    ).encode()
    entries = parse_feed(document, "feed.json")

    assert ["Kim", "Lee", "Kim"] == [entry.author for entry in entries]


def test_json_text_fields_that_are_no_strings_are_no_text() -> None:
    """A title, body or summary of another type was its Python spelling ("{'a': 1}"),
    matched, stored and shown; a body of the wrong type hid the right one after it."""
    document = _json_feed(
        {"id": "1", "title": ["Seoul", "talks"], "content_text": "Seoul talks resume"},
        {"id": "2", "title": "Html", "content_html": {"a": 1}, "content_text": "Plain"},
        {"id": "3", "title": "Text", "content_text": ["x"], "summary": "Summary"},
        {"id": "4", "title": "Summary", "summary": 5},
    )
    entries = parse_feed(document, "feed.json")

    assert [
        ("", "Seoul talks resume", False),
        ("Html", "Plain", False),
        ("Text", "Summary", False),
        ("Summary", "", False),
    ] == [(e.title, e.content, e.content_is_html) for e in entries]


@pytest.mark.parametrize(
    "date",
    ["0001-01-01T00:00:00+04:00", "9999-12-31T23:00:00-04:00"],
    ids=["year-1-east", "year-9999-west"],
)
def test_a_date_beyond_the_datetime_range_in_utc_is_no_date(date: str) -> None:
    atom = (
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
        f"<entry><id>a</id><title>Atom</title><updated>{date}</updated></entry></feed>"
    ).encode()
    json_feed = _json_feed({"id": "j", "title": "JSON", "date_published": date})
    entries = parse_feed(atom, "feed.atom") + parse_feed(json_feed, "feed.json")

    assert [("Atom", None), ("JSON", None)] == [(e.title, e.published) for e in entries]


def test_gml_outside_a_georss_where_does_not_stop_the_feed() -> None:
    """feedparser's GeoRSS handler raises KeyError on a stray GML element."""
    document = (
        b'<?xml version="1.0"?><rss version="2.0" xmlns:gml="http://www.opengis.net/gml">'
        b"<channel><title>Desk</title><item><title>Seoul keeps GSOMIA</title>"
        b"<gml:posList>37.5 127.0 35.7 139.7</gml:posList>"
        b"<description>Seoul said it would keep the pact.</description></item>"
        b"</channel></rss>"
    )
    [entry] = parse_feed(document, "desk")
    assert ("Seoul keeps GSOMIA", "Seoul said it would keep the pact.") == (
        entry.title,
        entry.content,
    )


def test_an_item_with_elements_nested_past_the_recursion_limit_is_read() -> None:
    """Deep markup a feed does not use (an extension's tree) is no crash."""
    depth = 5000
    document = (
        b"<?xml version='1.0'?><rss version='2.0'><channel><item><title>Deep</title>"
        b"<link>http://news.test/deep</link>"
        + b"<x>" * depth
        + b"</x>" * depth
        + b"</item></channel></rss>"
    )
    entries = parse_feed(document, "deep.xml")
    assert [("Deep", "http://news.test/deep")] == [(e.title, e.link) for e in entries]


def _rss_dated(date: str) -> bytes:
    """An RSS 2.0 feed (the fast reader's) with one item dated ``date``."""
    return (
        '<rss version="2.0"><channel><title>t</title>'
        f"<item><guid>a</guid><title>RSS</title><pubDate>{date}</pubDate></item>"
        "</channel></rss>"
    ).encode()


def _rdf_dated(date: str) -> bytes:
    """An RSS 1.0 feed (feedparser's) with one item dated ``date``."""
    return (
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
        ' xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        '<channel rdf:about="https://news.example/"><title>t</title></channel>'
        '<item rdf:about="https://news.example/a"><title>RDF</title>'
        f"<link>https://news.example/a</link><dc:date>{date}</dc:date></item></rdf:RDF>"
    ).encode()


@pytest.mark.parametrize(
    ("date", "utc"),
    [
        ("Sat, 28 Nov 2026 10:00:00 KST", "2026-11-28T01:00:00Z"),
        ("Sat, 28 Nov 2026 10:00:00 jst", "2026-11-28T01:00:00Z"),
        ("2026-11-28 10:00:00 KST", "2026-11-28T01:00:00Z"),
        ("Sat, 28 Nov 2026 10:00:00 CEST", "2026-11-28T08:00:00Z"),
        ("Sat, 28 Nov 2026 10:00:00 AEDT", "2026-11-27T23:00:00Z"),
        ("Sat, 28 Nov 2026 10:00:00 NST", "2026-11-28T13:30:00Z"),
        ("Sat, 28 Nov 2026 10:00:00 EST", "2026-11-28T15:00:00Z"),
        ("Sat, 28 Nov 2026 10:00:00 XYZ", "2026-11-28T10:00:00Z"),
    ],
)
def test_a_zone_abbreviation_is_read_at_its_offset(date: str, utc: str) -> None:
    """feedparser knows only the US zones and a few others; KST was read as UTC."""
    entries = parse_feed(_rss_dated(date), "feed.rss") + parse_feed(_rdf_dated(date), "feed.rdf")

    assert [("RSS", _date(utc)), ("RDF", _date(utc))] == [(e.title, e.published) for e in entries]
