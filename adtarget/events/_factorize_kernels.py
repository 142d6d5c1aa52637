"""Compiled kernels of ingestion: factorise int64 ids with one hash table; map and check event columns.

Factorising 10^7 ids with a few 10^5 distinct values through one hash table is bound by cache and TLB misses
(the table outgrows the caches), unless the misses overlap: :func:`factorize_rows` prefetches the table slot
of the row a few dozen rows ahead, so one pass in row order gives every row its code (dense, in order of first
appearance) without partitioning the ids first. While every id is in ``[0, 2**32 - 1)`` the table is narrow
(:func:`factorize_rows_narrow`: id and code in one int64 per slot, half the memory traffic). The caller grows
the table (:func:`rehash`, :func:`rehash_narrow`) when it is half full, and renumbers the codes in place with
:func:`relabel`. Table slots are prefetched ahead of the probe (``adtarget/_core/_intrinsics.py``).

The column kernels (:func:`map_codes`, :func:`copy_timestamps`, :func:`copy_weights`) write one column's
values and lower each row's quarantine reason code to the first rule it fails (codes are in precedence
order, so the first failing rule is the smallest code). :func:`argsort_uint64` orders the pseudonyms.
Kernels trust their inputs except the indices they gather with, which they check (an out-of-range index
returns ``ok = False``, never a wrong answer).
"""

from __future__ import annotations

import numba
import numpy as np

from adtarget._core._intrinsics import prefetch as _prefetch

__all__ = [
    "argsort_uint64",
    "copy_timestamps",
    "copy_weights",
    "factorize_rows",
    "factorize_rows_narrow",
    "index_range",
    "map_codes",
    "rehash",
    "rehash_narrow",
    "relabel",
]

_PREFETCH_DISTANCE = 48  # rows ahead whose table slot is prefetched (32-64 measured best at 10^7 rows)
_LONG_RUN = 32
_SLOT_MULTIPLIER = np.uint64(0xC2B2AE3D27D4EB4F)  # odd: multiplicative (Fibonacci) hashing


@numba.njit(cache=True, nogil=True, inline="always")
def _slot(key: np.int64, shift: np.uint64) -> np.int64:
    """The home slot of ``key``: the top bits of ``key * multiplier``; ``shift`` is 64 - log2(slots)."""
    return np.int64((np.uint64(key) * _SLOT_MULTIPLIER) >> shift)


@numba.njit(cache=True, nogil=True, inline="always")
def _shift(slots: int) -> np.uint64:
    """64 - log2(``slots``), a power of two."""
    bits = 0
    while (1 << bits) < slots:
        bits += 1
    return np.uint64(64 - bits)


@numba.njit(cache=True, nogil=True)
def factorize_rows(keys: np.ndarray, table: np.ndarray, codes: np.ndarray, uniques: np.ndarray,
                   n_unique: int) -> tuple[int, int]:
    """Dense codes of ``keys`` (int64) into ``codes`` (int32, row order), new distinct keys appended to
    ``uniques`` from ``n_unique`` on; returns ``(rows done, distinct keys)``.

    ``table`` holds ``(key, code)`` pairs (int64, code -1 for an empty slot; a power of two of slots) with
    linear probing; the slot of the row :data:`_PREFETCH_DISTANCE` ahead is prefetched, so the table may
    outgrow the caches. Codes number the distinct keys in order of first appearance. Stops before the row whose
    key would not fit ``uniques`` (fewer rows done than ``keys.size``): the caller grows both and resumes.
    """
    shift = _shift(table.size // 2)
    mask = np.uint64(table.size // 2 - 1)
    n = keys.size
    for i in range(min(_PREFETCH_DISTANCE, n)):
        _prefetch(table, 2 * _slot(keys[i], shift))
    for i in range(n):
        if i + _PREFETCH_DISTANCE < n:
            _prefetch(table, 2 * _slot(keys[i + _PREFETCH_DISTANCE], shift))
        key = keys[i]
        slot = _slot(key, shift)
        while True:
            code = table[2 * slot + 1]
            if code < 0:
                if n_unique >= uniques.size:
                    return i, n_unique
                table[2 * slot] = key
                table[2 * slot + 1] = n_unique
                uniques[n_unique] = key
                codes[i] = n_unique
                n_unique += 1
                break
            if table[2 * slot] == key:
                codes[i] = code
                break
            slot = np.int64(np.uint64(slot + 1) & mask)
    return n, n_unique


@numba.njit(cache=True, nogil=True)
def rehash(table: np.ndarray, uniques: np.ndarray) -> None:
    """Insert distinct ``uniques`` with codes ``0..uniques.size-1`` into an empty ``table`` (see
    :func:`factorize_rows`), prefetching as it does."""
    shift = _shift(table.size // 2)
    mask = np.uint64(table.size // 2 - 1)
    n = uniques.size
    for code in range(n):
        if code + _PREFETCH_DISTANCE < n:
            _prefetch(table, 2 * _slot(uniques[code + _PREFETCH_DISTANCE], shift))
        slot = _slot(uniques[code], shift)
        while table[2 * slot + 1] >= 0:
            slot = np.int64(np.uint64(slot + 1) & mask)
        table[2 * slot] = uniques[code]
        table[2 * slot + 1] = code


_NARROW_END = (1 << 32) - 1  # narrow tables hold ids in [0, _NARROW_END)
_LOW32 = np.uint64(0xFFFFFFFF)


@numba.njit(cache=True, nogil=True)
def factorize_rows_narrow(keys: np.ndarray, table: np.ndarray, codes: np.ndarray, uniques: np.ndarray,
                          n_unique: int) -> tuple[int, int]:
    """:func:`factorize_rows` with a narrow table: one int64 per slot, ``key << 32 | code`` (-1 when empty),
    half the memory of the pairs, for keys in ``[0, 2**32 - 1)``. Stops also before the first key outside that
    range (the caller then moves to a table of pairs)."""
    slots = table.size
    shift = _shift(slots)
    mask = np.uint64(slots - 1)
    n = keys.size
    for i in range(min(_PREFETCH_DISTANCE, n)):
        _prefetch(table, _slot(keys[i], shift))
    for i in range(n):
        if i + _PREFETCH_DISTANCE < n:
            _prefetch(table, _slot(keys[i + _PREFETCH_DISTANCE], shift))
        key = keys[i]
        if key < 0 or key >= _NARROW_END:
            return i, n_unique
        slot = _slot(key, shift)
        while True:
            entry = table[slot]
            if entry == -1:
                if n_unique >= uniques.size:
                    return i, n_unique
                table[slot] = np.int64((np.uint64(key) << np.uint64(32)) | np.uint64(n_unique))
                uniques[n_unique] = key
                codes[i] = n_unique
                n_unique += 1
                break
            if (np.uint64(entry) >> np.uint64(32)) == np.uint64(key):
                codes[i] = np.int32(np.uint64(entry) & _LOW32)
                break
            slot = np.int64(np.uint64(slot + 1) & mask)
    return n, n_unique


@numba.njit(cache=True, nogil=True)
def rehash_narrow(table: np.ndarray, uniques: np.ndarray) -> None:
    """:func:`rehash` into an empty narrow table (see :func:`factorize_rows_narrow`)."""
    slots = table.size
    shift = _shift(slots)
    mask = np.uint64(slots - 1)
    for code in range(uniques.size):
        key = uniques[code]
        slot = _slot(key, shift)
        while table[slot] != -1:
            slot = np.int64(np.uint64(slot + 1) & mask)
        table[slot] = np.int64((np.uint64(key) << np.uint64(32)) | np.uint64(code))


@numba.njit(cache=True, nogil=True)
def relabel(codes: np.ndarray, table: np.ndarray) -> bool:
    """``codes[:] = table[codes]`` in place; False (codes partly relabelled) if a code is out of range.

    The entry of the code :data:`_PREFETCH_DISTANCE` ahead is prefetched (the table may outgrow the caches)."""
    n = codes.size
    for j in range(n):
        if j + _PREFETCH_DISTANCE < n:
            _prefetch(table, min(max(codes[j + _PREFETCH_DISTANCE], 0), table.size - 1))
        c = codes[j]
        if c < 0 or c >= table.size:
            return False
        codes[j] = table[c]
    return True


@numba.njit(cache=True, nogil=True)
def map_codes(codes: np.ndarray, values: np.ndarray, reasons: np.ndarray, out: np.ndarray,
              reason: np.ndarray) -> bool:
    """``out[i] = values[codes[i]]`` and ``reason[i] = min(reason[i], reasons[codes[i]])``.

    A negative code (a null) takes the tables' last entry. Returns False if a code is ``>= values.size - 1``.
    ``reason`` is only read where ``reasons`` is below the int8 maximum (a clean column costs no pass over it),
    and ``reasons`` only for nulls when every value's entry is clean (:func:`_map_clean_values`).
    """
    last = np.int64(values.size - 1)
    clean = np.iinfo(np.int8).max
    if not (reasons[:last] != clean).any():
        return _map_clean_values(codes, values, reasons[last], out, reason)
    for i in range(codes.size):
        k = np.int64(codes[i])
        if k < 0:
            k = last
        elif k >= last:
            return False
        out[i] = values[k]
        r = reasons[k]
        if r != clean and r < reason[i]:
            reason[i] = r
    return True


@numba.njit(cache=True, nogil=True)
def _map_clean_values(codes: np.ndarray, values: np.ndarray, null_reason: np.int8, out: np.ndarray,
                      reason: np.ndarray) -> bool:
    """:func:`map_codes` when only the null may lower ``reason`` (to ``null_reason``): no look-up of reasons."""
    last = values.size - 1
    clean = np.iinfo(np.int8).max
    for i in range(codes.size):
        k = np.int64(codes[i])
        if k < 0:
            out[i] = values[last]
            if null_reason != clean and null_reason < reason[i]:
                reason[i] = null_reason
            continue
        if k >= last:
            return False
        out[i] = values[k]
    return True


@numba.njit(cache=True, nogil=True)
def index_range(indices: np.ndarray) -> tuple[int, int]:
    """``(min, max)`` of a non-empty integer array in one pass (in its own dtype: the loop vectorises)."""
    low = high = indices[0]
    for i in range(1, indices.size):
        v = indices[i]
        low = min(low, v)
        high = max(high, v)
    return int(low), int(high)


@numba.njit(cache=True, nogil=True)
def copy_timestamps(ts: np.ndarray, out: np.ndarray, reason: np.ndarray, lowest: int, highest: int,
                    too_low: int, too_high: int) -> None:
    """``out[:] = ts``; rows below ``lowest`` get reason ``too_low``, above ``highest`` ``too_high``."""
    for i in range(ts.size):
        t = ts[i]
        out[i] = t
        if t < lowest:
            r = too_low
        elif t > highest:
            r = too_high
        else:
            continue
        if r < reason[i]:
            reason[i] = r


@numba.njit(cache=True, nogil=True)
def copy_weights(weight: np.ndarray, out: np.ndarray, reason: np.ndarray, negative: int,
                 non_finite: int) -> None:
    """``out[:] = weight``; negative finite weights get reason ``negative``, NaN and infinities
    ``non_finite``."""
    for i in range(weight.size):
        w = weight[i]
        out[i] = w
        if not np.isfinite(w):
            r = non_finite
        elif w < 0:
            r = negative
        else:
            continue
        if r < reason[i]:
            reason[i] = r


def argsort_uint64(values: np.ndarray) -> np.ndarray:
    """The stable ascending order (int64) of ``values`` (uint64); equals ``numpy.argsort(values,
    kind="stable")``.

    Each value's top bits and its index are packed into one uint64 and sorted by numpy's vectorised sort (an
    argsort costs several times more); values whose top bits tie are then put in order by their full value.
    For uniformly spread values such as pseudonyms ties are rare.
    """
    values = np.ascontiguousarray(values, dtype=np.uint64)
    index_bits = max(1, int(values.size - 1).bit_length())
    packed = _pack(values, index_bits)
    packed.sort()
    return _unpack(packed, values, index_bits)


@numba.njit(cache=True, nogil=True)
def _pack(values: np.ndarray, index_bits: int) -> np.ndarray:
    shift = np.uint64(index_bits)
    packed = np.empty(values.size, dtype=np.uint64)
    for i in range(values.size):
        packed[i] = ((values[i] >> shift) << shift) | np.uint64(i)
    return packed


@numba.njit(cache=True, nogil=True)
def _unpack(packed: np.ndarray, values: np.ndarray, index_bits: int) -> np.ndarray:
    """The indices of ``packed`` (sorted), runs of tied top bits reordered by full value (insertion sort:
    stable, and the run is already in index order)."""
    shift = np.uint64(index_bits)
    mask = np.uint64((1 << index_bits) - 1)
    order = np.empty(packed.size, dtype=np.int64)
    run = 0
    for j in range(packed.size):
        order[j] = np.int64(packed[j] & mask)
        if j > 0 and (packed[j] >> shift) == (packed[j - 1] >> shift):
            continue
        _sort_run(order, values, run, j)
        run = j
    _sort_run(order, values, run, packed.size)
    return order


@numba.njit(cache=True, nogil=True)
def _sort_run(order: np.ndarray, values: np.ndarray, lo: int, hi: int) -> None:
    """Stable sort of ``order[lo:hi]`` by ``values[order]``: insertion sort, merge sort for a long run."""
    if hi - lo > _LONG_RUN:
        run = order[lo:hi].copy()
        order[lo:hi] = run[np.argsort(values[run], kind="mergesort")]
        return
    for j in range(lo + 1, hi):
        index = order[j]
        key = values[index]
        k = j - 1
        while k >= lo and values[order[k]] > key:
            order[k + 1] = order[k]
            k -= 1
        order[k + 1] = index
