"""Reading SegmentAssignments back from Parquet (:meth:`SegmentAssignments.to_parquet`), for training jobs."""

from __future__ import annotations

import json
from os import PathLike

import numpy as np
from scipy import sparse

from adtarget.exceptions import InputFormatError
from adtarget.segments._assignments_io import PSEUDONYM_COLUMN, parse_hex_pseudonyms
from adtarget.segments._info import SegmentAssignments, SegmentInfo, make_assignments

__all__ = ["read_assignments_parquet"]


def read_assignments_parquet(path: str | PathLike[str]) -> SegmentAssignments:
    """Read a file written by :meth:`SegmentAssignments.to_parquet`, for training jobs.

    The result has no ``lineage``: a file can be edited, so a release never accepts assignments read back
    from one (it accepts only those a segmenter derived from the very EligibleEvents it counts).
    """
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    meta = table.schema.metadata or {}
    if meta.get(b"adtarget.classification") != b"personal" or b"adtarget.segments" not in meta:
        raise InputFormatError(f"path: {str(path)!r} is not a SegmentAssignments Parquet file "
                               f"(no adtarget.segments metadata)")
    segments = tuple(SegmentInfo(s["segment_id"], s["name"], tuple(s["path"]))
                     for s in json.loads(meta[b"adtarget.segments"]))
    persons = parse_hex_pseudonyms(table.column(PSEUDONYM_COLUMN).to_numpy(zero_copy_only=False))
    dense = np.column_stack([table.column(s.segment_id).to_numpy(zero_copy_only=False) for s in segments]) \
        if segments else np.zeros((persons.size, 0), dtype=bool)
    return make_assignments(persons, sparse.csr_matrix(dense.astype(bool)), segments, lineage=None)
