"""A light black-box audit of a mechanism's ε, in the style of StatDP (Ding et al. 2018) and DP-Sniper
(Bichsel et al. 2021).

Run the mechanism many times on two neighbouring datasets. On the first half of the samples, choose the output
event ``E`` (a threshold on one output coordinate or statistic, in either direction, for either dataset order)
that looks most distinguishing. On the second half, which the choice never saw, bound ``P1 = P(M(D1) ∈ E)``
from below and ``P2 = P(M(D2) ∈ E)`` from above with Clopper-Pearson intervals; then, with the stated
confidence, ``ε >= log((P1_lower - δ) / P2_upper)``. A lower bound above the claimed ε is a proof (at that
confidence) that the mechanism is not ε-DP for this pair of datasets; a bound below it proves nothing in
general — the audit only tests the events it searches (single-coordinate and statistic thresholds).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from adtarget.exceptions import AdtargetError, ParameterError

__all__ = ["EpsilonAudit", "EpsilonViolation", "audit_epsilon", "clopper_pearson", "count_mechanism"]

Mechanism = Callable[[Any, int, np.random.RandomState], np.ndarray]
_THRESHOLDS = 64


class EpsilonViolation(AdtargetError, AssertionError):
    """An audit's lower bound on ε exceeds the claimed ε."""


def clopper_pearson(successes: int, trials: int, alpha: float) -> tuple[float, float]:
    """One-sided Clopper-Pearson bounds, each holding with probability at least ``1 - alpha``.

    Returns ``(lower, upper)``: ``lower`` is the ``alpha`` quantile of Beta(k, n - k + 1) (0 when k = 0) and
    ``upper`` the ``1 - alpha`` quantile of Beta(k + 1, n - k) (1 when k = n).
    """
    from scipy import stats

    k, n = int(successes), int(trials)
    if n < 1 or not 0 <= k <= n:
        raise ParameterError(f"successes must be in [0, trials] and trials >= 1, got {k} of {n}")
    lower = 0.0 if k == 0 else float(stats.beta.ppf(alpha, k, n - k + 1))
    upper = 1.0 if k == n else float(stats.beta.ppf(1.0 - alpha, k + 1, n - k))
    return lower, upper


def _log_ratio(lower: np.ndarray, upper: np.ndarray, delta: float) -> np.ndarray:
    num = np.maximum(lower - delta, 0.0)
    with np.errstate(divide="ignore"):
        return np.where(num > 0, np.log(num) - np.log(np.maximum(upper, 1e-300)), -np.inf)


def _beta_bounds(k: np.ndarray, n: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    from scipy import stats

    k = np.asarray(k, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        lower = np.where(k > 0, stats.beta.ppf(alpha, np.maximum(k, 1), n - k + 1), 0.0)
        upper = np.where(k < n, stats.beta.ppf(1.0 - alpha, k + 1, np.maximum(n - k, 1)), 1.0)
    return lower, upper


@dataclass(frozen=True)
class EpsilonAudit:
    """Outcome of :func:`audit_epsilon`.

    Attributes
    ----------
    claimed_epsilon, claimed_delta : float
    epsilon_lower_bound : float
        ``log((P1_lower - δ) / P2_upper)`` on the held-out half (``-inf`` when nothing was distinguishing).
    confidence : float
        Probability that the bound is valid (both one-sided intervals hold).
    event : str
        The chosen output event.
    p1, p2 : (lower, upper) bounds used: ``p1[0]`` and ``p2[1]`` enter the bound.
    n_samples : int
        Held-out samples per dataset.
    """

    claimed_epsilon: float
    claimed_delta: float
    epsilon_lower_bound: float
    confidence: float
    event: str
    p1: tuple[float, float]
    p2: tuple[float, float]
    n_samples: int

    @property
    def passed(self) -> bool:
        """True when the audit found no evidence against the claimed ε."""
        return self.epsilon_lower_bound <= self.claimed_epsilon

    def raise_if_violated(self) -> EpsilonAudit:
        """Return ``self``, or raise :class:`EpsilonViolation`."""
        if not self.passed:
            raise EpsilonViolation(f"ε lower bound {self.epsilon_lower_bound:.3f} exceeds the claimed ε "
                                   f"{self.claimed_epsilon:g} at confidence {self.confidence:g} "
                                   f"(event {self.event})")
        return self

    def __str__(self) -> str:
        return (f"EpsilonAudit(claimed ε={self.claimed_epsilon:g}, lower bound={self.epsilon_lower_bound:.3f} "
                f"at confidence {self.confidence:g}, event {self.event}, {self.n_samples} held-out samples)")


def count_mechanism(noise: Any) -> Mechanism:
    """The mechanism ``counts -> noise.add_noise(counts)`` of a ``CountNoise``, vectorised over runs.

    The returned function tiles the exact count vector ``n_runs`` times and draws all the noise in one
    ``add_noise`` call through the same sampler a release uses.
    """
    def mechanism(counts: Any, n_runs: int, random_state: np.random.RandomState) -> np.ndarray:
        exact = np.asarray(counts, dtype=np.int64).ravel()
        noisy = noise.add_noise(np.tile(exact, n_runs), random_state)
        return np.asarray(noisy).reshape(n_runs, exact.size)

    return mechanism


def _outputs(mechanism: Mechanism, dataset: Any, n: int, rng: np.random.RandomState,
             statistics: Callable[[np.ndarray], np.ndarray] | None) -> np.ndarray:
    out = np.asarray(mechanism(dataset, n, rng), dtype=np.float64).reshape(n, -1)
    if statistics is not None:
        extra = np.asarray(statistics(out), dtype=np.float64).reshape(n, -1)
        out = np.concatenate([out, extra], axis=1)
    return out


def _candidates(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    pooled = np.concatenate([a, b])
    qs = np.unique(np.quantile(pooled, np.linspace(0.0, 1.0, _THRESHOLDS)))
    return np.unique(np.concatenate([qs, np.unique(pooled)[:_THRESHOLDS], np.unique(pooled)[-_THRESHOLDS:]]))


def _tail_counts(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(#x >= t, #x <= t) for every threshold t."""
    s = np.sort(x)
    return s.size - np.searchsorted(s, t, side="left"), np.searchsorted(s, t, side="right")


def _best_event(a: np.ndarray, b: np.ndarray, alpha: float, delta: float) -> tuple[int, float, str, bool]:
    """(column, threshold, direction, swapped) maximising the bound on the selection half."""
    n = a.shape[0]
    best: tuple[float, int, float, str, bool] = (-np.inf, 0, 0.0, ">=", False)
    for j in range(a.shape[1]):
        t = _candidates(a[:, j], b[:, j])
        ge_a, le_a = _tail_counts(a[:, j], t)
        ge_b, le_b = _tail_counts(b[:, j], t)
        for direction, ka, kb in ((">=", ge_a, ge_b), ("<=", le_a, le_b)):
            for swapped, k1, k2 in ((False, ka, kb), (True, kb, ka)):
                lo, _ = _beta_bounds(k1, n, alpha)
                _, hi = _beta_bounds(k2, n, alpha)
                score = _log_ratio(lo, hi, delta)
                i = int(np.argmax(score))
                if score[i] > best[0]:
                    best = (float(score[i]), j, float(t[i]), direction, swapped)
    return best[1], best[2], best[3], best[4]


def _checked(claimed_epsilon: Any, claimed_delta: Any, n_samples: Any, confidence: Any) -> None:
    if isinstance(claimed_epsilon, bool) or not isinstance(claimed_epsilon, (int, float)) or not claimed_epsilon > 0:
        raise ParameterError(f"claimed_epsilon must be a number > 0, got {claimed_epsilon!r}")
    if isinstance(claimed_delta, bool) or not isinstance(claimed_delta, (int, float)) or not 0 <= claimed_delta < 1:
        raise ParameterError(f"claimed_delta must be a number in [0, 1), got {claimed_delta!r}")
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 100:
        raise ParameterError(f"n_samples must be an integer >= 100, got {n_samples!r}")
    if isinstance(confidence, bool) or not isinstance(confidence, float) or not 0.5 <= confidence < 1:
        raise ParameterError(f"confidence must be a float in [0.5, 1), got {confidence!r}")


def audit_epsilon(mechanism: Mechanism, dataset: Any, neighbour: Any, *, claimed_epsilon: float,
                  claimed_delta: float = 0.0, n_samples: int = 20_000, confidence: float = 0.95,
                  random_state: int = 0,
                  statistics: Callable[[np.ndarray], np.ndarray] | None = None) -> EpsilonAudit:
    """Lower-bound the ε of ``mechanism`` on one pair of neighbouring datasets.

    Parameters
    ----------
    mechanism : callable(dataset, n_runs, random_state) -> array (n_runs, ...)
        Runs the mechanism ``n_runs`` times at once (vectorise: draw all the noise in one call) with the given
        numpy ``RandomState``; each run's output is flattened to a vector. :func:`count_mechanism` wraps a
        ``CountNoise``.
    dataset, neighbour : any
        Two neighbouring inputs (one person added or removed).
    claimed_epsilon, claimed_delta : float
        The guarantee under test.
    n_samples : int, default 20000
        Runs per dataset; half choose the event, half estimate its probabilities.
    confidence : float, default 0.95
        Confidence of the bound (Bonferroni over the two one-sided Clopper-Pearson intervals).
    random_state : int, default 0
        Seed of the runs (the audit is reproducible).
    statistics : callable(outputs) -> array (n_runs, m), optional
        Extra scalar statistics of each run's output to threshold (e.g. a sum over the cells one person
        changes); each output coordinate is always a candidate.

    Returns
    -------
    EpsilonAudit
        ``passed`` is False (and ``raise_if_violated`` raises) when the bound exceeds ``claimed_epsilon``.
    """
    _checked(claimed_epsilon, claimed_delta, n_samples, confidence)
    rng = np.random.RandomState(random_state)
    a = _outputs(mechanism, dataset, n_samples, rng, statistics)
    b = _outputs(mechanism, neighbour, n_samples, rng, statistics)
    half = n_samples // 2
    alpha = (1.0 - confidence) / 2.0
    j, t, direction, swapped = _best_event(a[:half], b[:half], alpha, claimed_delta)
    first, second = (b, a) if swapped else (a, b)
    hits = (lambda x: x >= t) if direction == ">=" else (lambda x: x <= t)
    m = n_samples - half
    k1, k2 = int(hits(first[half:, j]).sum()), int(hits(second[half:, j]).sum())
    p1, p2 = clopper_pearson(k1, m, alpha), clopper_pearson(k2, m, alpha)
    bound = float(_log_ratio(np.array([p1[0]]), np.array([p2[1]]), float(claimed_delta))[0])
    order = "neighbour vs dataset" if swapped else "dataset vs neighbour"
    event = f"output[{j}] {direction} {t:g} ({order})"
    return EpsilonAudit(float(claimed_epsilon), float(claimed_delta), bound, confidence, event, p1, p2, m)
