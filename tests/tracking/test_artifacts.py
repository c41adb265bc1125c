"""Run artifacts: files, folders, text, dicts, download, gc."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mloop
from mloop.errors import InvalidArtifactPath, InvalidInput, NotFound
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
