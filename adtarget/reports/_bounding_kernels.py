"""Compiled kernels of contribution bounding, the per-cell counts and the audit's class masses.

One pass per person instead of global sorts: a person's memberships are one row of the CSR membership matrix,
and a person's distinct breakdown values are a bitset filled by one pass over the events (events are in time
order, not person order). A person keeps the ``k`` keys of smallest ``(priority, key, position)``: exactly the
stable lexsort by (person, priority, key) of the numpy code these kernels replaced (kept as the reference of
tests/test_bounding_kernels.py), so every engine keeps the same pairs. Priorities are those of
``adtarget.reports._bounding.priorities``. Inner kernels: they trust their inputs (codes in range, person
indices valid).
"""

from __future__ import annotations

import numba
import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_ONE = np.uint64(1)
_DEBRUIJN = np.uint64(0x03F79D71B4CB0A89)  # index of a single set bit: (bit * _DEBRUIJN) >> 58 is unique
_S58 = np.uint64(58)
_DEBRUIJN_INDEX = np.zeros(64, dtype=np.int64)
_DEBRUIJN_INDEX[(np.left_shift(_ONE, np.arange(64, dtype=np.uint64)) * _DEBRUIJN) >> _S58] = np.arange(64)
_CLASS_SETS_MAX = 10  # audit masses per set of classes up to this many classes (2**10 sets per column)
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
        if _rank_by_priority(prio, m, k, keep) == m * (m - 1) // 2:
            return  # no two priorities equal: the priority alone orders the candidates
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
def _rank_by_priority(prio: np.ndarray, m: int, k: int, keep: np.ndarray) -> int:
    """Keep the candidates with fewer than ``k`` strictly smaller priorities; return the sum of those counts.

    The sum is the number of strictly ordered pairs, ``m (m - 1) / 2`` exactly when no two priorities tie.
    """
    total = 0
    for i in range(m):
        p, rank = prio[i], 0
        for j in range(m):
            rank += prio[j] < p
        keep[i] = rank < k
        total += rank
    return total


@numba.njit(cache=True, nogil=True)
def bound_rows(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, col_key: np.ndarray,
               row_person: np.ndarray, pseudonyms: np.ndarray, key_hashes: np.ndarray, salt64: np.uint64,
               k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The entries of a CSR membership each person keeps: per row, the ``k`` smallest priorities.

    An entry is a candidate when ``data != 0`` and ``col_key[column] >= 0`` (the key index of a requested
    column); row ``r`` is person ``row_person[r]``. Returns ``keep`` (bool per stored entry), ``sizes``
    (int64 kept entries per key) and ``counted`` (bool per person: keeps at least one entry).
    """
    keep = np.zeros(indices.size, dtype=np.bool_)
    sizes = np.zeros(key_hashes.size, dtype=np.int64)
    counted = np.zeros(pseudonyms.size, dtype=np.bool_)
    width = 0
    for r in range(indptr.size - 1):
        width = max(width, indptr[r + 1] - indptr[r])
    pos = np.empty(width, dtype=np.int64)
    keys = np.empty(width, dtype=np.int64)
    prio = np.empty(width, dtype=np.uint64)
    chosen = np.empty(width, dtype=np.bool_)
    for r in range(indptr.size - 1):
        m = 0
        for j in range(indptr[r], indptr[r + 1]):
            c = col_key[indices[j]]
            if data[j] != 0 and c >= 0:
                pos[m], keys[m] = j, c
                m += 1
        if m > k:
            base = pseudonyms[row_person[r]] ^ salt64
            for i in range(m):
                prio[i] = splitmix64(base ^ key_hashes[keys[i]])
        smallest_k(prio, keys, m, k, chosen)
        for i in range(m):
            if chosen[i]:
                keep[pos[i]] = True
                sizes[keys[i]] += 1
                counted[row_person[r]] = True
    return keep, sizes, counted


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
    domain = _domain_words(in_domain, bits.shape[1], bits.itemsize * 8)
    keys = np.empty(in_domain.size, dtype=np.int64)
    prio = np.empty(in_domain.size, dtype=np.uint64)
    keep = np.empty(in_domain.size, dtype=np.bool_)
    for p in range(bits.shape[0]):
        if not counted[p]:
            continue
        m = _set_bits(bits[p], domain, keys)
        if m > k:
            base = pseudonyms[p] ^ salt64
            for i in range(m):
                prio[i] = splitmix64(base ^ key_hashes[keys[i]])
        if k == 1 and m > 1:
            table[p, 0] = keys[_argmin_first(prio, m)]  # keys ascending: the first minimum has the smaller key
            continue
        smallest_k(prio, keys, m, k, keep)
        slot = 0
        for i in range(m):
            if keep[i]:
                table[p, slot] = keys[i]
                slot += 1
    return table


@numba.njit(cache=True, nogil=True)
def _argmin_first(prio: np.ndarray, m: int) -> int:
    """Index of the first minimum of ``prio[:m]``."""
    best = 0
    for i in range(1, m):
        if prio[i] < prio[best]:
            best = i
    return best


@numba.njit(cache=True, nogil=True)
def _domain_words(in_domain: np.ndarray, n_words: int, width: int) -> np.ndarray:
    """The domain as a bitset of ``n_words`` words of ``width`` bits (held in uint64)."""
    words = np.zeros(n_words, dtype=np.uint64)
    for v in range(in_domain.size):
        if in_domain[v]:
            words[v // width] |= _ONE << np.uint64(v % width)
    return words


@numba.njit(cache=True, nogil=True)
def _set_bits(row: np.ndarray, domain: np.ndarray, out: np.ndarray) -> int:
    """Write the set bits of ``row & domain`` to ``out``, ascending; return how many."""
    width, m = row.itemsize * 8, 0
    for w in range(row.size):
        word = np.uint64(row[w]) & domain[w]
        while word:
            low = word & (~word + _ONE)
            out[m] = w * width + _bit_index(low)
            m += 1
            word ^= low
    return m


@numba.njit(cache=True, nogil=True)
def _bit_index(low: np.uint64) -> int:
    """Index of the single set bit of ``low`` (de Bruijn multiplication)."""
    return _DEBRUIJN_INDEX[(low * _DEBRUIJN) >> _S58]


@numba.njit(cache=True, nogil=True)
def count_joined(indptr: np.ndarray, indices: np.ndarray, keep: np.ndarray, col_key: np.ndarray,
                 row_person: np.ndarray, table: np.ndarray, col_offset: np.ndarray, n_keys: int,
                 n_cells: int) -> np.ndarray:
    """(n_keys, n_cells) int64 counts of the kept entries joined with their person's table row.

    Kept entry (row ``r``, key ``c``) adds one to cell ``table[p, t] + col_offset[t]`` of key ``c`` for every
    column ``t`` of person ``p = row_person[r]`` with ``table[p, t] >= 0`` (tables of several breakdowns side by
    side, each column offset into its breakdown's block of cells).
    """
    counts = np.zeros((n_keys, n_cells), dtype=np.int64)
    for r in range(indptr.size - 1):
        row = table[row_person[r]]
        for j in range(indptr[r], indptr[r + 1]):
            if keep[j]:
                c = col_key[indices[j]]
                for t in range(row.size):
                    if row[t] >= 0:
                        counts[c, row[t] + col_offset[t]] += 1
    return counts


@numba.njit(cache=True, nogil=True)
def value_persons(table: np.ndarray, col_offset: np.ndarray, counted: np.ndarray, n_cells: int) -> np.ndarray:
    """int64 counts, per cell (``table[p, t] + col_offset[t]``), of the counted persons holding it."""
    out = np.zeros(n_cells, dtype=np.int64)
    for p in range(table.shape[0]):
        if counted[p]:
            for t in range(table.shape[1]):
                if table[p, t] >= 0:
                    out[table[p, t] + col_offset[t]] += 1
    return out


@numba.njit(cache=True, nogil=True)
def class_mass(bits: np.ndarray, n_classes: int, scale: int, indptr: np.ndarray, indices: np.ndarray,
               data: np.ndarray, row_person: np.ndarray,
               n_cols: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Audit masses: each person's ``scale`` split equally over their classes (``bits``), else on "none".

    Returns ``members`` (column sums of ``data``), ``mass`` (n_cols, n_classes + 1: the data-weighted sum
    of the rows' persons' masses) and ``population`` (n_classes + 1: the sum over all persons), int64.
    With few classes, entries are first counted per (column, set of classes): one add per entry.
    """
    if bits.shape[1] == 1 and n_classes <= _CLASS_SETS_MAX:
        return _mass_by_class_set(bits, n_classes, scale, indptr, indices, data, row_person, n_cols)
    classes = np.empty(n_classes + 1, dtype=np.int64)
    population = np.zeros(n_classes + 1, dtype=np.int64)
    for p in range(bits.shape[0]):
        share = _own_classes(bits[p], n_classes, scale, classes)
        for i in range(share[1]):
            population[classes[i]] += share[0]
    members = np.zeros(n_cols, dtype=np.int64)
    mass = np.zeros((n_cols, n_classes + 1), dtype=np.int64)
    for r in range(indptr.size - 1):
        share = _own_classes(bits[row_person[r]], n_classes, scale, classes)
        for j in range(indptr[r], indptr[r + 1]):
            weight = np.int64(data[j])
            members[indices[j]] += weight
            for i in range(share[1]):
                mass[indices[j], classes[i]] += weight * share[0]
    return members, mass, population


@numba.njit(cache=True, nogil=True)
def _mass_by_class_set(bits: np.ndarray, n_classes: int, scale: int, indptr: np.ndarray, indices: np.ndarray,
                       data: np.ndarray, row_person: np.ndarray,
                       n_cols: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`class_mass` through counts per (column, class set): a person's set is their one bitset word."""
    n_sets = 1 << n_classes
    by_set = np.zeros((n_cols, n_sets), dtype=np.int64)
    persons = np.zeros(n_sets, dtype=np.int64)
    for p in range(bits.shape[0]):
        persons[np.int64(bits[p, 0])] += 1
    for r in range(indptr.size - 1):
        row_set = np.int64(bits[row_person[r], 0])
        for j in range(indptr[r], indptr[r + 1]):
            by_set[indices[j], row_set] += np.int64(data[j])
    mass = np.zeros((n_cols, n_classes + 1), dtype=np.int64)
    population = np.zeros(n_classes + 1, dtype=np.int64)
    own = np.empty(n_classes + 1, dtype=np.int64)
    for code in range(n_sets):
        share = _own_classes(np.array([np.uint64(code)]), n_classes, scale, own)
        for i in range(share[1]):
            mass[:, own[i]] += by_set[:, code] * share[0]
            population[own[i]] += persons[code] * share[0]
    return by_set.sum(axis=1), mass, population


@numba.njit(cache=True, nogil=True)
def _own_classes(row: np.ndarray, n_classes: int, scale: int, out: np.ndarray) -> tuple[int, int]:
    """A person's classes (set bits of ``row``, else "none" = ``n_classes``) in ``out``; (mass each, how many)."""
    width, m = row.itemsize * 8, 0
    for w in range(row.size):
        word = np.uint64(row[w])
        while word:
            low = word & (~word + _ONE)
            out[m] = w * width + _bit_index(low)
            m += 1
            word ^= low
    if m == 0:
        out[0] = n_classes
        return scale, 1
    return scale // m, m
