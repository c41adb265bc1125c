"""Materialisers: round trips for every built-in, refusals, pickling only when allowed and
trusted, digest checks before loading, deterministic records."""

from __future__ import annotations

import json
import math
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mloop.errors import (
    AlreadyExists,
    DigestMismatch,
    Forbidden,
    IntegrityError,
    InvalidInput,
    NotFound,
)
from mloop.pipelines.materialisers import (
    Materialiser,
    OutputRecord,
    dematerialise,
    materialise,
    materialiser_for,
    register_materialiser,
    registered_materialisers,
    unregister_materialiser,
)


def round_trip(value: Any, folder: Path, **kwargs: Any) -> tuple[OutputRecord, Any]:
    allow_pickle = kwargs.pop("allow_pickle", False)
    record = materialise(value, folder, allow_pickle=allow_pickle)
    return record, dematerialise(folder, record, **kwargs)


# ---------------------------------------------------------------------------- DataFrames


def test_dataframe_keeps_index_dtypes_nan_and_datetimes(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "amount": [1.5, math.nan, 3.25],
            "count": pd.array([1, None, 3], dtype="Int64"),
            "colour": pd.Categorical(["red", "blue", "red"], categories=["red", "blue"]),
            "seen": pd.to_datetime(["2024-01-01 10:00", None, "2024-03-01 00:00"]).tz_localize(
                "UTC"
            ),
            "naive_ns": pd.Series(
                ["2020-01-01T00:00:00.000000001", "NaT", "1999-12-31"], dtype="datetime64[ns]"
            ).to_numpy(),
            "name": ["a", None, "c"],
            "flag": [True, False, True],
        },
        index=pd.Index(["r1", "r2", "r3"], name="row_id"),
    )
    record, back = round_trip(frame, tmp_path / "out")
    assert record.materialiser == "pandas"
    assert set(record.files) == {"table.parquet"}
    pd.testing.assert_frame_equal(back, frame)
    assert record.metadata["rows"] == 3
    assert record.metadata["index"] == ["row_id"]
    assert record.metadata["dtypes"][2] == "category"
    assert len(record.metadata["digest"]) == 64


def test_dataframe_with_range_index_and_multiindex(tmp_path: Path) -> None:
    plain = pd.DataFrame({"x": [1, 2, 3]}, index=pd.RangeIndex(10, 13))
    _, back = round_trip(plain, tmp_path / "a")
    pd.testing.assert_frame_equal(back, plain)
    multi = pd.DataFrame(
        {"v": [1.0, 2.0]}, index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["k", "n"])
    )
    _, back = round_trip(multi, tmp_path / "b")
    pd.testing.assert_frame_equal(back, multi)


def test_empty_dataframes(tmp_path: Path) -> None:
    typed = pd.DataFrame({"a": pd.Series([], dtype="int64"), "b": pd.Series([], dtype="float64")})
    record, back = round_trip(typed, tmp_path / "typed")
    assert record.metadata["rows"] == 0
    pd.testing.assert_frame_equal(back, typed)
    record, back = round_trip(pd.DataFrame(), tmp_path / "bare")
    assert record.metadata["rows"] == 0 and back.empty


def test_dataframe_with_non_string_labels_is_refused_and_folder_left_empty(
    tmp_path: Path,
) -> None:
    with pytest.raises(InvalidInput, match=r"column labels must be strings, found 0"):
        materialise(pd.DataFrame({0: [1]}), tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_dataframe_with_mixed_object_column_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"cast mixed object columns"):
        materialise(pd.DataFrame({"a": [1, "x", 2.5]}), tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
    with pytest.raises(InvalidInput, match=r"Duplicate column names.*unique labels"):
        materialise(pd.DataFrame([[1, 2]], columns=["a", "a"]), tmp_path / "out")


# ------------------------------------------------------------------------ Arrow, polars


def test_arrow_table_round_trip(tmp_path: Path) -> None:
    table = pa.table(
        {
            "id": pa.array([1, 2, None], pa.int32()),
            "label": pa.array(["a", "b", "a"]).dictionary_encode(),
            "score": pa.array([0.5, None, 1.0]),
        }
    ).replace_schema_metadata({"owner": "team"})
    record, back = round_trip(table, tmp_path / "out")
    assert record.materialiser == "arrow"
    assert back.equals(table, check_metadata=True)
    assert record.metadata["columns"] == ["id", "label", "score"]


def test_dataframe_and_arrow_digests_agree_with_table_digest(tmp_path: Path) -> None:
    from mloop.data.digest import table_digest

    table = pa.table({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    record = materialise(table, tmp_path / "a")
    assert record.digest == table_digest(table)
    # The same rows from pandas, with a default index, hash the same.
    record = materialise(table.to_pandas(), tmp_path / "b")
    assert record.digest == table_digest(table)


def test_polars_round_trip(tmp_path: Path) -> None:
    polars = pytest.importorskip("polars")
    frame = polars.DataFrame({"a": [1, 2], "b": ["x", None]})
    record, back = round_trip(frame, tmp_path / "out")
    assert record.materialiser == "polars"
    assert back.equals(frame)


# -------------------------------------------------------------------------------- arrays


@pytest.mark.parametrize(
    "array",
    [
        np.array([1.5, math.nan, -math.inf, 0.0]),
        np.arange(12, dtype=np.int64).reshape(3, 4),
        np.array([[True, False], [False, True]]),
        np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)),
        np.array(7, dtype=np.int16),
        np.zeros((0, 3)),
        np.array(["2024-01-01", "2024-06-30"], dtype="datetime64[D]"),
        np.array(["ab", "c"]),
    ],
    ids=["float", "int-2d", "bool-2d", "fortran", "0-d", "empty", "datetime", "unicode"],
)
def test_ndarray_round_trip(tmp_path: Path, array: np.ndarray[Any, Any]) -> None:
    record, back = round_trip(array, tmp_path / "out")
    assert record.materialiser == "numpy"
    assert set(record.files) == {"array.npy"}
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    assert record.metadata["shape"] == list(array.shape)


def test_ndarray_digest_ignores_memory_layout(tmp_path: Path) -> None:
    c_order = np.arange(6, dtype=np.float64).reshape(2, 3)
    f_order = np.asfortranarray(c_order)
    assert (
        materialise(c_order, tmp_path / "c").digest == materialise(f_order, tmp_path / "f").digest
    )
    other = materialise(c_order.astype(np.float32), tmp_path / "g")
    assert other.digest != materialise(c_order, tmp_path / "h").digest


def test_object_ndarray_is_refused_with_advice(tmp_path: Path) -> None:
    values = np.array([{"a": 1}, None], dtype=object)
    with pytest.raises(InvalidInput, match=r"dtype object .*return a DataFrame.*allow_pickle=True"):
        materialise(values, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    record, back = round_trip(values, tmp_path / "pickled", allow_pickle=True, trusted=True)
    assert record.materialiser == "pickle"
    assert back.tolist() == values.tolist()


# ---------------------------------------------------------------------------------- JSON


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(2**70),
        3.141592653589793,
        "héllo",
        [],
        {},
        [1, "two", None, [3.5, False]],
        {"metrics": {"auc": 0.91, "loss": [0.5, 0.25]}, "tags": ("a", "b")},
        (1, (2, 3), [4, (5,)]),
        {"$tuple": [1]},
        {"$float": "nan"},
        {"$dict": {"x": 1}},
    ],
)
def test_json_round_trip(tmp_path: Path, value: Any) -> None:
    record, back = round_trip(value, tmp_path / "out")
    assert record.materialiser == "json"
    assert back == value
    assert type(back) is type(value)


def test_json_special_floats_and_tuples_are_explicit(tmp_path: Path) -> None:
    value = {"nan": math.nan, "inf": math.inf, "neg": -math.inf, "pair": (1, math.nan)}
    record, back = round_trip(value, tmp_path / "out")
    assert math.isnan(back["nan"]) and back["inf"] == math.inf and back["neg"] == -math.inf
    assert isinstance(back["pair"], tuple) and math.isnan(back["pair"][1])
    stored = json.loads((tmp_path / "out" / "value.json").read_text())  # strict JSON
    assert stored["nan"] == {"$float": "nan"}
    assert stored["pair"] == {"$tuple": [1, {"$float": "nan"}]}
    assert record.metadata["type"] == "dict"


def test_json_accepts_numpy_scalars_as_python_numbers(tmp_path: Path) -> None:
    value = {"accuracy": np.float64(0.75), "n": np.int64(4), "ok": np.bool_(True)}
    _, back = round_trip(value, tmp_path / "out")
    assert back == {"accuracy": 0.75, "n": 4, "ok": True}
    assert type(back["n"]) is int and type(back["ok"]) is bool


def test_json_digest_ignores_dict_key_order_but_file_keeps_it(tmp_path: Path) -> None:
    one = materialise({"b": 1, "a": [1.0, None]}, tmp_path / "one")
    two = materialise({"a": [1.0, None], "b": 1}, tmp_path / "two")
    assert one.digest == two.digest
    assert list(json.loads((tmp_path / "one" / "value.json").read_text())) == ["b", "a"]
    assert materialise({"a": 1}, tmp_path / "three").digest != one.digest


def test_container_with_a_bad_member_names_where(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"value\['rows'\]\[1\] is a builtins\.set"):
        materialise({"rows": [1, {2}]}, tmp_path / "out")
    with pytest.raises(InvalidInput, match=r"has a key 1 of type int"):
        materialise({1: "a"}, tmp_path / "keys")
    looped: list[Any] = []
    looped.append(looped)
    with pytest.raises(InvalidInput, match=r"contains itself"):
        materialise(looped, tmp_path / "loop")


# -------------------------------------------------------------------------------- models


def test_sklearn_model_round_trip(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    features = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.9, 0.1]])
    labels = np.array([0, 1, 0, 1])
    model = LogisticRegression().fit(features, labels)
    record, back = round_trip(model, tmp_path / "out")
    assert record.materialiser == "model"
    assert record.metadata["flavor"] == "sklearn"
    assert "model/model.skops" in record.files and "model/mloop-model.json" in record.files
    assert isinstance(back, LogisticRegression)
    np.testing.assert_array_equal(back.predict(features), model.predict(features))


class Doubler:
    """A custom model: detect_flavor calls it pyfunc, which pickles."""

    def predict(self, data: Any) -> Any:
        return np.asarray(data) * 2


def test_pyfunc_model_needs_allow_pickle_and_trusted(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"test_materialisers\.Doubler.*allow_pickle=True"):
        materialise(Doubler(), tmp_path / "refused")
    record = materialise(Doubler(), tmp_path / "out", allow_pickle=True)
    assert record.materialiser == "model-pyfunc"
    with pytest.raises(Forbidden, match=r"trusted=True"):
        dematerialise(tmp_path / "out", record)
    back = dematerialise(tmp_path / "out", record, trusted=True)
    assert back.predict([1, 2]).tolist() == [2, 4]


# ---------------------------------------------------------------------- refusal, pickle


def test_unserialisable_values_are_refused_naming_type_and_options(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as caught:
        materialise(lambda x: x, tmp_path / "lambda")
    message = str(caught.value)
    assert "builtins.function" in message
    assert "register a materialiser" in message and "allow_pickle=True" in message
    assert caught.value.details["type"] == "builtins.function"
    with (
        (tmp_path / "f.txt").open("w") as handle,
        pytest.raises(InvalidInput, match=r"_io\.TextIOWrapper"),
    ):
        materialise(handle, tmp_path / "file")
    assert not (tmp_path / "lambda").exists() and not (tmp_path / "file").exists()


def test_pickle_only_with_allow_pickle_and_loads_only_trusted(tmp_path: Path) -> None:
    value = {1, 2, 3}
    with pytest.raises(InvalidInput):
        materialiser_for(value)
    assert materialiser_for(value, allow_pickle=True).name == "pickle"
    record = materialise(value, tmp_path / "out", allow_pickle=True)
    assert record.materialiser == "pickle" and set(record.files) == {"value.pkl"}
    assert record.metadata["class"] == "builtins.set"
    with pytest.raises(Forbidden, match=r"'pickle' materialiser.*trusted=True"):
        dematerialise(tmp_path / "out", record)
    assert dematerialise(tmp_path / "out", record, trusted=True) == value


def test_untrusted_pickle_is_refused_before_reading_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = materialise(lambda x: x + 1, tmp_path / "out", allow_pickle=True)

    def no_reading(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the file was read")

    monkeypatch.setattr("mloop.pipelines.materialisers.hash_file", no_reading)
    monkeypatch.setattr(pickle, "loads", no_reading)
    with pytest.raises(Forbidden):
        dematerialise(tmp_path / "out", record)
    monkeypatch.undo()
    assert dematerialise(tmp_path / "out", record, trusted=True)(1) == 2


def test_allow_pickle_does_not_override_a_native_materialiser(tmp_path: Path) -> None:
    record = materialise(np.arange(3), tmp_path / "out", allow_pickle=True)
    assert record.materialiser == "numpy"
    assert dematerialise(tmp_path / "out", record).tolist() == [0, 1, 2]


# ------------------------------------------------------------------------ verification


def test_tampered_file_raises_digest_mismatch_before_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = materialise(np.arange(100, dtype=np.int64), tmp_path / "out")
    path = tmp_path / "out" / "array.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))

    def no_loading(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("loaded before verifying")

    monkeypatch.setattr(np, "load", no_loading)
    with pytest.raises(DigestMismatch, match=r"file 'array\.npy'") as caught:
        dematerialise(tmp_path / "out", record)
    assert caught.value.details == {"file": "array.npy"}


def test_tampered_pickle_is_caught_even_when_trusted(tmp_path: Path) -> None:
    record = materialise({1}, tmp_path / "out", allow_pickle=True)
    (tmp_path / "out" / "value.pkl").write_bytes(pickle.dumps({2}))
    with pytest.raises(DigestMismatch, match=r"value\.pkl"):
        dematerialise(tmp_path / "out", record, trusted=True)


def test_missing_and_extra_files_are_integrity_errors(tmp_path: Path) -> None:
    record = materialise([1, 2], tmp_path / "out")
    (tmp_path / "out" / "extra.txt").write_text("x")
    with pytest.raises(IntegrityError, match=r"does not list: extra\.txt"):
        dematerialise(tmp_path / "out", record)
    (tmp_path / "out" / "extra.txt").unlink()
    (tmp_path / "out" / "value.json").unlink()
    with pytest.raises(IntegrityError, match=r"missing file\(s\) its record lists: value\.json"):
        dematerialise(tmp_path / "out", record)


def test_record_paths_must_stay_inside_the_folder(tmp_path: Path) -> None:
    record = materialise([1], tmp_path / "out")
    bad = OutputRecord("json", 1, record.metadata, {"../value.json": record.files["value.json"]})
    with pytest.raises(InvalidInput, match=r"must stay inside"):
        dematerialise(tmp_path / "out", bad)


def test_unknown_materialiser_and_newer_version_are_refused(tmp_path: Path) -> None:
    record = materialise([1], tmp_path / "out")
    with pytest.raises(NotFound, match=r"no materialiser named 'gone'"):
        dematerialise(tmp_path / "out", OutputRecord("gone", 1, {}, record.files))
    with pytest.raises(InvalidInput, match=r"version 2 of materialiser 'json'"):
        dematerialise(tmp_path / "out", OutputRecord("json", 2, {}, record.files))


def test_folder_must_be_new_or_empty(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old").write_text("x")
    with pytest.raises(AlreadyExists, match=r"not an empty folder"):
        materialise([1], tmp_path / "out")
    (tmp_path / "empty").mkdir()
    assert materialise([1], tmp_path / "empty").materialiser == "json"


# ------------------------------------------------------------------------- determinism


@pytest.mark.parametrize(
    "make",
    [
        lambda: pd.DataFrame({"a": [1.0, math.nan], "b": ["x", "y"]}),
        lambda: pa.table({"a": [1, 2]}),
        lambda: np.linspace(0, 1, 7).reshape(7, 1),
        lambda: {"a": [1, (2, math.inf)], "b": None},
    ],
    ids=["pandas", "arrow", "numpy", "json"],
)
def test_equal_values_give_equal_records(tmp_path: Path, make: Any) -> None:
    one = materialise(make(), tmp_path / "one")
    two = materialise(make(), tmp_path / "two")
    assert one == two
    assert one.digest == two.digest


def test_record_to_dict_round_trip(tmp_path: Path) -> None:
    record = materialise({"x": (1, 2)}, tmp_path / "out")
    body = json.loads(json.dumps(record.to_dict()))
    assert OutputRecord.from_dict(body) == record
    with pytest.raises(InvalidInput, match=r"must hold materialiser"):
        OutputRecord.from_dict({"files": {}})
    with pytest.raises(InvalidInput, match=r"must stay inside"):
        OutputRecord.from_dict(
            {"materialiser": "json", "version": 1, "files": {"/etc/x": {"sha256": "a", "size": 1}}}
        )


# ---------------------------------------------------------------------- custom, registry


class Point:
    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)

    __hash__ = None  # type: ignore[assignment]


class PointMaterialiser(Materialiser):
    name: ClassVar[str] = "test-point"
    version: ClassVar[int] = 3

    def handles(self, value: Any) -> bool:
        return isinstance(value, Point)

    def save(self, value: Any, folder: Path) -> dict[str, Any]:
        (folder / "point.txt").write_text(f"{value.x},{value.y}")
        return {"kind": "point"}

    def load(self, folder: Path, metadata: dict[str, Any], *, trusted: bool) -> Any:
        x, y = (folder / "point.txt").read_text().split(",")
        return Point(int(x), int(y))


@pytest.fixture
def point_materialiser() -> Iterator[PointMaterialiser]:
    materialiser = PointMaterialiser()
    register_materialiser(materialiser)
    try:
        yield materialiser
    finally:
        unregister_materialiser(materialiser.name)


def test_custom_materialiser_round_trip(
    tmp_path: Path, point_materialiser: PointMaterialiser
) -> None:
    record, back = round_trip(Point(2, 3), tmp_path / "out")
    assert (record.materialiser, record.version) == ("test-point", 3)
    assert back == Point(2, 3)
    assert record.files["point.txt"][1] == 3
    # Tried after the built-ins, before the pickling fallbacks.
    names = [m.name for m in registered_materialisers()]
    assert names.index("model") < names.index("test-point") < names.index("pickle")


def test_first_puts_a_custom_materialiser_before_the_builtins(tmp_path: Path) -> None:
    class ListsAsText(PointMaterialiser):
        name: ClassVar[str] = "test-lists"

        def handles(self, value: Any) -> bool:
            return isinstance(value, list)

        def save(self, value: Any, folder: Path) -> dict[str, Any]:
            (folder / "list.txt").write_text(repr(value))
            return {}

    register_materialiser(ListsAsText(), first=True)
    try:
        assert materialiser_for([1]).name == "test-lists"
        assert materialiser_for((1,)).name == "json"
    finally:
        unregister_materialiser("test-lists")
    assert materialiser_for([1]).name == "json"


def test_registering_bad_or_duplicate_materialisers(
    point_materialiser: PointMaterialiser,
) -> None:
    with pytest.raises(AlreadyExists, match=r"'test-point' is already registered"):
        register_materialiser(PointMaterialiser())
    with pytest.raises(InvalidInput, match=r"must be an instance"):
        register_materialiser(object())  # type: ignore[arg-type]

    class BadName(PointMaterialiser):
        name: ClassVar[str] = "Bad Name"

    with pytest.raises(InvalidInput, match=r"'Bad Name' must be"):
        register_materialiser(BadName())
    with pytest.raises(InvalidInput, match=r"cannot be unregistered"):
        unregister_materialiser("pandas")
    with pytest.raises(NotFound):
        unregister_materialiser("never-registered")


def test_custom_materialiser_returning_bad_metadata_leaves_folder_empty(tmp_path: Path) -> None:
    class BadMetadata(PointMaterialiser):
        name: ClassVar[str] = "test-bad-metadata"

        def save(self, value: Any, folder: Path) -> dict[str, Any]:
            (folder / "point.txt").write_text("1,2")
            return {"when": object()}

    register_materialiser(BadMetadata(), first=True)
    try:
        with pytest.raises(InvalidInput, match=r"'test-bad-metadata' returned metadata"):
            materialise(Point(1, 2), tmp_path / "out")
    finally:
        unregister_materialiser("test-bad-metadata")
    assert list((tmp_path / "out").iterdir()) == []
