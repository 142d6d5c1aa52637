"""Neighbouring-dataset checks: a person's removal moves the pre-noise aggregates by at most the declared
sensitivity, and does not change which noise is drawn.

``check_neighbouring`` runs a user's aggregate function on a dataset and on each neighbour (the dataset with
one person removed), with every noise call recorded and the noise frozen at zero, and compares

* the L1 and L2 norms of the difference of the aggregate vectors against the declared sensitivities, and
* the sequence of noise calls (mechanism, ε, δ, sensitivities, shape): a release whose control flow depends on
  one person (an extra noise draw, a different calibration) leaks through more than its counts.

Results never hold a person or a pseudonym: each neighbour is named by its position in ``persons``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from adtarget.exceptions import AdtargetError, ParameterError

__all__ = ["NeighbouringReport", "NeighbouringViolation", "NeighbourResult", "NoiseCall", "aggregate_vector",
           "check_neighbouring", "record_noise_calls"]


class NeighbouringViolation(AdtargetError, AssertionError):
    """Removing one person moved an aggregate by more than its declared sensitivity, or changed the noise calls."""


@dataclass(frozen=True)
class NoiseCall:
    """One recorded noise draw: which sampler, its calibration, and the shape of what it was given."""

    sampler: str
    parameters: tuple[tuple[str, Any], ...]
    shape: tuple[int, ...]


def _frozen_add_noise(self: Any, counts: Any, random_state: Any = None, *, allow_infinite_epsilon: bool = False,
                      ) -> np.ndarray:
    exact = self._checked_counts(counts)
    return exact


def _frozen_select(self: Any, person_counts: Any, random_state: Any = None) -> np.ndarray:
    counts = self._checked_counts(person_counts)
    return (counts > 0) & (counts >= self.threshold)


def _count_noise_call(self: Any, counts: Any) -> NoiseCall:
    params = (("mechanism", self.mechanism), ("epsilon", self.epsilon), ("delta", self.delta),
              ("l1_sensitivity", self.l1_sensitivity), ("l2_sensitivity", self.l2_sensitivity))
    return NoiseCall("CountNoise.add_noise", params, tuple(np.shape(counts)))


def _selection_call(self: Any, counts: Any) -> NoiseCall:
    params = (("epsilon", self.epsilon), ("delta", self.delta),
              ("max_partitions_per_person", self.max_partitions_per_person))
    return NoiseCall("PartitionSelection.select", params, tuple(np.shape(counts)))


@contextlib.contextmanager
def record_noise_calls(*, freeze: bool = True) -> Iterator[list[NoiseCall]]:
    """Record every ``CountNoise.add_noise`` and ``PartitionSelection.select`` call made inside the block.

    Parameters
    ----------
    freeze : bool, default True
        Replace the noise by zero while recording: ``add_noise`` returns the exact counts and ``select`` keeps a
        key iff its person count reaches the threshold. Nothing random is drawn and no warning is emitted.
        With ``freeze=False`` the real samplers run after being recorded.

    Yields
    ------
    list of NoiseCall
        Filled in call order.

    Notes
    -----
    The samplers are patched on their classes, so the block is not thread-safe: do not release concurrently in
    other threads while it is open. This is a testing tool; never use it around a real release.
    """
    from adtarget.reports._noise import CountNoise
    from adtarget.reports._partition import PartitionSelection

    calls: list[NoiseCall] = []
    real_add, real_select = CountNoise.add_noise, PartitionSelection.select

    def add_noise(self: Any, counts: Any, random_state: Any = None, *, allow_infinite_epsilon: bool = False,
                  ) -> np.ndarray:
        calls.append(_count_noise_call(self, counts))
        if freeze:
            return _frozen_add_noise(self, counts)
        return real_add(self, counts, random_state, allow_infinite_epsilon=allow_infinite_epsilon)

    def select(self: Any, person_counts: Any, random_state: Any = None) -> np.ndarray:
        calls.append(_selection_call(self, person_counts))
        if freeze:
            return _frozen_select(self, person_counts)
        return real_select(self, person_counts, random_state)

    CountNoise.add_noise = add_noise  # type: ignore[method-assign]
    PartitionSelection.select = select  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        CountNoise.add_noise = real_add  # type: ignore[method-assign]
        PartitionSelection.select = real_select  # type: ignore[method-assign]


def aggregate_vector(aggregates: Any) -> dict[Any, float]:
    """Aggregates as a sparse vector ``{key: value}`` whose keys are comparable across neighbours.

    Accepts a ``CellCounts`` (sizes and breakdown cells, keyed by segment id and value name, so a value that
    disappears with the person counts as 0), an ``Aggregates`` of the engine (its ``cells``), a mapping of keys
    to numbers, or an array (keyed by index; neighbours must then have the same shape).
    """
    cells = getattr(aggregates, "cells", None)
    if cells is not None and hasattr(cells, "sizes"):
        aggregates = cells
    if hasattr(aggregates, "sizes") and hasattr(aggregates, "segment_ids"):
        return _cell_counts_vector(aggregates)
    if isinstance(aggregates, Mapping):
        return {k: float(v) for k, v in aggregates.items()}
    arr = np.asarray(aggregates)
    if arr.dtype.kind not in "iuf":
        raise ParameterError(f"aggregates must be CellCounts, a mapping or a numeric array; got "
                             f"{type(aggregates).__name__} of dtype {arr.dtype}")
    return {("index", *idx): float(v) for idx, v in np.ndenumerate(arr)}


def _cell_counts_vector(cc: Any) -> dict[Any, float]:
    out: dict[Any, float] = {("size", s): float(n) for s, n in zip(cc.segment_ids, np.asarray(cc.sizes))}
    for dim, table in cc.cells.items():
        names = cc.values[dim]
        for i, seg in enumerate(cc.segment_ids):
            row = np.asarray(table[i])
            out.update({(dim, seg, names[j]): float(row[j]) for j in np.flatnonzero(row)})
    return out


def _difference_norms(a: Mapping[Any, float], b: Mapping[Any, float]) -> tuple[float, float, int]:
    keys = set(a) | set(b)
    diff = np.array([a.get(k, 0.0) - b.get(k, 0.0) for k in keys], dtype=np.float64)
    return float(np.abs(diff).sum()), float(math.sqrt(float((diff**2).sum()))), int(np.count_nonzero(diff))


@dataclass(frozen=True)
class NeighbourResult:
    """One neighbour: the dataset without the ``index``-th person of ``persons``."""

    index: int
    l1: float
    l2: float
    changed: int
    same_noise_calls: bool
    within_l1: bool
    within_l2: bool

    @property
    def ok(self) -> bool:
        return self.within_l1 and self.within_l2 and self.same_noise_calls


@dataclass(frozen=True)
class NeighbouringReport:
    """Outcome of :func:`check_neighbouring` over every neighbour checked."""

    declared_l1: float
    declared_l2: float | None
    noise_calls: tuple[NoiseCall, ...]
    results: tuple[NeighbourResult, ...]

    @property
    def ok(self) -> bool:
        """True when every neighbour is within the declared sensitivities and drew the same noise."""
        return all(r.ok for r in self.results)

    @property
    def max_l1(self) -> float:
        return max((r.l1 for r in self.results), default=0.0)

    @property
    def max_l2(self) -> float:
        return max((r.l2 for r in self.results), default=0.0)

    @property
    def violations(self) -> tuple[NeighbourResult, ...]:
        return tuple(r for r in self.results if not r.ok)

    def raise_for_violations(self) -> NeighbouringReport:
        """Return ``self``, or raise :class:`NeighbouringViolation` describing the first violations."""
        bad = self.violations
        if bad:
            first = ", ".join(f"#{r.index} (L1={r.l1:g}, L2={r.l2:.4g}, same noise calls={r.same_noise_calls})"
                              for r in bad[:3])
            raise NeighbouringViolation(
                f"{len(bad)} of {len(self.results)} neighbours break the declared sensitivity L1<={self.declared_l1:g}"
                f"{'' if self.declared_l2 is None else f', L2<={self.declared_l2:.4g}'} or change the noise calls; "
                f"first: {first}")
        return self

    def __str__(self) -> str:
        return (f"NeighbouringReport({len(self.results)} neighbours, max L1={self.max_l1:g} "
                f"(declared {self.declared_l1:g}), max L2={self.max_l2:.4g}, violations={len(self.violations)})")


def _checked_sensitivity(name: str, value: Any, required: bool) -> float | None:
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
        raise ParameterError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def check_neighbouring(aggregate_fn: Callable[[Any], Any], dataset: Any, remove_person: Callable[[Any, Any], Any],
                       *, persons: Iterable[Any], declared_l1: float, declared_l2: float | None = None,
                       tolerance: float = 1e-9) -> NeighbouringReport:
    """Check that removing any one person moves the pre-noise aggregates by at most the declared sensitivity.

    Parameters
    ----------
    aggregate_fn : callable(dataset) -> aggregates
        Runs your pipeline on a dataset and returns its pre-noise aggregates (``CellCounts``, a mapping or an
        array; see :func:`aggregate_vector`). It may also run the release: every ``CountNoise.add_noise`` and
        ``PartitionSelection.select`` call it makes is recorded with the noise frozen at zero
        (:func:`record_noise_calls`), and the calls must be identical on every neighbour.
    dataset : any
        The full dataset, handed unchanged to ``aggregate_fn`` and ``remove_person``.
    remove_person : callable(dataset, person) -> dataset
        The neighbour without ``person`` (all of that person's rows).
    persons : iterable
        The persons to remove, one neighbour each (all of them, or a random sample).
    declared_l1, declared_l2 : float
        The sensitivities the noise is calibrated for (``declared_l2=None`` skips the L2 check).
    tolerance : float, default 1e-9
        Absolute slack of the norm comparisons (for float aggregates).

    Returns
    -------
    NeighbouringReport
        Per-neighbour norms and verdicts; call ``raise_for_violations()`` to assert.

    Notes
    -----
    Neighbours are named by their position in ``persons``, never by the person, so the report can be logged.
    Data-dependent keys (non-public region values) may legitimately change the shape of the partition-selection
    call; give such datasets public keys, or keep every key held by several persons, when checking control flow.
    """
    l1 = _checked_sensitivity("declared_l1", declared_l1, True)
    l2 = _checked_sensitivity("declared_l2", declared_l2, False)
    assert l1 is not None
    with record_noise_calls() as calls:
        base = aggregate_vector(aggregate_fn(dataset))
    reference = tuple(calls)
    results = [_one(i, aggregate_fn, remove_person(dataset, p), base, reference, l1, l2, tolerance)
               for i, p in enumerate(persons)]
    return NeighbouringReport(l1, l2, reference, tuple(results))


def _one(index: int, aggregate_fn: Callable[[Any], Any], neighbour: Any, base: Mapping[Any, float],
         reference: tuple[NoiseCall, ...], l1: float, l2: float | None, tolerance: float) -> NeighbourResult:
    with record_noise_calls() as calls:
        vector = aggregate_vector(aggregate_fn(neighbour))
    d1, d2, changed = _difference_norms(base, vector)
    return NeighbourResult(index=index, l1=d1, l2=d2, changed=changed, same_noise_calls=tuple(calls) == reference,
                           within_l1=d1 <= l1 + tolerance, within_l2=l2 is None or d2 <= l2 + tolerance)
