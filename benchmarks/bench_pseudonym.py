"""Throughput of Pseudonymizer.pseudonymize_with_mask, printed as JSON.

Usage: ``python benchmarks/bench_pseudonym.py [--n 1e7] [--distinct 5e5] [--repeats 3] [--strings]
[--algorithms blake2b siphash24]``.

Cases: ``n`` int64 ids drawn from ``distinct`` values, and ``n`` distinct int64 ids (shuffled); with
``--strings``, also ``n`` string ids (object array, as read from CSV/Arrow) with ``distinct`` values.
For each case and algorithm: the median over ``--repeats`` runs of wall and CPU seconds, ids/s and
distinct ids/s, beside the 1-minute load average (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from typing import Any

import numpy as np

from adtarget.events._pseudonym import ALGORITHMS, Pseudonymizer


def _cases(n: int, distinct: int, strings: bool) -> list[tuple[str, np.ndarray, int]]:
    rng = np.random.default_rng(0)
    values = rng.permutation(np.arange(10**11, 10**11 + distinct, dtype=np.int64))
    repeated = values[rng.integers(0, distinct, n)]
    all_distinct = rng.permutation(np.arange(10**11, 10**11 + n, dtype=np.int64))
    cases = [(f"int64, {n} ids, {distinct} distinct", repeated, distinct),
             (f"int64, {n} distinct ids", all_distinct, n)]
    if strings:
        words = np.array([f"user-{v}" for v in values.tolist()], dtype=object)
        cases.append((f"str, {n} ids, {distinct} distinct", words[rng.integers(0, distinct, n)], distinct))
    return cases


def bench_case(name: str, ids: np.ndarray, distinct: int, algorithm: str, repeats: int) -> dict[str, Any]:
    pz = Pseudonymizer(bytes(range(32)), algorithm=algorithm)
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        pseudonyms, valid = pz.pseudonymize_with_mask(ids)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        assert valid.all() and pseudonyms.size == ids.size
    wall = statistics.median(walls)
    return {"case": name, "algorithm": algorithm, "ids": int(ids.size), "distinct": distinct, "repeats": repeats,
            "wall_s_median": round(wall, 3), "cpu_s_median": round(statistics.median(cpus), 3),
            "wall_s_all": [round(w, 3) for w in walls], "ids_per_s": round(ids.size / wall),
            "distinct_per_s": round(distinct / wall), "load_avg_1m": round(os.getloadavg()[0], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=float, default=1e7)
    parser.add_argument("--distinct", type=float, default=5e5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--strings", action="store_true", help="also time string ids")
    parser.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS), choices=ALGORITHMS)
    args = parser.parse_args()
    Pseudonymizer(bytes(range(32))).pseudonymize(np.arange(1000))  # warm up: pandas import
    results = [bench_case(name, ids, distinct, algorithm, args.repeats)
               for name, ids, distinct in _cases(int(args.n), int(args.distinct), args.strings)
               for algorithm in args.algorithms]
    print(json.dumps({"benchmark": "pseudonymize", "python": platform.python_version(),
                      "machine": platform.machine(), "cpus": os.cpu_count(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
