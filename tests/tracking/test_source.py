"""Source and environment capture in temporary git repositories."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from mloop.tracking import TrackingClient, source


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    _git(root, "init", "-q", "-b", "main")
    _git(root, "config", "user.email", "t@example.com")
    _git(root, "config", "user.name", "t")
    _git(root, "remote", "add", "origin", "https://user:s3cret@example.com/org/repo.git")
    (root / "src" / "train.py").write_text("print('hi')\n")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "first")
    monkeypatch.chdir(root)
    monkeypatch.setattr("sys.argv", [str(root / "src" / "train.py")])
    source.clear_cache()
    return root


def test_clean_repo(client: TrackingClient, repo: Path) -> None:
    with client.start_run() as run:
        pass
    tags = client.get_run(run.id).tags
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    )
    assert tags["mloop.source.git"] == "ok"
    assert tags["mloop.source.git_commit"] == head.stdout.strip()
    assert tags["mloop.source.git_branch"] == "main"
    assert tags["mloop.source.git_dirty"] == "false"
    assert tags["mloop.source.git_remote"] == "https://example.com/org/repo.git"
    assert "s3cret" not in str(tags)
    assert tags["mloop.source.entry_point"] == "src/train.py"
    assert tags["mloop.python.version"].count(".") == 2
    paths = [a.path for a in client.list_artifacts(run.id)]
    assert paths == [source.REQUIREMENTS_ARTIFACT]
    requirements = client.artifacts.get_bytes(client.list_artifacts(run.id)[0].digest)
    assert b"psutil==" in requirements.lower() or b"psutil" in requirements
    assert tags["mloop.environment.requirements_sha256"] == hashlib.sha256(requirements).hexdigest()


def test_dirty_repo_logs_the_diff(client: TrackingClient, repo: Path) -> None:
    (repo / "src" / "train.py").write_text("print('changed')\n")
    with client.start_run() as run:
        pass
    with client.start_run() as run2:
        pass
    tags = client.get_run(run.id).tags
    assert tags["mloop.source.git_dirty"] == "true"
    [diff] = [a for a in client.list_artifacts(run.id) if a.path == source.DIFF_ARTIFACT]
    patch = client.artifacts.get_bytes(diff.digest)
    assert b"+print('changed')" in patch
    assert tags["mloop.source.git_diff_sha256"] == hashlib.sha256(patch).hexdigest()
    # identical environments share one blob
    first = {a.path: a.digest for a in client.list_artifacts(run.id)}
    second = {a.path: a.digest for a in client.list_artifacts(run2.id)}
    assert first == second


def test_no_repository(
    client: TrackingClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.setattr("sys.argv", ["-c"])
    source.clear_cache()
    with client.start_run() as run:
        pass
    tags = client.get_run(run.id).tags
    assert tags["mloop.source.git"] == "no-repo"
    assert "mloop.source.git_commit" not in tags


def test_no_git_binary(
    client: TrackingClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    source.clear_cache()
    with client.start_run() as run:
        pass
    assert client.get_run(run.id).tags["mloop.source.git"] == "no-git"


def test_capture_is_cached(repo: Path) -> None:
    assert source.capture_source() is source.capture_source()


def test_capture_off(client: TrackingClient, repo: Path) -> None:
    with client.start_run(capture_source=False) as run:
        pass
    assert not any(k.startswith("mloop.source") for k in client.get_run(run.id).tags)
    assert client.list_artifacts(run.id) == []


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("https://user:tok@github.com/a/b.git", "https://github.com/a/b.git"),
        ("https://tok@github.com:8443/a/b", "https://github.com:8443/a/b"),
        ("https://github.com/a/b?token=x", "https://github.com/a/b"),
        ("git@github.com:a/b.git", "github.com:a/b.git"),
        ("/srv/git/repo", "/srv/git/repo"),
    ],
)
def test_strip_credentials(url: str, clean: str) -> None:
    assert source.strip_credentials(url) == clean
