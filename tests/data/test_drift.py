"""Drift tests: agreement with SciPy, automatic choice, overrides, verdicts and bad inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats
from scipy.spatial import distance

from mloop.data import stattests
from mloop.data.drift import drift
from mloop.data.profile import profile
from mloop.errors import InvalidInput

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
        ({"tests": {"x": "nope"}}, "known tests: chisquare"),
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
