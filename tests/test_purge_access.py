"""Deletion, retention and access (P7, P8): forget purges a person from every file the SDK owns; the access
export lists what is held about one person."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adtarget.consent import ConsentLedger
from adtarget.gate import EligibilityPolicy
from adtarget.rights import access_export, forget_everywhere, purge_events

NOW = int(dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc).timestamp())
DAY = 86_400


def events_table(n_people=6, per_person=5):
    pid = np.repeat(np.arange(1, n_people + 1) * 101, per_person)
    n = pid.size
    return pa.table({
        "person_id": pid,
        "service": np.array(["video", "news", "search", "games", "music"] * (n // 5 + 1))[:n],
        "ts": NOW - (np.arange(n) % per_person) * 100 * DAY,
        "category": np.array(["1", "239", "483"] * (n // 3 + 1))[:n],
        "kind": np.array(["content_view", "search", "app_use", "purchase", "search"] * (n // 5 + 1))[:n],
    })


@pytest.fixture
def ledger(tmp_path, pseudonymizer):
    ledger = ConsentLedger(tmp_path / "consent.sqlite", pseudonymizer)
    for p in range(1, 7):
        ledger.record(p * 101, birth_year=1990, ads_personalization="opt_in", cross_service=True,
                      policy_version="2018-05-14", updated_at=NOW - 400 * DAY)
    return ledger


def test_forget_purges_events_dataset_and_assignments(tmp_path, ledger, pseudonymizer):
    dataset = tmp_path / "events"
    dataset.mkdir()
    table = events_table()
    pq.write_table(table.slice(0, 15), dataset / "part-0.parquet")
    pq.write_table(table.slice(15), dataset / "part-1.parquet")
    hexes = [f"{p:016x}" for p in pseudonymizer.pseudonymize(np.arange(1, 7) * 101)]
    pq.write_table(pa.table({"pseudonym": hexes, "iab-2.2:1": [True] * 6}), tmp_path / "assignments.parquet")
    report = forget_everywhere([202, 505], ledger=ledger, pseudonymizer=pseudonymizer, events=[dataset],
                               assignments=[tmp_path / "assignments.parquet"])
    assert report.removed_forgotten == 5 + 5 + 2
    left = pq.read_table(dataset).column("person_id").to_pylist()
    assert len(left) == 20 and 202 not in left and 505 not in left
    kept = pq.read_table(tmp_path / "assignments.parquet").column("pseudonym").to_pylist()
    assert hexes[1] not in kept and hexes[4] not in kept and len(kept) == 4
    snap = ledger.snapshot()
    gone = pseudonymizer.pseudonymize([202, 505])
    assert snap.deleted[np.searchsorted(snap.persons, np.sort(gone))].all()
    assert not list(tmp_path.rglob("*.tmp"))


def test_retention_purge_drops_old_rows_per_kind(tmp_path, pseudonymizer):
    path = tmp_path / "events.parquet"
    pq.write_table(events_table(), path)
    policy = EligibilityPolicy(retention_days={"search": 150, "content_view": 250, "app_use": 250,
                                               "purchase": 250})
    report = purge_events(path, pseudonymizer=pseudonymizer, policy=policy, now=NOW)
    table = pq.read_table(path)
    age_days = (NOW - np.asarray(table.column("ts"))) / DAY
    limits = {"search": 150, "content_view": 250, "app_use": 250, "purchase": 250}
    assert all(a <= limits[k] for a, k in zip(age_days, table.column("kind").to_pylist()))
    assert report.removed_retention == 30 - table.num_rows and report.removed_retention > 0
    assert report.rows_in == 30


def test_purge_is_idempotent_and_leaves_untouched_files_alone(tmp_path, pseudonymizer):
    path = tmp_path / "events.parquet"
    pq.write_table(events_table(), path)
    before = path.stat().st_mtime_ns
    report = purge_events(path, pseudonymizer=pseudonymizer, forgotten=pseudonymizer.pseudonymize([999]))
    assert report.removed_forgotten == 0 and path.stat().st_mtime_ns == before


def test_access_export_lists_consent_events_and_segments(tmp_path, ledger, pseudonymizer):
    path = tmp_path / "events.parquet"
    pq.write_table(events_table(), path)
    hexes = [f"{p:016x}" for p in pseudonymizer.pseudonymize(np.arange(1, 7) * 101)]
    pq.write_table(pa.table({"pseudonym": hexes, "iab-2.2:1": [True, False] * 3, "iab-2.2:239": [True] * 6}),
                   tmp_path / "assignments.parquet")
    export = access_export(101, ledger=ledger, pseudonymizer=pseudonymizer, events=[path],
                           assignments=[tmp_path / "assignments.parquet"])
    assert export["pseudonym"] == hexes[0]
    assert sum(e["events"] for e in export["events"]) == 5
    assert export["segments"] == ["iab-2.2:1", "iab-2.2:239"]
    assert export["consent"]["current"]["ads_personalization"] == "opt_in"
    assert "101" not in str(export["events"])
