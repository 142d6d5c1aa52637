"""The engine-independent pre-noise kernel: distinct-person counts per segment and per breakdown cell.

``count_cells`` bounds contributions (keyed priority, see ``_bounding``) and counts in linear time, person by
person, with the compiled kernels of ``adtarget._kernels._bounding``: a person's segments are a row of the
membership matrix, their distinct breakdown values a bitset filled in one pass over the events, and each kept
(person, segment) pair adds one to the cells of the person's kept values. Keys in the
result are names (segment ids, age bands, region codes, service names), never batch codes, so results over
disjoint partitions of persons add up exactly (``CellCounts.__add__`` / ``CellCounts.sum``).
Inner kernel: it trusts its inputs; ``release`` validates them first.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adtarget._buffers import uses_buffers
from adtarget._provenance import Provenance
from adtarget._release._bounding import stable64, stable64_many
from adtarget._release._spec import ReleaseSpec

__all__ = ["AGE_BANDS", "CellCounts", "age_band_codes", "count_cells"]

AGE_BANDS: tuple[str, ...] = ("13-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+", "unknown")
_BAND_EDGES = np.array([18, 25, 35, 45, 55, 65])
_YEARS_MAX = 1 << 16  # birth years spanning more than this are banded one by one, not through a table

_COUNTED = Provenance(__name__, "_COUNTED")  # only count_cells and CellCounts.__add__ hold it


@dataclass(frozen=True, eq=False)
class CellCounts:
    """Exact (pre-noise) distinct-person counts after contribution bounding. Personal data: never emit.

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
    """

    segment_ids: tuple[str, ...]
    sizes: np.ndarray
    values: Mapping[str, tuple[str, ...]]
    cells: Mapping[str, np.ndarray]
    value_persons: Mapping[str, np.ndarray]
    n_persons: int
    _token: object = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self._token is not _COUNTED:
            raise TypeError("CellCounts can only be built by count_cells (from the gate's EligibleEvents) or by "
                            "adding CellCounts; the release accepts nothing else")

    def __add__(self, other: CellCounts) -> CellCounts:
        if not isinstance(other, CellCounts):
            return NotImplemented
        if set(self.cells) != set(other.cells):
            raise ValueError(f"cannot add CellCounts over different breakdowns: {sorted(self.cells)} "
                             f"vs {sorted(other.cells)}")
        seg_ids = self.segment_ids + tuple(s for s in other.segment_ids if s not in set(self.segment_ids))
        values = {d: _union_values(d, self.values[d], other.values[d]) for d in self.cells}
        sizes = _aligned(self.sizes, self.segment_ids, seg_ids) + _aligned(other.sizes, other.segment_ids, seg_ids)
        cells = {d: _aligned2(self, d, seg_ids, values[d]) + _aligned2(other, d, seg_ids, values[d])
                 for d in self.cells}
        vp = {d: _aligned(self.value_persons[d], self.values[d], values[d])
              + _aligned(other.value_persons[d], other.values[d], values[d]) for d in self.cells}
        return CellCounts(seg_ids, sizes, values, cells, vp, self.n_persons + other.n_persons, _COUNTED)

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
        dims = ", ".join(f"{d}:{len(v)}" for d, v in self.values.items())
        return f"CellCounts(n_segments={len(self.segment_ids)}, n_persons={self.n_persons}, values=[{dims}])"


def _union_values(dim: str, a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    if dim == "age_band":
        return AGE_BANDS
    return tuple(sorted(set(a) | set(b)))


def _aligned(arr: np.ndarray, names: tuple[str, ...], target: tuple[str, ...]) -> np.ndarray:
    pos = {n: i for i, n in enumerate(target)}
    out = np.zeros((len(target),) + arr.shape[1:], dtype=np.int64)
    out[[pos[n] for n in names]] = arr
    return out


def _aligned2(cc: CellCounts, dim: str, seg_ids: tuple[str, ...], values: tuple[str, ...]) -> np.ndarray:
    rows = _aligned(cc.cells[dim], cc.segment_ids, seg_ids)
    return _aligned(rows.T, cc.values[dim], values).T


def age_band_codes(birth_year: np.ndarray, window_end: int) -> np.ndarray:
    """Age band index (into ``AGE_BANDS``) of each person at the window's end (int8).

    Age is the youngest the person can be (``end_year - birth_year - 1``), as in the gate; birth year 0
    (unknown) or an impossible age (< 13, which the gate excludes) gives ``"unknown"``.
    """
    year = _dt.datetime.fromtimestamp(window_end, tz=_dt.timezone.utc).year
    by = np.asarray(birth_year)
    if by.size == 0 or int(by.max()) - int(by.min()) > _YEARS_MAX:
        return _bands(by.astype(np.int64), year)
    low = int(by.min())  # one band per year of the range, then a gather from that small table
    return _bands(np.arange(low, int(by.max()) + 1, dtype=np.int64), year)[np.subtract(by, low, dtype=np.int64)]


def _bands(birth_year: np.ndarray, year: int) -> np.ndarray:
    """Age band code (int8) of each birth year in ``year``."""
    age = year - birth_year - 1
    band = np.searchsorted(_BAND_EDGES, age, side="right").astype(np.int8)
    return np.where((birth_year > 0) & (age >= 13), band, len(AGE_BANDS) - 1).astype(np.int8)


def _dimension_source(eligible: Any, dim: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], np.ndarray]:
    """Per-event value codes, their names, and the codes in the dimension's domain."""
    if dim == "region":
        names = tuple(eligible.regions)
        return eligible.person, eligible.region, names, np.arange(len(names))
    names = tuple(eligible.services.names)
    permitted = np.asarray(getattr(eligible.services, "ads_permitted", np.ones(len(names), dtype=bool)), bool)
    return eligible.person, eligible.service, names, np.flatnonzero(permitted)


def check_gate_input(eligible: Any, segment_ids: Sequence[str]) -> None:
    """Counts exist only over the gate's output, and never for a segment on a sensitive node (P5)."""
    from adtarget._gate import EligibleEvents
    from adtarget._release._report import sensitive_segment_problems
    from adtarget.exceptions import ParameterError, SensitiveCategoryError

    if not isinstance(eligible, EligibleEvents):
        raise ParameterError(f"eligible must be EligibleEvents from adtarget.apply_gate, got {type(eligible).__name__}")
    problems = sensitive_segment_problems(segment_ids, eligible.safe_taxonomy)
    if problems:
        raise SensitiveCategoryError(f"segments on sensitive nodes cannot be counted: {problems[0]}"
                                     + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))


@uses_buffers
def count_cells(eligible: Any, assignments: Any, spec: ReleaseSpec) -> CellCounts:
    """Distinct-person counts per segment and per (segment, breakdown value), after contribution bounding.

    Parameters
    ----------
    eligible : EligibleEvents
    assignments : SegmentAssignments
        Every requested segment id is among ``assignments.segments`` and every assigned person is among
        ``eligible.persons`` (``release`` checks both).
    spec : ReleaseSpec

    Returns
    -------
    CellCounts
        Exact counts; Personal Information until noised.

    Notes
    -----
    Each person keeps at most ``spec.max_segments_per_person`` segments and at most
    ``spec.cells_per_person(dim)`` values per dimension, by keyed priority over names, so the result over
    disjoint partitions of persons sums to the result over their union.
    """
    check_gate_input(eligible, spec.segment_ids)
    return bounded_counts(eligible, assignments, spec)


def bounded_counts(eligible: Any, assignments: Any, spec: ReleaseSpec) -> CellCounts:
    """The kernel of :func:`count_cells` (inputs trusted: checked by the caller)."""
    from adtarget._kernels import _bounding as kernels

    salt64, n_seg = np.uint64(stable64(spec.bounding_salt)), len(spec.segment_ids)
    m = membership_rows(assignments)
    col_key, rows = _column_keys(assignments, spec, m.shape[1]), row_persons(eligible, assignments)
    keep, sizes, counted = kernels.bound_rows(m.indptr, m.indices, m.data, col_key, rows, eligible.persons,
                                              stable64_many(spec.segment_ids), salt64,
                                              spec.max_segments_per_person)
    values: dict[str, tuple[str, ...]] = {}
    cells: dict[str, np.ndarray] = {}
    vp: dict[str, np.ndarray] = {}
    blocks = [_breakdown_table(eligible, dim, spec, counted, salt64) for dim in spec.breakdowns]
    if blocks:
        table = np.hstack([b[0] for b in blocks])
        widths = [len(b[1]) for b in blocks]
        offset = np.repeat(np.cumsum([0, *widths[:-1]]), [b[0].shape[1] for b in blocks]).astype(np.int64)
        joined = kernels.count_joined(m.indptr, m.indices, keep, col_key, rows, table, offset, n_seg, sum(widths))
        per_cell = kernels.value_persons(table, offset, counted, sum(widths))
        start = 0
        for dim, (_, names, domain), width in zip(spec.breakdowns, blocks, widths):
            block = slice(start, start + width)
            values[dim], cells[dim], vp[dim] = _named_cells(dim, names, domain, joined[:, block], per_cell[block])
            start += width
    return CellCounts(spec.segment_ids, sizes, values, cells, vp, int(counted.sum()), _COUNTED)


def _column_keys(assignments: Any, spec: ReleaseSpec, n_columns: int) -> np.ndarray:
    """Requested segment index of each membership column (-1: not requested)."""
    col_of = {s.segment_id: j for j, s in enumerate(assignments.segments)}
    col_key = np.full(n_columns, -1, dtype=np.int64)
    col_key[[col_of[s] for s in spec.segment_ids]] = np.arange(len(spec.segment_ids))
    return col_key


def _named_cells(dim: str, names: tuple[str, ...], domain: np.ndarray, counts: np.ndarray,
                 per_value: np.ndarray) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """A dimension's reported values (regions without counted persons dropped; sorted by name but age bands)."""
    if dim == "region":
        domain = domain[per_value[domain] > 0]
    order = domain[np.argsort(np.asarray(names, dtype=object)[domain], kind="stable")] \
        if dim != "age_band" else domain
    return tuple(names[i] for i in order), counts[:, order], per_value[order]


def _breakdown_table(eligible: Any, dim: str, spec: ReleaseSpec, counted: np.ndarray,
                     salt64: np.uint64) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """(n_persons, k) int32 table of each person's kept values of ``dim`` (-1 pads), the names, the domain."""
    if dim == "age_band":
        table = age_band_codes(eligible.birth_year, eligible.window_end)[:, None].astype(np.int32)
        return table, AGE_BANDS, np.arange(len(AGE_BANDS))
    return _bounded_values(eligible, dim, spec, counted, salt64)


def membership_rows(assignments: Any) -> Any:
    """``assignments.membership`` as CSR with no (person, segment) entry stored twice (it would otherwise count
    twice, past the bound the noise is calibrated to) and no segment index out of range (the compiled kernels
    index with it). Rows in any order are kept as they are: bounding does not depend on the entries' order."""
    from adtarget._kernels import _bounding as kernels
    from adtarget.exceptions import ParameterError

    m = assignments.membership.tocsr()
    if m.has_canonical_format:
        return m
    problem = kernels.membership_problem(m.indptr, m.indices, m.shape[1])  # rows may be unsorted: that is fine
    if problem == 2:
        raise ParameterError("assignments.membership holds a segment index out of range")
    if problem == 1:
        m = m.copy()
        m.sum_duplicates()
    return m


def row_persons(eligible: Any, assignments: Any) -> np.ndarray:
    """Eligible person index (int64) of each row of ``assignments.membership``.

    Refuses (``ParameterError``) assignments whose persons are not strictly increasing, are not all eligible,
    or do not match the membership rows: the compiled counting kernels index with these positions and
    bound contributions per row, so a repeated or stray person must never reach them.
    """
    from adtarget.exceptions import ParameterError

    persons = np.asarray(assignments.persons)
    if assignments.membership.shape[0] != persons.size:
        raise ParameterError(f"assignments.membership must have one row per person; it has "
                             f"{assignments.membership.shape[0]} rows for {persons.size} persons")
    if np.array_equal(persons, eligible.persons):
        return np.arange(persons.size, dtype=np.int64)
    if persons.size > 1 and not bool(np.all(persons[1:] > persons[:-1])):
        raise ParameterError("assignments.persons must be strictly increasing (each person once)")
    rows = np.searchsorted(eligible.persons, persons).astype(np.int64)
    found = rows < eligible.persons.size
    found[found] = eligible.persons[rows[found]] == persons[found]
    if not found.all():
        raise ParameterError(f"assignments.persons must be among the eligible persons; "
                             f"{int((~found).sum())} are not")
    return rows


def _bounded_values(eligible: Any, dim: str, spec: ReleaseSpec, counted: np.ndarray,
                    salt64: np.uint64) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """(n_persons, k) table of each counted person's kept values of ``dim`` (-1 pads), names, domain."""
    from adtarget._kernels import _bounding as kernels

    ev_person, ev_value, names, domain = _dimension_source(eligible, dim)
    bits = kernels.bitset_table(counted.size, len(names))
    kernels.value_bits(ev_person, ev_value, bits)
    in_domain = np.zeros(len(names), dtype=bool)
    in_domain[domain] = True
    hashes = stable64_many([f"{dim}:{n}" for n in names])
    table = kernels.bound_values(bits, counted, in_domain, eligible.persons, hashes, salt64,
                                 spec.cells_per_person(dim))
    return table, names, domain
