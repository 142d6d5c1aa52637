"""Distinct int64 ids of a column with repeats, for pseudonymisation: one pass through an open-addressing table.

:func:`factorize_int64` gives each row the index of its id among the distinct ids (numbered in order of first
appearance) and the distinct ids, so that each distinct id is hashed once. The table starts small and doubles
when half full, so its size follows the number of distinct ids, not of rows (500k distinct ids in 10^7 rows:
a 1M-slot table, 12 MB). Inner kernel: trusts its input (a 1-D int64 array; uint64 ids are passed as their
int64 view, the table only compares bit patterns).
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
def _grow(keys: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same entries in a table twice as large."""
    new_keys = np.empty(2 * keys.size, np.int64)
    new_codes = np.full(2 * keys.size, -1, np.int32)
    mask = np.uint64(new_keys.size - 1)
    for s in range(keys.size):
        if codes[s] >= 0:
            t = _slot(keys[s], mask)
            while new_codes[t] >= 0:
                t = (t + 1) & np.int64(mask)
            new_keys[t] = keys[s]
            new_codes[t] = codes[s]
    return new_keys, new_codes


@numba.njit(cache=True, nogil=True)
def factorize_int64(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, uniques)``: ``uniques[codes[i]] == values[i]``, ``codes`` int32, uniques in first-seen order."""
    keys = np.empty(_MIN_SLOTS, np.int64)
    slots = np.full(_MIN_SLOTS, -1, np.int32)
    codes = np.empty(values.size, np.int32)
    count = 0
    for i in range(values.size):
        x = values[i]
        mask = np.uint64(keys.size - 1)
        s = int(_slot(x, mask))
        while slots[s] >= 0 and keys[s] != x:
            s = (s + 1) & int(mask)
        if slots[s] >= 0:
            codes[i] = slots[s]
            continue
        keys[s] = x
        slots[s] = count
        codes[i] = count
        count += 1
        if 2 * count > keys.size:
            keys, slots = _grow(keys, slots)
    uniques = np.empty(count, np.int64)
    for s in range(keys.size):
        if slots[s] >= 0:
            uniques[slots[s]] = keys[s]
    return codes, uniques
