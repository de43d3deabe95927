"""The query language, table-driven: each row is a query, a story, and whether it matches.

A story is written as ``monitor match`` reads one: first line title, the rest body.
"""

from __future__ import annotations

import pytest

from monitor.config import WatchlistConfig
from monitor.errors import QueryError
from monitor.model import Document
from monitor.watchlists import compile_watchlists
from monitor.watchlists.examples import text_document

TERMS = {
    "korea": ["Korea", "Seoul", "한국"],
    "pact": ['"intelligence sharing pact"', "GSOMIA"],
    "nested": ["@korea", "Pyongyang"],
    "scoped": ["title:gsomia", "talks"],
    "via-scoped": ["@scoped"],
}


def matches(query: str, story: str | Document) -> bool:
    index = compile_watchlists([WatchlistConfig(name="w", query=query)], TERMS)
    document = story if isinstance(story, Document) else text_document(story)
    return bool(index.match(document))


@pytest.mark.parametrize(
    ("query", "story", "expected"),
    [
        # words: whole tokens, case and accents folded
        ("japan", "Tokyo, Japan", True),
        ("JAPAN", "tokyo, japan", True),
        ("japan", "Japanese exports", False),
        ("cafe", "Café society", True),
        ("CAFÉ", "cafe society", True),
        ("naïve", "NAIVE", True),
        ("istanbul", "İstanbul", True),
        ("2019", "in 2019.", True),
        ("x" * 1_000, "y\n" + "X" * 1_000, True),  # the longest word a query may hold
        # phrases: consecutive tokens, so hyphen, dash and space variants all match
        ('"cost sharing"', "troop cost-sharing talks", True),
        ('"cost sharing"', "troop cost\u2013sharing talks", True),
        ('"cost sharing"', "troop cost sharing talks", True),
        ('"cost sharing"', "cost of sharing", False),
        ('"cost sharing"', "sharing cost", False),
        ('"cost sharing"', "the cost\nsharing", False),  # title and body are separate fields
        ("cost-sharing", "troop cost sharing talks", True),  # a hyphenated word is a phrase
        ("cost+sharing", "troop cost sharing talks", True),  # '+' inside a word too, as in FTS5
        ('"U.S. forces"', "U.S forces in Japan", True),
        ('"U.S. forces"', "US forces in Japan", False),
        ('"cost""sharing"', "cost sharing", True),  # a doubled quote is a quote, as in FTS5
        ('"cost""sharing"', "sharing cost", False),  # one phrase, not "cost" AND "sharing"
        ('"say ""cost"" now"', "say cost now", True),
        # prefixes
        ("defen*", "defence", True),
        ("defen*", "Defense", True),
        ("defen*", "undefended", False),
        ('"troop cost*"', "troop costs", True),
        ('"tro* cost"', "troops cost", True),
        ('"troop cost"*', "troop costly", True),
        # AND (also implicit), OR, NOT and -
        ("japan korea", "Japan and Korea", True),
        ("japan korea", "Japan alone", False),
        ("japan AND korea", "Korea and Japan", True),
        ("japan OR korea", "Korea alone", True),
        ("japan OR korea", "China alone", False),
        ("japan NOT korea", "Japan and Korea", False),
        ("japan NOT korea", "Japan alone", True),
        ("japan -korea", "Japan alone", True),
        ("japan -korea", "Japan and Korea", False),
        ("japan AND NOT korea", "Japan and Korea", False),
        ("and OR or", "this and that", True),  # keywords are upper case only
        # precedence, FTS5's: side by side (implicit AND), then NOT, then AND, then OR
        ("x NOT y z", "x", True),  # x NOT (y z)
        ("x NOT y z", "x y", True),
        ("x NOT y z", "x y z", False),
        ("x NOT y AND z", "x z", True),  # (x NOT y) AND z
        ("x NOT y AND z", "x y z", False),
        ("x AND y NOT z", "x y", True),  # x AND (y NOT z)
        ("x AND y NOT z", "x y z", False),
        ("x y OR z", "z", True),  # (x y) OR z
        ("x OR y z", "y", False),  # x OR (y z)
        ("x NOT y NOT z", "x z", False),
        ("NOT y z AND x", "x y", True),  # a leading NOT excludes the run, as a binary one
        ("NOT y z AND x", "x y z", False),
        ("x -y z", "x z", True),  # - excludes one operand
        ("x -y z", "x y z", False),
        ("x -y z", "x y", False),
        ("a OR b AND c", "a", True),
        ("a OR b AND c", "b", False),
        ("a OR b AND c", "b c", True),
        ("(a OR b) AND c", "a", False),
        ("NOT a AND b", "b", True),
        ("NOT a AND b", "a b", False),
        ("a AND NOT b OR c", "c b", True),
        ("a AND NOT b OR c", "a b", False),
        ("a AND NOT (b OR c)", "a c", False),
        # only ASCII white space separates terms, as in FTS5: after a no-break or other
        # Unicode space a keyword is a word (the space a separator inside it)
        ("a \u00a0OR b", "b", False),  # a AND "or" AND b
        ("a \u00a0OR b", "a or b", True),
        ("a\u00a0OR b", "a b or", False),  # the word "a\u00a0OR": the phrase "a or", AND b
        ("a\u00a0OR b", "b a or", True),
        ("a \u3000OR\u3000b", "b", False),
        ("a \u2028NOT b", "a b", False),  # a AND "not" AND b
        ("a \u2028NOT b", "a not b", True),
        ("a\tOR\r\nb", "b", True),
        # NEAR: at most N tokens between, in any order, in one field
        ("NEAR(seoul tokyo, 1)", "Seoul and Tokyo", True),
        ("NEAR(seoul tokyo, 0)", "Seoul and Tokyo", False),
        ("NEAR(seoul tokyo, 1)", "Tokyo and Seoul", True),
        ("NEAR(seoul tokyo)", "Seoul " + "x " * 10 + "Tokyo", True),  # default 10
        ("NEAR(seoul tokyo)", "Seoul " + "x " * 11 + "Tokyo", False),
        ('NEAR("cost sharing" troops, 2)', "cost-sharing for US troops", True),
        ('NEAR("cost sharing" troops, 1)', "cost-sharing for US troops", False),
        ("NEAR(a b c, 2)", "a x b x c", False),
        ("NEAR(a b c, 3)", "a x b x c", True),
        ("NEAR(seoul tokyo, 5)", "Seoul\nTokyo", False),
        ("NEAR (seoul tokyo, 1)", "Seoul and Tokyo", True),  # a space before '(' as in FTS5
        ("NEAR (seoul tokyo, 0)", "Seoul and Tokyo", False),
        ("NEAR(seoul tokyo, 2147483647)", "Seoul " + "x " * 50 + "Tokyo", True),  # the most
        ("NEAR(@korea tokyo, 2)", "Tokyo and Seoul", True),
        # fields
        ("title:gsomia", "GSOMIA row\nbody text", True),
        ("title:gsomia", "Headline\nGSOMIA row", False),
        ("body:gsomia", "Headline\nGSOMIA row", True),
        ("title:(japan OR korea)", "Korea\nJapan", True),
        ("title:(japan AND korea)", "Korea\nJapan", False),
        ("title:(body:japan korea)", "Korea\nJapan", True),  # the inner scope wins
        ('title:"cost sharing"', "cost-sharing row\n", True),
        ("title:NEAR(a b)", "a b\n", True),
        ("title:NEAR(a b)", "x\na b", False),
        ("title: gsomia", "GSOMIA row\nbody text", True),  # spaces around ':' as in FTS5
        ("title : gsomia", "Headline\nGSOMIA row", False),
        ("title :gsomia", "GSOMIA row\nbody text", True),
        # case-sensitive terms
        ("=SCM", "SCM meeting", True),
        ("=SCM", "scm meeting", False),
        ("=SCM", "Scm meeting", False),
        ("scm", "SCM meeting", True),
        ("=SCM", "제51차 SCM에서 논의", True),  # a Korean particle attached
        ("=SCM", "SCMP reports", False),
        ('="Security Consultative Meeting"', "the Security Consultative Meeting", True),
        ('="Security Consultative Meeting"', "the security consultative meeting", False),
        ("=Def*", "Defence", True),
        ("=Def*", "defence", False),
        ("x -=SCM", "x scm", True),
        ("x -=SCM", "x SCM", False),
        ("NEAR(=SCM talks, 1)", "SCM talks", True),
        ("NEAR(=SCM talks, 1)", "scm talks", False),
        ('="NOT"', "NOT", True),
        ('="NOT"', "not", False),
        # regex (RE2), over the original text
        ("/GSO?MIA/", "GSOMIA", True),
        ("/GSO?MIA/", "gsomia", False),
        ("/gso?mia/i", "GSOMIA", True),
        (r"/\bSMA\b/", "the SMA talks", True),
        (r"/\bSMA\b/", "SMALL talk", False),
        ("/a\\/b/", "a/b", True),
        ("/gso?mia/i korea", "GSOMIA Korea", True),
        ("/gso?mia/ i", "gsomia i", True),  # a space: the word i
        ("/korea/-japan", "korea", True),  # an operator glued to the slash is read as one
        ("/korea/-japan", "korea japan", False),
        ("/gso?mia/ i", "GSOMIA i", False),
        ("(/gso?mia/i)", "GSOMIA", True),
        # spaceless scripts match by substring
        ("지소미아", "정부, 지소미아를 종료", True),
        ("협의회", "한미안보협의회의", True),
        ("日韓軍事情報包括保護協定", "日韓軍事情報包括保護協定\uff08GSOMIA\uff09の破棄", True),
        ("安保", "日米安全保障", False),
        ('"방위비 분담"', "방위비 분담금 협상", True),
        # a word running digits or Latin letters into them matches where the parts touch
        # as written: the run after the digits starts there, the run before them ends there
        ("6자회담", "북핵 6자회담 재개", True),
        ("6자회담", "북핵 6자회담을 재개", True),
        ("6자회담", "북핵 6 모자회담", False),
        ("6자회담", "북핵 6 자회담", False),
        ("6자회담", "북핵 6모자회담", False),
        ("제51차", "제51차 SCM", True),
        ("제51차", "국제51차 회의", True),
        ("제51차", "한미 제 51 차", False),
        ("제51차", "제51 차", False),
        ("제51차", "제51차례", True),
        ("SCM에서", "제51차 SCM에서 논의", True),
        ("SCM에서", "SCM 회의에서", False),
        ("SCM에서", "SCM 에서", False),
        ('"6자회담 재개"', "6자회담 재개", True),
        ('"6자회담 재개"', "6 모자회담 재개", False),
        ("NEAR(6자회담 북핵, 3)", "북핵 6자회담", True),
        ("NEAR(6자회담 북핵, 3)", "북핵 6 모자회담", False),
        ("=SCM에서", "SCM에서", True),
        ("=SCM에서", "scm에서", False),
        # term sets
        ("@korea", "Seoul says", True),
        ("@korea", "Tokyo says", False),
        ("@pact AND japan", "an intelligence-sharing pact with Japan", True),
        ("@nested", "Seoul says", True),
        ("@nested", "Pyongyang says", True),
        ("title:@korea", "Tokyo\nSeoul", False),
        ("@scoped", "Headline\nGSOMIA row", False),
        ("@scoped", "GSOMIA row\nbody", True),
    ],
)
def test_language(query: str, story: str, expected: bool) -> None:
    assert expected == matches(query, story)


def test_source_field_is_searched_only_when_named() -> None:
    document = Document("Headline", "text", source="yonhap")
    assert matches("source:yonhap", document)
    assert not matches("yonhap", document)


@pytest.mark.parametrize(
    ("query", "column", "message"),
    [
        ("a AND", 6, "expected a term, found the end of the query"),
        ("a OR OR b", 6, "expected a term, found 'OR'"),
        ("(a OR b", 8, "expected ')' to close the '(' of column 1 at column 8"),
        ("a)", 2, "unexpected ')' with no '(' before it"),
        ("()", 2, "empty parentheses"),
        ('"cost sharing', 1, "unterminated phrase"),
        ('""', 1, "empty phrase"),
        ("NEAR(a b, x)", 11, "expected a distance"),
        ("NEAR(a b, \uff13)", 11, "expected a distance"),  # FTS5 takes 0-9 only
        # FTS5 keeps the distance in a C int: 2147483648 would wrap there
        ("NEAR(a b, 2147483648)", 11, "NEAR's distance is at most 2147483647 (FTS5's limit)"),
        ("NEAR(a b, 3", 12, "expected ')' after NEAR's distance"),
        ("NEAR(a b", 9, "expected ')' to close the NEAR("),
        ("NEAR(a)", 1, "NEAR needs at least two terms"),
        ("NEAR(a (b))", 8, "NEAR takes words and phrases"),
        ("NEAR(@pact-ish a)", 6, "unknown term set '@pact-ish'"),
        # a field inside NEAR is refused, written there or held by a set NEAR uses
        (
            "NEAR(@scoped japan, 1)",
            6,
            "term set '@scoped' holds title:gsomia: NEAR's terms take NEAR's field, so "
            "scope the whole NEAR, as in title:NEAR(a b)",
        ),
        ("NEAR(japan @via-scoped)", 12, "term set '@via-scoped' holds title:gsomia"),
        ("titel:gsomia", 1, "unknown field 'titel'"),
        ("Korea: talks", 1, "unknown field 'Korea'"),
        # a word followed by a colon is a field inside NEAR and after '=' too: read as
        # the phrase "title gsomia" it would never match
        ("NEAR(title:gsomia japan)", 6, "title: scopes the whole NEAR, as in title:NEAR(a b)"),
        ("NEAR(gsomia Korea: talks)", 13, "unknown field 'Korea'"),
        ("=title:SCM", 2, "title: put the field before '=', as in title:=SCM"),
        ("=Korea:SCM", 2, "unknown field 'Korea'"),
        ("gsomia title:", 14, "expected a term, found the end of the query"),
        ("title:-japan", 7, "title: scopes a term, a phrase, NEAR or a group"),
        ("title: NOT japan", 8, "title: scopes a term, a phrase, NEAR or a group"),
        ("gsomia NOT-japan", 8, "'NOT-japan': put a space after NOT"),
        ("gsomia AND-japan", 8, "'AND-japan': put a space after AND"),
        ("OR-japan", 1, "'OR-japan': put a space after OR"),
        ("/(/", 1, "bad regex: missing )"),
        ("//", 1, "empty regex"),
        ("/abc", 1, "unterminated regex"),
        # the only regex flag is i; anything else glued to the slash is no word after it
        ("/gsomia/s AND korea", 9, "'s' after a regex: the only flag is i (ignore case)"),
        ("/x/m", 4, "'m' after a regex: the only flag is i"),
        ("/x/I", 4, "'I' after a regex: the only flag is i"),
        ("/x/i*", 5, "'i*' after a regex: the only flag is i"),
        ("/x/is", 5, "'is' after a regex: the only flag is i"),
        ("/x/2019", 4, "'2019' after a regex: the only flag is i"),
        ("/x/*", 4, "'*' after a regex: the only flag is i"),
        ("/korea/i-japan", 9, "'i-japan' after a regex: the only flag is i"),
        ("/x/i.", 5, "'i.' after a regex: the only flag is i"),
        ("/x/i's", 5, '"i\'s" after a regex: the only flag is i'),
        ("@nope", 1, "unknown term set '@nope'"),
        ("@", 1, "expected a term-set name"),
        ("*", 1, "'*' must follow a word"),
        ("a**", 3, "'*' must follow a word"),
        ("&&", 1, "'&&' has no letters or digits"),
        # a word is a literal of the index's Hyperscan scan, which takes 16,000 bytes at
        # most: a longer one crashed compiling the index instead of naming the watch-list
        ("x" * 40_000, 1, "a word of 40,000 characters: a word has at most 1,000"),
        ('gsomia "pact ' + "\u00e9" * 1_001 + '"', 14, "a word of 1,001 characters"),
        # FTS5's syntax we do not share, refused rather than read as words: a*b is FTS5's
        # a* AND b, {title body}:a a column set, ^a a column's first token
        ("gsomia troo*cost", 8, "'*' inside 'troo*cost': write troo* and the rest as two"),
        # FTS5 joins the terms either side of a '+' into a phrase: japan +korea is the
        # phrase "japan korea" there, where it was japan AND korea here
        ("japan +korea", 7, "'+' at the edge of '+korea' is FTS5's phrase join"),
        ("japan+ korea", 6, "'+' at the edge of 'japan+' is FTS5's phrase join"),
        ('"japan"+korea', 8, "'+' at the edge of '+korea'"),
        ('japan+"korea"', 6, "'+' at the edge of 'japan+'"),
        ("NEAR(japan+ korea)", 11, "'+' at the edge of 'japan+'"),
        ("C++", 3, "'+' at the edge of 'C++' is FTS5's phrase join (a +b is the phrase \"a b\""),
        ("+", 1, "'+' at the edge of '+'"),
        ("{title body}:gsomia", 1, "'{' (a column set) is FTS5's: write title:a OR body:a"),
        ("scm ^seoul", 5, "'^' (a column's first token) is FTS5's"),
        # inside a word too: FTS5 reads korea^seoul as korea AND ^seoul, not a phrase
        ("korea^seoul", 6, "'^' (a column's first token) is FTS5's"),
        ("korea^ seoul", 6, "'^' (a column's first token) is FTS5's"),
        ("NEAR(korea^seoul talks)", 11, "'^' (a column's first token) is FTS5's"),
        ("= a", 2, "expected a word after '='"),
        ("a =", 4, "expected a word after '=', found end of query"),
        # '=' marks a word or a quoted phrase; before anything else it is refused, not
        # dropped (=@korea read as the word korea, =NOT x as the word not)
        ("=@korea", 2, "'=' before a term set: '=' marks a word or a phrase"),
        ("=/regex/", 2, "'=' before a regex: a regex is case-sensitive already"),
        ("=NEAR(a b)", 2, "'=' before NEAR: put '=' on its words, as in NEAR(=SCM talks)"),
        ("=NEAR (a b)", 2, "'=' before NEAR"),
        ("=NOT gsomia", 2, "'=' before NOT: quote a word spelled like a keyword"),
        ("x =OR y", 4, "'=' before OR: quote a word spelled like a keyword"),
        ("=-gsomia", 2, "'=' before '-': to exclude a case-sensitive word, write -=word"),
        ("==SCM", 2, "expected a word or a quoted phrase after '=', found '='"),
        ("=^seoul", 2, "expected a word or a quoted phrase after '=', found '^'"),
        ("NEAR(=@korea x)", 7, "'=' before a term set"),
        ("NOT", 4, "expected a term, found the end of the query"),
        ("a b c )", 7, "unexpected ')'"),
        ("(" * 70 + "a" + ")" * 70, 65, "nested more than 64 levels deep"),
        ("NOT japan", 1, "matches every story"),
        ("/x*/", 1, "matches every story"),
    ],
)
def test_errors_name_the_watchlist_column_and_what_was_expected(
    query: str, column: int, message: str
) -> None:
    with pytest.raises(QueryError) as caught:
        compile_watchlists([WatchlistConfig(name="w", query=query)], TERMS)
    assert column == caught.value.column
    assert "w" == caught.value.watchlist
    shown = str(caught.value)
    assert shown.startswith(f"watch-list 'w': {message}")
    assert f"\n    {query}\n    {' ' * (column - 1)}^" in shown


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        # a YAML | block: the line holding the error, and which line it is
        (
            "gsomia\nOR (japan AND\n",
            "the end of the query at line 2, column 14\n    OR (japan AND\n                 ^",
        ),
        ("a\n\tb OR\n  c)", "no '(' before it at line 3, column 4\n      c)\n       ^"),
        ("a\n(b OR\n  c", "the '(' of line 2, column 1 at line 3, column 4\n      c\n       ^"),
        # tabs are copied into the caret's padding, wide characters take two cells
        ("\tgsomia OR OR", "found 'OR' at column 12\n    \tgsomia OR OR\n    \t          ^"),
        ("한국 OR OR", "found 'OR' at column 7\n    한국 OR OR\n            ^"),
    ],
)
def test_the_caret_is_under_the_error_in_multiline_queries_and_after_tabs(
    query: str, shown: str
) -> None:
    with pytest.raises(QueryError) as caught:
        compile_watchlists([WatchlistConfig(name="w", query=query)], TERMS)
    assert str(caught.value).endswith(shown)


def test_near_over_thousands_of_occurrences_of_each_term() -> None:
    """Every instance of each term is a candidate, and a 176 KB body holds 16,000 of each:
    NEAR is decided here, as everywhere, by the instances that lie close together."""
    watchlists = [
        WatchlistConfig(name="touching", query="NEAR(alpha beta, 0)"),
        WatchlistConfig(name="one-between", query="NEAR(alpha beta, 1)"),
        WatchlistConfig(name="phrase", query='NEAR("alpha zz" beta, 0)'),
    ]
    index = compile_watchlists(watchlists, TERMS)
    body = "alpha " * 16_000 + "zz " + "beta " * 16_000
    assert ["one-between", "phrase"] == [hit.watchlist for hit in index.match(Document("t", body))]
