"""Keyed-priority contribution bounding: which k segments / breakdown values each person keeps.

The priority of a (person, key) pair is ``splitmix64(pseudonym XOR stable64(key) XOR stable64(salt))``.
Pseudonyms are already keyed hashes, so the choice is unpredictable without the pseudonymisation key, and it
depends only on the person, the key's *name* and the release salt, so every engine (numpy, Spark partitions)
bounds identically. A person keeps the ``k`` keys of smallest priority (ties, of probability about n²/2⁶⁴,
go to the smaller key index). The selection runs person by person in ``adtarget.reports._bounding_kernels``; this
module holds the definitions (the oracle tests and the release explanation use them).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence

import numpy as np

__all__ = ["priorities", "splitmix64", "stable64", "stable64_many"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def stable64(text: str) -> int:
    """Fixed, non-secret 64-bit hash of a string: little-endian BLAKE2b (digest_size=8) of its UTF-8 bytes."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def stable64_many(texts: Sequence[str]) -> np.ndarray:
    """``stable64`` of each string, as a read-only uint64 array (one hash per key name, not per event).

    Key names are public (segment ids, breakdown values), so the last few lists are kept: a release hashes
    the same 341 segment ids for every count.
    """
    return _stable64_tuple(tuple(texts))


@functools.lru_cache(maxsize=16)
def _stable64_tuple(texts: tuple[str, ...]) -> np.ndarray:
    out = np.fromiter((stable64(t) for t in texts), dtype=np.uint64, count=len(texts))
    out.flags.writeable = False
    return out


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
