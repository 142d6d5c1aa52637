"""Seeded goodness-of-fit of both samplers against their exact pmf, at two scales each, and their moments.

Each check has a negative control (the same samples against a 10 % wider pmf must be rejected), so the test can
fail when a scale is wrong.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from adtarget.exceptions import PrivacyLeakWarning
from adtarget.reports import CountNoise

SPECS = {
    "laplace-b1": (CountNoise("discrete_laplace", 1.0), 50_000),
    "laplace-b10": (CountNoise("discrete_laplace", 0.5, l1_sensitivity=5.0), 50_000),
    "gaussian-s4.5": (CountNoise("discrete_gaussian", 1.0, 1e-6), 20_000),
    "gaussian-s11": (CountNoise("discrete_gaussian", 1.0, 1e-5, l2_sensitivity=2.0 * math.sqrt(2.0)), 20_000),
}


def laplace_pmf(k: np.ndarray, scale: float) -> np.ndarray:
    """Independent oracle: P(k) = (1 - a) / (1 + a) · a^|k|, a = exp(-1/scale)."""
    a = math.exp(-1.0 / scale)
    return (1 - a) / (1 + a) * a ** np.abs(k)


def gaussian_pmf(k: np.ndarray, sigma: float) -> np.ndarray:
    """Independent oracle: P(k) ∝ exp(-k²/2σ²), normalised over ±40σ."""
    support = np.arange(-math.ceil(40 * sigma), math.ceil(40 * sigma) + 1)
    norm = np.exp(-(support.astype(float) ** 2) / (2 * sigma**2)).sum()
    return np.exp(-(k.astype(float) ** 2) / (2 * sigma**2)) / norm


def pmf_of(spec: CountNoise, widen: float = 1.0):  # noqa: ANN201
    if spec.mechanism == "discrete_laplace":
        return lambda k: laplace_pmf(k, spec.scale * widen)
    return lambda k: gaussian_pmf(k, spec.sigma * widen)


@pytest.fixture(scope="module")
def samples() -> dict[str, np.ndarray]:
    out = {}
    for i, (name, (spec, n)) in enumerate(SPECS.items()):
        with pytest.warns(PrivacyLeakWarning):
            out[name] = spec.add_noise(np.zeros(n, dtype=np.int64), random_state=1000 + i)
    return out


def chi_square_pvalue(x: np.ndarray, pmf) -> float:  # noqa: ANN001
    """Chi-square of integer samples against a pmf: inner cells with expectation >= 5, two merged tails."""
    n = x.size
    lo = hi = 0
    while pmf(np.array([lo - 1]))[0] * n >= 5:
        lo -= 1
    while pmf(np.array([hi + 1]))[0] * n >= 5:
        hi += 1
    inner = np.arange(lo, hi + 1)
    p_inner = pmf(inner)
    tail = (1.0 - p_inner.sum()) / 2  # symmetric pmfs
    expected = n * np.concatenate([[tail], p_inner, [tail]])
    observed = np.concatenate([[np.sum(x < lo)], np.bincount(x[(x >= lo) & (x <= hi)] - lo,
                                                             minlength=inner.size), [np.sum(x > hi)]])
    return float(stats.chisquare(observed, expected).pvalue)


@pytest.mark.parametrize("name", list(SPECS))
def test_samples_fit_the_exact_pmf(samples: dict[str, np.ndarray], name: str) -> None:
    spec, _ = SPECS[name]
    assert chi_square_pvalue(samples[name], pmf_of(spec)) > 1e-3


@pytest.mark.parametrize("name", list(SPECS))
def test_goodness_of_fit_rejects_a_wrong_scale(samples: dict[str, np.ndarray], name: str) -> None:
    spec, _ = SPECS[name]
    assert chi_square_pvalue(samples[name], pmf_of(spec, widen=1.1)) < 1e-3


@pytest.mark.parametrize("name", list(SPECS))
def test_mean_and_variance_match_the_claimed_scale(samples: dict[str, np.ndarray], name: str) -> None:
    spec, n = SPECS[name]
    x = samples[name].astype(np.float64)
    var = spec.variance
    nominal = 2 * math.exp(-1 / spec.scale) / math.expm1(-1 / spec.scale) ** 2 \
        if spec.mechanism == "discrete_laplace" else spec.sigma**2
    assert var == pytest.approx(nominal, rel=0.01)
    assert abs(x.mean()) < 4 * math.sqrt(var / n)
    kurtosis = 6.0 if spec.mechanism == "discrete_laplace" else 3.0  # upper bounds for these shapes
    assert abs(x.var() / var - 1) < 4 * math.sqrt((kurtosis - 1) / n)


def test_scales_are_the_two_intended_regimes() -> None:
    assert SPECS["laplace-b1"][0].scale == 1.0 and SPECS["laplace-b10"][0].scale == 10.0
    assert 4 < SPECS["gaussian-s4.5"][0].sigma < 5 and 10 < SPECS["gaussian-s11"][0].sigma < 13
