"""The adtarget stages the harness times: synthetic input files, the chained pipeline, and per-stage clocks.

Stages, in order, as ``adtarget.engine._run.run`` chains them: ``read`` (Parquet -> Arrow table with
dictionary-encoded strings, as ``adtarget`` reads it), ``ingest`` (validate + pseudonymise), ``gate``,
``profiles``, ``segments`` (``SegmentCatalog.default``), ``count`` (``count_cells`` with the default
breakdowns) and ``release`` (``release_counts``: bounds check, budget charge of the registered advertiser,
report id, noise, partition selection, thresholds, post-processing, report). The release no longer audits
segments for sensitive proxies (a DP ``audit_proxies`` run, outside the build, screens a catalog). Above
``chunk_events`` events the input is a set of files, each holding every event of its persons, gated on its
own with the same window end, and the exact counts of the chunks are summed (``CellCounts.__add__``), which is
what the Spark engine does.
``dp_count`` (segment sizes only, the input PipelineDP gets) is timed beside them, outside end to end.
"""

from __future__ import annotations

import json
import math
import resource
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from adtarget.engine._partition import release_arrow_memory

STAGES: tuple[str, ...] = ("read", "ingest", "gate", "profiles", "segments", "count", "release")
ADVERTISER = "benchmark"  # registered in every ledger the benchmark charges
BENCH_KEY = bytes(range(32))  # a public benchmark key: the synthetic ids are not personal data
PERSON_OFFSET = 10**11  # chunk i's account ids are shifted by i * PERSON_OFFSET, so chunks share no person
EPSILON, DELTA, MAX_SEGMENTS, MIN_SIZE = 1.0, 1e-6, 5, 50


# --- memory -------------------------------------------------------------------------------------------------
def _status_mb(field_name: str) -> float | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def rss_mb() -> float:
    """Current resident set size in MiB (``VmRSS``; ``ru_maxrss`` where /proc is missing)."""
    return _status_mb("VmRSS") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss_mb() -> float:
    """RSS high-water mark in MiB since the last :func:`reset_peak` (``VmHWM``, which ``ru_maxrss`` reads)."""
    return _status_mb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> None:
    """Reset the kernel's RSS high-water mark to the current RSS (Linux ``clear_refs`` 5; no-op elsewhere)."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass


@dataclass
class StageClock:
    """Wall and CPU seconds and peak RSS per stage, summed (seconds) or maxed (RSS) over chunks.

    CPU seconds (``time.process_time``, all threads of this process) are less sensitive than wall time to
    other processes competing for the cores, so they are reported beside it.
    """

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    cpu_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    peak_mb: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def time(self, stage: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)``, add its wall time to ``stage`` and record its RSS high-water mark."""
        reset_peak()
        start, cpu = time.perf_counter(), time.process_time()
        out = fn(*args, **kwargs)
        self.seconds[stage] += time.perf_counter() - start
        self.cpu_seconds[stage] += time.process_time() - cpu
        self.peak_mb[stage] = max(self.peak_mb[stage], peak_rss_mb())
        return out


# --- input files --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Chunk:
    """One Parquet file of events holding every event of its persons, and its consent records."""

    events: str
    consent: str
    n_events: int
    end: int


def chunk_sizes(n_events: int, chunk_events: int) -> list[int]:
    """Split ``n_events`` into ``ceil(n / chunk)`` near-equal chunk sizes."""
    parts = max(1, math.ceil(n_events / chunk_events))
    base, extra = divmod(n_events, parts)
    return [base + (i < extra) for i in range(parts)]


def prepare(n_events: int, chunk_events: int, data_dir: Path) -> list[Chunk]:
    """Write (or reuse) the synthetic input of one size: events and consent Parquet files per chunk."""
    directory = Path(data_dir) / f"events-{n_events}-chunk-{chunk_events}"
    manifest = directory / "manifest.json"
    if manifest.exists():
        return [Chunk(**c) for c in json.loads(manifest.read_text())]
    directory.mkdir(parents=True, exist_ok=True)
    chunks = [_write_chunk(i, n, directory) for i, n in enumerate(chunk_sizes(n_events, chunk_events))]
    manifest.write_text(json.dumps([c.__dict__ for c in chunks]))
    return chunks


def _write_chunk(index: int, n_events: int, directory: Path) -> Chunk:
    from adtarget.synth import SyntheticConfig, generate, write_consent, write_events

    data = generate(SyntheticConfig(n_events=n_events, seed=index))
    if index:
        offset = np.int64(index * PERSON_OFFSET)
        data = replace(data, events={**data.events, "person_id": data.events["person_id"] + offset},
                       consent={**data.consent, "person_id": data.consent["person_id"] + offset})
    events = write_events(data, directory / f"events-{index:03d}.parquet")
    consent = write_consent(data, directory / f"consent-{index:03d}.parquet")
    return Chunk(str(events), str(consent), n_events, int(data.config.end))


def read_events(path: str) -> Any:
    """Read an events Parquet file as ``adtarget`` does: string columns dictionary-encoded."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    strings = [f.name for f in pq.read_schema(path) if pa.types.is_string(f.type)]
    return pq.read_table(path, read_dictionary=strings)


def load_snapshot(path: str, pseudonymizer: Any, as_of: int) -> Any:
    """ConsentSnapshot of a synthetic consent file (one record per person), pseudonymised and sorted."""
    import pyarrow.parquet as pq

    from adtarget.consent import ConsentSnapshot

    table = pq.read_table(path)

    def column(name: str, fill: Any = None) -> np.ndarray:
        values = table.column(name)
        return (values.fill_null(fill) if fill is not None else values).to_numpy(zero_copy_only=False)

    persons = pseudonymizer.pseudonymize(column("person_id"))
    order = np.argsort(persons)
    return ConsentSnapshot(
        as_of=int(as_of), persons=persons[order], birth_year=column("birth_year", 0).astype(np.int16)[order],
        opted_in=(column("ads_personalization") == "opt_in")[order],
        cross_service=column("cross_service").astype(bool)[order], deleted=column("deleted").astype(bool)[order],
        terminated=column("terminated").astype(bool)[order],
        location_deleted=column("location_deleted").astype(bool)[order],
        policy_version=column("policy_version").astype(str)[order],
        jurisdiction=column("jurisdiction", "").astype(str)[order])


# --- the pipeline -------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Setup:
    """What every chunk of a build shares: key, taxonomy, services, segment catalog and release specs."""

    pseudonymizer: Any
    safe: Any
    services: Any
    catalog: Any
    spec: Any
    count_spec: Any


def make_setup() -> Setup:
    """The benchmark's build: IAB 2.2 default profile, every safe tier-1/2 node a top-5 segment, ε=1."""
    from adtarget.events._pseudonym import Pseudonymizer
    from adtarget.reference._sensitivity import SafeTaxonomy, SensitivityProfile
    from adtarget.reference._services import ServiceRegistry
    from adtarget.reference._taxonomy import Taxonomy
    from adtarget.reports._spec import ReleaseSpec
    from adtarget.segments._rules import SegmentCatalog

    safe = SafeTaxonomy(Taxonomy.default(), SensitivityProfile.named("default"))
    catalog = SegmentCatalog.default(safe)
    ids = tuple(s.segment_id for s in catalog.segments)
    common = {"advertiser": ADVERTISER, "segment_ids": ids, "epsilon": EPSILON, "salt": "benchmark",
              "max_segments_per_person": MAX_SEGMENTS, "min_reported_size": MIN_SIZE}
    return Setup(Pseudonymizer(BENCH_KEY), safe, ServiceRegistry.synthetic(), catalog,
                 ReleaseSpec(delta=DELTA, **common), ReleaseSpec(breakdowns=(), **common))


@dataclass(frozen=True, eq=False)
class ChunkRun:
    """Exact counts of one chunk, and what the peers and the memory ratio need from it."""

    cells: Any
    sizes: Any
    eligible: Any
    assignments: Any
    arrow_bytes: int
    batch_bytes: int


def run_chunk(chunk: Chunk, snapshot: Any, setup: Setup, clock: StageClock) -> ChunkRun:
    """Time read, ingest, gate, profiles, segments and count on one chunk (plus ``dp_count`` aside)."""
    from adtarget import apply_gate, build_profiles, ingest
    from adtarget.reports import count_cells

    table = clock.time("read", read_events, chunk.events)
    arrow_bytes = int(table.nbytes)
    batch = clock.time("ingest", ingest, table, pseudonymizer=setup.pseudonymizer, taxonomy=setup.safe.taxonomy,
                       services=setup.services, now=chunk.end).batch
    del table
    clock.time("ingest", release_arrow_memory)  # what the engine kernel does once the table is consumed
    batch_bytes = sum(getattr(batch, c).nbytes for c in ("person", "service", "ts", "category", "kind", "region",
                                                          "weight"))
    eligible = clock.time("gate", apply_gate, batch, snapshot, setup.safe, window_end=chunk.end)
    del batch
    profiles = clock.time("profiles", build_profiles, eligible)
    assignments = clock.time("segments", setup.catalog.assign, profiles)
    del profiles
    cells = clock.time("count", count_cells, eligible, assignments, setup.spec)
    sizes = clock.time("dp_count", count_cells, eligible, assignments, setup.count_spec)
    return ChunkRun(cells, sizes, eligible, assignments, arrow_bytes, batch_bytes)


def release_report(cells: Any, setup: Setup, ledger: Any, out_dir: str | Path | None = None) -> dict[str, int]:
    """``release_counts`` on the summed exact counts (which carry the segments, policy and data window),
    charging ``ledger`` (as ``adtarget.run``), then ``report.json`` written into ``out_dir`` (as
    ``RunResult.write`` does) when it is given."""
    from adtarget.reports import release_counts

    result = release_counts(cells, setup.spec, ledger=ledger)
    if out_dir is not None:
        result.report.write(Path(out_dir) / "report.json")
    return {"segments": len(result.report.segments), "suppressed": int(result.report.suppressed_segments)}


def new_ledger(directory: str) -> Any:
    """A fresh SQLite budget ledger with the benchmark's advertiser registered (a repeated identical query
    would return the stored report, unspent)."""
    from adtarget import BudgetLedger

    return BudgetLedger(Path(directory) / f"budget-{time.perf_counter_ns()}.sqlite", advertisers=[ADVERTISER])


def dp_sizes(sizes: Any, spec: Any) -> np.ndarray:
    """Noisy segment sizes: the DP count stage on (person, segment) pairs that PipelineDP is compared with."""
    from adtarget.budget._spec import PrivacyBudget
    from adtarget.reports._noise import CountNoise

    noise = CountNoise.for_counts(spec.mechanism, PrivacyBudget(spec.epsilon),
                                  max_cells_per_person=spec.effective_segments_per_person)
    return np.asarray(noise.add_noise(sizes.sizes))
