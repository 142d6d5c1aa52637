"""The Spark engine (``local[2]``) beside the numpy LocalEngine on the same Parquet file, printed as JSON.

Usage: ``python benchmarks/bench_spark.py [--sizes 1e6 1e7] [--repeats 3] [--partitions 4]``.

For each size: synthetic events (adtarget.synth) written once to Parquet, consent imported into a ledger, a
build over the default segment catalog. Timed: the LocalEngine (median of ``--repeats`` at sizes up to 1e6,
one run above), the SparkEngine (one cold run — Python workers start and import adtarget — then the median
of warm runs), and where Spark's overhead goes: JVM start, a scan of all columns, the same after the engine's
shuffle, an identity ``mapInArrow`` pass after that shuffle (Arrow transfer + Python workers, no kernel), the
same with ``mapInPandas``, and the kernel's own seconds inside the workers. Spark's result is checked equal to
the LocalEngine's (row accounting and segment sizes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

KEY = bytes(range(32))


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def _median_time(fn: Callable[[], Any], repeats: int) -> tuple[Any, list[float]]:
    out, times = None, []
    for _ in range(repeats):
        out, seconds = _timed(fn)
        times.append(round(seconds, 3))
    return out, times


def build_case(n_events: int, tmp: Path) -> tuple[Path, Any, int]:
    """Events Parquet, and a BuildContext over a consent-ledger snapshot and the default segment catalog."""
    from adtarget.consent import ConsentLedger
    from adtarget.engine._context import BuildContext
    from adtarget.events._pseudonym import Pseudonymizer
    from adtarget.reference._sensitivity import SafeTaxonomy, SensitivityProfile
    from adtarget.reference._services import ServiceRegistry
    from adtarget.reference._taxonomy import Taxonomy
    from adtarget.reports._spec import ReleaseSpec
    from adtarget.segments._rules import SegmentCatalog
    from adtarget.synth import SyntheticConfig, generate, write_consent, write_events

    config = SyntheticConfig(n_events=n_events, seed=1)
    data = generate(config)
    events = write_events(data, tmp / f"events-{n_events}.parquet")
    pseudonymizer = Pseudonymizer(KEY)
    with ConsentLedger(tmp / f"consent-{n_events}.sqlite", pseudonymizer) as ledger:
        ledger.import_parquet(write_consent(data, tmp / f"consent-{n_events}.parquet"), now=config.end)
        snapshot = ledger.snapshot(as_of=config.end)
    safe = SafeTaxonomy(Taxonomy.default(), SensitivityProfile.named("default"))
    catalog = SegmentCatalog.default(safe)
    spec = ReleaseSpec(advertiser="bench", segment_ids=[s.segment_id for s in catalog.segments][:100],
                       epsilon=1.0, delta=1e-6)
    context = BuildContext(pseudonymizer=pseudonymizer, snapshot=snapshot, safe_taxonomy=safe,
                           services=ServiceRegistry.synthetic(), segmenter=catalog, spec=spec,
                           now=float(config.end + 3_600))
    return events, context, data.n_persons


def _rows_in_arrow(batches: Iterator[Any]) -> Iterator[Any]:
    """Identity pass: concatenate the partition's Arrow batches (as the engine does), return the row count."""
    import pyarrow as pa

    table = pa.Table.from_batches(list(batches)).combine_chunks()
    yield pa.RecordBatch.from_arrays([pa.array([table.num_rows], type=pa.int64())], names=["n"])


def _rows_in_pandas(frames: Iterator[Any]) -> Iterator[Any]:
    import pandas as pd

    n = sum(len(f) for f in frames)
    yield pd.DataFrame({"n": [n]})


def spark_overhead(session: Any, events: Path, partitions: int) -> dict[str, float]:
    """Seconds of the engine's steps without the kernel, each run once to warm up and then timed.

    ``scan_s``: read every column (a hash of all of them, summed); ``shuffle_s``: the same after the engine's
    ``repartition(n, "person_id")``; ``identity_mapInArrow_s``: that shuffle, then the partitions as Arrow
    batches to Python workers that concatenate them (as the engine does) and return a row count;
    ``identity_mapInPandas_s``: the same through pandas.
    """
    from pyspark.sql import functions as F

    from adtarget.engine._spark_session import quiet_pyspark_warnings

    frame = session.read.parquet(str(events))
    shuffled = frame.repartition(partitions, "person_id")
    digest = F.sum(F.hash(*frame.columns))
    steps = {
        "scan_s": lambda: frame.select(digest).collect(),
        "shuffle_s": lambda: shuffled.select(digest).collect(),
        "identity_mapInArrow_s": lambda: shuffled.mapInArrow(_rows_in_arrow, "n long").collect(),
        "identity_mapInPandas_s": lambda: shuffled.mapInPandas(_rows_in_pandas, "n long").collect(),
    }
    out: dict[str, float] = {}
    with quiet_pyspark_warnings():
        for name, step in steps.items():
            step()
            _, out[name] = _timed(step)
    return {k: round(v, 3) for k, v in out.items()}


def bench_size(session: Any, n_events: int, repeats: int, partitions: int, tmp: Path) -> dict[str, Any]:
    from adtarget.engine._protocol import LocalEngine
    from adtarget.engine._spark import SparkEngine

    (events, context, n_persons), setup_s = _timed(lambda: build_case(n_events, tmp))
    local_repeats = repeats if n_events <= 1_000_000 else 1
    local, local_times = _median_time(lambda: LocalEngine().aggregate(events, context), local_repeats)
    engine = SparkEngine(session, partitions=partitions)
    _, cold_s = _timed(lambda: engine.aggregate(events, context))
    spark, spark_times = _median_time(lambda: engine.aggregate(events, context), local_repeats)
    assert spark.summary() == local.summary() and np.array_equal(spark.cells.sizes, local.cells.sizes)
    local_s, spark_s = statistics.median(local_times), statistics.median(spark_times)
    kernel = engine.last_run["kernel_s"]
    return {
        "n_events": n_events, "n_persons": n_persons, "partitions": partitions, "setup_s": round(setup_s, 1),
        "parquet_mb": round(events.stat().st_size / 2**20, 1),
        "local": {"runs": local_times, "median_s": local_s, "events_per_s": round(n_events / local_s)},
        "spark": {"cold_run_s": round(cold_s, 3), "runs": spark_times, "median_s": spark_s,
                  "events_per_s": round(n_events / spark_s), "kernel_s_per_partition": kernel,
                  "kernel_s_max": max(kernel), "context_mb": round(engine.last_run["context_bytes"] / 2**20, 2)},
        "spark_overhead": spark_overhead(session, events, partitions),
        "spark_over_local": round(spark_s / local_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e6, 1e7])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()
    from adtarget.engine._spark_session import create_session

    load_before = os.getloadavg()
    session, jvm_s = _timed(lambda: create_session("local[2]", "adtarget-bench"))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            results = [bench_size(session, int(n), args.repeats, args.partitions, Path(tmp)) for n in args.sizes]
    finally:
        session.stop()
    print(json.dumps({
        "benchmark": "engine.spark_vs_local", "python": platform.python_version(), "cpus": os.cpu_count(),
        "spark_master": "local[2]", "jvm_start_s": round(jvm_s, 2),
        "load_average_before": [round(x, 1) for x in load_before],
        "load_average_after": [round(x, 1) for x in os.getloadavg()], "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
