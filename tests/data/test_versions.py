"""Dataset versions of tables: register, look up, load, materialise, diff, lineage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mloop
from mloop.data import versions
from mloop.data.digest import table_digest
from mloop.errors import InvalidInput, InvalidName, InvalidState, NotFound
from mloop.store.base import DatasetKind
from mloop.tracking import TrackingClient, reset_default_client


def frame(n: int = 100, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": rng.gamma(2.0, 30.0, n),
            "country": rng.choice(["FR", "DE", "US"], n),
            "fraud": rng.integers(0, 2, n),
        }
    )


def test_register_table_and_same_content_is_same_version(client: TrackingClient) -> None:
    df = frame()
    v1 = versions.register("tx", df, client=client, tags={"source": "test"})
    assert (v1.ref, v1.kind, v1.num_rows) == ("tx@v1", DatasetKind.TABLE, 100)
    assert [c["name"] for c in v1.schema or []] == ["amount", "country", "fraud"]
    assert v1.profile is not None and v1.profile["rows"] == 100
    assert v1.tags == {"source": "test"}
    # Same rows from another producer (Arrow, in two chunks): the same version.
    table = pa.Table.from_pandas(df, preserve_index=False)
    again = versions.register("tx", pa.concat_tables([table.slice(0, 40), table.slice(40)]),
                              client=client)  # fmt: skip
    assert again.id == v1.id
    changed = df.copy()
    changed.loc[0, "amount"] = -1.0
    v2 = versions.register("tx", changed, client=client, parents=["tx@v1"])
    assert v2.ref == "tx@v2"
    assert v2.parents == ("tx@v1",)
    assert versions.lookup("tx", client=client).id == v2.id
    assert versions.lookup("tx@v1", client=client).id == v1.id


def test_register_file_load_and_get(client: TrackingClient, tmp_path: Path) -> None:
    df = frame()
    path = tmp_path / "tx.csv"
    df.to_csv(path, index=False)
    version = versions.register("tx", str(path), client=client)
    loaded = versions.load("tx@v1", client=client)
    assert loaded.num_rows == 100
    assert table_digest(loaded) == version.digest
    assert versions.load(version, columns=["fraud"], client=client).column_names == ["fraud"]
    out = versions.get("tx@v1", tmp_path / "out.parquet", client=client)
    assert table_digest(pq.read_table(out)) == version.digest
    folder = tmp_path / "folder"
    folder.mkdir()
    assert versions.get("tx", folder, client=client) == folder / "tx.parquet"
    with pytest.raises(InvalidState, match="exists"):
        versions.get("tx", out, client=client)
    versions.get("tx", out, overwrite=True, client=client)


def test_stored_parquet_has_page_checksums(client: TrackingClient, tmp_path: Path) -> None:
    version = versions.register("tx", frame(), client=client)
    out = versions.get(version, tmp_path / "x.parquet", client=client)
    metadata = pq.ParquetFile(out).metadata
    assert metadata.num_rows == 100


def test_diff_schema_and_statistics(client: TrackingClient) -> None:
    df = frame()
    versions.register("tx", df, client=client)
    newer = df.drop(columns=["country"]).assign(channel="web", amount=df["amount"] * 2)
    versions.register("tx", newer, client=client)
    result = versions.diff("tx@v1", "tx@v2", client=client)
    assert result.changed
    assert result.added_columns == ["channel"]
    assert result.removed_columns == ["country"]
    stats = {(c, s) for c, s, _, _ in result.stat_changes}
    assert ("amount", "mean") in stats
    assert ("fraud", "mean") not in stats
    body = result.to_dict()
    assert body["columns"]["added"] == ["channel"]
    same = versions.diff("tx@v1", "tx@v1", client=client)
    assert not same.changed


def test_type_change_in_diff(client: TrackingClient) -> None:
    versions.register("t", pd.DataFrame({"x": [1, 2, 3]}), client=client)
    versions.register("t", pd.DataFrame({"x": [1.0, 2.0, 3.5]}), client=client)
    assert versions.diff("t@v1", "t@v2", client=client).type_changes == [("x", "int64", "double")]


def test_log_input_links_runs(client: TrackingClient) -> None:
    version = versions.register("tx", frame(), client=client)
    with client.start_run(experiment="e") as run:
        run.log_input(version, context="training")
        run.log_input("tx@v1", context="evaluation")
    inputs = client.list_inputs(run.id)
    assert sorted((i.version.ref, i.context) for i in inputs) == [
        ("tx@v1", "evaluation"),
        ("tx@v1", "training"),
    ]
    assert client.store.list_version_consumers(version.id)[0][0] == run.id


def test_fluent_register_and_log_input(mloop_home: Path) -> None:
    version = mloop.data.register("tx", frame())
    with mloop.start_run(experiment="e") as run:
        mloop.log_input(version)
    produced = mloop.data.register("scored", frame(seed=1), run=run, parents=[version])
    assert produced.run_id == run.id
    assert mloop.data.lookup("scored").parents == ("tx@v1",)
    reset_default_client()


def test_validation_results_are_stored(client: TrackingClient) -> None:
    df = frame()
    version = versions.register("tx", df, client=client)
    suite = mloop.data.suggest_expectations(df, name="tx")
    result = mloop.data.validate(df, suite)
    record = versions.record_validation(result, dataset=version, client=client)
    assert record.success
    (stored,) = client.store.list_validation_results(version_id=version.id)
    assert stored.suite == "tx"
    assert stored.body == record.body


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        (pd.DataFrame(), InvalidInput, "no columns"),
        (object(), InvalidInput, "unsupported data"),
        ("/nonexistent/file.parquet", NotFound, "no such file"),
    ],
)
def test_bad_input_registers_nothing(
    client: TrackingClient, data: object, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        versions.register("tx", data, client=client)
    assert client.store.list_datasets() == []


def test_bad_names_and_refs(client: TrackingClient, tmp_path: Path) -> None:
    with pytest.raises(InvalidName):
        versions.register("bad name", frame(), client=client)
    with pytest.raises(NotFound):
        versions.lookup("missing@v1", client=client)
    with pytest.raises(NotFound):
        versions.register("tx", frame(), parents=["missing@v1"], client=client)
    with pytest.raises(InvalidInput, match="kind"):
        versions.register("tx", frame(), kind="images", client=client)
    corrupt = tmp_path / "bad.parquet"
    corrupt.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(InvalidInput, match=r"bad\.parquet"):
        versions.register("tx", str(corrupt), client=client)
    assert client.store.list_datasets() == []


def test_empty_rows_and_all_null_columns_register(client: TrackingClient) -> None:
    empty = pd.DataFrame({"x": pd.Series([], dtype="float64")})
    assert versions.register("empty", empty, client=client).num_rows == 0
    nulls = pd.DataFrame({"x": [None, None], "y": [1, 2]})
    version = versions.register("nulls", nulls, client=client)
    assert version.num_rows == 2
    assert versions.load(version, client=client).column("x").null_count == 2


def test_blobs_survive_gc(client: TrackingClient) -> None:
    version = versions.register("tx", frame(), client=client)
    client.gc(grace=0)
    assert versions.load(version, client=client).num_rows == 100


def make_tree(root: Path) -> Path:
    (root / "imgs" / "cats").mkdir(parents=True)
    (root / "imgs" / "cats" / "a.bin").write_bytes(b"a" * 1000)
    (root / "imgs" / "cats" / "b.bin").write_bytes(b"b" * 2000)
    (root / "imgs" / "readme.txt").write_text("hello\n")
    return root / "imgs"


def test_register_folder_get_and_diff(client: TrackingClient, tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    v1 = versions.register("imgs", tree, client=client)
    assert (v1.kind, v1.num_files, v1.size) == (DatasetKind.FILES, 3, 3006)
    assert versions.register("imgs", str(tree), client=client).id == v1.id
    (tree / "cats" / "b.bin").write_bytes(b"B" * 2000)
    (tree / "new.txt").write_text("new\n")
    (tree / "readme.txt").unlink()
    v2 = versions.register("imgs", tree, client=client)
    assert v2.ref == "imgs@v2"
    change = versions.diff(v1, v2, client=client)
    assert change.added_files == ["new.txt"]
    assert change.removed_files == ["readme.txt"]
    assert change.modified_files == ["cats/b.bin"]
    out = versions.get("imgs@v1", tmp_path / "copy", client=client)
    assert (out / "cats" / "b.bin").read_bytes() == b"b" * 2000
    assert (out / "readme.txt").read_text() == "hello\n"
    with pytest.raises(InvalidState):
        versions.load("imgs@v1", client=client)
    client.gc(grace=0)
    again = versions.get("imgs@v1", tmp_path / "again", client=client)
    assert (again / "cats" / "a.bin").read_bytes() == b"a" * 1000


def test_folder_as_table(client: TrackingClient, tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    frame(50, seed=1).to_parquet(folder / "part-0.parquet", index=False)
    frame(50, seed=2).to_parquet(folder / "part-1.parquet", index=False)
    version = versions.register("parts", folder, kind="table", client=client)
    assert (version.kind, version.num_rows) == (DatasetKind.TABLE, 100)


def test_files_need_a_folder(client: TrackingClient) -> None:
    with pytest.raises(InvalidInput, match="folder"):
        versions.register("x", frame(), kind="files", client=client)


def test_register_a_polars_frame_is_the_same_version_as_pandas(client: TrackingClient) -> None:
    polars = pytest.importorskip("polars")
    # No missing floats here: pandas keeps NaN as NaN, polars turns it into null (different data).
    df = pd.DataFrame({"amount": [1.5, 2.5, 4.0], "country": ["FR", None, "DE"]})
    from_pandas = versions.register("tx", df, client=client)
    from_polars = versions.register("tx", polars.from_pandas(df), client=client)
    assert from_polars.id == from_pandas.id
