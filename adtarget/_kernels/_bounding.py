"""Compiled kernels of contribution bounding, the per-cell counts and the audit's class masses.

One pass per person instead of global sorts: a person's memberships are one row of the CSR membership matrix,
and a person's distinct breakdown values are a bitset filled by one pass over the events (events are in time
order, not person order). A person keeps the ``k`` keys of smallest ``(priority, key, position)``: exactly the
order of ``adtarget._release._bounding.rank_within_person`` (a stable lexsort), so every engine keeps the same
pairs. Inner kernels: they trust their inputs (codes in range, ``person`` indices valid).
"""

from __future__ import annotations

import numba
import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_ONE = np.uint64(1)
_RANK_MAX = 32  # up to this many candidates, rank by counting (m² compares); above, two stable sorts


@numba.njit(cache=True, nogil=True)
def splitmix64(x: np.uint64) -> np.uint64:
    """The splitmix64 finaliser of one uint64 (wrap-around arithmetic)."""
    z = x + _GOLDEN
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@numba.njit(cache=True, nogil=True)
def smallest_k(prio: np.ndarray, key: np.ndarray, m: int, k: int, keep: np.ndarray) -> None:
    """Set ``keep[i]`` for the ``k`` of the first ``m`` candidates of smallest ``(prio, key, i)``, clear the others.

    A few candidates are ranked by counting (branch-free compares); many by two stable sorts.
    """
    if m <= k:
        keep[:m] = True
    elif m <= _RANK_MAX:
        for i in range(m):
            p, c, rank = prio[i], key[i], 0
            for j in range(m):
                rank += (prio[j] < p) | ((prio[j] == p) & ((key[j] < c) | ((key[j] == c) & (j < i))))
            keep[i] = rank < k
    else:
        by_key = np.argsort(key[:m], kind="mergesort")
        keep[:m] = False
        keep[by_key[np.argsort(prio[by_key], kind="mergesort")[:k]]] = True


@numba.njit(cache=True, nogil=True)
def bound_rows(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, col_key: np.ndarray,
               row_person: np.ndarray, pseudonyms: np.ndarray, key_hashes: np.ndarray, salt64: np.uint64,
               k: int) -> tuple[np.ndarray, np.ndarray]:
    """(person, key) of the kept entries of a CSR matrix: per row, the ``k`` smallest priorities.

    Entries count when ``data != 0`` and ``col_key[column] >= 0`` (the key index of a requested column);
    row ``r`` is person ``row_person[r]``. Pairs come out row by row, in storage order within a row.
    """
    n_rows = indptr.size - 1
    out_p = np.empty(indices.size, dtype=np.int32)
    out_k = np.empty(indices.size, dtype=np.int32)
    width = 0
    for r in range(n_rows):
        width = max(width, indptr[r + 1] - indptr[r])
    keys = np.empty(width, dtype=np.int64)
    prio = np.empty(width, dtype=np.uint64)
    keep = np.empty(width, dtype=np.bool_)
    n = 0
    for r in range(n_rows):
        m = 0
        for j in range(indptr[r], indptr[r + 1]):
            c = col_key[indices[j]]
            if data[j] != 0 and c >= 0:
                keys[m] = c
                m += 1
        p = row_person[r]
        if m > k:
            base = pseudonyms[p] ^ salt64
            for i in range(m):
                prio[i] = splitmix64(base ^ key_hashes[keys[i]])
        smallest_k(prio, keys, m, k, keep)
        for i in range(m):
            if keep[i]:
                out_p[n], out_k[n] = p, keys[i]
                n += 1
    return out_p[:n].copy(), out_k[:n].copy()


def bitset_table(n_persons: int, n_values: int) -> np.ndarray:
    """Zeroed (n_persons, words) bitsets for codes 0..n_values-1, in the narrowest unsigned words (cache-sized)."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if n_values <= 8 * np.dtype(dtype).itemsize:
            return np.zeros((n_persons, 1), dtype=dtype)
    return np.zeros((n_persons, (n_values + 63) // 64), dtype=np.uint64)


@numba.njit(cache=True, nogil=True)
def value_bits(person: np.ndarray, value: np.ndarray, bits: np.ndarray) -> None:
    """Set bit ``value[i]`` of person ``person[i]``'s bitset, for every event with ``value >= 0``."""
    width = bits.itemsize * 8
    for i in range(person.size):
        v = value[i]
        if v >= 0:
            bits[person[i], v // width] |= _ONE << np.uint64(v % width)


@numba.njit(cache=True, nogil=True)
def bound_values(bits: np.ndarray, counted: np.ndarray, in_domain: np.ndarray, pseudonyms: np.ndarray,
                 key_hashes: np.ndarray, salt64: np.uint64, k: int) -> np.ndarray:
    """(n_persons, k) int32 table of each counted person's kept values in the domain, ascending; -1 pads."""
    table = np.full((bits.shape[0], k), -1, dtype=np.int32)
    keys = np.empty(in_domain.size, dtype=np.int64)
    prio = np.empty(in_domain.size, dtype=np.uint64)
    keep = np.empty(in_domain.size, dtype=np.bool_)
    for p in range(bits.shape[0]):
        if not counted[p]:
            continue
        m = _set_bits(bits[p], in_domain, keys)
        if m > k:
            base = pseudonyms[p] ^ salt64
            for i in range(m):
                prio[i] = splitmix64(base ^ key_hashes[keys[i]])
        smallest_k(prio, keys, m, k, keep)
        slot = 0
        for i in range(m):
            if keep[i]:
                table[p, slot] = keys[i]
                slot += 1
    return table


@numba.njit(cache=True, nogil=True)
def _set_bits(row: np.ndarray, in_domain: np.ndarray, out: np.ndarray) -> int:
    """Write the set bits of a bitset row that are in the domain to ``out``, ascending; return how many."""
    width, m = row.itemsize * 8, 0
    for w in range(row.size):
        word, v = np.uint64(row[w]), w * width
        while word:
            if word & _ONE and in_domain[v]:
                out[m] = v
                m += 1
            word >>= _ONE
            v += 1
    return m


@numba.njit(cache=True, nogil=True)
def count_joined(person: np.ndarray, key: np.ndarray, table: np.ndarray, n_keys: int,
                 n_values: int) -> np.ndarray:
    """(n_keys, n_values) int64 counts of kept (person, key) pairs joined with the person's table row."""
    counts = np.zeros((n_keys, n_values), dtype=np.int64)
    for i in range(person.size):
        row = table[person[i]]
        for v in row:
            if v >= 0:
                counts[key[i], v] += 1
    return counts


@numba.njit(cache=True, nogil=True)
def class_mass(bits: np.ndarray, n_classes: int, scale: int, indptr: np.ndarray, indices: np.ndarray,
               data: np.ndarray, row_person: np.ndarray,
               n_cols: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Audit masses: each person's ``scale`` split equally over their classes (``bits``), else on "none".

    Returns ``members`` (column sums of ``data``), ``mass`` (n_cols, n_classes + 1: the data-weighted sum
    of the rows' persons' masses) and ``population`` (n_classes + 1: the sum over all persons), int64.
    """
    own = np.zeros((bits.shape[0], n_classes + 1), dtype=np.int64)
    width = bits.itemsize * 8
    for p in range(bits.shape[0]):
        c = 0
        for w in range(bits.shape[1]):
            c += _popcount(np.uint64(bits[p, w]))
        if c == 0:
            own[p, n_classes] = scale
            continue
        for j in range(n_classes):
            if (np.uint64(bits[p, j // width]) >> np.uint64(j % width)) & _ONE:
                own[p, j] = scale // c
    population = own.sum(axis=0)
    members = np.zeros(n_cols, dtype=np.int64)
    mass = np.zeros((n_cols, n_classes + 1), dtype=np.int64)
    for r in range(indptr.size - 1):
        mine = own[row_person[r]]
        for j in range(indptr[r], indptr[r + 1]):
            weight = np.int64(data[j])
            col = indices[j]
            members[col] += weight
            for c in range(n_classes + 1):
                mass[col, c] += weight * mine[c]
    return members, mass, population


@numba.njit(cache=True, nogil=True)
def _popcount(word: np.uint64) -> int:
    c = 0
    while word:
        word &= word - _ONE
        c += 1
    return c
