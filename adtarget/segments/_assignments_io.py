"""Export of SegmentAssignments for ad teams' training jobs (Personal Information): pandas and Parquet.

The reader is ``_assignments_read`` (it makes SegmentAssignments; this module only reads their public fields).

Files written here hold pseudonyms: they are internal data, marked ``adtarget.classification = personal`` in
the Parquet schema metadata, and are never an advertiser deliverable.
"""

from __future__ import annotations

import json
from os import PathLike
from typing import Any

import numpy as np

from adtarget._core._atomic import atomic_path

__all__ = ["PSEUDONYM_COLUMN", "assignments_to_pandas", "hex_pseudonyms", "parse_hex_pseudonyms",
           "write_assignments_parquet"]

PSEUDONYM_COLUMN = "pseudonym"
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_SHIFTS = np.arange(60, -4, -4, dtype=np.uint64)


def hex_pseudonyms(persons: np.ndarray) -> np.ndarray:
    """``f"{p:016x}"`` of every pseudonym, vectorised (nibble lookup), as a ``<U16`` array."""
    nibbles = ((persons.astype(np.uint64)[:, None] >> _SHIFTS) & np.uint64(15)).astype(np.intp)
    chars = np.ascontiguousarray(_HEX[nibbles])
    return chars.view("S16").ravel().astype("U16")


def parse_hex_pseudonyms(values: np.ndarray) -> np.ndarray:
    """Inverse of :func:`hex_pseudonyms` (uint64), vectorised."""
    raw = np.ascontiguousarray(np.asarray(values, dtype="S16")).view(np.uint8).reshape(-1, 16)
    digits = np.where(raw >= ord("a"), raw - ord("a") + 10, raw - ord("0")).astype(np.uint64)
    return (digits << _SHIFTS).sum(axis=1, dtype=np.uint64)


def assignments_to_pandas(assignments: Any) -> Any:
    """DataFrame with a ``pseudonym`` hex column and one bool column per segment id."""
    import pandas as pd

    dense = assignments.membership.toarray()
    frame = pd.DataFrame(dense, columns=list(assignments.segment_ids))
    frame.insert(0, PSEUDONYM_COLUMN, hex_pseudonyms(assignments.persons).astype(object))
    return frame


def _metadata(assignments: Any) -> dict[bytes, bytes]:
    segments = [{"segment_id": s.segment_id, "name": s.name, "path": list(s.path)} for s in assignments.segments]
    return {b"adtarget.classification": b"personal",
            b"adtarget.segments": json.dumps(segments, ensure_ascii=False).encode("utf-8")}


def write_assignments_parquet(assignments: Any, path: str | PathLike[str]) -> None:
    """Write ``pseudonym`` + one bool column per segment, with segment descriptions in schema metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {PSEUDONYM_COLUMN: pa.array(hex_pseudonyms(assignments.persons), type=pa.string())}
    csc = assignments.membership.tocsc()
    for j, segment_id in enumerate(assignments.segment_ids):
        column = np.zeros(assignments.n_persons, dtype=bool)
        column[csc.indices[csc.indptr[j]:csc.indptr[j + 1]]] = True
        columns[segment_id] = pa.array(column)
    table = pa.table(columns).replace_schema_metadata(_metadata(assignments))
    with atomic_path(path) as temporary:
        pq.write_table(table, temporary)
