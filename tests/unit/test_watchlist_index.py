"""The compiled index: presearch soundness, term sets, hits with spans and snippets."""

from __future__ import annotations

import random
import sys
import threading
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import monitor.watchlists.index as index_module
import monitor.watchlists.match as match_module
from monitor.config import ExamplesConfig, ExampleStory, WatchlistConfig
from monitor.errors import QueryError
from monitor.model import Document, Hit
from monitor.watchlists import WatchlistIndex, compile_watchlists, run_examples
from monitor.watchlists.index import FIRST_REPLAN, SAMPLE_EVERY, required_groups
from monitor.watchlists.match import (
    MAX_PER_TERM,
    DocumentView,
    _evidence,
    _hit,
    _phrase_matches,
    _phrase_pattern,
    _search_bounds,
    _token_spans,
    evaluate,
    matching_hit,
)
from monitor.watchlists.query import FIELDS, Node, Or, Phrase, Word, parse_query, parse_set_entry
from monitor.watchlists.tokens import folded_text


def watchlist(name: str, query: str, **examples: list[str | ExampleStory]) -> WatchlistConfig:
    return WatchlistConfig(name=name, query=query, examples=ExamplesConfig(**examples))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("gsomia", [{("token", "gsomia")}]),
        ("japan AND gsomia", [{("token", "japan")}, {("token", "gsomia")}]),
        ('"cost sharing"', [{("token", "cost")}, {("token", "sharing")}]),
        ("japan OR korea", [{("token", "japan"), ("token", "korea")}]),
        (
            "(japan OR korea) AND pact",
            [{("token", "japan"), ("token", "korea")}, {("token", "pact")}],
        ),
        ('pact OR "the meeting"', [{("token", "pact"), ("token", "meeting")}]),  # not "the"
        ("japan NOT korea", [{("token", "japan")}]),
        ("defen*", [{("prefix", "defen")}]),
        ("지소미아", [{("substring", "지소미아")}]),
        ("NEAR(pact japan, 5)", [{("token", "pact")}, {("token", "japan")}]),
        ("/gsomia/ AND pact", [{("token", "pact")}]),
        ("/gsomia/ OR pact", None),
        ("NOT a AND b", [{("token", "b")}]),
    ],
)
def test_required_groups(query: str, expected: list[set[tuple[str, str]]] | None) -> None:
    found = required_groups(parse_query(query))
    assert expected == (None if found is None else [set(group) for group in found])


def test_triggers_move_to_anchors_that_turn_out_rare() -> None:
    """ "international" is longer than "yamaichi", so it is the first guess for the trigger,
    but it is far more common: after the first re-plan, "yamaichi" triggers the query."""
    index = compile_watchlists([watchlist("y", '"yamaichi international"')], {})

    def triggers(word: str) -> list[int]:
        return index._triggers[index._keys[f" {word} "]]

    assert ([0], []) == (triggers("international"), triggers("yamaichi"))
    for _ in range(FIRST_REPLAN):
        assert [] == index.match(Document("", "international trade"))
    assert ([], [0]) == (triggers("international"), triggers("yamaichi"))
    assert ["y"] == [h.watchlist for h in index.match(Document("", "Yamaichi International"))]


def test_trigger_scans_count_towards_how_common_a_trigger_is() -> None:
    """The trigger scans see every story, the samples one in SAMPLE_EVERY: a trigger in
    most stories gives way to a rarer group at the next re-plan, even if no sampled
    story had it."""
    index = compile_watchlists([watchlist("q", "yamaichiinternational AND tokyo")], {})

    def triggers(word: str) -> list[int]:
        return index._triggers[index._keys[f" {word} "]]

    for _ in range(FIRST_REPLAN):
        index.match(Document("", "nothing"))
    assert ([0], []) == (triggers("yamaichiinternational"), triggers("tokyo"))
    for story in range(FIRST_REPLAN + 1, 4 * FIRST_REPLAN + 1):  # to the next re-plan
        sampled = story % SAMPLE_EVERY == 0
        assert [] == index.match(Document("", "nothing" if sampled else "yamaichiinternational"))
    assert ([], [0]) == (triggers("yamaichiinternational"), triggers("tokyo"))
    assert ["q"] == [h.watchlist for h in index.match(Document("Tokyo", "YamaichiInternational"))]


_WORDS = ["alpha", "beta", "gamma", "delta", "the", "al", "한국", "SCM"]


def _random_query(rng: random.Random, depth: int = 0) -> str:
    kind = rng.choice(["word", "word", "phrase", "prefix", "cased", "near", "and", "or", "not"])
    if depth > 2 or kind == "word":
        return rng.choice(_WORDS)
    if kind == "phrase":
        return '"' + " ".join(rng.choices(_WORDS, k=2)) + '"'
    if kind == "prefix":
        return rng.choice(_WORDS)[:2] + "*"
    if kind == "cased":
        return "=" + rng.choice(_WORDS)
    if kind == "near":
        return f"NEAR({rng.choice(_WORDS)} {rng.choice(_WORDS)}, {rng.randint(0, 3)})"
    if kind == "not":
        return f"({_random_query(rng, depth + 1)} NOT {_random_query(rng, depth + 1)})"
    operator = " AND " if kind == "and" else " OR "
    return "(" + operator.join(_random_query(rng, depth + 1) for _ in range(2)) + ")"


@settings(max_examples=200, deadline=None)
@given(st.randoms(use_true_random=False), st.lists(st.sampled_from([*_WORDS, "x"]), max_size=12))
def test_presearch_never_drops_a_match(rng: random.Random, words: list[str]) -> None:
    """Whatever the index skips, evaluating the query directly would not have matched."""
    queries = []
    for i in range(8):
        query = _random_query(rng)
        try:
            compile_watchlists([watchlist("probe", query)], {})
        except QueryError:
            continue  # matches an empty story: refused at load, as it should be
        queries.append(watchlist(f"w{i}", query))
    index = compile_watchlists(queries, {})
    document = Document(" ".join(words[:3]), " ".join(words[3:]))
    view = DocumentView(document)
    expected = [w.name for w in queries if evaluate(index.queries[w.name], view)]
    assert expected == [hit.watchlist for hit in index.match(document)]


def test_hit_explains_clause_terms_spans_and_snippets() -> None:
    index = compile_watchlists(
        [watchlist("gsomia", "@pact AND japan OR GSOMIA AND india")],
        {"pact": ['"intelligence sharing pact"', "GSOMIA"]},
    )
    body = (
        "South Korea's decision to scrap an intelligence-sharing pact with Japan "
        "known as GSOMIA has rattled Washington."
    )
    [hit] = index.match(Document("Allies meet", body))
    assert "@pact AND japan" == hit.clause
    assert ("intelligence-sharing pact", "GSOMIA", "Japan") == hit.terms
    for span in hit.spans:
        assert span.term == body[span.start : span.end]
        assert "body" == span.field
    assert (body,) == hit.snippets


@pytest.mark.parametrize(
    ("query", "title", "body", "clause"),
    [
        ("title:(gsomia OR korea) OR body:seoul", "Korea talks", "x", "title:korea"),
        ("title:(gsomia OR korea) OR body:seoul", "x", "Seoul talks", "body:seoul"),
        ("title:gsomia", "GSOMIA row", "", "title:gsomia"),
        ("title : gsomia", "GSOMIA row", "", "title : gsomia"),
        ("title:(body:japan OR korea)", "x", "Japan", "body:japan"),  # the inner scope wins
        ("title:(gsomia japan OR korea)", "GSOMIA Japan", "", "title:(gsomia japan)"),
        ("title:(gsomia NOT japan OR korea)", "GSOMIA", "", "title:(gsomia NOT japan)"),
        ("title:NEAR(a b)", "a b", "", "title:NEAR(a b)"),
        ("title:(a OR (b OR c))", "c", "", "title:c"),
        ("body:@pact", "x", "GSOMIA", "body:GSOMIA"),
        ("gsomia OR korea", "Korea", "", "korea"),
        # a query of several lines (a YAML | block): the clause on one line, as its terms
        # and snippets are, not broken in an alert's "Because:" line
        ("gsomia\nOR (japan\n    AND korea)", "Japan Korea", "", "japan AND korea"),
        ("gsomia\nOR (japan AND  \n\n korea)", "Japan Korea", "", "japan AND korea"),
    ],
)
def test_the_clause_shown_keeps_its_field(query: str, title: str, body: str, clause: str) -> None:
    """The alternative that fired, as written, with the field that scopes it."""
    index = compile_watchlists([watchlist("w", query)], {"pact": ["GSOMIA", "pact"]})
    [hit] = index.match(Document(title, body))
    assert clause == hit.clause


@pytest.mark.parametrize(
    ("query", "body", "terms"),
    [
        ("協定", "日韓軍事情報包括保護協定の破棄", ("協定",)),
        ("보호협정", "군사정보보호협정을 종료", ("보호협정",)),
        ('"방위비 분담"', "방위비 분담금 협상", ("방위비 분담",)),
        ("6자회담", "북핵 6자회담을 재개", ("6자회담",)),
        ("지소미아 종료", "지소미아를 종료했다", ("지소미아", "종료")),
        ("한국", "한국과 한국인", ("한국",)),
        ("NEAR(협정 종료, 2)", "군사정보보호협정을 종료했다", ("협정", "종료")),
        ("NEAR(保護協定 破棄)", "日韓軍事情報包括保護協定の破棄", ("保護協定", "破棄")),
        ('NEAR("방위비 분담" 협상)', "방위비 분담금 협상", ("방위비 분담", "협상")),
    ],
)
def test_a_spaceless_match_highlights_what_it_matched(
    query: str, body: str, terms: tuple[str, ...]
) -> None:
    """A word in Korean, Japanese or Chinese matches inside a run: the span is the word,
    not the run."""
    [hit] = compile_watchlists([watchlist("w", query)], {}).match(Document("", body))
    assert terms == hit.terms


@pytest.mark.parametrize(
    "body", ["Japan ends GSOMIA, says Seoul", "GSOMIA: Seoul leaves Japan", "Seoul, Japan, GSOMIA"]
)
def test_near_terms_follow_the_clause_order(body: str) -> None:
    """As for any clause, the term written first comes first, wherever it stands."""
    index = compile_watchlists([watchlist("w", "NEAR(japan gsomia seoul, 5)")], {})
    [hit] = index.match(Document("", body))
    assert ("Japan", "GSOMIA", "Seoul") == hit.terms


def test_long_bodies_give_snippets_around_each_match() -> None:
    filler = "lorem ipsum " * 40
    body = f"{filler}GSOMIA first. {filler}GSOMIA second. {filler}"
    [hit] = compile_watchlists([watchlist("g", "gsomia")], {}).match(Document("", body))
    assert 2 == len(hit.snippets)
    assert all("GSOMIA" in snippet and len(snippet) < 220 for snippet in hit.snippets)


@pytest.mark.parametrize(
    "cluster",
    [
        "\u0e17\u0e35\u0e48",  # Thai: a consonant, a vowel sign and a tone mark, no spaces
        "e\u0301",  # Latin in NFD: e and a combining acute
        "\U0001f469\u200d\U0001f4bb",  # an emoji ZWJ sequence
    ],
)
def test_a_snippet_cut_inside_a_long_run_keeps_whole_characters(cluster: str) -> None:
    run = cluster * 60
    body = f"{run} GSOMIA {run}"
    [hit] = compile_watchlists([watchlist("g", "gsomia")], {}).match(Document("", body))
    [snippet] = hit.snippets
    assert snippet != body  # cut inside both runs
    start = body.index(snippet)
    end = start + len(snippet)
    # Whole clusters either side: no mark, vowel sign or joined emoji left dangling.
    assert (0, 0) == (start % len(cluster), (len(body) - end) % len(cluster))


def test_only_restricts_to_the_named_watchlists() -> None:
    index = compile_watchlists([watchlist("a", "pact"), watchlist("b", "pact")], {})
    assert ["b"] == [hit.watchlist for hit in index.match(Document("pact", ""), only={"b"})]
    assert ("a", "b") == index.names


def test_a_regex_only_watchlist_is_evaluated_for_every_story() -> None:
    index = compile_watchlists([watchlist("r", r"/\bS[MC]A\b/")], {})
    assert ["r"] == [hit.watchlist for hit in index.match(Document("", "the SMA deal"))]
    assert [] == index.match(Document("", "the sma deal"))


def _chain(length: int, leaf: str = "gsomia") -> dict[str, list[str]]:
    """Term sets s0 -> s1 -> ... -> s<length>, the last holding ``leaf``."""
    terms = {f"s{i}": [f"@s{i + 1}"] for i in range(length)}
    terms[f"s{length}"] = [leaf]
    return terms


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        ({"loop": ["@loop"]}, "term set 'loop': term set '@loop' refers to itself"),
        ({"a": ["@b"], "b": ["@a"]}, "refers to itself"),
        # a loop through other sets says which: '@c' alone does not name itself
        (
            {"a": ["x", "@b"], "b": ["@c"], "c": ["y", "@a"]},
            r"term set 'b': term set '@c' refers to itself \(@c -> @a -> @b -> @c\)",
        ),
        (
            {"names": ["General Security Agreement"]},
            "term set 'names': term-set entries are alternatives: quote a phrase",
        ),
        ({"bad": ["(x"]}, r"term set 'bad': expected '\)'"),
        (
            {"near": ["NEAR(a b)"], "user": ["NEAR(@near c)"]},
            "may hold only words, phrases, prefixes and =case-sensitive words "
            r"\(no AND, NOT, NEAR or regex\)",
        ),
        # sets count in the nesting limit, however they are chained
        (_chain(100), "term set 's36': nested more than 64 levels deep"),
        (_chain(100, leaf="(" * 60 + "x" + ")" * 60), "term set 's96': nested more than 64"),
    ],
)
def test_term_set_errors_are_found_at_load(terms: dict[str, list[str]], message: str) -> None:
    with pytest.raises(QueryError, match=message):
        compile_watchlists([watchlist("w", "x")], terms)


def test_sets_chained_within_the_nesting_limit_are_used_as_written() -> None:
    index = compile_watchlists([watchlist("w", "@s0 AND korea")], _chain(62))
    assert ["w"] == [hit.watchlist for hit in index.match(Document("GSOMIA", "Korea"))]
    assert [] == index.match(Document("GSOMIA", "Japan"))


def test_each_set_entry_is_parsed_once_whatever_order_the_sets_come_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A set naming many sets defined after it: its entry meets no set not parsed yet,
    so it is not parsed again for each (in config order, it was parsed 201 times)."""
    terms = {"all": [" OR ".join(f"@s{n}" for n in range(200))]}
    terms |= {f"s{n}": [f"word{n}", f'"phrase {n}"'] for n in range(200)}
    parsed: list[str] = []

    def counted(entry: str, *args: object, **kwargs: object) -> object:
        parsed.append(entry)
        return parse_set_entry(entry, *args, **kwargs)

    monkeypatch.setattr(index_module, "parse_set_entry", counted)
    sets = index_module.parse_term_sets(terms)
    assert list(terms) == list(sets)
    assert 401 == len(parsed) == len(set(parsed))
    document = Document("", "phrase 7 and more")
    assert ["w"] == [
        hit.watchlist for hit in compile_watchlists([watchlist("w", "@all")], terms).match(document)
    ]


def test_a_set_counts_in_the_nesting_of_the_query_that_uses_it() -> None:
    terms = {"deep": ["(" * 40 + "gsomia" + ")" * 40]}
    compile_watchlists([watchlist("w", "(" * 20 + "@deep" + ")" * 20)], terms)
    with pytest.raises(QueryError, match="nested more than 64 levels deep") as caught:
        compile_watchlists([watchlist("w", "(" * 30 + "@deep" + ")" * 30)], terms)
    assert 31 == caught.value.column  # the '@'


def test_examples_report_each_failure_with_its_watchlist() -> None:
    lists = [
        watchlist("scm", "=SCM", match=["SCM talks", "scm talks"], no_match=["SCM Corp"]),
        watchlist("ok", "pact", match=["a pact"], no_match=["nothing"]),
    ]
    assert [
        "watch-list 'scm': example should match but does not: 'scm talks'",
        "watch-list 'scm': example should not match but does: 'SCM Corp'",
    ] == run_examples(compile_watchlists(lists, {}), lists)


def test_examples_take_the_first_line_as_title() -> None:
    lists = [watchlist("t", "title:pact", match=["pact\nbody"], no_match=["headline\npact"])]
    assert [] == run_examples(compile_watchlists(lists, {}), lists)


def test_an_example_may_give_a_storys_fields_source_among_them() -> None:
    lists = [
        watchlist(
            "wire",
            "source:yonhap AND title:pact",
            match=[ExampleStory(title="pact", source="Yonhap")],
            no_match=[
                "pact",  # a text has no source
                ExampleStory(body="pact", source="yonhap"),  # titled by its body's line
                ExampleStory(title="pact", body="talks", source="reuters"),
            ],
        )
    ]
    assert [
        "watch-list 'wire': example should not match but does: {'body': 'pact', 'source': 'yonhap'}"
    ] == run_examples(compile_watchlists(lists, {}), lists)


def test_a_triggered_query_missing_another_group_is_not_evaluated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import monitor.watchlists.index as index_module

    index = compile_watchlists([watchlist("pact", "gsomia AND (japan OR korea*) AND pact")], {})
    calls: list[object] = []

    def counting(name: str, node: Node, view: DocumentView) -> Hit | None:
        calls.append(node)
        return matching_hit(name, node, view)

    monkeypatch.setattr(index_module, "matching_hit", counting)
    assert index.match(Document("GSOMIA talks", "Japan stalls.", "")) == []
    assert calls == []  # ruled out by the "pact" check, never evaluated
    hits = index.match(Document("GSOMIA pact", "Koreans and the pact.", ""))
    assert [hit.watchlist for hit in hits] == ["pact"]
    assert len(calls) == 1


def test_many_triggered_queries_are_checked_by_the_story_token_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past MANY_TRIGGERED queries a story's checks look whole words up in its token set;
    the hits are those of searching the text, for words, prefixes and Korean alike."""
    import monitor.watchlists.index as index_module

    contexts = ["pact", "korea*", "한국", "japan", "(tokyo OR seoul)", "talk*", "nope", "pac*"]
    lists = [
        watchlist(f"w{i}", f"gsomia AND {contexts[i % len(contexts)]}")
        for i in range(2 * index_module.MANY_TRIGGERED)
    ]
    index = compile_watchlists(lists, {})
    document = Document("GSOMIA talks", "Koreans, 한국어 and a pact; Seoul waits.", "")
    view = DocumentView(document)
    expected = [w.name for w in lists if evaluate(index.queries[w.name], view)]
    missing = {f"w{i}" for i, w in enumerate(lists) if "japan" in w.query or "nope" in w.query}
    assert set(expected) == {w.name for w in lists} - missing
    spied: list[int] = []
    monkeypatch.setattr(index, "_present_in_tokens", _spy(index._present_in_tokens, spied))
    by_tokens = index.match(document)
    assert len(spied) == 1
    monkeypatch.setattr(index_module, "MANY_TRIGGERED", len(lists) + 1)
    assert by_tokens == index.match(document)  # searched in the text this time
    assert len(spied) == 1
    assert expected == [hit.watchlist for hit in by_tokens]


def _spy(method: Callable[..., list[int]], calls: list[int]) -> Callable[..., list[int]]:
    def spy(*args: object) -> list[int]:
        calls.append(1)
        return method(*args)

    return spy


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["pact", "pacts", "a", "", " "]), max_size=12))
def test_single_word_spans_are_the_regex_spans(pieces: list[str]) -> None:
    """A word's spans come from str.find; its phrase regex would give the same ones."""
    padded = f" {' '.join(pieces)} "
    regex = _phrase_pattern((Word("pact"),)).finditer(padded)
    expected = [(found.start(), found.end() - 1) for found in regex][:MAX_PER_TERM]
    assert expected == _token_spans(padded, 0, len(padded), "pact")
    joined = f"x{padded}y"  # a field between others: its bounds in the joined text
    assert expected == _token_spans(joined, 1, len(joined) - 1, "pact")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(["pact", "pacts", "gsomia", "a", "", " "]), max_size=12),
    st.sampled_from([("pact",), ("pact*",), ("gsomia", "pact"), ("gsomia", "pact*"), ("a", "a")]),
)
def test_phrase_matches_are_the_regex_matches(pieces: list[str], terms: tuple[str, ...]) -> None:
    """A phrase's places found by str.find and confirmed by its regex are the regex's own
    matches, in a field between others (searched within its bounds) as alone."""
    words = tuple(Word(term.rstrip("*"), prefix=term.endswith("*")) for term in terms)
    joined = f"pact{' '.join(['', *pieces, ''])}pact"
    start, end = 4, len(joined) - 4
    expected = [found.span() for found in _phrase_pattern(words).finditer(joined, start, end)]
    assert expected == [found.span() for found in _phrase_matches(words, joined, start, end)]


def _evaluated_hit(name: str, node: Node, view: DocumentView) -> Hit | None:
    """``matching_hit`` without its shortcut: each alternative evaluated, then explained."""
    if isinstance(node, Or):
        for child in node.children:
            hit = _evaluated_hit(name, child, view)
            if hit is not None:
                return hit
        return None
    return _hit(name, node, view, _evidence(node, view)) if evaluate(node, view) else None


_PHRASE_QUERIES = [
    "pact",
    "pact*",
    '"gsomia pact"',
    '"gsomia pact*"',
    "=SCM",
    '"=SCM pact"',
    "한",
    "title:pact",
    "body:pac*",
    "source:gsomia",
    "gsomia OR =SCM OR pact",
    "(pact OR 한) OR (=SCM AND pact)",
]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(_PHRASE_QUERIES),
    *[
        st.lists(
            st.sampled_from(["pact", "pacts", "gsomia", "SCM", "scm", "한국", "é", " ", "\n"])
        ).map(" ".join)
        for _ in range(3)
    ],
)
def test_a_phrase_clause_hits_where_it_evaluates(
    query: str, title: str, body: str, source: str
) -> None:
    """A phrase clause's hit comes from gathering its spans, not evaluating it first: the
    hit (or none) must be the one evaluating each alternative and then explaining gives."""
    node = parse_query(query)
    view = DocumentView(Document(title, body, source))
    expected = _evaluated_hit("w", node, DocumentView(Document(title, body, source)))
    assert expected == matching_hit("w", node, view)


_FIELD_TEXT = st.lists(
    st.sampled_from(["a", "B", " ", "-", "é", "e\u0301", "\u0301", "한", "SCM", "国", "\n", "İ"])
).map("".join)


@given(_FIELD_TEXT, _FIELD_TEXT, _FIELD_TEXT)
def test_each_field_folds_as_if_folded_alone(title: str, body: str, source: str) -> None:
    """The view folds all fields at once; each field's slice of that, and every join of
    fields, must be what folding that field (or those fields) alone gives."""
    view = DocumentView(Document(title, body, source))
    texts = {"title": title, "body": body, "source": source}
    for fields in [
        ("title",),
        ("body",),
        ("source",),
        ("title", "body"),
        ("body", "source"),
        ("title", "source"),
        ("title", "body", "source"),
    ]:
        expected = " ".join(folded_text(texts[field]) for field in fields)
        assert view.padded(*fields) == f" {expected} "
    assert view.folded("body") == folded_text(body)


@given(_FIELD_TEXT, _FIELD_TEXT, _FIELD_TEXT, st.sampled_from(['"a b"', "=SCM", "a*", "b"]))
def test_a_phrase_is_searched_in_ascii_fields_only(
    title: str, body: str, source: str, query: str
) -> None:
    """Whether every field is ASCII is learnt once, from all fields together: a phrase is
    still searched in the folded text of exactly the ASCII fields, unless it is cased."""
    view = DocumentView(Document(title, body, source))
    view.all_fields()
    phrase = parse_query(query)
    assert isinstance(phrase, Phrase)
    texts = {"title": title, "body": body, "source": source}
    for field in FIELDS:
        searchable = texts[field].isascii() and not query.startswith("=")
        expected = view.bounds(field) if searchable else None
        assert expected == _search_bounds(view, phrase, field)


def test_threads_matching_through_re_plans_get_the_hits_of_one_thread() -> None:
    """The polling threads share one index, which re-plans its triggers after 1,000 and
    4,000 stories. A thread switch every microsecond lands switches between any two
    reads of its plan: each thread must still get every hit one thread alone gets."""
    rng = random.Random(5)
    vocabulary = [f"w{n}x" for n in range(2000)]

    def story() -> Document:
        words = rng.choices(vocabulary[:50], k=60) + rng.choices(vocabulary, k=30)
        rng.shuffle(words)
        return Document(" ".join(words[:8]), " ".join(words), "wire")

    stories = [story() for _ in range(1500)]
    configs = [
        WatchlistConfig(
            name=f"l{n}", query=f"{rng.choice(vocabulary[50:])} AND {rng.choice(vocabulary)}"
        )
        for n in range(1000)
    ]

    def hits(index: WatchlistIndex) -> list[list[str]]:
        return [[hit.watchlist for hit in index.match(document)] for document in stories]

    alone = hits(compile_watchlists(configs, {}))
    shared = compile_watchlists(configs, {})
    found: dict[int, list[list[str]]] = {}
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            found[thread] = hits(shared)
        except Exception as exc:  # reported below, not lost in the thread
            errors.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert [] == errors
    assert any(alone)
    assert [alone] * 4 == [found[n] for n in range(4)]


def test_a_phrase_regex_looked_up_by_identity_is_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Phrases' regexes are cached by the identity of their words: equal words from two
    watch-lists, and words looked up again after the cache was cleared at its bound,
    get the regex their value compiles to."""
    monkeypatch.setattr(match_module, "MAX_PATTERNS", 2)
    monkeypatch.setattr(match_module, "_PATTERNS", {})
    phrases = [("gsomia", "pact"), ("korea*",), ("gsomia", "pact"), ("talk*", "japan")]
    tuples = [tuple(Word(t.rstrip("*"), prefix=t.endswith("*")) for t in p) for p in phrases]
    for words in [*tuples, *tuples]:
        assert _phrase_pattern(words) is match_module._pattern_of(words)
    assert len(match_module._PATTERNS) <= 2
