"""Every public verb refuses bad input with a specific error, and writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import mloop
from mloop.errors import InvalidInput, InvalidName, MloopError, NotFound, PayloadTooLarge
from mloop.tracking import ActiveRun, TrackingClient

CASES: list[tuple[str, Callable[[ActiveRun], Any], type[MloopError]]] = [
    ("empty metric key", lambda r: r.log_metric("", 1.0), InvalidName),
    ("metric key with ..", lambda r: r.log_metric("a/../b", 1.0), InvalidName),
    ("metric key leading /", lambda r: r.log_metric("/a", 1.0), InvalidName),
    ("metric key too long", lambda r: r.log_metric("k" * 251, 1.0), InvalidName),
    ("metric key not str", lambda r: r.log_metric(5, 1.0), InvalidName),  # type: ignore[arg-type]
    ("metric value str", lambda r: r.log_metric("m", "1.0"), InvalidInput),  # type: ignore[arg-type]
    ("metric value None", lambda r: r.log_metric("m", None), InvalidInput),  # type: ignore[arg-type]
    ("metric value bool", lambda r: r.log_metric("m", True), InvalidInput),
    ("metric step float", lambda r: r.log_metric("m", 1.0, step=1.5), InvalidInput),  # type: ignore[arg-type]
    ("metric step too big", lambda r: r.log_metric("m", 1.0, step=2**63), InvalidInput),
    ("metrics one bad", lambda r: r.log_metrics({"ok": 1.0, "bad": "x"}), InvalidInput),
    ("metrics not a mapping", lambda r: r.log_metrics([1.0]), InvalidInput),  # type: ignore[arg-type]
    ("param key bad", lambda r: r.log_param("a;b", 1), InvalidName),
    ("param value huge", lambda r: r.log_param("p", "x" * 6001), PayloadTooLarge),
    ("param value NUL", lambda r: r.log_param("p", "a\x00"), InvalidInput),
    ("params one bad", lambda r: r.log_params({"ok": 1, "": 2}), InvalidName),
    ("tag reserved", lambda r: r.set_tag("mloop.source.git_commit", "x"), InvalidName),
    ("tag value huge", lambda r: r.set_tag("t", "x" * 8001), PayloadTooLarge),
    ("tags one bad", lambda r: r.set_tags({"ok": 1, "bad\n": 2}), InvalidName),
    ("note huge", lambda r: r.set_note("x" * 100_001), PayloadTooLarge),
    ("note not text", lambda r: r.set_note(3), InvalidInput),  # type: ignore[arg-type]
    ("artifact traversal", lambda r: r.log_text("x", "../x"), InvalidInput),
    ("log_text not text", lambda r: r.log_text(b"x", "a.txt"), InvalidInput),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("what", "call", "error"), CASES, ids=[c[0] for c in CASES])
def test_run_verbs_refuse_and_write_nothing(
    client: TrackingClient, what: str, call: Callable[[ActiveRun], Any], error: type[MloopError]
) -> None:
    with client.start_run(capture_source=False) as run:
        with pytest.raises(error) as info:
            call(run)
        assert info.value.message  # a message that says what was wrong
    stored = client.get_run(run.id)
    assert stored.metrics == {} and stored.params == {}
    assert {k for k in stored.tags if not k.startswith("mloop.")} == set()
    assert "mloop.note" not in stored.tags
    assert client.list_artifacts(run.id) == []


def test_unicode_keys_and_nan_are_accepted(client: TrackingClient) -> None:
    with client.start_run(capture_source=False) as run:
        run.log_metric("точность/val", float("nan"))
        run.log_param("学习率", 0.1)
        run.set_tag("équipe", "risque")
    stored = client.get_run(run.id)
    assert "точность/val" in stored.metrics
    assert stored.params == {"学习率": "0.1"} and stored.tags["équipe"] == "risque"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"run_name": ""}, InvalidName),
        ({"run_name": " padded"}, InvalidName),
        ({"run_name": "x" * 257}, InvalidName),
        ({"experiment": "bad\x00name"}, InvalidName),
        ({"tags": {"mloop.x": "1"}}, InvalidName),
        ({"tags": {"t": "x" * 8001}}, PayloadTooLarge),
        ({"tags": ["not", "a", "mapping"]}, InvalidInput),
        ({"note": "x" * 100_001}, PayloadTooLarge),
        ({"log_system_metrics": -1}, InvalidInput),
        ({"log_system_metrics": "often"}, InvalidInput),
        ({"parent": "0" * 32}, NotFound),
        ({"experiment": 424242}, NotFound),
    ],
)
def test_start_run_refuses_and_creates_nothing(
    settings: mloop.Settings, kwargs: dict[str, Any], error: type[MloopError]
) -> None:
    with pytest.raises(error):
        mloop.start_run(**kwargs)
    assert mloop.active_run() is None
    assert mloop.search_runs(view="all") == []


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: mloop.create_experiment(""), InvalidName),
        (lambda: mloop.create_experiment("ok", tags={"": "x"}), InvalidName),
        (lambda: mloop.get_experiment("missing"), NotFound),
        (lambda: mloop.get_experiment(3.5), InvalidInput),
        (lambda: mloop.rename_experiment("missing", "x"), NotFound),
        (lambda: mloop.delete_experiment(999), NotFound),
        (lambda: mloop.set_experiment("trailing "), InvalidName),
        (lambda: mloop.get_run(""), InvalidInput),
        (lambda: mloop.get_run("0" * 32), NotFound),
        (lambda: mloop.get_metric_history("0" * 32, "m"), NotFound),
        (lambda: mloop.delete_run("0" * 32), NotFound),
        (lambda: mloop.search_runs("metrics.acc >>> 1"), InvalidInput),
        (lambda: mloop.search_runs(view="sideways"), InvalidInput),
        (lambda: mloop.search_runs(experiments=["missing"]), NotFound),
        (lambda: mloop.search_runs(page_token="garbage"), InvalidInput),
        (lambda: mloop.download_artifacts("0" * 32), NotFound),
        (lambda: mloop.end_run(status="DONE"), InvalidInput),
        (lambda: mloop.log_metric("m", 1.0), MloopError),
        (lambda: mloop.gc(grace=-1), InvalidInput),
    ],
)
def test_module_verbs_refuse(
    settings: mloop.Settings, call: Callable[[], Any], error: type[MloopError]
) -> None:
    if call.__code__.co_names[-1:] == ("end_run",):
        mloop.start_run(capture_source=False)
    with pytest.raises(error):
        call()
    mloop.end_run()
    assert [e.name for e in mloop.list_experiments(view="all")] in ([], ["Default"])
