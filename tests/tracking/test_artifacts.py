"""Run artifacts: files, folders, text, dicts, download, gc."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import mloop
from mloop.errors import Conflict, InvalidArtifactPath, InvalidInput, InvalidState, NotFound
from mloop.store.base import RunStatus
from mloop.tracking import TrackingClient


def test_log_and_download(client: TrackingClient, tmp_path: Path) -> None:
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "roc.png").write_bytes(b"png")
    (tmp_path / "model" / "sub").mkdir(parents=True)
    (tmp_path / "model" / "w.bin").write_bytes(b"w" * 1000)
    (tmp_path / "model" / "sub" / "cfg.txt").write_text("cfg")
    with client.start_run(capture_source=False) as run:
        entry = run.log_artifact(tmp_path / "plots" / "roc.png")
        assert entry.path == "roc.png" and entry.size == 3 and len(entry.digest) == 64
        assert run.log_artifact(tmp_path / "plots" / "roc.png", "plots").path == "plots/roc.png"
        entries = run.log_artifacts(tmp_path / "model", artifact_path="model")
        assert [e.path for e in entries] == ["model/sub/cfg.txt", "model/w.bin"]
        run.log_text("hello", "notes/a.txt")
        run.log_dict({"a": 1, "b": [1, 2]}, "cfg.json")
    paths = [a.path for a in client.list_artifacts(run.id)]
    assert paths == [
        "cfg.json",
        "model/sub/cfg.txt",
        "model/w.bin",
        "notes/a.txt",
        "plots/roc.png",
        "roc.png",
    ]
    assert [a.path for a in client.list_artifacts(run.id, "model/")] == paths[1:3]
    one = client.download_artifacts(run.id, "model/w.bin", tmp_path / "dl1")
    assert one == tmp_path / "dl1" / "model" / "w.bin" and one.read_bytes() == b"w" * 1000
    folder = client.download_artifacts(run.id, "model", tmp_path / "dl2")
    assert (folder / "sub" / "cfg.txt").read_text() == "cfg"
    everything = client.download_artifacts(run.id, "", tmp_path / "dl3")
    assert json.loads((everything / "cfg.json").read_text()) == {"a": 1, "b": [1, 2]}
    assert (everything / "notes" / "a.txt").read_text() == "hello"
    with pytest.raises(NotFound):
        client.download_artifacts(run.id, "mod", tmp_path / "dl4")  # a prefix, not a folder


def test_fluent_artifacts(settings: mloop.Settings, tmp_path: Path) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "f.txt").write_text("x")
    with mloop.start_run(capture_source=False) as run:
        mloop.log_artifact(folder / "f.txt")
        mloop.log_artifacts(folder, "all")
    assert [a.path for a in mloop.list_artifacts(run.id)] == ["all/f.txt", "f.txt"]
    out = mloop.download_artifacts(run.id, "f.txt", tmp_path / "out")
    assert out.read_text() == "x"


@pytest.mark.parametrize(
    "bad", ["../escape.txt", "/abs.txt", "a/../../b", "%2e%2e/x", "a\\b", "C:/x", ""]
)
def test_traversal_paths_are_refused_before_upload(
    client: TrackingClient, tmp_path: Path, bad: str
) -> None:
    (tmp_path / "f.txt").write_text("secret-bytes")
    with client.start_run(capture_source=False) as run:
        with pytest.raises(InvalidArtifactPath):
            run.log_text("x", bad)
        if bad:
            with pytest.raises(InvalidArtifactPath):
                run.log_artifact(tmp_path / "f.txt", bad)
    assert client.list_artifacts(run.id) == []
    assert list(client.artifacts.iter_blobs()) == []  # nothing was uploaded either


def test_missing_local_files(client: TrackingClient, tmp_path: Path) -> None:
    with client.start_run(capture_source=False) as run:
        with pytest.raises(InvalidInput, match="no such file"):
            run.log_artifact(tmp_path / "nope.txt")
        with pytest.raises(InvalidInput, match="folder"):
            run.log_artifact(tmp_path)
        with pytest.raises(InvalidInput, match="not a folder"):
            run.log_artifacts(tmp_path / "nope")
        with pytest.raises(InvalidInput, match="JSON"):
            run.log_dict({"x": object()}, "a.json")
    assert client.list_artifacts(run.id) == []


def test_artifacts_of_unknown_run(client: TrackingClient) -> None:
    with pytest.raises(NotFound):
        client.list_artifacts("0" * 32)
    with pytest.raises(NotFound):
        client.log_bytes("0" * 32, b"x", "a.txt")


def test_gc_purges_deleted_runs_blobs(client: TrackingClient) -> None:
    with client.start_run(capture_source=False) as keep:
        keep.log_text("kept", "a.txt")
    with client.start_run(capture_source=False) as gone:
        gone.log_text("gone", "a.txt")
    client.delete_run(gone.id)
    dry = client.gc(grace=0, dry_run=True, purge_deleted=True)
    assert dry.dry_run and dry.deleted == 0
    report = client.gc(grace=0, purge_deleted=True)
    assert report.deleted == 1
    with pytest.raises(NotFound):
        client.get_run(gone.id)
    assert client.artifacts.get_bytes(client.list_artifacts(keep.id)[0].digest) == b"kept"


# -- references recorded with the end of a run -------------------------------------------------


def _blob(client: TrackingClient, data: bytes) -> tuple[str, int]:
    ref = client.artifacts.put_bytes(data)
    return ref.digest, ref.size


def test_end_records_artifacts_in_the_end_transaction(
    client: TrackingClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest, size = _blob(client, b"out")
    run = client.start_run(capture_source=False)
    run.log_metric("loss", 0.5)

    def apart(*args: object) -> None:
        raise AssertionError("the references go with the end, not in a transaction of their own")

    monkeypatch.setattr(client.store, "add_artifacts", apart)
    run.end(artifacts=[("outputs/0/value.json", digest, size), ("logs.txt", digest, size)])
    monkeypatch.undo()
    stored = client.get_run(run.id)
    assert stored.status is RunStatus.FINISHED and stored.metrics == {"loss": 0.5}
    listed = [(a.path, a.digest, a.size) for a in client.list_artifacts(run.id)]
    assert listed == [("logs.txt", digest, size), ("outputs/0/value.json", digest, size)]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (("../up.txt", "a" * 64, 1), "traversal|'\\.\\.'"),
        (("ok.txt", "not-a-digest", 1), "digest must be 64"),
        (("ok.txt", "a" * 64, -1), "size must be an int"),
        (("ok.txt", "a" * 64), r"\(path, digest, size\)"),
    ],
)
def test_end_refuses_bad_references_before_writing(
    client: TrackingClient, entry: tuple[object, ...], message: str
) -> None:
    run = client.start_run(capture_source=False)
    with pytest.raises((InvalidInput, InvalidArtifactPath), match=message):
        run.end(artifacts=[entry])  # type: ignore[list-item]
    assert not run.ended and client.get_run(run.id).status is RunStatus.RUNNING
    run.end()
    assert client.list_artifacts(run.id) == []


def test_end_of_an_ended_run_refuses_references(client: TrackingClient) -> None:
    digest, size = _blob(client, b"late")
    run = client.start_run(capture_source=False)
    run.end()
    run.end()  # ending twice stays harmless
    with pytest.raises(InvalidState, match="has ended"):
        run.end(artifacts=[("late.txt", digest, size)])
    assert client.list_artifacts(run.id) == []


def test_references_are_recorded_when_the_end_is_written_apart(
    client: TrackingClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The end's batch fails (here: the end alone); the client then records the references and
    # the status itself, as it did before the references travelled with the end.
    digest, size = _blob(client, b"apart")
    run = client.start_run(capture_source=False)
    real = client.store.write_batch

    def no_end(**batch: Any) -> None:
        if batch.get("end") is not None:
            raise Conflict("refused for the test")
        real(**batch)

    monkeypatch.setattr(client.store, "write_batch", no_end)
    run.end(artifacts=[("a.txt", digest, size)])
    monkeypatch.undo()
    assert client.get_run(run.id).status is RunStatus.FINISHED
    assert [a.path for a in client.list_artifacts(run.id)] == ["a.txt"]


def test_a_conflicting_reference_fails_the_run(client: TrackingClient) -> None:
    digest, size = _blob(client, b"other")
    run = client.start_run(capture_source=False)
    first = run.log_text("first", "x.txt")
    with pytest.raises(Conflict, match="already recorded"):
        run.end(artifacts=[("x.txt", digest, size)])
    assert client.get_run(run.id).status is RunStatus.FAILED
    assert [(a.path, a.digest) for a in client.list_artifacts(run.id)] == [("x.txt", first.digest)]
