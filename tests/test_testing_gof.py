"""adtarget.testing goodness-of-fit: every sampler against its exact pmf (seeded chi-square, pooled tails),
each with a negative control that must be rejected, so the tests can fail."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adtarget.exceptions import ParameterError
from adtarget.reports import CountNoise, PartitionSelection
from adtarget.testing import (
    GoodnessOfFit,
    check_count_noise,
    check_partition_selection,
    chi_square_test,
    discrete_gaussian_pmf,
    discrete_laplace_pmf,
)

pytestmark = pytest.mark.filterwarnings("ignore::adtarget.exceptions.PrivacyLeakWarning")
ALPHA = 1e-3


@pytest.mark.parametrize(("noise", "n"), [
    (CountNoise("discrete_laplace", 1.0), 20_000),
    (CountNoise("discrete_laplace", 0.9, l1_sensitivity=20.0), 20_000),  # the default release's count noise
    (CountNoise("discrete_gaussian", 1.0, 1e-6), 8_000),
], ids=["laplace-b1", "laplace-default-release", "gaussian-s4.5"])
def test_count_noise_matches_its_exact_pmf(noise, n):
    result = check_count_noise(noise, n_samples=n, random_state=7)
    assert isinstance(result, GoodnessOfFit) and result.passed(ALPHA), str(result)
    assert result.n_samples == n and result.n_cells >= 5


def test_wrong_scale_is_rejected():
    draws = CountNoise("discrete_laplace", 1.0).add_noise(np.zeros(20_000, dtype=np.int64), random_state=3)
    assert not chi_square_test(draws, lambda k: discrete_laplace_pmf(k, 1.25)).passed(ALPHA)
    assert chi_square_test(draws, lambda k: discrete_laplace_pmf(k, 1.0)).passed(ALPHA)


def test_gaussian_shaped_samples_are_not_laplace():
    noise = CountNoise("discrete_gaussian", 1.0, 1e-6)
    draws = noise.add_noise(np.zeros(8_000, dtype=np.int64), random_state=4)
    scale = 1.0 / math.log1p(1.0 / noise.sigma)  # a Laplace of comparable spread
    assert not chi_square_test(draws, lambda k: discrete_laplace_pmf(k, scale)).passed(ALPHA)


def test_pmfs_are_normalised():
    k = np.arange(-2000, 2001)
    assert discrete_laplace_pmf(k, 22.0).sum() == pytest.approx(1.0, abs=1e-12)
    assert discrete_gaussian_pmf(k, 11.3).sum() == pytest.approx(1.0, abs=1e-12)


def test_impossible_observation_fails_outright():
    result = chi_square_test(np.array([0] * 100 + [5]), lambda k: np.where(k == 0, 1.0, 0.0))
    assert result.p_value == 0.0 and not result.passed()


def test_partition_selection_keep_rate_matches_exact_probability():
    selection = PartitionSelection(0.1, 1e-6, 1)  # threshold 133, scale 10
    t = selection.threshold
    counts = np.r_[0:3, t - 40:t + 40]  # never-kept, far-below and the whole transition
    result = check_partition_selection(selection, counts, n_trials=200, random_state=5)
    assert result.passed(ALPHA), str(result)


def test_partition_selection_with_a_wrong_threshold_is_rejected():
    class OffByTwo(PartitionSelection):
        def select(self, person_counts, random_state=None):  # noqa: ANN001, ANN202 - a broken mechanism
            return super().select(np.asarray(person_counts) + 2, random_state)

    broken = OffByTwo(0.1, 1e-6, 1)
    t = broken.threshold
    counts = np.arange(t - 40, t + 40)
    assert not check_partition_selection(broken, counts, n_trials=200, random_state=5).passed(ALPHA)


@pytest.mark.parametrize("bad", [0, -5, 1.5, True])
def test_sample_sizes_are_validated(bad):
    with pytest.raises(ParameterError, match="n_samples"):
        check_count_noise(CountNoise("discrete_laplace", 1.0), n_samples=bad)


def test_samples_must_be_integers():
    with pytest.raises(ParameterError, match="integer array"):
        chi_square_test(np.array([0.5]), lambda k: discrete_laplace_pmf(k, 1.0))
