"""Statistical tests and distances for drift, on raw values or on aligned counts.

Two shapes of input: *raw* tests take the finite values of a numeric column (reference, current);
*binned* tests take two count vectors aligned on the same bins or categories. Every function is
vectorised NumPy/SciPy, and each statistic agrees with SciPy's own on the same input.

Smoothing: PSI and KL divergence are infinite when a bin is empty on one side, so empty bins get the
proportion ``EPSILON`` (1e-4) before the logarithm; Jensen-Shannon, Hellinger and chi-square need
no smoothing (chi-square reports an infinite statistic, p = 0, when the current data has mass
where the reference has none).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import special, stats

__all__ = [
    "EPSILON",
    "TESTS",
    "StatTest",
    "binned_ks",
    "binned_wasserstein",
    "chisquare",
    "cramer_von_mises",
    "hellinger",
    "jensenshannon",
    "kl_div",
    "ks",
    "psi",
    "wasserstein",
    "z_test",
]

FloatArray = npt.NDArray[np.float64]
Result = tuple[float, float | None]

#: Proportion given to empty bins before taking logarithms (PSI, KL divergence).
EPSILON = 1e-4


def ks(reference: FloatArray, current: FloatArray) -> Result:
    """Two-sample Kolmogorov-Smirnov statistic and p-value (exact for small samples)."""
    result = stats.ks_2samp(reference, current)
    return float(result.statistic), float(result.pvalue)


def cramer_von_mises(reference: FloatArray, current: FloatArray) -> Result:
    """Two-sample Cramér-von Mises statistic and p-value."""
    method = "exact" if len(reference) + len(current) <= 20 else "asymptotic"
    result = stats.cramervonmises_2samp(reference, current, method=method)
    return float(result.statistic), float(result.pvalue)


def wasserstein(reference: FloatArray, current: FloatArray) -> Result:
    """Wasserstein-1 distance divided by the reference's (population) standard deviation.

    Computed exactly from the two sorted samples: the area between the empirical CDFs.
    """
    u = np.sort(reference)
    v = np.sort(current)
    merged = np.concatenate([u, v])
    order = np.argsort(merged, kind="stable")
    points = merged[order]
    from_u = np.cumsum(order < len(u))
    cdf_u = from_u[:-1] / len(u)
    cdf_v = (np.arange(1, len(points)) - from_u[:-1]) / len(v)
    distance = float(np.sum(np.abs(cdf_u - cdf_v) * np.diff(points)))
    std = float(np.std(reference))
    if std == 0.0:
        return (0.0 if distance == 0.0 else math.inf), None
    return distance / std, None


def _proportions(counts: FloatArray) -> FloatArray:
    total = float(counts.sum())
    return counts / total


def chisquare(reference: FloatArray, current: FloatArray) -> Result:
    """Pearson chi-square of current counts against reference proportions scaled to current."""
    expected = _proportions(reference) * float(current.sum())
    if np.any((expected == 0) & (current > 0)):
        return math.inf, 0.0
    keep = expected > 0
    observed = current[keep]
    expected = expected[keep]
    dof = len(observed) - 1
    if dof < 1:
        return 0.0, 1.0
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    return statistic, float(stats.chi2.sf(statistic, dof))


def z_test(reference: FloatArray, current: FloatArray) -> Result:
    """Two-proportion Z-test (pooled) on the share of the first category; two-sided p-value."""
    n_ref = float(reference.sum())
    n_cur = float(current.sum())
    p_ref = float(reference[0]) / n_ref
    p_cur = float(current[0]) / n_cur
    pooled = (float(reference[0]) + float(current[0])) / (n_ref + n_cur)
    variance = pooled * (1.0 - pooled) * (1.0 / n_ref + 1.0 / n_cur)
    if variance == 0.0:
        return 0.0, 1.0
    z = (p_ref - p_cur) / math.sqrt(variance)
    return z, float(2.0 * stats.norm.sf(abs(z)))


def jensenshannon(reference: FloatArray, current: FloatArray) -> Result:
    """Jensen-Shannon distance (natural logarithm, the square root of the divergence)."""
    p = _proportions(reference)
    q = _proportions(current)
    m = (p + q) / 2.0
    divergence = (np.sum(special.rel_entr(p, m)) + np.sum(special.rel_entr(q, m))) / 2.0
    return math.sqrt(max(float(divergence), 0.0)), None


def _smoothed(counts: FloatArray) -> FloatArray:
    p = _proportions(counts)
    return np.where(p == 0.0, EPSILON, p)


def psi(reference: FloatArray, current: FloatArray) -> Result:
    """Population stability index, sum((q - p) * ln(q / p)), empty bins smoothed to 1e-4."""
    p = _smoothed(reference)
    q = _smoothed(current)
    return float(np.sum((q - p) * np.log(q / p))), None


def kl_div(reference: FloatArray, current: FloatArray) -> Result:
    """Kullback-Leibler divergence of reference from current, empty bins smoothed to 1e-4."""
    p = _smoothed(reference)
    q = _smoothed(current)
    return float(np.sum(p * np.log(p / q))), None


def hellinger(reference: FloatArray, current: FloatArray) -> Result:
    """Hellinger distance, sqrt(sum((sqrt p - sqrt q)^2) / 2), between 0 and 1."""
    p = _proportions(reference)
    q = _proportions(current)
    return math.sqrt(float(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)) / 2.0), None


def _binned_cdfs(reference: FloatArray, current: FloatArray) -> tuple[FloatArray, FloatArray]:
    zero = np.zeros(1)
    cdf_ref = np.concatenate([zero, np.cumsum(reference) / reference.sum()])
    cdf_cur = np.concatenate([zero, np.cumsum(current) / current.sum()])
    return cdf_ref, cdf_cur


def binned_ks(reference: FloatArray, current: FloatArray) -> Result:
    """KS on histograms (values uniform within bins): max CDF gap at the edges, asymptotic p."""
    cdf_ref, cdf_cur = _binned_cdfs(reference, current)
    statistic = float(np.max(np.abs(cdf_ref - cdf_cur)))
    n, m = float(reference.sum()), float(current.sum())
    effective = n * m / (n + m)
    return statistic, float(special.kolmogorov(math.sqrt(effective) * statistic))


def binned_wasserstein(
    reference: FloatArray, current: FloatArray, edges: FloatArray, reference_std: float
) -> Result:
    """Normed Wasserstein on histograms, values uniform within bins (piecewise-linear CDFs)."""
    cdf_ref, cdf_cur = _binned_cdfs(reference, current)
    gap = cdf_ref - cdf_cur
    a, b = gap[:-1], gap[1:]
    width = np.diff(edges)
    same_sign = a * b >= 0
    total = np.abs(a) + np.abs(b)
    safe_total = np.where(total == 0.0, 1.0, total)
    area = np.where(same_sign, total / 2.0, (a * a + b * b) / (2.0 * safe_total)) * width
    distance = float(np.sum(area))
    if reference_std == 0.0:
        return (0.0 if distance == 0.0 else math.inf), None
    return distance / reference_std, None


Shape = Literal["raw", "binned"]


@dataclass(frozen=True)
class StatTest:
    """A named drift test: what it takes, its default threshold and how to read it."""

    name: str
    shape: Shape
    threshold: float
    uses_p_value: bool
    function: Callable[[FloatArray, FloatArray], Result]
    numeric_only: bool = False
    binary_only: bool = False

    def is_drift(self, statistic: float, p_value: float | None) -> bool:
        """Whether this result crosses ``threshold`` (p below it, or distance at or above it)."""
        if self.uses_p_value:
            return p_value is not None and p_value < self.threshold
        return statistic >= self.threshold


#: Every test by name, with its documented default threshold.
TESTS: dict[str, StatTest] = {
    t.name: t
    for t in (
        StatTest("ks", "raw", 0.05, True, ks, numeric_only=True),
        StatTest("cramer_von_mises", "raw", 0.05, True, cramer_von_mises, numeric_only=True),
        StatTest("wasserstein", "raw", 0.1, False, wasserstein, numeric_only=True),
        StatTest("chisquare", "binned", 0.05, True, chisquare),
        StatTest("z", "binned", 0.05, True, z_test, binary_only=True),
        StatTest("jensenshannon", "binned", 0.1, False, jensenshannon),
        StatTest("psi", "binned", 0.1, False, psi),
        StatTest("kl_div", "binned", 0.1, False, kl_div),
        StatTest("hellinger", "binned", 0.1, False, hellinger),
    )
}
