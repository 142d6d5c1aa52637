"""Per-partition results of a build, summable over disjoint partitions of persons.

Everything here is pre-noise and personal in aggregate form (exact counts): it stays with the data owner and
reaches an advertiser only through the release (noise, thresholds, budget).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = ["Aggregates"]


def _add_counts(a: Mapping[str, int], b: Mapping[str, int]) -> Mapping[str, int]:
    total: Counter[str] = Counter(dict(a))
    total.update(dict(b))
    return MappingProxyType({k: int(total[k]) for k in sorted(total)})


@dataclass(frozen=True, eq=False)
class Aggregates:
    """Row accounting, exclusions, and the release's exact cell counts of one or more partitions.

    ``input_rows == accepted + quarantined`` and ``accepted == eligible_events + sum(excluded)`` hold for each
    partition and so for every sum of partitions.
    """

    input_rows: int
    quarantined: Mapping[str, int]
    excluded: Mapping[str, int]
    eligible_events: int
    eligible_persons: int
    region_redacted: int
    cells: Any

    def __post_init__(self) -> None:  # one key order in every engine, however many partitions were summed
        object.__setattr__(self, "quarantined", _add_counts(self.quarantined, {}))
        object.__setattr__(self, "excluded", _add_counts(self.excluded, {}))

    @property
    def accepted(self) -> int:
        return self.input_rows - sum(self.quarantined.values())

    def check(self) -> Aggregates:
        """Raise if the accounting identities do not hold (they always should)."""
        if self.accepted != self.eligible_events + sum(self.excluded.values()):
            raise AssertionError(f"row accounting does not add up: {self.summary()}")
        return self

    def __add__(self, other: Aggregates) -> Aggregates:
        if not isinstance(other, Aggregates):
            return NotImplemented
        return Aggregates(
            input_rows=self.input_rows + other.input_rows,
            quarantined=_add_counts(self.quarantined, other.quarantined),
            excluded=_add_counts(self.excluded, other.excluded),
            eligible_events=self.eligible_events + other.eligible_events,
            eligible_persons=self.eligible_persons + other.eligible_persons,
            region_redacted=self.region_redacted + other.region_redacted,
            cells=self.cells + other.cells,
        )

    @staticmethod
    def sum(parts: Iterable[Aggregates]) -> Aggregates:
        iterator = iter(parts)
        total = next(iterator)
        for part in iterator:
            total = total + part
        return total

    def summary(self) -> dict[str, Any]:
        return {
            "rows": {"input": self.input_rows, "accepted": self.accepted,
                     "quarantined": sum(self.quarantined.values())},
            "quarantine_reasons": dict(self.quarantined),
            "excluded": dict(self.excluded),
            "eligible_events": self.eligible_events,
            "eligible_persons": self.eligible_persons,
            "region_redacted": self.region_redacted,
        }
