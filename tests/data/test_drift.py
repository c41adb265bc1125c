"""Drift tests: agreement with SciPy, automatic choice, overrides, verdicts and bad inputs."""

from __future__ import annotations

import json
import math
import warnings
import weakref
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from scipy import stats
from scipy.spatial import distance

from mloop.data import stattests
from mloop.data.drift import DriftReport, drift
from mloop.data.profile import DatasetProfile, profile
from mloop.errors import InvalidInput, NotFound

REL = 1e-9


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --- agreement with SciPy on the same raw inputs ------------------------------------------


def test_ks_agrees_with_scipy() -> None:
    a, b = rng(1).normal(size=300), rng(2).normal(0.2, size=400)
    result = drift(pd.DataFrame({"x": a}), pd.DataFrame({"x": b}))["x"]
    expected = stats.ks_2samp(a, b)
    assert result.test == "ks"
    assert result.statistic == pytest.approx(expected.statistic, rel=REL)
    assert result.p_value == pytest.approx(expected.pvalue, rel=REL)


@pytest.mark.parametrize("sizes", [(2_000, 3_000), (50, 70), (5_000, 5)])
def test_wasserstein_agrees_with_scipy(sizes: tuple[int, int]) -> None:
    a = rng(3).normal(size=sizes[0])
    b = np.round(rng(4).exponential(size=sizes[1]), 2)  # ties on purpose
    statistic, p_value = stattests.wasserstein(a, b)
    assert p_value is None
    assert statistic == pytest.approx(stats.wasserstein_distance(a, b) / np.std(a), rel=REL)


def test_auto_wasserstein_for_large_reference() -> None:
    a, b = rng(5).normal(size=2_000), rng(6).normal(0.3, size=2_500)
    result = drift(pd.DataFrame({"x": a}), pd.DataFrame({"x": b}))["x"]
    assert result.test == "wasserstein"
    assert result.statistic == pytest.approx(stats.wasserstein_distance(a, b) / np.std(a), rel=REL)
    assert result.drifted


def test_chisquare_agrees_with_scipy() -> None:
    ref = pd.DataFrame({"c": ["a"] * 50 + ["b"] * 30 + ["c"] * 20})
    cur = pd.DataFrame({"c": ["a"] * 40 + ["b"] * 40 + ["c"] * 40})
    result = drift(ref, cur)["c"]
    f_obs = np.array([40.0, 40.0, 40.0])
    f_exp = np.array([50.0, 30.0, 20.0]) * 120 / 100
    expected = stats.chisquare(f_obs, f_exp)
    assert result.test == "chisquare"
    assert result.statistic == pytest.approx(expected.statistic, rel=REL)
    assert result.p_value == pytest.approx(expected.pvalue, rel=REL)


def test_jensenshannon_agrees_with_scipy() -> None:
    ref = pd.DataFrame({"c": rng(7).choice(["a", "b", "c", "d"], 3_000, p=[0.4, 0.3, 0.2, 0.1])})
    cur = pd.DataFrame({"c": rng(8).choice(["a", "b", "c", "d"], 2_000)})
    result = drift(ref, cur)["c"]
    counts_r = ref["c"].value_counts().reindex(list("abcd")).to_numpy(dtype=float)
    counts_c = cur["c"].value_counts().reindex(list("abcd")).to_numpy(dtype=float)
    assert result.test == "jensenshannon"
    assert result.statistic == pytest.approx(distance.jensenshannon(counts_r, counts_c), rel=REL)


def test_z_test_agrees_with_hand_computation() -> None:
    ref = pd.DataFrame({"b": [True] * 30 + [False] * 70})
    cur = pd.DataFrame({"b": [True] * 60 + [False] * 90})
    result = drift(ref, cur)["b"]
    p1, p2 = 70 / 100, 90 / 150  # share of the first category ("False")
    pooled = (70 + 90) / 250
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / 100 + 1 / 150))
    assert result.test == "z"
    assert result.statistic == pytest.approx(z, rel=REL)
    assert result.p_value == pytest.approx(2 * stats.norm.sf(abs(z)), rel=REL)


def test_binned_distances_match_formulas() -> None:
    p = np.array([10.0, 20.0, 30.0, 0.0])
    q = np.array([15.0, 15.0, 20.0, 10.0])
    pp, qq = p / p.sum(), q / q.sum()
    ps, qs = np.where(pp == 0, 1e-4, pp), np.where(qq == 0, 1e-4, qq)
    assert stattests.psi(p, q)[0] == pytest.approx(np.sum((qs - ps) * np.log(qs / ps)), rel=REL)
    assert stattests.kl_div(p, q)[0] == pytest.approx(np.sum(ps * np.log(ps / qs)), rel=REL)
    hellinger = np.sqrt(np.sum((np.sqrt(pp) - np.sqrt(qq)) ** 2) / 2)
    assert stattests.hellinger(p, q)[0] == pytest.approx(hellinger, rel=REL)
    assert stattests.jensenshannon(p, q)[0] == pytest.approx(distance.jensenshannon(p, q), rel=REL)


def test_cramer_von_mises_agrees_with_scipy() -> None:
    a, b = rng(9).normal(size=200), rng(10).normal(size=300)
    result = drift(pd.DataFrame({"x": a}), pd.DataFrame({"x": b}), tests="cramer_von_mises")["x"]
    expected = stats.cramervonmises_2samp(a, b)
    assert result.statistic == pytest.approx(expected.statistic, rel=REL)
    assert result.p_value == pytest.approx(expected.pvalue, rel=REL)


# --- automatic choice, overrides, verdicts ------------------------------------------------


def test_automatic_choice_by_size_and_kind() -> None:
    def frame(n: int, seed: int) -> pd.DataFrame:
        g = rng(seed)
        return pd.DataFrame(
            {
                "num": g.normal(size=n),
                "few": g.integers(0, 4, n),
                "cat": g.choice(["a", "b", "c"], n),
                "bin": g.choice(["y", "n"], n),
                "flag": g.random(n) < 0.5,
            }
        )

    small = drift(frame(1_000, 1), frame(500, 2), workers=1)
    assert [c.test for c in small.columns] == ["ks", "chisquare", "chisquare", "z", "z"]
    large = drift(frame(1_001, 1), frame(500, 2), workers=1)
    assert {c.test for c in large.columns} == {"wasserstein", "jensenshannon"}
    assert large["num"].test == "wasserstein"


def test_planted_shift_detected_and_same_distribution_not() -> None:
    g = rng(11)
    ref = pd.DataFrame({"x": g.normal(size=5_000), "c": g.choice(list("abcd"), 5_000)})
    same = pd.DataFrame({"x": g.normal(size=5_000), "c": g.choice(list("abcd"), 5_000)})
    shifted = pd.DataFrame(
        {"x": g.normal(1.0, size=5_000), "c": g.choice(list("abcd"), 5_000, p=[0.7, 0.1, 0.1, 0.1])}
    )
    assert not drift(ref, same).drifted
    assert drift(ref, same).drifted_columns == []
    report = drift(ref, shifted)
    assert report.drifted and report.drifted_columns == ["x", "c"]
    small = drift(ref.head(500), same.head(500))
    assert not small.drifted


@pytest.mark.parametrize("test", sorted(stattests.TESTS))
def test_every_named_test_runs_on_numeric_or_says_why(test: str) -> None:
    g = rng(12)
    ref = pd.DataFrame({"x": g.normal(size=800)})
    cur = pd.DataFrame({"x": g.normal(2.0, size=900)})
    if test == "z":
        with pytest.raises(InvalidInput, match="two proportions"):
            drift(ref, cur, tests={"x": test})
        return
    result = drift(ref, cur, tests={"x": test})["x"]
    assert result.test == test
    assert result.threshold == stattests.TESTS[test].threshold
    assert result.drifted


def test_thresholds_override() -> None:
    g = rng(13)
    ref = pd.DataFrame({"x": g.normal(size=2_000)})
    cur = pd.DataFrame({"x": g.normal(0.2, size=2_000)})
    default = drift(ref, cur)["x"]
    assert default.drifted
    loose = drift(ref, cur, thresholds={"x": 0.5})["x"]
    assert loose.threshold == 0.5 and not loose.drifted
    assert loose.statistic == default.statistic


def test_drift_share_decides_dataset_verdict() -> None:
    g = rng(14)
    ref = pd.DataFrame({"a": g.normal(size=2_000), "b": g.normal(size=2_000)})
    cur = pd.DataFrame({"a": g.normal(3, size=2_000), "b": g.normal(size=2_000)})
    assert drift(ref, cur, drift_share=0.5).drifted
    assert not drift(ref, cur, drift_share=0.75).drifted


def test_unseen_categories_count_as_drift() -> None:
    ref = pd.DataFrame({"c": ["a", "b"] * 1_000})
    cur = pd.DataFrame({"c": ["a", "b", "zz", "zz"] * 500})
    result = drift(ref, cur)["c"]
    assert result.drifted
    assert "unseen" in result.reason
    small = drift(ref.head(100), cur.head(100))["c"]
    assert small.test == "chisquare" and small.p_value == 0.0


def test_parallel_equals_serial_and_progress_called() -> None:
    g = rng(15)
    ref = pd.DataFrame({f"c{i}": g.normal(size=3_000) for i in range(6)})
    cur = pd.DataFrame({f"c{i}": g.normal(0.1 * i, size=3_000) for i in range(6)})
    seen: list[tuple[int, int, str]] = []
    parallel = drift(ref, cur, workers=4, progress=lambda d, t, c: seen.append((d, t, c)))
    assert parallel == drift(ref, cur, workers=1)
    assert [d for d, _, _ in seen] == list(range(1, 7))
    assert {c for _, _, c in seen} == set(ref.columns)


def test_arrow_and_record_batches_equal_pandas() -> None:
    g = rng(16)
    ref = pd.DataFrame({"x": g.normal(size=3_000), "c": g.choice(list("ab"), 3_000)})
    cur = pd.DataFrame({"x": g.normal(size=2_000), "c": g.choice(list("ab"), 2_000)})
    table = pa.Table.from_pandas(cur, preserve_index=False)
    expected = drift(ref, cur)
    assert drift(ref, table) == expected
    assert drift(ref, table.to_batches(max_chunksize=300)) == expected


# --- profile as reference -----------------------------------------------------------------


def test_profile_reference_close_to_raw() -> None:
    g = rng(17)
    ref = pd.DataFrame(
        {
            "x": g.normal(size=50_000),
            "c": g.choice(list("abcde"), 50_000, p=[0.3, 0.3, 0.2, 0.1, 0.1]),
        }
    )
    for shift in (0.0, 0.3):
        cur = pd.DataFrame(
            {"x": g.normal(shift, size=50_000), "c": g.choice(list("abcde"), 50_000)}
        )
        raw = drift(ref, cur)
        stored = drift(profile(ref), cur)
        assert stored.reference_is_profile
        assert stored["x"].approximate
        assert stored["x"].statistic == pytest.approx(raw["x"].statistic, abs=0.02)
        assert stored["c"].statistic == pytest.approx(raw["c"].statistic, rel=1e-9)
        assert stored.drifted_columns == raw.drifted_columns


def test_profile_reference_small_uses_binned_ks_and_rejects_raw_only_tests() -> None:
    g = rng(18)
    ref = pd.DataFrame({"x": g.normal(size=800)})
    cur = pd.DataFrame({"x": g.normal(1.0, size=800)})
    result = drift(profile(ref), cur)["x"]
    assert result.test == "ks" and result.approximate and result.drifted
    with pytest.raises(InvalidInput, match="raw reference"):
        drift(profile(ref), cur, tests={"x": "cramer_von_mises"})
    assert drift(profile(ref), cur, tests="psi")["x"].drifted


def test_profile_top_k_pools_other_categories() -> None:
    ref = pd.DataFrame({"c": [f"v{i % 30}" for i in range(3_000)]})
    cur = pd.DataFrame({"c": [f"v{i % 40}" for i in range(3_000)]})
    result = drift(profile(ref, top_k=5), cur)["c"]
    assert result.status == "ok" and result.approximate
    assert result.categories is not None and "(other)" in result.categories


def _coded(rows: int, seed: int, shift: bool = False) -> pd.DataFrame:
    g = rng(seed)
    return pd.DataFrame(
        {
            "code": g.choice(5, rows, p=[0.1, 0.1, 0.2, 0.3, 0.3] if shift else None),
            "flag": (g.random(rows) < (0.75 if shift else 0.5)).astype(np.int64),
        }
    )


@pytest.mark.parametrize("ref_rows", [800, 3_000])
@pytest.mark.parametrize("max_rows", [100_000, 1_000])
@pytest.mark.parametrize("shift", [False, True])
def test_profile_value_counts_test_few_valued_columns_as_raw_data(
    ref_rows: int, max_rows: int, shift: bool
) -> None:
    ref = _coded(ref_rows, 60)
    cur = _coded(5_000, 61, shift=shift)
    stored = profile(ref)
    assert stored["code"].value_counts is not None and len(stored["code"].value_counts) == 5
    raw = drift(ref, cur, max_rows_in_memory=max_rows, batch_rows=700)
    from_profile = drift(stored, cur, max_rows_in_memory=max_rows, batch_rows=700)
    expected = {800: ("chisquare", "z"), 3_000: ("jensenshannon", "jensenshannon")}[ref_rows]
    for column, test in zip(("code", "flag"), expected, strict=True):
        r, p = raw[column], from_profile[column]
        assert r.method == ("exact" if max_rows > 5_000 else "binned")
        assert p.method == "profile" and not p.approximate
        assert p.test == r.test == test
        assert (p.statistic, p.p_value, p.drifted) == (r.statistic, r.p_value, r.drifted)
        assert replace(p, method=r.method) == r  # the plotted counts too
        assert p.drifted or not shift


@pytest.mark.parametrize("max_rows", [100_000, 1_000])
@pytest.mark.parametrize("test", ["ks", "anderson", "wasserstein", "cramer_von_mises", "psi"])
def test_profile_value_counts_named_tests_agree_with_raw(max_rows: int, test: str) -> None:
    ref = _coded(3_000, 62)
    cur = _coded(4_000, 63, shift=True)
    if test == "cramer_von_mises" and max_rows < 4_000:  # raw values only, either way
        for reference in (ref, profile(ref)):
            with pytest.raises(InvalidInput, match="max_rows_in_memory"):
                drift(reference, cur, tests=test, max_rows_in_memory=max_rows)
        return
    raw = drift(ref, cur, tests=test, max_rows_in_memory=max_rows)
    from_profile = drift(profile(ref), cur, tests=test, max_rows_in_memory=max_rows)
    for column in ("code", "flag"):
        r, p = raw[column], from_profile[column]
        assert p.test == r.test == test and p.approximate == r.approximate
        assert p.statistic == pytest.approx(r.statistic, rel=1e-9)
        assert p.p_value == (None if r.p_value is None else pytest.approx(r.p_value, rel=1e-9))
        assert p.drifted == r.drifted


def test_profile_without_value_counts_uses_the_histogram() -> None:
    ref = _coded(3_000, 64)
    ref["many"] = rng(65).integers(0, 12, 3_000)  # value_counts kept, but too many values
    cur = _coded(3_000, 66, shift=True)
    cur["many"] = rng(67).integers(2, 14, 3_000)
    body = profile(ref).to_dict()
    for column in body["columns"]:
        del column["value_counts"]  # as a profile saved before the field existed
    old = DatasetProfile.from_dict(body)
    assert old["code"].value_counts is None
    for reference in (old, profile(ref)):
        for max_rows in (100_000, 1_000):
            report = drift(reference, cur, max_rows_in_memory=max_rows)
            names = ("code", "flag", "many") if reference is old else ("many",)
            for column in names:
                result = report[column]
                assert result.status == "ok" and result.method == "profile"
                assert result.approximate and result.test == "wasserstein"
            assert report["code"].drifted and report["many"].drifted


# --- missing, mismatched, empty, bad inputs -----------------------------------------------


def test_missing_and_added_columns_are_reported() -> None:
    ref = pd.DataFrame({"a": [1.0, 2.0, 3.0], "gone": ["x", "y", "z"]})
    cur = pd.DataFrame({"a": [1.0, 2.0, 4.0], "new": [1, 2, 3]})
    report = drift(ref, cur)
    assert report["gone"].status == "missing"
    assert "current" in report["gone"].reason
    assert report["new"].status == "missing"
    assert report["a"].status == "ok"
    assert [c.column for c in report.tested] == ["a"]


def test_mismatched_kinds_give_column_error() -> None:
    ref = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    cur = pd.DataFrame({"a": ["1", "2", "x"]})
    result = drift(ref, cur)["a"]
    assert result.status == "error" and "kinds differ" in result.reason
    assert not result.drifted


def test_empty_and_all_null_columns_are_skipped() -> None:
    ref = pd.DataFrame({"x": [1.0, 2.0, 3.0], "n": [None, None, None], "s": ["a", None, "b"]})
    cur = pd.DataFrame({"x": [np.nan, np.nan, np.nan], "n": [None, None, None], "s": [None] * 3})
    report = drift(ref, cur)
    for name in ("x", "n", "s"):
        assert report[name].status == "skipped"
        assert report[name].reason.startswith("empty")
    assert not report.drifted
    empty = drift(ref.iloc[:0], cur.iloc[:0])
    assert {c.status for c in empty.columns} == {"skipped"}
    json.dumps(empty.to_dict(), allow_nan=False)


def test_nan_and_inf_are_excluded_from_tests() -> None:
    g = rng(19)
    a = g.normal(size=500)
    b = g.normal(size=500)
    b_dirty = np.concatenate([b, [np.nan, np.inf, -np.inf]])
    result = drift(pd.DataFrame({"x": a}), pd.DataFrame({"x": b_dirty}))["x"]
    assert result.statistic == pytest.approx(stats.ks_2samp(a, b).statistic, rel=REL)
    assert result.current_count == 500


def test_datetime_columns_are_skipped() -> None:
    times = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=10, freq="D")})
    assert drift(times, times)["t"].status == "skipped"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tests": {"x": "nope"}}, "known tests: anderson, chisquare"),
        ({"tests": "nope"}, "unknown drift test"),
        ({"tests": {"zz": "ks"}}, "unknown column"),
        ({"thresholds": {"x": -1.0}}, "finite number"),
        ({"thresholds": {"x": float("nan")}}, "finite number"),
        ({"drift_share": 0.0}, "drift_share"),
        ({"drift_share": 1.5}, "drift_share"),
        ({"columns": ["x", "zz"]}, "not found"),
        ({"bins": 0}, "bins"),
    ],
)
def test_bad_options(kwargs: dict[str, object], message: str) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    with pytest.raises(InvalidInput, match=message):
        drift(frame, frame, **kwargs)  # type: ignore[arg-type]


def test_bad_data() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    with pytest.raises(InvalidInput, match="unsupported data"):
        drift(frame, 42)
    with pytest.raises(InvalidInput, match="'m' mixes value types"):
        drift(frame, pd.DataFrame({"m": [1, "a"]}))
    with pytest.raises(InvalidInput, match="needs a numeric column"):
        drift(pd.DataFrame({"c": ["a", "b"]}), pd.DataFrame({"c": ["a", "b"]}), tests="ks")
    with pytest.raises(InvalidInput, match="unsupported type"):
        drift(pa.table({"l": [[1], [2]]}), pa.table({"l": [[1], [2]]}))


def test_to_dict_is_json_with_aggregates_only() -> None:
    g = rng(20)
    ref = pd.DataFrame({"x": g.normal(size=100), "c": ["a", "b"] * 50})
    cur = pd.DataFrame({"x": g.normal(size=100), "c": ["a", "q"] * 50})
    body = drift(ref, cur).to_dict()
    text = json.dumps(body, allow_nan=False)
    assert body["columns"][1]["statistic"] == "inf"
    assert len(body["columns"][0]["reference_hist"]) == 20
    assert str(ref["x"].iloc[0]) not in text


def test_categorical_ints_only_when_asked() -> None:
    ref = pd.DataFrame({"code": np.arange(2_000) % 7})
    cur = pd.DataFrame({"code": np.arange(2_000) % 9})
    assert drift(ref, cur)["code"].kind == "numeric"
    asked = drift(ref, cur, categorical=["code"])["code"]
    assert asked.kind == "categorical" and asked.test == "jensenshannon" and asked.drifted


def test_binary_numeric_column_uses_z_test() -> None:
    ref = pd.DataFrame({"y": [0] * 70 + [1] * 30})
    cur = pd.DataFrame({"y": [0] * 40 + [1] * 60})
    result = drift(ref, cur)["y"]
    assert result.test == "z" and result.drifted
    pooled = (70 + 40) / 200
    z = (0.7 - 0.4) / math.sqrt(pooled * (1 - pooled) * (2 / 100))
    assert result.statistic == pytest.approx(z, rel=REL)


def test_profile_reference_kind_mismatch_and_categories_dtype() -> None:
    ref = pd.DataFrame({"a": np.arange(2_000.0), "k": pd.Categorical(["x", "y"] * 1_000)})
    cur = pd.DataFrame({"a": ["s"] * 10, "k": pd.Categorical(["x", "y", "y", "z", "z"] * 2)})
    report = drift(profile(ref), cur)
    assert report["a"].status == "error"
    assert report["k"].kind == "categorical" and report["k"].drifted


# --- Anderson-Darling ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shift", "ties"), [(0.0, False), (0.12, False), (0.3, True), (1.0, False)]
)
def test_anderson_agrees_with_scipy(shift: float, ties: bool) -> None:
    a, b = rng(21).normal(size=400), rng(22).normal(shift, size=300)
    if ties:
        a, b = np.round(a, 1), np.round(b, 1)
    result = drift(pd.DataFrame({"x": a}), pd.DataFrame({"x": b}), tests="anderson")["x"]
    with warnings.catch_warnings():  # SciPy warns when it caps or floors the p-value
        warnings.simplefilter("ignore")
        expected = stats.anderson_ksamp([a, b], variant="midrank")
    assert result.test == "anderson" and result.threshold == 0.05
    assert result.statistic == pytest.approx(expected.statistic, rel=REL)
    assert result.p_value == pytest.approx(expected.pvalue, rel=REL)
    assert result.drifted == (expected.pvalue < 0.05)


def test_anderson_on_one_value_is_no_drift() -> None:
    assert stattests.anderson(np.ones(10), np.ones(20)) == (0.0, 1.0)


# --- current data read in batches: Parquet, datasets, readers, iterators --------------------


def _frames(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    g = rng(seed)
    return pd.DataFrame(
        {
            "x": g.normal(shift, size=rows),
            "skew": g.lognormal(shift, 0.5, rows),
            "few": g.integers(0, 3, rows).astype(np.float64),
            "c": g.choice(["a", "b", "c"], rows, p=[0.5, 0.3, 0.2] if shift else None),
            "flag": g.random(rows) < 0.5,
        }
    )


def _write(frame: pd.DataFrame, path: Path, row_group: int) -> Path:
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=row_group
    )
    return path


@pytest.mark.parametrize("max_rows", [100_000, 1_000])
def test_streamed_forms_equal_in_memory(tmp_path: Path, max_rows: int) -> None:
    ref = _frames(5_000, 30)
    cur = _frames(12_000, 31, shift=0.2)
    table = pa.Table.from_pandas(cur, preserve_index=False)
    path = _write(cur, tmp_path / "current.parquet", row_group=2_500)
    folder = tmp_path / "parts"
    folder.mkdir()
    _write(cur.iloc[:7_000], folder / "a.parquet", row_group=3_000)
    _write(cur.iloc[7_000:], folder / "b.parquet", row_group=3_000)

    def report(current: object) -> DriftReport:
        return drift(ref, current, max_rows_in_memory=max_rows, batch_rows=1_000)

    expected = report(cur)
    assert expected.current_rows == 12_000
    method = "exact" if max_rows > 12_000 else "binned"
    assert {expected[c].method for c in ("x", "skew", "few")} == {method}
    for current in (
        table,
        str(path),
        path,
        folder,
        ds.dataset(path, format="parquet"),
        pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=700)),
        iter(table.to_batches(max_chunksize=999)),
        (b for b in table.to_batches(max_chunksize=4_000)),
        lambda: iter(table.to_batches(max_chunksize=333)),
    ):
        assert report(current) == expected
    assert expected.drifted_columns == report(table).drifted_columns


def test_binned_agrees_with_exact_on_a_large_sample() -> None:
    """Numeric tests on bins (current > max_rows_in_memory) against the same tests on values.

    Stated tolerances: Wasserstein within 0.002 (reference stds), KS statistic within 0.002,
    Anderson-Darling statistic within 1 %, PSI and Jensen-Shannon equal (same bins either way).
    """
    g = rng(32)
    ref = pd.DataFrame({"x": g.normal(size=20_000), "skew": g.lognormal(0, 0.5, 20_000)})
    for shift in (0.0, 0.05, 0.3):
        cur = pd.DataFrame(
            {"x": g.normal(shift, size=200_000), "skew": g.lognormal(shift, 0.5, 200_000)}
        )
        for test, tolerance in [
            ("wasserstein", {"abs": 0.002}),
            ("ks", {"abs": 0.002}),
            ("anderson", {"rel": 0.01}),
            ("psi", {"rel": 1e-9}),
            ("jensenshannon", {"rel": 1e-9}),
        ]:
            exact = drift(ref, cur, tests=test, max_rows_in_memory=1_000_000)
            binned = drift(ref, cur, tests=test)
            for column in ("x", "skew"):
                e, b = exact[column], binned[column]
                assert e.method == "exact" and b.method == "binned"
                assert b.approximate == (test in ("wasserstein", "ks", "anderson"))
                assert b.statistic == pytest.approx(e.statistic, **tolerance), (test, column)
                assert b.drifted == e.drifted, (test, column, shift)


def test_binned_result_reports_method_and_plot_bins() -> None:
    ref = _frames(3_000, 33)
    cur = _frames(6_000, 34, shift=0.5)
    report = drift(ref, cur, max_rows_in_memory=5_000, bins=10)
    x = report["x"]
    assert x.method == "binned" and x.approximate and x.test == "wasserstein" and x.drifted
    assert len(x.reference_hist) == len(x.current_hist) == 12  # 10 bins + under/overflow
    assert x.edges is not None and len(x.edges) == 13
    assert sum(x.current_hist) == 6_000
    assert report["few"].method == "binned" and not report["few"].approximate
    assert report["c"].method == "exact"
    body = report.to_dict()
    assert body["columns"][0]["method"] == "binned"
    json.dumps(body, allow_nan=False)
    assert "binned" in report.render_text()


def test_few_valued_column_binned_pools_values_the_reference_never_had() -> None:
    ref = pd.DataFrame({"y": rng(35).integers(0, 3, 5_000).astype(float)})
    cur = pd.DataFrame({"y": rng(36).normal(size=30_000)})  # every value new
    binned = drift(ref, cur, max_rows_in_memory=100, batch_rows=5_000)["y"]
    exact = drift(ref, cur)["y"]
    assert binned.test == exact.test == "jensenshannon"
    assert binned.statistic == pytest.approx(exact.statistic, rel=1e-9)
    assert binned.drifted and exact.drifted


def test_profile_reference_streamed_equals_in_memory(tmp_path: Path) -> None:
    ref = _frames(4_000, 37)
    cur = _frames(9_000, 38, shift=0.3)
    path = _write(cur, tmp_path / "current.parquet", row_group=2_000)
    prof = profile(ref)
    in_memory = drift(prof, cur)
    streamed = drift(prof, path, max_rows_in_memory=1_000, batch_rows=1_500)
    assert in_memory.drifted_columns == streamed.drifted_columns
    for column in ("x", "skew", "c"):
        assert streamed[column].method == "profile"
        assert streamed[column].statistic == pytest.approx(in_memory[column].statistic, rel=1e-9)
    assert drift(prof, path, tests={"x": "anderson"})["x"].drifted


def test_progress_reports_batches_of_streamed_input(tmp_path: Path) -> None:
    ref = _frames(2_000, 39)
    cur = _frames(5_000, 40)
    path = _write(cur, tmp_path / "current.parquet", row_group=1_000)
    seen: list[tuple[int, int, str]] = []
    drift(ref, path, batch_rows=1_000, progress=lambda d, t, c: seen.append((d, t, c)))
    batches = [s for s in seen if s[2].startswith("current data")]
    assert [(d, t) for d, t, _ in batches] == [(i, 5) for i in range(1, 6)]
    assert [c for _, _, c in seen[len(batches) :]] == list(ref.columns)
    seen.clear()
    table = pa.Table.from_pandas(cur, preserve_index=False)
    drift(ref, iter(table.to_batches(max_chunksize=2_000)), progress=lambda *a: seen.append(a))
    assert [(d, t) for d, t, c in seen if c.startswith("current")] == [(1, 0), (2, 0), (3, 0)]


def test_streamed_batches_are_never_all_held() -> None:
    """Structural bound: a generator of 200 batches; at most 3 are alive at any time."""
    alive: list[weakref.ref[pa.RecordBatch]] = []
    most = 0

    def batches() -> Iterator[pa.RecordBatch]:
        nonlocal most
        g = rng(41)
        for _ in range(200):
            most = max(most, sum(ref() is not None for ref in alive))
            batch = pa.record_batch(
                {"x": g.normal(size=1_000), "c": g.choice(["a", "b"], 1_000).tolist()}
            )
            alive.append(weakref.ref(batch))
            yield batch

    ref = pd.DataFrame({"x": rng(42).normal(size=2_000), "c": ["a", "b"] * 1_000})
    report = drift(ref, batches(), max_rows_in_memory=5_000, workers=2)
    assert report.current_rows == 200_000 and report["x"].method == "binned"
    assert 1 <= most <= 3
    most = 0
    alive.clear()
    drift(ref, batches(), max_rows_in_memory=5_000, workers=1)
    assert most <= 2


# --- bad streamed input ---------------------------------------------------------------------


def test_bad_streamed_input(tmp_path: Path) -> None:
    ref = pd.DataFrame({"x": rng(43).normal(size=100)})
    with pytest.raises(InvalidInput, match="stream of record batches is empty"):
        drift(ref, iter([]))
    first = pa.record_batch({"x": [1.0, 2.0]})
    other = pa.record_batch({"x": ["a", "b"]})
    with pytest.raises(InvalidInput, match="record batch 1 does not match"):
        drift(ref, iter([first, other]))
    with pytest.raises(InvalidInput, match=r"expected pyarrow\.RecordBatch"):
        drift(ref, iter([first, 42]))
    with pytest.raises(NotFound, match="no data file"):
        drift(ref, tmp_path / "missing.parquet")
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"PAR1 this is not a parquet file PAR1")
    with pytest.raises(InvalidInput, match=r"cannot read .*garbage\.parquet"):
        drift(ref, garbage)
    with pytest.raises(InvalidInput, match="max_rows_in_memory"):
        drift(ref, ref, max_rows_in_memory=-1)
    with pytest.raises(InvalidInput, match="batch_rows"):
        drift(ref, ref, batch_rows=0)


def test_corrupted_parquet_pages_give_invalid_input(tmp_path: Path) -> None:
    ref = pd.DataFrame({"x": rng(44).normal(size=1_000)})
    path = tmp_path / "current.parquet"
    pq.write_table(pa.table({"x": rng(45).normal(size=50_000)}), path, row_group_size=10_000)
    data = bytearray(path.read_bytes())
    data[4:68] = b"\xff" * 64  # the first page header; the footer stays readable
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidInput, match=r"cannot read .*page header"):
        drift(ref, path)


def test_empty_parquet_file_skips_every_column(tmp_path: Path) -> None:
    ref = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    path = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"x": pa.array([], type=pa.float64())}), path)
    report = drift(ref, path)
    assert report.current_rows == 0 and report["x"].status == "skipped"


def test_raw_only_test_on_binned_data_says_what_to_do() -> None:
    ref = pd.DataFrame({"x": rng(46).normal(size=500)})
    cur = pd.DataFrame({"x": rng(47).normal(size=3_000)})
    with pytest.raises(InvalidInput, match="max_rows_in_memory"):
        drift(ref, cur, tests="cramer_von_mises", max_rows_in_memory=1_000)


def test_reference_may_be_a_parquet_path(tmp_path: Path) -> None:
    ref = _frames(3_000, 48)
    cur = _frames(3_000, 49)
    path = _write(ref, tmp_path / "reference.parquet", row_group=1_000)
    assert drift(path, cur) == drift(ref, cur)


def test_bounded_flow_profile_and_drift_both_from_parquet_paths(tmp_path: Path) -> None:
    ref = _frames(3_000, 50)
    cur = _frames(4_000, 51, shift=0.4)
    ref_path = _write(ref, tmp_path / "reference.parquet", row_group=1_000)
    cur_path = _write(cur, tmp_path / "current.parquet", row_group=1_000)
    assert profile(ref_path) == profile(ref)
    assert drift(profile(ref_path), cur_path) == drift(profile(ref), cur)
