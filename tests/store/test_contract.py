"""The MetadataStore contract, run against every backend (see tests/fixtures/stores.py)."""

from __future__ import annotations

import itertools
import math

import pytest

from mloop.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    InvalidName,
    InvalidState,
    NotFound,
    ParamConflict,
)
from mloop.store.base import Lifecycle, MetadataStore, Run, RunStatus, ViewType

ACTOR = "alice"


def new_run(store: MetadataStore, experiment_id: int | None = None, **kw: object) -> Run:
    if experiment_id is None:
        experiment_id = store.create_experiment(
            f"exp-{len(store.list_experiments(ViewType.ALL))}", actor=ACTOR
        ).id
    args: dict[str, object] = {
        "experiment_id": experiment_id,
        "name": "run",
        "user": "bob",
        "start_time": 1000,
        "parent_id": None,
        "host": "host-1",
        "pid": 4242,
        "pid_started_at": 999,
        "tags": None,
        "actor": ACTOR,
    }
    args.update(kw)
    return store.create_run(**args)  # type: ignore[arg-type]


def actions(store: MetadataStore) -> list[str]:
    return [e.action for e in store.iter_audit()]


# -- experiments ---------------------------------------------------------------------------


def test_create_and_get_experiment(store: MetadataStore) -> None:
    exp = store.create_experiment("fraud", actor=ACTOR, tags={"team": "risk"})
    assert exp.name == "fraud" and exp.lifecycle is Lifecycle.ACTIVE
    assert exp.tags == {"team": "risk"}
    assert store.get_experiment(exp.id) == exp
    assert store.get_experiment_by_name("fraud") == exp
    assert store.get_experiment_by_name("nope") is None
    with pytest.raises(NotFound):
        store.get_experiment(exp.id + 100)


def test_experiment_name_unique_even_when_deleted(store: MetadataStore) -> None:
    exp = store.create_experiment("a", actor=ACTOR)
    with pytest.raises(AlreadyExists):
        store.create_experiment("a", actor=ACTOR)
    store.set_experiment_lifecycle(exp.id, Lifecycle.DELETED, actor=ACTOR)
    with pytest.raises(AlreadyExists, match="deleted"):
        store.create_experiment("a", actor=ACTOR)


@pytest.mark.parametrize("name", ["", "x" * 257])
def test_bad_experiment_name(store: MetadataStore, name: str) -> None:
    with pytest.raises(InvalidName):
        store.create_experiment(name, actor=ACTOR)
    assert store.list_experiments(ViewType.ALL) == []


def test_list_experiments_views(store: MetadataStore) -> None:
    a = store.create_experiment("a", actor=ACTOR)
    b = store.create_experiment("b", actor=ACTOR, tags={"k": "v"})
    store.set_experiment_lifecycle(a.id, Lifecycle.DELETED, actor=ACTOR)
    assert [e.name for e in store.list_experiments()] == ["b"]
    assert [e.name for e in store.list_experiments(ViewType.DELETED)] == ["a"]
    assert [e.name for e in store.list_experiments(ViewType.ALL)] == ["a", "b"]
    assert store.list_experiments()[0].tags == {"k": "v"}
    assert b.id > a.id


def test_rename_experiment(store: MetadataStore) -> None:
    a = store.create_experiment("a", actor=ACTOR)
    store.create_experiment("b", actor=ACTOR)
    assert store.rename_experiment(a.id, "c", actor=ACTOR).name == "c"
    with pytest.raises(AlreadyExists):
        store.rename_experiment(a.id, "b", actor=ACTOR)
    with pytest.raises(NotFound):
        store.rename_experiment(999, "z", actor=ACTOR)
    assert store.get_experiment(a.id).name == "c"


def test_experiment_lifecycle_moves_runs(store: MetadataStore) -> None:
    exp = store.create_experiment("e", actor=ACTOR)
    run = new_run(store, exp.id)
    deleted = store.set_experiment_lifecycle(exp.id, Lifecycle.DELETED, actor=ACTOR)
    assert deleted.lifecycle is Lifecycle.DELETED
    assert store.get_run(run.id).lifecycle is Lifecycle.DELETED
    with pytest.raises(InvalidState):
        new_run(store, exp.id)
    store.set_experiment_lifecycle(exp.id, Lifecycle.ACTIVE, actor=ACTOR)
    assert store.get_run(run.id).lifecycle is Lifecycle.ACTIVE
    with pytest.raises(NotFound):
        store.set_experiment_lifecycle(999, Lifecycle.DELETED, actor=ACTOR)


def test_experiment_tags(store: MetadataStore) -> None:
    exp = store.create_experiment("e", actor=ACTOR, tags={"a": "1"})
    store.set_experiment_tags(exp.id, {"a": "2", "b": "ü" * 10_000}, actor=ACTOR)
    assert store.get_experiment(exp.id).tags == {"a": "2", "b": "ü" * 10_000}
    with pytest.raises(NotFound):
        store.set_experiment_tags(999, {"a": "1"}, actor=ACTOR)


# -- runs ----------------------------------------------------------------------------------


def test_create_and_get_run(store: MetadataStore) -> None:
    exp = store.create_experiment("e", actor=ACTOR)
    run = new_run(store, exp.id, tags={"mloop.source": "train.py"})
    assert run.status is RunStatus.RUNNING and run.lifecycle is Lifecycle.ACTIVE
    assert len(run.id) == 32
    got = store.get_run(run.id)
    assert got == run
    assert (
        got.heartbeat_at == 1000
        and got.end_time is None
        and got.tags == {"mloop.source": "train.py"}
    )
    with pytest.raises(NotFound):
        store.get_run("f" * 32)


def test_create_run_errors(store: MetadataStore) -> None:
    exp = store.create_experiment("e", actor=ACTOR)
    with pytest.raises(NotFound):
        new_run(store, 999)
    with pytest.raises(NotFound):
        new_run(store, exp.id, parent_id="0" * 32)
    run = new_run(store, exp.id, run_id="abc")
    assert run.id == "abc"
    with pytest.raises(AlreadyExists):
        new_run(store, exp.id, run_id="abc")
    with pytest.raises(InvalidInput):
        new_run(store, exp.id, run_id="x" * 33)
    child = new_run(store, exp.id, parent_id="abc")
    assert store.get_run(child.id).parent_id == "abc"


def test_get_runs_keeps_order_and_skips_missing(store: MetadataStore) -> None:
    exp = store.create_experiment("e", actor=ACTOR)
    runs = [new_run(store, exp.id, name=f"r{i}") for i in range(5)]
    store.write_batch(params=[(r.id, "i", str(n)) for n, r in enumerate(runs)])
    ids = [runs[3].id, "missing", runs[0].id, runs[4].id]
    got = store.get_runs(ids)
    assert [r.id for r in got] == [runs[3].id, runs[0].id, runs[4].id]
    assert got[0].params == {"i": "3"}
    assert store.get_runs([]) == []


def test_create_run_with_artifacts(store: MetadataStore) -> None:
    exp = store.create_experiment("with-refs", actor=ACTOR)
    digest = "a" * 64
    run = new_run(store, exp.id, artifacts=[("env/req.txt", digest, 3)])
    assert [(a.path, a.digest, a.size) for a in store.list_artifacts("run", run.id)] == [
        ("env/req.txt", digest, 3)
    ]
    with pytest.raises(Conflict):
        new_run(store, exp.id, artifacts=[("x", "b" * 64, 1), ("x", "c" * 64, 1)])
    assert len(store.search_runs(experiment_ids=[exp.id]).items) == 1  # nothing partial


def test_run_status_transitions(store: MetadataStore) -> None:
    run = new_run(store)
    store.set_run_status(run.id, RunStatus.RUNNING, end_time=None, actor=ACTOR)
    assert store.get_run(run.id) == run
    store.set_run_status(run.id, RunStatus.FINISHED, end_time=5000, actor=ACTOR)
    done = store.get_run(run.id)
    assert done.status is RunStatus.FINISHED and done.end_time == 5000
    # same status again: no-op
    store.set_run_status(run.id, RunStatus.FINISHED, end_time=6000, actor=ACTOR)
    assert store.get_run(run.id).end_time == 5000
    for status in (RunStatus.RUNNING, RunStatus.FAILED, RunStatus.KILLED):
        with pytest.raises(InvalidState):
            store.set_run_status(run.id, status, end_time=None, actor=ACTOR)
    with pytest.raises(NotFound):
        store.set_run_status("nope", RunStatus.FAILED, end_time=None, actor=ACTOR)


def test_run_lifecycle(store: MetadataStore) -> None:
    run = new_run(store)
    assert store.set_run_lifecycle(run.id, Lifecycle.DELETED, actor=ACTOR).lifecycle is (
        Lifecycle.DELETED
    )
    assert store.set_run_lifecycle(run.id, Lifecycle.ACTIVE, actor=ACTOR).lifecycle is (
        Lifecycle.ACTIVE
    )
    with pytest.raises(NotFound):
        store.set_run_lifecycle("nope", Lifecycle.DELETED, actor=ACTOR)


def test_heartbeat_and_list_running(store: MetadataStore) -> None:
    exp = store.create_experiment("e", actor=ACTOR)
    a, b = new_run(store, exp.id), new_run(store, exp.id, host="h2", pid=7)
    store.set_run_status(b.id, RunStatus.FINISHED, end_time=2000, actor=ACTOR)
    store.heartbeat([a.id, b.id, "missing"], 123_456)
    store.heartbeat([], 1)
    assert store.get_run(a.id).heartbeat_at == 123_456
    assert store.get_run(b.id).heartbeat_at == 1000  # only RUNNING runs beat
    live = store.list_running()
    assert [(x.run_id, x.host, x.pid, x.pid_started_at, x.heartbeat_at) for x in live] == [
        (a.id, "host-1", 4242, 999, 123_456)
    ]


# -- write_batch ---------------------------------------------------------------------------


def test_metrics_round_trip_nan_and_inf(store: MetadataStore) -> None:
    run = new_run(store)
    points = [
        (run.id, "loss", math.nan, 0, 10),
        (run.id, "loss", math.inf, 1, 11),
        (run.id, "loss", -math.inf, 2, 12),
        (run.id, "loss", 1e-300, 3, 13),
        (run.id, "loss", -0.5, 4, 14),
    ]
    store.write_batch(metrics=points)
    history = store.get_metric_history(run.id, "loss")
    assert [(m.step, m.timestamp) for m in history] == [(0, 10), (1, 11), (2, 12), (3, 13), (4, 14)]
    values = [m.value for m in history]
    assert math.isnan(values[0])
    assert values[1:] == [math.inf, -math.inf, 1e-300, -0.5]
    assert store.get_run(run.id).metrics == {"loss": -0.5}
    store.write_batch(metrics=[(run.id, "loss", math.nan, 9, 1)])
    assert math.isnan(store.get_run(run.id).metrics["loss"])
    assert store.get_metric_history(run.id, "other") == []
    with pytest.raises(NotFound):
        store.get_metric_history("nope", "loss")


def test_latest_metric_rules(store: MetadataStore) -> None:
    run = new_run(store)
    store.write_batch(metrics=[(run.id, "m", 1.0, 5, 100)])
    store.write_batch(metrics=[(run.id, "m", 2.0, 4, 999)])  # older step loses
    assert store.get_run(run.id).metrics["m"] == 1.0
    store.write_batch(metrics=[(run.id, "m", 3.0, 5, 99)])  # same step, older time loses
    assert store.get_run(run.id).metrics["m"] == 1.0
    store.write_batch(metrics=[(run.id, "m", 4.0, 5, 100)])  # same step, same time wins
    assert store.get_run(run.id).metrics["m"] == 4.0
    store.write_batch(metrics=[(run.id, "m", 5.0, 6, 1)])  # greater step wins
    assert store.get_run(run.id).metrics["m"] == 5.0
    # within one batch, out of order: the greatest (step, timestamp) wins; ties: the last
    store.write_batch(
        metrics=[
            (run.id, "n", 1.0, 9, 5),
            (run.id, "n", 2.0, 3, 50),
            (run.id, "n", 3.0, 9, 5),
            (run.id, "n", 4.0, 9, 4),
        ]
    )
    assert store.get_run(run.id).metrics["n"] == 3.0
    assert len(store.get_metric_history(run.id, "n")) == 4


def test_write_batch_several_runs(store: MetadataStore) -> None:
    exp = store.create_experiment("e", actor=ACTOR)
    a, b = new_run(store, exp.id), new_run(store, exp.id)
    store.write_batch(
        metrics=[(a.id, "x", 1.0, 0, 1), (b.id, "x", 2.0, 0, 1)],
        params=[(a.id, "lr", "0.1"), (b.id, "lr", "0.2")],
        tags=[(a.id, "t", "1"), (b.id, "t", "2")],
    )
    ra, rb = store.get_runs([a.id, b.id])
    assert (ra.metrics, ra.params, ra.tags) == ({"x": 1.0}, {"lr": "0.1"}, {"t": "1"})
    assert (rb.metrics, rb.params, rb.tags) == ({"x": 2.0}, {"lr": "0.2"}, {"t": "2"})
    store.write_batch()  # empty: a no-op


def test_params_are_immutable(store: MetadataStore) -> None:
    run = new_run(store)
    store.write_batch(params=[(run.id, "lr", "0.01")])
    store.write_batch(params=[(run.id, "lr", "0.01")])  # same value: no-op
    with pytest.raises(ParamConflict) as info:
        store.write_batch(params=[(run.id, "lr", "0.02")])
    message = str(info.value)
    assert "'lr'" in message and "'0.01'" in message and run.id in message
    assert "immutable" in message
    assert info.value.http_status == 409


def test_conflicting_batch_writes_nothing(store: MetadataStore) -> None:
    run = new_run(store)
    store.write_batch(params=[(run.id, "lr", "0.01")])
    with pytest.raises(ParamConflict):
        store.write_batch(
            metrics=[(run.id, "loss", 1.0, 0, 1)],
            params=[(run.id, "batch", "32"), (run.id, "lr", "0.5")],
            tags=[(run.id, "t", "x")],
        )
    got = store.get_run(run.id)
    assert got.params == {"lr": "0.01"} and got.metrics == {} and got.tags == {}
    assert store.get_metric_history(run.id, "loss") == []
    # two different values for one param inside one batch
    with pytest.raises(ParamConflict, match="twice"):
        store.write_batch(params=[(run.id, "a", "1"), (run.id, "a", "2")])
    assert store.get_run(run.id).params == {"lr": "0.01"}


def test_write_batch_run_errors(store: MetadataStore) -> None:
    run = new_run(store)
    with pytest.raises(NotFound):
        store.write_batch(metrics=[(run.id, "m", 1.0, 0, 1), ("missing", "m", 1.0, 0, 1)])
    store.set_run_lifecycle(run.id, Lifecycle.DELETED, actor=ACTOR)
    with pytest.raises(InvalidState):
        store.write_batch(tags=[(run.id, "t", "x")])
    store.set_run_lifecycle(run.id, Lifecycle.ACTIVE, actor=ACTOR)
    assert store.get_metric_history(run.id, "m") == []
    with pytest.raises(InvalidName):
        store.write_batch(metrics=[(run.id, "k" * 251, 1.0, 0, 1)])
    with pytest.raises(InvalidName):
        store.write_batch(params=[(run.id, "", "v")])


def test_unicode_and_long_values(store: MetadataStore) -> None:
    run = new_run(store)
    value = "é∑😀" * 200
    key = "κλειδί/😀" + "k" * 200
    store.write_batch(
        params=[(run.id, key, value)],
        tags=[(run.id, key, value)],
        metrics=[(run.id, key, 1.5, 2**62, 2**62)],
    )
    got = store.get_run(run.id)
    assert got.params == {key: value} and got.tags == {key: value} and got.metrics == {key: 1.5}
    assert store.get_metric_history(run.id, key)[0].step == 2**62


@pytest.mark.parametrize("table", ["params", "tags"])
def test_huge_values(store: MetadataStore, table: str) -> None:
    run = new_run(store)
    big = "é∑😀" * 100_000
    store.write_batch(**{table: [(run.id, "big", big)]})  # type: ignore[arg-type]
    assert getattr(store.get_run(run.id), table) == {"big": big}


def test_tags_upsert(store: MetadataStore) -> None:
    run = new_run(store, tags={"a": "1"})
    store.write_batch(tags=[(run.id, "a", "2"), (run.id, "b", "x"), (run.id, "b", "y")])
    assert store.get_run(run.id).tags == {"a": "2", "b": "y"}


def test_get_runs_bulk(store: MetadataStore) -> None:
    exp = store.create_experiment("e", actor=ACTOR)
    runs = [new_run(store, exp.id, name=f"r{i}") for i in range(100)]
    store.write_batch(
        metrics=[(r.id, f"m{j}", float(j), 0, 1) for r in runs for j in range(5)],
        params=[(r.id, f"p{j}", str(j)) for r in runs for j in range(5)],
        tags=[(r.id, f"t{j}", str(j)) for r in runs for j in range(5)],
    )
    got = store.get_runs([r.id for r in reversed(runs)])
    assert [r.id for r in got] == [r.id for r in reversed(runs)]
    assert all(len(r.params) == len(r.tags) == len(r.metrics) == 5 for r in got)


# -- search (the filter grammar itself is tested in test_search.py) ------------------------


def test_search_runs_pages(store: MetadataStore) -> None:
    pytest.importorskip("mloop.store.search")
    exp = store.create_experiment("e", actor=ACTOR)
    runs = [new_run(store, exp.id, name=f"r{i}", start_time=1000 + i) for i in range(7)]
    seen: list[str] = []
    token = None
    for _ in range(10):
        page = store.search_runs(experiment_ids=[exp.id], max_results=3, page_token=token)
        seen += [r.id for r in page.items]
        token = page.next_token
        if token is None:
            break
    assert sorted(seen) == sorted(r.id for r in runs) and len(seen) == 7


@pytest.mark.parametrize("bad", [0, -1, 50_001, True, 1.5])
def test_search_runs_max_results(store: MetadataStore, bad: object) -> None:
    pytest.importorskip("mloop.store.search")
    with pytest.raises(InvalidInput):
        store.search_runs(max_results=bad)  # type: ignore[arg-type]


# -- purge ---------------------------------------------------------------------------------


def test_purge_runs(store: MetadataStore) -> None:
    exp = store.create_experiment("e", actor=ACTOR)
    parent = new_run(store, exp.id)
    child = new_run(store, exp.id, parent_id=parent.id)
    store.write_batch(
        metrics=[(parent.id, "m", 1.0, 0, 1)],
        params=[(parent.id, "p", "1")],
        tags=[(parent.id, "t", "1")],
    )
    store.add_artifacts("run", parent.id, [("model.pkl", "a" * 64, 10)])
    with pytest.raises(InvalidState):
        store.purge_runs([parent.id], actor=ACTOR)
    store.set_run_lifecycle(parent.id, Lifecycle.DELETED, actor=ACTOR)
    assert store.purge_runs([parent.id, "missing"], actor=ACTOR) == 1
    with pytest.raises(NotFound):
        store.get_run(parent.id)
    assert store.list_artifacts("run", parent.id) == []
    assert store.referenced_digests() == set()
    assert store.get_run(child.id).parent_id is None
    assert store.purge_runs([], actor=ACTOR) == 0


# -- artifacts -----------------------------------------------------------------------------


def test_artifacts(store: MetadataStore) -> None:
    d1, d2 = "1" * 64, "2" * 64
    store.add_artifacts("run", "r1", [("model/model.pkl", d1, 10), ("model/MLmodel", d2, 5)])
    store.add_artifacts("run", "r1", [("model/model.pkl", d1, 10)])  # same digest: no-op
    store.add_artifacts("run", "r2", [("plot.png", d1, 10)])
    with pytest.raises(Conflict, match="immutable"):
        store.add_artifacts("run", "r1", [("model/model.pkl", d2, 5)])
    with pytest.raises(Conflict):
        store.add_artifacts("run", "r1", [("x", d1, 1), ("x", d2, 1)])
    listed = store.list_artifacts("run", "r1")
    assert [(a.path, a.digest, a.size) for a in listed] == [
        ("model/MLmodel", d2, 5),
        ("model/model.pkl", d1, 10),
    ]
    assert store.referenced_digests() == {d1, d2}
    assert store.referenced_digests([d1, "f" * 64, d1]) == {d1}
    assert store.referenced_digests([]) == set()
    store.add_artifacts("run", "r1", [])


def test_list_artifacts_prefix_escapes_wildcards(store: MetadataStore) -> None:
    d = "3" * 64
    paths = ["a_b/x", "aXb/y", "a%b/z", "A_b/w", "a_b2"]
    store.add_artifacts("run", "r", [(p, d, 1) for p in paths])
    assert [a.path for a in store.list_artifacts("run", "r", "a_b")] == ["a_b/x", "a_b2"]
    assert [a.path for a in store.list_artifacts("run", "r", "a%")] == ["a%b/z"]
    assert [a.path for a in store.list_artifacts("run", "r", "A")] == ["A_b/w"]
    assert store.list_artifacts("run", "r", "zzz") == []


# -- audit events per change ---------------------------------------------------------------


def test_every_state_change_is_audited(store: MetadataStore) -> None:
    exp = store.create_experiment("e", actor="carol", tags={"a": "1"})
    store.rename_experiment(exp.id, "e2", actor=ACTOR)
    store.set_experiment_tags(exp.id, {"a": "2"}, actor=ACTOR)
    run = new_run(store, exp.id)
    store.write_batch(metrics=[(run.id, "m", 1.0, 0, 1)], params=[(run.id, "p", "1")])
    store.set_run_status(run.id, RunStatus.FINISHED, end_time=9, actor=ACTOR)
    store.set_run_lifecycle(run.id, Lifecycle.DELETED, actor=ACTOR)
    store.set_run_lifecycle(run.id, Lifecycle.ACTIVE, actor=ACTOR)
    store.set_run_lifecycle(run.id, Lifecycle.DELETED, actor=ACTOR)
    store.purge_runs([run.id], actor=ACTOR)
    store.set_experiment_lifecycle(exp.id, Lifecycle.DELETED, actor=ACTOR)
    store.set_experiment_lifecycle(exp.id, Lifecycle.ACTIVE, actor=ACTOR)
    assert actions(store) == [
        "experiment.created",
        "experiment.renamed",
        "experiment.tags_set",
        "run.created",
        "run.status_changed",
        "run.deleted",
        "run.restored",
        "run.deleted",
        "run.purged",
        "experiment.deleted",
        "experiment.restored",
    ]
    events = list(store.iter_audit())
    assert events[0].actor == "carol" and events[0].object_type == "experiment"
    assert events[0].object_id == str(exp.id)
    assert events[1].before == {"name": "e"} and events[1].after == {"name": "e2"}
    assert events[2].before == {"a": "1"} and events[2].after == {"a": "2"}
    assert events[4].before == {"status": "RUNNING", "end_time": None}
    assert events[4].after == {"status": "FINISHED", "end_time": 9}
    assert [e.seq for e in events] == list(range(1, 12))
    assert store.audit_head() == (11, events[-1].hash)


def test_failed_change_writes_no_event(store: MetadataStore) -> None:
    store.create_experiment("e", actor=ACTOR)
    with pytest.raises(AlreadyExists):
        store.create_experiment("e", actor=ACTOR)
    run = new_run(store)
    store.set_run_status(run.id, RunStatus.FAILED, end_time=1, actor=ACTOR)
    with pytest.raises(InvalidState):
        store.set_run_status(run.id, RunStatus.RUNNING, end_time=None, actor=ACTOR)
    # no-ops are not events either
    store.set_run_status(run.id, RunStatus.FAILED, end_time=1, actor=ACTOR)
    store.set_run_lifecycle(run.id, Lifecycle.ACTIVE, actor=ACTOR)
    assert actions(store) == [
        "experiment.created",
        "experiment.created",
        "run.created",
        "run.status_changed",
    ]


def test_append_and_iter_audit(store: MetadataStore) -> None:
    assert store.audit_head() is None
    assert list(store.iter_audit()) == []
    for i in range(25):
        event = store.append_audit(
            actor="x",
            action="model.promoted",
            object_type="model",
            object_id=str(i),
            before={"stage": None},
            after={"stage": "prod", "ü": [1, 2.5]},
        )
        assert event.seq == i + 1
    events = list(store.iter_audit(batch=7))
    assert [e.seq for e in events] == list(range(1, 26))
    assert events[3].after == {"stage": "prod", "ü": [1, 2.5]}
    assert [e.seq for e in store.iter_audit(after_seq=20)] == [21, 22, 23, 24, 25]
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
    with pytest.raises(InvalidInput):
        store.append_audit(
            actor="x",
            action="a.b",
            object_type="a",
            object_id="1",
            before=None,
            after={"v": math.nan},
        )
    assert store.audit_head() == (25, events[-1].hash)


def test_schema_revision(store: MetadataStore) -> None:
    from mloop.store.migrate import head_revision

    assert store.schema_revision() == head_revision() == "0007"


def test_run_ids_are_hex_and_time_ordered(store: MetadataStore) -> None:
    import time

    exp = store.create_experiment("ids", actor=ACTOR)
    ids = []
    for _ in range(3):
        ids.append(new_run(store, exp.id).id)
        time.sleep(0.002)
    assert all(len(i) == 32 and int(i, 16) >= 0 and i == i.lower() for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == 3


def test_find_run_ids_by_prefix_or_suffix(store: MetadataStore) -> None:
    exp = store.create_experiment("find", actor=ACTOR)
    a = new_run(store, exp.id, run_id="aaaa0000bbbb1111cccc2222dddd3333")
    b = new_run(store, exp.id, run_id="aaaa0000bbbb1111cccc2222dddd4444")
    assert store.find_run_ids("dddd3333") == [a.id]
    assert store.find_run_ids("aaaa0000") == [a.id, b.id]
    assert store.find_run_ids("aaaa0000", limit=1) == [a.id]
    assert store.find_run_ids("cccc") == []  # in the middle: neither prefix nor suffix
    for bad in ("", "xyz", "a%", "a_b", "A" * 33):
        with pytest.raises(InvalidInput):
            store.find_run_ids(bad)
