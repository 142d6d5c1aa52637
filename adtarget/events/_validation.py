"""Event columns at ingestion: every column in its final dtype, and every row's first quarantine reason.

Each function writes one column and lowers ``reason`` (int8, one per row, :data:`ACCEPTED` when nothing is
wrong) to the code of the first rule the row fails: codes follow :data:`QUARANTINE_REASONS`, whose order is the
precedence, so "first failing rule" is "smallest code" and the columns can be checked in any order.
String-like columns are mapped through small per-value tables (value, reason) built over their *distinct*
values: the dictionaries of an Arrow dictionary column chunk by chunk (no unification, no copy of the
indices), or :func:`adtarget.events._parsing.factorize` for anything else. The loops are compiled
(``adtarget/events/_factorize_kernels.py``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

from adtarget.events._parsing import (
    blank_values,
    control_values,
    dictionary_chunks,
    factorize,
    float64_chunks,
    int64_chunks,
    invalid_id_values,
    parse_float,
    parse_timestamps,
)
from adtarget.events._schema import DEFAULT_KIND, EVENT_KINDS
from adtarget.exceptions import InputFormatError

if TYPE_CHECKING:
    from adtarget.events._person_ids import PersonIds
    from adtarget.reference._breakdowns import BreakdownDimension
    from adtarget.reference._services import ServiceRegistry
    from adtarget.reference._taxonomy import Taxonomy

__all__ = [
    "ACCEPTED",
    "QUARANTINE_REASONS",
    "breakdown_column",
    "person_id_rows",
    "category_column",
    "kind_column",
    "region_column",
    "service_column",
    "timestamp_column",
    "weight_column",
]

# Order matters: a row with several problems is quarantined for the first one.
QUARANTINE_REASONS: tuple[str, ...] = (
    "missing_person_id",
    "invalid_person_id",
    "missing_service",
    "unknown_service",
    "missing_category",
    "unknown_category",
    "bad_timestamp",
    "future_timestamp",
    "unknown_kind",
    "negative_weight",
    "non_finite_weight",
    "region_looks_like_coordinates",
    "invalid_region",
    "invalid_breakdown_value",
)
REASON = {name: code for code, name in enumerate(QUARANTINE_REASONS)}
ACCEPTED = int(np.iinfo(np.int8).max)  # the reason code of a row that breaks no rule
MIN_PLAUSIBLE_TS = 946_684_800  # 2000-01-01T00:00:00Z: older timestamps are taken as unparseable
CLOCK_SKEW_S = 300
_REGION = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")
_COORDINATE = re.compile(r"[-+]?\d{1,3}\.\d+")

# (first row, codes into the chunk's dictionary, the dictionary's first entry in the uniques, its length)
_Chunk = tuple[int, np.ndarray, int, int]


def person_id_rows(ids: PersonIds, reason: np.ndarray) -> None:
    """Quarantine the rows of missing ids and of ids that are never valid (``invalid_person_id``: a control
    character, a fractional or too large float, a boolean)."""
    missing = ids.missing
    if missing is None:
        return
    reason[missing] = REASON["missing_person_id"]
    bad = np.flatnonzero(invalid_id_values(ids.uniques))
    if bad.size:
        rows = np.isin(ids.codes, bad)
        reason[rows] = np.minimum(reason[rows], REASON["invalid_person_id"])


#: longer than any taxonomy node id or service name: such a value is unknown, and never widens the fixed-width
#: string array of the look-up (one 10 MB category would make every distinct value 40 MB)
MAX_CODE_LENGTH = 256


def _lookup_keys(uniques: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(keys, too_long)``: the distinct values as ``str`` for a registry look-up, over-long ones blanked."""
    too_long = np.fromiter((isinstance(u, str | bytes) and len(u) > MAX_CODE_LENGTH for u in uniques.tolist()),
                           dtype=bool, count=uniques.size)
    keys = np.where(too_long, "", uniques.astype(object)) if too_long.any() else uniques
    return keys.astype(str), too_long


def service_column(values: Any, services: ServiceRegistry, reason: np.ndarray) -> np.ndarray:
    """Service codes (int16); missing and unknown services are quarantined."""
    uniques, chunks = _coded(values, "service")
    keys, too_long = _lookup_keys(uniques)
    known = np.where(too_long, -1, services.index_of(keys)) if uniques.size else np.zeros(0, np.int16)
    return _map(chunks, *_lookup_tables(known, uniques, "service"), reason, np.int16)


def category_column(values: Any, taxonomy: Taxonomy, reason: np.ndarray) -> np.ndarray:
    """Taxonomy node indices (int32); missing and unknown categories are quarantined."""
    uniques, chunks = _coded(values, "category")
    keys, too_long = _lookup_keys(uniques)
    known = np.where(too_long, -1, taxonomy.index_of(keys)) if uniques.size else np.zeros(0, np.int32)
    return _map(chunks, *_lookup_tables(known, uniques, "category"), reason, np.int32)


def kind_column(values: Any, n_rows: int, reason: np.ndarray) -> np.ndarray:
    """Event kind codes (int8); a missing kind is the default kind, an unknown one is quarantined."""
    if values is None:
        return np.full(n_rows, DEFAULT_KIND, dtype=np.int8)
    uniques, chunks = _coded(values, "kind")
    known = np.array([EVENT_KINDS.index(u) if u in EVENT_KINDS else -1 for u in uniques], dtype=np.int8)
    known[blank_values(uniques)] = DEFAULT_KIND
    reasons = np.where(known < 0, REASON["unknown_kind"], ACCEPTED).astype(np.int8)
    return _map(chunks, (known, DEFAULT_KIND), (reasons, ACCEPTED), reason, np.int8)


def region_column(values: Any, n_rows: int, reason: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Region codes (int16, -1 for none) into the sorted valid regions of the column's distinct values."""
    if values is None:
        return np.full(n_rows, -1, dtype=np.int16), ()
    uniques, chunks = _coded(values, "region")
    blank = blank_values(uniques)
    text = [str(u).strip().upper() for u in uniques]
    coordinates = np.array([bool(_COORDINATE.search(t)) for t in text], dtype=bool) & ~blank
    valid = np.array([bool(_REGION.match(t)) for t in text], dtype=bool) & ~coordinates
    regions = tuple(sorted({t for t, ok in zip(text, valid) if ok}))
    _check_coarse(regions, "region")
    code_of = {r: i for i, r in enumerate(regions)}
    mapped = np.array([code_of.get(t, -1) for t in text], dtype=np.int16)
    reasons = np.select([coordinates, ~valid & ~blank],
                        [REASON["region_looks_like_coordinates"], REASON["invalid_region"]], ACCEPTED)
    return _map(chunks, (mapped, -1), (reasons.astype(np.int8), ACCEPTED), reason, np.int16), regions


def breakdown_column(values: Any, dim: BreakdownDimension, n_rows: int,
                     reason: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Codes (int16, -1 for none) of a breakdown dimension's event column into its sorted accepted values;
    values ``dim.pattern`` refuses are quarantined as ``invalid_breakdown_value``."""
    if values is None:
        return np.full(n_rows, -1, dtype=np.int16), ()
    uniques, chunks = _coded(values, dim.source)
    blank = blank_values(uniques)
    text = [str(u).strip() for u in uniques]
    valid = np.array([dim.accepts(t) for t in text], dtype=bool) & ~blank
    names = tuple(sorted({t for t, ok in zip(text, valid) if ok}))
    _check_coarse(names, dim.source)
    code_of = {r: i for i, r in enumerate(names)}
    mapped = np.array([code_of.get(t, -1) for t in text], dtype=np.int16)
    reasons = np.where(~valid & ~blank, REASON["invalid_breakdown_value"], ACCEPTED).astype(np.int8)
    return _map(chunks, (mapped, -1), (reasons, ACCEPTED), reason, np.int16), names


def _check_coarse(names: tuple[str, ...], column: str) -> None:
    """A breakdown column's distinct values fit its int16 codes (a breakdown is coarse by design)."""
    if len(names) > np.iinfo(np.int16).max:
        raise InputFormatError(f"events: column {column!r} has more distinct values than a breakdown can hold "
                               f"({np.iinfo(np.int16).max}); a breakdown dimension must be coarse")


def timestamp_column(values: Any, n_rows: int, reason: np.ndarray, now: float) -> np.ndarray:
    """Epoch seconds (int64); unparseable or implausibly old timestamps, and future ones, are quarantined."""
    from adtarget.events import _factorize_kernels as kernels

    chunks = int64_chunks(values) or [parse_timestamps(values, "ts")]
    out = np.empty(n_rows, dtype=np.int64)
    highest = int(now) + CLOCK_SKEW_S
    for start, chunk in _spans(chunks):
        stop = start + chunk.size
        kernels.copy_timestamps(chunk, out[start:stop], reason[start:stop], MIN_PLAUSIBLE_TS, highest,
                                REASON["bad_timestamp"], REASON["future_timestamp"])
    return out


def weight_column(values: Any, n_rows: int, reason: np.ndarray) -> np.ndarray:
    """Weights (float64, 1.0 where missing); negative and non-finite weights are quarantined."""
    from adtarget.events import _factorize_kernels as kernels

    if values is None:
        return np.ones(n_rows, dtype=np.float64)
    chunks = float64_chunks(values, 1.0) or [parse_float(values, "weight", default=1.0)]
    out = np.empty(n_rows, dtype=np.float64)
    for start, chunk in _spans(chunks):
        stop = start + chunk.size
        kernels.copy_weights(chunk, out[start:stop], reason[start:stop], REASON["negative_weight"],
                             REASON["non_finite_weight"])
    return out


def _coded(values: Any, name: str) -> tuple[np.ndarray, list[_Chunk]]:
    """The column's distinct values (object array) and its chunks of codes into them (-1 for missing)."""
    dictionaries = dictionary_chunks(values)
    if dictionaries is None:
        uniques, codes = factorize(values, name)
        return uniques, [(0, codes, 0, uniques.size)]
    distinct, chunks = dictionaries
    bases = np.cumsum([0] + [d.size for d in distinct])
    uniques = np.concatenate(distinct) if distinct else np.zeros(0, dtype=object)
    starts = np.cumsum([0] + [c.size for c, _ in chunks])
    return uniques, [(int(s), c, int(bases[d]), distinct[d].size) for s, (c, d) in zip(starts, chunks)]


def _lookup_tables(known: np.ndarray, uniques: np.ndarray, name: str) -> tuple[tuple[np.ndarray, int],
                                                                               tuple[np.ndarray, int]]:
    """(values, value of a null) and (reasons, reason of a null) of a look-up: blank values are missing."""
    missing = blank_values(uniques)
    known = np.where(control_values(uniques), -1, known)  # a control character is never in a registry
    values = np.where(missing, -1, known)
    reasons = np.select([missing, known < 0], [REASON[f"missing_{name}"], REASON[f"unknown_{name}"]], ACCEPTED)
    return (values, -1), (reasons.astype(np.int8), REASON[f"missing_{name}"])


def _map(chunks: list[_Chunk], values: tuple[np.ndarray, int], reasons: tuple[np.ndarray, int],
         reason: np.ndarray, dtype: Any) -> np.ndarray:
    """Write ``values[code]`` (the null value for code -1) of every chunk, and lower ``reason`` to
    ``reasons[code]``."""
    from adtarget.events import _factorize_kernels as kernels

    n_rows = sum(codes.size for _, codes, _, _ in chunks)
    out = np.empty(n_rows, dtype=dtype)
    tables: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    for start, codes, base, size in chunks:
        if (base, size) not in tables:
            tables[base, size] = (np.append(values[0][base:base + size], values[1]).astype(dtype),
                                  np.append(reasons[0][base:base + size], reasons[1]).astype(np.int8))
        stop = start + codes.size
        if not kernels.map_codes(codes, *tables[base, size], out[start:stop], reason[start:stop]):
            raise InputFormatError("events: a dictionary-encoded column has indices outside its dictionary")
    return out


def _spans(chunks: list[np.ndarray]) -> list[tuple[int, np.ndarray]]:
    starts = np.cumsum([0] + [c.size for c in chunks[:-1]])
    return [(int(s), c) for s, c in zip(starts, chunks)]
