"""Segment descriptions and per-person segment assignments (Personal Information, internal only)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from os import PathLike
from typing import Any, ClassVar

import numpy as np
from scipy import sparse

from adtarget.exceptions import ParameterError

__all__ = ["SegmentAssignments", "SegmentInfo"]


@dataclass(frozen=True)
class SegmentInfo:
    """What a segment is: its id in reports, a readable name and its taxonomy path.

    Parameters
    ----------
    segment_id : str
        ``"<taxonomy>:<node id>"`` (e.g. ``"iab-2.2:483"``) for taxonomy segments, ``"learned:<model>:<k>"``
        for learned ones.
    name : str
        Readable name (e.g. ``"Sports"`` or ``"Sports + Travel"``).
    path : tuple of str
        Names from the taxonomy root down to the node; ``()`` for learned or composite segments.
    """

    segment_id: str
    name: str
    path: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.segment_id, str) or ":" not in self.segment_id:
            raise ParameterError(f"segment_id must be a string '<prefix>:<id>', got {self.segment_id!r}")
        if not isinstance(self.name, str) or not self.name.strip():
            raise ParameterError(f"name of segment {self.segment_id!r} must be a non-empty string, "
                                 f"got {self.name!r}")
        path = tuple(self.path)
        if not all(isinstance(p, str) for p in path):
            raise ParameterError(f"path of segment {self.segment_id!r} must hold strings, got {self.path!r}")
        object.__setattr__(self, "path", path)

    def __str__(self) -> str:
        return f"{self.segment_id} ({self.name})"


@dataclass(frozen=True, eq=False, repr=False)
class SegmentAssignments:
    """Which eligible person belongs to which segment.

    **Personal Information** (``classification = "personal"``): pseudonymous per-person data for the ad
    teams' training jobs. It is never given to advertisers: it has no report form, and the report writer
    accepts only aggregated, DP-noised counts. Its ``repr`` shows only shapes.

    Attributes
    ----------
    persons : numpy.ndarray of uint64
        Sorted pseudonyms, aligned with the eligible persons (rows).
    membership : scipy.sparse.csr_matrix of bool, shape (n_persons, n_segments)
    segments : tuple of SegmentInfo
        One per column, unique ids.
    """

    persons: np.ndarray
    membership: sparse.csr_matrix
    segments: tuple[SegmentInfo, ...]

    classification: ClassVar[str] = "personal"

    def __post_init__(self) -> None:
        persons = np.asarray(self.persons)
        if persons.ndim != 1 or persons.dtype != np.uint64:
            raise ParameterError(f"persons must be a 1-D uint64 array of pseudonyms, got dtype {persons.dtype} "
                                 f"and shape {persons.shape}")
        segments = tuple(self.segments)
        if not all(isinstance(s, SegmentInfo) for s in segments):
            raise ParameterError("segments must be SegmentInfo objects")
        ids = [s.segment_id for s in segments]
        if len(set(ids)) != len(ids):
            dup = sorted(i for i, n in Counter(ids).items() if n > 1)
            raise ParameterError(f"segments must have unique ids, got duplicates {dup}")
        membership = sparse.csr_matrix(self.membership, dtype=bool)
        if membership.shape != (persons.size, len(segments)):
            raise ParameterError(f"membership must have shape (n_persons, n_segments) = "
                                 f"({persons.size}, {len(segments)}), got {membership.shape}")
        if not membership.data.all():  # explicit zeros are not members (a scan, cheaper than the rewrite)
            membership.eliminate_zeros()
        object.__setattr__(self, "persons", persons)
        object.__setattr__(self, "membership", membership)
        object.__setattr__(self, "segments", segments)

    @property
    def n_persons(self) -> int:
        return int(self.persons.size)

    @property
    def n_segments(self) -> int:
        return len(self.segments)

    @property
    def segment_ids(self) -> tuple[str, ...]:
        return tuple(s.segment_id for s in self.segments)

    def sizes(self) -> np.ndarray:
        """Exact (un-noised) member count per segment, int64. Internal: never report these directly."""
        return np.bincount(self.membership.indices, minlength=self.n_segments).astype(np.int64)

    def segments_per_person(self) -> np.ndarray:
        """Number of segments each person belongs to (int64), aligned with ``persons``."""
        return np.diff(self.membership.indptr).astype(np.int64)

    def to_scipy(self) -> sparse.csr_matrix:
        """A copy of the boolean membership matrix (persons × segments)."""
        return self.membership.copy()

    def to_pandas(self) -> Any:
        """A DataFrame: ``pseudonym`` (16-hex-digit string) and one bool column per segment id."""
        from adtarget._segments._assignments_io import assignments_to_pandas

        return assignments_to_pandas(self)

    def to_parquet(self, path: str | PathLike[str]) -> None:
        """Write the assignments (Personal Information) to a Parquet file; see ``read_assignments_parquet``."""
        from adtarget._segments._assignments_io import write_assignments_parquet

        write_assignments_parquet(self, path)

    def __repr__(self) -> str:
        return (f"SegmentAssignments(n_persons={self.n_persons}, n_segments={self.n_segments}, "
                f"memberships={self.membership.nnz}; Personal Information)")
