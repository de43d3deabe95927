"""Text helpers, identity keys and normalisation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from samples import alert_view, stored_item

from monitor.alerts.render import Renderer
from monitor.dedup import Identity, content_hash, fingerprint, item_key, other_keys
from monitor.model import Entry
from monitor.normalise import normalise_entry
from monitor.sources.feedparse import parse_feed
from monitor.text import (
    _simple_html_text,
    _TextExtractor,
    canonical_url,
    html_to_text,
    sanitize_html,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_html_to_text_keeps_paragraphs_and_drops_scripts() -> None:
    markup = "<p>One &amp; <b>two</b></p><script>evil()</script><div>Three</div>"
    assert "One & two\n\nThree" == html_to_text(markup)


@pytest.mark.parametrize("comment", ["", "<!-- read by HTMLParser -->"])
def test_table_cells_are_words_apart(comment: str) -> None:
    markup = f"{comment}<table><caption>Talks</caption><tr><th>City</th><td>Seoul</td>"
    markup += "<td>GSOMIA</td></tr></table>"
    assert "Talks\n\nCity\n\nSeoul\n\nGSOMIA" == html_to_text(markup)


def test_sanitize_html_removes_scripts_and_handlers() -> None:
    clean = sanitize_html(
        '<p onclick="x()">Hi<script>alert(1)</script><a href="javascript:x">l</a></p>'
    )
    assert "script" not in clean
    assert "onclick" not in clean
    assert "javascript" not in clean
    assert "Hi" in clean


def test_sanitized_links_are_marked_noopener_noreferrer_nofollow() -> None:
    clean = sanitize_html('<p>See <a href="https://news.example/a" rel="me">this</a></p>')
    assert '<a href="https://news.example/a" rel="noopener noreferrer nofollow">' in clean


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://Example.ORG:80/a?utm_source=x&id=3#frag", "http://example.org/a?id=3"),
        ("https://example.org:443/a?fbclid=1&gclid=2&mc_cid=3", "https://example.org/a"),
        ("https://example.org:8443/a", "https://example.org:8443/a"),
        (
            "https://www.google.com/url?q=https%3A%2F%2Fnews.example%2Fs%3Futm_medium%3Dx",
            "https://news.example/s",
        ),
        ("https://example.org", "https://example.org/"),
        ("not a url", "not a url"),
    ],
)
def test_canonical_url(url: str, expected: str) -> None:
    assert expected == canonical_url(url)


def test_item_key_prefers_guid_then_url_then_content() -> None:
    assert "guid:g" == item_key(guid="g", link="http://x.org/a", title="t", body="b")
    assert "url:http://x.org/a" == item_key(
        guid=None, link="http://x.org/a?utm_x=1", title="t", body="b"
    )
    assert item_key(guid=None, link=None, title="t", body="b").startswith("content:")
    assert (
        item_key(guid="g", link="http://x.org/a", title="t", body="b", identity="link")
        == "url:http://x.org/a"
    )
    assert item_key(guid="g", link=None, title="t", body="b", identity="content").startswith(
        "content:"
    )


@pytest.mark.parametrize(
    ("guid", "link", "identity", "expected"),
    [
        ("g", "http://x.org/a", "guid", "guid:g"),
        (None, "http://x.org/a", "guid", "content"),
        (None, None, "link", "content"),
        ("g", "  ", "link", "content"),
        ("  ", "http://x.org/a", "auto", "url:http://x.org/a"),
        ("  ", None, "auto", "content"),
        ("  ", "http://x.org/a", "guid", "content"),  # a blank GUID is no identity
        (" g ", None, "auto", "guid:g"),
        ("g", "http://x.org/a", "content", "content"),
    ],
)
def test_item_key_for_each_identity_setting(
    guid: str | None, link: str | None, identity: Identity, expected: str
) -> None:
    key = item_key(guid=guid, link=link, title="t", body="b", identity=identity)
    assert expected == (key.split(":", 1)[0] if expected == "content" else key)


@pytest.mark.parametrize(
    ("key", "also", "expected"),
    [
        ("url:http://x.org/a", (), (
            "url:http://www.x.org/a", "url:https://x.org/a", "url:https://www.x.org/a",
        )),
        ("guid:https://www.x.org/?p=1", (), (
            "guid:http://www.x.org/?p=1", "guid:http://x.org/?p=1", "guid:https://x.org/?p=1",
        )),
        ("url:http://u:p@x.org", (), ("url:https://u:p@x.org",)),
        ("guid:tag:x.org,2019:1", (), ()),  # not a URL: taken as it is
        ("guid:1234", (None,), ()),
        ("content:abc", (), ()),
        ("guid:ftp://x.org/a", (), ()),
        ("guid:https://old.org/1", ("guid:https://new.org/1",), (
            "guid:http://old.org/1", "guid:http://www.old.org/1", "guid:https://www.old.org/1",
            "guid:http://new.org/1", "guid:http://www.new.org/1", "guid:https://new.org/1",
            "guid:https://www.new.org/1",
        )),
    ],
)  # fmt: skip
def test_other_keys_are_a_urls_other_scheme_and_www_host_and_the_keys_given(
    key: str, also: tuple[str | None, ...], expected: tuple[str, ...]
) -> None:
    assert expected == other_keys(key, *also)


def test_fingerprint_ignores_case_spacing_and_accents_but_not_words() -> None:
    body = (
        "Seoul said on Friday it would keep the pact, which Tokyo and Washington had urged "
        "it to keep before the deadline."
    )
    assert fingerprint("A", body, "k1") == fingerprint(
        "B",
        "  SEOUL said on friday,   it would keep the pact, which TOKYO and Washington had "
        "urged it to keep before the DEADLINE",
        "k2",
    )
    assert fingerprint("A", body, "k") == fingerprint("A", body.replace("Seoul", "Séoul"), "k")
    assert fingerprint("A", body, "k") != fingerprint("A", body.replace("keep", "end"), "k")
    assert content_hash("t", body) != content_hash("t2", body)


def test_normalise_caps_hostile_sizes_and_fixes_dates() -> None:
    entry = Entry(
        title="<b>Big</b>\r\n" + "x" * 5000,
        content="<p>" + "y " * 300_000 + "</p>",
        content_is_html=True,
        published=NOW + timedelta(days=30),
    )
    item = normalise_entry("s", entry, identity="auto", now=NOW)
    assert len(item.title) <= 1000
    assert "\n" not in item.title
    assert len(item.body) <= 200_000
    assert NOW == item.published
    assert item.html is not None


def test_normalise_without_date_uses_fetch_time_and_converts_to_utc() -> None:
    seoul = datetime(2019, 11, 15, 9, 0, tzinfo=UTC) + timedelta(hours=0)
    item = normalise_entry("s", Entry(title="t", content="b"), identity="auto", now=NOW)
    assert NOW == item.published
    dated = normalise_entry(
        "s", Entry(title="t", content="b", published=seoul), identity="auto", now=NOW
    )
    assert UTC == dated.published.tzinfo


@pytest.mark.parametrize(
    "published",
    [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 19, 0, tzinfo=timezone(timedelta(hours=-5))),
    ],
    ids=["year-1", "epoch-zero", "epoch-zero-in-new-york"],
)
def test_a_date_no_later_than_the_epoch_is_the_fetch_time_and_renders_anywhere(
    published: datetime,
) -> None:
    entry = Entry(title="GSOMIA talks", content="b", published=published)
    item = normalise_entry("s", entry, identity="auto", now=NOW)
    assert NOW == item.published

    message = Renderer(timezone="America/New_York").render_alert(
        alert_view(stored_item(published=item.published)), "k"
    )
    assert "2026-11-27 07:00 EST" in message.text


@pytest.mark.parametrize(
    "description",
    [
        "&lt;![CDATA[&lt;p&gt;Seoul talks on &lt;b&gt;GSOMIA&lt;/b&gt;&lt;/p&gt;]]&gt;",
        "<![CDATA[<![CDATA[<p>Seoul talks on <b>GSOMIA</b></p>]]>]]>",
        "<![CDATA[<![CDATA[<p>Seoul talks on <b>GSOMIA</b></p>]]>",
    ],
    ids=["escaped", "nested", "unclosed"],
)
def test_html_wrapped_in_cdata_twice_is_matched_and_rendered_as_html(description: str) -> None:
    document = (
        '<rss version="2.0"><channel><title>t</title><item><guid>a</guid><title>Talks</title>'
        f"<description>{description}</description></item></channel></rss>"
    ).encode()
    (entry,) = parse_feed(document, "feed.rss")
    item = normalise_entry("s", entry, identity="auto", now=NOW)

    assert "Seoul talks on GSOMIA" == item.body
    assert "<p>Seoul talks on <b>GSOMIA</b></p>" == item.html


def test_a_moved_feeds_item_is_keyed_by_its_key_names_and_remembers_its_former_key() -> None:
    """See FeedSource._named_at_home: the identity comes from the names resolved against
    the feed's configured URL; the key made of the fetched names is another key."""
    moved = Entry(
        title="t",
        content="b",
        guid="https://new.example/1",
        link="https://new.example/1",
        key_names=("http://old.example/1", "http://old.example/1"),
        former_names=("https://new.example/1", "https://new.example/1"),
    )
    item = normalise_entry("s", moved, identity="auto", now=NOW)
    assert "guid:http://old.example/1" == item.key
    assert "guid:https://new.example/1" in item.other_keys
    at_home = normalise_entry(
        "s", Entry(title="t", content="b", guid="g"), identity="auto", now=NOW
    )
    assert ("guid:g", ()) == (at_home.key, at_home.other_keys)


def test_a_nul_in_a_moved_feeds_names_is_replaced_as_in_its_other_fields() -> None:
    moved = Entry(
        title="t",
        content="b",
        guid="x\x00",
        key_names=("h\x00", None),
        former_names=("x\x00", None),
    )
    item = normalise_entry("s", moved, identity="auto", now=NOW)
    assert ("guid:h\ufffd", ("guid:x\ufffd",)) == (item.key, item.other_keys)


# Fragments that make both simple and awkward HTML: block, skipped, raw-text and inline
# tags in both cases, attributes of every quoting, self-closing tags, entities, stray
# "<" and ">", comments, declarations, names that run on past an attribute.
FRAGMENTS = st.sampled_from(
    [
        "<p>", "</p>", "<P>", "</P >", "<br>", "<br/>", "<br />", "<div class=x>",
        '<div class="a>b">', "<div class='c' id=d>", "</div>", "<li data-x>", "</li>",
        "<head>", "</head>", "<template>", "</template>", "<noscript/>", "<script>",
        "</script>", "<style>", "</style>", "<b>", "</b>", "<a href=http://x/y?a=1&b=2>",
        "</a>", "<span\u00a0class=x>", "<p\vclass=x>", "<p/ >", "<!-- c -->", "<!DOCTYPE html>",
        "<?pi?>", "<![CDATA[x]]>", "a < b", "c > d", "&amp;", "&lt;p&gt;", "&copy", "&#38;",
        "&#x3C;", "& ", "text", " two words ", "\n", "\u00e9t\u00e9", "<", "</", "<p", "<1>",
        "<p:x>", "</ p>", "<P\tCLASS = 'x'>", "<img src=a.png>",
    ]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(FRAGMENTS, max_size=14).map("".join))
def test_html_to_text_reads_simple_html_as_htmlparser_does(markup: str) -> None:
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    fast = _simple_html_text(markup)
    assert fast is None or "".join(extractor.parts) == fast


def test_feed_html_takes_the_regex_path() -> None:
    markup = '<p>One &amp; <a href="https://x.example/?a=1&amp;b=2">two</a><br/></p><P>Three'
    assert "\n\nOne & two\n\n\n\n\n\n\n\nThree" == _simple_html_text(markup)
    assert _simple_html_text("<p>x</p><!-- note -->") is None


def test_a_marked_section_htmlparser_cannot_read_is_text() -> None:
    """_markupbase raises AssertionError at "<![x": one such entry failed its feed's polls."""
    assert "Pact\n\n<![x" == html_to_text("<p>Pact</p><![x")
    assert "Pact" in html_to_text("<p>Pact</p><![bogus[ a ]]><p>more</p>")


@pytest.mark.parametrize(
    "markup",
    ["<a b='" * 50_000, "<a" * 100_000, "<![CDATA[ >]>" * 40_000, "<p>x</p>" + "<!--" * 50_000],
    ids=["open-quote", "open-tag", "open-cdata", "open-comment"],
)
@pytest.mark.timeout(60)  # a guard against the hang, not a speed goal (they take < 1 s)
def test_unclosed_markup_is_read_in_linear_time(markup: str) -> None:
    """HTMLParser searched to the end of the document again for each of these (minutes
    for a few hundred kilobytes); a feed sets the pace of its own poll. What no tag
    closes is text, kept whole."""
    kept = markup.removeprefix("<p>x</p>")
    assert ("x\n\n" if kept != markup else "") + kept == html_to_text(markup)


@pytest.mark.parametrize("markup", ["<ul><li>" * 40_000, "<div>" * 80_000], ids=["lists", "divs"])
def test_html_nested_too_deep_to_sanitise_in_good_time_is_kept_as_text(markup: str) -> None:
    entry = Entry(title="Deep", content=markup + "GSOMIA", content_is_html=True)
    item = normalise_entry("s", entry, identity="auto", now=NOW)
    # No sanitised HTML: the sanitiser took half a minute and more on these.
    assert (None, "GSOMIA") == (item.html, item.body)


def test_many_void_and_closed_elements_are_still_sanitised() -> None:
    markup = "<p>line<br>" * 5_000 + "<ul><li>a<li>b</ul>" * 5_000 + "<b>x</b>" * 5_000
    item = normalise_entry(
        "s", Entry(title="t", content=markup, content_is_html=True), identity="auto", now=NOW
    )
    assert item.html is not None


def test_a_title_drops_control_characters_that_are_no_space() -> None:
    """ESC and BEL would reach mail subjects, chat messages and terminals."""
    from monitor.text import one_line

    assert "GSOMIA ]0;owned extended" == one_line("GSOMIA \x1b]0;owned\x07\x9b extended\x00")
    assert "a b c" == one_line("a\x1cb\tc")  # a control that is a space still separates
    assert "\u05e9\u05dc\u05d5\u05dd \u202bRTL\u202c" == one_line(
        "\u05e9\u05dc\u05d5\u05dd \u202bRTL\u202c"  # bidi embeddings stay: RTL text uses them
    )


def test_a_title_without_its_controls_keeps_its_content_hash() -> None:
    """Items stored with the controls in their titles are unchanged when polled again (an
    'updated' item alerts again under on_update: always), and keep a content key."""
    from monitor.dedup import content_hash
    from monitor.text import one_line

    for raw in ("Seoul\x07GSOMIA", "a\x1b[2Jb", "x\x85y", "GSOMIA\x00extended"):
        kept = " ".join(raw.split())  # what a title was before controls were dropped
        assert content_hash(kept, "body") == content_hash(one_line(raw), "body")
