"""Planning tools and the noise-aware thresholds: ``adtarget.accuracy`` and ``adtarget.epsilon_for`` agree with
the noise a release draws, the thresholds keep noise-only segments out at the stated rate, and the 95 %
intervals cover the exact sizes (sampling checks with fixed seeds; no timing)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import adtarget
from adtarget import PrivacyBudget
from adtarget.exceptions import ParameterError
from adtarget.reports import CountNoise

pytestmark = pytest.mark.filterwarnings("ignore::adtarget.exceptions.PrivacyLeakWarning")


@pytest.mark.parametrize("mechanism, budget", [("discrete_laplace", PrivacyBudget(0.6)),
                                               ("discrete_gaussian", PrivacyBudget(0.6, 1e-6))])
def test_tail_quantile_and_half_width_match_sampling(mechanism, budget):
    noise = CountNoise.for_counts(mechanism, budget, max_cells_per_person=5)
    q, a = noise.tail_quantile(1e-3), noise.half_width(0.95)
    assert noise.upper_tail(q) <= 1e-3 < noise.upper_tail(q - 1)
    assert 2 * noise.upper_tail(a + 1) <= 0.05 < 2 * noise.upper_tail(a)
    z = noise.add_noise(np.zeros(300_000, dtype=np.int64), 7)
    assert abs(np.mean(z >= q) - noise.upper_tail(q)) < 4e-4
    assert abs(np.mean(np.abs(z) <= a) - (1 - 2 * noise.upper_tail(a + 1))) < 3e-3
    assert abs(np.mean(z >= 3) - noise.upper_tail(3)) < 3e-3


def test_laplace_tail_is_the_closed_form():
    noise = CountNoise("discrete_laplace", 1.0, l1_sensitivity=5.0)
    alpha = math.exp(-1 / 5)
    for q in (1, 7, 40):
        assert noise.upper_tail(q) == pytest.approx(alpha**q / (1 + alpha), rel=1e-12)
    assert noise.upper_tail(0) == pytest.approx(1 - alpha / (1 + alpha))


def test_accuracy_is_what_the_release_draws():
    plan = adtarget.accuracy(1.0)
    assert plan.budget_split == {"sizes": 0.6, "breakdowns": 0.3, "partition_selection": 0.1}
    assert plan.size_std == pytest.approx(math.sqrt(CountNoise("discrete_laplace", 0.6, l1_sensitivity=5).variance))
    assert (plan.size_threshold, plan.cell_threshold) == (159, 706)
    sizes_only = adtarget.accuracy(1.0, breakdowns=())
    assert sizes_only.size_half_width < plan.size_half_width and sizes_only.cell_half_width == 0
    assert plan.relative_error(2000) == plan.size_half_width / 2000
    assert "within ±" in str(plan)


def test_epsilon_for_answers_the_planning_question():
    eps = adtarget.epsilon_for(0.05, 2000)
    assert adtarget.accuracy(eps).size_half_width <= 100
    assert adtarget.accuracy(eps * 0.99).size_half_width > 100 or adtarget.accuracy(eps * 0.99).size_threshold > 2000
    assert adtarget.epsilon_for(0.05, 2000, breakdowns=()) < eps  # no breakdowns: the sizes get all of it
    gaussian = adtarget.epsilon_for(0.05, 2000, mechanism="discrete_gaussian")
    assert adtarget.accuracy(gaussian, mechanism="discrete_gaussian").size_half_width <= 100


@pytest.mark.parametrize("bad", [{"relative_error": 0}, {"relative_error": 1.5}, {"size": 0}, {"size": 2.5}])
def test_epsilon_for_checks_its_arguments(bad):
    args = {"relative_error": 0.05, "size": 2000, **bad}
    with pytest.raises(ParameterError):
        adtarget.epsilon_for(args["relative_error"], args["size"])


def test_unknown_options_are_named():
    with pytest.raises(ParameterError, match="max_segment_per_person"):
        adtarget.accuracy(1.0, max_segment_per_person=3)


def test_no_segment_below_the_minimum_size_clears_the_threshold_at_a_loose_rate():
    """With ``false_segment_rate`` 0.01 the threshold is cleared by a true size of ``min_reported_size - 1`` in
    at most 1 % of draws (sampled: 50,000 draws of the sizes' noise)."""
    spec = adtarget.ReleaseSpec("acme", ["iab-2.2:1"], 1.0, breakdowns=(), false_segment_rate=0.01)
    from adtarget.reports._postprocess import noises, thresholds

    size_noise, _ = noises(spec)
    threshold, _ = thresholds(spec)
    noisy = size_noise.add_noise(np.full(50_000, spec.min_reported_size - 1, dtype=np.int64), 3)
    assert np.mean(noisy >= threshold) <= 0.01 + 0.002
    assert np.mean(noisy >= threshold - 3) > 0.01  # and the threshold is not needlessly high
