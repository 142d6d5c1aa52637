"""The event contract at the boundary: validate, quarantine bad rows, pseudonymise, and build an EventBatch.

Promise P1: only allow-listed columns enter; identifying columns are refused by name; location is kept only as
a coarse region. Accounting rule: ``accepted + quarantined == input_rows`` for every ingest.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from adtarget._columns import INVALID_TS, factorize, parse_float, parse_timestamps
from adtarget._event_schema import DEFAULT_KIND, EVENT_KINDS, check_columns
from adtarget._sources import read_columns

if TYPE_CHECKING:
    from adtarget._pseudonym import Pseudonymizer
    from adtarget._services import ServiceRegistry
    from adtarget._taxonomy import Taxonomy

__all__ = ["QUARANTINE_REASONS", "EventBatch", "IngestResult", "Quarantine", "ingest"]

# Order matters: a row with several problems is quarantined for the first one.
QUARANTINE_REASONS: tuple[str, ...] = (
    "missing_person_id",
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
)
_REASON = {name: code for code, name in enumerate(QUARANTINE_REASONS)}
MIN_PLAUSIBLE_TS = 946_684_800  # 2000-01-01T00:00:00Z: older timestamps are taken as unparseable
CLOCK_SKEW_S = 300
_REGION = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")
_COORDINATE = re.compile(r"[-+]?\d{1,3}\.\d+")


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


_COLUMNS = ("person", "service", "ts", "category", "kind", "region", "weight", "persons")


class EventColumns:
    """Shared by EventBatch and EligibleEvents: event columns indexed into sorted unique ``persons``."""

    person: np.ndarray
    persons: np.ndarray

    def _freeze(self, *extra: str) -> None:
        for name in (*_COLUMNS, *extra):
            _frozen(getattr(self, name))

    @property
    def n_events(self) -> int:
        return int(self.person.size)

    @property
    def n_persons(self) -> int:
        return int(self.persons.size)

    def __len__(self) -> int:
        return self.n_events


@dataclass(frozen=True, eq=False)
class EventBatch(EventColumns):
    """Validated, pseudonymised events as numpy columns (see docs/internals.md). Arrays are read-only."""

    person: np.ndarray
    persons: np.ndarray
    service: np.ndarray
    ts: np.ndarray
    category: np.ndarray
    kind: np.ndarray
    region: np.ndarray
    weight: np.ndarray
    regions: tuple[str, ...]
    taxonomy: Taxonomy
    services: ServiceRegistry

    def __post_init__(self) -> None:
        self._freeze()

    def __repr__(self) -> str:
        return (
            f"EventBatch(n_events={self.n_events}, n_persons={self.n_persons}, "
            f"services={len(self.services.names)}, taxonomy={self.taxonomy.name!r})"
        )


@dataclass(frozen=True, eq=False)
class Quarantine:
    """Input rows refused with a reason code each; holds row numbers only, never the rows' values."""

    rows: np.ndarray
    reason: np.ndarray

    def counts(self) -> dict[str, int]:
        tally = np.bincount(self.reason.astype(np.int64), minlength=len(QUARANTINE_REASONS))
        return {name: int(n) for name, n in zip(QUARANTINE_REASONS, tally) if n}

    def reasons(self) -> np.ndarray:
        """The reason name of each quarantined row, aligned with ``rows``."""
        return np.asarray(QUARANTINE_REASONS, dtype=object)[self.reason]

    def __len__(self) -> int:
        return int(self.rows.size)


@dataclass(frozen=True, eq=False)
class IngestResult:
    batch: EventBatch
    quarantine: Quarantine
    input_rows: int
    dropped_columns: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.batch.n_events + len(self.quarantine) != self.input_rows:  # pragma: no cover - invariant
            raise AssertionError("ingest accounting does not add up")

    def summary(self) -> dict[str, Any]:
        return {
            "input": self.input_rows,
            "accepted": self.batch.n_events,
            "quarantined": len(self.quarantine),
            "quarantine_reasons": self.quarantine.counts(),
            "dropped_columns": list(self.dropped_columns),
        }


def ingest(
    source: Any,
    *,
    pseudonymizer: Pseudonymizer,
    taxonomy: Taxonomy | None = None,
    services: ServiceRegistry | None = None,
    now: float | None = None,
    drop_unknown_columns: bool = False,
) -> IngestResult:
    """Validate events against the contract and return the accepted batch and the quarantine.

    Parameters
    ----------
    source : path (Parquet/CSV), pyarrow Table, pandas DataFrame or mapping of column name to array.
    pseudonymizer : the keyed hash that turns account ids into pseudonyms; raw ids are not kept.
    taxonomy, services : what categories and services are known (default: IAB Content 2.2, synthetic services).
    now : epoch seconds used to reject future timestamps (default: the current time).
    drop_unknown_columns : drop columns outside the contract instead of refusing them. Identifying columns
        are refused regardless.
    """
    from adtarget._services import ServiceRegistry
    from adtarget._taxonomy import Taxonomy

    taxonomy = taxonomy if taxonomy is not None else Taxonomy.default()
    services = services if services is not None else ServiceRegistry.synthetic()
    columns, n_rows = read_columns(source)
    kept = check_columns(columns, drop_unknown_columns=drop_unknown_columns)
    dropped = tuple(c for c in columns if c not in kept)
    reason = np.full(n_rows, -1, dtype=np.int8)

    def flag(name: str, mask: np.ndarray) -> None:
        reason[(reason < 0) & mask] = _REASON[name]

    person_codes, person_uniques = _person_column(columns["person_id"], flag)
    service = _lookup(columns["service"], "service", services.index_of, flag, np.int16)
    category = _lookup(columns["category"], "category", lambda u: taxonomy.index_of(u.astype(str)), flag,
                       np.int32)
    ts = _timestamps(columns["ts"], flag, time.time() if now is None else now)
    kind = _kinds(columns.get("kind"), n_rows, flag)
    weight = _weights(columns.get("weight"), n_rows, flag)
    region, regions = _regions(columns.get("region"), n_rows, flag)

    accepted = reason < 0
    everything = bool(accepted.all())

    def keep(column: np.ndarray) -> np.ndarray:  # no copy when nothing was quarantined
        return column if everything else column[accepted]

    person, persons = _pseudonymise(keep(person_codes), person_uniques, pseudonymizer)
    batch = EventBatch(
        person=person,
        persons=persons,
        service=keep(service),
        ts=keep(ts),
        category=keep(category),
        kind=keep(kind),
        region=keep(region),
        weight=keep(weight),
        regions=regions,
        taxonomy=taxonomy,
        services=services,
    )
    rows = np.flatnonzero(~accepted)
    quarantine = Quarantine(rows=_frozen(rows.astype(np.int64)), reason=_frozen(reason[rows]))
    return IngestResult(batch=batch, quarantine=quarantine, input_rows=n_rows, dropped_columns=dropped)


def _person_column(values: Any, flag: Any) -> tuple[np.ndarray, np.ndarray]:
    uniques, codes = factorize(values, "person_id")
    flag("missing_person_id", codes < 0)
    return codes, uniques


def _gather(per_unique: Any, codes: np.ndarray, missing: int, dtype: Any) -> np.ndarray:
    """``per_unique[codes]`` with ``missing`` where ``codes == -1``: one gather, no temporaries (the value
    for nulls is appended last, and index -1 picks it)."""
    table = np.append(np.asarray(per_unique, dtype=dtype), np.asarray(missing, dtype=dtype))
    return table[codes]


def _lookup(values: Any, name: str, index_of: Any, flag: Any, dtype: Any) -> np.ndarray:
    uniques, codes = factorize(values, name)
    known = index_of(uniques) if uniques.size else np.zeros(0, dtype)
    out = _gather(known, codes, -1, dtype)
    missing = codes < 0
    flag(f"missing_{name}", missing)
    flag(f"unknown_{name}", (out < 0) & ~missing)
    return out


def _timestamps(values: Any, flag: Any, now: float) -> np.ndarray:
    ts = parse_timestamps(values, "ts")
    flag("bad_timestamp", (ts == INVALID_TS) | (ts < MIN_PLAUSIBLE_TS))
    flag("future_timestamp", ts > int(now) + CLOCK_SKEW_S)
    return ts


def _kinds(values: Any, n_rows: int, flag: Any) -> np.ndarray:
    if values is None:
        return np.full(n_rows, DEFAULT_KIND, dtype=np.int8)
    uniques, codes = factorize(values, "kind")
    known = [EVENT_KINDS.index(u) if u in EVENT_KINDS else -1 for u in uniques]
    kind = _gather(known, codes, DEFAULT_KIND, np.int8)
    flag("unknown_kind", kind < 0)
    return kind


def _weights(values: Any, n_rows: int, flag: Any) -> np.ndarray:
    if values is None:
        return np.ones(n_rows, dtype=np.float64)
    weight = parse_float(values, "weight", default=1.0)
    finite = np.isfinite(weight)
    flag("negative_weight", finite & (weight < 0))
    flag("non_finite_weight", ~finite)
    return weight


def _regions(values: Any, n_rows: int, flag: Any) -> tuple[np.ndarray, tuple[str, ...]]:
    if values is None:
        return np.full(n_rows, -1, dtype=np.int16), ()
    uniques, codes = factorize(values, "region")
    text = [str(u).strip().upper() for u in uniques]
    coordinates = np.array([bool(_COORDINATE.search(t)) for t in text], dtype=bool)
    valid = np.array([bool(_REGION.match(t)) for t in text], dtype=bool) & ~coordinates
    regions = tuple(sorted({t for t, ok in zip(text, valid) if ok}))
    code_of = {r: i for i, r in enumerate(regions)}
    mapped = np.array([code_of.get(t, -1) for t in text], dtype=np.int16)
    flag("region_looks_like_coordinates", _gather(coordinates, codes, False, bool))
    flag("invalid_region", ~_gather(valid, codes, True, bool))
    return _gather(mapped, codes, -1, np.int16), regions


def _pseudonymise(
    codes: np.ndarray, uniques: np.ndarray, pseudonymizer: Pseudonymizer
) -> tuple[np.ndarray, np.ndarray]:
    """Hash the distinct ids that accepted rows use, sort the pseudonyms, and index rows into them."""
    used = np.zeros(uniques.size, dtype=bool)
    used[codes] = True
    used_codes = np.flatnonzero(used)
    pseudonyms = np.asarray(pseudonymizer.pseudonymize(uniques[used_codes]), dtype=np.uint64)
    order = np.argsort(pseudonyms, kind="stable")
    position = np.full(uniques.size, -1, dtype=np.int64)
    position[used_codes[order]] = np.arange(order.size)
    return position[codes].astype(np.int32), pseudonyms[order]
