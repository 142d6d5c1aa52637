"""CountNoise: spec validation, calibration, the secure default path, seeds, and the test-only noise-off spec."""

from __future__ import annotations

import json
import math
import secrets
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adtarget import PrivacyBudget
from adtarget.exceptions import ParameterError, PrivacyLeakWarning
from adtarget.reports import CountNoise
from adtarget.reports._noise import gaussian_sigma, zcdp_delta

LAPLACE = CountNoise("discrete_laplace", 1.0)
GAUSS = CountNoise("discrete_gaussian", 1.0, 1e-6)


# --- spec ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "name"), [
    ({"mechanism": "laplace", "epsilon": 1.0}, "mechanism"),
    ({"mechanism": "discrete_laplace", "epsilon": 0.0}, "epsilon"),
    ({"mechanism": "discrete_laplace", "epsilon": math.inf}, "epsilon"),
    ({"mechanism": "discrete_laplace", "epsilon": 1.0, "delta": 1e-6}, "delta"),
    ({"mechanism": "discrete_gaussian", "epsilon": 1.0}, "delta"),
    ({"mechanism": "discrete_gaussian", "epsilon": 1.0, "delta": 1.0}, "delta"),
    ({"mechanism": "discrete_laplace", "epsilon": 1.0, "l1_sensitivity": 0}, "l1_sensitivity"),
    ({"mechanism": "discrete_laplace", "epsilon": 1.0, "l2_sensitivity": math.inf}, "l2_sensitivity"),
])
def test_invalid_specs_name_the_parameter(kwargs: dict, name: str) -> None:
    with pytest.raises(ParameterError, match=name):
        CountNoise(**kwargs)


def test_laplace_scale_is_l1_over_epsilon() -> None:
    spec = CountNoise.for_counts("discrete_laplace", PrivacyBudget(0.5), max_cells_per_person=4)
    assert (spec.l1_sensitivity, spec.l2_sensitivity, spec.scale) == (4.0, 2.0, 8.0)
    assert spec.budget == PrivacyBudget(0.5)
    with pytest.raises(ParameterError, match="sigma"):
        _ = spec.sigma


def test_for_counts_scales_both_sensitivities_by_the_per_cell_bound() -> None:
    spec = CountNoise.for_counts("discrete_gaussian", PrivacyBudget(1.0, 1e-6), max_cells_per_person=9,
                                 max_per_cell=2)
    assert (spec.l1_sensitivity, spec.l2_sensitivity) == (18.0, 6.0)
    with pytest.raises(ParameterError, match="scale"):
        _ = spec.scale
    with pytest.raises(ParameterError, match="max_cells_per_person"):
        CountNoise.for_counts("discrete_laplace", PrivacyBudget(1.0), max_cells_per_person=0)


@pytest.mark.parametrize(("epsilon", "delta", "sens"), [(1.0, 1e-6, 1), (0.1, 1e-6, 1), (1.0, 1e-5, 2),
                                                         (3.0, 1e-5, 1), (0.5, 1e-8, 3)])
def test_gaussian_sigma_is_safe_for_the_exact_scalar_discrete_gaussian(epsilon: float, delta: float,
                                                                       sens: int) -> None:
    """Our σ is never below diffprivlib's exact 1-D discrete calibration (CKS Thm 7), and at most 12 % above."""
    from diffprivlib.mechanisms import GaussianDiscrete

    exact = GaussianDiscrete(epsilon=epsilon, delta=delta, sensitivity=sens)._scale
    ours = gaussian_sigma(epsilon, delta, sens)
    assert exact <= ours <= 1.12 * exact


@settings(max_examples=40, deadline=None)
@given(st.floats(0.05, 5.0), st.floats(1e-10, 1e-3), st.floats(0.5, 20.0))
def test_gaussian_sigma_is_the_smallest_sigma_meeting_delta(epsilon: float, delta: float, l2: float) -> None:
    sigma = gaussian_sigma(epsilon, delta, l2)
    assert zcdp_delta(l2**2 / (2 * sigma**2), epsilon) <= delta
    smaller = sigma * (1 - 1e-6)
    assert zcdp_delta(l2**2 / (2 * smaller**2), epsilon) > delta


def test_zcdp_delta_matches_a_brute_force_minimum_over_alpha() -> None:
    rho, eps = 0.05, 1.0
    alphas = np.linspace(1.001, 50, 200_001)
    brute = np.min(np.exp((alphas - 1) * (alphas * rho - eps) + alphas * np.log1p(-1 / alphas)) / (alphas - 1))
    assert zcdp_delta(rho, eps) == pytest.approx(brute, rel=1e-6)


def test_variance_formulas() -> None:
    alpha = math.exp(-1.0)
    assert LAPLACE.variance == pytest.approx(2 * alpha / (1 - alpha) ** 2, rel=1e-12)
    assert 0.99 * GAUSS.sigma**2 < GAUSS.variance <= GAUSS.sigma**2


def test_explain_is_json_serialisable_and_names_the_calibration() -> None:
    for spec in (LAPLACE, GAUSS):
        out = json.loads(json.dumps(spec.explain()))
        assert out["mechanism"] == spec.mechanism and out["epsilon"] == spec.epsilon
        assert "diffprivlib" in out["sampler"]
    assert GAUSS.explain()["sigma"] == GAUSS.sigma and "zCDP" in GAUSS.explain()["calibration"]
    assert LAPLACE.explain()["scale"] == 1.0


# --- add_noise -------------------------------------------------------------------------------------
def test_add_noise_returns_int64_of_the_same_shape_and_does_not_mutate() -> None:
    counts = np.arange(12, dtype=np.int32).reshape(3, 4)
    before = counts.copy()
    for spec in (LAPLACE, GAUSS):
        out = spec.add_noise(counts)
        assert out.dtype == np.int64 and out.shape == (3, 4)
        np.testing.assert_array_equal(counts, before)
    assert LAPLACE.add_noise(np.zeros(0, dtype=np.int64)).shape == (0,)


@pytest.mark.parametrize("counts", [np.array([1.0, 2.0]), np.array([True, False]), np.array(["1"])])
def test_non_integer_counts_are_refused(counts: np.ndarray) -> None:
    with pytest.raises(ParameterError, match="counts"):
        LAPLACE.add_noise(counts)


def test_noise_is_actually_added() -> None:
    out = LAPLACE.add_noise(np.zeros(200, dtype=np.int64))
    assert np.count_nonzero(out) > 50


class _SpyRandom(secrets.SystemRandom):
    """secrets.SystemRandom that records its instances and the uniforms drawn (7 bytes each in a batch)."""

    instances: list[_SpyRandom] = []

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.calls = 0
        _SpyRandom.instances.append(self)

    def random(self) -> float:
        self.calls += 1
        return super().random()

    def randbytes(self, n: int) -> bytes:
        self.calls += n // 7
        return super().randbytes(n)


@pytest.mark.parametrize("spec", [LAPLACE, GAUSS], ids=["laplace", "gaussian"])
def test_secure_randomness_is_what_runs_without_a_seed(spec: CountNoise, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets, "SystemRandom", _SpyRandom)
    _SpyRandom.instances.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no PrivacyLeakWarning on the default path
        spec.add_noise(np.zeros(50, dtype=np.int64))
    assert len(_SpyRandom.instances) == 1
    assert _SpyRandom.instances[0].calls >= 50  # every cell drew from the secure generator
    assert isinstance(spec._mechanism(None)._rng, secrets.SystemRandom)


def test_a_seed_uses_a_numpy_random_state_and_warns_every_call() -> None:
    for _ in range(2):
        with pytest.warns(PrivacyLeakWarning, match="random_state"):
            a = GAUSS.add_noise(np.zeros(20, dtype=np.int64), random_state=5)
    with pytest.warns(PrivacyLeakWarning):
        b = GAUSS.add_noise(np.zeros(20, dtype=np.int64), random_state=5)
    np.testing.assert_array_equal(a, b)
    assert isinstance(LAPLACE._mechanism(np.random.RandomState(1))._rng, np.random.RandomState)


# --- noise off (tests only) ------------------------------------------------------------------------
def test_disabled_spec_is_refused_without_the_explicit_keyword() -> None:
    off = CountNoise.disabled()
    assert off.is_disabled and off.budget.is_infinite and off.variance == 0.0
    with pytest.raises(ParameterError, match="allow_infinite_epsilon"):
        off.add_noise(np.array([1, 2, 3]))


def test_disabled_spec_returns_exact_counts_with_a_warning() -> None:
    counts = np.array([5, 0, 7], dtype=np.int64)
    with pytest.warns(PrivacyLeakWarning, match="without noise"):
        out = CountNoise.disabled().add_noise(counts, allow_infinite_epsilon=True)
    np.testing.assert_array_equal(out, counts)
    assert "tests only" in CountNoise.disabled().explain()["mechanism"]


def test_an_infinite_gaussian_spec_is_noise_off_too() -> None:
    spec = CountNoise.for_counts("discrete_gaussian", PrivacyBudget(math.inf, 1e-6, allow_infinite_epsilon=True),
                                 max_cells_per_person=3)
    assert spec.is_disabled and spec.sigma == 0.0 and spec.variance == 0.0
    with pytest.raises(ParameterError, match="allow_infinite_epsilon"):
        spec.add_noise(np.array([1]))


def test_keyword_does_not_disable_real_noise() -> None:
    out = LAPLACE.add_noise(np.zeros(200, dtype=np.int64), allow_infinite_epsilon=True)
    assert np.count_nonzero(out) > 50
