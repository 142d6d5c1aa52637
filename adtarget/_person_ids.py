"""Person ids at ingestion: factorise the raw ids, pseudonymise the distinct ones, index rows into the pseudonyms.

The raw ids live only inside this module's objects for the duration of one ``ingest`` (docs/internals.md): they
are factorised, their distinct values are hashed by the :class:`~adtarget.Pseudonymizer`, and the rows end as
int32 indices into the sorted unique pseudonyms. Integer ids without nulls (the Parquet and Arrow case) take a
compiled path (``adtarget/_kernels/_factorize.py``): radix-partitioned hash tables, so 10^7 ids factorise in
cache; anything else (strings, nulls, mixed objects) goes through :func:`adtarget._columns.factorize`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from adtarget._columns import factorize, int64_chunks

if TYPE_CHECKING:
    from adtarget._pseudonym import Pseudonymizer

__all__ = ["PersonIds", "person_ids", "pseudonymise"]


@dataclass(eq=False)
class PersonIds:
    """Factorised ids: ``uniques`` (the distinct ids) and, per row, a code into them.

    Either ``codes`` (int32, -1 for a missing id, row order) or the partitioned form of the compiled path:
    ``partition_codes`` (codes in partition order), ``parts`` (each row's partition) and ``offsets`` (the
    partitions' starts); :meth:`row_codes` turns the latter into the former.
    """

    uniques: np.ndarray
    codes: np.ndarray | None = None
    partition_codes: np.ndarray | None = None
    parts: np.ndarray | None = None
    offsets: np.ndarray | None = None
    spare: np.ndarray | None = None  # the compiled path's int64 work buffer (one per row), free for reuse

    def take_spare(self) -> np.ndarray | None:
        """The int64 work buffer (its pages are already mapped), handed over once; None if there is none."""
        spare, self.spare = self.spare, None
        return spare

    @property
    def missing(self) -> np.ndarray | None:
        """Rows without an id (bool), or None when every row has one."""
        return None if self.codes is None else self.codes < 0

    def row_codes(self, table: np.ndarray | None = None) -> np.ndarray:
        """Each row's code (int32), or ``table[code]`` when ``table`` (int32, one entry per unique) is given.

        Consumes the partitioned form: call once.
        """
        if self.codes is not None:
            return self.codes if table is None else table[self.codes]
        from adtarget._kernels import _factorize as kernels

        codes, parts, offsets = self.partition_codes, self.parts, self.offsets
        assert codes is not None and parts is not None and offsets is not None
        self.partition_codes = self.parts = None
        if table is not None and not kernels.relabel(codes, table):  # pragma: no cover - invariant
            raise AssertionError("person codes out of range")
        out = np.empty(parts.size, dtype=np.int32)
        kernels.unpartition_codes(parts, offsets[:-1].copy(), codes, out)
        return out


def person_ids(values: Any) -> PersonIds:
    """Factorise the ``person_id`` column (compiled path for integer ids without nulls)."""
    chunks = int64_chunks(values)
    if chunks is None:
        uniques, codes = factorize(values, "person_id")
        return PersonIds(uniques=uniques, codes=codes)
    return _partitioned(chunks)


def _partitioned(chunks: list[np.ndarray]) -> PersonIds:
    from adtarget._kernels import _factorize as kernels

    n = sum(c.size for c in chunks)
    bits = kernels.partition_bits(n)
    parts = np.empty(n, dtype=np.uint16)
    counts = np.zeros(1 << bits, dtype=np.int64)
    for start, chunk in _spans(chunks):
        kernels.count_partitions(chunk, bits, parts[start:start + chunk.size], counts)
    offsets = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    partitioned = np.empty(n, dtype=np.int64)
    cursor = offsets[:-1].copy()
    for start, chunk in _spans(chunks):
        kernels.scatter_partitions(chunk, parts[start:start + chunk.size], cursor, partitioned)
    codes = np.empty(n, dtype=np.int32)
    uniques = np.empty(n, dtype=np.int64)
    n_unique = kernels.factorize_partitions(partitioned, offsets, codes, uniques)
    return PersonIds(uniques=uniques[:n_unique].copy(), partition_codes=codes, parts=parts, offsets=offsets,
                     spare=partitioned)


def _spans(chunks: list[np.ndarray]) -> list[tuple[int, np.ndarray]]:
    starts = np.cumsum([0] + [c.size for c in chunks[:-1]])
    return [(int(s), c) for s, c in zip(starts, chunks)]


def pseudonymise(ids: PersonIds, accepted: np.ndarray | None, pseudonymizer: Pseudonymizer
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``(person, persons)``: the accepted rows' indices (int32) into the sorted unique pseudonyms (uint64) of
    the ids that accepted rows use. ``accepted`` None means every row."""
    from adtarget._kernels import _factorize as kernels

    if accepted is None and ids.codes is None:  # compiled path: every unique id occurs in some row
        pseudonyms = np.asarray(pseudonymizer.pseudonymize(ids.uniques), dtype=np.uint64)
        order = kernels.argsort_uint64(pseudonyms)
        rank = np.empty(order.size, dtype=np.int32)
        rank[order] = np.arange(order.size, dtype=np.int32)
        return ids.row_codes(rank), pseudonyms[order]
    codes = ids.row_codes() if accepted is None else ids.row_codes()[accepted]
    used = np.zeros(ids.uniques.size, dtype=bool)
    used[codes] = True
    used_codes = np.flatnonzero(used)
    pseudonyms = np.asarray(pseudonymizer.pseudonymize(ids.uniques[used_codes]), dtype=np.uint64)
    order = kernels.argsort_uint64(pseudonyms)
    rank = np.full(ids.uniques.size, -1, dtype=np.int32)
    rank[used_codes[order]] = np.arange(order.size, dtype=np.int32)
    return rank[codes], pseudonyms[order]
