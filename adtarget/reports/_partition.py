"""DP partition selection for keys that come from the data: thresholded discrete-Laplace counts.

For each candidate key with ``n`` distinct persons, keep the key when ``n + Z >= T``, where ``Z`` is discrete
Laplace noise (diffprivlib ``Geometric``, secure by default, sampled in one batch by
:func:`~adtarget.reports._noise.batch_randomise`) of scale ``b = k / ε`` and ``k`` is the most keys
one person can contribute to. This is the Laplace-threshold partition selection of Korolova, Kenthapadi, Mishra
and Ntoulas (WWW 2009) as implemented in Google's differential-privacy library (``LaplacePartitionSelection``),
with discrete instead of continuous noise so that ``T`` is an exact integer. See ``docs/privacy/noise.md``.

Formula. With ``α = exp(-1/b)``, ``P(Z >= m) = α^m / (1 + α)`` for integers ``m >= 1``. Removing one person
can make at most ``k`` keys disappear; each of those has ``n = 1`` and is kept with probability
``P(Z >= T - 1)``. Requiring ``1 - (1 - P(Z >= T-1))^k <= δ`` gives the per-key bound
``p = 1 - (1 - δ)^(1/k)`` and the smallest integer ``T = 1 + m`` with ``α^m / (1 + α) <= p``, ``m >= 1``.
The noisy counts of keys present on both sides differ by at most 1 in at most ``k`` keys (L1 sensitivity
``k``), so keeping or dropping them is ε-DP post-processing; together the selection is (ε, δ)-DP.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import numpy as np

from adtarget.budget._spec import SpendsBudget, check_epsilon, checked_seed
from adtarget.exceptions import ParameterError, PrivacyLeakWarning
from adtarget.reports._noise import batch_randomise

__all__ = ["PartitionSelection", "select_partitions"]


@dataclass(frozen=True)
class PartitionSelection(SpendsBudget):
    """Thresholded discrete-Laplace partition selection, (ε, δ)-DP with respect to the person.

    Parameters
    ----------
    epsilon : float
        ε > 0, finite; ``math.inf`` only with ``allow_infinite_epsilon=True`` (tests: every key with at least
        one person is kept, with a PrivacyLeakWarning).
    delta : float
        δ in (0, 1): the probability bound that any key held by one person only is released.
    max_partitions_per_person : int
        k >= 1, the most candidate keys a single person counts in (bounded before counting).
    allow_infinite_epsilon : bool, default False, keyword-only
        The explicit test-only switch for ``epsilon=math.inf``.

    Privacy
    -------
    (ε, δ)-DP for the kept set of keys; the counts themselves are not released by this step.

    Examples
    --------
    >>> PartitionSelection(1.0, 1e-5, 1).threshold
    13
    """

    epsilon: float
    delta: float
    max_partitions_per_person: int = 1
    _: KW_ONLY
    allow_infinite_epsilon: bool = field(default=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        eps = check_epsilon("epsilon", self.epsilon, allow_infinite=self.allow_infinite_epsilon)
        object.__setattr__(self, "epsilon", eps)
        delta, k = self.delta, self.max_partitions_per_person
        if isinstance(delta, bool) or not isinstance(delta, int | float) or not 0 < delta < 1:
            raise ParameterError(f"delta must be a number in (0, 1) for partition selection, got {delta!r}")
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ParameterError(f"max_partitions_per_person must be an integer >= 1, got {k!r}")
        object.__setattr__(self, "delta", float(delta))

    @property
    def scale(self) -> float:
        """Discrete Laplace scale b = k / ε."""
        return self.max_partitions_per_person / self.epsilon

    @property
    def per_partition_delta(self) -> float:
        """p = 1 - (1 - δ)^(1/k): the keep-probability bound for a key with one person."""
        return -math.expm1(math.log1p(-self.delta) / self.max_partitions_per_person)

    @property
    def threshold(self) -> int:
        """T: a key is kept when its noisy distinct-person count is >= T."""
        if self.is_disabled:
            return 1
        alpha, p = math.exp(-1.0 / self.scale), self.per_partition_delta
        m = max(1, math.ceil(math.log(p * (1.0 + alpha)) / math.log(alpha)))
        while m > 1 and self._tail(m - 1) <= p:  # guard against rounding in log/ceil: smallest valid m
            m -= 1
        while self._tail(m) > p:
            m += 1
        return 1 + m

    def _tail(self, m: int) -> float:
        """P(Z >= m) for an integer m >= 1."""
        alpha = math.exp(-1.0 / self.scale)
        return alpha**m / (1.0 + alpha)

    def keep_probability(self, counts: np.ndarray) -> np.ndarray:
        """Exact probability that a key with each distinct-person count is kept (vectorised)."""
        n = np.asarray(counts, dtype=np.float64)
        if self.is_disabled:
            return (n >= 1).astype(np.float64)
        alpha = math.exp(-1.0 / self.scale)
        m = self.threshold - n  # keep iff Z >= m
        tail_pos = alpha ** np.maximum(m, 1.0) / (1.0 + alpha)
        tail_neg = 1.0 - alpha ** np.maximum(1.0 - m, 1.0) / (1.0 + alpha)
        return np.where(n <= 0, 0.0, np.where(m >= 1, tail_pos, tail_neg))

    def select(self, person_counts: np.ndarray, random_state: Any = None) -> np.ndarray:
        """Boolean keep mask over candidate keys.

        Parameters
        ----------
        person_counts : numpy.ndarray of int
            Distinct persons per candidate key (>= 0; keys with 0 persons are never kept), after bounding
            each person to ``max_partitions_per_person`` keys.
        random_state : None, int or numpy.random.RandomState, default None
            None (default) uses secure randomness; a seed is for tests and notebooks and warns every time.

        Returns
        -------
        numpy.ndarray of bool, same shape as ``person_counts``.
        """
        counts = self._checked_counts(person_counts)
        if self.is_disabled:
            warnings.warn("PartitionSelection with epsilon=inf keeps every key with a person (tests only)",
                          PrivacyLeakWarning, stacklevel=2)
            return counts > 0
        from diffprivlib.mechanisms import Geometric

        rng = checked_seed(random_state, where="PartitionSelection.select")
        mech = Geometric(epsilon=1.0 / self.scale, sensitivity=1, random_state=rng)
        noise = batch_randomise(mech, counts.size)  # mech.randomise(0) per key, in one batch
        return (counts > 0) & (counts + noise.reshape(counts.shape) >= self.threshold)

    @staticmethod
    def _checked_counts(person_counts: Any) -> np.ndarray:
        arr = np.asarray(person_counts)
        if arr.dtype.kind not in "iu":
            raise ParameterError(f"person_counts must be an integer numpy array, got dtype {arr.dtype}")
        if arr.size and arr.min() < 0:
            raise ParameterError(f"person_counts must be >= 0, got minimum {int(arr.min())}")
        return arr.astype(np.int64)

    def explain(self) -> dict[str, Any]:
        """Parameters and formula of this selection, as a JSON-able dict for reports."""
        if self.is_disabled:
            return {"mechanism": "none (epsilon=inf, tests only): keeps every key with a person",
                    "epsilon": "inf", "delta": self.delta, "threshold": 1}
        return {"mechanism": "thresholded discrete Laplace partition selection (Korolova et al. 2009)",
                "epsilon": self.epsilon, "delta": self.delta,
                "max_partitions_per_person": self.max_partitions_per_person, "scale": self.scale,
                "per_partition_delta": self.per_partition_delta, "threshold": self.threshold,
                "rule": "keep key iff distinct persons + Z >= threshold, Z ~ discrete Laplace(scale)",
                "sampler": "diffprivlib.mechanisms.Geometric, one batch (batch_randomise)"}


def select_partitions(person_counts: np.ndarray, *, epsilon: float, delta: float,
                      max_partitions_per_person: int, random_state: Any = None,
                      allow_infinite_epsilon: bool = False) -> np.ndarray:
    """Keep mask of data-derived keys by thresholded discrete-Laplace partition selection.

    Shorthand for ``PartitionSelection(epsilon, delta, max_partitions_per_person, allow_infinite_epsilon=...)
    .select(person_counts, random_state)``; see :class:`PartitionSelection` for the formula and the guarantee.
    ``epsilon=math.inf`` needs ``allow_infinite_epsilon=True`` (tests only).

    Privacy
    -------
    (ε, δ)-DP with respect to the person, if each person counts in at most ``max_partitions_per_person`` keys.
    """
    spec = PartitionSelection(epsilon, delta, max_partitions_per_person,
                              allow_infinite_epsilon=allow_infinite_epsilon)
    return spec.select(person_counts, random_state)
