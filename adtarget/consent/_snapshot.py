"""ConsentSnapshot: the consent state of every known person at one time, as numpy arrays sorted by pseudonym."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from adtarget.exceptions import ParameterError

__all__ = ["ConsentSnapshot"]

_DTYPES: dict[str, str] = {
    "persons": "u8", "birth_year": "i2", "opted_in": "b1", "cross_service": "b1", "deleted": "b1",
    "terminated": "b1", "location_deleted": "b1", "policy_version": "U", "jurisdiction": "U",
}


@dataclass(frozen=True, eq=False)
class ConsentSnapshot:
    """Consent state as of ``as_of`` (epoch seconds, UTC), one row per person, sorted by pseudonym.

    Attributes follow docs/internals.md: ``persons`` (uint64 pseudonyms, strictly increasing), ``birth_year``
    (int16, 0 = unknown), ``opted_in``, ``cross_service``, ``deleted``, ``terminated``, ``location_deleted``
    (bool), ``policy_version`` and ``jurisdiction`` (str, "" = unknown). Arrays are read-only.
    """

    as_of: int
    persons: np.ndarray
    birth_year: np.ndarray
    opted_in: np.ndarray
    cross_service: np.ndarray
    deleted: np.ndarray
    terminated: np.ndarray
    location_deleted: np.ndarray
    policy_version: np.ndarray
    jurisdiction: np.ndarray

    def __post_init__(self) -> None:
        if isinstance(self.as_of, bool) or not isinstance(self.as_of, (int, np.integer)):
            raise ParameterError(f"as_of: must be int epoch seconds; received {type(self.as_of).__name__}")
        n = None
        for name, code in _DTYPES.items():
            array = getattr(self, name)
            if not isinstance(array, np.ndarray) or array.ndim != 1:
                raise ParameterError(f"{name}: must be a 1-D numpy array")
            if (array.dtype.kind != "U") if code == "U" else (array.dtype != np.dtype(code)):
                raise ParameterError(f"{name}: must have dtype {np.dtype(code) if code != 'U' else 'str'}; "
                                     f"received {array.dtype}")
            if n is not None and array.size != n:
                raise ParameterError(f"{name}: has {array.size} rows; persons has {n}")
            n = array.size
            array.flags.writeable = False
        if self.persons.size > 1 and not (self.persons[1:] > self.persons[:-1]).all():
            raise ParameterError("persons: must be strictly increasing (sorted, one row per person)")

    def __len__(self) -> int:
        return int(self.persons.size)

    def index_of(self, pseudonyms: np.ndarray) -> np.ndarray:
        """Row of each pseudonym in this snapshot (int64), -1 where the person has no consent record."""
        query = np.asarray(pseudonyms, dtype=np.uint64)
        at = np.searchsorted(self.persons, query)
        clipped = np.minimum(at, max(self.persons.size - 1, 0))
        found = (at < self.persons.size) & (self.persons[clipped] == query) if self.persons.size else \
            np.zeros(query.size, dtype=bool)
        return np.where(found, at, -1).astype(np.int64)

    def counts(self) -> dict[str, int]:
        """Persons, and how many are opted in, allow cross-service use, are deleted, terminated, location-deleted."""
        return {"persons": len(self), **{name: int(getattr(self, name).sum()) for name in
                                         ("opted_in", "cross_service", "deleted", "terminated", "location_deleted")}}

    def __repr__(self) -> str:
        """Counts only: the pseudonyms never reach a log, a notebook or a traceback."""
        body = ", ".join(f"{k}={v}" for k, v in self.counts().items())
        return f"ConsentSnapshot(as_of={self.as_of}, {body})"

    __str__ = __repr__

    def equals(self, other: ConsentSnapshot) -> bool:
        """Same persons and the same state for each (``as_of`` is not compared)."""
        return all(np.array_equal(getattr(self, f.name), getattr(other, f.name))
                   for f in fields(self) if f.name != "as_of")

    @classmethod
    def from_columns(cls, columns: dict[str, np.ndarray], as_of: int) -> ConsentSnapshot:
        """Build from ``_store`` snapshot columns (already sorted by pseudonym)."""
        return cls(as_of=int(as_of), **columns)
