"""Peers run on the identical task in the same process: PipelineDP, pandas floors, diffprivlib KMeans, Spark.

* PipelineDP's ``LocalBackend``: user-level COUNT per partition (partition = segment id, public partitions, as
  rule-based segments are data-independent), ``max_partitions_contributed = max_segments_per_person``,
  ``max_contributions_per_partition = 1``, the same ε; fed the (pseudonym, segment) pairs our DP count stage
  counts. Building the Python list of pairs is not timed (PipelineDP's best case).
* pandas, the non-private floors: distinct persons per segment (each event counts for its safe tier-1 and
  tier-2 ancestors, which are the default catalog's segments) — from the eligible (person, category) arrays,
  and end to end from the in-memory events table. No pseudonymisation, gate, top-k rule, bounding or noise.
* diffprivlib ``KMeans`` against ``DPKMeansSegmenter`` on the same tier-1, L2-normalised profile matrix.
* Spark ``local[2]``: ``adtarget.engine._run.run`` with the ``SparkEngine`` on the Parquet file, beside the same
  call with the default ``LocalEngine`` (``pipeline_run``); the Spark session starts during the warm-up.
"""

from __future__ import annotations

import importlib
import importlib.util
import statistics
import time
from typing import Any

import numpy as np

N_CLUSTERS = 8


# --- PipelineDP ---------------------------------------------------------------------------------------------
def segment_pairs(assignments: Any) -> list[tuple[int, str]]:
    """The (pseudonym, segment id) memberships of ``assignments`` as Python tuples (PipelineDP's input)."""
    coo = assignments.membership.tocoo()
    ok = coo.data.astype(bool)
    persons = np.asarray(assignments.persons)[coo.row[ok]].tolist()
    ids = np.asarray([s.segment_id for s in assignments.segments], dtype=object)[coo.col[ok]].tolist()
    return list(zip(persons, ids))


def pipelinedp_count(pairs: list[tuple[int, str]], partitions: list[str], *, epsilon: float,
                     max_partitions: int) -> dict[str, float]:
    """DP COUNT per segment with PipelineDP's LocalBackend (Laplace, public partitions)."""
    import pipeline_dp

    accountant = pipeline_dp.NaiveBudgetAccountant(total_epsilon=epsilon, total_delta=0.0)
    engine = pipeline_dp.DPEngine(accountant, pipeline_dp.LocalBackend())
    params = pipeline_dp.AggregateParams(
        metrics=[pipeline_dp.Metrics.COUNT], noise_kind=pipeline_dp.NoiseKind.LAPLACE,
        max_partitions_contributed=max_partitions, max_contributions_per_partition=1)
    extractors = pipeline_dp.DataExtractors(privacy_id_extractor=lambda row: row[0],
                                            partition_extractor=lambda row: row[1],
                                            value_extractor=lambda row: 0)
    result = engine.aggregate(pairs, params, extractors, public_partitions=partitions)
    accountant.compute_budgets()
    return {key: float(metrics.count) for key, metrics in result}


# --- pandas floors ------------------------------------------------------------------------------------------
def segment_lookup(safe: Any, segment_nodes: np.ndarray) -> np.ndarray:
    """(2, n_nodes) int64: the segment index of each node's tier-1 and tier-2 ancestor (-1: none or unsafe)."""
    taxonomy = safe.taxonomy
    nodes = np.arange(taxonomy.n_nodes)
    seg_of = np.full(taxonomy.n_nodes, -1, dtype=np.int64)
    seg_of[segment_nodes] = np.arange(segment_nodes.size)
    out = np.full((2, taxonomy.n_nodes), -1, dtype=np.int64)
    for row, tier in enumerate((1, 2)):
        up = taxonomy.rollup(nodes, tier)
        ok = np.asarray(safe.safe_mask) & (taxonomy.tier[up] == tier)
        out[row, ok] = seg_of[up[ok]]
    return out


def _distinct_per_segment(person: Any, segments: np.ndarray) -> Any:
    import pandas as pd

    frame = pd.DataFrame({"person": np.concatenate([person, person]), "segment": segments.reshape(-1)})
    return frame[frame["segment"] >= 0].groupby("segment")["person"].nunique()


def pandas_segment_floor(eligible: Any, lookup: np.ndarray) -> Any:
    """Distinct persons per segment from the eligible (person, category) arrays, with pandas."""
    return _distinct_per_segment(eligible.person, lookup[:, eligible.category])


def pandas_e2e_floor(frame: Any, taxonomy: Any, lookup: np.ndarray) -> Any:
    """Distinct raw account ids per segment from an in-memory events DataFrame (category as Categorical)."""
    categories = frame["category"].cat.categories.to_numpy(dtype=str)
    node = np.asarray(taxonomy.index_of(categories), dtype=np.int64)
    by_code = np.where(node >= 0, lookup[:, np.maximum(node, 0)], -1)
    return _distinct_per_segment(frame["person_id"].to_numpy(), by_code[:, frame["category"].cat.codes.to_numpy()])


# --- k-means ------------------------------------------------------------------------------------------------
def kmeans_profiles(eligible: Any) -> Any:
    """The matrix both k-means fit: tier-1 interest profiles, rows L2-normalised (so inside the unit box)."""
    from adtarget.profiles._profiles import build_profiles

    return build_profiles(eligible, level="tier1", norm="l2")


def diffprivlib_kmeans(profiles: Any, *, epsilon: float) -> np.ndarray:
    """diffprivlib's KMeans on the densified profile matrix, bounds [0, 1]^d (rows have L2 norm <= 1)."""
    from diffprivlib.accountant import BudgetAccountant
    from diffprivlib.models import KMeans

    dense = profiles.matrix.toarray()
    d = dense.shape[1]
    model = KMeans(n_clusters=N_CLUSTERS, epsilon=epsilon, bounds=(np.zeros(d), np.ones(d)),
                   accountant=BudgetAccountant())
    return np.asarray(model.fit(dense).cluster_centers_)


def adtarget_dp_kmeans(profiles: Any, *, epsilon: float) -> np.ndarray:
    """``DPKMeansSegmenter`` on the same profiles (clips rows to L2 norm 1, charges an in-memory ledger)."""
    from adtarget.budget import InMemoryAccountant
    from adtarget.segments import DPKMeansSegmenter

    model = DPKMeansSegmenter(N_CLUSTERS, epsilon=epsilon, bounds_norm=1.0, ledger=InMemoryAccountant())
    return np.asarray(model.fit(profiles).cluster_centers_)


# --- Spark --------------------------------------------------------------------------------------------------
def spark_engine() -> Any:
    """adtarget's Spark engine class if it exists yet, else ``None``."""
    for module_name in ("adtarget.engine._spark", "adtarget.engine"):
        if importlib.util.find_spec(module_name) is None:
            continue
        module = importlib.import_module(module_name)
        engine = getattr(module, "SparkEngine", None)
        if engine is not None:
            return engine
    return None


_SPARK: dict[str, Any] = {}  # one SparkEngine (one session) per process, started during the warm-up


def stop_spark() -> None:
    """Stop the Spark session the Spark peer created, if any."""
    engine = _SPARK.pop("engine", None)
    if engine is not None:
        engine.stop()


# --- running them -------------------------------------------------------------------------------------------
def timed(repeats: int, fn: Any, *args: Any, budget_s: float = 30.0, **kwargs: Any) -> tuple[dict[str, Any], Any]:
    """Median wall and CPU seconds over up to ``repeats`` calls (fewer once ``budget_s`` is spent), last output.

    CPU seconds are this process's only: a Spark run's work happens in the JVM and its Python workers.
    """
    seconds: list[float] = []
    cpu: list[float] = []
    out = None
    while len(seconds) < max(repeats, 1) and (not seconds or sum(seconds) < budget_s):
        start, cpu_start = time.perf_counter(), time.process_time()
        out = fn(*args, **kwargs)
        seconds.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
    return {"seconds": round(statistics.median(seconds), 4), "all": [round(s, 4) for s in seconds],
            "cpu_seconds": round(statistics.median(cpu), 4)}, out


def run_peers(job: dict[str, Any], setup: Any, last: Any, chunk: Any, snapshot: Any) -> dict[str, Any]:
    """Every requested peer on the data of the last repetition (one chunk: the whole input).

    A peer that raises is recorded as ``{"error": ...}`` and the others still run.
    """
    from run import log

    log(f"{job['n_events']:.0e}: peers {job['peers']}")
    repeats, peers = job["repeats"], job["peers"]
    runs: dict[str, Any] = {}
    if "pipelinedp" in peers:
        runs["pipelinedp"] = (lambda: _pipelinedp(setup, last, repeats)) if job["pipelinedp"] else \
            "above --pipelinedp-max (PipelineDP's LocalBackend is slow)"
    others = {"pandas": lambda: _pandas(setup, last, chunk, repeats), "diffprivlib": lambda: _kmeans(last, repeats),
              "spark": lambda: _spark(setup, chunk, snapshot, repeats),
              "pipeline_run": lambda: _pipeline_run(setup, chunk, snapshot, repeats),
              "pipeline_run_in_memory": lambda: _pipeline_run_in_memory(setup, chunk, snapshot, repeats)}
    for name, fn in others.items():
        if name in peers or name.startswith("pipeline_run"):
            runs[name] = fn if job["other_peers"] else "above --peers-max"
    if not job["spark"] and "spark" in runs:
        runs["spark"] = "outside --spark-sizes (session and job overheads dominate small inputs)"
    return {name: _guarded(name, fn) for name, fn in runs.items()}


def _guarded(name: str, fn: Any) -> dict[str, Any]:
    if isinstance(fn, str):
        return {"skipped": fn}
    try:
        return dict(fn())
    except Exception as exc:  # a broken peer must not lose the other measurements
        from run import log

        log(f"peer {name} failed: {type(exc).__name__}: {str(exc)[:300]}")
        return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"}


def _pipelinedp(setup: Any, last: Any, repeats: int) -> dict[str, Any]:
    from _stages import EPSILON

    pairs = segment_pairs(last.assignments)
    ids = list(setup.count_spec.segment_ids)
    stats, counts = timed(repeats, pipelinedp_count, pairs, ids, epsilon=EPSILON,
                          max_partitions=setup.count_spec.max_segments_per_person)
    return {**stats, "pairs": len(pairs), "partitions": len(counts),
            "noisy_total": round(sum(counts.values())), "adtarget_exact_total": int(last.sizes.sizes.sum())}


def _segment_nodes(setup: Any) -> np.ndarray:
    ids = np.asarray([d.node_id for d in setup.catalog.definitions], dtype=str)
    return np.asarray(setup.safe.taxonomy.index_of(ids), dtype=np.int64)


def _pandas(setup: Any, last: Any, chunk: Any, repeats: int) -> dict[str, Any]:
    from _stages import read_events

    lookup = segment_lookup(setup.safe, _segment_nodes(setup))
    segment_floor, by_segment = timed(repeats, pandas_segment_floor, last.eligible, lookup)
    frame = read_events(chunk.events).to_pandas()
    e2e_floor, _ = timed(repeats, pandas_e2e_floor, frame, setup.safe.taxonomy, lookup)
    return {"segment_floor": segment_floor, "e2e_floor": e2e_floor, "segments": int(by_segment.size),
            "pairs": int(by_segment.sum())}


def _kmeans(last: Any, repeats: int) -> dict[str, Any]:
    from _stages import EPSILON

    profiles = kmeans_profiles(last.eligible)
    theirs, _ = timed(repeats, diffprivlib_kmeans, profiles, epsilon=EPSILON)
    ours, _ = timed(repeats, adtarget_dp_kmeans, profiles, epsilon=EPSILON)
    return {"diffprivlib": theirs, "adtarget": ours, "shape": list(profiles.matrix.shape),
            "n_clusters": N_CLUSTERS}


def pipeline_run(path: Any, setup: Any, snapshot: Any, end: int, engine: Any = None) -> Any:
    """``adtarget.engine._run.run`` in one call on the Parquet file (or in-memory table), charging a fresh
    in-memory budget ledger."""
    from _stages import ADVERTISER

    from adtarget import BudgetLedger, RunSettings, run

    settings = RunSettings(advertiser=ADVERTISER, epsilon=setup.spec.epsilon, delta=setup.spec.delta,
                           max_segments_per_person=setup.spec.max_segments_per_person,
                           min_reported_size=setup.spec.min_reported_size)
    budget = BudgetLedger(":memory:", advertisers=[ADVERTISER])
    return run(path, snapshot, pseudonymizer=setup.pseudonymizer, budget=budget, settings=settings,
               segmenter=setup.catalog, engine=engine, safe_taxonomy=setup.safe, services=setup.services,
               window_end=end)


def _pipeline_run_in_memory(setup: Any, chunk: Any, snapshot: Any, repeats: int) -> dict[str, Any]:
    """The issue's end to end exactly: ``adtarget.engine._run.run`` in one call on the events already in memory
    (the Arrow table, read before the clock starts), then ``report.json`` written."""
    import tempfile
    from pathlib import Path

    from _stages import read_events

    table = read_events(chunk.events)
    with tempfile.TemporaryDirectory() as out:
        def run_and_write() -> Any:
            result = pipeline_run(table, setup, snapshot, chunk.end)
            result.report.write(Path(out) / "report.json")
            return result

        stats, result = timed(repeats, run_and_write)
    return {**stats, "input": "Arrow table in memory; report.json written",
            "released_segments": len(result.report.segments)}


def _spark(setup: Any, chunk: Any, snapshot: Any, repeats: int) -> dict[str, Any]:
    engine_cls = spark_engine()
    if engine_cls is None:
        return {"skipped": "no SparkEngine in adtarget.engine yet"}
    if "engine" not in _SPARK:
        _SPARK["engine"] = engine_cls(master="local[2]")
    engine = _SPARK["engine"]
    stats, _ = timed(repeats, pipeline_run, chunk.events, setup, snapshot, chunk.end, engine)
    return {**stats, "master": "local[2]", "input": "Parquet path (read included)",
            "kernel_s": engine.last_run.get("kernel_s"), "partitions": engine.last_run.get("nonempty_partitions")}


def _pipeline_run(setup: Any, chunk: Any, snapshot: Any, repeats: int) -> dict[str, Any]:
    """``adtarget.engine._run.run`` with the LocalEngine: the one-call path, Parquet path to report."""
    stats, result = timed(repeats, pipeline_run, chunk.events, setup, snapshot, chunk.end)
    return {**stats, "released_segments": len(result.report.segments)}
