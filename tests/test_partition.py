"""DP partition selection: the threshold formula, its (ε, δ) guarantee, and a seeded statistical check."""

from __future__ import annotations

import json
import math
import secrets
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from adtarget.exceptions import ParameterError, PrivacyLeakWarning
from adtarget.reports import PartitionSelection
from adtarget.reports._partition import select_partitions


def _tail(alpha: float, m: int) -> float:
    """Independent oracle: P(Z >= m), m >= 1, by summing the discrete Laplace pmf."""
    k = np.arange(m, m + int(60 / -math.log(alpha)) + 100)  # terms beyond are < e^-60 of the first
    return float(np.sum((1 - alpha) / (1 + alpha) * alpha**k))


def test_threshold_matches_the_documented_formula() -> None:
    sel = PartitionSelection(1.0, 1e-5, 1)
    alpha = math.exp(-1.0)
    # smallest m >= 1 with α^m / (1 + α) <= δ: m = 12, T = 13
    assert _tail(alpha, 12) <= 1e-5 < _tail(alpha, 11)
    assert sel.threshold == 13 and sel.scale == 1.0 and sel.per_partition_delta == pytest.approx(1e-5)


def test_per_partition_delta_splits_delta_over_k_keys() -> None:
    sel = PartitionSelection(1.0, 1e-3, 4)
    assert 1 - (1 - sel.per_partition_delta) ** 4 == pytest.approx(1e-3, rel=1e-9)
    assert sel.scale == 4.0


@settings(max_examples=60, deadline=None)
@given(st.floats(0.05, 5.0), st.floats(1e-9, 0.2), st.integers(1, 20))
def test_selection_is_epsilon_delta_dp(epsilon: float, delta: float, k: int) -> None:
    """A one-person key is kept with probability <= p (so <= δ over k keys), T is the smallest such, and
    neighbouring counts n-1, n >= 1 have keep / drop probability ratios <= e^(ε/k)."""
    sel = PartitionSelection(epsilon, delta, k)
    p, alpha, t = sel.per_partition_delta, math.exp(-epsilon / k), sel.threshold
    one = float(sel.keep_probability(np.array([1]))[0])
    assert one == pytest.approx(_tail(alpha, t - 1), rel=1e-9)
    assert one <= p * (1 + 1e-12)
    assert 1 - (1 - one) ** k <= delta * (1 + 1e-9)
    assert t == 2 or _tail(alpha, t - 2) > p * (1 - 1e-9)  # minimal threshold
    n = np.arange(2, t + 40)
    keep_n, keep_prev = sel.keep_probability(n), sel.keep_probability(n - 1)
    bound = math.exp(epsilon / k) * (1 + 1e-9)
    assert np.all(keep_n <= bound * keep_prev) and np.all(keep_prev <= bound * keep_n)
    drop_n, drop_prev = 1 - keep_n, 1 - keep_prev
    resolved = drop_n > 1e-6  # where 1 - keep keeps >= 10 significant digits
    assert np.all(drop_prev[resolved] <= bound * drop_n[resolved])
    assert np.all(drop_n[resolved] <= bound * drop_prev[resolved])


def test_keep_probability_is_monotone_and_zero_for_empty_keys() -> None:
    p = PartitionSelection(0.5, 1e-6, 2).keep_probability(np.arange(0, 300))
    assert p[0] == 0.0 and np.all(np.diff(p[1:]) >= 0) and p[1] < p[50] < p[150] and p[-1] > 0.999


@pytest.mark.parametrize(("epsilon", "delta", "k"), [(1.0, 0.01, 1), (0.5, 0.03, 3)])
def test_one_person_keys_are_kept_at_most_delta_often(epsilon: float, delta: float, k: int) -> None:
    sel = PartitionSelection(epsilon, delta, k)
    trials = 40_000
    with pytest.warns(PrivacyLeakWarning):
        kept = int(sel.select(np.ones(trials, dtype=np.int64), random_state=11).sum())
    exact = float(sel.keep_probability(np.array([1]))[0])
    assert exact <= sel.per_partition_delta
    assert stats.binomtest(kept, trials, exact).pvalue > 1e-3  # the sampler matches the exact formula
    upper = stats.binomtest(kept, trials).proportion_ci(0.999).high
    assert 1 - (1 - upper) ** k < 1.5 * delta  # observed leak rate within the δ bound


def test_large_keys_are_kept_and_empty_keys_never() -> None:
    counts = np.array([0, 0, 500, 1000, 2000], dtype=np.int64)
    with pytest.warns(PrivacyLeakWarning):
        mask = select_partitions(counts, epsilon=1.0, delta=1e-6, max_partitions_per_person=3, random_state=2)
    assert mask.dtype == np.bool_ and mask.tolist() == [False, False, True, True, True]


def test_default_path_draws_from_secrets_system_random(monkeypatch: pytest.MonkeyPatch) -> None:
    draws: list[int] = []

    class Spy(secrets.SystemRandom):
        def random(self) -> float:
            draws.append(1)
            return super().random()

        def randbytes(self, n: int) -> bytes:  # the batch sampler: 7 bytes per uniform
            draws.extend([1] * (n // 7))
            return super().randbytes(n)

    monkeypatch.setattr(secrets, "SystemRandom", Spy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        select_partitions(np.ones(30, dtype=np.int64), epsilon=1.0, delta=1e-6, max_partitions_per_person=1)
    assert len(draws) >= 30


def test_default_path_is_unseeded_and_shape_preserving() -> None:
    mask = select_partitions(np.full((2, 3), 10_000), epsilon=1.0, delta=1e-6, max_partitions_per_person=1)
    assert mask.shape == (2, 3) and mask.all()


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"epsilon": 0.0, "delta": 1e-6, "max_partitions_per_person": 1}, "epsilon"),
    ({"epsilon": math.inf, "delta": 1e-6, "max_partitions_per_person": 1}, "epsilon"),
    ({"epsilon": 1.0, "delta": 0.0, "max_partitions_per_person": 1}, "delta"),
    ({"epsilon": 1.0, "delta": 1.0, "max_partitions_per_person": 1}, "delta"),
    ({"epsilon": 1.0, "delta": 1e-6, "max_partitions_per_person": 0}, "max_partitions_per_person"),
    ({"epsilon": 1.0, "delta": 1e-6, "max_partitions_per_person": 1.5}, "max_partitions_per_person"),
])
def test_invalid_parameters_are_named(kwargs: dict, name: str) -> None:
    with pytest.raises(ParameterError, match=name):
        PartitionSelection(**kwargs)


@pytest.mark.parametrize("counts", [np.array([1.5]), np.array([-1, 3])])
def test_invalid_counts_are_refused(counts: np.ndarray) -> None:
    with pytest.raises(ParameterError, match="person_counts"):
        select_partitions(counts, epsilon=1.0, delta=1e-6, max_partitions_per_person=1)


def test_explain_is_json_serialisable() -> None:
    out = json.loads(json.dumps(PartitionSelection(1.0, 1e-5, 2).explain()))
    assert out["threshold"] == PartitionSelection(1.0, 1e-5, 2).threshold and "Korolova" in out["mechanism"]


def test_infinite_epsilon_needs_the_switch_and_keeps_every_nonempty_key() -> None:
    counts = np.array([0, 1, 2, 50], dtype=np.int64)
    with pytest.raises(ParameterError, match="allow_infinite_epsilon"):
        select_partitions(counts, epsilon=math.inf, delta=1e-6, max_partitions_per_person=1)
    with pytest.warns(PrivacyLeakWarning, match="tests only"):
        mask = select_partitions(counts, epsilon=math.inf, delta=1e-6, max_partitions_per_person=1,
                                 allow_infinite_epsilon=True)
    assert mask.tolist() == [False, True, True, True]
    off = PartitionSelection(math.inf, 1e-6, 2, allow_infinite_epsilon=True)
    assert off.is_disabled and off.budget.is_infinite and off.keep_probability(counts).tolist() == [0, 1, 1, 1]
    assert json.loads(json.dumps(off.explain()))["epsilon"] == "inf"
