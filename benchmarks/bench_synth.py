"""Throughput of adtarget.synth.generate (and of the writers), printed as JSON.

Usage: ``python benchmarks/bench_synth.py [--sizes 1e6 1e7] [--repeats 3] [--write]``.
For each size: the median over ``--repeats`` runs of wall time, CPU time and events per second; with
``--write``, also the time to write the events as Parquet and as CSV (one run, into a temporary directory).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

from adtarget.synth import SyntheticConfig, generate, write_events


def _timed(fn, *args):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def bench_size(n_events: int, repeats: int, write: bool) -> dict:
    """Median generation time over ``repeats`` runs with different seeds (same sizes)."""
    walls, cpus = [], []
    data = None
    for seed in range(repeats):
        data, wall, cpu = _timed(generate, SyntheticConfig(n_events=n_events, seed=seed))
        walls.append(wall)
        cpus.append(cpu)
    wall = statistics.median(walls)
    result = {
        "n_events": n_events, "n_persons": data.n_persons, "repeats": repeats,
        "generate_s_median": round(wall, 3), "generate_cpu_s_median": round(statistics.median(cpus), 3),
        "generate_s_all": [round(w, 3) for w in walls], "events_per_s": round(n_events / wall),
    }
    if write:
        with tempfile.TemporaryDirectory() as tmp:
            for ext in ("parquet", "csv"):
                path, seconds, _ = _timed(write_events, data, Path(tmp) / f"events.{ext}")
                result[f"write_{ext}_s"] = round(seconds, 3)
                result[f"write_{ext}_mb"] = round(path.stat().st_size / 2**20, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e6, 1e7])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="also time write_events (Parquet and CSV)")
    args = parser.parse_args()
    generate(SyntheticConfig(n_events=1_000))  # warm up: taxonomy and sensitivity tables are cached
    results = [bench_size(int(n), args.repeats, args.write) for n in args.sizes]
    print(json.dumps({"benchmark": "synth.generate", "python": platform.python_version(),
                      "machine": platform.machine(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
