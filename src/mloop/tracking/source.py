"""Source and environment capture: which code, on which Python, with which packages.

Captured once per process (and per working folder and entry point), because none of it changes
while a process runs and a training script may start thousands of runs. Git is asked through
``git`` subprocesses with a short timeout; no ``git``, no repository, or a slow one is recorded
in the tags (``mloop.source.git``), never raised.

System tags written on every run:

==================================== ==================================================
``mloop.source.git``                 ``ok``, ``no-repo``, ``no-git`` or ``error``
``mloop.source.git_commit``          full commit hash of HEAD
``mloop.source.git_branch``          branch name (``HEAD`` when detached)
``mloop.source.git_dirty``           ``true`` when tracked files differ from HEAD
``mloop.source.git_diff_sha256``     SHA-256 of ``git diff HEAD`` (when dirty)
``mloop.source.git_remote``          URL of ``origin``, credentials stripped
``mloop.source.entry_point``         ``sys.argv[0]``, relative to the repository root
``mloop.python.version``             e.g. ``3.11.7``
``mloop.python.implementation``      e.g. ``CPython``
``mloop.platform``                   e.g. ``Linux-6.1-x86_64``
``mloop.environment.requirements_sha256``  digest of the requirements artifact
==================================== ==================================================

Artifacts: ``mloop/source/diff.patch`` (when dirty, up to 5 MB) and
``mloop/environment/requirements.txt`` (sorted ``name==version`` of every installed
distribution; content-addressed, so runs in one environment share one blob).
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "DIFF_ARTIFACT",
    "REQUIREMENTS_ARTIFACT",
    "SourceInfo",
    "capture_source",
    "clear_cache",
    "requirements_text",
    "strip_credentials",
]

DIFF_ARTIFACT = "mloop/source/diff.patch"
REQUIREMENTS_ARTIFACT = "mloop/environment/requirements.txt"
_GIT_TIMEOUT = 3.0
_MAX_DIFF_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class SourceInfo:
    """What one capture found: system tags and the bytes of the artifacts to log."""

    tags: dict[str, str]
    artifacts: dict[str, bytes] = field(default_factory=dict)


def strip_credentials(url: str) -> str:
    """Return a remote URL without any user, password or token in it."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if parts.scheme and parts.netloc:
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))
    if "@" in url and ":" in url.split("@", 1)[1]:
        # scp-like "user@host:path": the user is an account name, not a secret, but a
        # "user:token@host:path" form is — keep only the host and path.
        return url.split("@", 1)[1]
    return url


def _git(args: list[str], cwd: Path) -> bytes | None:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            timeout=_GIT_TIMEOUT,
            check=False,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _text(raw: bytes | None) -> str:
    return raw.decode("utf-8", "replace").strip() if raw is not None else ""


def _entry_point(root: Path | None) -> str:
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if not argv0 or argv0 in ("-c", "-m"):
        return argv0 or "<interactive>"
    path = Path(argv0)
    if root is not None:
        try:
            return path.resolve().relative_to(root).as_posix()
        except (OSError, ValueError):
            pass
    return path.name


def _git_tags(start: Path) -> tuple[dict[str, str], bytes | None]:
    if shutil.which("git") is None:
        return {"mloop.source.git": "no-git"}, None
    top = _git(["rev-parse", "--show-toplevel"], start)
    if top is None:
        return {"mloop.source.git": "no-repo"}, None
    root = Path(_text(top)).resolve()
    commit = _text(_git(["rev-parse", "--verify", "-q", "HEAD"], root))
    tags = {"mloop.source.git": "ok", "mloop.source.entry_point": _entry_point(root)}
    if not commit:
        tags["mloop.source.git_commit"] = ""  # a repository without commits yet
        return tags, None
    tags["mloop.source.git_commit"] = commit
    tags["mloop.source.git_branch"] = _text(_git(["rev-parse", "--abbrev-ref", "HEAD"], root))
    remote = _text(_git(["config", "--get", "remote.origin.url"], root))
    if remote:
        tags["mloop.source.git_remote"] = strip_credentials(remote)
    diff = _git(["diff", "HEAD", "--binary", "--no-color", "--no-ext-diff"], root)
    if diff is None:
        tags["mloop.source.git"] = "error"
        return tags, None
    tags["mloop.source.git_dirty"] = "true" if diff else "false"
    if not diff:
        return tags, None
    tags["mloop.source.git_diff_sha256"] = hashlib.sha256(diff).hexdigest()
    if len(diff) > _MAX_DIFF_BYTES:
        tags["mloop.source.git_diff_logged"] = "false (larger than 5 MB)"
        return tags, None
    return tags, diff


def requirements_text() -> bytes:
    """Sorted ``name==version`` lines of every installed distribution, as UTF-8."""
    seen: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata is not None else None
        if name:
            seen.setdefault(name.lower().replace("_", "-"), f"{name}=={dist.version}")
    return "".join(f"{line}\n" for _, line in sorted(seen.items())).encode("utf-8")


_cache: dict[tuple[str, str], SourceInfo] = {}
_cache_lock = threading.Lock()


def capture_source() -> SourceInfo:
    """Capture source and environment for the current folder and entry point (cached)."""
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = ""
    argv0 = sys.argv[0] if sys.argv else ""
    key = (cwd, argv0)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            return cached
        info = _capture(Path(cwd) if cwd else None, argv0)
        _cache[key] = info
        return info


def _capture(cwd: Path | None, argv0: str) -> SourceInfo:
    # Search from the entry point's folder if it is a file, so running a script by path from
    # elsewhere still finds its repository.
    start = cwd
    if argv0 and argv0 not in ("-c", "-m") and Path(argv0).is_file():
        start = Path(argv0).resolve().parent
    if start is None:
        tags: dict[str, str] = {"mloop.source.git": "no-repo"}
        diff = None
    else:
        tags, diff = _git_tags(start)
    tags.setdefault("mloop.source.entry_point", _entry_point(None))
    requirements = requirements_text()
    tags["mloop.python.version"] = platform.python_version()
    tags["mloop.python.implementation"] = platform.python_implementation()
    tags["mloop.platform"] = platform.platform(terse=True)
    tags["mloop.environment.requirements_sha256"] = hashlib.sha256(requirements).hexdigest()
    artifacts = {REQUIREMENTS_ARTIFACT: requirements}
    if diff is not None:
        artifacts[DIFF_ARTIFACT] = diff
    return SourceInfo(tags=tags, artifacts=artifacts)


def clear_cache() -> None:
    """Forget captured source (for tests, or after changing folder or checking out code)."""
    with _cache_lock:
        _cache.clear()
