"""Post-processing of noisy counts: non-negative integers, consistent breakdowns, thresholds.

Everything here reads only noisy counts and public parameters, so it costs no privacy (post-processing
invariance). The order is: clamp sizes at 0; make the age-band cells of each segment (one band per person)
sum to its noisy size by Euclidean projection onto the scaled simplex plus largest-remainder rounding; clip
multi-valued cells (region, service) to [0, size]; keep only the selected region keys; then suppress
segments whose size is below ``min_reported_size`` and leave out cells below it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["ReleasedCounts", "largest_remainder", "postprocess", "project_to_total"]


@dataclass(frozen=True, eq=False)
class ReleasedCounts:
    """Post-processed noisy counts, ready for the report.

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


def postprocess(sizes: np.ndarray, values: Mapping[str, tuple[str, ...]], cells: Mapping[str, np.ndarray],
                *, segment_ids: tuple[str, ...], keep_values: Mapping[str, np.ndarray],
                min_reported_size: int) -> ReleasedCounts:
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

    Returns
    -------
    ReleasedCounts
    """
    size = np.maximum(np.asarray(sizes, dtype=np.int64), 0)
    reported = size >= min_reported_size
    out_values: dict[str, tuple[str, ...]] = {}
    out_cells: dict[str, np.ndarray] = {}
    out_mask: dict[str, np.ndarray] = {}
    for dim, names in values.items():
        keep = np.asarray(keep_values[dim], dtype=bool)
        noisy = np.asarray(cells[dim], dtype=np.int64)[:, keep]
        if dim == "age_band":
            c = largest_remainder(project_to_total(noisy, size), size)
        else:
            c = np.clip(noisy, 0, size[:, None])
        out_values[dim] = tuple(n for n, k in zip(names, keep) if k)
        out_cells[dim] = c
        out_mask[dim] = (c >= min_reported_size) & reported[:, None]
    return ReleasedCounts(segment_ids, size, reported, out_values, out_cells, out_mask)
