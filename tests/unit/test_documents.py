"""The folder source's document parsers and its cursor."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.errors import SourceError
from monitor.model import Entry
from monitor.sources import folder
from monitor.sources.documents import (
    parse_date_line,
    parse_email_document,
    parse_text_document,
)
from monitor.sources.folder import FolderSource

REPO = Path(__file__).resolve().parents[2]
SEED = next((REPO / "seeds").glob("*.txt"))
MTIME = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("# 14 November 2019 10:48 (UTC +04:00)", datetime(2019, 11, 14, 6, 48, tzinfo=UTC)),
        ("# 22 Nov 2019 18:00 (UTC +09:00)", datetime(2019, 11, 22, 9, 0, tzinfo=UTC)),
        ("# 1 March 2020 (UTC -05:00)", datetime(2020, 3, 1, 5, 0, tzinfo=UTC)),
        ("14 November 2019 10:48 UTC", datetime(2019, 11, 14, 10, 48, tzinfo=UTC)),
        ("# 2019-11-15T09:30:00+09:00", datetime(2019, 11, 15, 0, 30, tzinfo=UTC)),
        ("Top U.S. military officer met", None),
        ("# 31 Foo 2019 10:00", None),
        ("# 31 February 2019 10:00", None),
        ("# 1 January 0001 00:00 (UTC +04:00)", None),  # before year 1 in UTC
        ("# 31 December 9999 23:00 (UTC -04:00)", None),  # after year 9999 in UTC
        ("# 0001-01-01T00:00:00+04:00", None),
    ],
)
def test_date_lines(line: str, expected: datetime | None) -> None:
    assert expected == parse_date_line(line)


def test_seed_article_parses_title_date_and_body() -> None:
    entry = parse_text_document(SEED.read_text(encoding="utf-8"), MTIME, SEED.name)
    assert entry is not None
    assert (
        "U.S. defence officials converge in Seoul to discuss troop costs, Japan pact" == entry.title
    )
    assert datetime(2019, 11, 14, 6, 48, tzinfo=UTC) == entry.published
    assert entry.content.startswith("Top U.S. military officer General Mark Milley")
    assert entry.content.endswith("industrial materials to South Korea in July.")
    assert "# 14 November" not in entry.content


def test_document_without_date_line_takes_the_file_time() -> None:
    entry = parse_text_document("A headline\n\nFirst paragraph.\n\nSecond.", MTIME, "x.txt")
    assert entry is not None
    assert ("A headline", MTIME) == (entry.title, entry.published)
    assert "First paragraph.\n\nSecond." == entry.content


def test_markdown_heading_is_the_title() -> None:
    entry = parse_text_document("# Talks resume\n\nBody *text*.", MTIME, "x.md")
    assert entry is not None
    assert ("Talks resume", "Body *text*.") == (entry.title, entry.content)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


HTML = """<html><head><title>Seoul &amp; Tokyo talk</title>
<meta property="article:published_time" content="2019-11-22T09:00:00Z"></head>
<body><p>First <b>para</b>.</p><script>alert(1)</script><p>Second.</p></body></html>"""

EML = """From: Wire <wire@example.org>
To: desk@example.org
Subject: =?utf-8?b?7ZWc66+46rWw7IKs7ZiR7J2Y7ZqM7J2Y?= opens
Date: Fri, 15 Nov 2019 09:00:00 +0900
Message-ID: <abc@example.org>
Content-Type: text/plain; charset=utf-8

The meeting opened.
"""

RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>W</title>
<item><title>Item one</title><link>http://example.org/1?utm_source=x</link>
<guid>g1</guid><pubDate>Fri, 15 Nov 2019 09:00:00 +0900</pubDate>
<description>&lt;p&gt;Body one&lt;/p&gt;</description></item>
</channel></rss>"""


def test_folder_reads_every_kind_of_document(tmp_path: Path) -> None:
    write(tmp_path, "a.html", HTML)
    write(tmp_path, "b.eml", EML)
    write(tmp_path, "c.rss", RSS)
    write(tmp_path, "d.txt", "Plain title\n\nPlain body.")
    write(tmp_path, ".hidden.txt", "Hidden\n\nnot read")
    write(tmp_path, "e.pdf", "not a document we read")
    result = FolderSource("f", tmp_path).fetch({})
    by_title = {entry.title: entry for entry in result.entries}
    assert {"Seoul & Tokyo talk", "한미군사협의회의 opens", "Item one", "Plain title"} == set(
        by_title
    )
    html = by_title["Seoul & Tokyo talk"]
    assert html.content_is_html
    assert datetime(2019, 11, 22, 9, 0, tzinfo=UTC) == html.published
    mail = by_title["한미군사협의회의 opens"]
    assert ("<abc@example.org>", datetime(2019, 11, 15, 0, 0, tzinfo=UTC)) == (
        mail.guid,
        mail.published,
    )
    assert "The meeting opened." == mail.content
    assert "g1" == by_title["Item one"].guid


def test_unchanged_files_are_not_read_again_and_edits_are(tmp_path: Path) -> None:
    path = write(tmp_path, "a.txt", "Title\n\nBody one.")
    first = FolderSource("f", tmp_path).fetch({})
    assert 1 == len(first.entries)
    again = FolderSource("f", tmp_path).fetch(first.cursor)
    assert ([], True) == (again.entries, again.not_modified)
    path.write_text("Title\n\nBody one, edited.", encoding="utf-8")
    os.utime(path, ns=(1, 1))
    edited = FolderSource("f", tmp_path).fetch(again.cursor)
    assert ["Body one, edited."] == [e.content for e in edited.entries]
    assert first.entries[0].guid == edited.entries[0].guid


def test_renamed_file_keeps_its_identity(tmp_path: Path) -> None:
    path = write(tmp_path, "a.txt", "Title\n\nBody.")
    first = FolderSource("f", tmp_path).fetch({})
    path.rename(tmp_path / "b.txt")
    second = FolderSource("f", tmp_path).fetch(first.cursor)
    assert [first.entries[0].guid] == [e.guid for e in second.entries]


def test_a_document_that_crashes_its_parser_leaves_the_others_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A parser's bug on one file (here the RSS parser made to raise) costs that file,
    not the folder: the other files are read, and the broken one is tried again."""
    write(tmp_path, "a.txt", "Plain title\n\nPlain body.")
    write(tmp_path, "b.rss", RSS)

    def crash(*_args: object) -> list[Entry]:
        raise RuntimeError("a bug")

    monkeypatch.setitem(folder.PARSERS, ".rss", crash)
    result = FolderSource("f", tmp_path).fetch({})
    assert ["Plain title"] == [entry.title for entry in result.entries]
    assert ["a.txt"] == list(result.cursor["files"])


def test_missing_folder_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not a readable folder"):
        FolderSource("f", tmp_path / "nope").fetch({})


def test_only_broken_files_changed_is_an_error_and_they_are_retried(tmp_path: Path) -> None:
    write(tmp_path, "bad.rss", "<html><body>not a feed</body></html>")
    with pytest.raises(SourceError, match=r"bad\.rss"):
        FolderSource("f", tmp_path).fetch({})
    write(tmp_path, "good.txt", "Good\n\nBody.")
    result = FolderSource("f", tmp_path).fetch({})
    assert ["Good"] == [e.title for e in result.entries]
    assert "bad.rss" not in result.cursor["files"]


def test_an_email_dated_beyond_the_datetime_range_takes_the_file_time() -> None:
    raw = b"Subject: Pact signed\r\nDate: Fri, 31 Dec 9999 23:00:00 -0400\r\n\r\nThe pact.\r\n"
    entry = parse_email_document(raw, MTIME, "old.eml")

    assert entry is not None
    assert MTIME == entry.published


def test_a_link_out_of_the_folder_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "private").mkdir()
    outside = write(tmp_path / "private", "secret.txt", "Private title\n\nOnly the daemon reads.")
    folder_path = tmp_path / "news"
    folder_path.mkdir()
    write(folder_path, "inside.txt", "Inside title\n\nA document.")
    (folder_path / "passwd.txt").symlink_to("/etc/passwd")
    (folder_path / "secret.txt").symlink_to(outside)
    (folder_path / "alias.txt").symlink_to(folder_path / "inside.txt")

    result = FolderSource("f", folder_path).fetch({})

    assert ["alias.txt", "inside.txt"] == sorted(str(e.origin) for e in result.entries)
    assert ["alias.txt", "inside.txt"] == sorted(result.cursor["files"])


def test_the_size_cap_counts_what_is_read_not_what_the_file_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file in /proc says it has 0 bytes, and has any number."""
    monkeypatch.setattr(folder, "MAX_FILE_BYTES", 100)
    path = write(tmp_path, "a.txt", "Title\n\n" + "long body " * 50)

    with pytest.raises(SourceError, match="larger than 100 bytes"):
        FolderSource("f", tmp_path)._read(path, "a.txt", 0.0, 0)


KOREAN = "한미 국방장관 회담"
PORTUGUESE = (
    "<title>Negociações em São Paulo</title><p>As negociações sobre o acordo comercial"
    " continuam nesta semana, disse o ministro.</p>"
)


@pytest.mark.parametrize(
    ("name", "raw", "title"),
    [
        ("bom.md", f"\N{BYTE ORDER MARK}# {KOREAN}\n\n본문.".encode(), KOREAN),
        ("notepad.txt", f"\N{BYTE ORDER MARK}{KOREAN}\n\n본문.".encode("utf-16-le"), KOREAN),
        ("euc-kr.txt", f"{KOREAN}\n\n국방부는 오늘 회담을 열었다.".encode("cp949"), KOREAN),
        ("latin.html", PORTUGUESE.encode("cp1252"), "Negociações em São Paulo"),
    ],
)
def test_text_documents_not_in_plain_utf_8_are_read_in_their_own_charset(
    tmp_path: Path, name: str, raw: bytes, title: str
) -> None:
    """A byte order mark is no part of the title, and a legacy charset is found as a
    feed's is (monitor.sources.charset), not read as UTF-8 full of U+FFFD."""
    (tmp_path / name).write_bytes(raw)
    [entry] = FolderSource("f", tmp_path).fetch({}).entries
    assert title == entry.title


FEED_FILE = (
    '<?xml version="1.0" encoding="utf-8"?>\n<!-- <old> a comment before the root -->\n'
    '<rss version="2.0"><channel><title>Desk</title>'
    "<item><title>Seoul keeps GSOMIA</title><guid>a1</guid>"
    "<description>Seoul said it would keep the pact.</description></item>"
    "<item><title>SCM opens in Seoul</title><guid>a2</guid>"
    "<description>The defence chiefs met.</description></item>"
    "</channel></rss>\n<!-- served from cache in 0.2 s -->\n"
)


@pytest.mark.parametrize("cut", ["<guid>a", "<item><title>SCM", "</item>", "</channel>"])
def test_a_feed_file_still_being_written_waits_for_the_next_poll(tmp_path: Path, cut: str) -> None:
    assert_waits_until_written(tmp_path, FEED_FILE, FEED_FILE.index(cut) + len(cut))


def test_a_root_with_an_empty_tag_in_an_attribute_is_no_empty_root(tmp_path: Path) -> None:
    """'>' needs no escape in an attribute value: an escaped '&lt;br/>' there is not the
    end of an empty root, so a file cut inside that root still waits."""
    whole = FEED_FILE.replace('<rss version="2.0">', '<rss version="2.0" note="a &lt;br/> b">')
    assert_waits_until_written(tmp_path, whole, whole.index("<item><title>SCM"))


def assert_waits_until_written(folder: Path, whole: str, written_so_far: int) -> None:
    """A feed file holding ``whole``'s first ``written_so_far`` characters gives nothing
    and remembers nothing; once written whole, the next poll reads both items."""
    path = folder / "desk.xml"
    path.write_text(whole[:written_so_far], encoding="utf-8")
    writing = FolderSource("f", folder).fetch({})
    assert (writing.entries, writing.cursor) == ([], {"files": {}})

    path.write_text(whole, encoding="utf-8")
    written = FolderSource("f", folder).fetch(writing.cursor)
    assert ["a1", "a2"] == [entry.guid for entry in written.entries]


def test_a_feed_file_cut_short_long_ago_is_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "desk.xml"
    path.write_text(FEED_FILE[: FEED_FILE.index("<guid>a2")], encoding="utf-8")
    long_ago = path.stat().st_mtime - 2 * folder.SETTLE_SECONDS
    os.utime(path, (long_ago, long_ago))
    with pytest.raises(SourceError, match=r"desk\.xml: the feed document ends before its root"):
        FolderSource("f", tmp_path).fetch({})


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_a_utf_16_feed_file_without_a_byte_order_mark_is_read(
    tmp_path: Path, encoding: str
) -> None:
    """XML finds UTF-16 without a mark by its first bytes ('<' and a zero): such a file
    is read as a feed is, not held back as one that ends before its root."""
    (tmp_path / "desk.xml").write_bytes(FEED_FILE.replace("utf-8", "utf-16").encode(encoding))
    fetched = FolderSource("f", tmp_path).fetch({})
    assert ["a1", "a2"] == [entry.guid for entry in fetched.entries]


@pytest.mark.parametrize(
    "document",
    [
        FEED_FILE + "\x00\x00\x00",  # padded with zeros
        FEED_FILE + "\x1a",  # a DOS end-of-file mark
        '<?xml version="1.0"?>\n<rss version="2.0"\n/>\n',  # an empty root
    ],
)
def test_a_whole_feed_file_with_padding_or_an_empty_root_is_read(
    tmp_path: Path, document: str
) -> None:
    (tmp_path / "desk.xml").write_text(document, encoding="utf-8")
    result = FolderSource("f", tmp_path).fetch({})
    assert ["desk.xml"] == list(result.cursor["files"])
