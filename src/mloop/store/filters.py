"""The run-search language: a tokenizer, a typed AST and a recursive-descent parser.

It is MLflow's filter syntax plus ``OR``, ``NOT`` and parentheses. Keywords are
case-insensitive::

    expr        := or
    or          := and (OR and)*
    and         := unary (AND unary)*
    unary       := NOT unary | '(' expr ')' | comparison
    comparison  := identifier ('=' | '!=' | '>' | '>=' | '<' | '<=') value
                 | identifier [NOT] (LIKE | ILIKE) string
                 | identifier [NOT] IN '(' value (',' value)* ')'
                 | identifier IS [NOT] NULL
    identifier  := [entity '.'] key          a bare key is an attribute
    entity      := metrics | params | tags | attributes   (singulars, attr and run too)
    order_by    := identifier [ASC | DESC]

A key may contain letters, digits and ``_ . - / :``; any other key is quoted with backticks or
double quotes (``metrics."val loss"``). Strings take single or double quotes; inside them
``\\'``, ``\\"`` and ``\\\\`` escape, and a doubled quote stands for one. Any other backslash is
kept, so that ``LIKE 'a\\_b'`` matches a literal underscore (``\\`` is the LIKE escape).

Every check that needs to point at the text (operators allowed per entity, value types, known
attributes and statuses) happens here, so the SQL compiler in ``search`` never fails.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn, TypeAlias

from mloop.errors import SearchSyntaxError
from mloop.store.base import Lifecycle, RunStatus

__all__ = [
    "MAX_COMPARISONS",
    "MAX_FILTER_LENGTH",
    "MAX_IN_ITEMS",
    "MAX_NESTING",
    "MAX_ORDER_KEYS",
    "And",
    "Comparison",
    "Entity",
    "Expr",
    "Not",
    "Op",
    "Or",
    "OrderKey",
    "Scalar",
    "Value",
    "parse_filter",
    "parse_order_by",
]

#: Longest filter accepted, in characters.
MAX_FILTER_LENGTH = 10_000
#: Deepest nesting of parentheses and NOT accepted.
MAX_NESTING = 50
#: Most values accepted in one IN list.
MAX_IN_ITEMS = 1_000
#: Most comparisons in one filter (SQLite refuses expression trees deeper than 1,000).
MAX_COMPARISONS = 500
#: Most order-by keys accepted.
MAX_ORDER_KEYS = 10

_INT64_MAX = 2**63 - 1


class Entity(enum.StrEnum):
    """What a key names: a run's metric, param, tag, or one of its attributes."""

    METRIC = "metric"
    PARAM = "param"
    TAG = "tag"
    ATTRIBUTE = "attribute"


class Op(enum.StrEnum):
    """A comparison operator, spelled as in the filter language."""

    EQ = "="
    NE = "!="
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    LIKE = "LIKE"
    ILIKE = "ILIKE"
    NOT_LIKE = "NOT LIKE"
    NOT_ILIKE = "NOT ILIKE"
    IN = "IN"
    NOT_IN = "NOT IN"
    IS_NULL = "IS NULL"
    IS_NOT_NULL = "IS NOT NULL"


#: One value of a comparison.
Scalar: TypeAlias = str | int | float
#: A comparison's value: a scalar, a tuple for IN / NOT IN, None for IS [NOT] NULL.
Value: TypeAlias = Scalar | tuple[Scalar, ...] | None


@dataclass(frozen=True, slots=True)
class Comparison:
    """``entity.key op value``; for attributes ``key`` is the canonical attribute name."""

    entity: Entity
    key: str
    op: Op
    value: Value


@dataclass(frozen=True, slots=True)
class And:
    """True when every operand is true."""

    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """True when any operand is true."""

    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """True when the operand is false."""

    operand: Expr


#: A parsed filter.
Expr: TypeAlias = Comparison | And | Or | Not


@dataclass(frozen=True, slots=True)
class OrderKey:
    """One order-by key; runs lacking it sort last in either direction."""

    entity: Entity
    key: str
    ascending: bool = True


# -- what each entity and attribute accepts ---------------------------------------------------

_ENTITY_PREFIXES = {
    "metrics": Entity.METRIC,
    "metric": Entity.METRIC,
    "params": Entity.PARAM,
    "param": Entity.PARAM,
    "tags": Entity.TAG,
    "tag": Entity.TAG,
    "attributes": Entity.ATTRIBUTE,
    "attribute": Entity.ATTRIBUTE,
    "attr": Entity.ATTRIBUTE,
    "run": Entity.ATTRIBUTE,
}

_NUMERIC_OPS = frozenset({Op.EQ, Op.NE, Op.GT, Op.GE, Op.LT, Op.LE})
_NULL_OPS = frozenset({Op.IS_NULL, Op.IS_NOT_NULL})
_SET_OPS = frozenset({Op.EQ, Op.NE, Op.IN, Op.NOT_IN})
_STRING_OPS = _SET_OPS | {Op.LIKE, Op.ILIKE, Op.NOT_LIKE, Op.NOT_ILIKE}


class _Kind(enum.Enum):
    """The type of value an entity or attribute compares with."""

    STRING = "string"
    NUMBER = "number"
    INTEGER = "integer"
    STATUS = "status"
    LIFECYCLE = "lifecycle"


@dataclass(frozen=True, slots=True)
class _Rule:
    ops: frozenset[Op]
    kind: _Kind


_ENTITY_RULES = {
    Entity.METRIC: _Rule(_NUMERIC_OPS | _NULL_OPS, _Kind.NUMBER),
    Entity.PARAM: _Rule(_STRING_OPS | _NULL_OPS, _Kind.STRING),
    Entity.TAG: _Rule(_STRING_OPS | _NULL_OPS, _Kind.STRING),
}

_ATTRIBUTE_RULES = {
    "run_id": _Rule(_SET_OPS, _Kind.STRING),
    "run_name": _Rule(_STRING_OPS, _Kind.STRING),
    "status": _Rule(_SET_OPS, _Kind.STATUS),
    "user": _Rule(_STRING_OPS, _Kind.STRING),
    "experiment_id": _Rule(_NUMERIC_OPS | {Op.IN, Op.NOT_IN}, _Kind.INTEGER),
    "parent_run_id": _Rule(_SET_OPS | _NULL_OPS, _Kind.STRING),
    "start_time": _Rule(_NUMERIC_OPS, _Kind.NUMBER),
    "end_time": _Rule(_NUMERIC_OPS | _NULL_OPS, _Kind.NUMBER),
    "lifecycle": _Rule(_SET_OPS, _Kind.LIFECYCLE),
}

_ATTRIBUTE_ALIASES = {
    "id": "run_id",
    "name": "run_name",
    "parent_id": "parent_run_id",
    "lifecycle_stage": "lifecycle",
}

_ENTITY_LABELS = {Entity.METRIC: "metrics", Entity.PARAM: "params", Entity.TAG: "tags"}


# -- tokens -----------------------------------------------------------------------------------


class _Tok(enum.Enum):
    IDENT = "identifier"
    STRING = "string"
    NUMBER = "number"
    OP = "operator"
    KEYWORD = "keyword"
    LPAREN = "'('"
    RPAREN = "')'"
    COMMA = "','"
    EOF = "end"


_KEYWORDS = frozenset({"AND", "OR", "NOT", "IN", "LIKE", "ILIKE", "IS", "NULL"})
_OPERATORS = {
    "=": "=",
    "==": "=",
    "!=": "!=",
    "<>": "!=",
    ">": ">",
    ">=": ">=",
    "<": "<",
    "<=": "<=",
}
_KEY_PUNCTUATION = frozenset("_.-/:")
_ESCAPABLE = frozenset("'\"`\\")


@dataclass(frozen=True, slots=True)
class _Token:
    """One token: ``text`` as written, ``column`` where it starts, ``value`` decoded."""

    kind: _Tok
    text: str
    column: int
    value: str = ""
    prefix: str | None = None  # identifiers: the entity prefix as written, None when bare
    number: int | float = 0

    def describe(self) -> str:
        """How an error message names this token."""
        return "the end of the text" if self.kind is _Tok.EOF else repr(self.text)


def _fail(message: str, text: str, column: int) -> NoReturn:
    raise SearchSyntaxError(message, text=text, column=column)


def _is_key_char(ch: str) -> bool:
    return ch.isalnum() or ch in _KEY_PUNCTUATION


def _read_quoted(text: str, start: int, what: str) -> tuple[str, int]:
    """Decode the quoted string or key starting at ``start``; return it and the end index."""
    quote = text[start]
    out: list[str] = []
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n:
            nxt = text[i + 1]
            out.append(nxt if nxt in _ESCAPABLE else ch + nxt)
            i += 2
        elif ch == quote:
            if i + 1 < n and text[i + 1] == quote:
                out.append(quote)
                i += 2
            else:
                return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1
    _fail(f"unterminated {what}: no closing {quote}", text, start)


def _read_number(text: str, start: int) -> tuple[_Token, int]:
    i = start
    n = len(text)
    if text[i] in "+-":
        i += 1
    digits_start = i
    while i < n and text[i].isdigit():
        i += 1
    is_float = False
    if i < n and text[i] == ".":
        is_float = True
        i += 1
        while i < n and text[i].isdigit():
            i += 1
    if i == digits_start or text[digits_start:i] == ".":
        _fail("malformed number", text, start)
    if i < n and text[i] in "eE":
        is_float = True
        i += 1
        if i < n and text[i] in "+-":
            i += 1
        exp_start = i
        while i < n and text[i].isdigit():
            i += 1
        if i == exp_start:
            _fail("malformed number: the exponent has no digits", text, start)
    if i < n and (text[i].isalpha() or text[i] in "_."):
        end = i
        while end < n and (text[end].isalnum() or text[end] in "_.+-"):
            end += 1
        _fail(f"malformed number {text[start:end]!r}", text, start)
    raw = text[start:i]
    number: int | float = float(raw) if is_float else int(raw)
    return _Token(_Tok.NUMBER, raw, start, number=number), i


def _read_word(text: str, start: int) -> tuple[_Token, int]:
    i = start
    n = len(text)
    while i < n and _is_key_char(text[i]):
        i += 1
    word = text[start:i]
    if "." not in word:
        if word.upper() in _KEYWORDS:
            return _Token(_Tok.KEYWORD, word, start, value=word.upper()), i
        return _Token(_Tok.IDENT, word, start, value=word), i
    prefix, key = word.split(".", 1)
    if not key:
        if i < n and text[i] in '`"':
            key, i = _read_quoted(text, i, "key")
            if not key:
                _fail(f"empty key after '{prefix}.'", text, start)
        else:
            _fail(f"expected a key after '{prefix}.'", text, i)
    return _Token(_Tok.IDENT, text[start:i], start, value=key, prefix=prefix), i


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        nxt = text[i + 1] if i + 1 < n else ""
        if ch in "(),":
            kind = {"(": _Tok.LPAREN, ")": _Tok.RPAREN, ",": _Tok.COMMA}[ch]
            tokens.append(_Token(kind, ch, i))
            i += 1
        elif ch in "=!<>":
            two = ch + nxt
            raw = two if two in _OPERATORS else ch
            if raw not in _OPERATORS:
                _fail("expected '=' after '!'", text, i + 1)
            tokens.append(_Token(_Tok.OP, raw, i, value=_OPERATORS[raw]))
            i += len(raw)
        elif ch in "'\"":
            value, end = _read_quoted(text, i, "string")
            tokens.append(_Token(_Tok.STRING, text[i:end], i, value=value))
            i = end
        elif ch == "`":
            value, end = _read_quoted(text, i, "key")
            if not value:
                _fail("empty key", text, i)
            tokens.append(_Token(_Tok.IDENT, text[i:end], i, value=value))
            i = end
        elif ch.isdigit() or (ch in "+-." and (nxt.isdigit() or nxt == ".")):
            token, i = _read_number(text, i)
            tokens.append(token)
        elif ch.isalpha() or ch == "_":
            token, i = _read_word(text, i)
            tokens.append(token)
        else:
            _fail(f"unexpected character {ch!r}", text, i)
    tokens.append(_Token(_Tok.EOF, "", n))
    return tokens


# -- parser -----------------------------------------------------------------------------------


def _subject(entity: Entity, key: str, verb: str) -> str:
    """The start of a message: 'metrics compare' or "attribute 'status' compares"."""
    if entity is Entity.ATTRIBUTE:
        return f"attribute '{key}' {verb}s"
    return f"{_ENTITY_LABELS[entity]} {verb}"


def _ops_text(ops: frozenset[Op]) -> str:
    names = [op.value for op in Op if op in ops]
    return ", ".join(names[:-1]) + " and " + names[-1]


class _Parser:
    """Recursive descent over the token list; every error points at a token's column."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0
        self.depth = 0
        self.comparisons = 0

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def advance(self) -> _Token:
        token = self.tokens[self.pos]
        if token.kind is not _Tok.EOF:
            self.pos += 1
        return token

    def fail(self, message: str, token: _Token) -> NoReturn:
        _fail(message, self.text, token.column)

    def at_keyword(self, *words: str) -> bool:
        token = self.peek()
        return token.kind is _Tok.KEYWORD and token.value in words

    # expressions ----------------------------------------------------------------------------

    def parse_filter(self) -> Expr:
        expr = self.parse_or()
        token = self.peek()
        if token.kind is _Tok.RPAREN:
            self.fail("unmatched ')'", token)
        if token.kind is not _Tok.EOF:
            self.fail(f"expected AND, OR or the end of the filter, got {token.describe()}", token)
        return expr

    def parse_or(self) -> Expr:
        operands = [self.parse_and()]
        while self.at_keyword("OR"):
            self.advance()
            operands.append(self.parse_and())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def parse_and(self) -> Expr:
        operands = [self.parse_unary()]
        while self.at_keyword("AND"):
            self.advance()
            operands.append(self.parse_unary())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def parse_unary(self) -> Expr:
        token = self.peek()
        if token.kind is _Tok.KEYWORD and token.value == "NOT":
            self.enter(token)
            self.advance()
            operand = self.parse_unary()
            self.depth -= 1
            return Not(operand)
        if token.kind is _Tok.LPAREN:
            self.enter(token)
            self.advance()
            inner = self.parse_or()
            closing = self.peek()
            if closing.kind is not _Tok.RPAREN:
                self.fail(
                    f"expected ')' to close the '(' at column {token.column + 1}, "
                    f"got {closing.describe()}",
                    closing,
                )
            self.advance()
            self.depth -= 1
            return inner
        return self.parse_comparison()

    def enter(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            self.fail(f"the filter nests deeper than {MAX_NESTING} levels", token)

    # comparisons ----------------------------------------------------------------------------

    def parse_comparison(self) -> Comparison:
        ident = self.advance()
        if ident.kind is not _Tok.IDENT:
            self.fail(
                f"expected a comparison such as metrics.acc > 0.9, got {ident.describe()}", ident
            )
        self.comparisons += 1
        if self.comparisons > MAX_COMPARISONS:
            self.fail(
                f"the filter has more than {MAX_COMPARISONS} comparisons; use IN lists", ident
            )
        entity, key, rule = self.resolve(ident)
        op_token = self.peek()
        op = self.parse_operator(ident)
        if op not in rule.ops:
            subject = _subject(entity, key, "support")
            self.fail(f"{subject} {_ops_text(rule.ops)}, not {op.value}", op_token)
        value: Value
        if op in _NULL_OPS:
            value = None
        elif op in (Op.IN, Op.NOT_IN):
            value = tuple(self.convert(tok, entity, key, rule) for tok in self.parse_list(op))
        else:
            token = self.advance()
            if token.kind not in (_Tok.STRING, _Tok.NUMBER):
                self.fail(f"expected a value after {op.value}, got {token.describe()}", token)
            value = self.convert(token, entity, key, rule)
        return Comparison(entity, key, op, value)

    def resolve(self, ident: _Token) -> tuple[Entity, str, _Rule]:
        """The entity, canonical key and rule an identifier names."""
        if ident.prefix is not None:
            entity = _ENTITY_PREFIXES.get(ident.prefix.lower())
            if entity is None:
                self.fail(
                    f"unknown entity '{ident.prefix}'; use metrics., params., tags. or attributes.",
                    ident,
                )
        else:
            entity = Entity.ATTRIBUTE
        if entity is not Entity.ATTRIBUTE:
            return entity, ident.value, _ENTITY_RULES[entity]
        name = ident.value.lower()
        name = _ATTRIBUTE_ALIASES.get(name, name)
        rule = _ATTRIBUTE_RULES.get(name)
        if rule is None:
            valid = ", ".join(sorted(_ATTRIBUTE_RULES))
            hint = (
                "; metrics, params and tags need a prefix such as metrics."
                if ident.prefix is None
                else ""
            )
            self.fail(
                f"unknown attribute '{ident.value}'; valid attributes are {valid}{hint}", ident
            )
        return entity, name, rule

    def parse_operator(self, ident: _Token) -> Op:
        token = self.advance()
        if token.kind is _Tok.OP:
            return Op(token.value)
        if token.kind is _Tok.KEYWORD:
            if token.value == "IS":
                negate = self.at_keyword("NOT")
                if negate:
                    self.advance()
                null = self.advance()
                if not (null.kind is _Tok.KEYWORD and null.value == "NULL"):
                    after = "IS NOT" if negate else "IS"
                    self.fail(f"expected NULL after {after}, got {null.describe()}", null)
                return Op.IS_NOT_NULL if negate else Op.IS_NULL
            if token.value == "NOT":
                word = self.advance()
                if word.kind is _Tok.KEYWORD and word.value in ("LIKE", "ILIKE", "IN"):
                    return Op(f"NOT {word.value}")
                self.fail(f"expected LIKE, ILIKE or IN after NOT, got {word.describe()}", word)
            if token.value in ("LIKE", "ILIKE", "IN"):
                return Op(token.value)
        self.fail(
            f"expected a comparison operator after {ident.text!r}, got {token.describe()}", token
        )

    def parse_list(self, op: Op) -> list[_Token]:
        opening = self.advance()
        if opening.kind is not _Tok.LPAREN:
            self.fail(f"expected '(' and a list of values after {op.value}", opening)
        items: list[_Token] = []
        while True:
            token = self.advance()
            if token.kind not in (_Tok.STRING, _Tok.NUMBER):
                self.fail(f"expected a value in the {op.value} list, got {token.describe()}", token)
            items.append(token)
            if len(items) > MAX_IN_ITEMS:
                self.fail(f"an {op.value} list holds at most {MAX_IN_ITEMS} values", token)
            sep = self.advance()
            if sep.kind is _Tok.RPAREN:
                return items
            if sep.kind is not _Tok.COMMA:
                self.fail(f"expected ',' or ')' in the {op.value} list, got {sep.describe()}", sep)

    def convert(self, token: _Token, entity: Entity, key: str, rule: _Rule) -> Scalar:
        """Check a value token against what the key compares with, and decode it."""
        label = _subject(entity, key, "compare")
        kind = rule.kind
        if kind is _Kind.NUMBER:
            if token.kind is not _Tok.NUMBER:
                self.fail(f"{label} with numbers, got {token.text}", token)
            if entity is Entity.METRIC:
                return float(token.number)
            if isinstance(token.number, int) and abs(token.number) > _INT64_MAX:
                self.fail(f"number {token.text} is out of range", token)
            return token.number
        if kind is _Kind.INTEGER:
            text = token.value if token.kind is _Tok.STRING else token.text
            if token.kind is _Tok.NUMBER and isinstance(token.number, int):
                number = token.number
            elif token.kind is _Tok.STRING and text.isascii() and text.isdigit():
                number = int(text)
            else:
                self.fail(f"{label} with integer ids, got {token.text}", token)
            if abs(number) > _INT64_MAX:
                self.fail(f"number {token.text} is out of range", token)
            return number
        if token.kind is not _Tok.STRING:
            self.fail(
                f"{label} with quoted strings, got {token.text}; write '{token.text}'",
                token,
            )
        if kind is _Kind.STATUS:
            status = token.value.upper()
            if status not in RunStatus.__members__:
                valid = ", ".join(s.value for s in RunStatus)
                self.fail(f"unknown run status {token.text}; valid statuses are {valid}", token)
            return status
        if kind is _Kind.LIFECYCLE:
            lifecycle = token.value.lower()
            if lifecycle not in {x.value for x in Lifecycle}:
                valid = ", ".join(x.value for x in Lifecycle)
                self.fail(f"unknown lifecycle {token.text}; valid values are {valid}", token)
            return lifecycle
        return token.value

    # order by -------------------------------------------------------------------------------

    def parse_order_key(self) -> OrderKey:
        ident = self.advance()
        if ident.kind is not _Tok.IDENT:
            self.fail(
                f"expected a key such as metrics.acc or start_time, got {ident.describe()}", ident
            )
        entity, key, _ = self.resolve(ident)
        ascending = True
        direction = self.peek()
        if (
            direction.kind is _Tok.IDENT
            and direction.prefix is None
            and direction.text.upper() in ("ASC", "DESC")
        ):
            ascending = direction.text.upper() == "ASC"
            self.advance()
            direction = self.peek()
        if direction.kind is not _Tok.EOF:
            self.fail(
                f"expected ASC, DESC or the end of the clause, got {direction.describe()}",
                direction,
            )
        return OrderKey(entity, key, ascending)


def parse_filter(text: str) -> Expr | None:
    """Parse a search filter into an AST; None for an empty or blank filter."""
    if not isinstance(text, str):
        raise SearchSyntaxError(f"a filter must be a string, got {type(text).__name__}")
    if len(text) > MAX_FILTER_LENGTH:
        raise SearchSyntaxError(
            f"the filter is {len(text):,} characters long; the limit is {MAX_FILTER_LENGTH:,}",
            column=MAX_FILTER_LENGTH,
        )
    if not text.strip():
        return None
    return _Parser(text).parse_filter()


def parse_order_by(clauses: Sequence[str]) -> list[OrderKey]:
    """Parse order-by clauses such as ``metrics.acc DESC`` or ``start_time``."""
    if isinstance(clauses, str):
        clauses = [clauses]
    if len(clauses) > MAX_ORDER_KEYS:
        raise SearchSyntaxError(
            f"{len(clauses)} order-by keys given; the limit is {MAX_ORDER_KEYS}"
        )
    keys: list[OrderKey] = []
    for clause in clauses:
        if not isinstance(clause, str):
            raise SearchSyntaxError(
                f"an order-by clause must be a string, got {type(clause).__name__}"
            )
        if len(clause) > MAX_FILTER_LENGTH:
            raise SearchSyntaxError(
                f"an order-by clause is longer than {MAX_FILTER_LENGTH:,} characters",
                column=MAX_FILTER_LENGTH,
            )
        keys.append(_Parser(clause).parse_order_key())
    return keys
