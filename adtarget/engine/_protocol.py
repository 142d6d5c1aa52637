"""The one interface every engine implements; numpy is the reference, every engine is tested against it."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from adtarget.engine._aggregates import Aggregates
from adtarget.engine._context import BuildContext

__all__ = ["Engine", "LocalEngine"]


@runtime_checkable
class Engine(Protocol):
    """Moves events to the per-person kernel and sums the partitions' aggregates."""

    name: str

    def aggregate(self, events: Any, context: BuildContext) -> Aggregates:
        """Exact (pre-noise) aggregates of a build over ``events`` (a path or an in-memory table)."""
        ...


class LocalEngine:
    """The numpy reference engine: one partition holding every person, in this process.

    ``last_build`` keeps the eligible events and the (personal) assignments of the latest build, for the
    internal assignments output; it never reaches a report.
    """

    name = "local"

    def __init__(self) -> None:
        self.last_build: Any = None

    def aggregate(self, events: Any, context: BuildContext) -> Aggregates:
        from adtarget.engine._partition import build_partition

        self.last_build = build_partition(events, context)
        return self.last_build.aggregates

    def __repr__(self) -> str:
        return "LocalEngine()"
