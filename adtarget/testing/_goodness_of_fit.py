"""Seeded goodness-of-fit tests of adtarget's noise samplers against their exact probability mass functions.

``chi_square_test`` compares integer samples with a pmf: inner cells whose expected count is at least
``min_expected``, and the two tails pooled into one cell each (so no cell is too small for the chi-square
approximation, and a heavy or light tail still shows up). ``check_count_noise`` samples a ``CountNoise`` through
its own ``add_noise`` (the code path a release uses) and tests it against the exact discrete Laplace or discrete
Gaussian pmf; ``check_partition_selection`` tests the keep decisions of a ``PartitionSelection`` against its
exact keep probability per person count.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from adtarget.exceptions import ParameterError

__all__ = ["GoodnessOfFit", "check_count_noise", "check_partition_selection", "chi_square_test",
           "discrete_gaussian_pmf", "discrete_laplace_pmf"]

Pmf = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class GoodnessOfFit:
    """A chi-square goodness-of-fit result.

    Attributes
    ----------
    name : str
        What was tested.
    statistic : float
        Pearson's chi-square statistic.
    dof : int
        Degrees of freedom.
    p_value : float
        Probability of a statistic at least this large if the samples follow the pmf.
    n_samples : int
    n_cells : int
        Cells after pooling the tails.
    """

    name: str
    statistic: float
    dof: int
    p_value: float
    n_samples: int
    n_cells: int

    def passed(self, alpha: float = 1e-3) -> bool:
        """True when the test does not reject the pmf at level ``alpha``."""
        return self.p_value >= alpha

    def __str__(self) -> str:
        return (f"{self.name}: chi2={self.statistic:.2f}, dof={self.dof}, p={self.p_value:.4g} "
                f"({self.n_samples} samples, {self.n_cells} cells)")


def discrete_laplace_pmf(k: np.ndarray, scale: float) -> np.ndarray:
    """P(k) = (1 - a) / (1 + a) · a^|k| with a = exp(-1/scale)."""
    a = math.exp(-1.0 / scale)
    return (1.0 - a) / (1.0 + a) * a ** np.abs(np.asarray(k, dtype=np.float64))


def discrete_gaussian_pmf(k: np.ndarray, sigma: float) -> np.ndarray:
    """P(k) ∝ exp(-k² / 2σ²), normalised over ±(40σ + 10)."""
    half = math.ceil(40 * sigma) + 10
    support = np.arange(-half, half + 1, dtype=np.float64)
    norm = float(np.exp(-(support**2) / (2.0 * sigma**2)).sum())
    kk = np.asarray(k, dtype=np.float64)
    return np.exp(-(kk**2) / (2.0 * sigma**2)) / norm


def _inner_range(pmf: Pmf, n: int, min_expected: float, centre: int) -> tuple[int, int]:
    lo = hi = centre
    while pmf(np.array([lo - 1]))[0] * n >= min_expected:
        lo -= 1
    while pmf(np.array([hi + 1]))[0] * n >= min_expected:
        hi += 1
    return lo, hi


def chi_square_test(samples: np.ndarray, pmf: Pmf, *, name: str = "samples", min_expected: float = 5.0,
                    centre: int = 0) -> GoodnessOfFit:
    """Pearson chi-square test of integer ``samples`` against ``pmf``, with pooled tails.

    Parameters
    ----------
    samples : array of int
    pmf : callable(int array) -> probability array
        Exact pmf over the integers (must sum to 1).
    name : str
        Label of the result.
    min_expected : float, default 5
        Smallest expected count of an inner cell; cells beyond it are pooled into the two tails.
    centre : int, default 0
        A point of high probability where the inner range starts growing.

    Returns
    -------
    GoodnessOfFit
    """
    x = np.asarray(samples)
    if x.dtype.kind not in "iu" or x.size == 0:
        raise ParameterError(f"samples must be a non-empty integer array, got dtype {x.dtype} size {x.size}")
    n = int(x.size)
    lo, hi = _inner_range(pmf, n, min_expected, centre)
    inner = np.arange(lo, hi + 1)
    p_inner = pmf(inner)
    observed = np.concatenate([[np.count_nonzero(x < lo)], np.bincount(x[(x >= lo) & (x <= hi)] - lo,
                                                                       minlength=inner.size),
                               [np.count_nonzero(x > hi)]]).astype(np.float64)
    tail = max(0.0, 1.0 - float(p_inner.sum()))
    low_tail = _lower_tail(pmf, lo, tail)
    expected = np.concatenate([[low_tail], p_inner, [max(tail - low_tail, 0.0)]]) * n
    return _pearson(name, *_merge_small_tails(observed, expected, min_expected), n)


def _merge_small_tails(observed: np.ndarray, expected: np.ndarray,
                       min_expected: float) -> tuple[np.ndarray, np.ndarray]:
    """Merge a tail cell whose expectation is below ``min_expected`` into its inner neighbour."""
    o, e = list(observed), list(expected)
    if len(e) > 2 and e[0] < min_expected:
        o[1], e[1] = o[1] + o[0], e[1] + e[0]
        o, e = o[1:], e[1:]
    if len(e) > 2 and e[-1] < min_expected:
        o[-2], e[-2] = o[-2] + o[-1], e[-2] + e[-1]
        o, e = o[:-1], e[:-1]
    return np.asarray(o, dtype=np.float64), np.asarray(e, dtype=np.float64)


def _lower_tail(pmf: Pmf, lo: int, tail: float) -> float:
    """P(X < lo), summed until the terms vanish (at most the total tail mass)."""
    total, k, step = 0.0, lo - 1, 4096
    for _ in range(4096):
        block = pmf(np.arange(k - step + 1, k + 1))
        total += float(block.sum())
        if block[0] < 1e-300 or total >= tail:
            break
        k -= step
    return min(total, tail)


def _pearson(name: str, observed: np.ndarray, expected: np.ndarray, n: int) -> GoodnessOfFit:
    """Chi-square over the cells with positive expectation; an observation where none is possible fails."""
    from scipy import stats

    possible = expected > 0
    if np.any(observed[~possible] > 0):
        return GoodnessOfFit(name, math.inf, int(possible.sum()) - 1, 0.0, n, int(possible.sum()))
    o, e = observed[possible], expected[possible]
    statistic = float((((o - e) ** 2) / e).sum())
    dof = max(int(o.size) - 1, 1)
    return GoodnessOfFit(name, statistic, dof, float(stats.chi2.sf(statistic, dof)), n, int(o.size))


def check_count_noise(noise: Any, *, n_samples: int = 50_000, random_state: int = 0,
                      min_expected: float = 5.0) -> GoodnessOfFit:
    """Sample ``noise`` (a ``CountNoise``) through ``add_noise`` on zeros and test it against its exact pmf.

    The discrete Laplace pmf uses ``noise.scale``, the discrete Gaussian ``noise.sigma``. Seeded: emits the
    sampler's PrivacyLeakWarning.
    """
    _check_n("n_samples", n_samples)
    draws = noise.add_noise(np.zeros(n_samples, dtype=np.int64), random_state=random_state)
    if noise.mechanism == "discrete_laplace":
        scale = noise.scale
        return chi_square_test(draws, lambda k: discrete_laplace_pmf(k, scale), min_expected=min_expected,
                               name=f"discrete Laplace (scale={scale:.4g})")
    sigma = noise.sigma
    return chi_square_test(draws, lambda k: discrete_gaussian_pmf(k, sigma), min_expected=min_expected,
                           name=f"discrete Gaussian (sigma={sigma:.4g})")


def check_partition_selection(selection: Any, person_counts: Sequence[int] | np.ndarray, *,
                              n_trials: int = 2_000, random_state: int = 0,
                              min_expected: float = 5.0) -> GoodnessOfFit:
    """Test the keep decisions of ``selection`` (a ``PartitionSelection``) against ``keep_probability``.

    Each count in ``person_counts`` is given to ``select`` ``n_trials`` times in one call. Counts whose
    binomial variance ``n·p·(1-p)`` is below ``min_expected`` are pooled into one cell (their kept total
    against its expectation); a key kept where the exact probability is 0 fails the test outright.
    """
    from scipy import stats

    _check_n("n_trials", n_trials)
    counts = np.asarray(person_counts, dtype=np.int64)
    if counts.ndim != 1 or counts.size == 0:
        raise ParameterError(f"person_counts must be a non-empty 1-d array, got shape {counts.shape}")
    kept = selection.select(np.repeat(counts, n_trials), random_state).reshape(counts.size, n_trials).sum(axis=1)
    p = np.asarray(selection.keep_probability(counts), dtype=np.float64)
    name = f"partition selection keep rate (threshold={selection.threshold})"
    if np.any((p == 0) & (kept > 0)) or np.any((p == 1) & (kept < n_trials)):
        return GoodnessOfFit(name, math.inf, counts.size, 0.0, int(counts.size * n_trials), counts.size)
    var = n_trials * p * (1.0 - p)
    big = var >= min_expected
    terms = list((kept[big] - n_trials * p[big]) ** 2 / var[big])
    pooled_var = float(var[~big].sum())
    if pooled_var > 0:
        terms.append(float(kept[~big].sum() - n_trials * p[~big].sum()) ** 2 / pooled_var)
    statistic, dof = float(np.sum(terms)), max(len(terms), 1)
    return GoodnessOfFit(name, statistic, dof, float(stats.chi2.sf(statistic, dof)),
                         int(counts.size * n_trials), len(terms))


def _check_n(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ParameterError(f"{name} must be an integer >= 1, got {value!r}")
