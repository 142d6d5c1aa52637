"""The release's noise stage and the post-processing of noisy counts.

:func:`noisy_release` is the one function on the way to a report that reads exact counts (a CellCounts): it
draws the noise, selects non-public region keys, post-processes, and returns sealed :class:`ReleasedCounts`,
the only counts the report document is built from. Everything after the noise reads only noisy counts and
public parameters, so it costs no privacy (post-processing invariance). The order is: clamp sizes at 0; make the age-band cells of each segment (one band per person)
sum to its noisy size by Euclidean projection onto the scaled simplex plus largest-remainder rounding; clip
multi-valued cells (region, service) to [0, size]; keep only the selected region keys; then suppress
segments whose size is below ``min_reported_size`` and leave out cells below it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from adtarget._core._provenance import Sealed
from adtarget.budget._spec import PrivacyBudget
from adtarget.exceptions import ParameterError
from adtarget.reference._breakdowns import breakdown_dimension
from adtarget.reports._cells import CellCounts, CountsState, counts_state
from adtarget.reports._noise import CountNoise
from adtarget.reports._partition import PartitionSelection
from adtarget.reports._spec import ReleaseSpec

__all__ = ["NoisyRelease", "PostProcessed", "ReleasedCounts", "as_rng", "largest_remainder", "noisy_release",
           "postprocess", "project_to_total", "released_state"]


@dataclass(frozen=True, eq=False)
class PostProcessed:
    """Post-processed counts, ready for the report (what :func:`postprocess` makes of any counts).

    Attributes
    ----------
    segment_ids : tuple of str
    sizes : int64 array (n_segments,)
        Non-negative noisy sizes.
    reported : bool array (n_segments,)
        Size at or above ``min_reported_size``.
    values : mapping dimension -> tuple of str
    cells : mapping dimension -> int64 array (n_segments, n_values)
        Consistent with ``sizes``: age bands sum to the size, other cells are in [0, size].
    cell_reported : mapping dimension -> bool array (n_segments, n_values)
        Cell at or above ``min_reported_size`` in a reported segment.
    """

    segment_ids: tuple[str, ...]
    sizes: np.ndarray
    reported: np.ndarray
    values: Mapping[str, tuple[str, ...]]
    cells: Mapping[str, np.ndarray]
    cell_reported: Mapping[str, np.ndarray]

    @property
    def suppressed(self) -> int:
        """Segments below the threshold."""
        return int((~self.reported).sum())

    def cells_left_out(self) -> int:
        """Cells of reported segments left out for being below the threshold."""
        return int(sum((~m[self.reported]).sum() for m in self.cell_reported.values()))


class ReleasedCounts(Sealed, maker="the release's noise stage (noisy_release)"):
    """Noisy, post-processed counts: the only counts the report document is built from.

    Made only by :func:`noisy_release`, which is the one function that reads exact counts (CellCounts) on the
    way to a report: it adds the noise, selects region keys and post-processes. Attributes as
    :class:`PostProcessed` (read-only).
    """

    __slots__ = ()
    segment_ids: tuple[str, ...]
    sizes: np.ndarray
    reported: np.ndarray
    values: Mapping[str, tuple[str, ...]]
    cells: Mapping[str, np.ndarray]
    cell_reported: Mapping[str, np.ndarray]

    @property
    def suppressed(self) -> int:
        """Segments below the threshold."""
        return int((~self.reported).sum())


def released_state(counts: object) -> PostProcessed:
    """The record of genuine ReleasedCounts; ProvenanceError for anything else."""
    state: PostProcessed = ReleasedCounts._state_of(counts, "counts")
    return state


def project_to_total(noisy: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Euclidean projection of each row onto ``{x >= 0, sum(x) = total}`` (Duchi et al. 2008), vectorised.

    Parameters
    ----------
    noisy : array (n_rows, n_cols)
    totals : array (n_rows,), >= 0

    Returns
    -------
    float64 array (n_rows, n_cols); rows with total 0 are all zeros.
    """
    v = np.asarray(noisy, dtype=np.float64)
    z = np.asarray(totals, dtype=np.float64)
    if v.shape[1] == 0:
        return v.copy()
    u = -np.sort(-v, axis=1)
    css = np.cumsum(u, axis=1) - z[:, None]
    ind = np.arange(1, v.shape[1] + 1, dtype=np.float64)
    cond = u - css / ind > 0
    rho = v.shape[1] - 1 - np.argmax(cond[:, ::-1], axis=1)
    theta = css[np.arange(v.shape[0]), rho] / (rho + 1.0)
    x = np.maximum(v - theta[:, None], 0.0)
    return np.where((z > 0)[:, None], x, 0.0)


def largest_remainder(x: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Round each row of non-negative ``x`` (summing to an integer total) to integers with that exact sum.

    Floors first, then gives +1 to the cells with the largest fractional parts (ties: lower column first).
    """
    floor = np.floor(x)
    short = np.asarray(totals, dtype=np.int64) - np.rint(floor.sum(axis=1)).astype(np.int64)
    order = np.argsort(-(x - floor), axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(x.shape[1]), x.shape).copy(), axis=1)
    return floor.astype(np.int64) + (rank < short[:, None])


def project_capped(noisy: np.ndarray, caps: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Euclidean projection of each row onto ``{0 <= x <= cap, sum(x) = total}`` (``total <= n · cap``), by
    bisection on the shift θ of ``clip(v - θ, 0, cap)`` (60 halvings: exact to float precision)."""
    v = np.asarray(noisy, dtype=np.float64)
    cap = np.asarray(caps, dtype=np.float64)[:, None]
    z = np.asarray(totals, dtype=np.float64)
    lo = (v.min(axis=1, initial=0.0) - cap[:, 0] - 1.0) if v.size else np.zeros(v.shape[0])
    hi = v.max(axis=1, initial=0.0) + 1.0 if v.size else np.zeros(v.shape[0])
    for _ in range(60):
        mid = (lo + hi) / 2.0
        over = np.clip(v - mid[:, None], 0.0, cap).sum(axis=1) > z
        lo, hi = np.where(over, mid, lo), np.where(over, hi, mid)
    return np.clip(v - hi[:, None], 0.0, cap)


def consistent_cells(noisy: np.ndarray, size: np.ndarray, *, sums_to_size: bool, cells_per_person: int
                     ) -> np.ndarray:
    """Non-negative integer cells of one dimension, each at most the size, that sum to the size
    (``sums_to_size``: each counted person has exactly one value) or to at most ``k × size``."""
    if noisy.shape[1] == 0:
        return noisy.astype(np.int64)
    if sums_to_size:
        return largest_remainder(project_to_total(noisy, size), size)
    clipped = np.clip(noisy, 0, size[:, None])
    limit = cells_per_person * size
    over = clipped.sum(axis=1) > limit
    if not over.any():
        return clipped.astype(np.int64)
    out = clipped.astype(np.int64)
    rows = np.flatnonzero(over)
    projected = project_capped(noisy[rows], size[rows], limit[rows])
    out[rows] = np.minimum(largest_remainder(projected, limit[rows]), size[rows, None])
    return out


def postprocess(sizes: np.ndarray, values: Mapping[str, tuple[str, ...]], cells: Mapping[str, np.ndarray],
                *, segment_ids: tuple[str, ...], keep_values: Mapping[str, np.ndarray],
                min_reported_size: int, size_threshold: int | None = None, cell_threshold: int | None = None,
                cells_per_person: Mapping[str, int] | None = None) -> PostProcessed:
    """Turn noisy counts into consistent, thresholded non-negative integers.

    Parameters
    ----------
    sizes : int array (n_segments,)
        Noisy segment sizes.
    values, cells : mappings per breakdown dimension
        Value names and noisy cells (n_segments, n_values).
    segment_ids : tuple of str
    keep_values : mapping dimension -> bool array (n_values,)
        Values allowed in the report (public keys and keys kept by DP partition selection).
    min_reported_size : int
    size_threshold, cell_threshold : int, optional
        The noise-aware thresholds (:func:`thresholds`; default ``min_reported_size``): a segment is shown when
        its noisy size is at least ``size_threshold``, a cell when its noisy value and its consistent value
        are both at least ``cell_threshold``.
    cells_per_person : mapping dimension -> int, optional
        ``k`` per dimension (default 1): the cells of a dimension sum to at most ``k × size``.

    Returns
    -------
    PostProcessed
    """
    size = np.maximum(np.asarray(sizes, dtype=np.int64), 0)
    reported = size >= max(min_reported_size, size_threshold or 0)
    out_values: dict[str, tuple[str, ...]] = {}
    out_cells: dict[str, np.ndarray] = {}
    out_mask: dict[str, np.ndarray] = {}
    for dim, names in values.items():
        keep = np.asarray(keep_values[dim], dtype=bool)
        noisy = np.asarray(cells[dim], dtype=np.int64)[:, keep]
        entry, k = breakdown_dimension(dim), int((cells_per_person or {}).get(dim, 1))
        whole = entry.consistency == "sums_to_size" or (entry.required and k == 1)
        c = consistent_cells(noisy, size, sums_to_size=whole, cells_per_person=k)
        out_values[dim] = tuple(n for n, kept in zip(names, keep) if kept)
        out_cells[dim] = c
        shown_at = max(min_reported_size, cell_threshold or 0)  # the noisy value and the value shown clear it
        out_mask[dim] = (c >= shown_at) & (noisy >= shown_at) & reported[:, None]
    return PostProcessed(segment_ids, size, reported, out_values, out_cells, out_mask)


# --- noise, partition selection and post-processing of a CellCounts ----------------------------------------
@dataclass(frozen=True, eq=False)
class NoisyRelease:
    """Post-processed counts plus the explanations of the noise and the partition selection."""

    counts: ReleasedCounts
    noise: Mapping[str, object]
    partition_selection: Mapping[str, object]


def _selected_blocks(cells: CountsState, spec: ReleaseSpec, dim: str) -> tuple[tuple[str, ...], np.ndarray,
                                                                               np.ndarray, np.ndarray]:
    """Columns of a dimension with data-derived keys as (names, public cells, non-public cells, non-public
    value persons).

    Public keys (``spec.public_values(dim)``) are all present (zeros when absent from the data), so their noise
    draws do not depend on the data; non-public keys come last, sorted.
    """
    public_names = spec.public_values(dim)
    names, counts, persons = cells.values[dim], cells.cells[dim], cells.value_persons[dim]
    pos = {n: i for i, n in enumerate(names)}
    public = np.zeros((counts.shape[0], len(public_names)), dtype=np.int64)
    for j, r in enumerate(public_names):
        if r in pos:
            public[:, j] = counts[:, pos[r]]
    private = [i for i, n in enumerate(names) if n not in set(public_names)]
    ordered = (*public_names, *(names[i] for i in private))
    return ordered, public, counts[:, private], persons[private]


def as_rng(random_state: Any) -> Any:
    """One RandomState shared by every draw of a release (an int seed would restart identical streams)."""
    if random_state is None or isinstance(random_state, np.random.RandomState):
        return random_state
    if isinstance(random_state, int | np.integer) and not isinstance(random_state, bool) and random_state >= 0:
        return np.random.RandomState(int(random_state))
    raise ParameterError(f"random_state must be None, a non-negative int or a numpy RandomState, "
                         f"got {random_state!r}")


def noises(spec: ReleaseSpec) -> tuple[CountNoise, CountNoise | None]:
    """The noise of the sizes and of the breakdown cells (None without breakdowns), each calibrated to its own
    share of the budget and its own sensitivity: a person moves at most ``S`` sizes and ``S · Σ k`` cells."""
    if math.isinf(spec.epsilon):
        return CountNoise.disabled(), CountNoise.disabled() if spec.breakdowns else None
    s = spec.effective_segments_per_person
    sizes = CountNoise.for_counts(spec.mechanism, PrivacyBudget(*spec.size_budget), max_cells_per_person=s)
    if not spec.breakdowns:
        return sizes, None
    k = sum(spec.cells_per_person(d) for d in spec.breakdowns)
    return sizes, CountNoise.for_counts(spec.mechanism, PrivacyBudget(*spec.breakdown_budget),
                                        max_cells_per_person=s * k)


def thresholds(spec: ReleaseSpec) -> tuple[int, int]:
    """``(size threshold, cell threshold)``: a noisy count is shown only at or above ``min_reported_size - 1``
    plus its noise's upper ``false_segment_rate`` quantile, so a count whose true value is below
    ``min_reported_size`` is shown with probability at most ``false_segment_rate`` (public parameters only)."""
    size_noise, cell_noise = noises(spec)
    m, rate = spec.min_reported_size, spec.false_segment_rate
    size = m if size_noise.is_disabled else m - 1 + size_noise.tail_quantile(rate)
    cell = m if cell_noise is None or cell_noise.is_disabled else m - 1 + cell_noise.tail_quantile(rate)
    return size, cell


def _select(spec: ReleaseSpec, persons: np.ndarray, rng: Any) -> tuple[np.ndarray, dict[str, object]]:
    if math.isinf(spec.epsilon):
        return persons > 0, {"mechanism": "none (epsilon=inf, tests only): every present key kept",
                             "kept": int((persons > 0).sum())}
    sel = PartitionSelection(*spec.partition_budget, spec.selected_cells_per_person)
    keep = sel.select(persons, rng)
    return keep, {**sel.explain(), "kept": int(keep.sum())}


def noisy_release(cells: CellCounts, spec: ReleaseSpec, *, random_state: Any = None,
                  allow_infinite_epsilon: bool = False) -> NoisyRelease:
    """Noise every count once, select non-public region keys, then post-process and threshold.

    Parameters
    ----------
    cells : CellCounts
        Exact bounded counts of ``spec.segment_ids``.
    spec : ReleaseSpec
    random_state : None, int or RandomState
        None: secure noise. A seed makes one RandomState shared by all draws (tests only; warns).
    allow_infinite_epsilon : bool
        Required for ``spec.epsilon == inf`` (no noise, every present key kept).

    Privacy
    -------
    Sizes ``spec.size_budget`` (sensitivity ``S``), breakdown cells ``spec.breakdown_budget`` (sensitivity
    ``S · Σ k``), partition selection ``spec.partition_budget``: basic composition of the three; the rest
    is post-processing. Draws are made in a data-independent order: sizes, the dimensions with public keys in
    the table's order (age bands, services), the public keys of the selected dimensions (regions), then their
    non-public keys.
    """
    rng = as_rng(random_state)
    exact = counts_state(cells)
    n_seg = len(exact.segment_ids)
    selected = spec.selected_breakdowns
    plain = tuple(d for d in spec.breakdowns if d not in selected)
    split = {d: _selected_blocks(exact, spec, d) for d in selected}
    blocks: list[tuple[str, np.ndarray]] = [(d, exact.cells[d]) for d in plain]  # fixed order: the table's
    blocks += [(f"{d}:public", split[d][1]) for d in selected]  # every public block before any data-derived one
    blocks += [(f"{d}:private", split[d][2]) for d in selected]
    values: dict[str, tuple[str, ...]] = {d: exact.values[d] for d in plain}
    keep: dict[str, np.ndarray] = {d: np.ones(len(values[d]), dtype=bool) for d in values}
    size_noise, cell_noise = noises(spec)
    noisy = {"size": size_noise.add_noise(exact.sizes, rng, allow_infinite_epsilon=allow_infinite_epsilon)[:, None]}
    if cell_noise is not None:
        flat = np.concatenate([b.ravel() for _, b in blocks]) if blocks else np.zeros(0, dtype=np.int64)
        noisy_flat, at = cell_noise.add_noise(flat, rng, allow_infinite_epsilon=allow_infinite_epsilon), 0
        for name, b in blocks:
            noisy[name] = noisy_flat[at:at + b.size].reshape(n_seg, -1)
            at += b.size
    partition: dict[str, object] = {}
    if selected:
        chosen, partition = _select(spec, np.concatenate([split[d][3] for d in selected]), rng)
        at = 0
        for d in selected:
            names, public, _, persons = split[d]
            values[d] = names
            noisy[d] = np.concatenate([noisy.pop(f"{d}:public"), noisy.pop(f"{d}:private")], axis=1)
            keep[d] = np.concatenate([np.ones(public.shape[1], dtype=bool), chosen[at:at + persons.size]])
            at += persons.size
    ordered = {d: values[d] for d in spec.breakdowns}
    size_threshold, cell_threshold = thresholds(spec)
    counts = postprocess(noisy["size"][:, 0], ordered, {d: noisy[d] for d in ordered},
                         segment_ids=exact.segment_ids, keep_values=keep, min_reported_size=spec.min_reported_size,
                         size_threshold=size_threshold, cell_threshold=cell_threshold,
                         cells_per_person={d: spec.cells_per_person(d) for d in ordered})
    explained: dict[str, object] = {"sizes": size_noise.explain(), "false_segment_rate": spec.false_segment_rate,
                                    "size_threshold": size_threshold}
    if cell_noise is not None:
        explained.update(breakdowns=cell_noise.explain(), cell_threshold=cell_threshold)
    return NoisyRelease(ReleasedCounts._issue(counts), explained, partition)
