"""Steps, pipelines and the graph: tracing, the checks made before a run, and graph queries."""

from __future__ import annotations

import inspect
import json
import math
import pickle
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mloop.errors import InvalidInput
from mloop.pipelines import (
    CodeDigest,
    Graph,
    Output,
    Pipeline,
    Ref,
    Step,
    StepCall,
    pipeline,
    step,
)


class Model:
    """Stands in for a fitted model."""


class Forest(Model):
    """A subclass: fits where a Model is expected."""


# -- steps used by several tests ---------------------------------------------------------------


@step
def load(window_days: int) -> pd.DataFrame:
    """Load the last ``window_days`` of rows."""
    return pd.DataFrame({"x": range(window_days)})


@step(retries=2, resources={"num_cpus": 2})
def train(df: pd.DataFrame, depth: int) -> Model:
    """Fit a model."""
    return Forest()


@step
def evaluate(model: Model, df: pd.DataFrame) -> float:
    return 0.5


@step
def split(df: pd.DataFrame, fraction: float = 0.8) -> tuple[pd.DataFrame, pd.DataFrame]:
    cut = int(len(df) * fraction)
    return df.iloc[:cut], df.iloc[cut:]


@step
def add(a: int, b: int) -> int:
    return a + b


@step
def one() -> int:
    return 1


@step
def to_array(df: pd.DataFrame) -> np.ndarray:
    return df.to_numpy()


@step
def combine(models: list[Model], weights: dict[str, float] | None = None) -> Model:
    return models[0]


@step
def anything(value):  # type: ignore[no-untyped-def]
    return value


@pipeline
def training(window_days: int = 30, depth: int = 6) -> None:
    df = load(window_days)
    model = train(df, depth)
    evaluate(model, df)


def ids(nodes: list[StepCall]) -> list[str]:
    return [n.id for n in nodes]


# -- shapes ------------------------------------------------------------------------------------


def test_linear_three_steps() -> None:
    @pipeline
    def chain() -> None:
        add(add(one(), 2), 3)

    g = chain.graph()
    assert ids(g.topological_order()) == ["one", "add", "add_2"]
    assert g["add"].args == {"a": Ref("one"), "b": 2}
    assert g["add_2"].args == {"a": Ref("add"), "b": 3}
    assert ids(g.roots) == ["one"] and ids(g.leaves) == ["add_2"]
    assert [[n.id for n in level] for level in g.levels()] == [["one"], ["add"], ["add_2"]]


def test_issue_example_shape() -> None:
    g = training.graph()
    assert isinstance(training, Pipeline) and training.name == "training"
    assert g.params == {"window_days": 30, "depth": 6}
    assert ids(g.nodes) == ["load", "train", "evaluate"]
    assert g["load"].args == {"window_days": 30}
    assert g["train"].args == {"df": Ref("load"), "depth": 6}
    assert g["evaluate"].args == {"model": Ref("train"), "df": Ref("load")}
    assert [(e.source, e.target, e.argument) for e in g.edges] == [
        ("load", "train", "df"),
        ("train", "evaluate", "model"),
        ("load", "evaluate", "df"),
    ]
    assert ids(g.upstream("evaluate")) == ["load", "train"]
    assert ids(g.downstream("load")) == ["train", "evaluate"]
    assert ids(g.upstream("evaluate", transitive=True)) == ["load", "train"]
    assert g["train"].options.retries == 2
    assert g["train"].options.resources == {"num_cpus": 2}


def test_params_override_defaults() -> None:
    g = training.graph(depth=8)
    assert g.params == {"window_days": 30, "depth": 8}
    assert g["train"].args["depth"] == 8
    assert g["load"].args == {"window_days": 30}


def test_diamond_and_levels() -> None:
    @pipeline
    def diamond(n: int = 1) -> None:
        top = add(n, 1)
        left = add(top, 2)
        right = add(top, 3)
        add(left, right)

    g = diamond.graph()
    assert ids(g.nodes) == ["add", "add_2", "add_3", "add_4"]
    assert [[n.id for n in level] for level in g.levels()] == [
        ["add"],
        ["add_2", "add_3"],
        ["add_4"],
    ]
    assert ids(g.upstream("add_4")) == ["add_2", "add_3"]
    assert ids(g.downstream("add", transitive=True)) == ["add_2", "add_3", "add_4"]
    assert ids(g.upstream("add_4", transitive=True)) == ["add", "add_2", "add_3"]
    assert ids(g.roots) == ["add"] and ids(g.leaves) == ["add_4"]


def test_levels_group_independent_steps() -> None:
    @pipeline
    def fan() -> None:
        for i in range(4):
            add(i, i)

    g = fan.graph()
    assert [[n.id for n in level] for level in g.levels()] == [["add", "add_2", "add_3", "add_4"]]


def test_tuple_outputs_unpack() -> None:
    @pipeline
    def p() -> None:
        train_df, test_df = split(load(10))
        evaluate(train(train_df, 3), test_df)

    g = p.graph()
    assert g["train"].args["df"] == Ref("split", 0)
    assert g["evaluate"].args["df"] == Ref("split", 1)
    assert [(e.source, e.output) for e in g.edges if e.target == "evaluate"] == [
        ("train", None),
        ("split", 1),
    ]


def test_one_level_of_list_and_dict_is_supported() -> None:
    @pipeline
    def ensemble() -> None:
        df = load(5)
        a, b = train(df, 1), train(df, 2)
        combine([a, b], weights={"a": 0.5, "b": 0.5})

    g = ensemble.graph()
    assert g["combine"].args["models"] == [Ref("train"), Ref("train_2")]
    assert g["combine"].upstream_ids == ["train", "train_2"]
    assert g["combine"].literal_args == {"weights": {"a": 0.5, "b": 0.5}}


def test_deterministic_order_is_call_order() -> None:
    @pipeline
    def p() -> None:
        late = one()
        early = load(3)
        add(late, 1)
        to_array(early)

    first = p.graph()
    assert ids(first.topological_order()) == ["one", "load", "add", "to_array"]
    for _ in range(3):
        assert ids(p.graph().topological_order()) == ids(first.topological_order())


def test_step_used_twice_gets_unique_ids() -> None:
    @pipeline
    def p() -> None:
        df = load(1)
        train(df, 1)
        train(df, 2)
        train(df, 3)

    assert ids(p.graph().nodes) == ["load", "train", "train_2", "train_3"]


# -- steps outside pipelines -------------------------------------------------------------------


def test_steps_run_directly_outside_a_pipeline() -> None:
    assert add(2, 3) == 5
    assert isinstance(train(load(3), depth=2), Forest)
    a, b = split(load(10))
    assert len(a) == 8 and len(b) == 2


def test_step_keeps_function_metadata() -> None:
    assert isinstance(train, Step)
    assert train.__name__ == "train"
    assert train.__doc__ == "Fit a model."
    assert train.__wrapped__ is train.func
    assert list(inspect.signature(train).parameters) == ["df", "depth"]
    assert training.__doc__ is None and training.__name__ == "training"


def test_step_options_and_defaults() -> None:
    @step(
        timeout=timedelta(minutes=1),
        expire=3600,
        cache=False,
        cache_version=3,
        ignore_inputs="df",
        name="fit",
    )
    def f(df: pd.DataFrame) -> int:
        return 1

    assert f.name == "fit"
    assert f.options.to_dict() == {
        "retries": 0,
        "retry_backoff": 1.0,
        "timeout": 60.0,
        "resources": {},
        "cache": False,
        "cache_version": "3",
        "ignore_inputs": ["df"],
        "expire": 3600.0,
    }
    assert add.options.non_defaults() == {}


def test_call_with_handles_positional_only() -> None:
    @step
    def f(a: int, /, b: int) -> int:
        return a - b

    assert f.call_with({"a": 5, "b": 2}) == 3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retries": -1}, "option retries=-1"),
        ({"retries": 1.5}, "option retries=1.5"),
        ({"retries": True}, "option retries=True"),
        ({"retry_backoff": -1}, "option retry_backoff=-1"),
        ({"timeout": 0}, "option timeout=0"),
        ({"timeout": math.inf}, "option timeout=inf"),
        ({"timeout": "1m"}, "option timeout='1m'"),
        ({"resources": [2]}, "option resources=[2]"),
        ({"resources": {"num_cpus": -1}}, "'num_cpus' needs a number >= 0"),
        ({"cache": "yes"}, "option cache='yes'"),
        ({"cache_version": 1.5}, "option cache_version=1.5"),
        ({"ignore_inputs": ["nope"]}, "'nope' is not a parameter; parameters: df, depth"),
        ({"expire": -5}, "option expire=-5"),
        ({"name": "has space"}, "name 'has space' is not valid"),
    ],
)
def test_bad_step_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput) as info:

        @step(**options)
        def fit(df: pd.DataFrame, depth: int) -> Model:
            return Model()

    assert message in str(info.value)
    if "name" not in options:
        assert "step 'fit'" in str(info.value)


def test_bad_step_targets() -> None:
    with pytest.raises(InvalidInput, match="a lambda needs name="):
        step(lambda x: x)
    assert step(name="ident")(lambda x: x)(4) == 4
    with pytest.raises(InvalidInput, match=r"\*args parameters are not supported"):

        @step
        def f(*args: int) -> int:
            return 0

    with pytest.raises(InvalidInput, match="needs a function"):
        step(len)
    with pytest.raises(InvalidInput, match="already a step"):
        step(add)


# -- checks before anything runs ---------------------------------------------------------------


def graph_of(body: Any, **params: Any) -> Graph:
    return pipeline(body).graph(**params)


def test_missing_required_argument() -> None:
    def p() -> None:
        train(load(1))  # type: ignore[call-arg]

    with pytest.raises(InvalidInput, match="step 'train': missing required argument 'depth'"):
        graph_of(p)


def test_unknown_keyword() -> None:
    def p() -> None:
        train(load(1), depth=2, lr=0.1)  # type: ignore[call-arg]

    with pytest.raises(
        InvalidInput, match="step 'train': unknown argument 'lr'; train\\(\\) takes: df, depth"
    ) as info:
        graph_of(p)
    assert info.value.details == {"step": "train", "argument": "lr"}


def test_too_many_and_duplicate_arguments() -> None:
    def p() -> None:
        add(1, 2, 3)  # type: ignore[call-arg]

    with pytest.raises(InvalidInput, match="takes 2 arguments but 3 were given"):
        graph_of(p)

    def q() -> None:
        add(1, 2, a=3)  # type: ignore[misc]

    with pytest.raises(InvalidInput, match="argument 'a' given twice"):
        graph_of(q)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (Model(), "a tests.pipelines.test_steps.Model is not JSON"),
        (math.nan, "nan is not a finite number"),
        ((1, 2), "a tuple would come back as a list; pass a list"),
        ({1: "a"}, "dict key 1 is not a string"),
        ([1, {"x": {2, 3}}], "a builtins.set is not JSON"),
        (np.int64(3), "a numpy.int64 is not JSON"),
    ],
)
def test_literal_argument_must_be_json(value: Any, problem: str) -> None:
    def p() -> None:
        anything(value)

    with pytest.raises(InvalidInput) as info:
        graph_of(p)
    text = str(info.value)
    assert text.startswith(f"step 'anything', argument 'value': {problem}")
    assert "pass that step's output instead" in text


def test_pipeline_params_checked() -> None:
    with pytest.raises(InvalidInput, match="unknown parameter 'lr'; parameters: window_days"):
        training.graph(lr=0.1)
    with pytest.raises(InvalidInput, match="parameter 'depth': inf is not a finite number"):
        training.graph(depth=math.inf)
    with pytest.raises(InvalidInput, match=r"parameter 'depth': a .*DataFrame is not JSON"):
        training.graph(depth=pd.DataFrame())

    @pipeline
    def needs(depth: int) -> None:
        add(depth, 1)

    with pytest.raises(InvalidInput, match="parameter 'depth' has no default"):
        needs.graph()
    assert needs.graph(depth=3)["add"].args == {"a": 3, "b": 1}


def test_type_mismatch_between_steps() -> None:
    def p() -> None:
        train(one(), 3)  # type: ignore[arg-type]

    with pytest.raises(InvalidInput) as info:
        graph_of(p)
    assert str(info.value).startswith(
        "step 'train', argument 'df': expects pandas.DataFrame but one returns int"
    )


def test_type_mismatch_in_tuple_element_and_list() -> None:
    def p() -> None:
        a, _ = split(load(1))
        add(a, 1)  # type: ignore[arg-type]

    with pytest.raises(InvalidInput, match=r"argument 'a': expects int but split\[0\] returns"):
        graph_of(p)

    def q() -> None:
        combine([train(load(1), 1), one()])  # type: ignore[list-item]

    with pytest.raises(InvalidInput, match=r"argument 'models': expects .*Model but one returns"):
        graph_of(q)


def test_compatible_types_pass() -> None:
    @step
    def forest() -> Forest:
        return Forest()

    @step
    def maybe(m: Model | None, x: float, arr: np.ndarray, anything: Any) -> None:
        return None

    @step
    def untyped() -> Any:
        return 1

    def p() -> None:
        maybe(forest(), one(), to_array(load(1)), untyped())  # subclass, int->float, numpy, Any
        anything(forest())  # unannotated parameter

    g = graph_of(p)
    assert len(g) == 8


def test_unpacking_a_single_output_is_an_error() -> None:
    def p() -> None:
        _a, _b = load(1)

    with pytest.raises(InvalidInput, match=r"it returns one value; annotate .* tuple"):
        graph_of(p)


@pytest.mark.parametrize(
    ("use", "what"),
    [
        (lambda out: out.shape, "read attribute 'shape'"),
        (lambda out: out["x"], "index \\['x'\\]"),
        (bool, "test the truth"),
        (lambda out: out + 1, "compute with"),
        (len, "take len\\(\\)"),
    ],
)
def test_placeholder_values_only_exist_at_run_time(use: Any, what: str) -> None:
    def p() -> None:
        use(load(1))

    with pytest.raises(InvalidInput, match=f"cannot {what} .*only exist at run time"):
        graph_of(p)


def test_placeholder_from_another_trace_is_refused() -> None:
    leaked: list[Output] = []

    def first() -> None:
        leaked.append(load(1))  # type: ignore[arg-type]

    graph_of(first)

    def second() -> None:
        train(leaked[0], 1)  # type: ignore[arg-type]

    with pytest.raises(InvalidInput, match="comes from a graph that is already built"):
        graph_of(second)

    outer = pipeline(lambda: None, name="outer")

    def nested() -> None:
        df = load(1)

        def inner_body() -> None:
            train(df, 1)

        pipeline(inner_body).graph()

    with pytest.raises(InvalidInput, match="comes from another pipeline's graph"):
        graph_of(nested)
    assert outer.name == "outer"


def test_placeholder_nested_too_deep_or_in_tuple() -> None:
    def deep() -> None:
        combine([[load(1)]])  # type: ignore[list-item]

    with pytest.raises(InvalidInput, match="nested more than one level deep"):
        graph_of(deep)

    def in_tuple() -> None:
        anything((load(1), 2))

    with pytest.raises(InvalidInput, match="in a list or a dict, not a tuple"):
        graph_of(in_tuple)


def test_pipeline_without_steps_is_refused() -> None:
    def empty(x: int = 1) -> None:
        add.func(x, 1)

    with pytest.raises(InvalidInput, match="pipeline 'empty' calls no step"):
        graph_of(empty)


# -- hand-built graphs -------------------------------------------------------------------------


def test_hand_built_cycle_is_refused() -> None:
    nodes = [
        StepCall("a", add, {"a": Ref("c"), "b": 1}),
        StepCall("b", add, {"a": Ref("a"), "b": 1}),
        StepCall("c", add, {"a": Ref("b"), "b": 1}),
    ]
    with pytest.raises(InvalidInput, match="has a cycle: a -> b -> c -> a") as info:
        Graph(nodes, name="loop")
    assert info.value.details == {"cycle": ["a", "b", "c", "a"]}


def test_hand_built_graph_checks() -> None:
    with pytest.raises(InvalidInput, match="node 'ghost', which is not in the graph"):
        Graph([StepCall("a", add, {"a": Ref("ghost"), "b": 1})])
    with pytest.raises(InvalidInput, match="two nodes have the id 'a'"):
        Graph([StepCall("a", one, {}), StepCall("a", one, {})])
    with pytest.raises(InvalidInput, match="refers to output 2 of 'a', which has one output"):
        Graph([StepCall("a", one, {}), StepCall("b", add, {"a": Ref("a", 2), "b": 1})])
    with pytest.raises(InvalidInput, match="has no steps"):
        Graph([])
    g = Graph([StepCall("b", one, {}), StepCall("a", add, {"a": Ref("b"), "b": 1})])
    assert ids(g.topological_order()) == ["b", "a"]
    with pytest.raises(InvalidInput, match="has no node 'zzz'; nodes: b, a"):
        g.upstream("zzz")


# -- what a cache key and storage will need ----------------------------------------------------


def test_step_call_exposes_cache_key_parts() -> None:
    g = training.graph(depth=7)
    node = g["train"]
    assert node.literal_args == {"depth": 7}
    assert node.canonical_args() == '{"depth":{"value":7},"df":{"output":null,"ref":"load"}}'
    assert node.options.to_dict()["retries"] == 2
    digest = node.code_digest
    assert isinstance(digest, CodeDigest)
    assert digest is node.code_digest  # computed once
    assert digest.digest == training.graph()["train"].code_digest.digest


@pipeline
def repeated(times: int = 4) -> None:
    """``times`` calls of one step, and one of another."""
    df = load(3)
    for _ in range(times):
        train(df, 2)


def test_a_graph_digests_each_step_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import mloop.pipelines.graph as graph_module

    digested: list[str] = []
    real = graph_module.code_digest

    def counting(func: Any) -> CodeDigest:
        digested.append(func.__name__)
        return real(func)

    monkeypatch.setattr(graph_module, "code_digest", counting)
    g = repeated.graph()
    digests = [g.code_digest(node) for node in g.topological_order()]
    assert sorted(digested) == ["load", "train"]  # four calls of train, one digest
    trains = [
        d for node, d in zip(g.topological_order(), digests, strict=True) if node.step is train
    ]
    assert len(trains) == 4 and all(d is trains[0] for d in trains)
    assert g["train_3"].code_digest is trains[0]  # the call's own property agrees
    assert g.code_digest("load") is g["load"].code_digest
    again = repeated.graph()  # a new graph (a new run) digests the code afresh
    assert again.code_digest("train").digest == trains[0].digest
    assert sorted(digested) == ["load", "train", "train"]


def test_to_dict_is_json_and_stable() -> None:
    first = training.graph().to_dict()
    assert json.loads(json.dumps(first)) == first
    assert training.graph().to_dict() == first
    assert json.dumps(first, sort_keys=True) == json.dumps(
        training.graph().to_dict(), sort_keys=True
    )
    assert first["format"] == "mloop-graph/1"
    assert [n["id"] for n in first["nodes"]] == ["load", "train", "evaluate"]
    train_node = first["nodes"][1]
    assert train_node["function"] == "tests.pipelines.test_steps:train"
    assert train_node["args"] == {"df": {"ref": "load", "output": None}, "depth": {"value": 6}}
    assert first["edges"][0] == {
        "source": "load",
        "target": "train",
        "argument": "df",
        "output": None,
    }
    assert training.graph(depth=9).to_dict() != first


def test_to_dict_tags_refs_inside_containers() -> None:
    @pipeline
    def p() -> None:
        combine([train(load(1), 1), {"ref": "not a ref"}])  # type: ignore[list-item]

    # The dict literal is not a Model, but untyped items are not checked: only refs are.
    node = p.graph().to_dict()["nodes"][-1]
    assert node["args"]["models"] == {
        "list": [{"ref": "train", "output": None}, {"value": {"ref": "not a ref"}}]
    }


def test_describe() -> None:
    text = training.graph(depth=8).describe()
    assert text.splitlines() == [
        "pipeline training (3 steps, 3 levels)",
        "  params: window_days=30, depth=8",
        "  load      load(window_days=30)",
        "  train     train(df=<load>, depth=8)  [retries=2, resources={'num_cpus': 2}]",
        "  evaluate  evaluate(model=<train>, df=<load>)",
    ]


def test_a_failed_trace_leaves_steps_runnable() -> None:
    def broken() -> None:
        load(1)
        raise RuntimeError("bug in the pipeline body")

    with pytest.raises(RuntimeError, match="bug in the pipeline body"):
        graph_of(broken)
    assert add(1, 1) == 2  # not recorded: the tracing context was reset


def test_literal_arguments_checked_against_json_annotations() -> None:
    def p() -> None:
        train(load(1), "6")  # type: ignore[arg-type]

    with pytest.raises(InvalidInput) as info:
        graph_of(p)
    assert str(info.value) == "step 'train', argument 'depth': expects int but got '6' (str)"

    @step
    def opts(x: float, y: int | None, z: list[int], w: Path) -> None:
        return None

    def q() -> None:
        opts(1, None, [1], "a/b")  # type: ignore[arg-type]  # int->float; str for a Path: left alone

    assert len(graph_of(q)) == 1
    with pytest.raises(InvalidInput, match="argument 'depth': expects int"):
        training.graph(depth=None)


def test_steps_pickle_by_reference() -> None:
    assert pickle.loads(pickle.dumps(train)) is train

    @step
    def local() -> int:
        return 1

    with pytest.raises(InvalidInput, match="define steps at module level"):
        pickle.dumps(local)


def test_pipeline_with_positional_only_parameter() -> None:
    @pipeline(name="pos")
    def p(n: int = 2, /, m: int = 3) -> None:
        add(n, m)

    g = p.graph(m=4)
    assert g.name == "pos" and g["add"].args == {"a": 2, "b": 4}
