"""Shared fixtures. Backend fixtures live in tests/fixtures/ (one module per backend)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.s3",
    "tests.fixtures.serving",
    "tests.fixtures.stores",
]


@pytest.fixture
def mloop_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty MLOOP_HOME in a temp folder, with every MLOOP_* variable cleared."""
    import os

    for name in list(os.environ):
        if name.startswith("MLOOP_") and not name.startswith("MLOOP_TEST_"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("MLOOP_HOME", str(home))
    yield home
