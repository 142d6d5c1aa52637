"""Interest profiles, rule-based segment assignment and DP k-means at scale, printed as JSON.

Usage: ``python benchmarks/bench_segments.py [--events 1e7] [--persons 5e5] [--repeats 3] [--clusters 8]``.

Setup (not timed): ``adtarget.synth`` events with latent groups -> ``ingest`` -> a consent snapshot of the
synthetic consent records -> ``apply_gate``. Timed, median of ``--repeats``:

- ``profiles``: ``build_profiles`` (IAB 2.2 safe nodes, 30-day half-life, 1000 events per person);
- ``segments``: ``SegmentCatalog.default(...).assign(profiles)`` (every safe tier-1/tier-2 node, top 5);
- ``dp_kmeans``: ``DPKMeansSegmenter`` (ε = 1) on the tier-1, L2-normalised profile matrix, next to
  diffprivlib's own ``KMeans`` with the same ε and box on the same (clipped) matrix, and scikit-learn's
  non-private ``KMeans``; each with the ARI of its labels against the latent groups.

Wall and CPU seconds are both reported (CPU is less sensitive to other load on the machine; the load average at
the start is printed). Peak memory: ``tracemalloc`` peak of one extra run of each stage (numpy allocations
included), and the process's ``ru_maxrss`` at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import time
import tracemalloc
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

KEY = bytes(range(32))


def snapshot_of(consent: dict[str, np.ndarray], pseudonymizer: Any, as_of: int) -> Any:
    """ConsentSnapshot of synthetic consent records (what ConsentLedger.snapshot would hold)."""
    from adtarget.consent import ConsentSnapshot

    persons = pseudonymizer.pseudonymize(consent["person_id"])
    order = np.argsort(persons)
    birth = np.nan_to_num(consent["birth_year"][order], nan=0.0).astype(np.int16)
    return ConsentSnapshot(
        as_of=as_of, persons=persons[order], birth_year=birth,
        opted_in=consent["ads_personalization"][order] == "opt_in",
        cross_service=consent["cross_service"][order].astype(bool),
        deleted=consent["deleted"][order].astype(bool), terminated=consent["terminated"][order].astype(bool),
        location_deleted=consent["location_deleted"][order].astype(bool),
        policy_version=consent["policy_version"][order].astype(str),
        jurisdiction=consent["jurisdiction"][order].astype(str))


def setup(n_events: int, n_persons: int) -> tuple[Any, np.ndarray]:
    """EligibleEvents of a synthetic population and the latent group of each eligible person."""
    from adtarget import synth
    from adtarget.events._ingest import ingest
    from adtarget.events._pseudonym import Pseudonymizer
    from adtarget.gate._gate import apply_gate
    from adtarget.reference._sensitivity import SafeTaxonomy

    data = synth.generate(synth.SyntheticConfig(n_events=n_events, n_persons=n_persons, seed=0))
    pseudonymizer = Pseudonymizer(KEY)
    end = data.config.end
    batch = ingest(data.events, pseudonymizer=pseudonymizer, now=end).batch
    eligible = apply_gate(batch, snapshot_of(data.consent, pseudonymizer, end), SafeTaxonomy.default(),
                          window_end=end)
    truth = pseudonymizer.pseudonymize(data.truth.persons)
    order = np.argsort(truth)
    group = np.asarray(data.truth.group)[order[np.searchsorted(truth[order], eligible.persons)]]
    return eligible, group


def timed(fn: Callable[..., Any], *args: Any, repeats: int) -> tuple[Any, dict[str, Any]]:
    """Result of the last call, median wall seconds over ``repeats``, and the tracemalloc peak of one more."""
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        out = fn(*args)
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    del out
    tracemalloc.start()
    out = fn(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, {"seconds_median": round(statistics.median(walls), 3), "seconds_all": [round(w, 3) for w in walls],
                 "cpu_seconds_median": round(statistics.median(cpus), 3),
                 "tracemalloc_peak_mb": round(peak / 2**20, 1)}


def bench_rule_based(eligible: Any, repeats: int) -> tuple[Any, dict[str, Any]]:
    from adtarget.profiles._profiles import build_profiles
    from adtarget.segments._rules import SegmentCatalog

    profiles, prof = timed(build_profiles, eligible, repeats=repeats)
    catalog = SegmentCatalog.default(eligible.safe_taxonomy)
    assignments, seg = timed(catalog.assign, profiles, repeats=repeats)
    both = prof["seconds_median"] + seg["seconds_median"]
    prof["events_per_s"] = round(eligible.n_events / prof["seconds_median"])
    prof["events_per_cpu_s"] = round(eligible.n_events / prof["cpu_seconds_median"])
    seg["persons_per_s"] = round(eligible.n_persons / seg["seconds_median"])
    seg["persons_per_cpu_s"] = round(eligible.n_persons / seg["cpu_seconds_median"])
    return assignments, {"profiles": prof, "segments": {**seg, "n_segments": len(catalog),
                                                         "memberships": int(assignments.membership.nnz)},
                         "profiles_plus_segments_events_per_s": round(eligible.n_events / both)}


def bench_kmeans(eligible: Any, group: np.ndarray, n_clusters: int, repeats: int) -> dict[str, Any]:
    from diffprivlib.accountant import BudgetAccountant
    from diffprivlib.models import KMeans as DiffprivlibKMeans
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    from adtarget.budget import InMemoryAccountant
    from adtarget.profiles._profiles import build_profiles
    from adtarget.segments._dp_kmeans import DPKMeansSegmenter, clip_rows

    profiles = build_profiles(eligible, level="tier1", norm="l2")
    dense = clip_rows(profiles.matrix.toarray(), 1.0)
    box = (np.zeros(dense.shape[1]), np.ones(dense.shape[1]))
    runs = {
        "adtarget_DPKMeansSegmenter": lambda: DPKMeansSegmenter(n_clusters, epsilon=1.0,
                                                                 ledger=InMemoryAccountant()).fit(profiles).labels_,
        "diffprivlib_KMeans": lambda: DiffprivlibKMeans(n_clusters, epsilon=1.0, bounds=box,
                                                        accountant=BudgetAccountant()).fit(dense).labels_,
        "sklearn_KMeans_non_private": lambda: KMeans(n_clusters, n_init=1).fit(dense).labels_,
    }
    out: dict[str, Any] = {"matrix": list(dense.shape), "epsilon": 1.0, "n_clusters": n_clusters}
    for name, run in runs.items():
        walls, cpus, aris = [], [], []
        for _ in range(repeats):
            start, cpu = time.perf_counter(), time.process_time()
            labels = run()
            walls.append(time.perf_counter() - start)
            cpus.append(time.process_time() - cpu)
            aris.append(round(adjusted_rand_score(group, labels), 3))
        out[name] = {"seconds_median": round(statistics.median(walls), 3),
                     "cpu_seconds_median": round(statistics.median(cpus), 3), "ari_latent_groups": aris}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=float, default=1e7)
    parser.add_argument("--persons", type=float, default=5e5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clusters", type=int, default=8)
    args = parser.parse_args()
    warnings.simplefilter("error")
    start = time.perf_counter()
    eligible, group = setup(int(args.events), int(args.persons))
    result: dict[str, Any] = {
        "benchmark": "segments", "python": platform.python_version(), "machine": platform.machine(),
        "setup_s": round(time.perf_counter() - start, 1), "eligible_events": eligible.n_events,
        "eligible_persons": eligible.n_persons, "input_events": eligible.input_events,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    assignments, rule = bench_rule_based(eligible, args.repeats)
    del assignments
    result.update(rule)
    result["dp_kmeans"] = bench_kmeans(eligible, group, args.clusters, args.repeats)
    result["ru_maxrss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
