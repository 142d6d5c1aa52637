"""Helpers for the fault, concurrency and hostile-input tests: child processes that pause at a named point
(so the parent can SIGKILL them there), consent CSVs, and a small synthetic world on disk."""

from __future__ import annotations

import csv
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
KEY = bytes(range(32))
FIELDS = ("person_id", "birth_year", "ads_personalization", "cross_service", "policy_version", "updated_at",
          "deleted", "terminated", "location_deleted", "jurisdiction")

PRELUDE = """
import json, os, signal, sys, time, warnings
warnings.simplefilter("ignore")
import numpy as np
from adtarget.events._pseudonym import Pseudonymizer
PZ = Pseudonymizer(bytes(range(32)))

def pause(tag):
    print(tag, flush=True)
    time.sleep(600)
"""


def spawn(code: str) -> subprocess.Popen[str]:
    """Start ``python -c PRELUDE + code`` in the repo, with pipes for stdout and stderr."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", PRELUDE + code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)


def wait_for(proc: subprocess.Popen[str], tag: str, timeout: float = 180.0) -> str:
    """Read the child's stdout until a line starts with ``tag``; return that line."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sel.select(timeout=1.0):
            line = proc.stdout.readline()
            if line.startswith(tag):
                return line
            if not line and proc.poll() is not None:
                break
    proc.kill()
    err = proc.stderr.read() if proc.stderr else ""
    raise AssertionError(f"child never printed {tag!r}; exit {proc.poll()}; stderr:\n{err[-3000:]}")


def kill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL and reap."""
    proc.kill()
    proc.wait(timeout=60)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def finish(proc: subprocess.Popen[str], timeout: float = 300.0) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def consent_rows(ids, *, opted_in=True, updated_at="2024-01-01T00:00:00Z", birth_year=1980):
    ids = list(ids)
    flags = opted_in if isinstance(opted_in, (list, np.ndarray)) else [opted_in] * len(ids)
    return [{"person_id": str(i), "birth_year": birth_year, "ads_personalization": "opt_in" if f else "opt_out",
             "cross_service": "true", "policy_version": "2018-05-14", "updated_at": updated_at,
             "deleted": "false", "terminated": "false", "location_deleted": "false", "jurisdiction": "US"}
            for i, f in zip(ids, flags)]


def write_consent_csv(path: Path, rows) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def snapshot_state(snapshot) -> dict[str, list]:
    """The comparable content of a ConsentSnapshot (everything but ``as_of``)."""
    names = ("persons", "birth_year", "opted_in", "cross_service", "deleted", "terminated", "location_deleted",
             "policy_version", "jurisdiction")
    return {n: np.asarray(getattr(snapshot, n)).tolist() for n in names}


def small_world(directory: Path, *, n_events: int = 20_000, seed: int = 4) -> dict[str, Path]:
    """Synthetic events (Parquet) and consent (CSV and an imported ledger) in ``directory``."""
    from adtarget import synth
    from adtarget.consent import ConsentLedger
    from adtarget.events import Pseudonymizer

    data = synth.generate(synth.SyntheticConfig(n_events=n_events, seed=seed))
    paths = {"events": directory / "events.parquet", "consent_csv": directory / "consent.csv",
             "consent": directory / "consent.sqlite", "budget": directory / "budget.sqlite",
             "out": directory / "out"}
    synth.write_events(data, paths["events"])
    synth.write_consent(data, paths["consent_csv"])
    with ConsentLedger(paths["consent"], Pseudonymizer(KEY)) as ledger:
        ledger.import_csv(paths["consent_csv"])
    return paths


# the advertiser {adv!r} must be registered in {budget!r} first (tests/_ledger_fixtures.py ``register``)
RUN_CODE = """
from adtarget import BudgetLedger, ConsentLedger, RunSettings, run
consent = ConsentLedger({consent!r}, PZ)
budget = BudgetLedger({budget!r})
result = run({events!r}, consent, pseudonymizer=PZ, budget=budget, settings=RunSettings(advertiser={adv!r}),
             window_end={window_end!r})
"""
