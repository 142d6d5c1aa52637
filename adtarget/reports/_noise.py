"""Discrete noise for counts: discrete Laplace (pure ε) and discrete Gaussian ((ε, δ)), from diffprivlib.

The samplers are diffprivlib 0.6.6's ``Geometric`` (two-sided geometric = discrete Laplace; Ghosh, Roughgarden
and Sundararajan 2009) and ``GaussianDiscrete`` (exact sampler of Canonne, Kamath and Steinke 2020,
Algorithm 3). With ``random_state=None`` diffprivlib draws from ``secrets.SystemRandom``; a seed switches to a
numpy ``RandomState`` and emits a :class:`~adtarget.exceptions.PrivacyLeakWarning` on every call. No
floating-point Laplace ever touches a count (Mironov 2012). See ``docs/privacy/noise.md``.

Batches. diffprivlib samples one value per Python call (~36 µs). :func:`batch_randomise` is the same
mechanism over a vector: it reads the mechanism object diffprivlib built (its ``_scale`` and its ``_rng``),
draws the uniforms that ``_rng.random()`` would return in one call (``RandomState.random_sample(n)``, or for
``secrets.SystemRandom`` 7 bytes per value from its ``randbytes``, turned into a double exactly as its
``random()`` does), and applies diffprivlib's formula to all of them: the inverse CDF of ``Geometric`` in
numpy, and ``GaussianDiscrete``'s rejection sampler in a compiled kernel (``adtarget.reports._noise_kernels``) that
consumes uniforms in the same order. Fed the same uniforms, both give the same integers (tests prove it).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from adtarget.budget._spec import (
    PrivacyBudget,
    SpendsBudget,
    check_delta,
    check_epsilon,
    check_positive,
    checked_seed,
)
from adtarget.exceptions import ParameterError, PrivacyLeakWarning

__all__ = ["MECHANISMS", "CountNoise", "UniformStream", "batch_randomise", "gaussian_sigma", "uniforms_from_bytes",
           "zcdp_delta"]

MECHANISMS: tuple[str, ...] = ("discrete_laplace", "discrete_gaussian")


def zcdp_delta(rho: float, epsilon: float) -> float:
    """Smallest δ such that ρ-zCDP implies (ε, δ)-DP (Canonne, Kamath, Steinke 2020, Corollary 13).

    ``δ = inf_{α>1} exp((α-1)(αρ-ε) + α·log(1-1/α)) / (α-1)``. The log of the bracket is convex in α with
    derivative ``(2α-1)ρ - ε + log(1-1/α)``; its root is found by bisection. Any α gives a valid (larger)
    δ, so an inexact root only errs on the safe side.
    """
    lo, hi = 1.0 + 1e-9, (epsilon + 1.0) / (2.0 * rho) + 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if (2.0 * mid - 1.0) * rho - epsilon + math.log1p(-1.0 / mid) < 0:
            lo = mid
        else:
            hi = mid
    alpha = (lo + hi) / 2.0
    log_delta = (alpha - 1.0) * (alpha * rho - epsilon) + alpha * math.log1p(-1.0 / alpha) - math.log(alpha - 1.0)
    return min(math.exp(log_delta), 1.0)


def gaussian_sigma(epsilon: float, delta: float, l2_sensitivity: float) -> float:
    """Smallest σ (to 1e-9 relative, rounded up) making the discrete Gaussian (ε, δ)-DP for L2 sensitivity Δ2.

    The multivariate discrete Gaussian ``N_Z(0, σ²)^d`` with ‖Δ‖₂ <= Δ2 is ρ-zCDP with ρ = Δ2² / (2σ²)
    (Canonne, Kamath, Steinke 2020, Proposition 5 summed over independent coordinates), converted to
    (ε, δ) with :func:`zcdp_delta`. This is the accounting OpenDP uses for its discrete Gaussian.
    """
    def leaks(sigma: float) -> bool:
        return zcdp_delta(l2_sensitivity**2 / (2.0 * sigma**2), epsilon) > delta

    lo, hi = l2_sensitivity * 1e-3, l2_sensitivity
    while leaks(hi):
        lo, hi = hi, hi * 2.0
    while hi / lo - 1.0 > 1e-9:
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if leaks(mid) else (lo, mid)
    return hi


def _discrete_gaussian_variance(sigma: float) -> float:
    """Exact variance of N_Z(0, σ²) (slightly below σ²), summed over ±(12σ + 2)."""
    k = np.arange(-(math.ceil(12 * sigma) + 2), math.ceil(12 * sigma) + 3, dtype=np.float64)
    w = np.exp(-(k**2) / (2.0 * sigma**2))
    return float(np.sum(k**2 * w) / np.sum(w))


_SUMMED_SIGMA = 1e4  # above: a bound from the continuous Gaussian instead of a sum over 40σ terms


def _gaussian_tail(sigma: float, q: int) -> float:
    """``P(Z >= q)``, ``q >= 1``, of the discrete Gaussian ``N_Z(0, σ²)``, summed in float64 over
    ``0 <= k <= q + 40σ + 40`` (the mass beyond is below 1e-300). For σ above 1e4 an upper bound instead (so a
    threshold or half-width is never too small): the sum over ``k >= q`` is at most ``w(q)`` plus the integral
    from ``q``, and the normaliser is at least the full integral minus ``w(0) = 1``."""
    if sigma > _SUMMED_SIGMA:
        above = math.exp(-(q * q) / (2.0 * sigma**2)) + sigma * math.sqrt(math.pi / 2.0) * math.erfc(
            q / (sigma * math.sqrt(2.0)))
        return min(above / (sigma * math.sqrt(2.0 * math.pi) - 1.0), 1.0)
    k = np.arange(0, q + math.ceil(40 * sigma) + 41, dtype=np.float64)
    w = np.exp(-(k**2) / (2.0 * sigma**2))
    return float(min(w[q:].sum() / (w[0] + 2.0 * w[1:].sum()), 1.0))


def _smallest(ok: Callable[[int], bool], guess: int) -> int:
    """The smallest non-negative integer ``x`` with ``ok(x)`` (``ok`` monotone), by doubling from ``guess``
    and bisection."""
    hi = max(guess, 1)
    while not ok(hi):
        hi *= 2
    lo = -1  # ok(lo) is False or lo is below the range
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


@dataclass(frozen=True)
class CountNoise(SpendsBudget):
    """Discrete noise for a vector of counts, calibrated to (ε, δ) and the query's sensitivities.

    Parameters
    ----------
    mechanism : {"discrete_laplace", "discrete_gaussian"}
    epsilon : float
        ε > 0, finite (``math.inf`` only through :meth:`disabled`).
    delta : float, default 0.0
        Must be 0 for ``"discrete_laplace"`` (pure ε-DP) and in (0, 1) for ``"discrete_gaussian"``.
    l1_sensitivity, l2_sensitivity : float, default 1.0
        Largest L1 / L2 norm of the change of the count vector when one person is added or removed. The
        Laplace scale uses L1, the Gaussian σ uses L2. :meth:`for_counts` derives both from the bounds.

    Privacy
    -------
    ``add_noise`` is ε-DP (Laplace, scale ``l1_sensitivity / ε``) or (ε, δ)-DP (Gaussian, σ from
    :func:`gaussian_sigma`) with respect to the person, provided the counts' sensitivities are as declared.

    Examples
    --------
    >>> CountNoise.for_counts("discrete_laplace", PrivacyBudget(1.0), max_cells_per_person=5).scale
    5.0
    """

    mechanism: str
    epsilon: float
    delta: float = 0.0
    l1_sensitivity: float = 1.0
    l2_sensitivity: float = 1.0
    _: KW_ONLY
    allow_infinite_epsilon: bool = field(default=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mechanism not in MECHANISMS:
            raise ParameterError(f"mechanism must be one of {MECHANISMS}, got {self.mechanism!r}")
        eps = check_epsilon("epsilon", self.epsilon, allow_infinite=self.allow_infinite_epsilon)
        delta = check_delta("delta", self.delta)
        if self.mechanism == "discrete_laplace" and delta != 0:
            raise ParameterError(f"delta must be 0 for mechanism 'discrete_laplace' (pure ε-DP), got {delta!r}")
        if self.mechanism == "discrete_gaussian" and delta == 0:
            raise ParameterError("delta must be > 0 for mechanism 'discrete_gaussian', got 0.0")
        object.__setattr__(self, "epsilon", eps)
        object.__setattr__(self, "delta", delta)
        object.__setattr__(self, "l1_sensitivity", check_positive("l1_sensitivity", self.l1_sensitivity))
        object.__setattr__(self, "l2_sensitivity", check_positive("l2_sensitivity", self.l2_sensitivity))

    # --- constructors ------------------------------------------------------------------------------
    @classmethod
    def for_counts(cls, mechanism: str, budget: PrivacyBudget, *, max_cells_per_person: int,
                   max_per_cell: int = 1) -> CountNoise:
        """Spec for counts where a person adds at most ``max_per_cell`` to each of ``max_cells_per_person``.

        Δ1 = cells × per-cell, Δ2 = √cells × per-cell.
        """
        for name, value in (("max_cells_per_person", max_cells_per_person), ("max_per_cell", max_per_cell)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ParameterError(f"{name} must be an integer >= 1, got {value!r}")
        return cls(mechanism, budget.epsilon, budget.delta, float(max_cells_per_person * max_per_cell),
                   math.sqrt(max_cells_per_person) * max_per_cell,
                   allow_infinite_epsilon=budget.allow_infinite_epsilon)

    @classmethod
    def disabled(cls) -> CountNoise:
        """The test-only "noise off" spec: ε = ∞, adds nothing.

        ``add_noise`` refuses it unless called with ``allow_infinite_epsilon=True`` (the release passes that
        keyword through; the command line never does), and then warns with PrivacyLeakWarning.
        """
        return cls("discrete_laplace", math.inf, allow_infinite_epsilon=True)

    # --- derived -----------------------------------------------------------------------------------
    @property
    def scale(self) -> float:
        """Discrete Laplace scale b = Δ1 / ε: P(k) ∝ exp(-|k| / b)."""
        self._require("discrete_laplace", "scale")
        return self.l1_sensitivity / self.epsilon

    @cached_property
    def sigma(self) -> float:
        """Discrete Gaussian σ: P(k) ∝ exp(-k² / 2σ²), calibrated by :func:`gaussian_sigma`."""
        self._require("discrete_gaussian", "sigma")
        if self.is_disabled:
            return 0.0
        return gaussian_sigma(self.epsilon, self.delta, self.l2_sensitivity)

    @property
    def variance(self) -> float:
        """Exact variance of one noise draw (0 when disabled)."""
        if self.is_disabled:
            return 0.0
        if self.mechanism == "discrete_laplace":
            alpha = math.exp(-1.0 / self.scale)
            return 2.0 * alpha / math.expm1(-1.0 / self.scale) ** 2
        return _discrete_gaussian_variance(self.sigma)

    def upper_tail(self, q: int) -> float:
        """``P(Z >= q)`` of one noise draw Z (exact, from the pmf; 0 when disabled and q >= 1)."""
        if q <= 0:  # symmetry: P(Z >= q) = 1 - P(Z >= 1 - q)
            return 1.0 - self.upper_tail(1 - q)
        if self.is_disabled:
            return 0.0
        if self.mechanism == "discrete_laplace":
            alpha = math.exp(-1.0 / self.scale)  # P(k) = (1-α)/(1+α) α^|k|, so P(Z >= q) = α^q / (1+α), q >= 1
            return alpha**q / (1.0 + alpha)
        return _gaussian_tail(self.sigma, q)

    def tail_quantile(self, rate: float) -> int:
        """The smallest ``q >= 1`` with ``P(Z >= q) <= rate``: a count ``m - 1 + q`` is cleared by noise
        alone on a true count below ``m`` with probability at most ``rate`` (the noise-aware threshold)."""
        if not 0 < rate < 0.5:
            raise ParameterError(f"rate must be in (0, 0.5), got {rate!r}")
        if self.is_disabled:
            return 1
        if self.mechanism == "discrete_laplace":
            alpha = math.exp(-1.0 / self.scale)
            if alpha <= 0.0:  # noise so small that P(Z >= 1) underflows: any q >= 1 clears the rate
                return 1
            guess = max(1, math.ceil(math.log(rate * (1.0 + alpha)) / math.log(alpha)))
        else:
            guess = max(1, math.ceil(self.sigma * math.sqrt(2.0 * math.log(1.0 / rate))))
        return _smallest(lambda q: self.upper_tail(q) <= rate, guess)

    def half_width(self, confidence: float) -> int:
        """The smallest ``a >= 0`` with ``P(|Z| <= a) >= confidence``: ``noisy ± a`` covers the exact count
        with at least that probability (the report's interval)."""
        if not 0 < confidence < 1:
            raise ParameterError(f"confidence must be in (0, 1), got {confidence!r}")
        if self.is_disabled:
            return 0
        miss = 1.0 - confidence
        return _smallest(lambda a: 2.0 * self.upper_tail(a + 1) <= miss, max(0, self.tail_quantile(miss / 2) - 1))

    def _require(self, mechanism: str, what: str) -> None:
        if self.mechanism != mechanism:
            raise ParameterError(f"{what} is defined for mechanism {mechanism!r} only, got {self.mechanism!r}")

    # --- noise -------------------------------------------------------------------------------------
    def add_noise(self, counts: np.ndarray, random_state: Any = None, *,
                  allow_infinite_epsilon: bool = False) -> np.ndarray:
        """Return ``counts`` plus independent discrete noise per cell, as int64 of the same shape.

        Parameters
        ----------
        counts : numpy.ndarray of integers
            Exact counts (any shape). Floats are refused: noise is added to integers only.
        random_state : None, int or numpy.random.RandomState, default None
            None (default) uses secure randomness; a seed is for tests and notebooks and warns every time.
        allow_infinite_epsilon : bool, default False
            Must be True to use the ε = ∞ spec of :meth:`disabled` (test-only; the counts come back exact).

        Privacy
        -------
        Spends :attr:`budget` once for the whole vector, if the declared sensitivities hold.
        """
        exact = self._checked_counts(counts)
        if self.is_disabled:
            return self._noise_off(exact, allow_infinite_epsilon)
        mech = self._mechanism(checked_seed(random_state, where="CountNoise.add_noise"))
        return exact + batch_randomise(mech, exact.size).reshape(exact.shape)

    @staticmethod
    def _checked_counts(counts: Any) -> np.ndarray:
        arr = np.asarray(counts)
        if arr.dtype.kind not in "iu":
            raise ParameterError(f"counts must be an integer numpy array, got dtype {arr.dtype}")
        return arr.astype(np.int64, copy=True)

    @staticmethod
    def _noise_off(exact: np.ndarray, allow_infinite_epsilon: bool) -> np.ndarray:
        if not allow_infinite_epsilon:
            raise ParameterError("epsilon is inf (CountNoise.disabled(), no noise): pass "
                                 "allow_infinite_epsilon=True, which only tests may do")
        warnings.warn("CountNoise.disabled(): epsilon=inf, counts are released without noise (tests only)",
                      PrivacyLeakWarning, stacklevel=3)
        return exact

    def _mechanism(self, rng: np.random.RandomState | None) -> Any:
        """The diffprivlib sampler for this spec; ``rng=None`` is diffprivlib's secrets.SystemRandom path."""
        from diffprivlib.mechanisms import GaussianDiscrete, Geometric

        if self.mechanism == "discrete_laplace":
            # ratio exp(-ε/Δ1) per unit step, i.e. scale b = Δ1/ε (sensitivity 1 keeps Δ1 real-valued)
            return Geometric(epsilon=self.epsilon / self.l1_sensitivity, sensitivity=1, random_state=rng)
        # sensitivity=0 skips diffprivlib's scalar calibration; randomise() reads only _scale, set to our σ
        mech = GaussianDiscrete(epsilon=self.epsilon, delta=self.delta, sensitivity=0, random_state=rng)
        mech._scale = self.sigma
        return mech

    def explain(self) -> dict[str, Any]:
        """Parameters, calibration and sampler of this noise, as a JSON-able dict for reports."""
        if self.is_disabled:
            return {"mechanism": "none (CountNoise.disabled(), tests only)", "epsilon": "inf", "delta": 0.0}
        out: dict[str, Any] = {"mechanism": self.mechanism, "epsilon": self.epsilon, "delta": self.delta,
                               "l1_sensitivity": self.l1_sensitivity, "l2_sensitivity": self.l2_sensitivity}
        if self.mechanism == "discrete_laplace":
            out.update(scale=self.scale, pmf="P(k) ∝ exp(-|k|/scale)", calibration="scale = l1_sensitivity / ε",
                       sampler="diffprivlib.mechanisms.Geometric (two-sided geometric), one batch (batch_randomise)")
        else:
            out.update(sigma=self.sigma, pmf="P(k) ∝ exp(-k²/(2σ²))",
                       calibration="ρ = l2²/(2σ²)-zCDP → (ε, δ) by Canonne-Kamath-Steinke 2020 Cor. 13",
                       sampler="diffprivlib.mechanisms.GaussianDiscrete (CKS 2020 Algorithm 3), one batch (batch_randomise)")
        out.update(std=math.sqrt(self.variance), randomness="secrets.SystemRandom unless random_state is set")
        return out


# --- batch sampling: diffprivlib's mechanisms over a vector of uniforms ---------------------------------------
_RECIP_BPF = 2.0**-53  # random.RECIP_BPF
_MAX_BUFFER = 1 << 20  # uniforms per round of the Gaussian sampler (8 MB)


def uniforms_from_bytes(raw: bytes) -> np.ndarray:
    """Doubles in [0, 1) from 7 bytes each, exactly as ``secrets.SystemRandom.random()`` makes one from
    ``os.urandom(7)``: ``(int.from_bytes(b, "big") >> 3) * 2**-53``."""
    octets = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 7)
    padded = np.zeros((octets.shape[0], 8), dtype=np.uint8)
    padded[:, 1:] = octets
    return (padded.view(">u8")[:, 0] >> np.uint64(3)).astype(np.float64) * _RECIP_BPF


class UniformStream:
    """The successive values of a diffprivlib mechanism's ``_rng.random()``, drawn in batches.

    ``rng`` is that ``_rng``: a ``secrets.SystemRandom`` (secure default) or a seeded numpy ``RandomState``.
    :meth:`unread` gives back the tail of the last batch, so the next batch starts where a per-value sampler
    would be: a seeded stream stays exactly the per-value one (``random_sample(n)`` equals ``n`` calls of
    ``random()``), and secure bytes are never wasted nor reused out of order.
    """

    def __init__(self, rng: Any) -> None:
        self._rng = rng
        self._spare = np.zeros(0, dtype=np.float64)
        self._state: Any = None

    def draw(self, n: int) -> np.ndarray:
        """The next ``n`` uniforms."""
        if isinstance(self._rng, np.random.RandomState):
            self._state = self._rng.get_state()
            return np.asarray(self._rng.random_sample(n), dtype=np.float64)
        fresh = uniforms_from_bytes(self._rng.randbytes(7 * max(n - self._spare.size, 0)))
        combined = np.concatenate([self._spare, fresh])
        out, self._spare = combined[:n], combined[n:]  # never drop a given-back uniform: that would bias
        return out

    def unread(self, batch: np.ndarray, used: int) -> None:
        """Give back ``batch[used:]`` (``batch`` is the last :meth:`draw`): the next draw starts with them."""
        if isinstance(self._rng, np.random.RandomState):
            self._rng.set_state(self._state)
            self._rng.random_sample(used)
        else:
            self._spare = batch[used:].copy()


def geometric_noise(scale: float, stream: UniformStream, size: int) -> np.ndarray:
    """``size`` draws of diffprivlib ``Geometric.randomise(0)`` with ``_scale = scale`` (= -ε/Δ), as int64.

    diffprivlib: ``u = (random() - 0.5) * (1 + exp(scale))``, ``s = sign(u)``, ``s * floor(log(s*u) / scale)``.
    A uniform of exactly 0.5 (probability 2^-53) makes diffprivlib raise OverflowError (log 0); it is redrawn.
    """
    uniforms = stream.draw(size)
    while (half := uniforms == 0.5).any():
        uniforms[half] = stream.draw(int(half.sum()))
    unif = (uniforms - 0.5) * (1 + np.exp(scale))
    sgn = np.where(unif < 0, -1.0, 1.0)
    return np.round(sgn * np.floor(np.log(sgn * unif) / scale)).astype(np.int64)


def _gamma_table(tau: Any, sigma2: float, n: int) -> np.ndarray:
    """diffprivlib's ``(|y| - tau * sigma2) ** 2 / 2 / sigma2`` for ``|y| < n``, with its scalar types (a numpy
    ``pow``, which differs from ``x * x`` in the last bit now and then)."""
    shift = tau * sigma2
    return np.array([(k - shift) ** 2 / 2 / sigma2 for k in range(n)], dtype=np.float64)


def discrete_gaussian_noise(scale: float, stream: UniformStream, size: int) -> np.ndarray:
    """``size`` draws of diffprivlib ``GaussianDiscrete.randomise(0)`` with ``_scale = scale`` (σ), as int64."""
    from adtarget.reports._noise_kernels import discrete_gaussian

    out = np.zeros(size, dtype=np.int64)
    if scale == 0 or size == 0:
        return out
    tau, sigma2 = 1 / (1 + np.floor(scale)), scale**2
    gammas, filled, floor = _gamma_table(tau, sigma2, int(12 * scale) + 16), 0, 64
    while filled < size:  # about 4(1 + ⌊σ⌋) uniforms per draw
        batch = stream.draw(max(floor, min(_MAX_BUFFER, (size - filled) * 4 * (1 + math.floor(scale)))))
        done, used, need = discrete_gaussian(float(tau), gammas, batch, out, filled)
        stream.unread(batch, used)
        if need:
            gammas = _gamma_table(tau, sigma2, 2 * need + 1)
        elif done == filled:  # one draw needs more uniforms than the batch held
            floor = 2 * batch.size
        filled = done
    return out


_SAMPLERS: dict[str, Callable[[float, UniformStream, int], np.ndarray]] = {
    "Geometric": geometric_noise, "GaussianDiscrete": discrete_gaussian_noise}


def batch_randomise(mech: Any, size: int) -> np.ndarray:
    """``[mech.randomise(0) for _ in range(size)]`` as int64, in one batch, from ``mech._rng``'s stream.

    ``mech`` is a diffprivlib ``Geometric`` (sensitivity 1) or ``GaussianDiscrete`` whose ``_scale`` is set.
    """
    sampler = _SAMPLERS[type(mech).__name__]
    return sampler(float(mech._scale), UniformStream(mech._rng), int(size))
