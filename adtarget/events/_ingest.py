"""The event contract at the boundary: validate, quarantine bad rows, pseudonymise, and build an EventBatch.

Promise P1: only allow-listed columns enter; identifying columns are refused by name; location is kept only as
a coarse region. Accounting rule: ``accepted + quarantined == input_rows`` for every ingest.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from adtarget._core._buffers import uses_buffers
from adtarget._core._provenance import Sealed, readonly
from adtarget.events._person_ids import person_ids
from adtarget.events._pseudonym import pseudonymise
from adtarget.events._schema import check_columns
from adtarget.events._sources import read_columns
from adtarget.events._validation import (
    ACCEPTED,
    QUARANTINE_REASONS,
    breakdown_column,
    category_column,
    kind_column,
    person_id_rows,
    region_column,
    service_column,
    timestamp_column,
    weight_column,
)
from adtarget.reference._breakdowns import coded_event_dimensions

if TYPE_CHECKING:
    from adtarget._core._types import EventSource
    from adtarget.events._pseudonym import Pseudonymizer
    from adtarget.reference._services import ServiceRegistry
    from adtarget.reference._taxonomy import Taxonomy

__all__ = ["QUARANTINE_REASONS", "EventBatch", "EventColumns", "IngestResult", "Quarantine", "ingest"]


class EventColumns:
    """Shared by EventBatch and EligibleEvents: event columns indexed into sorted unique ``persons``."""

    __slots__ = ()
    person: np.ndarray
    persons: np.ndarray

    @property
    def n_events(self) -> int:
        return int(self.person.size)

    @property
    def n_persons(self) -> int:
        return int(self.persons.size)

    def __len__(self) -> int:
        return self.n_events


@dataclass(frozen=True, eq=False)
class BatchState:
    """What an EventBatch holds (see :class:`EventBatch`); made only by :func:`ingest`."""

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
    #: codes (int16, -1 none) and value names of the breakdown dimensions' own event columns, by column
    dimension_codes: Mapping[str, np.ndarray] = field(default_factory=dict)
    dimension_values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


class EventBatch(EventColumns, Sealed, maker="adtarget.ingest"):
    """Validated, pseudonymised events as read-only numpy columns (see docs/internals.md).

    Made only by :func:`ingest` (the event contract is checked there: allow-listed columns, coarse regions,
    known services and categories), so the gate never sees events that skipped it. Attributes: ``person``
    (int32 index into ``persons``), ``persons`` (sorted uint64 pseudonyms), ``service``, ``ts``, ``category``,
    ``kind``, ``region`` (codes), ``weight``, ``regions`` (names of the region codes), ``taxonomy``,
    ``services``, ``dimension_codes`` and ``dimension_values`` (the columns of breakdown dimensions outside
    the contract's own, by column: codes and their names).
    """

    __slots__ = ()
    service: np.ndarray
    ts: np.ndarray
    category: np.ndarray
    kind: np.ndarray
    region: np.ndarray
    weight: np.ndarray
    regions: tuple[str, ...]
    taxonomy: Taxonomy
    services: ServiceRegistry
    dimension_codes: Mapping[str, np.ndarray]
    dimension_values: Mapping[str, tuple[str, ...]]

    def __repr__(self) -> str:
        if not EventBatch._is_issued(self):
            return "EventBatch(<not made by adtarget.ingest>)"
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


@uses_buffers
def ingest(
    source: EventSource,
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
    from adtarget.reference._services import ServiceRegistry
    from adtarget.reference._taxonomy import Taxonomy

    taxonomy = taxonomy if taxonomy is not None else Taxonomy.default()
    services = services if services is not None else ServiceRegistry.synthetic()
    columns, n_rows = read_columns(source)
    kept = check_columns(columns, drop_unknown_columns=drop_unknown_columns)
    dropped = tuple(c for c in columns if c not in kept)
    reason = np.full(n_rows, ACCEPTED, dtype=np.int8)
    ids = person_ids(columns["person_id"])
    person_id_rows(ids, reason)
    service = service_column(columns["service"], services, reason)
    category = category_column(columns["category"], taxonomy, reason)
    ts = timestamp_column(columns["ts"], n_rows, reason, time.time() if now is None else now)
    kind = kind_column(columns.get("kind"), n_rows, reason)
    weight = weight_column(columns.get("weight"), n_rows, reason)
    region, regions = region_column(columns.get("region"), n_rows, reason)
    coded = {d.source: breakdown_column(columns.get(d.source), d, n_rows, reason) for d in coded_event_dimensions()}
    del columns
    events = {"service": service, "ts": ts, "category": category, "kind": kind, "region": region,
              "weight": weight}
    del service, ts, category, kind, region, weight

    rows = np.flatnonzero(reason != ACCEPTED)
    accepted = None if rows.size == 0 else reason == ACCEPTED
    reasons = reason[rows]
    del reason
    codes = {name: c for name, (c, _) in coded.items()}
    if accepted is not None:  # no copy when nothing was quarantined; else one column at a time
        for table in (events, codes):
            for name in table:
                table[name] = table[name][accepted]
    person, persons = pseudonymise(ids, accepted, pseudonymizer)
    batch = EventBatch._issue(BatchState(person=person, persons=persons, **events, regions=regions,
                                         taxonomy=taxonomy, services=services, dimension_codes=codes,
                                         dimension_values={name: v for name, (_, v) in coded.items()}))
    quarantine = Quarantine(rows=readonly(rows.astype(np.int64)), reason=readonly(reasons))
    return IngestResult(batch=batch, quarantine=quarantine, input_rows=n_rows, dropped_columns=dropped)
