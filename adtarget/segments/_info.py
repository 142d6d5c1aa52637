"""Segment descriptions and per-person segment assignments (Personal Information, internal only)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from os import PathLike
from typing import Any, ClassVar

import numpy as np
from scipy import sparse

from adtarget._core._provenance import Sealed
from adtarget.exceptions import ParameterError
from adtarget.segments._assignments_io import assignments_to_pandas, write_assignments_parquet

__all__ = ["AssignmentsState", "SegmentAssignments", "SegmentInfo", "assignments_state", "make_assignments",
           "membership_matrix"]


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


@dataclass(frozen=True, eq=False)
class AssignmentsState:
    """What SegmentAssignments hold (see :class:`SegmentAssignments`)."""

    persons: np.ndarray
    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    segments: tuple[SegmentInfo, ...]
    lineage: str | None
    definitions: tuple[tuple[str, Any], ...]


class SegmentAssignments(Sealed, maker="SegmentCatalog.assign or DPKMeansSegmenter.assign"):
    """Which eligible person belongs to which segment.

    **Personal Information** (``classification = "personal"``): pseudonymous per-person data for the ad
    teams' training jobs. It is never given to advertisers: it has no report form, and the report writer
    accepts only aggregated, DP-noised counts. Its ``repr`` shows only shapes.

    Made only by a segmenter's ``assign`` from the gate's output (its ``lineage`` is then that of the
    EligibleEvents) or by :func:`read_assignments_parquet` (``lineage`` None: for training jobs, never
    releasable). A release accepts only assignments of the very EligibleEvents it counts.

    Attributes
    ----------
    persons : numpy.ndarray of uint64
        Sorted pseudonyms, aligned with the eligible persons (rows).
    membership : scipy.sparse.csr_matrix of bool, shape (n_persons, n_segments)
        A new matrix object on read-only arrays each time it is read.
    segments : tuple of SegmentInfo
        One per column, unique ids.
    lineage : str or None
        The ``lineage`` of the EligibleEvents the assignments were derived from.
    definitions : tuple of (str, PrivacyBudget)
        The DP-derived definitions the segments depend on (a DP k-means fit), with the budget each cost;
        a release charges each advertiser for them once (docs/privacy/learned-segments.md).
    """

    __slots__ = ()
    persons: np.ndarray
    segments: tuple[SegmentInfo, ...]
    lineage: str | None
    definitions: tuple[tuple[str, Any], ...]
    classification: ClassVar[str] = "personal"

    @property
    def membership(self) -> sparse.csr_matrix:
        return membership_matrix(assignments_state(self))

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
        return np.bincount(assignments_state(self).indices, minlength=self.n_segments).astype(np.int64)

    def segments_per_person(self) -> np.ndarray:
        """Number of segments each person belongs to (int64), aligned with ``persons``."""
        return np.diff(assignments_state(self).indptr).astype(np.int64)

    def to_scipy(self) -> sparse.csr_matrix:
        """A writable copy of the boolean membership matrix (persons × segments)."""
        return self.membership.copy()

    def to_pandas(self) -> Any:
        """A DataFrame: ``pseudonym`` (16-hex-digit string) and one bool column per segment id."""
        return assignments_to_pandas(self)

    def to_parquet(self, path: str | PathLike[str]) -> None:
        """Write the assignments (Personal Information) to a Parquet file; see ``read_assignments_parquet``."""
        write_assignments_parquet(self, path)

    def __repr__(self) -> str:
        if not SegmentAssignments._is_issued(self):
            return "SegmentAssignments(<not made by a segmenter>)"
        return (f"SegmentAssignments(n_persons={self.n_persons}, n_segments={self.n_segments}, "
                f"memberships={assignments_state(self).indices.size}; Personal Information)")


def assignments_state(assignments: object, what: str = "assignments") -> AssignmentsState:
    """The record of genuine SegmentAssignments; ProvenanceError for anything else."""
    state: AssignmentsState = SegmentAssignments._state_of(assignments, what)
    return state


def membership_matrix(state: AssignmentsState) -> sparse.csr_matrix:
    """The membership CSR matrix of ``state`` on its read-only arrays (no entry twice; rows may be unsorted)."""
    shape = (state.persons.size, len(state.segments))
    return sparse.csr_matrix((state.data, state.indices, state.indptr), shape=shape, copy=False)


def make_assignments(persons: np.ndarray, membership: Any, segments: Any, *, lineage: str | None,
                     definitions: tuple[tuple[str, Any], ...] = ()) -> SegmentAssignments:
    """SegmentAssignments over ``membership`` (persons × segments, any sparse or dense bool form), each entry
    stored once and explicit zeros dropped (rows may stay unsorted: counting does not depend on the order).
    For the segmenters and the Parquet reader."""
    persons = np.asarray(persons)
    if persons.ndim != 1 or persons.dtype != np.uint64:
        raise ParameterError(f"persons must be a 1-D uint64 array of pseudonyms, got dtype {persons.dtype} "
                             f"and shape {persons.shape}")
    segments = tuple(segments)
    if not all(isinstance(s, SegmentInfo) for s in segments):
        raise ParameterError("segments must be SegmentInfo objects")
    ids = [s.segment_id for s in segments]
    if len(set(ids)) != len(ids):
        dup = sorted(i for i, n in Counter(ids).items() if n > 1)
        raise ParameterError(f"segments must have unique ids, got duplicates {dup}")
    matrix = sparse.csr_matrix(membership, dtype=bool)
    if matrix.shape != (persons.size, len(segments)):
        raise ParameterError(f"membership must have shape (n_persons, n_segments) = "
                             f"({persons.size}, {len(segments)}), got {matrix.shape}")
    if not matrix.data.all():  # explicit zeros are not members (a scan, cheaper than the rewrite)
        matrix.eliminate_zeros()
    if not matrix.has_canonical_format:
        from adtarget.segments import _kernels as kernels

        problem = kernels.membership_problem(matrix.indptr, matrix.indices, matrix.shape[1])
        if problem == 2:
            raise ParameterError("membership holds a segment index out of range")
        if problem == 1:  # an entry stored twice would count twice
            matrix = matrix.copy()
            matrix.sum_duplicates()
    return SegmentAssignments._issue(AssignmentsState(persons, matrix.data, matrix.indices, matrix.indptr, segments,
                                                      lineage, tuple(definitions)))
