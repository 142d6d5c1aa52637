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

from adtarget._core._numbers import exact_real
from adtarget.exceptions import ParameterError, PrivacyLeakWarning

__all__ = ["PrivacyBudget", "ReleaseAccounting", "RemainingBudget", "check_delta", "check_epsilon", "check_positive",
           "checked_seed"]


def _exact(name: str, value: Any, rule: str) -> float:
    number = exact_real(value)
    if number is None:
        raise ParameterError(f"{name} must be {rule} (an int or float, not {type(value).__name__}), got {value!r}")
    return number


#: the smallest ε accepted: below it a release says nothing anyway, and the noise's arithmetic (scale = L1/ε)
#: would overflow after the charge (ε = 1e-320 divided by zero)
MIN_EPSILON = 1e-9


def check_epsilon(name: str, value: Any, *, allow_infinite: bool = False) -> float:
    """``value`` as a float if it is a real number >= MIN_EPSILON (finite unless ``allow_infinite``), else
    ParameterError. Only exact numbers (``_core._numbers``): a float subclass is refused."""
    value = _exact(name, value, "a number > 0")
    if math.isnan(value) or value <= 0:
        raise ParameterError(f"{name} must be a number > 0, got {value!r}")
    if value < MIN_EPSILON:
        raise ParameterError(f"{name} must be at least {MIN_EPSILON:g}, got {value!r}")
    if math.isinf(value) and not allow_infinite:
        raise ParameterError(f"{name} must be finite, got {value!r} (ε = inf is for tests only and needs "
                             f"allow_infinite_epsilon=True)")
    return float(value)


def check_delta(name: str, value: Any) -> float:
    """``value`` as a float if it is a real number in [0, 1), else ParameterError."""
    value = _exact(name, value, "a number in [0, 1)")
    if not 0 <= value < 1:
        raise ParameterError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def check_positive(name: str, value: Any) -> float:
    """``value`` as a float if it is a finite real number > 0, else ParameterError."""
    value = _exact(name, value, "a finite number > 0")
    if not math.isfinite(value) or value <= 0:
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


#: the most Gaussian blocks, and the most pure-ε blocks, one release's accounting may list
MAX_BLOCKS = 64


def _blocks(name: str, values: Any, *, least: float) -> tuple[float, ...]:
    if isinstance(values, str | bytes) or not isinstance(values, tuple | list):
        raise ParameterError(f"{name} must be a tuple of numbers, got {values!r}")
    if len(values) > MAX_BLOCKS:
        raise ParameterError(f"{name} may list at most {MAX_BLOCKS} blocks, got {len(values)}")
    out = []
    for v in values:
        number = exact_real(v)
        if number is None or not math.isfinite(number) or number < least:
            raise ParameterError(f"{name} entries must be finite numbers >= {least:g}, got {v!r}")
        out.append(number)
    return tuple(out)


@dataclass(frozen=True)
class ReleaseAccounting:
    """How one release spends its (ε, δ), for the ledger's Rényi-DP (zCDP) accounting.

    The release's ``PrivacyBudget`` stays its basic-composition total; this says which parts it is made of, so
    a window of such releases can be composed more tightly (docs/privacy/budget-ledger.md "Composition").

    Parameters
    ----------
    gaussian_noise_multipliers : tuple of float, default ()
        σ / Δ2 of each discrete-Gaussian block (``N_Z(0, σ²)`` per count, L2 sensitivity Δ2): each block is
        Δ2² / (2σ²)-zCDP (Canonne, Kamath and Steinke 2020). Finite, > 0.
    pure_epsilons : tuple of float, default ()
        ε of each pure ε-DP block (discrete-Laplace counts): each is ε²/2-zCDP (Bun and Steinke 2016).
    basic : PrivacyBudget, optional
        The (ε, δ)-DP remainder that has no finer description (partition selection); None when there is none.

    Examples
    --------
    >>> ReleaseAccounting(gaussian_noise_multipliers=(10.0,), basic=PrivacyBudget(0.5, 1e-7)).rho
    0.13
    """

    gaussian_noise_multipliers: tuple[float, ...] = ()
    pure_epsilons: tuple[float, ...] = ()
    basic: PrivacyBudget | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "gaussian_noise_multipliers",
                           _blocks("gaussian_noise_multipliers", self.gaussian_noise_multipliers, least=1e-6))
        object.__setattr__(self, "pure_epsilons", _blocks("pure_epsilons", self.pure_epsilons, least=MIN_EPSILON))
        if self.basic is not None and (not isinstance(self.basic, PrivacyBudget) or self.basic.is_infinite):
            raise ParameterError(f"basic must be a finite PrivacyBudget or None, got {self.basic!r}")
        if not (self.gaussian_noise_multipliers or self.pure_epsilons or self.basic is not None):
            raise ParameterError("a ReleaseAccounting must list at least one block (Gaussian, pure ε or basic)")

    @property
    def has_gaussian(self) -> bool:
        """True when the release has discrete-Gaussian blocks."""
        return bool(self.gaussian_noise_multipliers)

    @property
    def rho(self) -> float:
        """The zCDP ρ of the release: Σ 1/(2z²) over Gaussian blocks, Σ ε²/2 over pure and basic blocks (the
        basic block's δ is then its approximate-DP part, :attr:`bad_delta`)."""
        parts = [1.0 / (2.0 * z * z) for z in self.gaussian_noise_multipliers]
        parts += [e * e / 2.0 for e in self.pure_epsilons]
        if self.basic is not None:
            parts.append(self.basic.epsilon ** 2 / 2.0)
        return math.fsum(parts)

    @property
    def bad_delta(self) -> float:
        """δ of the approximate-DP part (the basic block's δ; 0 without one)."""
        return 0.0 if self.basic is None else self.basic.delta
