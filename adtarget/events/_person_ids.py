"""Person ids at ingestion: factorise the raw ids (their pseudonyms: ``_pseudonym.pseudonymise``).

The raw ids live only inside this module's objects for the duration of one ``ingest`` (docs/internals.md): they
are factorised, their distinct values are hashed by the :class:`~adtarget.Pseudonymizer`, and the rows end as
int32 indices into the sorted unique pseudonyms. Integer ids without nulls (the Parquet and Arrow case) take a
compiled path (``adtarget/events/_factorize_kernels.py``): one hash table, grown as it fills, probed in row order with
the slots of rows ahead prefetched; anything else (strings, nulls, mixed objects) goes through
:func:`adtarget.events._parsing.factorize`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from adtarget.events._parsing import factorize, int64_chunks

__all__ = ["PersonIds", "person_ids"]

_MIN_TABLE_BITS = 8
_ROWS_PER_SLOT_BITS = 4  # the first table has a slot per 16 rows (or 256); it doubles whenever it is half full
_MAX_FIRST_TABLE_BITS = 20  # 16 MiB


@dataclass(eq=False)
class PersonIds:
    """Factorised ids: ``uniques`` (the distinct ids) and ``codes`` (int32 per row into them, -1 if missing).

    ``complete`` (the compiled path): every row has an id and every unique id occurs in some row.
    """

    uniques: np.ndarray
    codes: np.ndarray
    complete: bool = False

    @property
    def missing(self) -> np.ndarray | None:
        """Rows without an id (bool), or None when every row has one."""
        return None if self.complete else self.codes < 0

    def row_codes(self, table: np.ndarray | None = None) -> np.ndarray:
        """Each row's code (int32), or ``table[code]`` when ``table`` (int32, one entry per unique) is given.

        On the compiled path the codes are relabelled in place: call once with a table.
        """
        if table is None:
            return self.codes
        if not self.complete:
            return table[self.codes]
        from adtarget.events import _factorize_kernels as kernels

        if not kernels.relabel(self.codes, table):  # pragma: no cover - invariant
            raise AssertionError("person codes out of range")
        return self.codes


def person_ids(values: Any) -> PersonIds:
    """Factorise the ``person_id`` column (compiled path for integer ids without nulls)."""
    chunks = int64_chunks(values)
    if chunks is None:
        uniques, codes = factorize(values, "person_id")
        return PersonIds(uniques=uniques, codes=codes)
    return _factorized(chunks)


def _factorized(chunks: list[np.ndarray]) -> PersonIds:
    """The compiled path: codes in row order from one hash table of the distinct ids (:class:`_IdTable`)."""
    n = sum(c.size for c in chunks)
    codes = np.empty(n, dtype=np.int32)
    table = _IdTable(min(max(n.bit_length() - _ROWS_PER_SLOT_BITS, _MIN_TABLE_BITS), _MAX_FIRST_TABLE_BITS))
    for start, chunk in _spans(chunks):
        table.add(chunk, codes[start:start + chunk.size])
    return PersonIds(uniques=table.uniques[:table.n_unique].copy(), codes=codes, complete=True)


class _IdTable:
    """The distinct ids seen so far, in a hash table of ``2**bits`` slots that doubles whenever it is half
    full. Narrow (8-byte slots) while every id is in ``[0, 2**32 - 1)``, wide (16-byte pairs) from the first id
    that is not (``adtarget/events/_factorize_kernels.py``)."""

    def __init__(self, bits: int) -> None:
        self.bits, self.narrow, self.n_unique = bits, True, 0
        self.uniques = np.empty(1 << (bits - 1), dtype=np.int64)
        self.slots = self._empty()

    def add(self, keys: np.ndarray, codes: np.ndarray) -> None:
        """Write the code of every key into ``codes``, adding new keys."""
        from adtarget.events import _factorize_kernels as kernels

        done = 0
        while done < keys.size:
            factorize = kernels.factorize_rows_narrow if self.narrow else kernels.factorize_rows
            rows, self.n_unique = factorize(keys[done:], self.slots, codes[done:], self.uniques, self.n_unique)
            done += rows
            if done < keys.size:
                self._rebuild(grow=self.n_unique >= self.uniques.size)

    def _rebuild(self, grow: bool) -> None:
        """Double the table (``grow``) or make it wide, and insert the ids seen so far again."""
        from adtarget.events import _factorize_kernels as kernels

        if grow:
            self.bits += 1
            self.uniques = np.concatenate([self.uniques, np.empty_like(self.uniques)])
        else:
            self.narrow = False
        self.slots = self._empty()
        (kernels.rehash_narrow if self.narrow else kernels.rehash)(self.slots, self.uniques[:self.n_unique])

    def _empty(self) -> np.ndarray:
        return np.full((1 if self.narrow else 2) << self.bits, -1, dtype=np.int64)


def _spans(chunks: list[np.ndarray]) -> list[tuple[int, np.ndarray]]:
    starts = np.cumsum([0] + [c.size for c in chunks[:-1]])
    return [(int(s), c) for s, c in zip(starts, chunks)]
