"""Fixtures for the autologging tests: a fresh MLOOP_HOME and default client, autolog off after."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import mloop.autolog as autolog_module
from mloop.tracking import reset_default_client


@pytest.fixture(autouse=True)
def home(mloop_home: Path, caplog: pytest.LogCaptureFixture) -> Iterator[Path]:
    """An empty MLOOP_HOME, a new default client, and autologging switched off afterwards.

    Warnings are errors in this suite, so autologging reports its failures as log records
    instead: none may appear unless a test expects them."""
    reset_default_client()
    caplog.set_level(logging.WARNING, logger="mloop.autolog")
    yield mloop_home
    autolog_module.autolog(disable=True)
    reset_default_client()
    reported = [r.getMessage() for r in caplog.records if r.name == "mloop.autolog"]
    assert reported == []


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    """A small binary classification problem that every model fits without warnings."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    y = (x[:, 0] + 0.3 * rng.normal(size=120) > 0).astype(int)
    return x, y
