"""Smoke tests of the benchmark harness: it runs end to end on tiny inputs and its outputs exist and parse.

No timing assertions: timings on a shared machine say nothing about correctness.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

from _report import evaluate_goals, markdown  # noqa: E402
from _stages import STAGES, chunk_sizes, prepare  # noqa: E402

STATUSES = {"PASS", "FAIL", "NOT RUN"}


@pytest.fixture(scope="module")
def harness_out(tmp_path_factory):
    """One harness run: 1e4 events in one chunk (with peers) and 2e4 events streamed in two chunks."""
    out = tmp_path_factory.mktemp("bench")
    cmd = [sys.executable, str(BENCH / "run.py"), "--sizes", "1e4,2e4", "--chunk-events", "1.5e4",
           "--peers", "pipelinedp,pandas,diffprivlib,spark", "--spark-sizes", "", "--repeats", "2",
           "--out", str(out), "--data-dir", str(out / "data")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done.stdout


@pytest.mark.slow
def test_outputs_exist_and_parse(harness_out):
    out, stdout = harness_out
    results = json.loads((out / "latest.json").read_text())
    assert [r["n_events"] for r in results["runs"]] == [10_000, 20_000]
    assert [r["chunks"] for r in results["runs"]] == [1, 2]
    assert {"nproc", "cpu", "ram_gib", "python", "numpy"} <= set(results["machine"])
    md = (out / "latest.md").read_text()
    for heading in ("## Throughput", "## Peers", "## Peak memory", "## Goals", "| read |", "**end to end**"):
        assert heading in md
    assert (out / "throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "end to end" in stdout


@pytest.mark.slow
def test_every_stage_is_timed_and_accounted(harness_out):
    results = json.loads((harness_out[0] / "latest.json").read_text())
    for run in results["runs"]:
        assert set(STAGES) | {"dp_count"} <= set(run["stages"])
        for stage in run["stages"].values():
            assert stage["seconds"] > 0 and len(stage["all"]) == run["repeats"] == 2
        total = sum(run["stages"][s]["seconds"] for s in STAGES)
        assert run["end_to_end"]["seconds"] == pytest.approx(total, rel=0.5)
        assert 0 < run["eligible_events"] < run["n_events"]
        assert run["memory"]["peak_rss_mb"] >= run["memory"]["baseline_rss_mb"] > 0
        assert run["released"]["segments"] + run["released"]["suppressed"] > 0


@pytest.mark.slow
def test_peers_ran_on_the_single_chunk_and_were_skipped_when_streamed(harness_out):
    single, streamed = json.loads((harness_out[0] / "latest.json").read_text())["runs"]
    pdp = single["peers"]["pipelinedp"]
    assert pdp["seconds"] > 0 and pdp["pairs"] > 0 and pdp["partitions"] == single["segments"]
    assert single["peers"]["pandas"]["e2e_floor"]["seconds"] > 0
    assert single["peers"]["diffprivlib"]["adtarget"]["seconds"] > 0
    assert "skipped" in single["peers"]["spark"]
    assert all("skipped" in peer for peer in streamed["peers"].values())


@pytest.mark.slow
def test_goals_are_reported_with_a_status(harness_out):
    results = json.loads((harness_out[0] / "latest.json").read_text())
    assert len(results["goals"]) == 7
    assert {g["status"] for g in results["goals"]} <= STATUSES


def _fake_run(n, e2e_s, dp_s, pipelinedp_s=None, floor_s=None, mem_ratio=2.0):
    stages = {s: {"seconds": e2e_s / len(STAGES), "events_per_s": n / (e2e_s / len(STAGES)), "peak_rss_mb": 1.0}
              for s in STAGES}
    stages["dp_count"] = {"seconds": dp_s, "events_per_s": n / dp_s, "peak_rss_mb": 1.0}
    peers = {"pipeline_run_in_memory": {"seconds": e2e_s * 0.8, "cpu_seconds": e2e_s * 0.8}}
    if pipelinedp_s:
        peers["pipelinedp"] = {"seconds": pipelinedp_s}
    if floor_s:
        peers["pandas"] = {"e2e_floor": {"seconds": floor_s}, "segment_floor": {"seconds": floor_s}}
    memory = {"ratio_above_baseline_to_columns": mem_ratio, "ratio_peak_to_columns": mem_ratio + 1,
              "baseline_rss_mb": 1, "peak_rss_mb": 2, "peak_above_baseline_mb": 1, "arrow_column_mb": 1,
              "batch_column_mb": 1}
    return {"n_events": n, "chunks": 1, "stages": stages, "peers": peers, "memory": memory,
            "end_to_end": {"seconds": e2e_s, "events_per_s": n / e2e_s, "in_memory_seconds": e2e_s * 0.9},
            "load_average": {"before": 0.0}}


def test_goals_pass_and_fail_on_the_figures():
    runs = [_fake_run(10**6, 0.1, 0.01, pipelinedp_s=2.0), _fake_run(10**7, 1.0, 0.5, floor_s=0.5),
            _fake_run(10**8, 30.0, 5.0)]
    status = {g["goal"]: g["status"] for g in evaluate_goals(runs)}
    assert status == {
        "DP count stage vs PipelineDP at 1e6": "PASS",  # 200x
        "DP count stage at 1e7": "PASS",  # 20 M/s
        "End to end at 1e7, adtarget.run in one call": "PASS",  # 12.5 M/s
        "End to end at 1e7, sum of the stage clocks": "PASS",  # 11 M/s
        "End to end vs pandas floor at 1e7": "PASS",  # 0.9 / 0.5 = 1.8x
        "Peak memory at 1e7": "PASS",
        "Throughput 1e6 -> 1e8": "FAIL",  # 10 M/s -> 3.3 M/s
    }
    slow = [_fake_run(10**6, 0.1, 0.05, pipelinedp_s=2.0), _fake_run(10**7, 4.0, 2.0, floor_s=0.5, mem_ratio=4)]
    status = {g["goal"]: g["status"] for g in evaluate_goals(slow)}
    assert set(status.values()) == {"FAIL", "NOT RUN"}
    assert status["Throughput 1e6 -> 1e8"] == "NOT RUN"


def test_markdown_renders_without_peers():
    runs = [_fake_run(10**5, 1.0, 0.1)]
    results = {"runs": runs, "goals": evaluate_goals(runs), "seconds": 1.0,
               "machine": {k: "x" for k in ("nproc", "cpu", "ram_gib", "python", "numpy", "pandas", "pyarrow",
                                             "scikit-learn", "diffprivlib", "pipeline-dp")},
               "settings": {"epsilon": 1.0, "delta": 1e-6, "max_segments_per_person": 5, "repeats": 3,
                            "single_run_from": 1e8, "chunk_events": 10**7}}
    text = markdown(results)
    assert "| read |" in text and "not run" in text


@given(n=st.integers(1, 10**9), chunk=st.integers(1, 10**9))
def test_chunk_sizes_cover_every_event_in_near_equal_chunks(n, chunk):
    assume(n <= chunk * 10_000)  # keep the list short
    sizes = chunk_sizes(n, chunk)
    assert sum(sizes) == n and max(sizes) <= chunk and max(sizes) - min(sizes) <= 1


def test_chunks_share_no_person(tmp_path):
    import pyarrow.parquet as pq

    chunks = prepare(3_000, 1_000, tmp_path)
    ids = [pq.read_table(c.events, columns=["person_id"]).column(0).to_numpy() for c in chunks]
    consent = [pq.read_table(c.consent, columns=["person_id"]).column(0).to_numpy() for c in chunks]
    assert [c.n_events for c in chunks] == [1_000] * 3
    for i in range(3):
        for j in range(i + 1, 3):
            assert not np.intersect1d(ids[i], ids[j]).size and not np.intersect1d(consent[i], consent[j]).size
    assert prepare(3_000, 1_000, tmp_path) == chunks  # reused, not regenerated


@pytest.mark.slow
def test_the_report_quality_benchmark_runs_and_writes_its_figures(tmp_path):
    """benchmarks/bench_report_quality.py on 2 releases (PipelineDP off): it runs and its JSON parses."""
    cmd = [sys.executable, str(BENCH / "bench_report_quality.py"), "--releases", "2", "--coverage-releases", "2",
           "--no-pipelinedp", "--out", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads((tmp_path / "report_quality.json").read_text())
    assert {"world", "specs", "coverage", "proxy_audit"} <= set(figures)
