"""Keyed-priority contribution bounding: which k segments / breakdown values each person keeps.

The priority of a (person, key) pair is ``splitmix64(pseudonym XOR stable64(key) XOR stable64(salt))``.
Pseudonyms are already keyed hashes, so the choice is unpredictable without the pseudonymisation key, and it
depends only on the person, the key's *name* and the release salt, so every engine (numpy, Spark partitions)
bounds identically. A person keeps the ``k`` keys of smallest priority. Inner kernels trust their inputs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

__all__ = ["bound_pairs", "priorities", "rank_within_person", "run_starts", "smallest_k_in_runs", "splitmix64",
           "stable64", "stable64_many"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_REDUCE_MAX_K = 8  # up to this k, k rounds of reduceat beat a lexsort


def stable64(text: str) -> int:
    """Fixed, non-secret 64-bit hash of a string: little-endian BLAKE2b (digest_size=8) of its UTF-8 bytes."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def stable64_many(texts: Sequence[str]) -> np.ndarray:
    """``stable64`` of each string, as a uint64 array (one hash per distinct key name, not per event)."""
    return np.fromiter((stable64(t) for t in texts), dtype=np.uint64, count=len(texts))


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser, vectorised over a uint64 array (wrap-around arithmetic)."""
    z = np.asarray(x, dtype=np.uint64) + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def priorities(pseudonyms: np.ndarray, key_hashes: np.ndarray, salt: str) -> np.ndarray:
    """Priority of each (pseudonym, key) pair: ``splitmix64(pseudonym ^ key_hash ^ stable64(salt))``."""
    salt64 = np.uint64(stable64(salt))
    with np.errstate(over="ignore"):
        return splitmix64(np.bitwise_xor(np.bitwise_xor(pseudonyms, key_hashes), salt64))


def rank_within_person(person: np.ndarray, priority: np.ndarray, tiebreak: np.ndarray) -> np.ndarray:
    """Rank (0 = smallest priority) of each pair among the pairs of the same person; O(n log n).

    Ties of priority (probability about n²/2⁶⁴) are broken by ``tiebreak`` (the key index).
    """
    order = np.lexsort((tiebreak, priority, person))
    sorted_person = person[order]
    start = np.ones(len(order), dtype=bool)
    start[1:] = sorted_person[1:] != sorted_person[:-1]
    first = np.maximum.accumulate(np.where(start, np.arange(len(order)), 0))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - first
    return rank


def run_starts(person: np.ndarray) -> np.ndarray:
    """Boolean mask of the first pair of each person's run (``person`` sorted)."""
    start = np.ones(person.size, dtype=bool)
    start[1:] = person[1:] != person[:-1]
    return start


def smallest_k_in_runs(person: np.ndarray, priority: np.ndarray, tiebreak: np.ndarray, k: int) -> np.ndarray:
    """Mask of the ``k`` smallest priorities of each person's run (``person`` sorted); O(k n), no sort.

    Each round takes the run minimum with ``np.minimum.reduceat``. Exact ties of priority (probability
    about n²/2⁶⁴) would select too many; they are detected and resolved by the sorting path.
    """
    start = run_starts(person)
    starts = np.flatnonzero(start)
    run_id = np.cumsum(start) - 1
    chosen = np.zeros(person.size, dtype=bool)
    work = priority.copy()
    top = np.uint64(np.iinfo(np.uint64).max)
    for _ in range(k):  # k is a small bound, not a per-person loop
        hit = (work == np.minimum.reduceat(work, starts)[run_id]) & ~chosen
        chosen |= hit
        work[hit] = top
    if np.bincount(run_id[chosen]).max(initial=0) > k:
        return rank_within_person(person, priority, tiebreak) < k
    return chosen


def bound_pairs(person: np.ndarray, key: np.ndarray, pseudonyms: np.ndarray, key_hashes: np.ndarray,
                salt: str, k: int) -> np.ndarray:
    """Boolean mask of the (person, key) pairs kept: each person keeps at most ``k`` keys, by keyed priority.

    Parameters
    ----------
    person : int array, sorted
        Person index of each distinct pair (into ``pseudonyms``), non-decreasing.
    key : int array
        Key index of each pair (into ``key_hashes``); pairs are distinct.
    pseudonyms : uint64 array
        Pseudonym of each person index.
    key_hashes : uint64 array
        ``stable64`` of each key's name.
    salt : str
        Release salt.
    k : int
        Keys kept per person, >= 1.

    Returns
    -------
    numpy.ndarray of bool
        Same length as ``person``; no person has more than ``k`` True entries. Only persons with more than
        ``k`` pairs have priorities computed.
    """
    start = run_starts(person)
    run_id = np.cumsum(start) - 1
    run_len = np.bincount(run_id)
    if run_len.max(initial=0) <= k:
        return np.ones(person.size, dtype=bool)
    crowded = (run_len > k)[run_id]
    keep = np.ones(person.size, dtype=bool)
    p, c = person[crowded], key[crowded]
    prio = priorities(pseudonyms[p], key_hashes[c], salt)
    if k <= _REDUCE_MAX_K:
        keep[crowded] = smallest_k_in_runs(p, prio, c, k)
    else:
        keep[crowded] = rank_within_person(p, prio, c) < k
    return keep
