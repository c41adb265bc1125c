"""Run search: filter and order-by ASTs compiled to one parameterised SQL query, and page tokens.

Every comparison on a metric, param or tag becomes a correlated
``EXISTS (SELECT 1 FROM <table> WHERE run_id = runs.id AND key = :k AND value <op> :v)``
(``NOT EXISTS`` for ``IS NULL``), so each one is plainly true or false and AND, OR and NOT
compose without SQL's three-valued surprises; comparisons on nullable attributes are guarded
the same way. Every user value is a bound parameter. The query is portable between SQLite and
PostgreSQL: ``LIKE`` is case-sensitive on both (the SQLite store sets
``PRAGMA case_sensitive_like=ON``) and ``ILIKE`` compiles to ``lower(col) LIKE lower(:v)``; both
use ``\\`` as the escape character.

MLflow's semantics are kept: ``params.x != 'a'`` matches runs that have param ``x`` with another
value. NaN metrics are stored as NULL, so numeric comparisons never match them, ``IS NOT NULL``
does (the metric is present) and in ordering they sort with the runs that lack the metric: last.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    FromClause,
    Select,
    Table,
    and_,
    case,
    func,
    literal_column,
    not_,
    or_,
    select,
)
from sqlalchemy.sql.elements import UnaryExpression

from mloop.errors import InvalidInput, InvalidPageToken
from mloop.store.base import ViewType
from mloop.store.filters import (
    And,
    Comparison,
    Entity,
    Expr,
    Op,
    Or,
    OrderKey,
    parse_filter,
    parse_order_by,
)
from mloop.store.schema import latest_metrics, params, runs, tags

__all__ = [
    "build_search_select",
    "compile_filter",
    "decode_page_token",
    "encode_page_token",
    "query_fingerprint",
]

#: LIKE's escape character on every backend (PostgreSQL's default; SQLite has none).
LIKE_ESCAPE = "\\"
#: Longest page token accepted, in characters.
MAX_PAGE_TOKEN_LENGTH = 512
#: Largest offset a page token may carry.
MAX_OFFSET = 2**53

_ENTITY_TABLES: dict[Entity, Table] = {
    Entity.METRIC: latest_metrics,
    Entity.PARAM: params,
    Entity.TAG: tags,
}

_ATTRIBUTE_COLUMNS: dict[str, Column[Any]] = {
    "run_id": runs.c.id,
    "run_name": runs.c.name,
    "status": runs.c.status,
    "user": runs.c.user,
    "experiment_id": runs.c.experiment_id,
    "parent_run_id": runs.c.parent_id,
    "start_time": runs.c.start_time,
    "end_time": runs.c.end_time,
    "lifecycle": runs.c.lifecycle,
}

_NULLABLE_ATTRIBUTES = frozenset(
    name for name, column in _ATTRIBUTE_COLUMNS.items() if column.nullable
)


# -- filters ----------------------------------------------------------------------------------


def _value_condition(column: ColumnElement[Any], op: Op, value: Any) -> ColumnElement[bool]:
    """``column <op> value`` for every operator but IS [NOT] NULL."""
    condition: ColumnElement[bool]
    match op:
        case Op.EQ:
            condition = column == value
        case Op.NE:
            condition = column != value
        case Op.GT:
            condition = column > value
        case Op.GE:
            condition = column >= value
        case Op.LT:
            condition = column < value
        case Op.LE:
            condition = column <= value
        case Op.LIKE:
            condition = column.like(value, escape=LIKE_ESCAPE)
        case Op.NOT_LIKE:
            condition = column.not_like(value, escape=LIKE_ESCAPE)
        case Op.ILIKE:
            condition = func.lower(column).like(func.lower(value), escape=LIKE_ESCAPE)
        case Op.NOT_ILIKE:
            condition = func.lower(column).not_like(func.lower(value), escape=LIKE_ESCAPE)
        case Op.IN:
            condition = column.in_(list(value))
        case Op.NOT_IN:
            condition = column.not_in(list(value))
        case _:  # pragma: no cover - IS [NOT] NULL never reaches here
            raise AssertionError(f"no value condition for operator {op}")
    return condition


def _compile_comparison(comparison: Comparison) -> ColumnElement[bool]:
    op, value = comparison.op, comparison.value
    if comparison.entity is Entity.ATTRIBUTE:
        column = _ATTRIBUTE_COLUMNS[comparison.key]
        if op is Op.IS_NULL:
            return column.is_(None)
        if op is Op.IS_NOT_NULL:
            return column.is_not(None)
        condition = _value_condition(column, op, value)
        if comparison.key in _NULLABLE_ATTRIBUTES:
            # Keep the result two-valued so that NOT (end_time > 5) matches unfinished runs.
            condition = and_(column.is_not(None), condition)
        return condition
    table = _ENTITY_TABLES[comparison.entity]
    subquery: Select[Any] = select(literal_column("1")).where(
        table.c.run_id == runs.c.id, table.c.key == comparison.key
    )
    if op is Op.IS_NULL:
        return ~subquery.correlate(runs).exists()
    if op is not Op.IS_NOT_NULL:
        subquery = subquery.where(_value_condition(table.c.value, op, value))
    return subquery.correlate(runs).exists()


def compile_filter(expr: Expr) -> ColumnElement[bool]:
    """Compile a parsed filter to a boolean SQL expression over ``runs``."""
    if isinstance(expr, Comparison):
        return _compile_comparison(expr)
    if isinstance(expr, And):
        return and_(*(compile_filter(operand) for operand in expr.operands))
    if isinstance(expr, Or):
        return or_(*(compile_filter(operand) for operand in expr.operands))
    return not_(compile_filter(expr.operand))


# -- the query --------------------------------------------------------------------------------


def _present_keys(expr: Expr | None) -> set[tuple[Entity, str]]:
    """The metric/param/tag keys every run matching ``expr`` has, with a non-null value."""
    if expr is None:
        return set()
    if isinstance(expr, Comparison):
        # IS NOT NULL also matches a NaN metric (stored as NULL); IS NULL means absent.
        if expr.entity is Entity.ATTRIBUTE or expr.op in (Op.IS_NULL, Op.IS_NOT_NULL):
            return set()
        return {(expr.entity, expr.key)}
    if isinstance(expr, And):
        return set().union(*(_present_keys(operand) for operand in expr.operands))
    if isinstance(expr, Or):
        return set.intersection(*(_present_keys(operand) for operand in expr.operands))
    return set()  # NOT: nothing is known to be present


def _order_by(
    keys: Sequence[OrderKey], present: set[tuple[Entity, str]]
) -> tuple[FromClause, list[ColumnElement[Any]]]:
    """The FROM clause (runs plus one join per metric/param/tag key) and ORDER BY terms.

    A key the filter already requires is INNER JOINed and needs no "missing last" term, which
    lets the database walk the (key, value) index in order instead of sorting every run.
    """
    source: FromClause = runs
    terms: list[ColumnElement[Any]] = []
    for index, key in enumerate(keys):
        if key.entity is Entity.ATTRIBUTE:
            column = _ATTRIBUTE_COLUMNS[key.key]
            nullable = key.key in _NULLABLE_ATTRIBUTES
        else:
            alias = _ENTITY_TABLES[key.entity].alias(f"order_{index}")
            on = and_(alias.c.run_id == runs.c.id, alias.c.key == key.key)
            nullable = (key.entity, key.key) not in present
            source = source.outerjoin(alias, on) if nullable else source.join(alias, on)
            column = alias.c.value
        if nullable:
            # NULLS LAST is not portable; sort on "is missing" first instead.
            terms.append(case((column.is_(None), literal_column("1")), else_=literal_column("0")))
        direction: UnaryExpression[Any] = column.asc() if key.ascending else column.desc()
        terms.append(direction)
    terms += [runs.c.start_time.desc(), runs.c.id.asc()]
    return source, terms


def build_search_select(
    *,
    experiment_ids: Sequence[int] | None,
    filter_string: str,
    order_by: Sequence[str],
    view: ViewType,
    offset: int,
    limit: int,
) -> Select[Any]:
    """The SELECT of matching ``runs.id``s, fully ordered, for one page. Raises
    SearchSyntaxError, InvalidInput (negative offset or limit)."""
    if offset < 0 or limit < 0:
        raise InvalidInput(f"offset and limit must be >= 0, got offset={offset}, limit={limit}")
    expr = parse_filter(filter_string)
    source, order_terms = _order_by(parse_order_by(order_by), _present_keys(expr))
    conditions: list[ColumnElement[bool]] = []
    if experiment_ids is not None:
        conditions.append(runs.c.experiment_id.in_([int(i) for i in experiment_ids]))
    view = ViewType(view)
    if view is not ViewType.ALL:
        conditions.append(runs.c.lifecycle == view.value)
    if expr is not None:
        conditions.append(compile_filter(expr))
    return (
        select(runs.c.id)
        .select_from(source)
        .where(*conditions)
        .order_by(*order_terms)
        .offset(offset)
        .limit(limit)
    )


# -- page tokens ------------------------------------------------------------------------------


def query_fingerprint(
    experiment_ids: Sequence[int] | None,
    filter_string: str,
    order_by: Sequence[str],
    view: ViewType,
) -> str:
    """The sha256 (hex) of the canonical query, so a page token fits only the query it came from."""
    canonical: dict[str, Any] = {
        "experiment_ids": None
        if experiment_ids is None
        else sorted({int(i) for i in experiment_ids}),
        "filter": filter_string.strip(),
        "order_by": [clause.strip() for clause in order_by],
        "view": ViewType(view).value,
    }
    blob = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(blob.encode("ascii")).hexdigest()


def encode_page_token(offset: int, fingerprint: str) -> str:
    """A URL-safe token for the page starting at ``offset`` of the query with ``fingerprint``."""
    payload = json.dumps({"offset": offset, "fingerprint": fingerprint}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode("ascii")).rstrip(b"=").decode("ascii")


def decode_page_token(token: str, fingerprint: str) -> int:
    """The offset a token carries. Raises InvalidPageToken if it is malformed, tampered with, or
    was issued for another query."""
    malformed = InvalidPageToken(
        "the page token is malformed; pass the next_token of the previous page unchanged"
    )
    if not isinstance(token, str) or not token or len(token) > MAX_PAGE_TOKEN_LENGTH:
        raise malformed
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
        data: object = json.loads(raw.decode("ascii"))
    except ValueError:  # binascii.Error, UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise malformed from None
    if not isinstance(data, dict) or set(data) != {"offset", "fingerprint"}:
        raise malformed
    offset, token_fingerprint = data["offset"], data["fingerprint"]
    if (
        not isinstance(offset, int)
        or isinstance(offset, bool)
        or not 0 <= offset <= MAX_OFFSET
        or not isinstance(token_fingerprint, str)
    ):
        raise malformed
    if token_fingerprint != fingerprint:
        raise InvalidPageToken(
            "the page token belongs to another query (its filter, order, experiments or view "
            "differ); search again without a token"
        )
    return offset
