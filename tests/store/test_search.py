"""Run search: the filter and order-by parsers, the SQL they compile to, and page tokens.

The result checks run against SQLite and, when ``MLOOP_TEST_POSTGRES_URI`` is set, against
PostgreSQL in a database created for this module and dropped afterwards. Rows are inserted with
Core statements so that these tests do not depend on the store built on top of them.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, insert, text
from sqlalchemy.engine import make_url

from mloop.errors import InvalidInput, InvalidPageToken, SearchSyntaxError
from mloop.store import schema
from mloop.store.base import ViewType
from mloop.store.filters import (
    MAX_COMPARISONS,
    MAX_FILTER_LENGTH,
    MAX_IN_ITEMS,
    MAX_NESTING,
    MAX_ORDER_KEYS,
    And,
    Comparison,
    Entity,
    Not,
    Op,
    Or,
    OrderKey,
    parse_filter,
    parse_order_by,
)
from mloop.store.search import (
    build_search_select,
    decode_page_token,
    encode_page_token,
    query_fingerprint,
)

# -- the data -----------------------------------------------------------------------------------
#
# id  exp name       status    lifecycle user  start end   parent
# r1  1   alpha      FINISHED  active    ann   1000  2000  -
# r2  1   beta       FINISHED  active    bob   2000  3000  r1
# r3  1   gamma      FAILED    active    ann   3000  -     -
# r4  2   delta      RUNNING   active    carl  3000  -     -
# r5  2   epsilon_1  KILLED    deleted   ann   500   600   -
# r6  2   epsilon-2  FINISHED  active    bob   3000  4000  r1
#
# The default order (start_time DESC, id ASC) of the active runs is r3 r4 r6 r2 r1.

RUNS = [
    ("r1", 1, "alpha", "FINISHED", "active", "ann", 1000, 2000, None),
    ("r2", 1, "beta", "FINISHED", "active", "bob", 2000, 3000, "r1"),
    ("r3", 1, "gamma", "FAILED", "active", "ann", 3000, None, None),
    ("r4", 2, "delta", "RUNNING", "active", "carl", 3000, None, None),
    ("r5", 2, "epsilon_1", "KILLED", "deleted", "ann", 500, 600, None),
    ("r6", 2, "epsilon-2", "FINISHED", "active", "bob", 3000, 4000, "r1"),
]
PARAMS = [
    ("r1", "lr", "0.01"),
    ("r1", "model", "ResNet"),
    ("r2", "lr", "0.1"),
    ("r2", "model", "resnet"),
    ("r3", "lr", "0.001"),
    ("r3", "my.param", "x"),
    ("r4", "model", "ResNet50"),
    ("r5", "lr", "0.01"),
]
TAGS = [
    ("r1", "team", "Vision"),
    ("r1", "mloop.source.git_commit", "abc123"),
    ("r1", "note", "it's"),
    ("r1", "rank", "b"),
    ("r2", "team", "vision"),
    ("r2", "rank", "a"),
    ("r3", "team", "audio"),
    ("r4", "path", "axb"),
    ("r4", "rank", "c"),
    ("r6", "path", "a_b"),
]
METRICS: list[tuple[str, str, float | None]] = [  # None is NaN
    ("r1", "acc", 0.9),
    ("r1", "loss", 0.3),
    ("r1", "val loss", 0.5),
    ("r1", "system/cpu_percent", 50.0),
    ("r2", "acc", 0.8),
    ("r2", "loss", None),
    ("r3", "acc", 0.95),
    ("r4", "loss", 0.1),
    ("r5", "acc", 0.7),
]
ACTIVE = ["r3", "r4", "r6", "r2", "r1"]


def _populate(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(schema.experiments),
            [
                {
                    "id": i,
                    "name": f"exp-{i}",
                    "lifecycle": "active",
                    "created_at": 0,
                    "updated_at": 0,
                }
                for i in (1, 2)
            ],
        )
        for run in RUNS:  # one at a time: r2 and r6 refer to r1
            run_id, exp, name, status, lifecycle, user, start, end, parent = run
            conn.execute(
                insert(schema.runs).values(
                    id=run_id,
                    experiment_id=exp,
                    name=name,
                    status=status,
                    lifecycle=lifecycle,
                    user=user,
                    start_time=start,
                    end_time=end,
                    parent_id=parent,
                    heartbeat_at=start,
                    host="h",
                    pid=1,
                    pid_started_at=0,
                )
            )
        conn.execute(
            insert(schema.params), [{"run_id": r, "key": k, "value": v} for r, k, v in PARAMS]
        )
        conn.execute(insert(schema.tags), [{"run_id": r, "key": k, "value": v} for r, k, v in TAGS])
        conn.execute(
            insert(schema.latest_metrics),
            [
                {"run_id": r, "key": k, "value": v, "is_nan": v is None, "step": 0, "timestamp": 0}
                for r, k, v in METRICS
            ],
        )


def _sqlite_engine(path: str) -> Engine:
    engine = create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _case_sensitive_like(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA case_sensitive_like=ON")
        cursor.close()

    return engine


@pytest.fixture(scope="module")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A SQLite database with the schema and the rows above."""
    engine = _sqlite_engine(str(tmp_path_factory.mktemp("search") / "search.db"))
    schema.metadata.create_all(engine)
    _populate(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def postgres_engine() -> Iterator[Engine]:
    """A fresh PostgreSQL database with the schema and the rows above; dropped afterwards."""
    uri = os.environ.get("MLOOP_TEST_POSTGRES_URI")
    if not uri:
        pytest.skip("MLOOP_TEST_POSTGRES_URI is not set")
    name = f"mloop_search_{uuid.uuid4().hex[:12]}"
    admin = create_engine(uri, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(make_url(uri).set(database=name))
    try:
        schema.metadata.create_all(engine)
        _populate(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest) -> Engine:
    """Each backend in turn."""
    engine: Engine = request.getfixturevalue(f"{request.param}_engine")
    return engine


def search(
    engine: Engine,
    filter_string: str = "",
    order_by: Sequence[str] = (),
    *,
    view: ViewType = ViewType.ACTIVE,
    experiment_ids: Sequence[int] | None = None,
    offset: int = 0,
    limit: int = 100,
) -> list[str]:
    stmt = build_search_select(
        experiment_ids=experiment_ids,
        filter_string=filter_string,
        order_by=order_by,
        view=view,
        offset=offset,
        limit=limit,
    )
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(stmt)]


# -- results, per entity and operator -----------------------------------------------------------

METRIC_CASES = [
    ("metrics.acc > 0.85", ["r3", "r1"]),
    ("metrics.acc >= 0.9", ["r3", "r1"]),
    ("metrics.acc < 0.9", ["r2"]),
    ("metrics.acc <= 0.8", ["r2"]),
    ("metrics.acc = 0.8", ["r2"]),
    ("metrics.acc == 0.8", ["r2"]),
    ("metrics.acc != 0.8", ["r3", "r1"]),
    ("metric.acc > 9.1e-1", ["r3"]),
    ("metrics.acc > -1", ["r3", "r2", "r1"]),
    ("metrics.system/cpu_percent >= 50", ["r1"]),
    ("metrics.`val loss` = 0.5", ["r1"]),
    ('metrics."val loss" < 1', ["r1"]),
    ("metrics.missing > 0", []),
    # r2's loss is NaN: present, but no numeric comparison matches it.
    ("metrics.loss < 1", ["r4", "r1"]),
    ("metrics.loss != 0.1", ["r1"]),
    ("metrics.loss > -1e308", ["r4", "r1"]),
    ("metrics.loss IS NULL", ["r3", "r6"]),
    ("metrics.loss IS NOT NULL", ["r4", "r2", "r1"]),
]

PARAM_CASES = [
    ("params.lr = '0.01'", ["r1"]),
    ('param.lr = "0.01"', ["r1"]),
    # MLflow semantics: != matches runs that have the param with another value.
    ("params.lr != '0.01'", ["r3", "r2"]),
    ("params.model LIKE 'Res%'", ["r4", "r1"]),
    ("params.model like 'res%'", ["r2"]),
    ("params.model ILIKE 'res%'", ["r4", "r2", "r1"]),
    ("params.model NOT LIKE 'Res%'", ["r2"]),
    ("params.model NOT ILIKE 'resnet'", ["r4"]),
    ("params.model LIKE 'ResNet__'", ["r4"]),
    ("params.lr IN ('0.1', '0.001')", ["r3", "r2"]),
    ("params.lr NOT IN ('0.1')", ["r3", "r1"]),
    ("params.lr IS NULL", ["r4", "r6"]),
    ("params.lr IS NOT NULL", ["r3", "r2", "r1"]),
    ("params.`my.param` = 'x'", ["r3"]),
    ("params.\"my.param\" = 'x'", ["r3"]),
    ("params.missing = 'x'", []),
    ("params.missing != 'x'", []),
]

TAG_CASES = [
    ("tags.team = 'vision'", ["r2"]),
    ("tags.team != 'audio'", ["r2", "r1"]),
    ("tags.team LIKE 'V%'", ["r1"]),
    ("tags.team ILIKE 'VISION'", ["r2", "r1"]),
    ("tags.team NOT ILIKE 'v%'", ["r3"]),
    ("tag.team IN ('audio', 'vision')", ["r3", "r2"]),
    ("tags.team NOT IN ('audio', 'vision')", ["r1"]),
    ("tags.team IS NULL", ["r4", "r6"]),
    ("tags.team IS NOT NULL", ["r3", "r2", "r1"]),
    ("tags.mloop.source.git_commit = 'abc123'", ["r1"]),
    ("tags.note = 'it''s'", ["r1"]),
    ("tags.note = 'it\\'s'", ["r1"]),
    ('tags.note = "it\'s"', ["r1"]),
    # The backslash escapes LIKE's wildcards on both backends.
    ("tags.path LIKE 'a_b'", ["r4", "r6"]),
    ("tags.path LIKE 'a\\_b'", ["r6"]),
]

ATTRIBUTE_CASES = [
    ("run_id = 'r2'", ["r2"]),
    ("attributes.id = 'r2'", ["r2"]),
    ("run_id != 'r1'", ["r3", "r4", "r6", "r2"]),
    ("run.run_id IN ('r1', 'r2')", ["r2", "r1"]),
    ("id NOT IN ('r1', 'r2')", ["r3", "r4", "r6"]),
    ("run_name = 'alpha'", ["r1"]),
    ("attribute.name LIKE 'epsilon%'", ["r6"]),
    ("name LIKE 'ALPHA'", []),
    ("name ILIKE 'ALPHA'", ["r1"]),
    ("name NOT LIKE '%a'", ["r6"]),
    ("run_name IN ('beta', 'delta')", ["r4", "r2"]),
    ("status = 'FINISHED'", ["r6", "r2", "r1"]),
    ("status = 'finished'", ["r6", "r2", "r1"]),
    ("status != 'FINISHED'", ["r3", "r4"]),
    ("status IN ('FAILED', 'RUNNING')", ["r3", "r4"]),
    ("status NOT IN ('FINISHED', 'FAILED')", ["r4"]),
    ("user = 'ann'", ["r3", "r1"]),
    ("user LIKE 'b%'", ["r6", "r2"]),
    ("experiment_id = 2", ["r4", "r6"]),
    ("experiment_id = '2'", ["r4", "r6"]),
    ("experiment_id IN ('1')", ["r3", "r2", "r1"]),
    ("experiment_id NOT IN (1)", ["r4", "r6"]),
    ("experiment_id > 1", ["r4", "r6"]),
    ("parent_run_id = 'r1'", ["r6", "r2"]),
    ("parent_id IS NULL", ["r3", "r4", "r1"]),
    ("parent_run_id IS NOT NULL", ["r6", "r2"]),
    ("parent_run_id != 'r2'", ["r6", "r2"]),
    ("start_time >= 2000", ["r3", "r4", "r6", "r2"]),
    ("attr.start_time < 1500", ["r1"]),
    ("end_time > 2500", ["r6", "r2"]),
    ("end_time IS NULL", ["r3", "r4"]),
    ("end_time IS NOT NULL", ["r6", "r2", "r1"]),
    ("lifecycle = 'active'", ACTIVE),
    ("lifecycle = 'deleted'", []),
]

BOOLEAN_CASES = [
    # AND binds tighter than OR: acc > 0.85 OR (model = 'resnet' AND team = 'vision').
    (
        "metrics.acc > 0.85 OR params.model = 'resnet' AND tags.team = 'vision'",
        ["r3", "r2", "r1"],
    ),
    ("(metrics.acc > 0.85 OR params.model = 'resnet') AND tags.team = 'vision'", ["r2"]),
    ("metrics.acc > 0.85 and USER = 'ann' Or status = 'running'", ["r3", "r4", "r1"]),
    ("((((status = 'RUNNING'))))", ["r4"]),
    (
        "status = 'RUNNING' OR (user = 'ann' AND (metrics.acc < 0.92 OR end_time IS NULL))",
        ["r3", "r4", "r1"],
    ),
    # NOT of a param comparison includes runs without the param; != does not.
    ("NOT params.lr = '0.01'", ["r3", "r4", "r6", "r2"]),
    ("NOT (metrics.acc > 0.85 OR user = 'carl')", ["r6", "r2"]),
    ("not not status = 'RUNNING'", ["r4"]),
    ("NOT metrics.loss IS NULL", ["r4", "r2", "r1"]),
    # NaN: neither the comparison nor its negation matches inside, but NOT EXISTS does.
    ("NOT metrics.loss < 100", ["r3", "r6", "r2"]),
    # Comparisons on nullable attributes stay two-valued under NOT.
    ("NOT end_time > 2500", ["r3", "r4", "r1"]),
    ("NOT parent_run_id = 'r1'", ["r3", "r4", "r1"]),
    ("tags.team = 'vision' AND tags.team = 'audio'", []),
    ("tags.team = 'vision' OR tags.team = 'audio' OR tags.team = 'Vision'", ["r3", "r2", "r1"]),
]


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    METRIC_CASES + PARAM_CASES + TAG_CASES + ATTRIBUTE_CASES + BOOLEAN_CASES,
)
def test_filter(db: Engine, filter_string: str, expected: list[str]) -> None:
    assert search(db, filter_string) == expected


@pytest.mark.parametrize("blank", ["", "   ", "\n\t"])
def test_blank_filter_matches_every_run_in_the_view(db: Engine, blank: str) -> None:
    assert search(db, blank) == ACTIVE


def test_view(db: Engine) -> None:
    assert search(db, view=ViewType.ACTIVE) == ACTIVE
    assert search(db, view=ViewType.DELETED) == ["r5"]
    assert search(db, view=ViewType.ALL) == [*ACTIVE, "r5"]
    assert search(db, "name LIKE 'epsilon\\_%'", view=ViewType.ALL) == ["r5"]
    assert search(db, "lifecycle = 'deleted'", view=ViewType.ALL) == ["r5"]
    assert search(db, "params.lr = '0.01'", view=ViewType.ALL) == ["r1", "r5"]


def test_experiment_ids(db: Engine) -> None:
    assert search(db, experiment_ids=[2]) == ["r4", "r6"]
    assert search(db, experiment_ids=[1, 2]) == ACTIVE
    assert search(db, experiment_ids=[]) == []
    assert search(db, experiment_ids=[99]) == []
    assert search(db, "user = 'bob'", experiment_ids=[1]) == ["r2"]


def test_user_values_are_bound_parameters(db: Engine) -> None:
    hostile = "x' OR '1'='1"
    filter_string = f'params.lr = "{hostile}" OR tags.`{hostile}` = \'a\' OR name LIKE "{hostile}"'
    stmt = build_search_select(
        experiment_ids=None,
        filter_string=filter_string,
        order_by=[f"params.`{hostile}`"],
        view=ViewType.ACTIVE,
        offset=0,
        limit=10,
    )
    for url in ("sqlite://", "postgresql+psycopg://"):  # dialects only; nothing connects
        assert hostile not in str(stmt.compile(dialect=create_engine(url).dialect))
    assert search(db, filter_string) == []


# -- ordering and paging ------------------------------------------------------------------------

ORDER_CASES: list[tuple[list[str], list[str]]] = [
    ([], ACTIVE),
    (["start_time DESC"], ACTIVE),
    (["start_time"], ["r1", "r2", "r3", "r4", "r6"]),
    (["attributes.start_time ASC", "id DESC"], ["r1", "r2", "r6", "r4", "r3"]),
    # Runs lacking the key come last in both directions, in the tie-break order.
    (["metrics.acc DESC"], ["r3", "r1", "r2", "r4", "r6"]),
    (["metrics.acc ASC"], ["r2", "r1", "r3", "r4", "r6"]),
    (["metric.acc asc"], ["r2", "r1", "r3", "r4", "r6"]),
    # A NaN metric sorts with the missing ones.
    (["metrics.loss"], ["r4", "r1", "r3", "r6", "r2"]),
    (["metrics.loss DESC"], ["r1", "r4", "r3", "r6", "r2"]),
    (["params.lr DESC"], ["r2", "r1", "r3", "r4", "r6"]),
    (["params.lr"], ["r3", "r1", "r2", "r4", "r6"]),
    (["tags.rank"], ["r2", "r1", "r4", "r3", "r6"]),
    (["tags.rank DESC"], ["r4", "r1", "r2", "r3", "r6"]),
    (["end_time DESC"], ["r6", "r2", "r1", "r3", "r4"]),
    (["end_time"], ["r1", "r2", "r6", "r3", "r4"]),
    (["run_name"], ["r1", "r2", "r4", "r6", "r3"]),
    (["attribute.name DESC"], ["r3", "r6", "r4", "r2", "r1"]),
    (["status", "metrics.acc DESC"], ["r3", "r1", "r2", "r6", "r4"]),
    (["user DESC", "tags.rank"], ["r4", "r2", "r6", "r1", "r3"]),
    (["metrics.`val loss`", "params.`my.param` DESC"], ["r1", "r3", "r4", "r6", "r2"]),
]


@pytest.mark.parametrize(("order_by", "expected"), ORDER_CASES)
def test_order_by(db: Engine, order_by: list[str], expected: list[str]) -> None:
    assert search(db, order_by=order_by) == expected


def test_order_by_combines_with_filter(db: Engine) -> None:
    assert search(db, "metrics.acc > 0", ["metrics.acc"]) == ["r2", "r1", "r3"]
    assert search(db, "experiment_id = 2", ["metrics.loss DESC"], view=ViewType.ALL) == [
        "r4",
        "r6",
        "r5",
    ]


@pytest.mark.parametrize(
    ("filter_string", "order_by", "expected", "inner"),
    [
        # Every branch requires acc: an inner join, ordered without a "missing" term.
        ("metrics.acc > 0.85 or metrics.acc < 0.85", ["metrics.acc DESC"],
         ["r3", "r1", "r2"], True),
        ("params.lr != 'x' and params.lr LIKE '0.%'", ["params.lr"], ["r3", "r1", "r2"], True),
        # IS NOT NULL admits a NaN value, which must still sort last.
        ("metrics.loss IS NOT NULL", ["metrics.loss"], ["r4", "r1", "r2"], False),
        # One branch does not require acc: runs lacking it stay, last.
        ("metrics.acc > 0 or params.model LIKE 'Res%'", ["metrics.acc DESC"],
         ["r3", "r1", "r2", "r4"], False),
        ("not metrics.acc < 0.85", ["metrics.acc"], ["r1", "r3", "r4", "r6"], False),
    ],
)  # fmt: skip
def test_order_key_required_by_the_filter(
    db: Engine, filter_string: str, order_by: list[str], expected: list[str], inner: bool
) -> None:
    assert search(db, filter_string, order_by) == expected
    stmt = build_search_select(
        experiment_ids=None, filter_string=filter_string, order_by=order_by,
        view=ViewType.ACTIVE, offset=0, limit=10,
    )  # fmt: skip
    assert ("LEFT OUTER JOIN" not in str(stmt)) is inner


@pytest.mark.parametrize(
    "order_by", [[], ["metrics.acc DESC"], ["tags.rank"], ["end_time"], ["status", "params.lr"]]
)
@pytest.mark.parametrize("page_size", [1, 2, 4])
def test_paging_by_offset_covers_every_run_once(
    db: Engine, order_by: list[str], page_size: int
) -> None:
    full = search(db, order_by=order_by, view=ViewType.ALL)
    pages: list[str] = []
    offset = 0
    while True:
        page = search(db, order_by=order_by, view=ViewType.ALL, offset=offset, limit=page_size)
        pages += page
        if len(page) < page_size:
            break
        offset += page_size
    assert pages == full
    assert sorted(full) == ["r1", "r2", "r3", "r4", "r5", "r6"]


def test_limit_zero_and_offset_past_the_end(db: Engine) -> None:
    assert search(db, limit=0) == []
    assert search(db, offset=100) == []


@pytest.mark.parametrize(("offset", "limit"), [(-1, 10), (0, -1)])
def test_negative_offset_or_limit(offset: int, limit: int) -> None:
    with pytest.raises(InvalidInput):
        build_search_select(
            experiment_ids=None,
            filter_string="",
            order_by=(),
            view=ViewType.ALL,
            offset=offset,
            limit=limit,
        )


# -- limits run on the database -----------------------------------------------------------------


def test_largest_accepted_filters_run(db: Engine) -> None:
    many_or = " OR ".join(["run_id = 'r1'"] * MAX_COMPARISONS)
    assert search(db, many_or) == ["r1"]
    many_metrics = " OR ".join(["metrics.acc>0.9"] * MAX_COMPARISONS)
    assert len(many_metrics) <= MAX_FILTER_LENGTH
    assert search(db, many_metrics) == ["r3"]
    nested = "(" * MAX_NESTING + "status = 'RUNNING'" + ")" * MAX_NESTING
    assert search(db, nested) == ["r4"]
    nots = "NOT " * MAX_NESTING + "status = 'RUNNING'"
    assert search(db, nots) == ["r4"]
    ids = ", ".join(f"'r{i}'" for i in range(MAX_IN_ITEMS))
    assert search(db, f"run_id IN ({ids})") == ["r3", "r4", "r6", "r2", "r1"]
    keys = ["metrics.acc DESC"] * MAX_ORDER_KEYS
    assert search(db, order_by=keys) == ["r3", "r1", "r2", "r4", "r6"]


# -- the parser, without a database -------------------------------------------------------------


def cmp(entity: Entity, key: str, op: Op, value: Any) -> Comparison:
    return Comparison(entity, key, op, value)


def test_ast_precedence_and_grouping() -> None:
    a = cmp(Entity.METRIC, "a", Op.GT, 1.0)
    b = cmp(Entity.PARAM, "b", Op.EQ, "x")
    c = cmp(Entity.TAG, "c", Op.IS_NULL, None)
    assert parse_filter("metrics.a > 1 OR params.b = 'x' AND tags.c IS NULL") == Or(
        (a, And((b, c)))
    )
    assert parse_filter("(metrics.a > 1 OR params.b = 'x') AND tags.c IS NULL") == And(
        (Or((a, b)), c)
    )
    assert parse_filter("NOT metrics.a > 1 AND NOT (params.b = 'x')") == And((Not(a), Not(b)))
    assert parse_filter("metrics.a > 1 or params.b = 'x' or tags.c is null") == Or((a, b, c))


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("metrics.x > 3", cmp(Entity.METRIC, "x", Op.GT, 3.0)),
        ("metrics.x >= -1.5e-3", cmp(Entity.METRIC, "x", Op.GE, -0.0015)),
        ("metrics.x < .5", cmp(Entity.METRIC, "x", Op.LT, 0.5)),
        ("metrics.x<=2E3", cmp(Entity.METRIC, "x", Op.LE, 2000.0)),
        ("metrics.x <> 1", cmp(Entity.METRIC, "x", Op.NE, 1.0)),
        ("metrics.x is not null", cmp(Entity.METRIC, "x", Op.IS_NOT_NULL, None)),
        ("start_time > 10", cmp(Entity.ATTRIBUTE, "start_time", Op.GT, 10)),
        ("run.end_time < 1.5", cmp(Entity.ATTRIBUTE, "end_time", Op.LT, 1.5)),
        ("Params.a = 'x'", cmp(Entity.PARAM, "a", Op.EQ, "x")),
        ("params.a = 'it''s'", cmp(Entity.PARAM, "a", Op.EQ, "it's")),
        ('params.a = "say \\"hi\\""', cmp(Entity.PARAM, "a", Op.EQ, 'say "hi"')),
        ("params.a = 'back\\\\slash'", cmp(Entity.PARAM, "a", Op.EQ, "back\\slash")),
        ("params.a LIKE '50\\%'", cmp(Entity.PARAM, "a", Op.LIKE, "50\\%")),
        ("params.a not ilike 'x'", cmp(Entity.PARAM, "a", Op.NOT_ILIKE, "x")),
        ("params.a-b/c:d = 'x'", cmp(Entity.PARAM, "a-b/c:d", Op.EQ, "x")),
        ("tags.`a b` NOT IN ('x','y')", cmp(Entity.TAG, "a b", Op.NOT_IN, ("x", "y"))),
        ('tags."a ""q"" b" = \'x\'', cmp(Entity.TAG, 'a "q" b', Op.EQ, "x")),
        ("tags.and = 'x'", cmp(Entity.TAG, "and", Op.EQ, "x")),
        ("`run_name` = 'x'", cmp(Entity.ATTRIBUTE, "run_name", Op.EQ, "x")),
        ("NAME = 'x'", cmp(Entity.ATTRIBUTE, "run_name", Op.EQ, "x")),
        (
            "status in ('running', 'Killed')",
            cmp(Entity.ATTRIBUTE, "status", Op.IN, ("RUNNING", "KILLED")),
        ),
        ("experiment_id IN (1, '2')", cmp(Entity.ATTRIBUTE, "experiment_id", Op.IN, (1, 2))),
        ("lifecycle_stage = 'DELETED'", cmp(Entity.ATTRIBUTE, "lifecycle", Op.EQ, "deleted")),
    ],
)
def test_comparison_ast(filter_string: str, expected: Comparison) -> None:
    assert parse_filter(filter_string) == expected


def test_blank_filter_is_none() -> None:
    assert parse_filter("") is None
    assert parse_filter("  \t\n") is None


# (filter, column of the failure, part of the message)
MALFORMED = [
    ("metrics.acc", 11, "expected a comparison operator after 'metrics.acc'"),
    ("metrics.acc 0.9", 12, "expected a comparison operator after 'metrics.acc'"),
    ("metrics.acc > 'abc'", 14, "metrics compare with numbers, got 'abc'"),
    ("metricz.acc > 1", 0, "unknown entity 'metricz'; use metrics., params., tags. or attributes."),
    ("params.x = 'abc", 11, "unterminated string"),
    ('params.x = "abc', 11, "unterminated string"),
    ("params.x = 'abc\\'", 11, "unterminated string"),
    ("metrics.`val loss > 1", 8, "unterminated key"),
    ('metrics."" > 1', 0, "empty key"),
    ("metrics. > 1", 8, "expected a key after 'metrics.'"),
    ("(metrics.a > 1", 14, "expected ')' to close the '(' at column 1"),
    ("metrics.a > 1)", 13, "unmatched ')'"),
    ("metrics.a > 1 metrics.b > 2", 14, "expected AND, OR or the end of the filter"),
    ("metrics.a > 1 AND", 17, "expected a comparison"),
    ("AND metrics.a > 1", 0, "expected a comparison"),
    ("tags.t = 'a' OR OR tags.t = 'b'", 16, "expected a comparison"),
    ("metrics.a > 1 AND (params.b = 'x' OR)", 36, "expected a comparison"),
    ("NOT", 3, "expected a comparison"),
    ("()", 1, "expected a comparison"),
    ("'abc' = params.a", 0, "expected a comparison"),
    ("foo = 'x'", 0, "unknown attribute 'foo'; valid attributes are end_time, experiment_id"),
    ("attributes.foo = 'x'", 0, "unknown attribute 'foo'"),
    ("status = 'DONE'", 9, "unknown run status 'DONE'; valid statuses are RUNNING"),
    ("lifecycle = 'gone'", 12, "unknown lifecycle 'gone'"),
    ("params.lr = 0.01", 12, "params compare with quoted strings, got 0.01"),
    ("params.a IN ('x', 1)", 18, "params compare with quoted strings"),
    ("tags.t LIKE 5", 12, "tags compare with quoted strings"),
    ("metrics.acc LIKE '%'", 12, "metrics support =, !=, >, >=, <, <=, IS NULL and IS NOT NULL"),
    ("metrics.acc IN (1, 2)", 12, "metrics support"),
    ("run_id LIKE 'a%'", 7, "attribute 'run_id' supports =, !=, IN and NOT IN, not LIKE"),
    ("status IS NULL", 7, "attribute 'status' supports"),
    ("params.a > 'x'", 9, "params support"),
    ("metrics.acc IS 1", 15, "expected NULL after IS"),
    ("metrics.acc IS NOT 1", 19, "expected NULL after IS NOT"),
    ("params.a NOT = 'x'", 13, "expected LIKE, ILIKE or IN after NOT"),
    ("params.a IN 'x'", 12, "expected '(' and a list of values after IN"),
    ("params.a IN ('x' 'y')", 17, "expected ',' or ')' in the IN list"),
    ("params.a IN ()", 13, "expected a value in the IN list"),
    ("params.a IN ('x',)", 17, "expected a value in the IN list"),
    ("params.a = ", 11, "expected a value after ="),
    ("metrics.a >= > 1", 13, "expected a value after >="),
    ("params.a = b", 11, "expected a value after ="),
    ("metrics.a > 1.2.3", 12, "malformed number '1.2.3'"),
    ("metrics.a > 12abc", 12, "malformed number '12abc'"),
    ("metrics.a > 1e", 12, "the exponent has no digits"),
    ("metrics.a ! 1", 11, "expected '=' after '!'"),
    ("metrics.a > 1 # x", 14, "unexpected character '#'"),
    ("metrics.a > 1; DROP TABLE runs", 13, "unexpected character ';'"),
    ("experiment_id = 'abc'", 16, "attribute 'experiment_id' compares with integer ids"),
    ("experiment_id = 1.5", 16, "integer ids"),
    ("experiment_id = 99999999999999999999", 16, "out of range"),
    ("start_time > 'x'", 13, "attribute 'start_time' compares with numbers, got 'x'"),
]


@pytest.mark.parametrize(("filter_string", "column", "message"), MALFORMED)
def test_malformed_filter(filter_string: str, column: int, message: str) -> None:
    with pytest.raises(SearchSyntaxError) as info:
        parse_filter(filter_string)
    assert info.value.column == column
    assert message in info.value.message
    assert info.value.text == filter_string
    assert info.value.to_dict()["details"] == {"column": column + 1}
    # The message shows the filter with a caret under the failure.
    assert info.value.message.endswith("\n  " + filter_string + "\n  " + " " * column + "^")


def test_malformed_filter_through_build_search_select() -> None:
    with pytest.raises(SearchSyntaxError) as info:
        build_search_select(
            experiment_ids=None,
            filter_string="metrics.acc > 'abc'",
            order_by=(),
            view=ViewType.ACTIVE,
            offset=0,
            limit=10,
        )
    assert info.value.column == 14


def test_filter_length_limit() -> None:
    filler = "run_id = 'r1'"
    ok = filler + " " * (MAX_FILTER_LENGTH - len(filler))
    assert parse_filter(ok) == cmp(Entity.ATTRIBUTE, "run_id", Op.EQ, "r1")
    with pytest.raises(SearchSyntaxError, match="the limit is 10,000") as info:
        parse_filter(ok + " ")
    assert info.value.column == MAX_FILTER_LENGTH


def test_nesting_limit() -> None:
    deep = "(" * (MAX_NESTING + 1) + "status = 'RUNNING'" + ")" * (MAX_NESTING + 1)
    with pytest.raises(SearchSyntaxError, match="deeper than 50") as info:
        parse_filter(deep)
    assert info.value.column == MAX_NESTING
    with pytest.raises(SearchSyntaxError, match="deeper than 50"):
        parse_filter("NOT " * (MAX_NESTING + 1) + "status = 'RUNNING'")
    with pytest.raises(SearchSyntaxError, match="deeper than 50"):
        parse_filter("(NOT " * 26 + "status = 'RUNNING'" + ")" * 26)


def test_in_list_limit() -> None:
    items = ", ".join(f"'v{i}'" for i in range(MAX_IN_ITEMS + 1))
    with pytest.raises(SearchSyntaxError, match="at most 1000 values") as info:
        parse_filter(f"params.a IN ({items})")
    assert info.value.text[info.value.column :].startswith(f"'v{MAX_IN_ITEMS}'")


def test_comparison_count_limit() -> None:
    too_many = " OR ".join(["id = 'x'"] * (MAX_COMPARISONS + 1))
    with pytest.raises(SearchSyntaxError, match="more than 500 comparisons"):
        parse_filter(too_many)


# -- order-by parsing ---------------------------------------------------------------------------


def test_parse_order_by() -> None:
    assert parse_order_by(
        [
            "metrics.acc DESC",
            "params.lr",
            "tags.t ASC",
            "attributes.start_time",
            "start_time desc",
            "name",
            'metrics."val loss" Desc',
            "tags.mloop.source.git_commit",
        ]
    ) == [
        OrderKey(Entity.METRIC, "acc", ascending=False),
        OrderKey(Entity.PARAM, "lr", ascending=True),
        OrderKey(Entity.TAG, "t", ascending=True),
        OrderKey(Entity.ATTRIBUTE, "start_time", ascending=True),
        OrderKey(Entity.ATTRIBUTE, "start_time", ascending=False),
        OrderKey(Entity.ATTRIBUTE, "run_name", ascending=True),
        OrderKey(Entity.METRIC, "val loss", ascending=False),
        OrderKey(Entity.TAG, "mloop.source.git_commit", ascending=True),
    ]
    assert parse_order_by([]) == []


@pytest.mark.parametrize(
    ("clause", "column", "message"),
    [
        ("", 0, "expected a key"),
        ("metrics.acc DOWN", 12, "expected ASC, DESC or the end of the clause"),
        ("metrics.acc DESC ASC", 17, "expected ASC, DESC or the end"),
        ("metricz.acc", 0, "unknown entity 'metricz'"),
        ("foo DESC", 0, "unknown attribute 'foo'"),
        ("metrics.acc > 1", 12, "expected ASC, DESC"),
        ("'acc'", 0, "expected a key"),
    ],
)
def test_malformed_order_by(clause: str, column: int, message: str) -> None:
    with pytest.raises(SearchSyntaxError) as info:
        parse_order_by([clause])
    assert info.value.column == column
    assert message in info.value.message


def test_order_by_key_limit() -> None:
    assert len(parse_order_by(["start_time"] * MAX_ORDER_KEYS)) == MAX_ORDER_KEYS
    with pytest.raises(SearchSyntaxError, match="the limit is 10"):
        parse_order_by(["start_time"] * (MAX_ORDER_KEYS + 1))


# -- page tokens --------------------------------------------------------------------------------


def fingerprint(**changes: Any) -> str:
    query: dict[str, Any] = {
        "experiment_ids": [1, 2],
        "filter_string": "metrics.acc > 0.5",
        "order_by": ["metrics.acc DESC"],
        "view": ViewType.ACTIVE,
    }
    query.update(changes)
    return query_fingerprint(**query)


def test_page_token_round_trip() -> None:
    fp = fingerprint()
    for offset in (0, 1, 1000, 2**40):
        token = encode_page_token(offset, fp)
        assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        assert decode_page_token(token, fp) == offset


def test_fingerprint_is_canonical_and_covers_the_query() -> None:
    fp = fingerprint()
    assert len(fp) == 64
    assert fingerprint(experiment_ids=(2, 1, 2)) == fp
    assert fingerprint(filter_string="  metrics.acc > 0.5 ") == fp
    assert fingerprint(view="active") == fp
    others = {
        fingerprint(experiment_ids=[1]),
        fingerprint(experiment_ids=None),
        fingerprint(filter_string="metrics.acc > 0.6"),
        fingerprint(order_by=["metrics.acc"]),
        fingerprint(order_by=[]),
        fingerprint(view=ViewType.ALL),
    }
    assert fp not in others
    assert len(others) == 6


def test_page_token_from_another_query() -> None:
    token = encode_page_token(10, fingerprint())
    with pytest.raises(InvalidPageToken, match="another query"):
        decode_page_token(token, fingerprint(filter_string="metrics.acc > 0.6"))


def _token(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


class Json:
    """A page-token payload to encode in the test, with "FP" standing for the fingerprint."""

    def __init__(self, payload: Any) -> None:
        self.payload = payload

    def token(self, fp: str) -> str:
        payload = self.payload
        if isinstance(payload, dict):
            payload = {k: fp if v == "FP" else v for k, v in payload.items()}
        return _token(payload)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "!!!!",
        "not base64 at all",
        "\u00e9t\u00e9",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        "A" * 10_000,
        Json("just a string"),
        Json([10, "FP"]),
        Json({"offset": 10}),
        Json({"fingerprint": "FP"}),
        Json({"offset": -1, "fingerprint": "FP"}),
        Json({"offset": True, "fingerprint": "FP"}),
        Json({"offset": 1.5, "fingerprint": "FP"}),
        Json({"offset": "10", "fingerprint": "FP"}),
        Json({"offset": None, "fingerprint": "FP"}),
        Json({"offset": 2**60, "fingerprint": "FP"}),
        Json({"offset": 10, "fingerprint": 7}),
        Json({"offset": 10, "fingerprint": "FP", "extra": 1}),
    ],
)
def test_malformed_page_token(token: str | Json) -> None:
    fp = fingerprint()
    text_token = token.token(fp) if isinstance(token, Json) else token
    with pytest.raises(InvalidPageToken, match="malformed"):
        decode_page_token(text_token, fp)


def test_well_formed_payload_is_accepted() -> None:
    fp = fingerprint()
    assert decode_page_token(Json({"fingerprint": "FP", "offset": 7}).token(fp), fp) == 7


def test_tampered_page_token() -> None:
    fp = fingerprint()
    raw = json.loads(base64.urlsafe_b64decode(encode_page_token(5, fp) + "=="))
    raw["fingerprint"] = raw["fingerprint"][:-1] + ("0" if raw["fingerprint"][-1] != "0" else "1")
    with pytest.raises(InvalidPageToken):
        decode_page_token(_token(raw), fp)
    token = encode_page_token(5, fp)
    with pytest.raises(InvalidPageToken):
        decode_page_token(token[:-3], fp)
