"""Canonical URLs: one spelling per page, whatever tracking or wrapping it came with."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.dedup import item_key
from monitor.text import canonical_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://news.example/a?id=7&utm_source=rss&utm_medium=feed&utm_campaign=x",
            "https://news.example/a?id=7",
        ),
        ("https://news.example/a?fbclid=IwAR0&gclid=Cj0&page=2", "https://news.example/a?page=2"),
        ("https://news.example/a?mc_cid=1&mc_eid=2&MC_TC=3", "https://news.example/a"),
        ("https://news.example/a?b=2&a=1#comments", "https://news.example/a?b=2&a=1"),
        ("HTTPS://News.Example:443/Path/Case", "https://news.example/Path/Case"),
        ("http://news.example:80", "http://news.example/"),
        ("http://news.example:8080/a?", "http://news.example:8080/a"),
        ("https://news.example/a?q=", "https://news.example/a?q="),
        (
            "https://www.google.com/url?rct=j&url=https://news.example/s%3Fid%3D3%26utm_source%3Dg&ct=ga",
            "https://news.example/s?id=3",
        ),
        (
            "https://news.google.com/url?q=https%3A%2F%2Fnews.example%2Fa%2520b",
            "https://news.example/a%20b",
        ),
        (
            "https://l.facebook.com/l.php?u=https%3A%2F%2Fnews.example%2Fx%3Ffbclid%3D1&h=AT0",
            "https://news.example/x",
        ),
        (
            "https://www.google.com/url?q=https://l.facebook.com/l.php%3Fu%3Dhttps%253A%252F%252Fnews.example%252Fz",
            "https://news.example/z",
        ),
        (
            "https://www.google.com/url?q=javascript:alert(1)",
            "https://www.google.com/url?q=javascript%3Aalert%281%29",
        ),
        ("mailto:desk@news.example", "mailto:desk@news.example"),
        ("/relative/path", "/relative/path"),
        ("http://[::1", "http://[::1"),
        ("http://[::1]:8080/a?utm_source=x#f", "http://[::1]:8080/a"),
        ("https://[2001:DB8::1]:443/a", "https://[2001:db8::1]/a"),
        ("http://[::1]", "http://[::1]/"),
        # A query keeps its bytes and its bare names: the canonical URL is the one alerts
        # link to, the page's own minus tracking. A value in EUC-KR (Korean sites' own)
        # is bytes that are no UTF-8.
        (
            "http://news.example.co.kr/list.php?section=%B0%E6%C1%A6&utm_source=rss",
            "http://news.example.co.kr/list.php?section=%B0%E6%C1%A6",
        ),
        ("http://news.example/read.php?12345", "http://news.example/read.php?12345"),
        ("http://news.example/read.php?12345&utm_medium=x", "http://news.example/read.php?12345"),
        ("https://news.example/s?q=中&a=1", "https://news.example/s?q=%E4%B8%AD&a=1"),
    ],
)
def test_canonical_url(url: str, expected: str) -> None:
    assert expected == canonical_url(url)


def test_copies_of_a_link_give_one_item_key() -> None:
    keys = {
        item_key(guid=None, link=link, title="t", body="b")
        for link in (
            "https://news.example/story?id=1",
            "https://news.example/story?id=1&utm_source=twitter#top",
            "HTTPS://NEWS.EXAMPLE:443/story?id=1&fbclid=abc",
            "https://www.google.com/url?q=https%3A%2F%2Fnews.example%2Fstory%3Fid%3D1",
        )
    }
    assert {"url:https://news.example/story?id=1"} == keys


_parts = st.text(alphabet="abcXYZ019-._~%/?=&#:+ ", max_size=30)


@given(
    scheme=st.sampled_from(["http", "https", "HTTP"]),
    host=st.sampled_from(
        ["news.example", "News.Example", "www.google.com", "l.facebook.com", "[2001:DB8::1]"]
    ),
    port=st.sampled_from(["", ":80", ":443", ":8080"]),
    rest=_parts,
)
def test_canonical_url_is_idempotent(scheme: str, host: str, port: str, rest: str) -> None:
    once = canonical_url(f"{scheme}://{host}{port}/{rest}")
    assert once == canonical_url(once)


def test_spellings_of_one_path_give_one_item_key() -> None:
    """Escapes in either hex case, and unreserved characters escaped or not (RFC 3986
    6.2.2): one page. A reserved character's escape (%2F) stays an escape."""
    spellings = (
        "https://news.example/~desk/café/a%2Fb",
        "https://news.example/%7edesk/caf%c3%a9/a%2fb",
        "https://news.example/%7Edesk/caf%C3%A9/a%2Fb",
        "https://news.example/%7E%64esk/caf%C3%a9/a%2Fb",
    )
    keys = {item_key(guid=None, link=link, title="t", body="b") for link in spellings}
    assert {"url:https://news.example/~desk/caf%C3%A9/a%2Fb"} == keys


def test_spellings_of_an_internationalised_host_give_one_item_key() -> None:
    """IDNA (UTS 46): the host in Unicode, in either case, with an ideographic full
    stop, and as the DNS knows it (Punycode) is one host."""
    spellings = (
        "https://bücher.example/a",
        "https://Bücher.Example/a",
        "https://bücher\u3002example/a",
        "https://xn--bcher-kva.example/a",
        "https://XN--BCHER-KVA.example/a",
    )
    keys = {item_key(guid=None, link=link, title="t", body="b") for link in spellings}
    assert {"url:https://xn--bcher-kva.example/a"} == keys


def test_a_host_idna_refuses_is_kept_as_written() -> None:
    assert "https://☃.example/a" == canonical_url("https://☃.example/a")


@pytest.mark.parametrize(
    "wrapped",
    [
        "https://www.facebook.com/l.php?u=https%3A%2F%2Fnews.example%2Fa&h=AT0",
        "https://m.facebook.com/l.php?u=https%3A%2F%2Fnews.example%2Fa",
        "https://l.instagram.com/?u=https%3A%2F%2Fnews.example%2Fa&e=AT0",
        "https://www.youtube.com/redirect?event=video_description&q=https%3A%2F%2Fnews.example%2Fa",
        "https://www.google.com/url?sa=t&url=HTTPS://news.example/a",
    ],
)
def test_common_redirect_wrappers_are_unwrapped(wrapped: str) -> None:
    assert "https://news.example/a" == canonical_url(wrapped)


@pytest.mark.parametrize(
    "url",
    [
        "https://www.google.com/urls?q=https%3A%2F%2Fnews.example%2Fa",
        "https://www.youtube.com/watch?v=x&q=https%3A%2F%2Fnews.example%2Fa",
        "https://t.co/AbC123",
        "https://news.google.com/rss/articles/CBMiK2h0dHBzOi8vbmV3cy5leGFtcGxl?oc=5",
    ],
)
def test_no_other_page_is_taken_for_a_wrapper(url: str) -> None:
    """Only a wrapper's own path: another page there may take a URL as a parameter. A
    shortener's or a Google News article's target is known only to its server."""
    assert canonical_url(url) == canonical_url(canonical_url(url))
    assert not canonical_url(url).startswith("https://news.example")


def test_links_differing_only_in_non_utf_8_query_bytes_are_two_items() -> None:
    economy = "http://news.example.co.kr/list.php?section=%B0%E6"
    politics = "http://news.example.co.kr/list.php?section=%B1%B9"
    assert item_key(guid=None, link=economy, title="t", body="b") != item_key(
        guid=None, link=politics, title="t", body="b"
    )


URL_PARTS = st.tuples(
    st.sampled_from(["http://", "https://", "HTTP://", "ftp://", " http://"]),
    st.text(st.sampled_from("ab.-0Z_:@[]"), max_size=8)
    | st.sampled_from(["www.google.com", "l.facebook.com", "news.example"]),
    st.text(st.sampled_from("/aZ0._~-%?#&= é\t"), max_size=12),
)


@given(URL_PARTS)
def test_a_url_spelled_canonically_already_is_taken_as_it_is(parts: tuple[str, str, str]) -> None:
    """The shortcut for plain links gives what taking the URL apart gives."""
    from monitor.text import _canonical_url

    url = "".join(parts)
    assert _canonical_url(url, 0) == canonical_url(url)
