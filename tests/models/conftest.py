"""Shared fixtures for packaged-model tests: small data and a helper that re-signs a package."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mloop.artifacts.cas import hash_file
from mloop.models import MANIFEST_FILE


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 60
    return pd.DataFrame(
        {
            "amount": rng.random(n) * 100,
            "count": rng.integers(0, 10, n),
            "score": rng.random(n),
        }
    )


@pytest.fixture
def labels(frame: pd.DataFrame) -> np.ndarray:
    return (frame["amount"] > 50).astype(int).to_numpy()


def resign(folder: Path) -> None:
    """Recompute every digest in the manifest, as an attacker who controls the folder would."""
    path = folder / MANIFEST_FILE
    data = json.loads(path.read_text())
    data["files"] = {
        name: {"sha256": hash_file(folder / name).digest, "size": (folder / name).stat().st_size}
        for name in data["files"]
    }
    path.write_text(json.dumps(data))
