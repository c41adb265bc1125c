"""Runs through the fluent API and the client: lifecycle, nesting, metrics, params, tags."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

import mloop
from mloop.errors import InvalidState, NotFound, ParamConflict
from mloop.store.base import RunStatus
from mloop.tracking import TrackingClient


def test_fluent_run_round_trip(settings: mloop.Settings) -> None:
    with mloop.start_run(experiment="fraud", run_name="baseline", tags={"team": "risk"}) as run:
        run.log_params({"lr": 0.01, "depth": 6})
        run.log_param("seed", 1)
        run.log_metric("loss", 0.3, step=3)
        run.log_metrics({"acc": 0.9, "f1": 0.8}, step=3)
        run.set_tags({"stage": "dev"})
        run.set_note("# notes")
        assert mloop.active_run() is run
        info = run.info
        assert info.status is RunStatus.RUNNING
        assert info.params == {"lr": "0.01", "depth": "6", "seed": "1"}
    assert mloop.active_run() is None
    stored = mloop.get_run(run.id)
    assert stored.status is RunStatus.FINISHED
    assert stored.name == "baseline"
    assert stored.end_time is not None and stored.end_time >= stored.start_time
    assert stored.metrics == {"loss": 0.3, "acc": 0.9, "f1": 0.8}
    assert stored.tags["team"] == "risk" and stored.tags["stage"] == "dev"
    assert stored.tags["mloop.note"] == "# notes"
    assert mloop.get_experiment("fraud").id == run.experiment_id == stored.experiment_id


def test_generated_name_and_default_experiment(settings: mloop.Settings) -> None:
    with mloop.start_run() as run:
        pass
    assert mloop.get_run(run.id).name.count("-") == 2
    assert mloop.get_experiment(run.experiment_id).name == settings.default_experiment
    mloop.set_experiment("chosen")
    with mloop.start_run() as run2:
        pass
    assert mloop.get_experiment(run2.experiment_id).name == "chosen"


def test_nested_runs(settings: mloop.Settings) -> None:
    with mloop.start_run(experiment="nest") as parent:
        with mloop.start_run(nested=True) as child:
            assert mloop.active_run() is child
            mloop.log_metric("inner", 1.0)
        assert mloop.active_run() is parent
        with pytest.raises(InvalidState, match="already active"):
            mloop.start_run()
        by_id = mloop.start_run(parent=parent.id)
        mloop.end_run()
    assert mloop.get_run(child.id).parent_id == parent.id
    assert mloop.get_run(child.id).experiment_id == parent.experiment_id
    assert mloop.get_run(by_id.id).parent_id == parent.id
    assert mloop.get_run(by_id.id).status is RunStatus.FINISHED


def test_unknown_parent_raises_not_found(settings: mloop.Settings) -> None:
    with pytest.raises(NotFound):
        mloop.start_run(parent="0" * 32)
    assert mloop.search_runs(view="all") == []


def test_child_run_takes_the_parents_experiment_without_reading_it(
    client: TrackingClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = client.start_run("family")

    def no_read(*args: object) -> None:
        raise AssertionError("the parent's experiment id is known: no read needed")

    monkeypatch.setattr(client.store, "get_experiment", no_read)
    monkeypatch.setattr(client.store, "get_experiment_by_name", no_read)
    child = client.start_run(parent=parent, capture_source=False)
    child.end()
    parent.end()
    monkeypatch.undo()
    assert client.get_run(child.id).experiment_id == parent.experiment_id
    assert client.get_run(child.id).parent_id == parent.id


def test_child_of_a_run_in_a_deleted_experiment_is_refused(client: TrackingClient) -> None:
    parent = client.start_run("doomed")
    client.delete_experiment("doomed")
    with pytest.raises(InvalidState, match="deleted"):
        client.start_run(parent=parent, capture_source=False)
    assert [r.id for r in client.search_runs(view="all")] == [parent.id]
    client.restore_experiment("doomed")
    parent.end()


def test_exception_marks_failed_and_reraises(settings: mloop.Settings) -> None:
    with pytest.raises(ZeroDivisionError), mloop.start_run() as run:
        run.log_metric("x", 1)
        _ = 1 / 0
    assert mloop.get_run(run.id).status is RunStatus.FAILED
    assert mloop.get_run(run.id).metrics == {"x": 1.0}


def test_keyboard_interrupt_marks_killed(settings: mloop.Settings) -> None:
    with pytest.raises(KeyboardInterrupt), mloop.start_run() as run:
        raise KeyboardInterrupt
    assert mloop.get_run(run.id).status is RunStatus.KILLED


def test_end_run_with_status_and_logging_after_end(settings: mloop.Settings) -> None:
    run = mloop.start_run()
    mloop.end_run(status="KILLED")
    assert mloop.get_run(run.id).status is RunStatus.KILLED
    with pytest.raises(InvalidState, match="has ended"):
        run.log_metric("x", 1)
    with pytest.raises(InvalidState, match="no active run"):
        mloop.log_metric("x", 1)
    mloop.end_run()  # no active run: a no-op


def test_auto_steps_per_key(settings: mloop.Settings) -> None:
    with mloop.start_run() as run:
        for value in (1.0, 2.0, 3.0):
            run.log_metric("a", value)
        run.log_metric("b", 5.0)
        run.log_metric("a", 4.0, step=10)
        run.log_metric("a", 5.0)  # one more than the last step of this key
        run.log_metrics({"a": 6.0, "b": 6.0})
    steps = [m.step for m in mloop.get_metric_history(run.id, "a")]
    assert steps == [0, 1, 2, 10, 11, 12]
    assert [m.step for m in mloop.get_metric_history(run.id, "b")] == [0, 1]


def test_nan_and_infinities_round_trip(settings: mloop.Settings) -> None:
    with mloop.start_run() as run:
        for value in (float("nan"), float("inf"), float("-inf"), np.float32(0.5), 7):
            run.log_metric("v", value)
    history = mloop.get_metric_history(run.id, "v")
    assert math.isnan(history[0].value)
    assert [m.value for m in history[1:]] == [math.inf, -math.inf, 0.5, 7.0]
    assert all(isinstance(m.timestamp, int) and m.timestamp > 0 for m in history)


def test_params_are_immutable_immediately(settings: mloop.Settings) -> None:
    with mloop.start_run() as run:
        run.log_param("lr", 0.1)
        run.log_param("lr", 0.1)  # same value: a no-op
        with pytest.raises(ParamConflict, match=r"'lr' was already logged as '0.1'"):
            run.log_param("lr", 0.2)
        with pytest.raises(ParamConflict):
            run.log_params({"new": 1, "lr": 0.3})
    # nothing of the refused call was written, not even the valid key before it
    assert mloop.get_run(run.id).params == {"lr": "0.1"}


def test_active_run_is_per_thread(settings: mloop.Settings) -> None:
    seen: list[object] = []
    with mloop.start_run() as run:
        thread = threading.Thread(target=lambda: seen.append(mloop.active_run()))
        thread.start()
        thread.join()
        assert mloop.active_run() is run
    assert seen == [None]


def test_threads_log_to_one_run(client: TrackingClient) -> None:
    with client.start_run(capture_source=False) as run:

        def work(n: int) -> None:
            for i in range(500):
                run.log_metric(f"t{n}", float(i), step=i)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for n in range(4):
        assert len(client.get_metric_history(run.id, f"t{n}")) == 500


def test_flush_makes_points_durable(client: TrackingClient) -> None:
    run = client.start_run(capture_source=False)
    for i in range(1234):
        run.log_metric("m", float(i))
    run.flush()
    # read through a second client: the points are in the database, not in memory
    with TrackingClient(client.settings) as other:
        assert len(other.get_metric_history(run.id, "m")) == 1234
    run.end()


def test_client_close_ends_active_runs(settings: mloop.Settings) -> None:
    tracking = TrackingClient(settings)
    run = tracking.start_run(capture_source=False)
    run.log_metric("m", 1.0)
    tracking.close()
    with TrackingClient(settings) as other:
        stored = other.get_run(run.id)
    assert stored.status is RunStatus.FINISHED and stored.metrics == {"m": 1.0}


def test_experiments_verbs(settings: mloop.Settings) -> None:
    exp = mloop.create_experiment("e1", tags={"owner": "me"})
    assert exp.tags == {"owner": "me"}
    assert (
        mloop.get_experiment(exp.id)
        == mloop.get_experiment("e1")
        == mloop.get_experiment(str(exp.id))
    )
    mloop.rename_experiment("e1", "e2")
    assert mloop.get_experiment(exp.id).name == "e2"
    with pytest.raises(NotFound, match="no experiment named 'e1'"):
        mloop.get_experiment("e1")
    with mloop.start_run(experiment="e2") as run:
        pass
    mloop.delete_experiment("e2")
    assert "e2" not in [e.name for e in mloop.list_experiments()]
    assert "e2" in [e.name for e in mloop.list_experiments(view="deleted")]
    with pytest.raises(InvalidState, match="deleted"):
        mloop.start_run(experiment="e2")
    with pytest.raises(InvalidState, match="deleted"):
        mloop.set_experiment("e2")
    mloop.restore_experiment("e2")
    assert mloop.get_run(run.id).lifecycle == "active"


def test_delete_and_restore_run_and_search(settings: mloop.Settings) -> None:
    ids = []
    for lr in (0.1, 0.2, 0.3):
        with mloop.start_run(experiment="s") as run:
            run.log_param("lr", lr)
            run.log_metric("acc", lr * 2)
        ids.append(run.id)
    page = mloop.search_runs("metrics.acc > 0.3", experiments=["s"], order_by="metrics.acc DESC")
    assert [r.id for r in page] == [ids[2], ids[1]]
    assert page.next_token is None
    first = mloop.search_runs(experiments="s", max_results=2, order_by=["params.lr"])
    assert len(first) == 2 and first.next_token
    rest = mloop.search_runs(
        experiments="s", max_results=2, order_by=["params.lr"], page_token=first.next_token
    )
    assert [r.id for r in [*first, *rest]] == ids
    mloop.delete_run(ids[0])
    assert ids[0] not in [r.id for r in mloop.search_runs()]
    assert [r.id for r in mloop.search_runs(view="deleted")] == [ids[0]]
    mloop.restore_run(ids[0])
    assert len(mloop.search_runs()) == 3


def test_verify_audit_after_activity(settings: mloop.Settings) -> None:
    with mloop.start_run() as run:
        run.log_metric("m", 1)
    report = mloop.verify_audit()
    assert report.ok and report.events_checked >= 3


def test_log_batch_points_params_and_tags(settings: mloop.Settings) -> None:
    with mloop.start_run(experiment="batch") as run:
        run.log_batch(
            metrics=[("loss", 0.5, 0), ("loss", 0.4, None), ("acc", 0.9, 7, 1_700_000_000_000)],
            params={"lr": 0.1},
            tags={"team": "risk"},
        )
        mloop.log_batch(metrics=[("loss", 0.3, None)])
    history = mloop.get_metric_history(run.id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.5), (1, 0.4), (2, 0.3)]
    acc = mloop.get_metric_history(run.id, "acc")[0]
    assert (acc.step, acc.timestamp) == (7, 1_700_000_000_000)
    stored = mloop.get_run(run.id)
    assert stored.params == {"lr": "0.1"} and stored.tags["team"] == "risk"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"metrics": [("ok", 1.0, 0), ("bad", "x", 1)]}, "bad"),
        ({"metrics": [("ok", 1.0, 0), ("short", 1.0)]}, "tuples"),
        ({"metrics": [("ok", 1.0, 0), ("t", 1.0, 0, -5)]}, "timestamp"),
        ({"metrics": [("ok", 1.0, 0)], "params": {"lr": 0.2}}, "immutable"),
        ({"metrics": [("ok", 1.0, 0)], "tags": {"mloop.x": "1"}}, "mloop."),
    ],
)
def test_log_batch_is_all_or_nothing(
    settings: mloop.Settings, kwargs: dict[str, object], error: str
) -> None:
    with mloop.start_run(experiment="batch-bad") as run:
        run.log_param("lr", 0.1)
        with pytest.raises(mloop.errors.MloopError, match=error):
            run.log_batch(**kwargs)  # type: ignore[arg-type]
    stored = mloop.get_run(run.id)
    assert stored.metrics == {} and stored.params == {"lr": "0.1"}
    assert not any(k.startswith("mloop.x") for k in stored.tags)


def test_resolve_run_id(client: TrackingClient) -> None:
    with client.start_run(capture_source=False) as run:
        pass
    assert client.resolve_run_id(run.id) == run.id
    assert client.resolve_run_id(run.id[-8:]) == run.id
    assert client.resolve_run_id(run.id[:14].upper()) == run.id
    with pytest.raises(mloop.errors.InvalidInput, match="too short"):
        client.resolve_run_id(run.id[-5:])
    with pytest.raises(NotFound):
        client.resolve_run_id("0123456789")
    with client.start_run(capture_source=False):
        pass
    with pytest.raises(mloop.errors.InvalidInput, match="several runs"):
        client.resolve_run_id(run.id[:6])  # both runs start with the same millisecond prefix
