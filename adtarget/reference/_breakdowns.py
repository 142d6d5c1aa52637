"""Breakdown dimensions: the one table of the ways a report splits a segment's size.

Every stage that touches a breakdown reads :data:`BREAKDOWN_DIMENSIONS` (through :func:`breakdown_dimensions`,
at call time) and nothing else: ingest accepts and codes the event columns it names, the gate carries them past
its rules (erasing location values of persons who deleted their location), counting builds each person's
bounded values from them, post-processing applies each entry's consistency rule, ``ReleaseSpec`` checks
requested dimensions and bounds against it, and the report schema's ``breakdowns`` object is made from it.
Adding a dimension is one entry here (plus its tests); an entry names kinds of behaviour, never code paths
keyed on its name.
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from adtarget.exceptions import ParameterError

__all__ = ["AGE_BANDS", "BREAKDOWN_DIMENSIONS", "KEY_PATTERN", "BreakdownDimension", "age_band_codes", "breakdown_by_source",
           "breakdown_dimension", "breakdown_dimensions", "coded_event_dimensions"]

AGE_BANDS: tuple[str, ...] = ("13-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+", "unknown")
_BAND_EDGES = np.array([18, 25, 35, 45, 55, 65])
_YEARS_MAX = 1 << 16  # birth years spanning more than this are banded one by one, not through a table
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
#: a report's breakdown key (the schema's ``cells`` property names); keys with a run of 16 hex digits are
#: refused as pseudonym-like, so ingest accepts neither for a new dimension's values
KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/ +-]{0,63}$")
_HEX_RUN = re.compile(r"[0-9a-fA-F]{16,}")
#: names the release uses for its own blocks
_RESERVED = frozenset({"size"})
#: event columns whose values the event contract itself validates and codes (the others follow ``pattern``)
CONTRACT_COLUMNS: tuple[str, ...] = ("service", "region")


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


@dataclass(frozen=True)
class BreakdownDimension:
    """One breakdown dimension of a segment report.

    Parameters
    ----------
    name : str
        The report's key (``segments[i].breakdowns.<name>``) and the name in ``ReleaseSpec.breakdowns``.
    source : str
        Where the values come from: an event column (``per="event"``) or the gate's per-person attribute
        (``per="person"``, e.g. ``"birth_year"``).
    per : {"event", "person"}
        A person has one value (``"person"``), or as many as the distinct values of their events.
    values : {"fixed", "registry", "selected"}
        ``"fixed"``: the closed, public list ``fixed_values`` (every value always reported, in that order).
        ``"registry"``: the service registry's ads-permitted services (public, sorted by name).
        ``"selected"``: keys taken from the data, so each non-public key goes through DP partition selection;
        ``public_values_field`` names the ReleaseSpec field listing the public ones.
    fixed_values : tuple of str
        The values of a ``"fixed"`` dimension.
    cells_per_person : int, default 1
        Default bound on the values one person contributes to (a person-level dimension has exactly 1).
    consistency : {"sums_to_size", "within_size"}
        Post-processing: ``"sums_to_size"`` (one value per person) projects the cells onto the size;
        ``"within_size"`` keeps each cell in ``[0, size]`` and their sum at most ``k × size`` (``k`` the
        cells per person), or equal to the size when ``required`` and ``k == 1``.
    required : bool, default False
        For an event column: every eligible event has a value (the contract requires the column), so each
        counted person is in at least one cell; with one cell per person the cells then sum to the size.
    pattern : str, optional
        For an event column the contract does not validate itself: the values ingest accepts (after
        stripping); others are quarantined as ``invalid_breakdown_value``. Must be None for the contract's
        own columns (``service``, ``region``).
    location : bool, default False
        The values are location data: the gate erases them for persons who deleted their location.
    public_values_field : str, optional
        For ``"selected"`` values: the ReleaseSpec field whose keys are public (None: every key is selected).
    person_codes : callable (attribute, window_end) -> int array, optional
        For ``per="person"``: each person's value index into ``fixed_values``.
    """

    name: str
    source: str
    per: Literal["event", "person"]
    values: Literal["fixed", "registry", "selected"]
    fixed_values: tuple[str, ...] = ()
    cells_per_person: int = 1
    consistency: Literal["sums_to_size", "within_size"] = "within_size"
    required: bool = False
    pattern: str | None = None
    location: bool = False
    public_values_field: str | None = None
    person_codes: Callable[[np.ndarray, int], np.ndarray] | None = None

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise ParameterError(f"breakdown dimension {self.name!r}: {problem}")

    def _problem(self) -> str | None:
        checks = [
            (bool(_NAME.match(self.name)) and bool(_NAME.match(self.source)),
             "name and source must match ^[a-z][a-z0-9_]{0,31}$"),
            (self.per in ("event", "person"), f"per must be 'event' or 'person', got {self.per!r}"),
            (self.values in ("fixed", "registry", "selected"),
             f"values must be 'fixed', 'registry' or 'selected', got {self.values!r}"),
            (self.consistency in ("sums_to_size", "within_size"),
             f"consistency must be 'sums_to_size' or 'within_size', got {self.consistency!r}"),
            (self.name not in _RESERVED, f"the name {self.name!r} is reserved"),
            ((self.values == "fixed") == bool(self.fixed_values), "fixed_values are given exactly for 'fixed' values"),
            (self.values != "fixed" or self.per == "person",
             "'fixed' values are for a person-level dimension (an event column's keys come from the data: "
             "'selected')"),
            (all(KEY_PATTERN.match(v) and not _HEX_RUN.search(v) for v in self.fixed_values),
             "fixed_values must be report keys (^[A-Za-z0-9][A-Za-z0-9_.:/ +-]{0,63}$, no run of 16 hex digits)"),
            (isinstance(self.cells_per_person, int) and self.cells_per_person >= 1, "cells_per_person must be >= 1"),
            (self.consistency != "sums_to_size" or self.per == "person",
             "only a person-level dimension (one value per person) can sum to the size"),
            (self.per == "event" or (self.values == "fixed" and self.cells_per_person == 1
                                      and self.person_codes is not None and not self.location),
             "a person-level dimension has fixed values, one cell per person and a person_codes function"),
            (self.values != "registry" or self.source == "service", "'registry' values are the services"),
            (not self.required or (self.per == "event" and not self.selected),
             "required is for an event column whose keys are public (no partition selection drops a cell)"),
            ((self.pattern is None) == (self.per == "person" or self.source in CONTRACT_COLUMNS),
             f"pattern is given exactly for event columns other than {CONTRACT_COLUMNS}"),
            (self.public_values_field is None or self.values == "selected",
             "public_values_field is only for 'selected' values"),
        ]
        return next((message for ok, message in checks if not ok), None)

    @property
    def selected(self) -> bool:
        """Its keys come from the data and need DP partition selection (unless public)."""
        return self.values == "selected"

    def accepts(self, value: str) -> bool:
        """Whether ingest accepts ``value`` (stripped) for this dimension's column: it matches ``pattern`` and
        can be a report key (:data:`KEY_PATTERN`, no pseudonym-like run of 16 hex digits)."""
        return (self.pattern is not None and re.fullmatch(self.pattern, value) is not None
                and KEY_PATTERN.match(value) is not None and _HEX_RUN.search(value) is None)


BREAKDOWN_DIMENSIONS: tuple[BreakdownDimension, ...] = (
    BreakdownDimension("age_band", source="birth_year", per="person", values="fixed", fixed_values=AGE_BANDS,
                       consistency="sums_to_size", person_codes=age_band_codes),
    BreakdownDimension("region", source="region", per="event", values="selected", location=True,
                       public_values_field="public_regions"),
    BreakdownDimension("service", source="service", per="event", values="registry", required=True),
)


def breakdown_dimensions() -> tuple[BreakdownDimension, ...]:
    """The table, read at call time (so every stage sees the same entries), checked as a whole: entries of
    this type, distinct names, and distinct sources (ingest and the gate key columns by source)."""
    return _checked_table(BREAKDOWN_DIMENSIONS)


@functools.lru_cache(maxsize=8)
def _checked_table(table: tuple[BreakdownDimension, ...]) -> tuple[BreakdownDimension, ...]:
    if not isinstance(table, tuple) or any(type(d) is not BreakdownDimension for d in table):
        raise ParameterError("BREAKDOWN_DIMENSIONS must be a tuple of BreakdownDimension entries")
    for d in table:
        if d._problem():  # an entry changed after construction (object.__setattr__) is checked again
            raise ParameterError(f"breakdown dimension {d.name!r}: {d._problem()}")
    for attribute in ("name", "source"):
        values = [getattr(d, attribute) for d in table]
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            raise ParameterError(f"BREAKDOWN_DIMENSIONS: two entries share the {attribute} {twice[0]!r}")
    return table


def breakdown_dimension(name: str) -> BreakdownDimension:
    """The entry called ``name``; ParameterError naming the known ones otherwise."""
    for dim in breakdown_dimensions():
        if dim.name == name:
            return dim
    raise ParameterError(f"unknown breakdown dimension {name!r}; known: {tuple(d.name for d in breakdown_dimensions())}")


def coded_event_dimensions() -> tuple[BreakdownDimension, ...]:
    """Event-level dimensions on columns the contract does not define (ingest codes them by ``pattern``)."""
    return tuple(d for d in breakdown_dimensions() if d.pattern is not None)


def breakdown_by_source(column: str) -> BreakdownDimension:
    """The event-level entry whose values come from event column ``column``."""
    for dim in breakdown_dimensions():
        if dim.per == "event" and dim.source == column:
            return dim
    raise ParameterError(f"no breakdown dimension reads event column {column!r}")
