"""The engine-independent pre-noise kernel: distinct-person counts per segment and per breakdown cell.

``count_cells`` bounds contributions (keyed priority, see ``_bounding``) and counts in linear time, person by
person, with the compiled kernels of ``adtarget.reports._bounding_kernels``: a person's segments are a row of the
membership matrix, their distinct breakdown values a bitset filled in one pass over the events, and each kept
(person, segment) pair adds one to the cells of the person's kept values. Keys in the
result are names (segment ids, age bands, region codes, service names), never batch codes, so results over
disjoint partitions of persons add up exactly (``CellCounts.__add__`` / ``CellCounts.sum``).
Inner kernel: it trusts its inputs; ``release`` validates them first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from adtarget._core._buffers import uses_buffers
from adtarget._core._provenance import Sealed
from adtarget.exceptions import ParameterError
from adtarget.reference._breakdowns import BreakdownDimension, breakdown_dimension
from adtarget.reports._bounding import stable64, stable64_many
from adtarget.reports._spec import ReleaseSpec, checked_spec

if TYPE_CHECKING:
    from adtarget.gate._gate import EligibleEvents
    from adtarget.gate._policy import EligibilityPolicy
    from adtarget.reference._sensitivity import SafeTaxonomy
    from adtarget.segments._info import SegmentAssignments

__all__ = ["CellCounts", "CountsState", "CountingBounds", "ReleaseFacts", "count_cells", "counting_bounds", "counts_state", "report_policy"]


@dataclass(frozen=True)
class CountingBounds:
    """The parts of a ReleaseSpec that decide the exact counts: which segments and breakdowns, and the bounds.

    A release checks the bounds its counts were made with against its spec, so noise is never calibrated to
    bounds other than those applied.
    """

    segment_ids: tuple[str, ...]
    breakdowns: tuple[str, ...]
    max_segments_per_person: int
    max_cells_per_person: tuple[tuple[str, int], ...]
    bounding_salt: str


def counting_bounds(spec: ReleaseSpec) -> CountingBounds:
    """The :class:`CountingBounds` of ``spec``."""
    return CountingBounds(spec.segment_ids, spec.breakdowns, spec.max_segments_per_person,
                          tuple((d, spec.cells_per_person(d)) for d in spec.breakdowns), spec.bounding_salt)


@dataclass(frozen=True)
class ReleaseFacts:
    """Public facts of the data the counts were made from, which the report states and reuse is keyed on.

    Attributes
    ----------
    segments : tuple of SegmentInfo
        The requested segments (spec order): ids, names and paths from the segment definitions.
    policy : tuple of (str, object)
        The report's ``policy`` object as sorted items (minimum consent version, sensitivity profile, minimum
        age): public settings of the gate.
    window : (int, int)
        The data window (epoch seconds): the gate's end, minus the longest retention.
    snapshot_id : str or None
        The data owner's name of the data snapshot (``apply_gate(..., snapshot_id=)``).
    definitions : tuple of (str, PrivacyBudget)
        DP-derived definitions the segments depend on (DP k-means fits), charged to each advertiser once.
    """

    segments: tuple[Any, ...]
    policy: tuple[tuple[str, Any], ...]
    window: tuple[int, int]
    snapshot_id: str | None
    definitions: tuple[tuple[str, Any], ...]


def report_policy(policy: EligibilityPolicy, safe_taxonomy: SafeTaxonomy) -> dict[str, Any]:
    """The report's ``policy`` object: minimum consent policy version ("any"), sensitivity profile, minimum age."""
    return {"version": policy.min_policy_version or "any", "sensitivity_profile": safe_taxonomy.profile.name,
            "min_age": int(policy.min_age)}


@dataclass(frozen=True, eq=False)
class CountsState:
    """What CellCounts hold (see :class:`CellCounts`)."""

    segment_ids: tuple[str, ...]
    sizes: np.ndarray
    values: Mapping[str, tuple[str, ...]]
    cells: Mapping[str, np.ndarray]
    value_persons: Mapping[str, np.ndarray]
    n_persons: int
    bounds: CountingBounds
    facts: ReleaseFacts
    #: sorted keyed tags (``_member_tags``) of every eligible person of the counted data (hidden: ``_`` names are not readable on
    #: the handle); adding counts refuses parts that share a person, so no person is counted twice
    _members: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))


class CellCounts(Sealed, maker="adtarget.reports.count_cells"):
    """Exact (pre-noise) distinct-person counts after contribution bounding. Personal data: never emit.

    Made only by :func:`count_cells` over the gate's EligibleEvents and assignments derived from them, or by
    adding CellCounts of disjoint partitions made with the same bounds and facts (``+``, :meth:`sum`). It
    records the bounds it was made with (``bounds``) and the public facts of its data (``facts``).

    Attributes
    ----------
    segment_ids : tuple of str
    sizes : int64 array (n_segments,)
        Persons counted in each segment.
    values : mapping dimension -> tuple of str
        The value names of each breakdown dimension (columns of ``cells[dim]``).
    cells : mapping dimension -> int64 array (n_segments, n_values)
    value_persons : mapping dimension -> int64 array (n_values,)
        Distinct counted persons per value (for DP partition selection; a person adds to at most
        ``max_cells_per_person[dim]`` values).
    n_persons : int
        Persons counted in at least one segment.
    bounds : CountingBounds
    facts : ReleaseFacts
    """

    __slots__ = ()
    segment_ids: tuple[str, ...]
    sizes: np.ndarray
    values: Mapping[str, tuple[str, ...]]
    cells: Mapping[str, np.ndarray]
    value_persons: Mapping[str, np.ndarray]
    n_persons: int
    bounds: CountingBounds
    facts: ReleaseFacts

    def __add__(self, other: CellCounts) -> CellCounts:
        if not isinstance(other, CellCounts):
            return NotImplemented
        a, b = counts_state(self, "left operand"), counts_state(other, "right operand")
        if a.bounds != b.bounds or a.facts != b.facts:
            raise ParameterError("cannot add CellCounts made with other bounds or over other data facts "
                                 "(segments, policy, window, snapshot id, definitions)")
        seg_ids = a.segment_ids + tuple(s for s in b.segment_ids if s not in set(a.segment_ids))
        values = {d: _union_values(d, a.values[d], b.values[d]) for d in a.cells}
        sizes = _aligned(a.sizes, a.segment_ids, seg_ids) + _aligned(b.sizes, b.segment_ids, seg_ids)
        cells = {d: _aligned2(a, d, seg_ids, values[d]) + _aligned2(b, d, seg_ids, values[d]) for d in a.cells}
        vp = {d: _aligned(a.value_persons[d], a.values[d], values[d])
              + _aligned(b.value_persons[d], b.values[d], values[d]) for d in a.cells}
        return CellCounts._issue(CountsState(seg_ids, sizes, values, cells, vp, a.n_persons + b.n_persons,
                                             a.bounds, a.facts, _disjoint_union(a._members, b._members)))

    @staticmethod
    def sum(parts: Iterable[CellCounts]) -> CellCounts:
        """Sum of counts over disjoint partitions of persons (what the Spark engine does)."""
        it = iter(parts)
        total = next(it, None)
        if total is None:
            raise ValueError("CellCounts.sum needs at least one part")
        for part in it:
            total = total + part
        return total

    def __repr__(self) -> str:
        if not CellCounts._is_issued(self):
            return "CellCounts(<not made by adtarget.reports.count_cells>)"
        dims = ", ".join(f"{d}:{len(v)}" for d, v in self.values.items())
        return f"CellCounts(n_segments={len(self.segment_ids)}, n_persons={self.n_persons}, values=[{dims}])"


def _member_tags(persons: np.ndarray) -> np.ndarray:
    """Sorted tags of ``persons``: a bijection of the 64-bit pseudonyms keyed by the process's sealing secret
    (splitmix64's finaliser between two key XORs), so overlap checks stay exact while the counts, pickled from a
    Spark executor, carry no pseudonym."""
    from adtarget._core._provenance import process_secret

    key = np.frombuffer(hashlib.blake2b(process_secret(), digest_size=16, person=b"adtarget-member").digest(),
                        dtype="<u8")
    with np.errstate(over="ignore"):
        z = np.asarray(persons, dtype=np.uint64) ^ key[0]
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = (z ^ (z >> np.uint64(31))) ^ key[1]
    z.sort()
    return z


def _disjoint_union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The sorted union of two sorted pseudonym sets, refused when they share a person (the noise is
    calibrated for each person counted once: counts added to themselves would release k times their value)."""
    merged = np.concatenate([a, b])
    merged.sort(kind="stable")
    if merged.size > 1 and not (merged[1:] != merged[:-1]).all():
        raise ParameterError("cannot add CellCounts over partitions that share persons (the same counts twice, or "
                             "two gate runs over the same events): parts must be disjoint partitions of persons")
    return merged


def counts_state(cells: object, what: str = "cells") -> CountsState:
    """The record of genuine CellCounts; ProvenanceError for anything :func:`count_cells` did not make."""
    state: CountsState = CellCounts._state_of(cells, what)
    return state


def _union_values(dim: str, a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    entry = breakdown_dimension(dim)
    return entry.fixed_values if entry.values == "fixed" else tuple(sorted(set(a) | set(b)))


def _aligned(arr: np.ndarray, names: tuple[str, ...], target: tuple[str, ...]) -> np.ndarray:
    pos = {n: i for i, n in enumerate(target)}
    out = np.zeros((len(target),) + arr.shape[1:], dtype=np.int64)
    out[[pos[n] for n in names]] = arr
    return out


def _aligned2(cc: CountsState, dim: str, seg_ids: tuple[str, ...], values: tuple[str, ...]) -> np.ndarray:
    rows = _aligned(cc.cells[dim], cc.segment_ids, seg_ids)
    return _aligned(rows.T, cc.values[dim], values).T


def _dimension_source(eligible: Any, dim: BreakdownDimension) -> tuple[np.ndarray, np.ndarray, tuple[str, ...],
                                                                     np.ndarray]:
    """Per-event person index, value codes, their names, and the codes in the dimension's domain."""
    if dim.values == "registry":
        names = tuple(eligible.services.names)
        permitted = np.asarray(getattr(eligible.services, "ads_permitted", np.ones(len(names), dtype=bool)), bool)
        return eligible.person, eligible.service, names, np.flatnonzero(permitted)
    if dim.source == "region":
        codes, names = eligible.region, tuple(eligible.regions)
    else:
        codes, names = eligible.dimension_codes[dim.source], tuple(eligible.dimension_values[dim.source])
    return eligible.person, codes, names, np.arange(len(names))


def check_segments(segment_ids: Sequence[str], safe_taxonomy: Any) -> None:
    """Counts never exist for a segment on a sensitive node (P5), whoever defined it."""
    from adtarget.exceptions import SensitiveCategoryError
    from adtarget.reports._report import sensitive_segment_problems

    problems = sensitive_segment_problems(segment_ids, safe_taxonomy)
    if problems:
        raise SensitiveCategoryError(f"segments on sensitive nodes cannot be counted: {problems[0]}"
                                     + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))


def derived_assignments(events: Any, assignments: Any) -> Any:
    """The record of ``assignments`` if a segmenter derived them from these very events (same lineage)."""
    from adtarget.segments._info import assignments_state

    state = assignments_state(assignments)
    if state.lineage != events.lineage:
        where = "were read from a file" if state.lineage is None else "were derived from other EligibleEvents"
        raise ParameterError(f"assignments {where}: a release counts only assignments that a segmenter's assign() "
                             f"derived from the EligibleEvents it is given (InterestProfiles of them, or them)")
    return state


@uses_buffers
def count_cells(eligible: EligibleEvents, assignments: SegmentAssignments, spec: ReleaseSpec) -> CellCounts:
    """Distinct-person counts per segment and per (segment, breakdown value), after contribution bounding.

    Parameters
    ----------
    eligible : EligibleEvents
        The gate's output.
    assignments : SegmentAssignments
        Made by a segmenter's ``assign`` from ``eligible`` (or from profiles built from it); every requested
        segment id must be among its segments.
    spec : ReleaseSpec

    Returns
    -------
    CellCounts
        Exact counts; Personal Information until noised. They record ``counting_bounds(spec)`` and the public
        facts of the data (segments, policy, window, snapshot id, DP-derived definitions).

    Raises
    ------
    ProvenanceError
        ``eligible`` or ``assignments`` were not made by adtarget.
    ParameterError
        The assignments were not derived from ``eligible``, or a requested segment is not among them.
    SensitiveCategoryError
        A requested segment names a sensitive node.

    Notes
    -----
    Each person keeps at most ``spec.max_segments_per_person`` segments and at most
    ``spec.cells_per_person(dim)`` values per dimension, by keyed priority over names, so the result over
    disjoint partitions of persons sums to the result over their union.
    """
    from adtarget.gate._gate import eligible_state

    spec = checked_spec(spec)
    events = eligible_state(eligible)
    state = derived_assignments(events, assignments)
    infos = {s.segment_id: s for s in state.segments}
    missing = [s for s in spec.segment_ids if s not in infos]
    if missing:
        raise ParameterError(f"spec.segment_ids must be segments of the assignments; {len(missing)} are not, "
                             f"e.g. {missing[:3]}")
    check_segments(spec.segment_ids, events.safe_taxonomy)
    facts = ReleaseFacts(tuple(infos[s] for s in spec.segment_ids),
                         tuple(sorted(report_policy(events.policy, events.safe_taxonomy).items())),
                         (int(events.window_start), int(events.window_end)), events.snapshot_id,
                         tuple(state.definitions))
    return bounded_counts(events, state, spec, facts)


def bounded_counts(eligible: Any, assignments: Any, spec: ReleaseSpec, facts: ReleaseFacts) -> CellCounts:
    """The kernel of :func:`count_cells` (inputs trusted: the records of genuine, related objects)."""
    from adtarget.reports import _bounding_kernels as kernels

    salt64, n_seg = np.uint64(stable64(spec.bounding_salt)), len(spec.segment_ids)
    col_key = _column_keys(assignments, spec, len(assignments.segments))
    rows = np.arange(assignments.persons.size, dtype=np.int64)  # same lineage: the eligible persons, in order
    keep, sizes, counted = kernels.bound_rows(assignments.indptr, assignments.indices, assignments.data, col_key,
                                              rows, eligible.persons, stable64_many(spec.segment_ids), salt64,
                                              spec.max_segments_per_person)
    values: dict[str, tuple[str, ...]] = {}
    cells: dict[str, np.ndarray] = {}
    vp: dict[str, np.ndarray] = {}
    blocks = [_breakdown_table(eligible, dim, spec, counted, salt64) for dim in spec.breakdowns]
    if blocks:
        table = np.hstack([b[0] for b in blocks])
        widths = [len(b[1]) for b in blocks]
        offset = np.repeat(np.cumsum([0, *widths[:-1]]), [b[0].shape[1] for b in blocks]).astype(np.int64)
        joined = kernels.count_joined(assignments.indptr, assignments.indices, keep, col_key, rows, table, offset,
                                      n_seg, sum(widths))
        per_cell = kernels.value_persons(table, offset, counted, sum(widths))
        start = 0
        for dim, (_, names, domain), width in zip(spec.breakdowns, blocks, widths):
            block = slice(start, start + width)
            values[dim], cells[dim], vp[dim] = _named_cells(dim, names, domain, joined[:, block], per_cell[block])
            start += width
    return CellCounts._issue(CountsState(spec.segment_ids, sizes, values, cells, vp, int(counted.sum()),
                                         counting_bounds(spec), facts, _member_tags(eligible.persons)))


def _column_keys(assignments: Any, spec: ReleaseSpec, n_columns: int) -> np.ndarray:
    """Requested segment index of each membership column (-1: not requested)."""
    col_of = {s.segment_id: j for j, s in enumerate(assignments.segments)}
    col_key = np.full(n_columns, -1, dtype=np.int64)
    col_key[[col_of[s] for s in spec.segment_ids]] = np.arange(len(spec.segment_ids))
    return col_key


def _named_cells(dim: str, names: tuple[str, ...], domain: np.ndarray, counts: np.ndarray,
                 per_value: np.ndarray) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """A dimension's reported values: fixed ones in their order; others sorted by name, and selected keys
    without a counted person dropped (they are not in the data)."""
    entry = breakdown_dimension(dim)
    if entry.selected:
        domain = domain[per_value[domain] > 0]
    order = domain if entry.values == "fixed" else domain[np.argsort(np.asarray(names, dtype=object)[domain],
                                                                     kind="stable")]
    return tuple(names[i] for i in order), counts[:, order], per_value[order]


def _breakdown_table(eligible: Any, dim: str, spec: ReleaseSpec, counted: np.ndarray,
                     salt64: np.uint64) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """(n_persons, k) int32 table of each person's kept values of ``dim`` (-1 pads), the names, the domain."""
    entry = breakdown_dimension(dim)
    if entry.per == "person":
        assert entry.person_codes is not None  # the entry's own check
        table = entry.person_codes(getattr(eligible, entry.source), eligible.window_end)[:, None].astype(np.int32)
        return table, entry.fixed_values, np.arange(len(entry.fixed_values))
    return _bounded_values(eligible, entry, spec, counted, salt64)


def _bounded_values(eligible: Any, dim: BreakdownDimension, spec: ReleaseSpec, counted: np.ndarray,
                    salt64: np.uint64) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """(n_persons, k) table of each counted person's kept values of ``dim`` (-1 pads), names, domain."""
    from adtarget.reports import _bounding_kernels as kernels

    ev_person, ev_value, names, domain = _dimension_source(eligible, dim)
    bits = kernels.bitset_table(counted.size, len(names))
    kernels.value_bits(ev_person, ev_value, bits)
    in_domain = np.zeros(len(names), dtype=bool)
    in_domain[domain] = True
    hashes = stable64_many([f"{dim.name}:{n}" for n in names])
    table = kernels.bound_values(bits, counted, in_domain, eligible.persons, hashes, salt64,
                                 spec.cells_per_person(dim.name))
    return table, names, domain
