"""Table outputs of steps become dataset versions, with lineage from step to step."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mloop.store.base import DatasetKind
from mloop.tracking import TrackingClient, reset_default_client

PKG = "lineageproj"
FLOW = """
import pandas as pd

from mloop.pipelines import pipeline, step


@step
def raw(n: int) -> pd.DataFrame:
    return pd.DataFrame({"x": list(range(n)), "y": [i * 2.0 for i in range(n)]})


@step
def clean(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["x"] % 2 == 0].reset_index(drop=True)


@step
def count(df: pd.DataFrame) -> int:
    return len(df)


@pipeline
def flow(n: int = 10):
    count(clean(raw(n)))
"""


@pytest.fixture
def client(
    mloop_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TrackingClient]:
    package = tmp_path / "src" / PKG
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "flows.py").write_text(FLOW)
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    reset_default_client()
    with TrackingClient() as tracking:
        yield tracking
    reset_default_client()
    for name in [m for m in sys.modules if m == PKG or m.startswith(PKG + ".")]:
        del sys.modules[name]


def test_table_outputs_are_dataset_versions_with_lineage(client: TrackingClient) -> None:
    import importlib

    import mloop.data

    flows = importlib.import_module(f"{PKG}.flows")
    result = flows.flow.run(client=client, n=10)
    raw_v = mloop.data.lookup("flow.raw", client=client)
    clean_v = mloop.data.lookup("flow.clean", client=client)
    assert (raw_v.kind, raw_v.num_rows, clean_v.num_rows) == (DatasetKind.TABLE, 10, 5)
    assert clean_v.parents == ("flow.raw@v1",)
    assert clean_v.run_id == result["clean"].run_id
    assert mloop.data.load(clean_v, client=client).num_rows == 5
    inputs = client.list_inputs(result["count"].run_id)
    assert [(i.version.ref, i.context) for i in inputs] == [("flow.clean@v1", "df")]
    # A cached re-run finds the same versions; other params make new ones.
    flows.flow.run(client=client, n=10)
    assert len(mloop.data.list_versions("flow.raw", client=client)) == 1
    flows.flow.run(client=client, n=12)
    assert len(mloop.data.list_versions("flow.raw", client=client)) == 2
