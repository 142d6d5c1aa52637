"""Compiled kernels of interest profiles: the events over a per-person cap, and the persons × columns CSR.

:func:`dropped_events` ranks the events of the persons over the cap only, one person at a time (a partition on
time, then the events at the cut-off time by weight and category). :func:`profile_csr` builds the canonical
CSR matrix of ``coo_matrix((values, (person, column))).tocsr()`` in linear time: a stable counting sort of the
kept events by person (in cache-sized blocks of rows, each value decayed as its event is read), then one pass
per row that adds its values into a dense scratch row, marks its columns in a bitmap (or a list, for thousands
of columns) and writes the touched columns in ascending order. Each cell is ``0.0 + v1 + v2 + ...`` over its
events in input order, as ``np.add.at`` on a zero row sums them: deterministic and platform-independent
(scipy's sum follows its C++ library's unstable sort, so the two may differ in the last bits). Kernels trust
their inputs (validated by the gate and ``build_profiles``).
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numba.cpython.unsafe import numbers

from adtarget._core._intrinsics import prefetch as _prefetch

__all__ = ["count_rows", "decayed_weights", "dropped_events", "profile_csr"]

_SMALL_ROW = 32  # rows touching at most this many columns sort them by insertion, longer ones by np.sort
_PREFETCH_BYTES = 128  # a block's write stream is fetched this far ahead of its cursor (two cache lines)
_trailing_zeros: Any = numbers.trailing_zeros  # LLVM's cttz: index of the lowest set bit (tzcnt)
_BITMAP_WORDS = 64  # up to 64 * 64 local columns, a row's columns are marked in a bitmap of uint64 words


@numba.njit(cache=True, nogil=True, inline="always")
def _decayed(weight: float, ts: int, window_end: int, scale: float) -> float:
    """``weight * exp2(-max(window_end - ts, 0) / scale)``, the operations of ``decayed_weights`` (libm exp2)."""
    age = window_end - ts
    return weight * np.exp2(-np.float64(age if age > 0 else 0) / scale)


@numba.njit(cache=True, nogil=True)
def decayed_weights(ts: np.ndarray, weight: np.ndarray, window_end: int, scale: float, out: np.ndarray) -> None:
    """``out[:] = weight * exp2(-max(window_end - ts, 0) / scale)`` (float64), by :func:`_decayed`."""
    for i in range(ts.size):
        out[i] = _decayed(weight[i], ts[i], window_end, scale)


@numba.njit(cache=True, nogil=True)
def count_rows(row: np.ndarray, counts: np.ndarray) -> None:
    """``counts += np.bincount(row, minlength=counts.size)`` in one pass (``row`` in range)."""
    for i in range(row.size):
        counts[row[i]] += 1


@numba.njit(cache=True, nogil=True)
def _beyond_cap(ts: np.ndarray, weight: np.ndarray, category: np.ndarray, mine: np.ndarray,
                cap: int) -> np.ndarray:
    """The events of ``mine`` (one person's, ascending) outside its first ``cap`` by recency rank.

    Rank: ``np.lexsort((category, -weight, -ts))`` of them (ties by position). By selection: events newer than
    the ``cap``-th newest timestamp are in, older ones out; the ones at that timestamp are ranked.
    """
    when = ts[mine]
    last = np.partition(when, when.size - cap)[when.size - cap]
    at_last = mine[when == last]
    places = cap - np.count_nonzero(when > last)  # left for the events at the last timestamp
    order = np.argsort(category[at_last], kind="mergesort")
    order = order[np.argsort(-weight[at_last[order]], kind="mergesort")]
    return np.concatenate((mine[when < last], at_last[order[places:]]))


@numba.njit(cache=True, nogil=True)
def _events_by_person(person: np.ndarray, counts: np.ndarray, over: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The events of the persons ``over`` (ascending ids), grouped by person in input order, and group bounds."""
    flagged = np.zeros((counts.size + 63) >> 6, dtype=np.uint64)  # a bit per person: stays in L1/L2
    slot = np.zeros(counts.size, dtype=np.int32)
    bounds = np.zeros(over.size + 1, dtype=np.int64)
    for k in range(over.size):
        flagged[over[k] >> 6] |= np.uint64(1) << np.uint64(over[k] & 63)
        slot[over[k]] = k
        bounds[k + 1] = bounds[k] + counts[over[k]]
    grouped = np.empty(bounds[-1], dtype=np.int64)
    cursor = bounds[:-1].copy()
    for i in range(person.size):
        if (flagged[person[i] >> 6] >> np.uint64(person[i] & 63)) & np.uint64(1):
            k = slot[person[i]]
            grouped[cursor[k]] = i
            cursor[k] += 1
    return grouped, bounds


@numba.njit(cache=True, nogil=True)
def dropped_events(events: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], counts: np.ndarray, cap: int,
                   out: np.ndarray) -> None:
    """The events beyond each person's ``cap`` most recent, ascending, into ``out``.

    ``events`` is (person, ts, weight, category); ``counts`` is ``np.bincount(person)``; ``out`` is sized by the
    caller to ``sum(max(counts - cap, 0))``. A person's events rank newest first, then heaviest, then lowest
    category, then first in input order (``np.lexsort`` of the global ``capped_events_mask`` did the same).
    """
    person, ts, weight, category = events
    grouped, bounds = _events_by_person(person, counts, np.flatnonzero(counts > cap))
    n = 0
    for k in range(bounds.size - 1):
        mine = grouped[bounds[k]:bounds[k + 1]]
        beyond = _beyond_cap(ts, weight, category, mine, cap)
        out[n:n + beyond.size] = beyond
        n += beyond.size
    out.sort()


@numba.njit(cache=True, nogil=True)
def _scatter_to_blocks(events: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], column_of: np.ndarray,
                       decay: tuple[int, float], dropped: np.ndarray, starts: np.ndarray, shift: int,
                       col_bits: int, cols: np.ndarray, vals: np.ndarray) -> None:
    """Stable scatter of the kept events into blocks of ``2**shift`` rows (one write stream per block).

    ``events`` is (row, category, weight, ts); each kept event's value is its weight, decayed by
    :func:`_decayed` when ``decay``'s scale is finite. ``dropped`` lists the events left out, ascending, ended by
    ``row.size``. ``cols`` gets ``(row within the block) << col_bits | column`` (fits an int32:
    ``shift + col_bits <= 31``).
    """
    row, category, weight, ts = events
    window_end, scale = decay
    decays = scale < np.inf
    cursor = starts[:-1].copy()
    skip = 0
    for i in range(row.size):
        if i == dropped[skip]:
            skip += 1
            continue
        b = row[i] >> shift
        dest = cursor[b]
        _prefetch(cols, dest + _PREFETCH_BYTES // 4)  # the lines this block writes next: its write
        _prefetch(vals, dest + _PREFETCH_BYTES // 8)  # stream is one of ~130, too many for the CPU to detect
        cols[dest] = ((row[i] - (b << shift)) << col_bits) | column_of[category[i]]
        vals[dest] = _decayed(weight[i], ts[i], window_end, scale) if decays else weight[i]
        cursor[b] = dest + 1


@numba.njit(cache=True, nogil=True)
def _scatter_block(indptr: np.ndarray, first: int, last: int, col_bits: int, cols: np.ndarray,
                   vals: np.ndarray, block_cols: np.ndarray, block_vals: np.ndarray) -> None:
    """Stable counting sort of the entries of rows ``first:last`` (one block) by row into the block scratch.

    Row ``r`` lands at ``indptr[r] - indptr[first]`` on of ``block_cols`` (its columns) and ``block_vals``.
    """
    lo = indptr[first]
    cursor = indptr[first:last] - lo
    mask = (1 << col_bits) - 1
    for j in range(lo, indptr[last]):
        r = cols[j] >> col_bits
        dest = cursor[r]
        block_cols[dest], block_vals[dest] = cols[j] & mask, vals[j]
        cursor[r] = dest + 1


@numba.njit(cache=True, nogil=True)
def _emit_bitmap_row(bits: np.ndarray, words: np.uint64, column_id: np.ndarray, dense: np.ndarray,
                     cols: np.ndarray, vals: np.ndarray, nnz: int) -> int:
    """Write the columns set in ``bits`` in ascending order with their sums; reset ``bits`` and ``dense``.

    ``words`` marks the words of ``bits`` that have a bit set: only those are read.
    """
    while words != 0:
        w = _trailing_zeros(words)
        words &= words - np.uint64(1)
        x = bits[w]
        bits[w] = 0
        while x != 0:
            c = (w << 6) + _trailing_zeros(x)
            x &= x - np.uint64(1)
            cols[nnz], vals[nnz] = column_id[c], dense[c]
            dense[c] = 0.0
            nnz += 1
    return nnz


@numba.njit(cache=True, nogil=True)
def _sum_rows_bitmap(block: tuple[np.ndarray, np.ndarray], bounds: np.ndarray, indptr: np.ndarray,
                     cols: np.ndarray, vals: np.ndarray, first: int, last: int, nnz: int,
                     column_id: np.ndarray, dense: np.ndarray, bits: np.ndarray) -> int:
    """Sum each row of ``first:last`` by column in event order into ``cols``/``vals`` from ``nnz`` on.

    Row ``r`` is ``bounds[r]:bounds[r + 1]``, less ``bounds[first]``, of the block's (local columns, values)
    (see :func:`_scatter_block`); its values accumulate into the zeroed ``dense`` (``0.0 + v1 + v2 + ...``
    in the row's order) and its columns are marked in the bitmap ``bits`` (uint64 words, at most 64), read
    back in ascending order (zero sums included). ``indptr[r + 1]`` is set to the new end; returns the new
    ``nnz``. For few local columns (a bitmap of a few words per row).
    """
    block_cols, block_vals = block
    lo = bounds[first]
    for r in range(first, last):
        words = np.uint64(0)
        for j in range(bounds[r] - lo, bounds[r + 1] - lo):
            c = block_cols[j]
            bits[c >> 6] |= np.uint64(1) << np.uint64(c & 63)
            words |= np.uint64(1) << np.uint64(c >> 6)
            dense[c] += block_vals[j]
        nnz = _emit_bitmap_row(bits, words, column_id, dense, cols, vals, nnz)
        indptr[r + 1] = nnz
    return nnz


@numba.njit(cache=True, nogil=True)
def _sort_touched(touched: np.ndarray, k: int) -> None:
    """Sort ``touched[:k]`` (distinct column ids) in place: insertion sort for the usual few, else np.sort."""
    if k > _SMALL_ROW:
        touched[:k] = np.sort(touched[:k])
        return
    for i in range(1, k):
        c = touched[i]
        m = i
        while m > 0 and touched[m - 1] > c:
            touched[m] = touched[m - 1]
            m -= 1
        touched[m] = c


@numba.njit(cache=True, nogil=True)
def _sum_rows_listed(block: tuple[np.ndarray, np.ndarray], bounds: np.ndarray, indptr: np.ndarray,
                     cols: np.ndarray, vals: np.ndarray, first: int, last: int, nnz: int,
                     column_id: np.ndarray, dense: np.ndarray, seen: np.ndarray, touched: np.ndarray) -> int:
    """:func:`_sum_rows_bitmap` for many local columns: the touched ones listed (``seen``), then sorted."""
    block_cols, block_vals = block
    lo = bounds[first]
    for r in range(first, last):
        k = 0
        for j in range(bounds[r] - lo, bounds[r + 1] - lo):
            c = block_cols[j]
            touched[k] = c
            k += not seen[c]
            seen[c] = True
            dense[c] += block_vals[j]
        _sort_touched(touched, k)
        for i in range(k):
            c = touched[i]
            cols[nnz], vals[nnz] = column_id[c], dense[c]
            dense[c], seen[c] = 0.0, False
            nnz += 1
        indptr[r + 1] = nnz
    return nnz


@numba.njit(cache=True, nogil=True)
def _sum_block(block: tuple[np.ndarray, np.ndarray], bounds: np.ndarray, indptr: np.ndarray, cols: np.ndarray,
               vals: np.ndarray, first: int, last: int, nnz: int, column_id: np.ndarray, dense: np.ndarray,
               seen: np.ndarray, touched: np.ndarray, bits: np.ndarray) -> int:
    """Rows ``first:last`` summed by the bitmap (``bits`` non-empty) or the sorted list of touched columns."""
    if bits.size:
        return _sum_rows_bitmap(block, bounds, indptr, cols, vals, first, last, nnz, column_id, dense, bits)
    return _sum_rows_listed(block, bounds, indptr, cols, vals, first, last, nnz, column_id, dense, seen,
                            touched)


@numba.njit(cache=True, nogil=True)
def profile_csr(events: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], column_of: np.ndarray,
                decay: tuple[int, float], dropped: np.ndarray, bounds: np.ndarray, indptr: np.ndarray,
                cols: np.ndarray, vals: np.ndarray) -> int:
    """Sum the (decayed) weights of the kept events into a canonical CSR matrix, duplicates summed in event order.

    Parameters
    ----------
    events : tuple of arrays (row, category, weight, ts), per event
        ``row`` int32 in ``[0, indptr.size - 1)``; ``category`` int32, index into ``column_of``; ``weight``
        float64; ``ts`` int64 (read only when decaying).
    column_of : int32 array, the column of each category (>= 0 for every category used)
    decay : (window_end, scale)
        An event's value is ``weight * exp2(-max(window_end - ts, 0) / scale)``; ``scale = inf``: ``weight``.
    dropped : int64 array
        The events left out (over the cap), ascending, followed by ``row.size``.
    bounds : int64 array
        Row pointers of the kept events (cumulative counts), read only.
    indptr : int64 array of ``bounds.size``
        Filled with the result's row pointers.
    cols, vals : int32, float64 arrays of the number of kept events
        Scratch (allocated by the caller, where numpy asks for huge pages); ``cols[:nnz]`` and ``vals[:nnz]``
        end as the result's indices and data.

    Returns
    -------
    int
        ``nnz``: the result has sorted columns and each (row, column) once, its value
        ``0.0 + v1 + v2 + ...`` over that cell's kept events in input order.
    """
    column_id = np.unique(column_of[column_of >= 0])  # the columns used, by a dense local id (order kept)
    local_of = np.searchsorted(column_id, column_of).astype(np.int32)
    n_rows = indptr.size - 1
    col_bits = 0
    while (1 << col_bits) < column_id.size:
        col_bits += 1
    shift = 0
    while (n_rows >> shift) > 128 and shift + col_bits < 31:  # ~129 blocks: few write streams at first
        shift += 1
    n_blocks = (n_rows >> shift) + 1
    starts = bounds[np.minimum(np.arange(n_blocks + 1) << shift, n_rows)]
    _scatter_to_blocks(events, local_of, decay, dropped, starts, shift, col_bits, cols, vals)
    width = np.max(starts[1:] - starts[:-1])
    block_cols, block_vals = np.empty(width, dtype=np.int32), np.empty(width, dtype=np.float64)
    indptr[0] = 0
    n_words = (column_id.size + 63) >> 6
    bits = np.zeros(n_words if n_words <= _BITMAP_WORDS else 0, dtype=np.uint64)
    listed = 0 if bits.size else column_id.size
    dense, seen = np.zeros(column_id.size, dtype=np.float64), np.zeros(listed, dtype=np.bool_)
    touched = np.empty(listed, dtype=np.int32)
    nnz = 0
    for b in range(n_blocks):  # each block summed while it is in cache
        first, last = min(b << shift, n_rows), min((b + 1) << shift, n_rows)
        _scatter_block(bounds, first, last, col_bits, cols, vals, block_cols, block_vals)
        nnz = _sum_block((block_cols, block_vals), bounds, indptr, cols, vals, first, last, nnz, column_id,
                         dense, seen, touched, bits)
    return nnz
