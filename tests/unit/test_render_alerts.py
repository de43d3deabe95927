"""Rendering alerts and digests: escaping, links, "and N more", "nothing new", overrides."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup, escape
from samples import alert_view, digest_view, stored_item

from monitor.alerts.render import DigestSection, Renderer, emphasise, highlight, term_pattern
from monitor.alerts.route import hit_record, inside_words
from monitor.config import WatchlistConfig
from monitor.errors import RenderError
from monitor.model import Document
from monitor.watchlists import compile_watchlists

RENDERER = Renderer(timezone="Asia/Seoul")


def test_markup_in_feed_text_is_escaped_in_html_and_plain_in_text() -> None:
    item = stored_item("<script>alert(1)</script> Pact", body="<img src=x onerror=alert(2)>")
    view = alert_view(item, snippets=["<b>GSOMIA</b> & co"])

    message = RENDERER.render_alert(view, "k")

    assert "<script>" not in message.html
    assert "<img" not in message.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Pact" in message.html
    assert "&lt;b&gt;<mark>GSOMIA</mark>&lt;/b&gt; &amp; co" in message.html
    assert "<script>alert(1)</script> Pact" in message.text
    assert "[gsomia] <script>alert(1)</script> Pact" == message.subject


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,<b>x</b>", "  "])
def test_only_web_links_become_links(url: str) -> None:
    message = RENDERER.render_alert(alert_view(stored_item(url=url)), "k")

    assert "href=" not in message.html


def test_korean_reads_the_same_in_every_part() -> None:
    title = "한미 국방장관, 지소미아 종료 앞두고 서울서 회담"
    message = RENDERER.render_alert(alert_view(stored_item(title)), "k")

    assert f"[gsomia] {title}" == message.subject
    assert title in message.html
    assert title in message.text
    assert title == message.payload["item"]["title"]


def test_dates_are_shown_in_the_configured_zone() -> None:
    message = RENDERER.render_alert(alert_view(), "k")

    assert "yonhap · 2019-11-14 15:48 KST" in message.text
    assert "2019-11-14T06:48:00Z" == message.payload["item"]["published"]


def test_a_moment_is_shown_in_each_renderers_zone_however_it_was_written() -> None:
    """Local times are remembered per instant and zone."""
    utc = datetime(2019, 11, 14, 6, 48, tzinfo=UTC)
    paris = utc.astimezone(ZoneInfo("Europe/Paris"))
    london = Renderer(timezone="Europe/London")

    for _ in range(2):
        assert "2019-11-14 15:48 KST" == RENDERER.localtime(paris) == RENDERER.localtime(utc)
        assert "2019-11-14 06:48 GMT" == london.localtime(utc) == london.localtime(paris)


def test_digest_caps_sections_with_and_n_more_and_names_quiet_lists() -> None:
    stories = tuple(alert_view(stored_item(f"Story {n}", item_id=n, story_id=n)) for n in range(2))
    view = digest_view(
        [DigestSection("gsomia", stories, held_back=(10, 11, 12))], quiet=["cost-sharing"]
    )

    message = RENDERER.render_digest(view, "digest:morning:1")

    assert "[morning] 5 stories: gsomia (5)" == message.subject
    for part in (message.text, message.html):
        assert "Story 0" in part
        assert "Story 1" in part
        assert "and 3 more" in part
        assert "Nothing new on cost-sharing." in part
    assert [{"watchlist": "gsomia", "more": 3}] == [
        {"watchlist": s["watchlist"], "more": s["more"]} for s in message.payload["sections"]
    ]


def test_an_empty_digest_says_nothing_new() -> None:
    message = RENDERER.render_digest(digest_view([], quiet=["cost-sharing"]), "d")

    assert "[morning] nothing new" == message.subject
    assert "Nothing new on cost-sharing." in message.text


def test_a_templates_folder_overrides_by_name(tmp_path: Path) -> None:
    (tmp_path / "instant.subject.j2").write_text("ALERT {{ item.title | upper }}")
    renderer = Renderer(templates=tmp_path)

    message = renderer.render_alert(alert_view(stored_item("pact")), "k")

    assert "ALERT PACT" == message.subject
    assert "pact" in message.html  # the other templates still come from the package
    assert [] == renderer.check()


def test_custom_templates_run_in_a_sandbox() -> None:
    with pytest.raises(RenderError, match="custom template"):
        RENDERER.render_string("{{ message.__class__.__mro__ }}", message=object())


@pytest.mark.parametrize(
    "source",
    [
        "{{ message.__class__ }}",
        "{{ items.append(1) }}",
        "{{ table.clear() }}",
        "{{ render.__globals__ }}",
        "{{ message.__class__.mro() }}",
    ],
)
def test_the_sandbox_refuses_every_time_not_only_the_first(source: str) -> None:
    context = {
        "message": object(),
        "items": [],
        "table": {},
        "render": test_custom_templates_run_in_a_sandbox,
    }
    allowed = "{{ items.index(1) if items else 0 }}{{ table.keys() | list }}{{ message }}"
    for _ in range(3):  # its verdicts are remembered per type and attribute
        assert RENDERER.render_string(allowed, **context)
        with pytest.raises(RenderError):
            RENDERER.render_string(source, **context)
    assert [] == context["items"]


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ("{{ hits.clause }}", "GSOMIA"),  # a key, read as an attribute
        ("{{ hits['clause'] }}", "GSOMIA"),
        ("{{ hits.get('clause') }}", "GSOMIA"),  # the dict's own method comes first
        ("{{ hits.items() | list | length }}", "3"),
        ("{{ hits.keys is callable }}", "True"),
        ("{{ hits.absent is undefined }}", "True"),
    ],
)
def test_a_dict_reads_in_a_template_as_jinja_reads_it(source: str, shown: str) -> None:
    hits = alert_view().hits
    assert shown == RENDERER.render_string(source, hits=hits)


def test_a_missing_key_read_as_an_attribute_fails_an_override(tmp_path: Path) -> None:
    (tmp_path / "instant.subject.j2").write_text("{{ hits.nope }}")

    with pytest.raises(RenderError, match="nope"):
        Renderer(templates=tmp_path).render_alert(alert_view(), "k")


def test_an_override_has_jinjas_globals_every_time(tmp_path: Path) -> None:
    """Templates are loaded once, with their globals copied."""
    (tmp_path / "instant.subject.j2").write_text(
        "{% set n = namespace(total=0) %}{% for i in range(3) %}{% set n.total = n.total + i %}"
        "{% endfor %}{{ n.total }} {{ dict(a=1) | list | first }}"
    )
    renderer = Renderer(templates=tmp_path)

    for _ in range(2):
        assert "3 a" == renderer.render_alert(alert_view(), "k").subject


def test_a_snippet_that_only_repeats_the_title_is_not_shown_twice() -> None:
    item = stored_item("Seoul keeps GSOMIA")
    view = alert_view(item, snippets=["Seoul keeps GSOMIA", "the pact known as GSOMIA will stay"])
    digest = digest_view([DigestSection("gsomia", (view,))])

    alert, summary = RENDERER.render_alert(view, "k"), RENDERER.render_digest(digest, "d")

    for part in (alert.text, alert.html, summary.text, summary.html):
        shown = part.split("<body", 1)[-1]  # an HTML <title> is not shown
        assert 1 == shown.count("Seoul keeps GSOMIA")
        assert "will stay" in shown


def reference_highlight(snippet: str, terms: Sequence[str], loose: Sequence[str]) -> Markup:
    """highlight() as first written: one escape per piece, terms longest first."""
    words = sorted({t for t in terms if t and t.strip()}, key=len, reverse=True)
    if not words:
        return escape(snippet)
    pattern = re.compile("|".join(term_pattern(w, w in loose) for w in words))
    out: list[str] = []
    last = 0
    for found in pattern.finditer(snippet):
        out.append(str(escape(snippet[last : found.start()])))
        out.append(f"<mark>{escape(found.group(0))}</mark>")
        last = found.end()
    out.append(str(escape(snippet[last:])))
    return Markup("".join(out))  # noqa: S704 - every piece above is escaped


# Letters case-insensitive matching folds in odd ways (long s, Kelvin sign, sharp s,
# final sigma), digits, markup to escape, and the two characters highlight() marks terms
# with.
ALPHABET = st.sampled_from(
    list("aAbBsSkK19 <>&\"'\x02\x03\u00e9\u00c9\u00df\u1e9e\u03a3\u03c3\u03c2\u017f\u212a-.")
)


@settings(max_examples=500, deadline=None)
@given(
    snippet=st.text(ALPHABET, max_size=60),
    terms=st.lists(st.text(ALPHABET, min_size=1, max_size=3), max_size=5),
    loose=st.sets(st.integers(0, 4)),
)
def test_highlight_marks_what_it_always_marked(
    snippet: str, terms: list[str], loose: set[int]
) -> None:
    some = [term for at, term in enumerate(terms) if at in loose]
    assert reference_highlight(snippet, terms, some) == highlight(snippet, terms, some)


@pytest.mark.parametrize(
    ("query", "text", "marked"),
    [
        ("/nuclear/i", "Antinuclear protests grow as nuclear talks stall", ["nuclear", "nuclear"]),
        ("=SCM", "SCMP says the SCM met; scm tools", ["SCM"]),
        ("/./", "Big", ["B", "i", "g"]),
    ],
)
def test_an_alert_marks_each_term_where_the_hit_found_it(
    query: str, text: str, marked: list[str]
) -> None:
    index = compile_watchlists([WatchlistConfig(name="w", query=query)], {})
    [hit] = index.match(Document("", text))
    stored = {**hit_record(hit), "loose": inside_words(hit, stored_item("", body=text))}
    view = replace(alert_view(stored_item("Headline", body=text)), hits=stored)
    html = RENDERER.render_alert(view, "k").html
    shown = html.split("border-left", 1)[1].split("</p>", 1)[0]  # the snippet's paragraph
    assert marked == re.findall("<mark>(.*?)</mark>", shown)


def test_a_regex_matching_a_whole_body_gives_a_bounded_alert() -> None:
    # A sentence-wide pattern over a body without full stops matches all 200,000 characters.
    index = compile_watchlists([WatchlistConfig(name="w", query="/GSOMIA[^.]*/")], {})
    body = "GSOMIA " + "talks " * 33_000
    [hit] = index.match(Document("Headline", body))
    assert [(0, len(body))] == [(span.start, span.end) for span in hit.spans]  # as found
    assert all(len(term) <= 200 for term in hit.terms)
    assert all(len(snippet) <= 400 for snippet in hit.snippets)
    view = replace(alert_view(stored_item("Headline", body=body)), hits=hit_record(hit))
    message = RENDERER.render_alert(view, "k")
    assert len(message.text) < 5_000
    assert len(message.html) < 10_000


def test_a_term_is_marked_as_the_hit_found_it_not_inside_other_words() -> None:
    snippet = "SCMP says the SCM met; scm tools; Korean Korea; 지소미아를 GSOMIA破棄"
    marked = highlight(snippet, ["SCM", "Korea", "지소미아", "GSOMIA"])
    assert ["SCM", "Korea", "지소미아", "GSOMIA"] == re.findall("<mark>(.*?)</mark>", marked)


def test_a_broken_override_names_its_file_and_line_and_stops_the_start(tmp_path: Path) -> None:
    from monitor.app import build_app
    from monitor.config import load_config
    from monitor.errors import ConfigError

    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "instant.txt.j2").write_text("{{ item.title }}\n{{ broken\n")
    [problem] = Renderer(templates=templates).check()
    assert f"{templates / 'instant.txt.j2'}:2: template instant.txt.j2: " in problem.located()
    config = tmp_path / "monitor.yaml"
    config.write_text("database: sqlite:///db.sqlite\nwatchlists: []\ntemplates: templates\n")
    with pytest.raises(ConfigError, match=r"instant\.txt\.j2:2: template instant\.txt\.j2"):
        build_app(load_config(config))  # not a daemon whose every alert is a dead letter
    assert not (tmp_path / "db.sqlite").exists()


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("instant.html.j2", "<p>{{ item.titel }}</p>\n"),
        ("digest.txt.j2", "{% for s in digest.sections %}{{ s.stories[0].item.nope }}{% endfor %}"),
    ],
)
def test_an_override_naming_what_alerts_lack_fails_the_check_not_every_alert(
    tmp_path: Path, name: str, text: str
) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / name).write_text(text)
    [problem] = Renderer(templates=templates).check()
    assert problem.file == str(templates)
    assert f"template {name}: " in str(problem)
    assert "(rendering a sample)" in str(problem)


def test_an_override_that_is_not_utf8_is_a_problem_at_its_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`monitor check` exits 2 naming the file, not 1 with a UnicodeDecodeError."""
    from monitor.cli import main

    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "instant.txt.j2").write_bytes("{{ item.title }}\ncaf\u00e9\n".encode("latin-1"))
    [problem] = Renderer(templates=templates).check()
    assert f"{templates / 'instant.txt.j2'}:2: template instant.txt.j2: not UTF-8 text" in (
        problem.located()
    )
    config = tmp_path / "monitor.yaml"
    config.write_text("database: sqlite:///db.sqlite\nwatchlists: []\ntemplates: templates\n")
    assert 2 == main(["check", "-c", str(config)])
    assert "instant.txt.j2:2: template instant.txt.j2: not UTF-8" in capsys.readouterr().err


def test_the_shipped_templates_render_the_sample() -> None:
    assert [] == Renderer().check()


def test_a_story_in_two_sections_counts_once_in_the_subject() -> None:
    both = stored_item("GSOMIA talk at the SCM", story_id=7)
    other = stored_item("SCM ends", item_id=2, story_id=8)
    digest = digest_view(
        [
            DigestSection("gsomia", (alert_view(both),)),
            DigestSection(
                "scm", (alert_view(both, watchlist="scm"), alert_view(other)), held_back=(9, 10)
            ),
        ]
    )
    subject = RENDERER.render_digest(digest, "d").subject
    assert "[morning] 4 stories: gsomia (1), scm (4)" == subject  # 2 shown, 2 held back


def test_a_story_shown_in_one_section_and_held_back_in_another_counts_once() -> None:
    first, second = stored_item("GSOMIA", story_id=7), stored_item("SCM", item_id=2, story_id=8)
    digest = digest_view(
        [
            DigestSection("gsomia", (alert_view(first),), held_back=(8,)),
            DigestSection("scm", (alert_view(second, watchlist="scm"),), held_back=(7,)),
        ]
    )
    subject = RENDERER.render_digest(digest, "d").subject
    assert "[morning] 2 stories: gsomia (2), scm (2)" == subject


def test_a_text_alert_emphasises_the_matched_terms_in_its_snippets() -> None:
    text = "Officials said the SCM in Seoul, not the SCMP report, would settle GSOMIA."
    index = compile_watchlists([WatchlistConfig(name="w", query="=SCM AND GSOMIA")], {})
    [hit] = index.match(Document("Headline", text))
    view = replace(alert_view(stored_item("Headline", body=text)), hits=hit_record(hit))
    instant = RENDERER.render_alert(view, "k").text
    [line] = [line for line in instant.splitlines() if line.startswith("  … ")]
    assert ["SCM", "GSOMIA"] == re.findall(r"\*(.*?)\*", line)
    assert "SCMP report" in line
    digest = RENDERER.render_digest(digest_view([DigestSection("w", (view,))]), "d").text
    assert ["SCM", "GSOMIA"] == re.findall(r"\*(.*?)\*", digest)


def test_a_snippet_without_terms_is_shown_as_it_is() -> None:
    assert "a *starred* word" == emphasise("a *starred* word", [" ", ""])
    assert "*GSOMIA*破棄" == emphasise("GSOMIA破棄", ["GSOMIA"])
