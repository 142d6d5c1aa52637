"""Distinct ids of a column with repeats, for pseudonymisation: one pass through an open-addressing table.

:func:`factorize_int64` gives each row the index of its id among the distinct ids (numbered in order of first
appearance) and the distinct ids, so that each distinct id is hashed once; :func:`factorize_buffers` does the
same for texts in Arrow's layout (buffer plus offsets), and :func:`take_texts` packs the distinct ones. The table starts small and doubles
when half full, so its size follows the number of distinct ids, not of rows (500k distinct ids in 10^7 rows:
a 1M-slot table, 16 MB). Inner kernels: they trust their input (1-D int64 ids, uint64 ids passed as their
int64 view since the table only compares bit patterns; uint8 text buffers with int64 offsets).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["factorize_buffers", "factorize_int64", "take_texts"]

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


@numba.njit(cache=True, nogil=True, inline="always")
def _text_hash(data: np.ndarray, start: int, stop: int) -> np.uint64:
    """FNV-1a over the bytes, then MurmurHash3's finaliser (the table takes the low bits)."""
    h = np.uint64(0xCBF29CE484222325)
    for p in range(start, stop):
        h = (h ^ np.uint64(data[p])) * np.uint64(0x100000001B3)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    return h


@numba.njit(cache=True, nogil=True, inline="always")
def _same_text(data: np.ndarray, offsets: np.ndarray, a: int, b: int) -> bool:
    length = offsets[a + 1] - offsets[a]
    if offsets[b + 1] - offsets[b] != length:
        return False
    for p in range(length):  # noqa: SIM110 - a plain loop compiles to a tight compare in numba
        if data[offsets[a] + p] != data[offsets[b] + p]:
            return False
    return True


@numba.njit(cache=True, nogil=True)
def factorize_buffers(data: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, firsts)`` of the texts ``data[offsets[i]:offsets[i + 1]]``: empty texts (and Arrow's nulls,
    which are empty) get code -1; ``firsts[c]`` is the first row holding distinct text ``c``. The table
    doubles when half full."""
    n = offsets.size - 1
    hashes = np.empty(_MIN_SLOTS, np.uint64)
    slots = np.full(_MIN_SLOTS, -1, np.int64)  # row of the first occurrence
    codes = np.empty(n, np.int32)
    firsts = np.empty(n, np.int64)
    count = 0
    for i in range(n):
        if offsets[i + 1] == offsets[i]:
            codes[i] = -1
            continue
        if 2 * (count + 1) > slots.size:
            hashes, slots = _grow_texts(hashes, slots)
        h = _text_hash(data, offsets[i], offsets[i + 1])
        mask = slots.size - 1
        s = np.int64(h & np.uint64(mask))
        while slots[s] >= 0 and not (hashes[s] == h and _same_text(data, offsets, slots[s], i)):
            s = (s + 1) & mask
        if slots[s] >= 0:
            codes[i] = codes[slots[s]]
            continue
        hashes[s] = h
        slots[s] = i
        codes[i] = count
        firsts[count] = i
        count += 1
    return codes, firsts[:count].copy()


@numba.njit(cache=True, nogil=True)
def _grow_texts(hashes: np.ndarray, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    new_hashes = np.empty(2 * hashes.size, np.uint64)
    new_slots = np.full(2 * hashes.size, -1, np.int64)
    mask = new_slots.size - 1
    for s in range(slots.size):
        if slots[s] >= 0:
            t = np.int64(hashes[s] & np.uint64(mask))
            while new_slots[t] >= 0:
                t = (t + 1) & mask
            new_hashes[t] = hashes[s]
            new_slots[t] = slots[s]
    return new_hashes, new_slots


@numba.njit(cache=True, nogil=True)
def take_texts(data: np.ndarray, offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(data, offsets)`` of the texts at ``rows``, packed."""
    out_offsets = np.zeros(rows.size + 1, np.int64)
    for k in range(rows.size):
        out_offsets[k + 1] = out_offsets[k] + offsets[rows[k] + 1] - offsets[rows[k]]
    out = np.empty(out_offsets[-1], np.uint8)
    for k in range(rows.size):
        out[out_offsets[k]:out_offsets[k + 1]] = data[offsets[rows[k]]:offsets[rows[k] + 1]]
    return out, out_offsets
