"""Planning a release before it is made: how accurate its sizes and cells will be at a given ε, and what ε a
wanted accuracy needs (after OpenDP's ``discrete_laplacian_scale_to_accuracy`` and PipelineDP's utility
analysis). Everything here is a function of public parameters only — no data is read, nothing is charged.

The figures are exact: they come from the same noise a release draws (``noises(spec)``) and its exact
distribution (``CountNoise.half_width``, ``CountNoise.tail_quantile``), and from the same thresholds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from adtarget.exceptions import ParameterError
from adtarget.reference._breakdowns import breakdown_dimension
from adtarget.reports._postprocess import noises, thresholds
from adtarget.reports._spec import BREAKDOWN_DIMS, ReleaseSpec

__all__ = ["ReleaseAccuracy", "accuracy", "epsilon_for"]

_PLANNING = "planning"  # the advertiser of the spec a plan is computed for: never charged, never released
_MAX_EPSILON = 1e4


@dataclass(frozen=True)
class ReleaseAccuracy:
    """How accurate a release with these parameters is (public parameters only).

    Attributes
    ----------
    confidence : float
        Of the half-widths: ``noisy ± half_width`` covers the exact count with at least this probability.
    size_half_width, cell_half_width : int
        For a size and for a breakdown cell (``cell_half_width`` 0 without breakdowns), before consistency
        (which only moves a cell closer to a consistent total).
    size_std, cell_std : float
        Standard deviation of one noise draw.
    size_threshold, cell_threshold : int
        The noisy count a segment or a cell must reach to be shown (``false_segment_rate``).
    epsilon, mechanism, budget_split : the release's ε, noise and shares of ε.
    """

    confidence: float
    size_half_width: int
    cell_half_width: int
    size_std: float
    cell_std: float
    size_threshold: int
    cell_threshold: int
    epsilon: float
    mechanism: str
    budget_split: dict[str, float]

    def relative_error(self, size: int) -> float:
        """The size's half-width relative to a segment of ``size`` persons."""
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ParameterError(f"size must be an integer >= 1, got {size!r}")
        return self.size_half_width / size

    def __str__(self) -> str:
        pct = round(100 * self.confidence)
        return (f"ε={self.epsilon:g} ({self.mechanism}): a size is within ±{self.size_half_width} of the truth "
                f"{pct} % of the time (std {self.size_std:.3g}), a cell within ±{self.cell_half_width} "
                f"(std {self.cell_std:.3g}); shown from {self.size_threshold} persons (cells from "
                f"{self.cell_threshold})")


def _plan_spec(epsilon: float, options: dict[str, Any]) -> ReleaseSpec:
    """A ReleaseSpec with the release's public parameters (its segment ids only count segments)."""
    known = {f.name for f in fields(ReleaseSpec)} - {"advertiser", "segment_ids", "epsilon"}
    unknown = sorted(set(options) - known - {"n_segments"})
    if unknown:
        raise ParameterError(f"unknown release option(s) {unknown}; use ReleaseSpec's fields ({sorted(known)}) "
                             f"or n_segments")
    n_segments = options.pop("n_segments", None)
    segments_per_person = options.get("max_segments_per_person", 5)
    n = segments_per_person if n_segments is None else n_segments
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ParameterError(f"n_segments must be an integer >= 1, got {n!r}")
    options.setdefault("breakdowns", BREAKDOWN_DIMS)
    selected = any(breakdown_dimension(d).selected for d in options["breakdowns"])  # region: partition selection
    if options.get("mechanism") == "discrete_gaussian" or selected:
        options.setdefault("delta", 1e-6)
    ids = tuple(f"{_PLANNING}:{i}" for i in range(1, min(n, 10_000) + 1))
    return ReleaseSpec(_PLANNING, ids, epsilon, **options)


def accuracy(epsilon: float, *, confidence: float = 0.95, **options: Any) -> ReleaseAccuracy:
    """The accuracy of a release at ``epsilon`` with the given ReleaseSpec options.

    Parameters
    ----------
    epsilon : float
        Total ε of the release.
    confidence : float, default 0.95
        Of the half-widths.
    **options
        Any ReleaseSpec field but ``advertiser`` and ``segment_ids`` (``delta``, ``mechanism``, ``breakdowns``,
        ``max_segments_per_person``, ``max_cells_per_person``, ``min_reported_size``, ``size_share``,
        ``partition_share``, ``false_segment_rate``), and ``n_segments`` (the number of requested segments,
        default ``max_segments_per_person``; fewer segments lower the sensitivity).

    Examples
    --------
    >>> str(accuracy(1.0))  # doctest: +ELLIPSIS
    'ε=1 (discrete_laplace): a size is within ±25 of the truth 95 % of the time (std 11.8), a cell within ±150...'
    """
    if not 0 < confidence < 1:
        raise ParameterError(f"confidence must be in (0, 1), got {confidence!r}")
    spec = _plan_spec(epsilon, dict(options))
    size_noise, cell_noise = noises(spec)
    size_threshold, cell_threshold = thresholds(spec)
    from adtarget.reports._document import budget_split

    return ReleaseAccuracy(
        confidence=float(confidence), size_half_width=size_noise.half_width(confidence),
        cell_half_width=0 if cell_noise is None else cell_noise.half_width(confidence),
        size_std=math.sqrt(size_noise.variance), cell_std=0.0 if cell_noise is None else math.sqrt(cell_noise.variance),
        size_threshold=size_threshold, cell_threshold=cell_threshold, epsilon=float(epsilon),
        mechanism=spec.mechanism, budget_split=budget_split(spec))


def epsilon_for(relative_error: float, size: int, *, confidence: float = 0.95, **options: Any) -> float:
    """The smallest ε (to 0.1 % and rounded up) at which a segment of ``size`` persons is released within
    ``± relative_error × size`` with probability ``confidence``, and clears the size threshold with probability
    at least ``(1 + confidence) / 2``.

    Example: ``epsilon_for(0.05, 2000)`` answers "what ε do I need for ±5 % on a segment of 2,000?". Options as
    :func:`accuracy`. ParameterError when no ε up to 10,000 reaches it.
    """
    if not isinstance(relative_error, int | float) or isinstance(relative_error, bool) or not 0 < relative_error < 1:
        raise ParameterError(f"relative_error must be a number in (0, 1), got {relative_error!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ParameterError(f"size must be an integer >= 1, got {size!r}")

    def enough(eps: float) -> bool:
        plan = accuracy(eps, confidence=confidence, **options)
        # within ± relative_error, and shown: a size of ``size`` clears the threshold unless its noise is below
        # −half_width, which happens with probability at most (1 − confidence) / 2
        return plan.size_half_width <= relative_error * size and plan.size_threshold <= size - plan.size_half_width

    from adtarget.budget._spec import MIN_EPSILON

    lo, hi = 0.5, 1.0  # bracket [lo, hi] within a factor of 2 first: small ε means wide noise, slow tails
    while not enough(hi):
        lo, hi = hi, hi * 2
        if hi > _MAX_EPSILON:
            raise ParameterError(f"no ε up to {_MAX_EPSILON:g} gives ±{relative_error:g} on a segment of {size} "
                                 f"(its size threshold or the noise's granularity is in the way)")
    while lo > MIN_EPSILON and enough(lo):
        lo, hi = lo / 2, lo
    while hi / lo - 1 > 1e-3:
        mid = math.sqrt(lo * hi)
        lo, hi = (lo, mid) if enough(mid) else (mid, hi)
    return float(f"{hi:.4g}") if enough(float(f"{hi:.4g}")) else hi
