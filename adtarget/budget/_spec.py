"""Privacy budgets as frozen, self-checking values, and the parameter checks the DP primitives share.

A :class:`PrivacyBudget` is an (ε, δ) pair with ε > 0 finite and 0 <= δ < 1. ε = ∞ (no privacy at all) exists
only for tests that compare a release with an exact oracle, and only when the caller says so explicitly with
``allow_infinite_epsilon=True``; the command line never passes it.
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import numpy as np

from adtarget.exceptions import ParameterError, PrivacyLeakWarning

__all__ = ["PrivacyBudget", "RemainingBudget", "check_delta", "check_epsilon", "check_positive", "checked_seed"]


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


#: the smallest ε accepted: below it a release says nothing anyway, and the noise's arithmetic (scale = L1/ε)
#: would overflow after the charge (ε = 1e-320 divided by zero)
MIN_EPSILON = 1e-9


def check_epsilon(name: str, value: Any, *, allow_infinite: bool = False) -> float:
    """``value`` as a float if it is a real number >= MIN_EPSILON (finite unless ``allow_infinite``), else
    ParameterError."""
    if not _is_real(value) or math.isnan(value) or value <= 0:
        raise ParameterError(f"{name} must be a number > 0, got {value!r}")
    if value < MIN_EPSILON:
        raise ParameterError(f"{name} must be at least {MIN_EPSILON:g}, got {value!r}")
    if math.isinf(value) and not allow_infinite:
        raise ParameterError(f"{name} must be finite, got {value!r} (ε = inf is for tests only and needs "
                             f"allow_infinite_epsilon=True)")
    return float(value)


def check_delta(name: str, value: Any) -> float:
    """``value`` as a float if it is a real number in [0, 1), else ParameterError."""
    if not _is_real(value) or not 0 <= value < 1:
        raise ParameterError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def check_positive(name: str, value: Any) -> float:
    """``value`` as a float if it is a finite real number > 0, else ParameterError."""
    if not _is_real(value) or not math.isfinite(value) or value <= 0:
        raise ParameterError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def checked_seed(random_state: Any, *, where: str) -> np.random.RandomState | None:
    """The RandomState to use for ``random_state``: None (secure default) or a seed, which warns every time.

    Parameters
    ----------
    random_state : None, int or numpy.random.RandomState
        None selects diffprivlib's ``secrets.SystemRandom`` path. Anything else makes the noise reproducible,
        which is for tests and notebooks only: a :class:`PrivacyLeakWarning` is emitted on every call.
    where : str
        Name of the caller, for the warning.
    """
    if random_state is None:
        return None
    if isinstance(random_state, np.random.RandomState):
        rng = random_state
    elif isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool) \
            and int(random_state) >= 0:
        rng = np.random.RandomState(int(random_state))
    else:
        raise ParameterError(f"random_state must be None, a non-negative int or a numpy RandomState, "
                             f"got {random_state!r}")
    warnings.warn(f"{where}: random_state is set, so the noise is reproducible and not secure; "
                  f"use it only in tests and notebooks", PrivacyLeakWarning, stacklevel=3)
    return rng


@dataclass(frozen=True)
class PrivacyBudget:
    """An (ε, δ) differential-privacy budget.

    Parameters
    ----------
    epsilon : float
        ε > 0 and finite. ``math.inf`` (no noise) only with ``allow_infinite_epsilon=True``, for tests.
    delta : float, default 0.0
        δ in [0, 1).
    allow_infinite_epsilon : bool, default False, keyword-only
        The explicit test-only switch that lets ``epsilon`` be ``math.inf``. Not part of equality.

    Raises
    ------
    ParameterError
        ``epsilon`` or ``delta`` out of domain (the message names the parameter and the value).

    Examples
    --------
    >>> str(PrivacyBudget(0.5, 1e-6) + PrivacyBudget(0.5))
    'ε=1.0, δ=1e-06'
    """

    epsilon: float
    delta: float = 0.0
    _: KW_ONLY
    allow_infinite_epsilon: bool = field(default=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        eps = check_epsilon("epsilon", self.epsilon, allow_infinite=self.allow_infinite_epsilon)
        object.__setattr__(self, "epsilon", eps)
        object.__setattr__(self, "delta", check_delta("delta", self.delta))

    @property
    def is_infinite(self) -> bool:
        """True for the test-only ε = ∞ budget."""
        return math.isinf(self.epsilon)

    def __add__(self, other: PrivacyBudget) -> PrivacyBudget:
        """Basic sequential composition: (ε1 + ε2, δ1 + δ2)."""
        if not isinstance(other, PrivacyBudget):
            return NotImplemented
        allow = self.allow_infinite_epsilon or other.allow_infinite_epsilon
        return PrivacyBudget(self.epsilon + other.epsilon, self.delta + other.delta, allow_infinite_epsilon=allow)

    def __radd__(self, other: Any) -> PrivacyBudget:
        """``0 + budget`` is ``budget``, so ``sum(budgets)`` works."""
        if isinstance(other, numbers.Number) and other == 0:
            return self
        return NotImplemented

    def __str__(self) -> str:
        return f"ε={self.epsilon!r}, δ={self.delta!r}"


class SpendsBudget:
    """Mixin of the DP stages (count noise, partition selection): the (ε, δ) a stage spends, with ε = ∞ only
    for the test-only disabled stage. The class defines ``epsilon`` and ``delta``."""

    epsilon: float
    delta: float

    @property
    def is_disabled(self) -> bool:
        """True for the test-only ε = ∞ stage (no privacy; refused unless explicitly allowed)."""
        return math.isinf(self.epsilon)

    @property
    def budget(self) -> PrivacyBudget:
        """The (ε, δ) this stage spends."""
        return PrivacyBudget(self.epsilon, self.delta, allow_infinite_epsilon=self.is_disabled)


@dataclass(frozen=True)
class RemainingBudget:
    """What is left of a cap in the current window: ε >= 0 and δ >= 0 (zero when exhausted)."""

    epsilon: float
    delta: float

    def __str__(self) -> str:
        """12 significant digits, so float sums read as the literals they came from (0.1, not 0.10000000000000009)."""
        return f"ε={self.epsilon:.12g}, δ={self.delta:.12g}"
