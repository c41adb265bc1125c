"""Statistical tests and distances for drift, on raw values or on aligned counts.

Two shapes of input: *raw* tests take the finite values of a numeric column (reference, current);
*binned* tests take two count vectors aligned on the same bins or categories. Every function is
vectorised NumPy/SciPy, and each statistic agrees with SciPy's own on the same input.

``anderson`` is the Anderson-Darling k-sample test of Scholz and Stephens (1987), midrank variant
(for data with ties), as ``scipy.stats.anderson_ksamp(..., variant="midrank")``: the statistic is
the standardised one, and the p-value is interpolated from their table of critical values, so it
is floored at 0.001 and capped at 0.25 (drift when p < 0.05). It is computed from counts per
distinct value, so on bins (a stored profile, or streamed data) it is the same test with each bin
taken as one tied value.

Smoothing: PSI and KL divergence are infinite when a bin is empty on one side, so empty bins get the
proportion ``EPSILON`` (1e-4) before the logarithm; Jensen-Shannon, Hellinger and chi-square need
no smoothing (chi-square reports an infinite statistic, p = 0, when the current data has mass
where the reference has none).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import special, stats

__all__ = [
    "EPSILON",
    "TESTS",
    "StatTest",
    "anderson",
    "anderson_counts",
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


#: Critical values of the standardised k-sample statistic (Scholz and Stephens 1987, table 2).
_AD_B0 = np.array([0.675, 1.281, 1.645, 1.96, 2.326, 2.573, 3.085])
_AD_B1 = np.array([-0.245, 0.25, 0.678, 1.149, 1.822, 2.364, 3.615])
_AD_B2 = np.array([-0.105, -0.305, -0.362, -0.391, -0.396, -0.345, -0.154])
_AD_SIG = np.array([0.25, 0.1, 0.05, 0.025, 0.01, 0.005, 0.001])
_CHUNK = 1 << 20


@lru_cache(maxsize=64)  # columns of one data set mostly share their total
def _harmonic_terms(total: int) -> tuple[float, float]:
    """``h`` and ``g`` of the variance formula, summed in chunks so memory stays bounded."""
    # hs_cs[t] = sum_{j=N-1-t}^{N-1} 1/j for t = 0..N-3; g = sum_t hs_cs[t] / (t + 2)
    running = 0.0
    g = 0.0
    for start in range(0, max(total - 2, 0), _CHUNK):
        t = np.arange(start, min(start + _CHUNK, total - 2), dtype=np.float64)
        partial = running + np.cumsum(1.0 / (total - 1.0 - t))
        g += float(np.sum(partial / (t + 2.0)))
        running = float(partial[-1])
    return running + 1.0, g


def anderson_counts(reference: FloatArray, current: FloatArray) -> Result:
    """Anderson-Darling 2-sample test (midrank) on counts per distinct value or bin, in order."""
    keep = (reference + current) > 0
    f = np.stack([reference[keep], current[keep]]).astype(np.float64)
    n = f.sum(axis=1)
    total = float(n.sum())
    if f.shape[1] < 2 or total < 4:
        return 0.0, 1.0  # one distinct value, or too few values: nothing to tell apart
    tied = f.sum(axis=0)
    b = np.cumsum(tied) - tied / 2.0
    m = np.cumsum(f, axis=1) - f / 2.0
    denominator = b * (total - b) - total * tied / 4.0
    inner = tied / total * (total * m - b * n[:, None]) ** 2 / denominator
    a2kn = float(np.sum(inner.sum(axis=1) / n)) * (total - 1.0) / total
    k = 2
    big_n = round(total)
    h, g = _harmonic_terms(big_n)
    H = float(np.sum(1.0 / n))
    a = (4 * g - 6) * (k - 1) + (10 - 6 * g) * H
    b2 = (2 * g - 4) * k**2 + 8 * h * k + (2 * g - 14 * h - 4) * H - 8 * h + 4 * g - 6
    c = (6 * h + 2 * g - 2) * k**2 + (4 * h - 4 * g + 6) * k + (2 * h - 6) * H + 4 * h
    d = (2 * h + 6) * k**2 - 4 * h * k
    sigmasq = (a * total**3 + b2 * total**2 + c * total + d) / (
        (total - 1.0) * (total - 2.0) * (total - 3.0)
    )
    statistic = (a2kn - (k - 1)) / math.sqrt(sigmasq)
    critical = _AD_B0 + _AD_B1 / math.sqrt(k - 1) + _AD_B2 / (k - 1)
    if statistic < critical.min():
        return statistic, float(_AD_SIG.max())
    if statistic > critical.max():
        return statistic, float(_AD_SIG.min())
    fit = np.polyfit(critical, np.log(_AD_SIG), 2)
    return statistic, math.exp(float(np.polyval(fit, statistic)))


def anderson(reference: FloatArray, current: FloatArray) -> Result:
    """Anderson-Darling 2-sample test on raw values (as SciPy's ``anderson_ksamp``, midrank)."""
    values, inverse = np.unique(np.concatenate([reference, current]), return_inverse=True)
    split = len(reference)
    r = np.bincount(inverse[:split], minlength=len(values)).astype(np.float64)
    c = np.bincount(inverse[split:], minlength=len(values)).astype(np.float64)
    return anderson_counts(r, c)


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
        StatTest("anderson", "raw", 0.05, True, anderson, numeric_only=True),
        StatTest("chisquare", "binned", 0.05, True, chisquare),
        StatTest("z", "binned", 0.05, True, z_test, binary_only=True),
        StatTest("jensenshannon", "binned", 0.1, False, jensenshannon),
        StatTest("psi", "binned", 0.1, False, psi),
        StatTest("kl_div", "binned", 0.1, False, kl_div),
        StatTest("hellinger", "binned", 0.1, False, hellinger),
    )
}
