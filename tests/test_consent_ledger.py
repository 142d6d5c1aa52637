"""ConsentLedger contract: file format and schema checks, last-writer-wins, single updates, forget/erasure,
snapshots (types of docs/internals.md), access export, and what never reaches the file or a message."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from adtarget.consent import CONSENT_COLUMNS, SCHEMA_VERSION, ConsentLedger, ConsentSnapshot
from adtarget.events import Pseudonymizer
from adtarget.events._pseudonym import pseudonyms_to_hex
from adtarget.exceptions import ConsentError, LedgerError, ParameterError

KEY = bytes(range(32))
PZ = Pseudonymizer(KEY)
T = 1_700_000_000
NOW = 1_790_000_000


def row(person: Any = "p1", at: int = T, **fields: Any) -> dict[str, Any]:
    base = {"person_id": person, "birth_year": 1990, "ads_personalization": "opt_in", "cross_service": True,
            "policy_version": "2018-05-14", "updated_at": at, "deleted": False, "terminated": False,
            "location_deleted": False, "jurisdiction": "CN"}
    return {**base, **fields}


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "consent.sqlite"


@pytest.fixture
def ledger(path: Path):
    with ConsentLedger(path, PZ) as led:
        yield led


def current(ledger: ConsentLedger, person: Any) -> dict[str, Any] | None:
    return ledger.export_person(person)["current"]


# --- the file --------------------------------------------------------------------------------------------
def test_new_file_is_a_versioned_wal_ledger_with_the_key_fingerprint(ledger: ConsentLedger, path: Path) -> None:
    assert ledger.schema_version == SCHEMA_VERSION == 1 and ledger.path == path
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
        version = conn.execute("SELECT version FROM schema_version").fetchall()
    assert {"schema_version", "meta", "history", "current"} <= tables
    assert meta["key_id"] == PZ.key_id and meta["algorithm"] == "blake2b" and version == [(1,)]
    assert "ConsentLedger(" in repr(ledger) and PZ.key_id in repr(ledger)


def test_reopening_keeps_data_and_refuses_another_key_or_algorithm(path: Path) -> None:
    with ConsentLedger(path, PZ) as led:
        led.import_records([row()], now=NOW)
    with ConsentLedger(path, Pseudonymizer(KEY)) as led:
        assert len(led.snapshot()) == 1
    for other in (Pseudonymizer(bytes(32)), Pseudonymizer(KEY, algorithm="siphash24")):
        with pytest.raises(LedgerError, match=f"{path}.*key_id=.*cannot be mixed") as err:
            ConsentLedger(path, other)
        assert KEY.hex() not in str(err.value)


def _sqlite_with_other_tables(p: Path) -> None:
    with sqlite3.connect(p) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER)")


def _newer_version(p: Path) -> None:
    ConsentLedger(p, PZ).close()
    with sqlite3.connect(p) as conn:
        conn.execute("INSERT INTO schema_version VALUES (2, 0)")


def _foreign_meta(p: Path) -> None:
    ConsentLedger(p, PZ).close()
    with sqlite3.connect(p) as conn:
        conn.execute("UPDATE meta SET value = 'someone.else' WHERE name = 'application'")


def _garbage(p: Path) -> None:
    p.write_bytes(b"this is not a database at all" * 200)


def _damaged_header(p: Path) -> None:
    with ConsentLedger(p, PZ) as led:
        led.import_records([row(f"p{i}") for i in range(50)], now=NOW)
    data = bytearray(p.read_bytes())
    data[0:16] = b"NOT SQLITE AT AL"
    p.write_bytes(bytes(data))


@pytest.mark.parametrize("make, match", [
    (_sqlite_with_other_tables, "not an adtarget consent ledger"),
    (_newer_version, "schema version 2 is newer"),
    (_foreign_meta, "not an adtarget consent ledger"),
    (_garbage, "not a readable SQLite consent ledger|file is not a database"),
    (_damaged_header, "not a readable SQLite consent ledger|file is not a database"),
])
def test_files_that_are_not_ledgers_are_refused_naming_the_path(path: Path, make: Any, match: str) -> None:
    make(path)
    with pytest.raises(LedgerError, match=match) as err:
        ConsentLedger(path, PZ)
    assert str(path) in str(err.value)


def test_corrupted_page_is_reported_as_ledger_error(path: Path) -> None:
    with ConsentLedger(path, PZ) as led:
        led.import_records([row(f"p{i}", T + i) for i in range(3000)], now=NOW)
    data = bytearray(path.read_bytes())
    page = 4096
    for start in range(2 * page, len(data) - page, 3 * page):  # scribble over many b-tree pages
        data[start:start + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    with pytest.raises(LedgerError, match=str(path)), ConsentLedger(path, PZ) as led:
        led.check_integrity()
        led.snapshot(as_of=T + 10)


def test_directory_and_closed_ledger(tmp_path: Path, path: Path) -> None:
    with pytest.raises(LedgerError, match="directory"):
        ConsentLedger(tmp_path, PZ)
    led = ConsentLedger(path, PZ)
    led.close()
    led.close()
    with pytest.raises(LedgerError, match="closed"):
        led.snapshot()


@pytest.mark.parametrize("kwargs, match", [
    ({"pseudonymizer": "key"}, "pseudonymizer"), ({"timeout": 0}, "timeout"), ({"timeout": True}, "timeout"),
])
def test_constructor_parameters_are_checked(path: Path, kwargs: dict[str, Any], match: str) -> None:
    args = {"pseudonymizer": PZ, **kwargs}
    with pytest.raises(ParameterError, match=match):
        ConsentLedger(path, **args)


# --- last writer wins --------------------------------------------------------------------------------------
def test_older_record_goes_to_history_but_not_current(ledger: ConsentLedger) -> None:
    first = ledger.import_records([row(at=T + 10, ads_personalization="opt_out")], now=NOW)
    late = ledger.import_records([row(at=T, ads_personalization="opt_in")], now=NOW)
    assert first.applied == 1 and late.applied == 0 and late.accepted == 1
    assert current(ledger, "p1")["ads_personalization"] == "opt_out"
    assert [h["updated_at"] for h in ledger.history("p1")] == [T, T + 10]
    assert not ledger.snapshot().opted_in[0] and ledger.snapshot(as_of=T + 5).opted_in[0]


def test_tied_birth_years_go_to_the_youngest_within_and_across_imports(ledger: ConsentLedger) -> None:
    ledger.import_records([row(birth_year=1971), row(birth_year=1970)], now=NOW)
    assert current(ledger, "p1")["birth_year"] == 1971
    ledger.import_records([row(birth_year=1969)], now=NOW)
    assert current(ledger, "p1")["birth_year"] == 1971
    ledger.import_records([row(birth_year=1972, jurisdiction="US-CA")], now=NOW)
    assert current(ledger, "p1")["birth_year"] == 1972 and current(ledger, "p1")["jurisdiction"] == "CN"  # first in order


# --- single updates ---------------------------------------------------------------------------------------
def test_single_updates_keep_other_fields(ledger: ConsentLedger) -> None:
    ledger.import_records([row(birth_year=1985, jurisdiction="US-CA")], now=NOW)
    assert ledger.opt_out("p1") is True
    assert ledger.set_cross_service("p1", False) is True
    state = current(ledger, "p1")
    assert state["ads_personalization"] == "opt_out" and state["cross_service"] is False
    assert state["birth_year"] == 1985 and state["jurisdiction"] == "US-CA"
    assert ledger.opt_in("p1", policy_version="2026-01-01")
    assert current(ledger, "p1")["policy_version"] == "2026-01-01"
    assert ledger.record("p1", terminated=True, birth_year=None, jurisdiction=None)
    state = current(ledger, "p1")
    assert state["terminated"] and state["birth_year"] is None and state["jurisdiction"] is None


def test_opt_out_of_an_unknown_person_is_recorded(ledger: ConsentLedger) -> None:
    assert ledger.opt_out(424242)
    snap = ledger.snapshot()
    assert len(snap) == 1 and not snap.opted_in[0] and snap.policy_version[0] == ""
    assert snap.persons[0] == PZ.pseudonymize(["424242"])[0]


def test_explicit_older_update_builds_on_the_state_then(ledger: ConsentLedger) -> None:
    ledger.import_records([row(at=T, cross_service=False), row(at=T + 100, birth_year=1999, cross_service=False)],
                          now=NOW)
    assert ledger.opt_out("p1", updated_at=T + 50) is False  # older than current: history only
    assert current(ledger, "p1")["ads_personalization"] == "opt_in"
    then = [h for h in ledger.history("p1") if h["updated_at"] == T + 50][0]
    assert then["birth_year"] == 1990 and then["ads_personalization"] == "opt_out"
    assert not ledger.snapshot(as_of=T + 60).opted_in[0]


def test_opt_out_takes_effect_even_when_the_current_record_is_future_dated(ledger: ConsentLedger) -> None:
    ledger.import_records([row(at=NOW + 200)], now=NOW)  # within the allowed clock skew of the import
    assert ledger.opt_out("p1") is True
    assert current(ledger, "p1")["ads_personalization"] == "opt_out"


@pytest.mark.parametrize("call, error, match", [
    (lambda led: led.record("p1", colour="red"), ParameterError, "unknown consent field"),
    (lambda led: led.record("p1", birth_year=1800), ParameterError, "birth_year"),
    (lambda led: led.record("p1", ads_personalization="yes"), ParameterError, "ads_personalization"),
    (lambda led: led.record("p1", deleted="no"), ParameterError, "deleted: must be a bool"),
    (lambda led: led.record("p1", jurisdiction="Atlantis"), ParameterError, "jurisdiction"),
    (lambda led: led.record("p9", ads_personalization="opt_in"), ParameterError, "policy_version: required"),
    (lambda led: led.record("p1", updated_at=NOW * 2, deleted=False), ParameterError, "updated_at"),
    (lambda led: led.record("p1", updated_at="2024-01-01", deleted=False), ParameterError, "updated_at"),
    (lambda led: led.set_cross_service("p1", "yes"), ParameterError, "allowed"),
    (lambda led: led.opt_out(""), ParameterError, "person_id"),
    (lambda led: led.opt_out(None), ParameterError, "person_id"),
    (lambda led: led.snapshot(as_of=dt.datetime(2024, 1, 1)), ParameterError, "timezone-aware"),
    (lambda led: led.snapshot(as_of="2024"), ParameterError, "as_of"),
])
def test_single_update_errors_name_the_parameter_not_the_person(ledger: ConsentLedger, call: Any, error: type,
                                                                 match: str) -> None:
    ledger.import_records([row()], now=NOW)
    with pytest.raises(error, match=match) as err:
        call(ledger)
    assert "p1" not in str(err.value) and "p9" not in str(err.value)
    assert len(ledger.history("p1")) == 1


# --- forget and erasure -------------------------------------------------------------------------------------
def test_forget_leaves_only_a_scrubbed_tombstone(ledger: ConsentLedger) -> None:
    ledger.import_records([row(at=T + i, birth_year=1980 + i) for i in range(5)], now=NOW)
    ledger.forget("p1")
    history = ledger.history("p1")
    assert len(history) == 1
    tomb = history[0]
    assert tomb["deleted"] and tomb["source"] == "forget" and tomb["ads_personalization"] == "opt_out"
    assert tomb["birth_year"] is None and tomb["jurisdiction"] is None and tomb["location_deleted"]
    assert not tomb["cross_service"]
    snap = ledger.snapshot()
    assert snap.deleted.tolist() == [True] and snap.birth_year.tolist() == [0]
    assert len(ledger.snapshot(as_of=T + 3)) == 0  # the past is erased too


def test_forgotten_person_stays_forgotten_until_a_newer_record(ledger: ConsentLedger) -> None:
    ledger.import_records([row(at=T)], now=NOW)
    ledger.forget("p1")
    tomb_at = ledger.history("p1")[0]["updated_at"]
    stale = ledger.import_records([row(at=T + 5)], now=NOW + 10**6)
    assert stale.applied == 0 and stale.erased == 1 and len(ledger.history("p1")) == 1
    assert ledger.opt_out("p1") is False
    with pytest.raises(ConsentError, match="deleted"):
        ledger.opt_in("p1", policy_version="2026-01-01")
    with pytest.raises(ConsentError, match="deleted"):
        ledger.set_cross_service("p1", True)
    assert ledger.record("p1", deleted=False, ads_personalization="opt_in", policy_version="2026-01-01")
    state = current(ledger, "p1")
    assert not state["deleted"] and state["ads_personalization"] == "opt_in" and state["updated_at"] >= tomb_at
    assert len(ledger.history("p1")) == 2


def test_imported_deletion_erases_earlier_rows_of_that_person_only(ledger: ConsentLedger) -> None:
    ledger.import_records([row("a", T), row("a", T + 1), row("b", T)], now=NOW)
    report = ledger.import_records([row("a", T + 2, deleted=True), row("a", T + 3, deleted=False)], now=NOW)
    assert report.erased == 2
    assert [h["deleted"] for h in ledger.history("a")] == [True, False]
    assert ledger.history("a")[0]["birth_year"] is None
    assert len(ledger.history("b")) == 1


# --- reads ------------------------------------------------------------------------------------------------
def test_snapshot_types_follow_internals(ledger: ConsentLedger) -> None:
    ledger.import_records([row(f"p{i}", T + i, birth_year=None if i % 2 else 1990,
                               jurisdiction=None if i % 3 else "DE") for i in range(20)], now=NOW)
    snap = ledger.snapshot()
    assert isinstance(snap, ConsentSnapshot) and len(snap) == 20 and snap.as_of >= NOW
    assert snap.persons.dtype == np.uint64 and np.all(np.diff(snap.persons.astype(float)) > 0)
    assert snap.birth_year.dtype == np.int16 and set(snap.birth_year.tolist()) == {0, 1990}
    for name in ("opted_in", "cross_service", "deleted", "terminated", "location_deleted"):
        assert getattr(snap, name).dtype == np.bool_
    assert snap.policy_version.dtype.kind == "U" and snap.jurisdiction.dtype.kind == "U"
    assert set(snap.jurisdiction.tolist()) == {"", "DE"}
    with pytest.raises(ValueError):
        snap.opted_in[0] = False
    expected = np.sort(PZ.pseudonymize([f"p{i}" for i in range(20)]))
    assert np.array_equal(snap.persons, expected)
    assert snap.index_of(np.array([expected[3], 12345], dtype=np.uint64)).tolist() == [3, -1]
    aware = dt.datetime.fromtimestamp(T + 4, dt.timezone.utc)
    assert len(ledger.snapshot(as_of=aware)) == 5 and ledger.snapshot(as_of=T + 4).as_of == T + 4
    assert "persons=20" in str(snap) and snap.counts()["persons"] == 20
    for text in (repr(snap), str(snap)):  # counts only, never a pseudonym
        assert not any(str(p) in text or f"{p:016x}" in text for p in snap.persons.tolist())


def test_empty_ledger_snapshot(ledger: ConsentLedger) -> None:
    for snap in (ledger.snapshot(), ledger.snapshot(as_of=T)):
        assert len(snap) == 0 and snap.persons.dtype == np.uint64 and snap.birth_year.dtype == np.int16
        assert snap.index_of(np.array([1], dtype=np.uint64)).tolist() == [-1]


def test_snapshot_validates_itself() -> None:
    good = dict(persons=np.array([1, 2], np.uint64), birth_year=np.zeros(2, np.int16),
                opted_in=np.ones(2, bool), cross_service=np.ones(2, bool), deleted=np.zeros(2, bool),
                terminated=np.zeros(2, bool), location_deleted=np.zeros(2, bool),
                policy_version=np.array(["a", "b"]), jurisdiction=np.array(["", ""]))
    ConsentSnapshot(as_of=1, **good)
    for change, match in [({"persons": np.array([2, 1], np.uint64)}, "strictly increasing"),
                          ({"persons": np.array([1, 1], np.uint64)}, "strictly increasing"),
                          ({"birth_year": np.zeros(2, np.int64)}, "birth_year"),
                          ({"deleted": np.zeros(3, bool)}, "rows"),
                          ({"jurisdiction": np.array([None, None], dtype=object)}, "jurisdiction")]:
        with pytest.raises(ParameterError, match=match):
            ConsentSnapshot(as_of=1, **{**good, **change})
    with pytest.raises(ParameterError, match="as_of"):
        ConsentSnapshot(as_of=1.5, **good)  # type: ignore[arg-type]


def test_export_person_is_json_and_complete(ledger: ConsentLedger) -> None:
    ledger.import_records([row(at=T), row(at=T + 1, cross_service=False)], now=NOW)
    export = ledger.export_person("p1")
    json.dumps(export)
    assert export["pseudonym"] == pseudonyms_to_hex(PZ.pseudonymize(["p1"]))[0]
    assert export["key_id"] == PZ.key_id and len(export["history"]) == 2
    assert export["current"]["cross_service"] is False
    assert set(export["history"][0]) == {*CONSENT_COLUMNS[1:], "recorded_at", "source"}
    assert ledger.export_person("nobody") == {**ledger.export_person("nobody"), "current": None, "history": []}


def test_stats_count_current_state(ledger: ConsentLedger) -> None:
    ledger.import_records([row("a"), row("b", ads_personalization="opt_out", cross_service=False),
                           row("c", terminated=True, location_deleted=True)], now=NOW)
    ledger.forget("c")
    assert ledger.stats() == {"persons": 3, "opted_in": 1, "cross_service": 1, "deleted": 1, "terminated": 1,
                              "location_deleted": 1, "history_rows": 3, "schema_version": 1}


def test_import_from_pandas_dataframe(ledger: ConsentLedger) -> None:
    frame = pd.DataFrame([row("a"), row("b", birth_year=None, jurisdiction=None)])
    frame["birth_year"] = frame["birth_year"].astype("Int16")
    assert ledger.import_records(frame, now=NOW).accepted == 2
    assert sorted(ledger.snapshot().birth_year.tolist()) == [0, 1990]


# --- what never reaches the file ----------------------------------------------------------------------------
def test_raw_ids_and_key_are_not_stored_and_sql_is_parameterised(ledger: ConsentLedger, path: Path) -> None:
    evil = "x'); DROP TABLE history; --"
    ledger.import_records([row("alice@example.org"), row(evil), row(987654321987)], source="it's \"quoted\"",
                          now=NOW)
    ledger.opt_out(evil)
    with pytest.raises(ParameterError, match="policy_version: must be the ISO date"):
        ledger.record("alice@example.org", policy_version="'; DELETE FROM current; --")
    ledger.record("alice@example.org", policy_version="2024-01-01", source="'; DELETE FROM current; --")
    assert ledger.stats()["persons"] == 3 and ledger.stats()["history_rows"] == 5
    ledger.close()
    blob = b"".join(p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name))
    for secret in (b"alice@example.org", b"DROP TABLE history", b"987654321987", KEY, KEY.hex().encode()):
        assert secret not in blob


def test_import_of_the_consent_package_stays_light() -> None:
    code = ("import sys, adtarget.consent, adtarget.events._pseudonym; "
            "print(sorted(m for m in ('pandas', 'pyarrow', 'pyspark', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
