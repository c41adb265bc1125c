"""FsspecBlobStore: optional backends, the S3 endpoint setting, temp-and-move writes."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mloop.artifacts.base import TEMP_FOLDER
from mloop.artifacts.fsspec import S3_ENDPOINT_ENV, FsspecBlobStore, _epoch
from mloop.errors import ConfigError, MissingExtra, NotFound


def test_missing_s3fs_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)  # makes `import s3fs` fail
    with pytest.raises(MissingExtra) as info:
        FsspecBlobStore("s3://bucket/prefix")
    assert info.value.details == {"extra": "s3", "module": "s3fs"}
    assert "pip install 'mloop[s3]'" in str(info.value)
    assert "The S3 artifact store" in str(info.value)


def test_unknown_scheme_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="nosuchproto"):
        FsspecBlobStore("nosuchproto://bucket/prefix")


def test_endpoint_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("s3fs")
    monkeypatch.setenv(S3_ENDPOINT_ENV, "http://127.0.0.1:9")
    store = FsspecBlobStore("s3://bucket/prefix")
    assert store._fs.client_kwargs["endpoint_url"] == "http://127.0.0.1:9"
    explicit = FsspecBlobStore(
        "s3://bucket/prefix", client_kwargs={"endpoint_url": "http://127.0.0.1:10"}
    )
    assert explicit._fs.client_kwargs["endpoint_url"] == "http://127.0.0.1:10"


def test_no_endpoint_without_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("s3fs")
    monkeypatch.delenv(S3_ENDPOINT_ENV, raising=False)
    store = FsspecBlobStore("s3://bucket/other-prefix")
    assert "endpoint_url" not in (store._fs.client_kwargs or {})


def test_non_atomic_file_system_writes_through_temp(tmp_path: Path) -> None:
    store = FsspecBlobStore((tmp_path / "store").as_uri())
    source = tmp_path / "src"
    source.write_bytes(b"payload")
    store.put([("ab/one", source), ("cd/two", source)])
    assert (tmp_path / "store" / "ab" / "one").read_bytes() == b"payload"
    assert list((tmp_path / "store" / TEMP_FOLDER).iterdir()) == []
    assert sorted(info.key for info in store.iter_keys()) == ["ab/one", "cd/two"]


def test_temp_leftovers_are_hidden_and_cleaned(tmp_path: Path) -> None:
    store = FsspecBlobStore((tmp_path / "store").as_uri())
    temp = tmp_path / "store" / TEMP_FOLDER
    temp.mkdir(parents=True)
    (temp / "abandoned.part").write_bytes(b"partial")
    assert list(store.iter_keys()) == []
    assert store.cleanup_temporary(3600) == 0
    assert store.cleanup_temporary(0) == 1
    assert list(temp.iterdir()) == []


def test_missing_source_file(tmp_path: Path) -> None:
    store = FsspecBlobStore((tmp_path / "store").as_uri())
    with pytest.raises(NotFound, match="no such file"):
        store.put([("ab/x", tmp_path / "missing")])


def test_missing_key_is_not_found(tmp_path: Path) -> None:
    store = FsspecBlobStore((tmp_path / "store").as_uri())
    with pytest.raises(NotFound, match="ab/x"):
        store.open("ab/x")
    with pytest.raises(NotFound, match="ab/x"):
        store.get([("ab/x", tmp_path / "out")])
    store.delete(["ab/x"])  # deleting what is not there is fine


@pytest.mark.s3
def test_s3_endpoint_fixture_is_used(s3_artifact_uri: str, tmp_path: Path) -> None:
    store = FsspecBlobStore(s3_artifact_uri)
    source = tmp_path / "src"
    source.write_bytes(b"on the server")
    store.put([("ab/key", source)])
    assert store.exists(["ab/key", "ab/other"]) == {"ab/key"}
    # Listings are not cached for S3, so writes by others show at once.
    other = FsspecBlobStore(s3_artifact_uri)
    assert [info.key for info in other.iter_keys()] == ["ab/key"]
    store.put([("cd/key", source)])
    assert [info.key for info in other.iter_keys()] == ["ab/key", "cd/key"]
    assert other.exists(["cd/key"]) == {"cd/key"}
    (info, _) = other.iter_keys()
    assert info.size == len(b"on the server")
    assert abs(info.modified - time.time()) < 60
    assert store.cleanup_temporary(0) == 0


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        ({"mtime": 1700000000.5}, 1700000000.5),
        ({"LastModified": datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)}, 1700000000.0),
        ({"updated": "2023-11-14T22:13:20Z"}, 1700000000.0),
        ({"created": 1700000000}, 1700000000.0),
        ({"updated": "not a date"}, 0.0),
        ({}, 0.0),
    ],
)
def test_epoch(info: dict[str, object], expected: float) -> None:
    assert _epoch(info) == expected
