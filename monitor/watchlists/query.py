"""The watch-list query language: text -> syntax tree, or a QueryError with its column.

Grammar, with FTS5's precedence (from the tightest: terms side by side, NOT, AND, OR)::

    query    = or
    or       = and { "OR" and }
    and      = not { "AND" not }
    not      = seq { "NOT" seq }                      x NOT y: x and not y
    seq      = unary { unary }                        side by side: AND
    unary    = "NOT" seq | "-" unary | primary
    primary  = "(" or ")" | field ":" primary | "NEAR" "(" operand {operand} ["," N] ")"
             | ["="] ( word | '"' phrase '"' ) ["*"] | "/" regex "/" ["i"] | "@" set
    operand  = ["="] ( word | '"' phrase '"' ) ["*"] | "@" set        (sets of phrases only)

So ``x NOT y z`` is ``x NOT (y z)`` and ``x NOT y AND z`` is ``(x NOT y) AND z``, as in
FTS5. A leading NOT (which FTS5 lacks) excludes the same run as a binary one would: up to
the next AND, OR, NOT or ')'; ``-`` excludes one operand. Keywords are upper case, like
FTS5's. A bare word that holds several tokens (``cost-sharing``, ``U.S.``) is a phrase, so
``-`` means NOT only at the start of an operand. A regex's only flag is ``i``: another
letter, a digit or ``*`` glued to its closing slash is refused. The tree is plain data;
``match`` evaluates it and ``index`` builds the presearch terms from it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import re2

from monitor.errors import QueryError
from monitor.watchlists.tokens import fold, is_spaceless, token_spans

FIELDS = ("title", "body", "source")
DEFAULT_FIELDS = ("title", "body")
DEFAULT_NEAR = 10  # FTS5's default distance
# FTS5 keeps NEAR's distance in a C int: a larger one wraps (2147483648 becomes negative
# and NEAR matches nothing there), so it is refused rather than read differently.
MAX_NEAR = 2**31 - 1
# The longest word (token) a query may hold. Each word is a literal of the index's
# Hyperscan scan, which refuses a literal of more than 16,000 bytes; and FTS5 compares
# only a token's first 32,768 bytes. A word worth watching for is far shorter.
MAX_WORD = 1_000
MAX_DEPTH = 64  # nesting of parentheses, NOT and field scopes; deeper is surely a mistake

# Only ASCII white space separates terms, as in FTS5's query syntax: a no-break or
# ideographic space is part of a word there (a separator inside its phrase), so
# "a \u00a0OR b" needs the word "or" rather than being an OR.
_SPACE = " \t\r\n\f\v"
_SPACES = f"[{re.escape(_SPACE)}]*"
_FIELD_PREFIX = re.compile(f"([A-Za-z]+){_SPACES}:{_SPACES}")  # "title : x" is "title:x"
_NEAR = re.compile(f"NEAR{_SPACES}\\(")  # and "NEAR (a b)" is "NEAR(a b)", as in FTS5
_SET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# "@name" anywhere in a query's text: its term-set references, and perhaps an "@" inside
# a phrase or regex (for an order of work only; the parser decides what refers).
SET_MENTION = re.compile(r"@([A-Za-z0-9][A-Za-z0-9_.-]*)")
_DIGITS = re.compile(r"[0-9]+")  # as FTS5 reads a distance: \d would take other digits too
_KEYWORDS = ("AND", "OR", "NOT")
_WORD_END = frozenset(_SPACE + '()"')
_CARET = "'^' (a column's first token) is FTS5's: drop it, or quote the word"
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a bad pattern becomes a QueryError, not noise on stderr


@dataclass(frozen=True, slots=True)
class Word:
    """One token of a phrase, folded as documents are.

    ``cased`` holds the spelling a case-sensitive term (``=SCM``) requires. A word in a
    spaceless script (Korean, Japanese, Chinese) matches any token containing it.

    ``joins_previous`` and ``joins_next``: the word touches its neighbour in the query,
    as in ``6자회담`` (the tokens 6 and 자회담, split where the script changes). It then
    matches only a token touching that neighbour in the text, and a spaceless word only
    at that edge of its token: 6자회담 is in 6자회담을, not in "6 모자회담".
    """

    text: str
    prefix: bool = False
    cased: str | None = None
    spaceless: bool = False
    joins_previous: bool = False
    joins_next: bool = False


@dataclass(frozen=True, slots=True)
class Phrase:
    """Consecutive tokens in one field; a single word is a phrase of one."""

    words: tuple[Word, ...]
    text: str
    fields: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Regex:
    """A pattern run by RE2 (linear time) over the field's original text."""

    pattern: str
    text: str
    compiled: Any = field(compare=False, repr=False)
    fields: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Near:
    """One phrase of each group within ``distance`` tokens (FTS5's NEAR), in one field.

    A group holds alternatives: a term set used inside NEAR contributes all its phrases.
    """

    groups: tuple[tuple[Phrase, ...], ...]
    distance: int
    text: str
    fields: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]
    text: str


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]
    text: str


@dataclass(frozen=True, slots=True)
class Not:
    child: Node
    text: str


Node = Phrase | Regex | Near | And | Or | Not


@dataclass(frozen=True, slots=True)
class TermSet:
    """A parsed term set: the OR of its entries, and the nesting it brings where it is
    used (its own level, and its deepest entry's parentheses, NOTs, fields and sets)."""

    node: Node
    height: int


SetResolver = Callable[[str], TermSet | None]


class SetReferenceError(Exception):
    """Raised by a SetResolver for a set that cannot be used (e.g. it refers to itself)."""


def parse_query(text: str, resolve: SetResolver | None = None) -> Node:
    """Parse a watch-list query; unscoped terms look at the title and the body."""
    return with_fields(_Parser(text, resolve, implicit_and=True).parse(), DEFAULT_FIELDS)


def parse_set_entry(text: str, resolve: SetResolver | None, *, set_name: str) -> tuple[Node, int]:
    """Parse one entry of a term set, leaving its fields to the query that uses it; with
    the entry its nesting, the set's own level included.

    Entries are OR-ed alternatives, so ``General Security Agreement`` unquoted (three words
    AND-ed) is refused: it is almost always a phrase missing its quotes.
    """
    parser = _Parser(text, resolve, implicit_and=False, context=f"term set {set_name!r}: ")
    parser.depth = parser.height = 1  # the set is a level of whoever uses it
    return parser.parse(), parser.height


def with_fields(node: Node, fields: tuple[str, ...]) -> Node:
    """``node`` with ``fields`` given to every leaf that has no field yet."""
    match node:
        case Phrase() | Regex() | Near():
            return node if node.fields is not None else replace(node, fields=fields)
        case And() | Or():
            return replace(node, children=tuple(with_fields(c, fields) for c in node.children))
        case Not():
            return replace(node, child=with_fields(node.child, fields))


class _Parser:
    """Recursive descent over the query text; ``pos`` is the index of the next character."""

    def __init__(
        self, text: str, resolve: SetResolver | None, *, implicit_and: bool, context: str = ""
    ) -> None:
        self.text = text
        self.context = context
        self.pos = 0
        self.depth = 0
        self.height = 0  # the deepest nesting reached, term sets' own included
        self.resolve = resolve
        self.implicit_and = implicit_and

    # --- helpers ---------------------------------------------------------------------

    def error(self, message: str, pos: int | None = None, opened: int | None = None) -> QueryError:
        """A QueryError at ``pos`` (else here); ``opened`` is where the bracket it leaves
        open is."""
        where = self.pos if pos is None else pos
        # At the end, just past the last character written: a YAML block's trailing
        # newline would put the caret on an empty line.
        column = min(where, len(self.text.rstrip())) + 1
        return QueryError(
            self.context + message,
            query=self.text,
            column=column,
            opened=None if opened is None else opened + 1,
        )

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _SPACE:
            self.pos += 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def bare_run(self, pos: int, stop: frozenset[str] = _WORD_END) -> int:
        """End of the run of word characters starting at ``pos``."""
        end = pos
        while end < len(self.text) and self.text[end] not in stop:
            end += 1
        return end

    def at_keyword(self, keyword: str) -> bool:
        end = self.pos + len(keyword)
        return self.text.startswith(keyword, self.pos) and self.bare_run(self.pos) == end

    def describe_here(self) -> str:
        if self.pos >= len(self.text):
            return "end of query"
        return repr(self.text[self.pos : self.bare_run(self.pos)] or self.text[self.pos])

    def nest(self, start: int, levels: int = 1) -> None:
        """Go ``levels`` deeper (a term set brings its own nesting), within MAX_DEPTH:
        deeper, evaluating the tree would run out of stack."""
        self.depth += levels
        if self.depth > MAX_DEPTH:
            raise self.error(f"nested more than {MAX_DEPTH} levels deep", start)
        self.height = max(self.height, self.depth)

    # --- grammar ---------------------------------------------------------------------

    def parse(self) -> Node:
        self.skip_space()
        if self.pos >= len(self.text):
            raise self.error("empty query: expected a term")
        node = self.parse_or()
        self.skip_space()
        if self.pos < len(self.text):
            if self.peek() == ")":
                raise self.error("unexpected ')' with no '(' before it")
            raise self.error(
                f"expected AND, OR or the end of the query, found {self.describe_here()}"
            )
        return node

    def parse_or(self) -> Node:
        start = self.pos
        children = self.chain("OR", self.parse_and)
        return children[0] if len(children) == 1 else Or(tuple(children), self.span(start))

    def parse_and(self) -> Node:
        start = self.pos
        children = self.chain("AND", self.parse_not)
        return children[0] if len(children) == 1 else And(tuple(children), self.span(start))

    def parse_not(self) -> Node:
        """``x NOT y NOT z``: x, and neither y nor z (FTS5's binary NOT)."""
        start = self.pos
        first, *excluded = self.chain("NOT", self.parse_seq)
        if not excluded:
            return first
        nots = (Not(child, f"NOT {child.text}") for child in excluded)
        return And((first, *nots), self.span(start))

    def chain(self, keyword: str, operand: Callable[[], Node]) -> list[Node]:
        """The operands of ``operand {keyword operand}``."""
        children = [operand()]
        self.skip_space()
        while self.at_keyword(keyword):
            self.pos += len(keyword)
            children.append(operand())
            self.skip_space()
        return children

    def parse_seq(self) -> Node:
        """Operands side by side, ANDed: they bind tighter than any keyword, as in FTS5."""
        start = self.pos
        children = [self.parse_unary()]
        while True:
            self.skip_space()
            if (
                self.pos >= len(self.text)
                or self.peek() == ")"
                or any(self.at_keyword(k) for k in _KEYWORDS)
            ):
                break
            if not self.implicit_and:
                raise self.error(
                    'term-set entries are alternatives: quote a phrase ("a b") '
                    "or join words with AND"
                )
            children.append(self.parse_unary())
        return children[0] if len(children) == 1 else And(tuple(children), self.span(start))

    def parse_unary(self) -> Node:
        """A leading NOT excludes the run of operands after it, ``-`` one operand."""
        self.skip_space()
        start = self.pos
        operand: Callable[[], Node]
        if self.at_keyword("NOT"):
            self.pos += 3
            operand = self.parse_seq
        elif (
            self.peek() == "-"
            and self.pos + 1 < len(self.text)
            and self.text[self.pos + 1] not in _SPACE
        ):
            self.pos += 1
            operand = self.parse_unary
        else:
            return self.parse_primary()
        self.nest(start)
        child = operand()
        self.depth -= 1
        return Not(child, self.span(start))

    def parse_primary(self) -> Node:
        self.skip_space()
        char = self.peek()
        if not char:
            raise self.error("expected a term, found the end of the query")
        if char == ")":
            raise self.error("expected a term, found ')'")
        if char == "(":
            return self.parse_group()
        near = _NEAR.match(self.text, self.pos)
        if near:
            return self.parse_near(near)
        if char == "/":
            return self.parse_regex()
        if char == "@":
            return self.resolve_set()
        if char in "{^":
            # FTS5's column sets and first-token marks: read as words here, {title body}:a
            # would ask for the words "title" and "body", ^seoul for Seoul anywhere.
            raise self.error(
                "'{' (a column set) is FTS5's: write title:a OR body:a" if char == "{" else _CARET
            )
        if any(self.at_keyword(k) for k in ("AND", "OR")):
            raise self.error(f"expected a term, found {self.describe_here()}")
        glued = next((k for k in _KEYWORDS if self.text.startswith(f"{k}-", self.pos)), None)
        if glued:
            # FTS5 refuses these; reading NOT-japan as the phrase "not japan" would
            # silently turn an exclusion into a requirement.
            raise self.error(
                f"{self.describe_here()}: put a space after {glued}, "
                "or quote the words if they are a phrase"
            )
        prefix = _FIELD_PREFIX.match(self.text, self.pos)
        if prefix:
            return self.parse_field(prefix)
        return self.parse_term()

    def parse_group(self) -> Node:
        start = self.pos
        self.nest(start)
        self.pos += 1
        self.skip_space()
        if self.peek() == ")":
            raise self.error("empty parentheses: expected a term")
        node = self.parse_or()
        self.skip_space()
        if self.peek() != ")":
            raise self.error("expected ')' to close the '('", opened=start)
        self.pos += 1
        self.depth -= 1
        return node

    def parse_field(self, prefix: re.Match[str]) -> Node:
        start = self.pos
        name = prefix.group(1)
        if name not in FIELDS:
            raise self.unknown_field(name)
        self.nest(self.pos)
        self.pos = prefix.end()
        if self.peek() == "-" or self.at_keyword("NOT"):
            # FTS5 refuses this too; an exclusion is scoped from outside or in a group.
            raise self.error(
                f"{name}: scopes a term, a phrase, NEAR or a group: to exclude, "
                f"write NOT {name}:term or {name}:(NOT term)"
            )
        node = self.parse_primary()
        self.depth -= 1
        return _scoped(with_fields(node, (name,)), name, self.span(start))

    def unknown_field(self, name: str) -> QueryError:
        return self.error(
            f"unknown field {name!r}: expected one of {', '.join(FIELDS)} "
            "(quote the word if the colon is part of it)"
        )

    def parse_term(self, *, in_near: bool = False) -> Phrase:
        """A word or phrase, with optional ``=`` (case-sensitive) and ``*`` (prefix)."""
        start = self.pos
        cased = self.peek() == "="
        if cased:
            self.pos += 1
            self.refuse_cased_non_word()
        if self.peek() == '"':
            words = self.parse_quoted(cased)
        else:
            words = self.parse_word(cased, in_near=in_near)
        return Phrase(words, self.span(start))

    def refuse_cased_non_word(self) -> None:
        """Refuse what follows a ``=`` unless it is a word or a quoted phrase.

        Read as a word, ``=@korea`` would be the word "korea" (no set), ``=NOT x`` the
        word "not", ``=-x`` the word "x" required rather than excluded.
        """
        char = self.peek()
        keyword = next((k for k in _KEYWORDS if self.at_keyword(k)), None)
        if char == "@":
            message = (
                "'=' before a term set: '=' marks a word or a phrase; put it on the set's entries"
            )
        elif char == "/":
            message = "'=' before a regex: a regex is case-sensitive already (add i to ignore case)"
        elif _NEAR.match(self.text, self.pos):
            message = "'=' before NEAR: put '=' on its words, as in NEAR(=SCM talks)"
        elif keyword is not None:
            message = f"'=' before {keyword}: quote a word spelled like a keyword (=\"{keyword}\")"
        elif char == "-":
            message = "'=' before '-': to exclude a case-sensitive word, write -=word"
        elif char and char in "={^":
            message = f"expected a word or a quoted phrase after '=', found {char!r}"
        else:
            return
        raise self.error(message)

    def parse_quoted(self, cased: bool) -> tuple[Word, ...]:
        open_at = self.pos
        close = self.closing_quote(open_at)
        words = self.words(open_at + 1, close, cased)
        if not words:
            raise self.error("empty phrase: expected letters or digits between the quotes", open_at)
        self.pos = close + 1
        if self.peek() == "*":
            self.pos += 1
            words = (*words[:-1], replace(words[-1], prefix=True))
        return words

    def closing_quote(self, open_at: int) -> int:
        """Where the phrase opened at ``open_at`` ends. A doubled quote inside is a quote
        (FTS5's escape, a separator like any punctuation), so ``"a""b"`` is one phrase,
        as FTS5 reads it, not "a" AND "b"."""
        close = open_at
        while True:
            close = self.text.find('"', close + 1)
            if close < 0:
                raise self.error("unterminated phrase: expected a closing '\"'", open_at)
            if self.text[close + 1 : close + 2] != '"':
                return close
            close += 1

    def parse_word(self, cased: bool, *, in_near: bool) -> tuple[Word, ...]:
        start = self.pos
        prefix = _FIELD_PREFIX.match(self.text, start)
        if prefix:
            # A word followed by a colon is a field everywhere; read here as a phrase
            # ("title gsomia"), NEAR(title:gsomia x) or =title:SCM would never match.
            name = prefix.group(1)
            if name not in FIELDS:
                raise self.unknown_field(name)
            if in_near:
                raise self.error(f"{name}: scopes the whole NEAR, as in {name}:NEAR(a b)")
            raise self.error(f"{name}: put the field before '=', as in {name}:=SCM")
        end = self.bare_run(start, _WORD_END | {","} if in_near else _WORD_END)
        if end == start:
            raise self.error(f"expected a word after '=', found {self.describe_here()}")
        self.pos = end
        run = self.text[start:end]
        if run.startswith("+") or run.endswith("+"):
            # FTS5 joins the terms either side of a '+' into a phrase: "japan +korea" is
            # the phrase "japan korea" there, and read as the word korea here it would be
            # japan AND korea. Inside a word (cost+sharing) both read a phrase.
            raise self.error(
                f"'+' at the edge of {run!r} is FTS5's phrase join (a +b is the phrase "
                "\"a b\" there): quote the phrase or the word, or drop the '+'",
                start if run.startswith("+") else end - 1,
            )
        caret = run.find("^")
        if caret >= 0:
            # FTS5 reads c^seoul as c AND ^seoul (Seoul first in a column), not a phrase.
            raise self.error(_CARET, start + caret)
        words = self.words(start, end, cased)
        if not words:
            raise self.error(f"{run!r} has no letters or digits to match", start)
        inner = next((w for w in words[:-1] if w.prefix), None)
        if inner is not None:
            # FTS5 reads a*b as a* AND b; a phrase of them would be a narrower query.
            raise self.error(
                f"'*' inside {run!r}: write {inner.text}* and the rest as "
                f'two terms, or quote the phrase ("{run}")',
                start,
            )
        return words

    def words(self, start: int, end: int, cased: bool) -> tuple[Word, ...]:
        """The tokens of ``text[start:end]``; a ``*`` right after a token makes it a prefix."""
        chunk = self.text[start:end]
        spans = list(token_spans(chunk))
        ends = {token_end for _, token_end in spans}
        starts = {token_start for token_start, _ in spans}
        for i, char in enumerate(chunk):
            if char == "*" and i not in ends:
                raise self.error("'*' must follow a word, as in pre*", start + i)
        for a, b in spans:
            if b - a > MAX_WORD:
                raise self.error(
                    f"a word of {b - a:,} characters: a word has at most {MAX_WORD:,}",
                    start + a,
                )
        return tuple(
            Word(
                folded,
                prefix=chunk[b : b + 1] == "*",
                cased=unicodedata.normalize("NFC", chunk[a:b]) if cased else None,
                spaceless=is_spaceless(folded),
                joins_previous=a in ends,
                joins_next=b in starts,
            )
            for a, b in spans
            for folded in (fold(chunk[a:b]),)
        )

    def parse_regex(self) -> Regex:
        start = self.pos
        i = start + 1
        while i < len(self.text) and self.text[i] != "/":
            i += 2 if self.text[i] == "\\" else 1
        if i >= len(self.text):
            raise self.error("unterminated regex: expected a closing '/'", start)
        pattern = self.text[start + 1 : i]
        self.pos = i + 1
        if self.regex_flags() == "i":
            self.pos += 1
            pattern = f"(?i){pattern}"
        if not pattern:
            raise self.error("empty regex", start)
        try:
            compiled = re2.compile(pattern.replace("\\/", "/"), options=_RE2_OPTIONS)
        except re2.error as exc:
            detail = exc.args[0].decode() if isinstance(exc.args[0], bytes) else exc.args[0]
            raise self.error(f"bad regex: {detail}", start) from None
        return Regex(pattern, self.span(start), compiled)

    def regex_flags(self) -> str:
        """The flags right after a regex's closing slash: ``i`` or nothing.

        A run glued to the slash that starts with a letter, digit or ``*`` and is not
        ``i`` alone is refused: read as a word after the regex, ``/gsomia/s`` would
        quietly require the token "s", ``/x/m`` or ``/x/I`` would not do what the writer
        meant, and ``/korea/i-japan`` could be ``/korea/i -japan`` or ``/korea/ i-japan``.
        """
        flags = self.text[self.pos : self.bare_run(self.pos)]
        if flags == "i":
            return flags
        if not flags or not (flags[0].isalnum() or flags[0] == "*"):
            return ""  # an operator or a set after it: /x/-y, /x/@set
        raise self.error(
            f"{flags!r} after a regex: the only flag is i (ignore case), as in /gsomia/i; "
            "put a space before a word that follows a regex",
            self.pos + 1 if flags[0] == "i" else self.pos,
        )

    def resolve_set(self) -> Node:
        start = self.pos
        name_match = _SET_NAME.match(self.text, start + 1)
        if name_match is None:
            raise self.error("expected a term-set name after '@'", start)
        name = name_match.group(0)
        self.pos = name_match.end()
        try:
            term_set = self.resolve(name) if self.resolve else None
        except SetReferenceError as exc:
            raise self.error(str(exc), start) from None
        if term_set is None:
            raise self.error(f"unknown term set '@{name}'", start)
        self.nest(start, term_set.height)
        self.depth -= term_set.height
        return term_set.node

    def parse_near(self, opening: re.Match[str]) -> Near:
        start = self.pos
        self.pos = opening.end()
        groups: list[tuple[Phrase, ...]] = []
        distance = DEFAULT_NEAR
        while True:
            self.skip_space()
            char = self.peek()
            if char == ")":
                break
            if char == ",":
                self.pos += 1
                self.skip_space()
                digits = _DIGITS.match(self.text, self.pos)
                if digits is None:
                    raise self.error("expected a distance (a whole number) after ','")
                distance = int(digits.group(0))
                if distance > MAX_NEAR:
                    raise self.error(f"NEAR's distance is at most {MAX_NEAR} (FTS5's limit)")
                self.pos = digits.end()
                self.skip_space()
                if self.peek() != ")":
                    raise self.error("expected ')' after NEAR's distance")
                break
            if not char:
                raise self.error("expected ')' to close the NEAR(", opened=start)
            groups.append(self.near_group())
        if len(groups) < 2:
            raise self.error("NEAR needs at least two terms, as in NEAR(a b, 5)", start)
        self.pos += 1
        return Near(tuple(groups), distance, self.span(start))

    def near_group(self) -> tuple[Phrase, ...]:
        start = self.pos
        if self.peek() == "@":
            node = self.resolve_set()
            phrases = _phrases(node)
            if phrases is None:
                raise self.error(
                    "a term set inside NEAR may hold only words, phrases, prefixes and "
                    "=case-sensitive words (no AND, NOT, NEAR or regex)",
                    start,
                )
            scoped = next((phrase for phrase in phrases if phrase.fields), None)
            if scoped is not None:
                # NEAR's terms take NEAR's field: the entry's would be dropped, as a
                # field written inside NEAR would be, and that is refused too.
                field = ",".join(scoped.fields or ())
                raise self.error(
                    f"term set {self.text[start : self.pos]!r} holds {scoped.text}: "
                    f"NEAR's terms take NEAR's field, so scope the whole NEAR, "
                    f"as in {field}:NEAR(a b)",
                    start,
                )
            return phrases
        if self.peek() in "(/-" or any(self.at_keyword(k) for k in _KEYWORDS):
            raise self.error(f"NEAR takes words and phrases, found {self.describe_here()}", start)
        return (self.parse_term(in_near=True),)

    def span(self, start: int) -> str:
        return self.text[start : self.pos].strip()


def _scoped(node: Node, name: str, text: str) -> Node:
    """``node``, scoped to field ``name``, written as ``text``; so are the alternatives
    of an OR (a set's too) with their field, as a hit shows the one that fired alone.
    An alternative with a field of its own keeps it: the inner scope wins."""
    if not isinstance(node, Or):
        return replace(node, text=text)
    children = tuple(
        child if _FIELD_PREFIX.match(child.text) else _scoped(child, name, _field_text(name, child))
        for child in node.children
    )
    return replace(node, children=children, text=text)


def _field_text(name: str, node: Node) -> str:
    """How ``name:`` scoping ``node`` is written: ``title:a``, ``title:(a b)``."""
    compound = isinstance(node, And | Or | Not) and not node.text.startswith("@")
    return f"{name}:({node.text})" if compound else f"{name}:{node.text}"


def _phrases(node: Node) -> tuple[Phrase, ...] | None:
    """The phrases of an OR of phrases (a term set), or None if it holds anything else."""
    match node:
        case Phrase():
            return (node,)
        case Or():
            found: list[Phrase] = []
            for child in node.children:
                phrases = _phrases(child)
                if phrases is None:
                    return None
                found.extend(phrases)
            return tuple(found)
        case _:
            return None
