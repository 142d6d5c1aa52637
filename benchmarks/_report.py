"""Benchmark results as JSON, a Markdown report (throughput, peers, memory, goals, machine) and a log-log plot."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _stages import STAGES

Run = dict[str, Any]


# --- machine ------------------------------------------------------------------------------------------------
def _cpuinfo_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            return next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "?")
    except OSError:
        return platform.processor() or "?"


def _ram_gib() -> float:
    try:
        with open("/proc/meminfo") as info:
            kb = next(int(line.split()[1]) for line in info if line.startswith("MemTotal"))
        return round(kb / 2**20, 1)
    except (OSError, StopIteration):
        return 0.0


def _version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return "not installed"


def _commit() -> str:
    """``git describe --always --dirty`` of the tree the harness runs from ("?" outside git)."""
    import subprocess

    if os.environ.get("ADTARGET_BENCH_COMMIT"):  # set when running from an exported tree
        return os.environ["ADTARGET_BENCH_COMMIT"]
    try:
        done = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=Path(__file__).parent,
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "?"
    return done.stdout.strip() or "?"


def machine_info() -> dict[str, Any]:
    """nproc, CPU model, RAM, Python and library versions, load average at the start."""
    libs = ("numpy", "scipy", "pandas", "pyarrow", "scikit-learn", "diffprivlib", "pipeline-dp", "pyspark")
    return {"nproc": os.cpu_count(), "cpu": _cpuinfo_model(), "ram_gib": _ram_gib(), "commit": _commit(),
            "python": platform.python_version(), "platform": platform.platform(),
            **{lib: _version(lib) for lib in libs}, "load_average_start": round(os.getloadavg()[0], 2)}


# --- goals --------------------------------------------------------------------------------------------------
def _run(runs: list[Run], n: int) -> Run | None:
    return next((r for r in runs if r["n_events"] == n), None)


def _peer_seconds(run: Run | None, *keys: str, field: str = "seconds") -> float | None:
    node: Any = (run or {}).get("peers", {})
    for key in keys:
        node = node.get(key, {}) if isinstance(node, dict) else {}
    return node.get(field) if isinstance(node, dict) else None


def _figures(runs: list[Run], field: str, e2e_field: str) -> dict[str, float | None]:
    """The goals' figures, from wall seconds (``seconds``) or CPU seconds (``cpu_seconds``)."""
    r6, r7, r8 = _run(runs, 10**6), _run(runs, 10**7), _run(runs, 10**8)

    def stage(run: Run | None, name: str) -> float | None:
        return run["stages"][name].get(field) if run else None

    def e2e(run: Run | None) -> float | None:
        return run["end_to_end"].get(e2e_field) if run else None

    pdp, ours6 = _peer_seconds(r6, "pipelinedp", field=field), stage(r6, "dp_count")
    count7, e2e6, e2e8 = stage(r7, "dp_count"), e2e(r6), e2e(r8)
    floor7 = _peer_seconds(r7, "pandas", "e2e_floor", field=field)
    # the median over repetitions of each repetition's in-memory sum (not a difference of two medians)
    in_memory7 = r7["end_to_end"].get("in_memory_" + e2e_field) if r7 else None
    one_call7 = _peer_seconds(r7, "pipeline_run_in_memory", field=field)
    return {"speedup": pdp / ours6 if pdp and ours6 else None,
            "one_call7": 10**7 / one_call7 if one_call7 else None,
            "count7": 10**7 / count7 if count7 else None,
            "e2e7": 10**7 / in_memory7 if in_memory7 else None,
            "vs_floor": in_memory7 / floor7 if in_memory7 and floor7 else None,
            "fall": e2e8 / 100 / e2e6 if e2e6 and e2e8 else None}


def _goal(name: str, target: str, values: tuple[float | None, float | None], ok: Callable[[float], bool],
          fmt: Callable[[float], str], note: str = "") -> dict[str, Any]:
    def status(value: float | None) -> str:
        return "NOT RUN" if value is None else ("PASS" if ok(value) else "FAIL")

    wall, cpu = values
    return {"goal": name, "target": target, "value": wall, "measured": fmt(wall) if wall is not None else "-",
            "status": status(wall), "value_cpu": cpu, "measured_cpu": fmt(cpu) if cpu is not None else "-",
            "status_cpu": status(cpu), "note": note}


def evaluate_goals(runs: list[Run]) -> list[dict[str, Any]]:
    """The issue's goals, PASS/FAIL with the figure (wall time; CPU time beside), or NOT RUN."""
    wall, cpu = _figures(runs, "seconds", "seconds"), _figures(runs, "cpu_seconds", "cpu_seconds")
    r7 = _run(runs, 10**7)
    mem7 = r7["memory"]["ratio_above_baseline_to_columns"] if r7 else None
    raw = f"; raw peak/columns {r7['memory']['ratio_peak_to_columns']}x" if r7 else ""

    def both(key: str) -> tuple[float | None, float | None]:
        return wall[key], cpu[key]

    return [
        _goal("DP count stage vs PipelineDP at 1e6", ">= 100x faster", both("speedup"), lambda v: v >= 100,
              lambda v: f"{v:.0f}x", "same (pseudonym, segment) pairs, same bounds and epsilon"),
        _goal("DP count stage at 1e7", ">= 10 M events/s (tens of millions)", both("count7"),
              lambda v: v >= 1e7, lambda v: f"{v / 1e6:.1f} M/s"),
        _goal("End to end at 1e7, adtarget.run in one call", ">= 5 M events/s", both("one_call7"),
              lambda v: v >= 5e6, lambda v: f"{v / 1e6:.2f} M/s",
              "events in memory (Arrow table) to report.json written, the product's one call"),
        _goal("End to end at 1e7, sum of the stage clocks", ">= 5 M events/s", both("e2e7"), lambda v: v >= 5e6,
              lambda v: f"{v / 1e6:.2f} M/s", "the same chain timed stage by stage (per-stage clocks and RSS "
              "probes; median of the repetitions' sums; read excluded)"),
        _goal("End to end vs pandas floor at 1e7", "<= 3x the floor's time", both("vs_floor"), lambda v: v <= 3,
              lambda v: f"{v:.1f}x", "in-memory table to counts on both sides"),
        _goal("Peak memory at 1e7", "<= 3x column bytes", (mem7, mem7), lambda v: v <= 3, lambda v: f"{v:.2f}x",
              "(peak RSS - RSS before reading) / Arrow event columns" + raw),
        _goal("Throughput 1e6 -> 1e8", "falls < 2x", both("fall"), lambda v: v < 2, lambda v: f"{v:.2f}x",
              "end-to-end events/s at 1e6 over 1e8 (1e8 streamed in chunks)"),
    ]


# --- tables -------------------------------------------------------------------------------------------------
def _size(n: int) -> str:
    return f"{n:.0e}".replace("e+0", "e")


def _rate(n: int, seconds: float | None) -> str:
    return "-" if not seconds else f"{n / seconds / 1e6:.2f} ({seconds:.3g} s)"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def throughput_rows(runs: list[Run]) -> list[list[str]]:
    """Stage x size: M events/s (median seconds)."""
    rows = [[s] + [_rate(r["n_events"], r["stages"][s]["seconds"]) for r in runs] for s in STAGES]
    rows.append(["**end to end**"] + [f"**{_rate(r['n_events'], r['end_to_end']['seconds'])}**" for r in runs])
    rows.append(["end to end, in memory (no read)"]
                + [_rate(r["n_events"], r["end_to_end"]["in_memory_seconds"]) for r in runs])
    rows.append(["end to end, CPU time (all threads)"]
                + [_rate(r["n_events"], r["end_to_end"].get("cpu_seconds")) for r in runs])
    rows.append(["dp_count (segment sizes only; not in e2e)"]
                + [_rate(r["n_events"], r["stages"]["dp_count"]["seconds"]) for r in runs])
    return rows


def cpu_rows(runs: list[Run]) -> list[list[str]]:
    """Stage x size: M events/s by CPU seconds (less sensitive to a loaded machine than wall time)."""
    return [[s] + [_rate(r["n_events"], r["stages"][s].get("cpu_seconds")) for r in runs] for s in STAGES]


def _skip(run: Run, *keys: str) -> str | None:
    """``"skipped"`` when the peer ``keys[0]`` did not run at this size (the JSON says why)."""
    node = run.get("peers", {}).get(keys[0])
    if node is None:
        return "not run"
    return "skipped" if "skipped" in node else ("error" if "error" in node else None)


def peer_rows(runs: list[Run]) -> list[list[str]]:
    """adtarget and its peers side by side: M events/s (seconds), or seconds for k-means."""
    def rate(run: Run, *keys: str) -> str:
        return _skip(run, *keys) or _rate(run["n_events"], _peer_seconds(run, *keys))

    def ratio(num: float | None, den: float | None) -> str:
        return f"{num / den:.1f}x" if num and den else "-"

    def seconds(run: Run, *keys: str) -> str:
        value = _peer_seconds(run, *keys)
        return _skip(run, *keys) or (f"{value:.3g} s" if value else "-")

    def segment_side(run: Run) -> float:
        return sum(run["stages"][s]["seconds"] for s in ("profiles", "segments", "count"))

    return [
        ["adtarget DP count (pairs)"] + [_rate(r["n_events"], r["stages"]["dp_count"]["seconds"]) for r in runs],
        ["PipelineDP LocalBackend COUNT (same pairs)"] + [rate(r, "pipelinedp") for r in runs],
        ["speed-up over PipelineDP"] + [ratio(_peer_seconds(r, "pipelinedp"), r["stages"]["dp_count"]["seconds"])
                                        for r in runs],
        ["adtarget profiles+segments+count"] + [_rate(r["n_events"], segment_side(r)) for r in runs],
        ["pandas floor from eligible (person, category)"] + [rate(r, "pandas", "segment_floor") for r in runs],
        ["adtarget e2e in memory"] + [_rate(r["n_events"], r["end_to_end"]["in_memory_seconds"]) for r in runs],
        ["pandas e2e floor (in-memory events)"] + [rate(r, "pandas", "e2e_floor") for r in runs],
        ["adtarget / pandas e2e floor"] + [ratio(r["end_to_end"]["in_memory_seconds"],
                                                 _peer_seconds(r, "pandas", "e2e_floor")) for r in runs],
        ["adtarget e2e (chained stages, incl. read)"] + [_rate(r["n_events"], r["end_to_end"]["seconds"])
                                                          for r in runs],
        ["pipeline.run, LocalEngine (one call, incl. read)"] + [rate(r, "pipeline_run") for r in runs],
        ["pipeline.run, LocalEngine (one call, in-memory table to report.json)"]
        + [rate(r, "pipeline_run_in_memory") for r in runs],
        ["pipeline.run, SparkEngine local[2]"] + [rate(r, "spark") for r in runs],
        ["diffprivlib KMeans (s)"] + [seconds(r, "diffprivlib", "diffprivlib") for r in runs],
        ["DPKMeansSegmenter (s)"] + [seconds(r, "diffprivlib", "adtarget") for r in runs],
    ]


def memory_rows(runs: list[Run]) -> list[list[str]]:
    """Size: RSS before reading, peak, columns, ratios."""
    rows = []
    for r in runs:
        m = r["memory"]
        rows.append([_size(r["n_events"]), str(r["chunks"]), f"{m['baseline_rss_mb']:.0f}", f"{m['peak_rss_mb']:.0f}",
                     f"{m['peak_above_baseline_mb']:.0f}", f"{m['arrow_column_mb']:.0f}",
                     f"{m['batch_column_mb']:.0f}", f"{m['ratio_peak_to_columns']:.2f}",
                     f"{m['ratio_above_baseline_to_columns']:.2f}"])
    return rows


def stage_peak_rows(runs: list[Run]) -> list[list[str]]:
    """Stage x size: RSS high-water mark (MiB) during the stage."""
    return [[s] + [f"{r['stages'][s]['peak_rss_mb']:.0f}" for r in runs] for s in STAGES]


# --- outputs ------------------------------------------------------------------------------------------------
def markdown(results: dict[str, Any]) -> str:
    """The report: machine, settings, throughput, peers, memory, goals."""
    runs, m, st = results["runs"], results["machine"], results["settings"]
    sizes = [_size(r["n_events"]) for r in runs]
    lines = ["# adtarget benchmark: latest results", "",
             f"Machine: {m['nproc']} cores ({m['cpu']}), {m['ram_gib']} GiB RAM, Python {m['python']}, "
             f"numpy {m['numpy']}, pandas {m['pandas']}, pyarrow {m['pyarrow']}, scikit-learn {m['scikit-learn']}, "
             f"diffprivlib {m['diffprivlib']}, pipeline-dp {m['pipeline-dp']}; adtarget at commit "
             f"{m.get('commit', '?')}. Load average (1 min) before each "
             "size: " + ", ".join(f"{_size(r['n_events'])}: {r['load_average']['before']}" for r in runs)
             + " (a shared machine: other engineers' tests ran at the same time; timings are noisy).", "",
             f"Build: IAB Content 2.2, default sensitivity profile, {runs[0].get('segments', '?') if runs else '?'} "
             f"rule-based segments (every safe tier-1/2 node, top 5), ε={st['epsilon']}, δ={st['delta']}, "
             f"≤{st['max_segments_per_person']} segments/person, breakdowns age_band, region, service. "
             f"Repetitions: median of {st['repeats']} (1 at ≥ {_size(int(st['single_run_from']))}); sizes above "
             f"{_size(st['chunk_events'])} events are streamed in chunks of whole persons and their counts summed. "
             f"Total harness time {results['seconds']:.0f} s.", "",
             "## Throughput: M events/s (median seconds)", ""]
    lines += _table(["stage"] + sizes, throughput_rows(runs))
    lines += ["", "By CPU seconds of the process (M events/s; wall above is what the goals use):", ""]
    lines += _table(["stage"] + sizes, cpu_rows(runs))
    lines += ["", "## Peers on the same data, same run", ""]
    lines += _table(["task"] + sizes, peer_rows(runs))
    lines += ["", "## Peak memory (MiB)", ""]
    lines += _table(["size", "chunks", "RSS before read", "peak RSS", "peak - before", "Arrow columns (per chunk)",
                     "EventBatch columns", "peak / columns", "(peak - before) / columns"], memory_rows(runs))
    lines += ["", "RSS high-water mark per stage (MiB):", ""]
    lines += _table(["stage"] + sizes, stage_peak_rows(runs))
    lines += ["", "## Goals", ""]
    notes = skip_notes(runs)
    lines += _table(["goal", "target", "measured (wall)", "result", "by CPU seconds", "how"],
                    [[g["goal"], g["target"], g["measured"], f"**{g['status']}**",
                      f"{g['measured_cpu']} ({g['status_cpu']})", g["note"]] for g in results["goals"]])
    if notes:
        lines += ["", "Peers not run:", ""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def skip_notes(runs: list[Run]) -> list[str]:
    """Why each peer did not run at a size, merged over sizes."""
    reasons: dict[tuple[str, str], list[str]] = {}
    for r in runs:
        for peer, node in r.get("peers", {}).items():
            why = node.get("skipped") or (f"failed: {node['error']}" if "error" in node else None)
            if why:
                reasons.setdefault((peer, why), []).append(_size(r["n_events"]))
    return [f"{peer} at {', '.join(sizes)}: {why}" for (peer, why), sizes in reasons.items()]


def _series(runs: list[Run]) -> dict[str, list[tuple[int, float]]]:
    series: dict[str, list[tuple[int, float]]] = {}

    def add(name: str, n: int, seconds: float | None) -> None:
        if seconds:
            series.setdefault(name, []).append((n, n / seconds))

    for r in runs:
        n = r["n_events"]
        for stage in (*STAGES, "dp_count"):
            add(stage, n, r["stages"][stage]["seconds"])
        add("end to end", n, r["end_to_end"]["seconds"])
        add("PipelineDP count (peer)", n, _peer_seconds(r, "pipelinedp"))
        add("pandas e2e floor (peer)", n, _peer_seconds(r, "pandas", "e2e_floor"))
        add("pandas segment floor (peer)", n, _peer_seconds(r, "pandas", "segment_floor"))
        add("pipeline.run LocalEngine (one call)", n, _peer_seconds(r, "pipeline_run"))
        add("pipeline.run Spark local[2] (peer)", n, _peer_seconds(r, "spark"))
    return series


def plot(runs: list[Run], path: Path) -> None:
    """events/s against size, log-log, one line per stage and peer (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 6))
    colors = [plt.get_cmap("tab20")(i) for i in range(20)]
    for i, (name, points) in enumerate(_series(runs).items()):
        peer = "peer" in name
        color = "black" if name == "end to end" else colors[i % len(colors)]
        ax.plot(*zip(*points), "--" if peer else "-", marker="s" if peer else "o", color=color,
                linewidth=3 if name == "end to end" else 1.5, label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("events")
    ax.set_ylabel("events per second")
    ax.set_title("adtarget stages and peers (median wall time)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_all(results: dict[str, Any], out: Path) -> None:
    """``latest.json``, ``latest.md`` and ``throughput.png`` in ``out`` (created if missing)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results["goals"] = evaluate_goals(results["runs"])
    (out / "latest.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "latest.md").write_text(markdown(results))
    plot(results["runs"], out / "throughput.png")


def print_summary(results: dict[str, Any]) -> None:
    """Throughput and goals on stdout."""
    sizes = [_size(r["n_events"]) for r in results["runs"]]
    print("\n".join(_table(["stage (M events/s)"] + sizes, throughput_rows(results["runs"]))))
    for g in results["goals"]:
        print(f"{g['status']:8s} {g['goal']}: {g['measured']} (target {g['target']}; "
              f"by CPU time {g['measured_cpu']}, {g['status_cpu']})")
