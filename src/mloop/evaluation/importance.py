"""Permutation importance: how much a score drops when one feature's values are shuffled.

It draws its permutations exactly as ``sklearn.inspection.permutation_importance`` does (one seed
drawn from ``random_state``, then per feature a fresh generator on that seed shuffling the row
order cumulatively over the repeats), so for the same model, data, score and ``random_state``
the two agree. Unlike scikit-learn's it needs only a scoring function over a DataFrame, so it
works with any object that predicts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from mloop.evaluation.results import FeatureImportance

__all__ = ["permutation_importance"]


def permutation_importance(
    score: Callable[[pd.DataFrame], float],
    frame: pd.DataFrame,
    features: Sequence[str],
    *,
    n_repeats: int = 5,
    random_state: int | None = 0,
    higher_is_better: bool = True,
) -> dict[str, FeatureImportance]:
    """Mean and standard deviation, over ``n_repeats`` shuffles, of the drop in ``score`` per
    feature (positive: the feature helps; for a lower-is-better score the drop is the rise)."""
    baseline = score(frame)
    seed = np.random.RandomState(random_state).randint(np.iinfo(np.int32).max + 1)
    out: dict[str, FeatureImportance] = {}
    for name in features:
        position = frame.columns.get_loc(name)
        rng = np.random.RandomState(seed)
        permuted = frame.copy()
        order = np.arange(len(frame))
        drops = []
        for _ in range(n_repeats):
            rng.shuffle(order)
            column = permuted.iloc[order, position]
            column.index = permuted.index
            permuted[name] = column
            value = score(permuted)
            drops.append(baseline - value if higher_is_better else value - baseline)
        out[name] = FeatureImportance(mean=float(np.mean(drops)), std=float(np.std(drops)))
    return out
