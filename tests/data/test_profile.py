"""Column profiles: statistics, special values, chunked input, JSON round trip, bad inputs."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mloop.data.profile import FINE_BINS, VALUE_COUNTS_LIMIT, ColumnProfile, DatasetProfile, profile
from mloop.errors import InvalidInput


def sample(n: int = 20_000, seed: int = 0) -> pd.DataFrame:
    g = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": g.normal(10.0, 2.0, n),
            "i": g.integers(0, 50, n),
            "c": g.choice(["red", "green", "blue", "grey"], n, p=[0.4, 0.3, 0.2, 0.1]),
            "b": g.random(n) < 0.25,
            "t": pd.date_range("2024-01-01", periods=n, freq="min"),
        }
    )


def test_numeric_statistics_match_numpy() -> None:
    frame = sample()
    x = frame["x"].to_numpy()
    col = profile(frame)["x"]
    assert col.kind == "numeric" and col.count == len(x) and col.nulls == 0
    assert col.mean == pytest.approx(x.mean(), rel=1e-12)
    assert col.std == pytest.approx(x.std(ddof=1), rel=1e-12)
    assert (col.min, col.max) == (x.min(), x.max())
    assert col.distinct == len(np.unique(x)) and col.distinct_exact
    tolerance = (x.max() - x.min()) / FINE_BINS
    for name, q in (("p1", 0.01), ("p50", 0.5), ("p99", 0.99)):
        assert abs(col.quantiles[name] - np.quantile(x, q)) <= tolerance
    assert col.histogram is not None
    assert len(col.histogram.edges) == 21 and sum(col.histogram.counts) == len(x)
    counts, _ = np.histogram(x, bins=np.asarray(col.histogram.edges))
    assert col.histogram.counts == counts.tolist()


def test_categorical_boolean_datetime() -> None:
    frame = sample()
    result = profile(frame, top_k=2)
    c = result["c"]
    assert c.kind == "categorical" and c.distinct == 4
    assert [label for label, _ in c.top] == ["red", "green"]
    assert sum(n for _, n in c.top) + c.other_count == len(frame)
    assert c.top[0][1] == int((frame["c"] == "red").sum())
    b = result["b"]
    assert b.kind == "boolean"
    assert dict(b.top)["True"] == int(frame["b"].sum())
    t = result["t"]
    assert t.kind == "datetime" and t.min == "2024-01-01T00:00:00"
    assert result["i"].kind == "numeric"
    assert profile(frame, categorical=["i"])["i"].kind == "categorical"


def test_nulls_nan_and_inf_are_counted_apart() -> None:
    x = pa.array([1.0, None, float("nan"), float("inf"), float("-inf"), 3.0])
    col = profile(pa.table({"x": x}))["x"]
    assert (col.count, col.nulls, col.nan, col.pos_inf, col.neg_inf) == (6, 1, 1, 1, 1)
    assert col.valid == 2 and col.mean == 2.0 and (col.min, col.max) == (1.0, 3.0)
    from_pandas = profile(pd.DataFrame({"x": [1.0, np.nan, np.inf]}))["x"]
    assert (from_pandas.nan, from_pandas.pos_inf, from_pandas.nulls) == (1, 1, 0)


def test_empty_and_all_null_columns() -> None:
    frame = pd.DataFrame(
        {"x": [np.nan, np.nan], "n": [None, None], "s": pd.Series([None, None], dtype="str")}
    )
    result = profile(frame)
    assert result["x"].mean is None and result["x"].histogram is None and result["x"].nan == 2
    assert result["n"].kind == "null" and result["n"].nulls == 2
    assert result["s"].top == [] and result["s"].nulls == 2
    empty = profile(sample().iloc[:0])
    assert empty.rows == 0 and empty["x"].mean is None and empty["c"].distinct == 0
    json.dumps(empty.to_dict(), allow_nan=False)


def test_json_round_trip() -> None:
    result = profile(sample())
    text = json.dumps(result.to_dict(), allow_nan=False)
    assert DatasetProfile.from_dict(json.loads(text)) == result
    with pytest.raises(InvalidInput, match="not a dataset profile"):
        DatasetProfile.from_dict({"rows": 1})


def test_chunked_input_equals_whole_input() -> None:
    frame = sample()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    whole = profile(table)
    batches = table.to_batches(max_chunksize=1_234)
    assert len(batches) > 10

    def fresh() -> Iterator[pa.RecordBatch]:
        return iter(batches)

    for chunked in (profile(batches), profile(fresh)):
        assert chunked.rows == whole.rows
        for name, col in whole.columns.items():
            other = chunked[name]
            if col.mean is None or col.std is None:  # non-numeric columns have neither
                assert (other.mean, other.std) == (col.mean, col.std)
            else:
                assert other.mean == pytest.approx(col.mean, rel=1e-12)
                assert other.std == pytest.approx(col.std, rel=1e-9)
            assert other.to_dict() | {"mean": 0, "std": 0} == col.to_dict() | {"mean": 0, "std": 0}


def test_distinct_switches_to_estimate_above_limit() -> None:
    x = np.arange(300_000, dtype=np.float64)
    col = profile(pd.DataFrame({"x": x}))["x"]
    assert not col.distinct_exact
    assert col.distinct == pytest.approx(300_000, rel=0.05)


def test_progress_is_called_per_column() -> None:
    seen: list[str] = []
    profile(sample(100), progress=lambda done, total, name: seen.append(name))
    assert seen == ["x", "i", "c", "b", "t"]


def test_bad_inputs() -> None:
    with pytest.raises(InvalidInput, match="'m' mixes value types"):
        profile(pd.DataFrame({"ok": [1, 2], "m": [1, "a"]}))
    with pytest.raises(InvalidInput, match="one-shot iterator"):
        profile(iter(pa.Table.from_pandas(sample(10)).to_batches()))
    with pytest.raises(InvalidInput, match="unsupported data"):
        profile(42)  # a string now names a Parquet file (frames.batch_source)
    with pytest.raises(InvalidInput, match="RecordBatch"):
        profile([1, 2, 3])
    with pytest.raises(InvalidInput, match="no record batches"):
        profile([])
    with pytest.raises(InvalidInput, match="bins"):
        profile(sample(10), bins=0)
    with pytest.raises(InvalidInput, match="top_k"):
        profile(sample(10), top_k=0)
    with pytest.raises(InvalidInput, match="floating-point"):
        profile(sample(10), categorical=["x"])
    with pytest.raises(InvalidInput, match="duplicate column"):
        profile(pd.DataFrame([[1, 2]], columns=["a", "a"]))
    with pytest.raises(InvalidInput, match="schema"):
        profile([pa.record_batch({"a": [1]}), pa.record_batch({"b": [1]})])


def test_few_valued_numeric_columns_keep_their_value_counts() -> None:
    g = np.random.default_rng(5)
    codes = g.choice([3, 1, 7, 2], 1_000, p=[0.1, 0.2, 0.3, 0.4])
    col = profile(pa.table({"code": codes}))["code"]
    values, counts = np.unique(codes, return_counts=True)
    expected = zip(values.astype(float).tolist(), counts.tolist(), strict=True)
    assert col.value_counts == list(expected)
    assert [v for v, _ in col.value_counts] == [1.0, 2.0, 3.0, 7.0]  # ascending
    assert sum(n for _, n in col.value_counts) == col.valid == 1_000

    rating = profile(
        pa.table({"r": pa.array([1.0, None, float("nan"), float("inf"), 2.5, 1.0, -0.0, 0.0])})
    )["r"]
    assert rating.value_counts == [(0.0, 2), (1.0, 2), (2.5, 1)]  # -0.0 is 0.0; specials left out
    assert rating.valid == 5

    flags = profile(pd.DataFrame({"b": [True, False, True]}))["b"]
    assert flags.kind == "boolean" and flags.value_counts is None
    assert dict(flags.top) == {"True": 2, "False": 1}  # booleans count as categories already
    assert profile(pd.DataFrame({"s": ["a", "b"]}))["s"].value_counts is None


def test_value_counts_stop_above_the_limit() -> None:
    at_limit = np.repeat(np.arange(VALUE_COUNTS_LIMIT), 3)
    col = profile(pd.DataFrame({"n": at_limit}))["n"]
    assert col.value_counts is not None and len(col.value_counts) == VALUE_COUNTS_LIMIT
    over = profile(pd.DataFrame({"n": np.arange(VALUE_COUNTS_LIMIT + 1)}))["n"]
    assert over.value_counts is None
    assert profile(sample())["x"].value_counts is None
    assert profile(pd.DataFrame({"x": [np.nan, np.nan]}))["x"].value_counts == []


def test_value_counts_of_chunks_equal_those_of_the_whole() -> None:
    g = np.random.default_rng(9)
    few = g.integers(0, 6, 10_000)
    # distinct values pass the limit only in the last chunk
    late = np.concatenate([g.integers(0, 3, 9_000), np.arange(1_000)])
    table = pa.table({"few": few, "late": late})
    whole = profile(table)
    chunked = profile(table.to_batches(max_chunksize=700))
    assert chunked["few"].value_counts == whole["few"].value_counts
    assert whole["few"].value_counts is not None
    assert sum(n for _, n in whole["few"].value_counts) == 10_000
    assert whole["late"].value_counts is None and chunked["late"].value_counts is None


def test_value_counts_round_trip_and_old_profiles_still_load() -> None:
    result = profile(pd.DataFrame({"code": [1, 2, 2, 3], "x": np.linspace(0, 1, 4) ** 2}))
    body = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert body["columns"][0]["value_counts"] == [[1.0, 1], [2.0, 2], [3.0, 1]]
    again = DatasetProfile.from_dict(body)
    assert again == result
    assert again["code"].value_counts == [(1.0, 1), (2.0, 2), (3.0, 1)]
    for column in body["columns"]:  # a profile saved before the field existed
        del column["value_counts"]
    old = DatasetProfile.from_dict(body)
    assert old["code"].value_counts is None
    assert old["code"].histogram == result["code"].histogram
    assert ColumnProfile.from_dict(body["columns"][0]).value_counts is None
