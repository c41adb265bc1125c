"""The canary router: the split is within tolerance, and a key always goes the same way."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from mloop.errors import InvalidInput
from mloop.serving.traffic import Router, bucket

N = 20_000
# Binomial standard deviation of the canary share at p = 0.5 is 0.35 % for 20,000 draws: five of
# them (1.8 %) fails a correct router about once in three million runs.
TOLERANCE = 5 * math.sqrt(0.25 / N) * 100


@pytest.mark.parametrize("percent", [1, 10, 25, 50, 90])
def test_random_split_is_within_tolerance(percent: float) -> None:
    router = Router(percent, seed=7)
    share = sum(router.choose() == "canary" for _ in range(N)) / N * 100
    assert abs(share - percent) < TOLERANCE


@pytest.mark.parametrize("percent", [10, 33.3, 50])
def test_keyed_split_is_within_tolerance(percent: float) -> None:
    router = Router(percent)
    share = sum(router.choose(f"customer-{i}") == "canary" for i in range(N)) / N * 100
    assert abs(share - percent) < TOLERANCE


def test_a_key_is_sticky_across_routers_and_seeds() -> None:
    keys = [f"user-{i}" for i in range(500)]
    first = [Router(30, seed=1).choose(k) for k in keys]
    for seed in (2, None):
        router = Router(30, seed=seed)
        assert [router.choose(k) for k in keys] == first
        assert [router.choose(k) for k in keys] == first  # and on every call


def test_raising_the_percent_only_moves_keys_to_the_canary() -> None:
    keys = [f"k{i}" for i in range(2000)]
    low = {k for k in keys if Router(10).choose(k) == "canary"}
    high = {k for k in keys if Router(40).choose(k) == "canary"}
    assert low < high


def test_bucket_is_stable_across_processes() -> None:
    code = "from mloop.serving.traffic import bucket; print(repr(bucket('customer-42')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(out.stdout) == bucket("customer-42")
    assert 0 <= bucket("") < 100 and 0 <= bucket("ü\ud800") < 100


def test_edges_zero_and_hundred() -> None:
    assert {Router(0).choose(k) for k in (None, "a", "b")} == {"primary"}
    assert {Router(100).choose(k) for k in (None, "a", "b")} == {"canary"}
    assert Router(0.0).canary_percent == 0.0 and "12.5" in repr(Router(12.5))


def test_same_seed_same_choices() -> None:
    a, b = Router(50, seed=3), Router(50, seed=3)
    assert [a.choose() for _ in range(100)] == [b.choose() for _ in range(100)]


@pytest.mark.parametrize("bad", [-0.1, 100.5, math.nan, math.inf, "10", True, None])
def test_bad_percent_is_refused(bad: object) -> None:
    with pytest.raises(InvalidInput, match="0 to 100"):
        Router(bad)  # type: ignore[arg-type]
