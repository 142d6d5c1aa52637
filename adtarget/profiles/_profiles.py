"""Interest profiles: per-person, time-decayed interest scores over the safe categories of a taxonomy.

Profiles are built from :class:`~adtarget.gate._gate.EligibleEvents` only (the gate has already removed opted-out,
under-age, deleted persons and sensitive categories), so a profile can never hold a sensitive category.
A per-person event cap by a selection over the events of the persons over the cap only (ties ranked as
``np.lexsort`` would), and the persons × categories matrix by a linear counting sort on person with per-row
duplicate sums in event order, each event's time decay computed as it is read (compiled kernels in
``adtarget/profiles/_kernels.py``; each cell is its events' values added in input order, as ``np.add.at``
does: deterministic on every platform).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from adtarget._core._buffers import uses_buffers
from adtarget._core._provenance import Sealed
from adtarget.exceptions import ParameterError

if TYPE_CHECKING:
    from adtarget.gate._gate import EligibleEvents

__all__ = ["LEVELS", "InterestProfiler", "InterestProfiles", "ProfilesState", "build_profiles", "level_columns",
           "profiles_matrix", "profiles_state"]

#: Profile levels and the taxonomy tier their columns roll up to (``None``: the events' own nodes).
LEVELS: dict[str, int | None] = {"node": None, "tier1": 1, "tier2": 2}
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True, eq=False)
class ProfilesState:
    """What InterestProfiles hold (see :class:`InterestProfiles`); made only by :func:`build_profiles`."""

    persons: np.ndarray
    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    shape: tuple[int, int]
    columns: np.ndarray
    level: str
    safe_taxonomy: Any
    lineage: str


class InterestProfiles(Sealed, maker="adtarget.build_profiles"):
    """Interest scores of eligible persons over safe taxonomy categories.

    **Personal Information**: one row per pseudonymous person. Internal only (training jobs, segment
    assignment); never part of an advertiser report. Made only by :func:`build_profiles` (or
    ``InterestProfiler.transform``) from the gate's EligibleEvents, whose ``lineage`` it carries; it cannot be
    built by hand, copied into a changed form, or written to.

    Attributes
    ----------
    persons : numpy.ndarray of uint64
        Sorted pseudonyms, aligned with the rows (the eligible persons).
    matrix : scipy.sparse.csr_matrix of float64, shape (n_persons, n_columns)
        Decayed, weighted interest scores (non-negative); a new matrix object on read-only arrays each time.
    columns : numpy.ndarray of int32
        Taxonomy node index of each column: every safe node at the chosen level (data-independent).
    level : {"node", "tier1", "tier2"}
    safe_taxonomy : SafeTaxonomy
        The taxonomy and sensitivity profile the columns come from.
    lineage : str
        The ``lineage`` of the EligibleEvents the profiles were built from.
    """

    __slots__ = ()
    persons: np.ndarray
    columns: np.ndarray
    level: str
    safe_taxonomy: Any
    lineage: str
    classification: ClassVar[str] = "personal"

    @property
    def matrix(self) -> sparse.csr_matrix:
        return profiles_matrix(self)

    @property
    def taxonomy(self) -> Any:
        """The underlying :class:`~adtarget.reference._taxonomy.Taxonomy`."""
        return self.safe_taxonomy.taxonomy

    @property
    def n_persons(self) -> int:
        return int(self.persons.size)

    @property
    def n_columns(self) -> int:
        return int(self.columns.size)

    def __repr__(self) -> str:
        if not InterestProfiles._is_issued(self):
            return "InterestProfiles(<not made by adtarget.build_profiles>)"
        state = InterestProfiles._state_of(self)
        return (f"InterestProfiles(n_persons={self.n_persons}, n_columns={self.n_columns}, "
                f"level={self.level!r}, nnz={state.data.size}; Personal Information)")


def profiles_state(profiles: object, what: str = "profiles") -> ProfilesState:
    """The record of genuine InterestProfiles; ProvenanceError for anything :func:`build_profiles` did not make."""
    state: ProfilesState = InterestProfiles._state_of(profiles, what)
    return state


def profiles_matrix(profiles: object) -> sparse.csr_matrix:
    """The profiles' CSR matrix on their read-only arrays (canonical)."""
    state = profiles_state(profiles)
    matrix = sparse.csr_matrix((state.data, state.indices, state.indptr), shape=state.shape, copy=False)
    matrix.has_canonical_format = True
    return matrix


def _issue_profiles(eligible_lineage: str, persons: np.ndarray, matrix: sparse.csr_matrix, columns: np.ndarray,
                    level: str, safe_taxonomy: Any) -> InterestProfiles:
    matrix = matrix.tocsr()
    if not matrix.has_canonical_format:
        matrix.sum_duplicates()
    return InterestProfiles._issue(ProfilesState(persons, matrix.data, matrix.indices, matrix.indptr,
                                                 (int(matrix.shape[0]), int(matrix.shape[1])), columns, level,
                                                 safe_taxonomy, eligible_lineage))


def level_columns(safe_taxonomy: Any, level: str) -> np.ndarray:
    """The profile columns at ``level``: every safe node at that tier or shallower (int32, ascending)."""
    tier = LEVELS[level]
    keep = np.asarray(safe_taxonomy.safe_mask, dtype=bool)
    if tier is not None:
        keep = keep & (safe_taxonomy.taxonomy.tier <= tier)
    return np.flatnonzero(keep).astype(np.int32)


def column_of_node(safe_taxonomy: Any, columns: np.ndarray, level: str) -> np.ndarray:
    """For every taxonomy node, the profile column it counts in (int32; -1 for sensitive nodes)."""
    taxonomy = safe_taxonomy.taxonomy
    col_of = np.full(taxonomy.n_nodes, -1, dtype=np.int32)
    col_of[columns] = np.arange(columns.size, dtype=np.int32)
    nodes = np.arange(taxonomy.n_nodes, dtype=np.int32)
    tier = LEVELS[level]
    target = nodes if tier is None else taxonomy.rollup(nodes, tier)
    return np.where(safe_taxonomy.safe_mask, col_of[target], -1).astype(np.int32)


def recent_events_mask(person: np.ndarray, ts: np.ndarray, category: np.ndarray, weight: np.ndarray,
                       cap: int | None) -> np.ndarray | None:
    """Which events count under a cap of ``cap`` events per person: each person's most recent ones.

    Ties in time are broken by weight (heavier first), then category (lower index first); events tied on all
    three contribute identically, so the result does not depend on the input order. Returns ``None`` when
    nobody exceeds the cap. Only the events of persons over the cap are ranked.
    """
    if cap is None or person.size == 0:
        return None
    return capped_events_mask(person, ts, category, weight, cap, np.bincount(person))


def capped_events_mask(person: np.ndarray, ts: np.ndarray, category: np.ndarray, weight: np.ndarray, cap: int,
                       counts: np.ndarray) -> np.ndarray | None:
    """:func:`recent_events_mask` given the events per person (``counts``, from ``np.bincount(person)``)."""
    dropped = dropped_events(person, ts, category, weight, cap, counts)
    if dropped is None:
        return None
    keep = np.ones(person.size, dtype=bool)
    keep[dropped] = False
    return keep


def dropped_events(person: np.ndarray, ts: np.ndarray, category: np.ndarray, weight: np.ndarray, cap: int,
                   counts: np.ndarray) -> np.ndarray | None:
    """The events a cap of ``cap`` per person leaves out (ascending int64 indices; ``None``: nobody is over it).

    The complement of :func:`recent_events_mask`, given ``counts = np.bincount(person)``; only the events of
    the persons over the cap are ranked (compiled, one person at a time).
    """
    if counts.size == 0 or counts.max() <= cap:
        return None
    from adtarget.profiles import _kernels as kernels

    out = np.empty(int(np.maximum(counts - cap, 0).sum()), dtype=np.int64)
    kernels.dropped_events((person, ts, weight, category), counts, int(cap), out)
    return out


def kept_events(eligible: Any, cap: int | None) -> tuple[np.ndarray | None, np.ndarray]:
    """(:func:`dropped_events` of the eligible events, or ``None``; kept events per person)."""
    from adtarget.profiles import _kernels as kernels

    small = eligible.person.size <= np.iinfo(np.int32).max  # int32 counts: half the cache lines touched
    counts = np.zeros(eligible.persons.size, dtype=np.int32 if small else np.intp)
    kernels.count_rows(eligible.person, counts)  # np.bincount(person, minlength) without its range pass
    if cap is None:
        return None, counts
    dropped = dropped_events(eligible.person, eligible.ts, eligible.category, eligible.weight, cap, counts)
    return dropped, (counts if dropped is None else np.minimum(counts, cap))


def decay_scale(half_life_days: float) -> float:
    """Seconds per halving of an event's weight (``inf``: no decay)."""
    return float(half_life_days) * SECONDS_PER_DAY


def decayed_weights(ts: np.ndarray, weight: np.ndarray, window_end: int, half_life_days: float) -> np.ndarray:
    """``weight * 0.5 ** ((window_end - ts) / half_life)``; ages are clipped at 0, ``inf`` means no decay.

    Computed as ``weight * exp2(-max(window_end - ts, 0) / (half_life_days * 86400))`` per event (float64,
    the C library's ``exp2``; numpy's vectorised ``exp2`` may differ in the last bit): the values :func:`profile_matrix` sums when given ``decay``.
    """
    if np.isinf(half_life_days):
        return weight.astype(np.float64, copy=True)
    from adtarget.profiles import _kernels as kernels

    out = np.empty(ts.size, dtype=np.float64)
    kernels.decayed_weights(ts, weight, int(window_end), decay_scale(half_life_days), out)
    return out


def profile_matrix(person: np.ndarray, category: np.ndarray, column_of: np.ndarray, weight: np.ndarray,
                   dropped: np.ndarray | None, kept_per_row: np.ndarray, n_columns: int, *,
                   decay: tuple[np.ndarray, int, float] | None = None) -> sparse.csr_matrix:
    """Sum the kept events' values into a persons × columns CSR matrix (column ``column_of[category]``).

    An event's value is its ``weight``, or with ``decay = (ts, window_end, half_life_days)`` its
    :func:`decayed_weights` value (computed as the event is read: no array of values). The events in
    ``dropped`` (ascending indices, or ``None``) are left out; ``kept_per_row`` counts the kept events of each
    person. The structure and index dtype of ``coo_matrix((values, (person, column)), shape).tocsr()`` on the
    kept events, in linear time; canonical (sorted, duplicates summed, zero sums kept). Each cell sums its
    events in input order (``0.0 + v1 + v2 + ...``, as ``np.add.at`` on a zeroed row): values may differ from
    scipy's in the last bits.
    """
    from adtarget.profiles import _kernels as kernels

    shape = (int(kept_per_row.size), int(n_columns))
    bounds = np.zeros(shape[0] + 1, dtype=np.int64)  # the kept events' rows; indptr gets the result's
    np.cumsum(kept_per_row, out=bounds[1:])
    indptr = np.empty_like(bounds)
    n_kept = int(bounds[-1])
    cols, vals = np.empty(n_kept, dtype=np.int32), np.empty(n_kept, dtype=np.float64)
    ts, window_end, half_life_days = (np.zeros(0, np.int64), 0, np.inf) if decay is None else decay
    stops = np.append(np.zeros(0, np.int64) if dropped is None else dropped, person.size)  # + a sentinel
    nnz = kernels.profile_csr((person, category, weight, ts), column_of,
                              (int(window_end), decay_scale(half_life_days)), stops, bounds, indptr, cols, vals)
    idx_dtype = np.int32 if max(n_kept, *shape) <= np.iinfo(np.int32).max else np.int64
    vals.resize(nnz, refcheck=False)  # shrunk by realloc (no views exist): in place unless far smaller
    cols.resize(nnz, refcheck=False)
    matrix = sparse.csr_matrix((vals, cols.astype(idx_dtype, copy=False), indptr.astype(idx_dtype)), shape=shape)
    matrix.has_canonical_format = True
    return matrix


def normalize_rows(matrix: Any, norm: str | None) -> Any:
    """Scale rows to unit L1 or L2 norm (zero rows stay zero); ``None`` returns the input unchanged."""
    if norm is None:
        return matrix
    from sklearn.preprocessing import normalize

    return normalize(matrix, norm=norm, copy=True)


def check_profile_params(half_life_days: Any, level: Any, max_events_per_person: Any, norm: Any) -> None:
    """Validate profile parameters once, naming the parameter, the constraint and the value received."""
    if isinstance(half_life_days, bool) or not isinstance(half_life_days, int | float | np.number) \
            or not half_life_days > 0:
        raise ParameterError(f"half_life_days must be a number > 0 (inf: no decay), got {half_life_days!r}")
    if level not in LEVELS:
        raise ParameterError(f"level must be one of {sorted(LEVELS)}, got {level!r}")
    if max_events_per_person is not None and (
            isinstance(max_events_per_person, bool) or not isinstance(max_events_per_person, int | np.integer)
            or max_events_per_person < 1):
        raise ParameterError(f"max_events_per_person must be an integer >= 1 or None, "
                             f"got {max_events_per_person!r}")
    if norm not in (None, "l1", "l2"):
        raise ParameterError(f"norm must be None, 'l1' or 'l2', got {norm!r}")


@uses_buffers
def build_profiles(eligible: EligibleEvents, *, half_life_days: float = 30.0, level: str = "node",
                   max_events_per_person: int | None = 1000, norm: str | None = None) -> InterestProfiles:
    """Interest profiles of the eligible persons.

    Parameters
    ----------
    eligible : EligibleEvents
        The gate's output; its ``sensitive_audit`` is never read.
    half_life_days : float, default 30
        Half-life of the time decay ``0.5 ** ((window_end - ts) / half_life)``; ``inf`` disables decay.
    level : {"node", "tier1", "tier2"}, default "node"
        Column granularity: the events' own nodes, or their tier-1 / tier-2 ancestors.
    max_events_per_person : int or None, default 1000
        Only each person's most recent events count (see :func:`recent_events_mask`).
    norm : {None, "l1", "l2"}
        Row normalisation applied last.

    Returns
    -------
    InterestProfiles
        Rows aligned with ``eligible.persons``.
    """
    check_profile_params(half_life_days, level, max_events_per_person, norm)
    from adtarget.gate._gate import eligible_state

    events = eligible_state(eligible)
    safe = events.safe_taxonomy
    columns = level_columns(safe, level)
    dropped, kept = kept_events(events, max_events_per_person)
    matrix = profile_matrix(events.person, events.category, column_of_node(safe, columns, level), events.weight,
                            dropped, kept, int(columns.size),
                            decay=(events.ts, int(events.window_end), float(half_life_days)))
    del dropped
    return _issue_profiles(events.lineage, events.persons, normalize_rows(matrix, norm), columns, level, safe)


def is_eligible_events(X: Any) -> bool:
    """Whether ``X`` is the gate's :class:`~adtarget.gate._gate.EligibleEvents`."""
    from adtarget.gate._gate import EligibleEvents

    return isinstance(X, EligibleEvents)


def cap_row_mass(X: Any, cap: int | None) -> Any:
    """Scale down rows whose L1 mass exceeds ``cap`` to exactly ``cap`` (a copy; sparse stays CSR)."""
    if cap is None:
        return X.copy()
    mass = np.asarray(abs(X).sum(axis=1)).ravel()
    scale = np.minimum(1.0, cap / np.where(mass > 0, mass, 1.0))
    if sparse.issparse(X):
        return sparse.csr_matrix(sparse.diags(scale) @ X)
    return X * scale[:, None]


def check_non_negative(X: Any, whom: str) -> None:
    """Refuse negative entries (interest counts are non-negative), naming the method and the minimum."""
    low = X.min() if X.size else 0.0
    if low < 0:
        raise ParameterError(f"Negative values in data passed to {whom}: X must hold non-negative interest "
                             f"counts, got minimum {float(low):.6g}")


class InterestProfiler(TransformerMixin, BaseEstimator):
    """Turn eligible events into interest profiles (scikit-learn transformer).

    Parameters
    ----------
    half_life_days : float, default 30
        Half-life of the time decay; ``inf`` disables decay.
    level : {"node", "tier1", "tier2"}, default "node"
        Profile columns: the events' own safe nodes, or their tier-1 / tier-2 ancestors.
    max_events_per_person : int or None, default 1000
        Only each person's most recent events count. On a count matrix: each row's L1 mass is capped at it.
    norm : {None, "l1", "l2"}, default None
        Row normalisation applied last.

    Attributes
    ----------
    columns_ : numpy.ndarray of int32
        Profile columns (taxonomy node indices), when fitted on ``EligibleEvents``.
    n_features_in_ : int
        Number of categories, when fitted on a count matrix.

    Notes
    -----
    ``transform(EligibleEvents)`` returns :class:`InterestProfiles` (the real path); ``transform`` of a numeric
    persons × categories count matrix (dense or sparse) returns a matrix of the same kind, with row mass capped
    and normalised, for generic scikit-learn pipelines.
    """

    def __init__(self, half_life_days: float = 30.0, level: str = "node",
                 max_events_per_person: int | None = 1000, norm: str | None = None) -> None:
        self.half_life_days = half_life_days
        self.level = level
        self.max_events_per_person = max_events_per_person
        self.norm = norm

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = True
        return tags

    def fit(self, X: Any, y: Any = None) -> InterestProfiler:
        """Validate the parameters (and ``X``); learn the column set. Returns ``self``."""
        check_profile_params(self.half_life_days, self.level, self.max_events_per_person, self.norm)
        if is_eligible_events(X):
            self.safe_taxonomy_ = X.safe_taxonomy
            self.columns_ = level_columns(X.safe_taxonomy, self.level)
            return self
        X = validate_data(self, X, accept_sparse="csr", dtype=np.float64, reset=True)
        check_non_negative(X, "InterestProfiler.fit")
        return self

    def transform(self, X: Any) -> Any:
        """Profiles of ``X``: :class:`InterestProfiles` for ``EligibleEvents``, else a capped, normalised matrix."""
        check_is_fitted(self)
        if is_eligible_events(X):
            self._check_same_taxonomy(X)
            return build_profiles(X, half_life_days=self.half_life_days, level=self.level,
                                  max_events_per_person=self.max_events_per_person, norm=self.norm)
        if not hasattr(self, "n_features_in_"):
            raise ParameterError("X: InterestProfiler was fitted on EligibleEvents, so transform needs "
                                 f"EligibleEvents, got {type(X).__name__}")
        X = validate_data(self, X, accept_sparse="csr", dtype=np.float64, reset=False)
        check_non_negative(X, "InterestProfiler.transform")
        return normalize_rows(cap_row_mass(X, self.max_events_per_person), self.norm)

    def _check_same_taxonomy(self, eligible: Any) -> None:
        if not hasattr(self, "columns_"):
            raise ParameterError("X: InterestProfiler was fitted on a count matrix, so transform needs a "
                                 "matrix, got EligibleEvents")
        safe = eligible.safe_taxonomy
        if safe.taxonomy != self.safe_taxonomy_.taxonomy or not np.array_equal(
                safe.safe_mask, self.safe_taxonomy_.safe_mask):
            raise ParameterError("X: EligibleEvents use another taxonomy or sensitivity profile than the one "
                                 f"InterestProfiler was fitted with ({safe.taxonomy.name!r})")
