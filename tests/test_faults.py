"""Fault injection: real child processes SIGKILLed at chosen points of consent imports, releases and file
writes; full disks (a tiny tmpfs), read-only and corrupted ledgers. Invariants: a ledger is before or after a
write, never between; a spend is never lost; no report exists without its spend; errors are LedgerError.
Every budget ledger here has its advertisers registered first (a release goes to a registered advertiser only)."""

from __future__ import annotations

import contextlib
import gc
import json
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from _fault_helpers import (
    KEY,
    RUN_CODE,
    consent_rows,
    finish,
    kill,
    small_world,
    snapshot_state,
    spawn,
    wait_for,
    write_consent_csv,
)
from _ledger_fixtures import register

from adtarget import BudgetLedger, ConsentLedger, PrivacyBudget, Pseudonymizer, RunSettings, run, synth
from adtarget.exceptions import LedgerError

pytestmark = pytest.mark.filterwarnings("ignore::adtarget.exceptions.PrivacyLeakWarning")
PZ = Pseudonymizer(KEY)
END = synth.SyntheticConfig().end


# --- consent import ------------------------------------------------------------------------------------------
@pytest.fixture
def consent_before_after(tmp_path):
    """A ledger holding import A, and CSV B that flips A's persons to opt-out and adds as many new ones."""
    path = tmp_path / "consent.sqlite"
    a = write_consent_csv(tmp_path / "a.csv", consent_rows(range(1, 3001)))
    b = write_consent_csv(tmp_path / "b.csv", consent_rows(range(1, 3001), opted_in=False,
                                                           updated_at="2024-06-01T00:00:00Z")
                          + consent_rows(range(5001, 8001), updated_at="2024-06-01T00:00:00Z"))
    with ConsentLedger(path, PZ) as ledger:
        ledger.import_csv(a)
        before = snapshot_state(ledger.snapshot())
    with ConsentLedger(tmp_path / "reference.sqlite", PZ) as ref:
        ref.import_csv(a)
        ref.import_csv(b)
        after = snapshot_state(ref.snapshot())
    return path, b, before, after


IMPORT_CODE = """
import adtarget.consent._ledger as L
from adtarget.consent import ConsentLedger
real = L.write_records
def write_then_pause(*args, **kwargs):
    result = real(*args, **kwargs)
    if {pause_inside!r}:
        pause("INSIDE")  # every row written, the transaction not committed
    return result
L.write_records = write_then_pause
with ConsentLedger({path!r}, PZ) as ledger:
    print("START", flush=True)
    ledger.import_csv({csv!r})
    pause("COMMITTED")
"""


@pytest.mark.parametrize(("pause_inside", "tag", "expected"), [(True, "INSIDE", "before"),
                                                              (False, "COMMITTED", "after")])
def test_sigkill_during_consent_import_leaves_before_or_after(consent_before_after, pause_inside, tag, expected):
    path, csv_b, before, after = consent_before_after
    proc = spawn(IMPORT_CODE.format(path=str(path), csv=str(csv_b), pause_inside=pause_inside))
    wait_for(proc, tag)
    kill(proc)
    with ConsentLedger(path, PZ) as ledger:
        ledger.check_integrity()
        state = snapshot_state(ledger.snapshot())
        assert state == {"before": before, "after": after}[expected]
        assert ledger.stats()["history_rows"] == (3000 if expected == "before" else 9000)
        ledger.opt_out("1")  # still writable after the crash (the dead writer's lock is gone)


@pytest.mark.slow
def test_sigkill_at_random_points_of_a_large_import(tmp_path):
    path = tmp_path / "consent.sqlite"
    big = write_consent_csv(tmp_path / "big.csv", consent_rows(range(1, 60_001)))
    with ConsentLedger(tmp_path / "ref.sqlite", PZ) as ref:
        ref.import_csv(big)
        after = snapshot_state(ref.snapshot())
    seen = set()
    for delay in (0.2, 0.6, 1.0, 1.5, 2.5):
        path.unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        ConsentLedger(path, PZ).close()
        proc = spawn(IMPORT_CODE.format(path=str(path), csv=str(big), pause_inside=False))
        wait_for(proc, "START")
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=delay)
        kill(proc)
        with ConsentLedger(path, PZ) as ledger:
            ledger.check_integrity()
            n = ledger.stats()["history_rows"]
            assert n in (0, 60_000)
            if n:
                assert snapshot_state(ledger.snapshot()) == after
            seen.add(n)
    assert seen  # which states were hit depends on the machine's speed; both are allowed


# --- release between spend and write -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return small_world(tmp_path_factory.mktemp("faults-world"))


def _fresh(world, tmp_path):
    budget = tmp_path / "budget.sqlite"
    register(budget, "acme")
    return {**world, "budget": budget, "out": tmp_path / "out"}


def _spend_rows(path):
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT advertiser, epsilon, status, report_json IS NOT NULL FROM spend").fetchall()


def _run_parent(paths):
    with ConsentLedger(paths["consent"], PZ) as consent:
        return run(str(paths["events"]), consent, pseudonymizer=PZ, budget=BudgetLedger(paths["budget"]),
                   settings=RunSettings(advertiser="acme"), window_end=END)


RELEASE_PAUSE = """
from adtarget.budget._ledger import BudgetLedger
BudgetLedger._store_report = lambda self, charge_id, report_json: pause("CHARGED")  # private to the release
""" + RUN_CODE


@pytest.fixture(scope="module")
def crashed_release(world, tmp_path_factory):
    """A budget ledger whose release was SIGKILLed after the charge, before the report was stored."""
    d = tmp_path_factory.mktemp("crashed-release")
    paths = {**world, "budget": d / "budget.sqlite", "out": d / "out"}
    register(paths["budget"], "acme")
    code = RELEASE_PAUSE.format(consent=str(paths["consent"]), budget=str(paths["budget"]),
                                events=str(paths["events"]), adv="acme", window_end=END)
    proc = spawn(code + f"\nresult.write({str(paths['out'])!r})\n")
    wait_for(proc, "CHARGED")
    kill(proc)
    return paths


def _copy_crashed(crashed, tmp_path):
    paths = _fresh(crashed, tmp_path)
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{crashed['budget']}{suffix}")
        if source.exists():
            shutil.copy(source, f"{paths['budget']}{suffix}")
    return paths


def test_sigkill_between_spend_and_report_keeps_the_spend(crashed_release, tmp_path):
    assert _spend_rows(crashed_release["budget"]) == [("acme", 1.0, "charged", 0)]  # spent, nothing stored
    assert not crashed_release["out"].exists()  # and nothing emitted
    paths = _copy_crashed(crashed_release, tmp_path)
    # the rerun of the same query completes the charged release without spending again
    second = _run_parent(paths)
    assert _spend_rows(paths["budget"]) == [("acme", 1.0, "reported", 1)]
    third = _run_parent(paths)
    assert third.report.to_json() == second.report.to_json()
    assert third.summary["reused_stored_report"] and third.summary["epsilon_spent"] == 0.0
    assert BudgetLedger(paths["budget"]).remaining("acme")[0].epsilon == pytest.approx(3.0)


def test_completing_a_crashed_release_reports_no_new_spend(crashed_release, tmp_path):
    second = _run_parent(_copy_crashed(crashed_release, tmp_path))
    assert second.explanation.total["new_spend"] is False
    assert second.summary["epsilon_spent"] == 0.0


def test_sigkill_after_store_before_file_write(world, tmp_path):
    paths = _fresh(world, tmp_path)
    code = RUN_CODE.format(consent=str(paths["consent"]), budget=str(paths["budget"]),
                           events=str(paths["events"]), adv="acme", window_end=END) + "\npause('STORED')\n"
    proc = spawn(code)
    wait_for(proc, "STORED")
    kill(proc)
    assert _spend_rows(paths["budget"]) == [("acme", 1.0, "reported", 1)]
    again = _run_parent(paths)
    assert again.summary["reused_stored_report"]
    with sqlite3.connect(paths["budget"]) as conn:
        stored = conn.execute("SELECT report_json FROM spend").fetchone()[0]
    assert json.loads(again.report.to_json()) == json.loads(stored)


def test_report_files_always_have_their_spend(world, tmp_path):
    """Every report.json that any of the runs above could leave has its report_id stored with a spend."""
    paths = _fresh(world, tmp_path)
    result = _run_parent(paths)
    written = result.write(paths["out"])
    report_id = json.loads(written["report"].read_text())["report_id"]
    with sqlite3.connect(paths["budget"]) as conn:
        stored = [json.loads(r[0])["report_id"] for r in conn.execute("SELECT report_json FROM spend")]
    assert report_id in stored
    assert not list(paths["out"].glob(".*.tmp"))


# --- Parquet rewrite ------------------------------------------------------------------------------------------
PARQUET_KILL = """
import pyarrow.parquet as pq
from adtarget.segments._assignments_io import write_assignments_parquet
from adtarget.segments._assignments_read import read_assignments_parquet
old = read_assignments_parquet({path!r})
real = pq.write_table
def half_then_die(table, where, *args, **kwargs):
    real(table, where, *args, **kwargs)
    size = os.path.getsize(where)
    with open(where, "r+b") as fh:
        fh.truncate(size // 2)  # the bytes a killed writer had put down
    os.kill(os.getpid(), signal.SIGKILL)
pq.write_table = half_then_die
write_assignments_parquet(old, {path!r})
"""


def test_sigkill_during_assignments_rewrite_keeps_the_previous_file(world, tmp_path):
    from adtarget.segments import read_assignments_parquet

    result = _run_parent(_fresh(world, tmp_path))
    path = result.write(tmp_path / "out")["assignments"]
    before = read_assignments_parquet(path)
    proc = spawn(PARQUET_KILL.format(path=str(path)))
    code, _, err = finish(proc)
    assert code == -9, err
    after = read_assignments_parquet(path)  # the previous, complete file
    assert np.array_equal(after.persons, before.persons)


# --- full disk -------------------------------------------------------------------------------------------------
@pytest.fixture
def tiny_disk():
    """A 512 KiB tmpfs (root only); skipped where mounting is not allowed."""
    mount = Path(tempfile.mkdtemp(prefix="adtarget-full-"))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True,
                          check=False)
    if done.returncode != 0:
        mount.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    gc.collect()  # close any connection an exception's frames still hold
    if subprocess.run(["umount", str(mount)], capture_output=True, check=False).returncode != 0:
        subprocess.run(["umount", "-l", str(mount)], check=False)
    mount.rmdir()


def _fill(directory: Path) -> None:
    with open(directory / "filler", "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass


def test_full_disk_consent_import_raises_ledger_error_and_keeps_state(tiny_disk, tmp_path):
    path = tiny_disk / "consent.sqlite"
    with ConsentLedger(path, PZ) as ledger:
        ledger.import_csv(write_consent_csv(tmp_path / "a.csv", consent_rows(range(1, 201))))
        before = snapshot_state(ledger.snapshot())
        big = write_consent_csv(tmp_path / "big.csv", consent_rows(range(1000, 21000)))
        with pytest.raises(LedgerError, match="full"):
            ledger.import_csv(big)
        assert snapshot_state(ledger.snapshot()) == before


def test_full_disk_release_raises_ledger_error_and_emits_nothing(tiny_disk, world, tmp_path):
    budget_path = tiny_disk / "budget.sqlite"
    budget = BudgetLedger(budget_path, advertisers=[f"adv-{i}" for i in range(50)])
    _fill(tiny_disk)
    with ConsentLedger(world["consent"], PZ) as consent, pytest.raises(LedgerError):
        for i in range(50):  # until the WAL cannot grow
            run(str(world["events"]), consent, pseudonymizer=PZ, budget=budget,
                settings=RunSettings(advertiser=f"adv-{i}"), window_end=END)
    (tiny_disk / "filler").unlink()
    rows = _spend_rows(budget_path)
    assert all(status == "reported" and stored for _, _, status, stored in rows)  # no half-done release
    spent = sum(eps for _, eps, _, _ in rows)
    assert BudgetLedger(budget_path).show()[-1]["epsilon_spent"] == pytest.approx(spent)


def test_full_disk_report_write_leaves_no_partial_file(tiny_disk, world, tmp_path):
    result = _run_parent(_fresh(world, tmp_path))
    _fill(tiny_disk)
    with pytest.raises(OSError):
        result.report.write(tiny_disk / "report.json")
    assert not (tiny_disk / "report.json").exists()
    assert [p.name for p in tiny_disk.iterdir()] == ["filler"]


FSIZE_CODE = """
import resource
from adtarget.consent import ConsentLedger
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death, like a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
try:
    with ConsentLedger({path!r}, PZ) as ledger:
        ledger.import_csv({csv!r})
    print("RESULT ok")
except Exception as exc:
    print("RESULT", type(exc).__name__, str(exc)[:300])
"""


def test_file_size_limit_gives_ledger_error(tmp_path):
    path = tmp_path / "consent.sqlite"
    ConsentLedger(path, PZ).close()
    csv_path = write_consent_csv(tmp_path / "big.csv", consent_rows(range(1, 20_001)))
    code, out, err = finish(spawn(FSIZE_CODE.format(path=str(path), csv=str(csv_path))))
    assert code == 0, err
    assert out.strip().splitlines()[-1].startswith("RESULT LedgerError"), out
    with ConsentLedger(path, PZ) as ledger:
        ledger.check_integrity()
        assert ledger.stats()["history_rows"] == 0


# --- read-only ledgers ------------------------------------------------------------------------------------------
READ_ONLY_CODE = """
from adtarget.consent import ConsentLedger
from adtarget import BudgetLedger, PrivacyBudget
out = {{}}
for name, action in (
        ("consent_read", lambda: ConsentLedger({consent!r}, PZ).snapshot()),
        ("consent_write", lambda: ConsentLedger({consent!r}, PZ).opt_out("1")),
        ("budget_charge", lambda: BudgetLedger({budget!r}).charge("acme", PrivacyBudget(1.0), "rq-1"))):
    try:
        action()
        out[name] = "ok"
    except Exception as exc:
        out[name] = type(exc).__name__ + ": " + str(exc)[:200]
print("RESULT " + json.dumps(out))
"""


@pytest.fixture
def immutable(tmp_path):
    """Files made immutable with chattr +i (root ignores chmod 0444); skipped where chattr does not work."""
    made: list[Path] = []

    def make(path: Path) -> None:
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"chattr +i does not work here: {done.stderr.decode().strip()}")
        made.append(path)

    yield make
    for path in made:
        subprocess.run(["chattr", "-i", str(path)], check=False)


def test_read_only_ledgers_raise_ledger_error_and_spend_nothing(tmp_path, immutable):
    consent, budget = tmp_path / "consent.sqlite", tmp_path / "budget.sqlite"
    with ConsentLedger(consent, PZ) as ledger:
        ledger.import_csv(write_consent_csv(tmp_path / "a.csv", consent_rows(range(1, 11))))
    BudgetLedger(budget, advertisers=["acme"])  # registered: the charge fails on the file, not on the name
    for path in (consent, budget):
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        immutable(path)
    code, out, err = finish(spawn(READ_ONLY_CODE.format(consent=str(consent), budget=str(budget))))
    assert code == 0, err
    result = json.loads(out.split("RESULT ", 1)[1])
    assert result["consent_write"].startswith("LedgerError"), result
    assert result["budget_charge"].startswith("LedgerError"), result
    assert result["consent_read"] == "ok" or result["consent_read"].startswith("LedgerError"), result
    assert _spend_rows(budget) == []


# --- corrupted ledgers ------------------------------------------------------------------------------------------
def _corrupt(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "header":
        data[:100] = np.random.default_rng(0).integers(0, 256, 100, dtype=np.uint8).tobytes()
    elif how == "truncated":
        data = data[: len(data) // 3]
    elif how == "pages":
        rng = np.random.default_rng(1)
        for start in range(4096, len(data), 4096):
            data[start + 8:start + 4000] = rng.integers(0, 256, 3992, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))


def _checkpointed_consent(tmp_path: Path) -> Path:
    path = tmp_path / "consent.sqlite"
    with ConsentLedger(path, PZ) as ledger:
        ledger.import_csv(write_consent_csv(tmp_path / "a.csv", consent_rows(range(1, 2001))))
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.mark.parametrize("how", ["header", "truncated", "pages"])
def test_corrupted_consent_ledger_raises_ledger_error(tmp_path, how):
    path = _checkpointed_consent(tmp_path)
    _corrupt(path, how)
    with pytest.raises(LedgerError) as caught, ConsentLedger(path, PZ) as ledger:
        ledger.snapshot()
        ledger.check_integrity()
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("how", ["header", "truncated"])
def test_corrupted_budget_ledger_raises_ledger_error(tmp_path, how):
    path = tmp_path / "budget.sqlite"
    ledger = BudgetLedger(path, advertisers=["acme", *(f"adv-{i}" for i in range(30))])
    for i in range(30):
        ledger.charge(f"adv-{i}", PrivacyBudget(0.1), f"rq-{i}")
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    _corrupt(path, how)
    with pytest.raises(LedgerError, match="budget ledger"):
        BudgetLedger(path).charge("acme", PrivacyBudget(1.0), "rq-new")


def test_budget_ledger_corrupted_after_opening_blocks_the_release(world, tmp_path):
    paths = _fresh(world, tmp_path)
    budget = BudgetLedger(paths["budget"])
    _corrupt(Path(paths["budget"]), "header")
    with ConsentLedger(paths["consent"], PZ) as consent, pytest.raises(LedgerError):
        result = run(str(paths["events"]), consent, pseudonymizer=PZ, budget=budget,
                     settings=RunSettings(advertiser="acme"), window_end=END)
        result.write(paths["out"])
    assert not paths["out"].exists()


# --- Parquet purge (adtarget.rights._purge) ------------------------------------------------------------------------------
PURGE_KILL = """
import pyarrow.parquet as pq
from adtarget.rights._purge import purge_events
real, written = pq.ParquetWriter.write_table, []
def write_then_die(self, table, *args, **kwargs):
    real(self, table, *args, **kwargs)
    written.append(table.num_rows)
    if len(written) == 2:  # the second file's rows are in its temporary file, not yet renamed
        os.kill(os.getpid(), signal.SIGKILL)
pq.ParquetWriter.write_table = write_then_die
purge_events({path!r}, pseudonymizer=PZ, forgotten=np.array({forgotten!r}, dtype=np.uint64))
"""


def test_sigkill_during_a_parquet_purge_leaves_each_file_whole_and_a_rerun_completes(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from adtarget.events import ingest
    from adtarget.rights import purge_events

    dataset = tmp_path / "events"
    dataset.mkdir()
    rng = np.random.default_rng(0)
    for f in range(3):
        ids = rng.integers(1, 40, 2_000)
        pq.write_table(pa.table({"person_id": ids, "service": ["video"] * ids.size,
                                 "ts": np.full(ids.size, END - 86_400), "category": ["1"] * ids.size}),
                       dataset / f"part-{f}.parquet")
    forgotten_ids = [3, 7, 11]
    forgotten = PZ.pseudonymize(np.array(forgotten_ids)).tolist()

    def counts(path):
        ids = pq.read_table(path).column("person_id").to_numpy()
        return ids.size, int(np.isin(ids, forgotten_ids).sum())

    before = {p.name: counts(p) for p in dataset.glob("*.parquet")}
    code, _, err = finish(spawn(PURGE_KILL.format(path=str(dataset), forgotten=forgotten)))
    assert code == -9, err
    for p in sorted(dataset.glob("*.parquet")):  # each file: as it was, or fully purged
        rows, hits = counts(p)
        assert (rows, hits) in (before[p.name], (before[p.name][0] - before[p.name][1], 0)), p.name
    # a killed rewrite leaves its (unfinished, footer-less) temporary file: hidden, and written from the
    # filtered rows only, so it holds no forgotten person's rows; readers skip it
    leftovers = [p.name for p in dataset.iterdir() if p.name.startswith(".")]
    assert all(n.startswith(".part-1.parquet.") and n.endswith(".tmp") for n in leftovers), leftovers
    ingest(dataset, pseudonymizer=PZ, now=END)  # the dataset stays readable (hidden files are ignored)
    purge_events(dataset, pseudonymizer=PZ, forgotten=np.array(forgotten, dtype=np.uint64))
    for p in dataset.glob("*.parquet"):
        assert counts(p) == (before[p.name][0] - before[p.name][1], 0)
