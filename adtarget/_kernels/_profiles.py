"""Compiled kernels of interest profiles: event ages in one pass, and the persons × columns CSR by counting sort.

:func:`profile_csr` builds exactly the matrix ``coo_matrix((values, (person, column))).tocsr()`` builds, bit for
bit, in linear time: a counting sort of the events by person (stable, as scipy's ``coo_tocsr``), then, per row,
the same sort of (column, value) pairs as scipy's ``csr_sort_indices`` and the same left-to-right sum of
duplicates as ``csr_sum_duplicates``. Floating-point sums depend on the order of their terms, and
``csr_sort_indices`` calls libstdc++'s ``std::sort``, which is not stable: rows of more than 16 entries keep
equal columns in the order its introsort leaves them. :func:`stl_sort_pairs` is a line-by-line port of that
introsort (median-of-three pivot, unguarded partition, heapsort below the depth limit, final insertion sort), so
duplicates are summed in the same order as before. scipy skips the sort when every row is already sorted; so
does :func:`profile_csr`. Kernels trust their inputs (validated by the gate and ``build_profiles``).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["count_rows", "events_of", "negative_scaled_ages", "profile_csr", "stl_sort_pairs"]

_THRESHOLD = 16  # libstdc++ _S_threshold: introsort leaves runs of at most 16 to the final insertion sort


@numba.njit(cache=True, nogil=True)
def negative_scaled_ages(ts: np.ndarray, window_end: int, scale: float, out: np.ndarray) -> None:
    """``out[:] = -float(max(window_end - ts, 0)) / scale`` (float64): the exponent of the time decay."""
    for i in range(ts.size):
        age = window_end - ts[i]
        out[i] = -np.float64(age if age > 0 else 0) / scale


@numba.njit(cache=True, nogil=True)
def count_rows(row: np.ndarray, counts: np.ndarray) -> None:
    """``counts += np.bincount(row, minlength=counts.size)`` in one pass (``row`` in range)."""
    for i in range(row.size):
        counts[row[i]] += 1


@numba.njit(cache=True, nogil=True)
def events_of(person: np.ndarray, flagged: np.ndarray, out: np.ndarray) -> None:
    """``out[:] = np.flatnonzero(flagged[person])`` (``out`` sized by the caller to the number of hits)."""
    j = 0
    for i in range(person.size):
        if flagged[person[i]]:
            out[j] = i
            j += 1


@numba.njit(cache=True, nogil=True)
def _swap(keys: np.ndarray, vals: np.ndarray, i: int, j: int) -> None:
    keys[i], keys[j] = keys[j], keys[i]
    vals[i], vals[j] = vals[j], vals[i]


@numba.njit(cache=True, nogil=True)
def _move_median_to_first(keys: np.ndarray, vals: np.ndarray, result: int, a: int, b: int, c: int) -> None:
    if keys[a] < keys[b]:
        if keys[b] < keys[c]:
            _swap(keys, vals, result, b)
        elif keys[a] < keys[c]:
            _swap(keys, vals, result, c)
        else:
            _swap(keys, vals, result, a)
    elif keys[a] < keys[c]:
        _swap(keys, vals, result, a)
    elif keys[b] < keys[c]:
        _swap(keys, vals, result, c)
    else:
        _swap(keys, vals, result, b)


@numba.njit(cache=True, nogil=True)
def _unguarded_partition(keys: np.ndarray, vals: np.ndarray, first: int, last: int, pivot: int) -> int:
    while True:
        while keys[first] < keys[pivot]:
            first += 1
        last -= 1
        while keys[pivot] < keys[last]:
            last -= 1
        if not first < last:
            return first
        _swap(keys, vals, first, last)
        first += 1


@numba.njit(cache=True, nogil=True)
def _adjust_heap(keys: np.ndarray, vals: np.ndarray, first: int, hole: int, length: int, key: int,
                 val: float) -> None:
    top = hole
    child = hole
    while child < (length - 1) // 2:
        child = 2 * (child + 1)
        if keys[first + child] < keys[first + child - 1]:
            child -= 1
        keys[first + hole], vals[first + hole] = keys[first + child], vals[first + child]
        hole = child
    if (length & 1) == 0 and child == (length - 2) // 2:
        child = 2 * (child + 1)
        keys[first + hole], vals[first + hole] = keys[first + child - 1], vals[first + child - 1]
        hole = child - 1
    parent = (hole - 1) // 2  # only read when hole > top >= 0, where // truncates as C++ does
    while hole > top and keys[first + parent] < key:
        keys[first + hole], vals[first + hole] = keys[first + parent], vals[first + parent]
        hole = parent
        parent = (hole - 1) // 2
    keys[first + hole], vals[first + hole] = key, val


@numba.njit(cache=True, nogil=True)
def _heap_sort(keys: np.ndarray, vals: np.ndarray, first: int, last: int) -> None:
    """``std::__partial_sort(first, last, last)``: ``__make_heap`` then ``__sort_heap``."""
    length = last - first
    if length >= 2:
        parent = (length - 2) // 2
        while True:
            _adjust_heap(keys, vals, first, parent, length, keys[first + parent], vals[first + parent])
            if parent == 0:
                break
            parent -= 1
    while last - first > 1:
        last -= 1
        key, val = keys[last], vals[last]
        keys[last], vals[last] = keys[first], vals[first]
        _adjust_heap(keys, vals, first, 0, last - first, key, val)


@numba.njit(cache=True, nogil=True)
def _linear_insert(keys: np.ndarray, vals: np.ndarray, last: int) -> None:
    """``std::__unguarded_linear_insert``: a smaller key is known to sit somewhere before ``last``."""
    key, val = keys[last], vals[last]
    prev = last - 1
    while key < keys[prev]:
        keys[last], vals[last] = keys[prev], vals[prev]
        last = prev
        prev -= 1
    keys[last], vals[last] = key, val


@numba.njit(cache=True, nogil=True)
def _insertion_sort(keys: np.ndarray, vals: np.ndarray, first: int, last: int) -> None:
    for i in range(first + 1, last):
        if keys[i] < keys[first]:
            key, val = keys[i], vals[i]
            for j in range(i, first, -1):
                keys[j], vals[j] = keys[j - 1], vals[j - 1]
            keys[first], vals[first] = key, val
        else:
            _linear_insert(keys, vals, i)


@numba.njit(cache=True, nogil=True)
def _introsort_loop(keys: np.ndarray, vals: np.ndarray, first: int, last: int, depth: int) -> None:
    """``std::__introsort_loop`` with its right-hand recursion on an explicit stack (ranges are disjoint)."""
    stack = np.empty((2 * depth + 2, 3), dtype=np.int64)  # depths on the stack strictly decrease
    stack[0, 0], stack[0, 1], stack[0, 2] = first, last, depth
    size = 1
    while size:
        size -= 1
        first, last, depth = stack[size, 0], stack[size, 1], stack[size, 2]
        while last - first > _THRESHOLD:
            if depth == 0:
                _heap_sort(keys, vals, first, last)
                break
            depth -= 1
            _move_median_to_first(keys, vals, first, first + 1, first + (last - first) // 2, last - 1)
            cut = _unguarded_partition(keys, vals, first + 1, last, first)
            stack[size, 0], stack[size, 1], stack[size, 2] = cut, last, depth
            size += 1
            last = cut


@numba.njit(cache=True, nogil=True)
def stl_sort_pairs(keys: np.ndarray, vals: np.ndarray, first: int, last: int) -> None:
    """Sort ``keys[first:last]`` (and ``vals`` alongside) in place exactly as libstdc++'s ``std::sort`` does.

    Only keys are compared, so pairs with equal keys end in the order ``std::sort`` leaves them (stable for
    ranges of at most 16, not beyond): that order is what scipy's ``csr_sort_indices`` produces.
    """
    n = last - first
    if n < 2:
        return
    lg = 0
    while (n >> (lg + 1)) > 0:
        lg += 1
    _introsort_loop(keys, vals, first, last, 2 * lg)
    if n > _THRESHOLD:
        _insertion_sort(keys, vals, first, first + _THRESHOLD)
        for i in range(first + _THRESHOLD, last):
            _linear_insert(keys, vals, i)
    else:
        _insertion_sort(keys, vals, first, last)


@numba.njit(cache=True, nogil=True)
def _scatter_to_blocks(row: np.ndarray, category: np.ndarray, column_of: np.ndarray, values: np.ndarray,
                       keep: np.ndarray, starts: np.ndarray, shift: int, col_bits: int, cols: np.ndarray,
                       vals: np.ndarray) -> None:
    """Stable scatter of the kept events into blocks of ``2**shift`` rows (one write stream per block).

    ``cols`` gets ``(row within the block) << col_bits | column`` (fits an int32: ``shift + col_bits <= 31``).
    """
    use_keep = keep.size > 0
    cursor = starts[:-1].copy()
    for i in range(row.size):
        if not use_keep or keep[i]:
            b = row[i] >> shift
            dest = cursor[b]
            cols[dest] = ((row[i] - (b << shift)) << col_bits) | column_of[category[i]]
            vals[dest] = values[i]
            cursor[b] = dest + 1


@numba.njit(cache=True, nogil=True)
def _scatter_block(indptr: np.ndarray, first: int, last: int, col_bits: int, cols: np.ndarray,
                   vals: np.ndarray, block_cols: np.ndarray, block_vals: np.ndarray) -> None:
    """Stable counting sort, in place, of the entries of rows ``first:last`` (one block, in cache) by row."""
    lo, hi = indptr[first], indptr[last]
    block_cols[:hi - lo], block_vals[:hi - lo] = cols[lo:hi], vals[lo:hi]
    cursor = indptr[first:last].copy()
    mask = (1 << col_bits) - 1
    for j in range(hi - lo):
        r = block_cols[j] >> col_bits
        dest = cursor[r]
        cols[dest], vals[dest] = block_cols[j] & mask, block_vals[j]
        cursor[r] = dest + 1


@numba.njit(cache=True, nogil=True)
def _rows_sorted(indptr: np.ndarray, cols: np.ndarray, first: int, last: int) -> bool:
    """scipy's ``csr_has_sorted_indices`` over rows ``first:last``: each row non-decreasing."""
    for r in range(first, last):
        for j in range(indptr[r], indptr[r + 1] - 1):
            if cols[j] > cols[j + 1]:
                return False
    return True


@numba.njit(cache=True, nogil=True)
def _sort_rows(indptr: np.ndarray, cols: np.ndarray, vals: np.ndarray, first: int, last: int) -> None:
    for r in range(first, last):
        stl_sort_pairs(cols, vals, indptr[r], indptr[r + 1])


@numba.njit(cache=True, nogil=True)
def _sum_sorted_duplicates(bounds: np.ndarray, indptr: np.ndarray, cols: np.ndarray, vals: np.ndarray,
                           first: int, last: int, nnz: int) -> int:
    """scipy's ``csr_sum_duplicates`` (left-to-right sums) over rows ``first:last``, compacting in place.

    Row ``r`` is ``bounds[r]:bounds[r + 1]`` before; entries move down to ``nnz`` on, ``indptr[r + 1]`` is
    set to the new end. Returns the new ``nnz``.
    """
    for r in range(first, last):
        j, end = bounds[r], bounds[r + 1]
        while j < end:
            col, total = cols[j], vals[j]
            j += 1
            while j < end and cols[j] == col:
                total += vals[j]
                j += 1
            cols[nnz], vals[nnz] = col, total
            nnz += 1
        indptr[r + 1] = nnz
    return nnz


@numba.njit(cache=True, nogil=True)
def profile_csr(row: np.ndarray, category: np.ndarray, column_of: np.ndarray, values: np.ndarray,
                keep: np.ndarray, indptr: np.ndarray, cols: np.ndarray, vals: np.ndarray) -> int:
    """Sum ``values`` of the kept events into a CSR matrix, bit-identical to scipy's COO -> CSR.

    Parameters
    ----------
    row : int32 array, per event, in ``[0, indptr.size - 1)``
    category : int32 array, per event, index into ``column_of``
    column_of : int32 array, the column of each category (>= 0 for every category used)
    values : float64 array, per event
    keep : bool array, per event, or empty (every event kept)
    indptr : int64 array
        Row pointers of the kept events (cumulative counts); turned in place into the result's.
    cols, vals : int32, float64 arrays of the number of kept events
        Scratch (allocated by the caller, where numpy asks for huge pages); ``cols[:nnz]`` and ``vals[:nnz]``
        end as the result's indices and data.

    Returns
    -------
    int
        ``nnz``: the result is canonical (sorted columns, duplicates summed).
    """
    n_rows = indptr.size - 1
    col_bits = 0
    while (1 << col_bits) <= max(np.max(column_of), 0):
        col_bits += 1
    shift = 0
    while (n_rows >> shift) > 128 and shift + col_bits < 31:  # ~129 blocks: few write streams at first
        shift += 1
    n_blocks = (n_rows >> shift) + 1
    starts = indptr[np.minimum(np.arange(n_blocks + 1) << shift, n_rows)]
    _scatter_to_blocks(row, category, column_of, values, keep, starts, shift, col_bits, cols, vals)
    width = np.max(starts[1:] - starts[:-1])
    block_cols, block_vals = np.empty(width, dtype=np.int32), np.empty(width, dtype=np.float64)
    bounds = indptr.copy()  # rows before summing; indptr becomes the result's
    sorted_so_far = True  # scipy sorts no row when every row is sorted, and every row otherwise
    nnz = 0
    for b in range(n_blocks):
        first, last = min(b << shift, n_rows), min((b + 1) << shift, n_rows)
        _scatter_block(bounds, first, last, col_bits, cols, vals, block_cols, block_vals)
        if sorted_so_far and not _rows_sorted(bounds, cols, first, last):
            sorted_so_far = False
            _sort_rows(bounds, cols, vals, 0, first)
            nnz = _sum_sorted_duplicates(bounds, indptr, cols, vals, 0, first, 0)
        if not sorted_so_far:  # sum each block while it is in cache
            _sort_rows(bounds, cols, vals, first, last)
            nnz = _sum_sorted_duplicates(bounds, indptr, cols, vals, first, last, nnz)
    if sorted_so_far:
        nnz = _sum_sorted_duplicates(bounds, indptr, cols, vals, 0, n_rows, 0)
    return nnz
