"""PrivacyBudget: a frozen, self-checking (ε, δ) with basic composition and the test-only ε = ∞ switch."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adtarget.budget import PrivacyBudget, RemainingBudget
from adtarget.budget._spec import checked_seed
from adtarget.exceptions import ParameterError, PrivacyLeakWarning


def test_str_is_readable_for_reports() -> None:
    assert str(PrivacyBudget(1.0, 1e-6)) == "ε=1.0, δ=1e-06"
    assert str(PrivacyBudget(2)) == "ε=2.0, δ=0.0"
    assert str(RemainingBudget(0.10000000000000009, 0.0)) == "ε=0.1, δ=0"


def test_values_are_normalised_to_float_and_frozen() -> None:
    b = PrivacyBudget(1, 0)
    assert type(b.epsilon) is float and type(b.delta) is float
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.epsilon = 2.0  # type: ignore[misc]


def test_basic_composition_adds_both_parameters() -> None:
    total = PrivacyBudget(0.5, 1e-6) + PrivacyBudget(0.25, 2e-6)
    assert total == PrivacyBudget(0.75, 3e-6)
    assert sum([PrivacyBudget(0.2)] * 5) == PrivacyBudget(1.0)


def test_add_refuses_other_types() -> None:
    with pytest.raises(TypeError):
        PrivacyBudget(1.0) + 1.0  # type: ignore[operator]


def test_composition_past_delta_one_is_refused() -> None:
    with pytest.raises(ParameterError, match="delta"):
        PrivacyBudget(1.0, 0.6) + PrivacyBudget(1.0, 0.6)


@pytest.mark.parametrize(("epsilon", "delta", "name"), [
    (0.0, 0.0, "epsilon"), (-1.0, 0.0, "epsilon"), (math.nan, 0.0, "epsilon"), (math.inf, 0.0, "epsilon"),
    ("1", 0.0, "epsilon"), (True, 0.0, "epsilon"), (None, 0.0, "epsilon"),
    (1.0, -1e-9, "delta"), (1.0, 1.0, "delta"), (1.0, math.nan, "delta"), (1.0, "0", "delta"),
    (1.0, False, "delta"),
])
def test_invalid_budgets_name_the_parameter_and_value(epsilon: object, delta: object, name: str) -> None:
    with pytest.raises(ParameterError, match=name) as info:
        PrivacyBudget(epsilon, delta)  # type: ignore[arg-type]
    assert repr(epsilon if name == "epsilon" else delta) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_infinite_epsilon_needs_the_explicit_switch() -> None:
    with pytest.raises(ParameterError, match="allow_infinite_epsilon"):
        PrivacyBudget(math.inf)
    b = PrivacyBudget(math.inf, allow_infinite_epsilon=True)
    assert b.is_infinite and not PrivacyBudget(1.0).is_infinite
    assert (b + PrivacyBudget(1.0)).is_infinite
    assert str(b) == "ε=inf, δ=0.0"


def test_switch_is_not_part_of_equality() -> None:
    assert PrivacyBudget(1.0, allow_infinite_epsilon=True) == PrivacyBudget(1.0)


@given(st.lists(st.tuples(st.floats(1e-6, 10.0), st.floats(0.0, 1e-3)), min_size=1, max_size=20))
def test_composition_is_the_sum_of_parts(parts: list[tuple[float, float]]) -> None:
    total = sum(PrivacyBudget(e, d) for e, d in parts)
    assert isinstance(total, PrivacyBudget)
    assert math.isclose(total.epsilon, math.fsum(e for e, _ in parts), rel_tol=1e-12)
    assert math.isclose(total.delta, math.fsum(d for _, d in parts), rel_tol=1e-12, abs_tol=1e-18)


def test_seed_warns_every_time_and_none_does_not() -> None:
    for _ in range(2):
        with pytest.warns(PrivacyLeakWarning, match="random_state"):
            assert isinstance(checked_seed(7, where="t"), np.random.RandomState)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert checked_seed(None, where="t") is None


@pytest.mark.parametrize("seed", [-1, 1.5, "7", True, np.random.default_rng(0)])
def test_bad_seeds_are_refused(seed: object) -> None:
    with pytest.raises(ParameterError, match="random_state"):
        checked_seed(seed, where="t")
