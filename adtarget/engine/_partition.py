"""The per-partition kernel shared by every engine: events → gate → segments → exact release counts.

A partition must hold all events of each of its persons (the Spark engine partitions by person id), because
contribution bounding is per person. Inner stages trust their inputs: ``ingest`` is the boundary.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from adtarget.engine._aggregates import Aggregates
from adtarget.engine._context import BuildContext
from adtarget.events._ingest import ingest
from adtarget.gate._gate import EligibleEvents, apply_gate

__all__ = ["PartitionBuild", "build_partition", "release_arrow_memory"]


@dataclass(frozen=True, eq=False)
class PartitionBuild:
    """A partition's aggregates plus, for the local engine, the eligible events and the (personal)
    segment assignments it derived them from."""

    aggregates: Aggregates
    eligible: EligibleEvents
    assignments: Any


def build_partition(source: Any, context: BuildContext) -> PartitionBuild:
    """Run ingestion, the gate, segment assignment and the exact cell counts on one partition."""
    from adtarget.reports._cells import count_cells

    ingested = ingest(
        source,
        pseudonymizer=context.pseudonymizer,
        taxonomy=context.safe_taxonomy.taxonomy,
        services=context.services,
        now=context.now,
        drop_unknown_columns=context.drop_unknown_columns,
    )
    release_arrow_memory()
    eligible = apply_gate(
        ingested.batch,
        context.snapshot,
        context.safe_taxonomy,
        context.policy,
        target_service=context.target_service,
        window_end=context.window_end,
        snapshot_id=context.snapshot_id,
    )
    assignments = context.segmenter.assign(eligible)
    aggregates = Aggregates(
        input_rows=ingested.input_rows,
        quarantined=ingested.quarantine.counts(),
        excluded=dict(eligible.exclusions),
        eligible_events=eligible.n_events,
        eligible_persons=eligible.n_persons,
        region_redacted=eligible.region_redacted,
        cells=count_cells(eligible, assignments, context.spec),
    )
    return PartitionBuild(aggregates=aggregates.check(), eligible=eligible, assignments=assignments)


def release_arrow_memory() -> None:
    """Return Arrow buffers freed since ingest (e.g. a table read from Parquet) to the OS: pyarrow's allocator
    keeps freed pages, which would otherwise stay in the process's peak for the rest of the build."""
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None:
        pyarrow.default_memory_pool().release_unused()
