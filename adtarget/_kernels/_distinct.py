"""Distinct int ids of a column with repeats, for pseudonymisation: one pass through an open-addressing table.

:func:`factorize_int64` gives each row the index of its id among the distinct ids (numbered in order of first
appearance) and the distinct ids, so that each distinct id is hashed once (text ids are factorised by Arrow).
The table starts small and doubles when half full, so its size follows the number of distinct ids, not of rows
(500k distinct ids in 10^7 rows: a 1M-slot table, 16 MB). Inner kernel: it trusts its input (1-D int64 ids; uint64 ids are passed as their
int64 view, since the table only compares bit patterns).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["factorize_int64"]

_MIN_SLOTS = 1 << 10


@numba.njit(cache=True, nogil=True, inline="always")
def _slot(key: np.int64, mask: np.uint64) -> np.int64:
    """MurmurHash3's 64-bit finaliser, masked to a table slot."""
    h = np.uint64(key)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return np.int64(h & mask)


@numba.njit(cache=True, nogil=True)
def _grow(table: np.ndarray) -> np.ndarray:
    """The same entries in a table twice as large (``table[2 s]`` a key, ``table[2 s + 1]`` its code or -1)."""
    new = np.full(2 * table.size, -1, np.int64)
    mask = np.uint64(new.size // 2 - 1)
    for s in range(table.size // 2):
        if table[2 * s + 1] >= 0:
            t = _slot(table[2 * s], mask)
            while new[2 * t + 1] >= 0:
                t = (t + 1) & np.int64(mask)
            new[2 * t] = table[2 * s]
            new[2 * t + 1] = table[2 * s + 1]
    return new


@numba.njit(cache=True, nogil=True)
def factorize_int64(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, uniques)``: ``uniques[codes[i]] == values[i]``, ``codes`` int32, uniques in first-seen order.

    A key and its code share a cache line (one interleaved array), so a look-up costs one miss."""
    table = np.full(2 * _MIN_SLOTS, -1, np.int64)
    codes = np.empty(values.size, np.int32)
    count = 0
    for i in range(values.size):
        x = values[i]
        mask = np.uint64(table.size // 2 - 1)
        s = _slot(x, mask)
        while table[2 * s + 1] >= 0 and table[2 * s] != x:
            s = (s + 1) & np.int64(mask)
        if table[2 * s + 1] >= 0:
            codes[i] = table[2 * s + 1]
            continue
        table[2 * s] = x
        table[2 * s + 1] = count
        codes[i] = count
        count += 1
        if 2 * count > table.size // 2:
            table = _grow(table)
    uniques = np.empty(count, np.int64)
    for slot in range(table.size // 2):
        if table[2 * slot + 1] >= 0:
            uniques[table[2 * slot + 1]] = table[2 * slot]
    return codes, uniques
