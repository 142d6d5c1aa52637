"""adtarget benchmark harness: per-stage throughput, peak memory and peers, at several sizes, in one run.

Usage::

    python benchmarks/run.py [--sizes 1e5,1e6] [--peers pipelinedp,pandas,diffprivlib,spark]
                             [--out benchmarks/results] [--repeats 3] [--chunk-events 1e7] [--profile 1e7]

Each size is prepared (synthetic events and consent as Parquet, in chunks of whole persons above
``--chunk-events``) in one subprocess and measured in a fresh one, so its peak RSS is its own. Writes
``latest.json``, ``latest.md`` and ``throughput.png`` to ``--out``; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

PEERS = ("pipelinedp", "pandas", "diffprivlib", "spark")
WARMUP_EVENTS = 20_000


def _sizes(text: str) -> list[int]:
    return [int(float(s)) for s in text.split(",") if s.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=_sizes, default=[100_000, 1_000_000], help="events per run, e.g. 1e5,1e6,1e7")
    p.add_argument("--peers", default=",".join(PEERS), help=f"subset of {','.join(PEERS)} ('' for none)")
    p.add_argument("--out", type=Path, default=HERE / "results")
    p.add_argument("--repeats", type=int, default=3, help="repetitions per size (median reported)")
    p.add_argument("--single-run-from", type=float, default=1e8, help="sizes >= this run once")
    p.add_argument("--chunk-events", type=float, default=1e7, help="above this, stream chunks of whole persons")
    p.add_argument("--pipelinedp-max", type=float, default=1e6, help="largest size PipelineDP runs at")
    p.add_argument("--peers-max", type=float, default=1e7, help="largest size the other peers run at")
    p.add_argument("--spark-sizes", type=_sizes, default=[1_000_000, 10_000_000],
                   help="sizes the Spark local[2] peer runs at (session start is warmed up, not timed)")
    p.add_argument("--profile", type=float, default=None, help="also cProfile one repetition at this size")
    p.add_argument("--data-dir", type=Path, default=None, help="keep/reuse generated input here")
    args = p.parse_args(argv)
    args.peers = [x for x in args.peers.split(",") if x]
    unknown = set(args.peers) - set(PEERS)
    if unknown:
        p.error(f"--peers: unknown {sorted(unknown)}; choose from {PEERS}")
    return args


# --- driver -------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from _report import machine_info, print_summary, write_all

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="adtarget-bench-"))
    started = time.time()
    try:
        warm_n = min(WARMUP_EVENTS, *args.sizes)
        inputs = _prepare([warm_n, *args.sizes], int(args.chunk_events), data_dir)
        runs = []
        for n in args.sizes:
            runs.append(_measure(n, inputs[n], inputs[warm_n], args))
            print(f"[bench] {n:.0e} events: e2e {runs[-1]['end_to_end']['events_per_s'] / 1e6:.2f} M events/s",
                  flush=True)
    finally:
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    results = {"machine": machine_info(), "started": started, "seconds": round(time.time() - started, 1),
               "settings": _settings(args), "runs": runs}
    write_all(results, args.out)
    print_summary(results)
    return 0


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    from _stages import DELTA, EPSILON, MAX_SEGMENTS, MIN_SIZE

    return {"sizes": args.sizes, "peers": args.peers, "repeats": args.repeats,
            "single_run_from": args.single_run_from, "chunk_events": int(args.chunk_events),
            "pipelinedp_max": args.pipelinedp_max, "peers_max": args.peers_max, "spark_sizes": args.spark_sizes,
            "epsilon": EPSILON,
            "delta": DELTA, "max_segments_per_person": MAX_SEGMENTS, "min_reported_size": MIN_SIZE}


def _subprocess(*argv: str) -> None:
    subprocess.run([sys.executable, str(Path(__file__).resolve()), *argv], check=True)


def _prepare(sizes: list[int], chunk_events: int, data_dir: Path) -> dict[int, list[dict[str, Any]]]:
    """Generate (in one subprocess) or reuse the input of every size; returns each size's chunk list."""
    def manifest(n: int) -> Path:
        return data_dir / f"events-{n}-chunk-{chunk_events}" / "manifest.json"

    missing = sorted({n for n in sizes if not manifest(n).exists()})
    if missing:
        _subprocess("_prepare", str(chunk_events), str(data_dir), *map(str, missing))
    return {n: list(json.loads(manifest(n).read_text())) for n in sizes}


def _measure(n: int, chunks: list[dict[str, Any]], warmup: list[dict[str, Any]],
             args: argparse.Namespace) -> dict[str, Any]:
    job = {"n_events": n, "chunks": chunks, "warmup": warmup, "peers": args.peers,
           "repeats": 1 if n >= args.single_run_from else args.repeats,
           "pipelinedp": n <= args.pipelinedp_max, "other_peers": n <= args.peers_max,
           "spark": n in args.spark_sizes and n <= args.peers_max,
           "profile": str(args.out / f"profile-{n:.0e}.txt") if args.profile and int(args.profile) == n else None}
    with tempfile.TemporaryDirectory() as tmp:
        job_path, out_path = Path(tmp) / "job.json", Path(tmp) / "out.json"
        job_path.write_text(json.dumps(job))
        load = os.getloadavg()
        _subprocess("_measure", str(job_path), str(out_path))
        result: dict[str, Any] = json.loads(out_path.read_text())
    result["load_average"] = {"before": round(load[0], 2), "after": round(os.getloadavg()[0], 2)}
    return result


# --- worker: one size in a fresh process --------------------------------------------------------------------
def measure_job(job: dict[str, Any]) -> dict[str, Any]:
    """Warm up on a small input, time every stage ``repeats`` times, then run the peers on the same data."""
    from _stages import Chunk, load_snapshot, make_setup, rss_mb

    from adtarget import buffer_stats

    setup = make_setup()
    warm = [Chunk(**c) for c in job["warmup"]]
    warm_snapshots = [load_snapshot(c.consent, setup.pseudonymizer, c.end) for c in warm]
    _, warm_last = _repeat(warm, warm_snapshots, setup, 1)
    # the warm-up also starts the Spark session (when Spark runs at this size): its start is not timed
    _run_peers({**job, "repeats": 1}, setup, warm_last, warm[0], warm_snapshots[0])
    log(f"{job['n_events']:.0e}: warmed up; building consent snapshots")
    chunks = [Chunk(**c) for c in job["chunks"]]
    start = time.perf_counter()
    snapshots = [load_snapshot(c.consent, setup.pseudonymizer, c.end) for c in chunks]
    snapshot_s = time.perf_counter() - start
    del warm_last
    gc.collect()
    baseline = rss_mb()
    clocks, last = _repeat(chunks, snapshots, setup, job["repeats"])
    log(f"{job['n_events']:.0e}: {job['repeats']} repetition(s) timed; peers next")
    result = _summarise({**job, "segments": len(setup.spec.segment_ids)}, clocks, baseline)
    result["buffer_cache"] = buffer_stats()  # adtarget/_core/_buffers.py: cumulative over the warm-up and repetitions
    result["consent_snapshot_s"] = round(snapshot_s, 4)
    if len(chunks) == 1:
        result["peers"] = _run_peers(job, setup, last, chunks[0], snapshots[0])
    else:
        result["peers"] = {p: {"skipped": "not run on chunked (streaming) sizes"} for p in job["peers"]}
    if job["profile"]:
        _profile(job["profile"], chunks, snapshots, setup)
    from _peers import stop_spark

    stop_spark()
    return result


def _repeat(chunks: list[Any], snapshots: list[Any], setup: Any, repeats: int) -> tuple[list[Any], Any]:
    """Run the chained stages ``repeats`` times over all chunks; the chunks' exact counts are summed."""
    from _stages import StageClock, dp_sizes, new_ledger, release_report, run_chunk

    clocks: list[Any] = []
    last: Any = None
    with tempfile.TemporaryDirectory() as ledgers:
        for _ in range(repeats):
            last = None
            gc.collect()
            clock, parts, stats = StageClock(), [], dict.fromkeys(_STATS, 0)
            for chunk, snapshot in zip(chunks, snapshots):
                last = None
                last = run_chunk(chunk, snapshot, setup, clock)
                parts.append((last.cells, last.sizes))
                _add_stats(stats, last)
            cells = clock.time("count", _total, [p[0] for p in parts])
            sizes = clock.time("dp_count", _total, [p[1] for p in parts])
            ledger = new_ledger(ledgers)
            stats["released"] = clock.time("release", release_report, cells, setup, ledger, ledgers)
            clock.time("dp_count", dp_sizes, sizes, setup.count_spec)
            clocks.append((clock, stats))
    return clocks, last


def _total(parts: list[Any]) -> Any:
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


_STATS = ("eligible_events", "eligible_persons", "memberships", "arrow_bytes_total", "arrow_bytes_max_chunk",
          "batch_bytes_total")


def _add_stats(stats: dict[str, Any], run: Any) -> None:
    stats["eligible_events"] += run.eligible.n_events
    stats["eligible_persons"] += run.eligible.n_persons
    stats["memberships"] += int(run.assignments.membership.nnz)
    stats["arrow_bytes_total"] += run.arrow_bytes
    stats["arrow_bytes_max_chunk"] = max(stats["arrow_bytes_max_chunk"], run.arrow_bytes)
    stats["batch_bytes_total"] += run.batch_bytes


def _stage_summary(n: int, clocks: list[Any], stage: str) -> dict[str, Any]:
    seconds = [clock.seconds[stage] for clock, _ in clocks]
    median = statistics.median(seconds)
    cpu = statistics.median(clock.cpu_seconds[stage] for clock, _ in clocks)
    return {"seconds": round(median, 4), "all": [round(s, 4) for s in seconds], "events_per_s": n / median,
            "cpu_seconds": round(cpu, 4),
            "peak_rss_mb": round(max(clock.peak_mb[stage] for clock, _ in clocks), 1)}


def _summarise(job: dict[str, Any], clocks: list[Any], baseline: float) -> dict[str, Any]:
    from _stages import STAGES

    n = job["n_events"]
    e2e = [sum(clock.seconds[s] for s in STAGES) for clock, _ in clocks]
    in_memory = [sum(clock.seconds[s] for s in STAGES if s != "read") for clock, _ in clocks]
    cpu = statistics.median(sum(clock.cpu_seconds[s] for s in STAGES) for clock, _ in clocks)
    in_memory_cpu = statistics.median(sum(clock.cpu_seconds[s] for s in STAGES if s != "read") for clock, _ in clocks)
    peak = max(clock.peak_mb[s] for clock, _ in clocks for s in STAGES)
    stats = clocks[-1][1]
    columns = stats["arrow_bytes_max_chunk"] / 2**20
    return {
        "n_events": n, "chunks": len(job["chunks"]), "repeats": job["repeats"], "segments": job["segments"],
        **stats,
        "stages": {s: _stage_summary(n, clocks, s) for s in (*STAGES, "dp_count")},
        "end_to_end": {"seconds": round(statistics.median(e2e), 4), "all": [round(s, 4) for s in e2e],
                       "events_per_s": n / statistics.median(e2e),
                       "in_memory_seconds": round(statistics.median(in_memory), 4),
                       "in_memory_events_per_s": n / statistics.median(in_memory),
                       "in_memory_all": [round(s, 4) for s in in_memory],
                       "in_memory_cpu_seconds": round(in_memory_cpu, 4),
                       "cpu_seconds": round(cpu, 4), "cpu_events_per_s": n / cpu},
        "memory": {"method": "VmHWM (the RSS high-water mark getrusage reports as ru_maxrss), reset before each "
                             "stage via /proc/self/clear_refs; fresh process per size",
                   "baseline_rss_mb": round(baseline, 1), "peak_rss_mb": round(peak, 1),
                   "peak_above_baseline_mb": round(peak - baseline, 1),
                   "arrow_column_mb": round(columns, 1),
                   "batch_column_mb": round(stats["batch_bytes_total"] / 2**20 / len(job["chunks"]), 1),
                   "ratio_peak_to_columns": round(peak / columns, 2),
                   "ratio_above_baseline_to_columns": round((peak - baseline) / columns, 2)},
    }


def _profile(path: str, chunks: list[Any], snapshots: list[Any], setup: Any) -> None:
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    _repeat(chunks, snapshots, setup, 1)
    profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(30)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    text_out = text.getvalue().replace(str(Path(sys.prefix)), "<venv>").replace(str(HERE.parent) + "/", "")
    Path(path).write_text(text_out)


def _run_peers(job: dict[str, Any], setup: Any, last: Any, chunk: Any, snapshot: Any) -> dict[str, Any]:
    from _peers import run_peers

    return run_peers(job, setup, last, chunk, snapshot)


def log(message: str) -> None:
    """Progress on stderr, with the time, for long runs."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _worker(argv: list[str]) -> int:
    mode, *rest = argv
    if mode == "_prepare":
        from _stages import prepare

        for n in map(int, rest[2:]):
            log(f"{n:.0e}: generating input")
            prepare(n, int(rest[0]), Path(rest[1]))
        return 0
    job = json.loads(Path(rest[0]).read_text())
    Path(rest[1]).write_text(json.dumps(measure_job(job)))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("_prepare", "_measure"):
        sys.exit(_worker(sys.argv[1:]))
    sys.exit(main())
