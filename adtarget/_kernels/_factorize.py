"""Compiled kernels of ingestion: factorise int64 ids by radix partitioning; map and check event columns.

Factorising 10^7 ids with a few 10^5 distinct values through one hash table is bound by cache and TLB misses
(the table outgrows the caches). Here the ids are first partitioned by the top bits of a hash
(:func:`count_partitions`, :func:`scatter_partitions`: sequential reads, one write stream per partition), each
partition is factorised with a small hash table that stays in cache (:func:`factorize_partitions`), and every
row gets its code back by reading the partitions' code streams in row order (:func:`unpartition_codes`).
Codes are dense, numbered partition by partition; callers only need them consistent, and renumber them with
:func:`relabel` while they are still in partition order (the look-ups of one partition then hit a small range).

The column kernels (:func:`map_codes`, :func:`copy_timestamps`, :func:`copy_weights`) write one column's
values and lower each row's quarantine reason code to the first rule it fails (codes are in precedence
order, so the first failing rule is the smallest code). :func:`argsort_uint64` orders the pseudonyms.
Kernels trust their inputs except the indices they gather with, which they check (an out-of-range index
returns ``ok = False``, never a wrong answer).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = [
    "argsort_uint64",
    "copy_timestamps",
    "copy_weights",
    "count_partitions",
    "factorize_partitions",
    "index_range",
    "map_codes",
    "partition_bits",
    "relabel",
    "scatter_partitions",
    "unpartition_codes",
]

_MIN_TABLE_BITS = 8
_ROWS_PER_PARTITION = 1 << 15
_LONG_RUN = 32
_MAX_PARTITION_BITS = 10


def partition_bits(n_rows: int) -> int:
    """How many top hash bits choose a partition: enough that one partition's table stays in the L2 cache."""
    bits = 0
    while bits < _MAX_PARTITION_BITS and (n_rows >> bits) > _ROWS_PER_PARTITION:
        bits += 1
    return bits


_PARTITION_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # two odd constants: partition and slot bits independent
_SLOT_MULTIPLIER = np.uint64(0xC2B2AE3D27D4EB4F)


@numba.njit(cache=True, nogil=True, inline="always")
def _top_bits(key: np.int64, multiplier: np.uint64, shift: np.uint64) -> np.int64:
    """Multiplicative (Fibonacci) hashing: the top bits of ``key * multiplier``; ``shift`` is 64 - bits."""
    return np.int64((np.uint64(key) * multiplier) >> shift)


@numba.njit(cache=True, nogil=True)
def count_partitions(keys: np.ndarray, bits: int, parts: np.ndarray, counts: np.ndarray) -> None:
    """Each key's partition (the top ``bits`` of its multiplicative hash) into ``parts`` (uint16, like ``keys``), tallied into
    ``counts`` (int64, ``2**bits``)."""
    if bits == 0:
        parts[:] = 0
        counts[0] += keys.size
        return
    shift = np.uint64(64 - bits)
    for i in range(keys.size):
        p = _top_bits(keys[i], _PARTITION_MULTIPLIER, shift)
        parts[i] = p
        counts[p] += 1


@numba.njit(cache=True, nogil=True)
def scatter_partitions(keys: np.ndarray, parts: np.ndarray, cursor: np.ndarray, out: np.ndarray) -> None:
    """Append each key to its partition of ``out`` at ``cursor[partition]`` (advanced); stable."""
    for i in range(keys.size):
        p = parts[i]
        out[cursor[p]] = keys[i]
        cursor[p] += 1


@numba.njit(cache=True, nogil=True)
def factorize_partitions(
    partitioned: np.ndarray, offsets: np.ndarray, codes: np.ndarray, uniques: np.ndarray
) -> int:
    """Dense codes of ``partitioned`` into ``codes`` (int32) and its distinct keys into ``uniques``; returns
    how many distinct keys there are.

    ``offsets`` (int64, ``n_partitions + 1``) delimits the partitions; ``uniques`` must be as long as
    ``partitioned`` (checked: -1 is returned otherwise). Codes number the distinct keys in order of first
    appearance within each partition, partitions in order. One hash table, cleared per partition, doubles
    (and the partition restarts) whenever it would be more than a quarter full.
    """
    if uniques.size < partitioned.size:
        return -1
    bits = _MIN_TABLE_BITS
    table_keys = np.empty(1 << bits, dtype=np.int64)
    table_codes = np.empty(1 << bits, dtype=np.int32)
    n_unique = 0
    p = 0
    while p < offsets.size - 1:
        table_codes[:] = -1
        done = _factorize_one(partitioned, offsets[p], offsets[p + 1], table_keys, table_codes, bits, codes,
                              uniques, n_unique)
        if done < 0:
            bits += 1
            table_keys = np.empty(1 << bits, dtype=np.int64)
            table_codes = np.empty(1 << bits, dtype=np.int32)
            continue
        n_unique = done
        p += 1
    return n_unique


@numba.njit(cache=True, nogil=True)
def _factorize_one(
    keys: np.ndarray, lo: int, hi: int, table_keys: np.ndarray, table_codes: np.ndarray, bits: int,
    codes: np.ndarray, uniques: np.ndarray, n_unique: int,
) -> int:
    """One partition (``keys[lo:hi]``) into an empty table of ``2**bits`` slots: the new number of distinct keys, or -1 if the
    table became more than a quarter full before the end."""
    mask = np.uint64(table_codes.size - 1)
    shift = np.uint64(64 - bits)
    limit = n_unique + table_codes.size // 4
    for j in range(lo, hi):
        key = keys[j]
        slot = _top_bits(key, _SLOT_MULTIPLIER, shift)
        while True:
            code = table_codes[slot]
            if code < 0:
                if n_unique >= limit:
                    return -1
                table_keys[slot] = key
                table_codes[slot] = n_unique
                uniques[n_unique] = key
                codes[j] = n_unique
                n_unique += 1
                break
            if table_keys[slot] == key:
                codes[j] = code
                break
            slot = np.int64(np.uint64(slot + 1) & mask)
    return n_unique


@numba.njit(cache=True, nogil=True)
def relabel(codes: np.ndarray, table: np.ndarray) -> bool:
    """``codes[:] = table[codes]`` in place; False (codes partly relabelled) if a code is out of range."""
    for j in range(codes.size):
        c = codes[j]
        if c < 0 or c >= table.size:
            return False
        codes[j] = table[c]
    return True


@numba.njit(cache=True, nogil=True)
def unpartition_codes(parts: np.ndarray, cursor: np.ndarray, codes: np.ndarray, out: np.ndarray) -> None:
    """``out[i]`` = the next code of row ``i``'s partition (``codes`` at ``cursor[partition]``, advanced).

    With the ``parts`` that :func:`scatter_partitions` used and ``cursor`` reset to the partitions' starts,
    it puts every row's code back in row order.
    """
    for i in range(parts.size):
        p = parts[i]
        out[i] = codes[cursor[p]]
        cursor[p] += 1


@numba.njit(cache=True, nogil=True)
def map_codes(codes: np.ndarray, values: np.ndarray, reasons: np.ndarray, out: np.ndarray,
              reason: np.ndarray) -> bool:
    """``out[i] = values[codes[i]]`` and ``reason[i] = min(reason[i], reasons[codes[i]])``.

    A negative code (a null) takes the tables' last entry. Returns False if a code is ``>= values.size - 1``.
    ``reason`` is only read where ``reasons`` is below the int8 maximum (a clean column costs no pass over it).
    """
    last = np.int64(values.size - 1)
    clean = np.iinfo(np.int8).max
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
def index_range(indices: np.ndarray) -> tuple[int, int]:
    """``(min, max)`` of a non-empty integer array in one pass."""
    low = high = np.int64(indices[0])
    for i in range(1, indices.size):
        v = np.int64(indices[i])
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
