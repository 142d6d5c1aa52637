"""BudgetLedger: exact accounting with literals, idempotency, windows, the global cap, schema and hardening.

Every charge goes to a registered advertiser (issue 14, finding 7); the advertiser registry itself is tested in
tests/test_advertisers.py.
"""

from __future__ import annotations

import copy
import json
import math
import sqlite3
import subprocess
import sys
import tempfile
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adtarget import BudgetLedger, PrivacyBudget
from adtarget.budget._ledger import (  # the documented defaults are not public names
    DEFAULT_ADVERTISER_CAP,
    DEFAULT_GLOBAL_CAP,
    DEFAULT_WINDOW_DAYS,
    SCHEMA_VERSION,
)
from adtarget.exceptions import BudgetExhaustedError, LedgerError, ParameterError, UnknownAdvertiserError

DAY = 86_400
T0 = 1_000 * 30 * DAY + 5 * DAY  # 5 days into a 30-day window aligned on the epoch


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(tmp_path: Path, clock: Clock) -> BudgetLedger:
    led = BudgetLedger(tmp_path / "budget.sqlite", advertisers=["acme", "beta", "gamma"], clock=clock)
    led.set_caps(advertiser_cap=PrivacyBudget(1.0, 1e-5), global_cap=PrivacyBudget(2.0, 1e-4))
    return led


def eps(x: float) -> PrivacyBudget:
    return PrivacyBudget(x)


# --- exact accounting ------------------------------------------------------------------------------
def test_three_charges_fit_and_a_fourth_is_refused_with_the_remaining_named(ledger: BudgetLedger) -> None:
    for i in range(3):
        assert ledger.charge("acme", eps(0.3), f"q{i}").new_spend
    with pytest.raises(BudgetExhaustedError) as info:
        ledger.charge("acme", eps(0.2), "q3")
    message = str(info.value)
    assert "'acme'" in message and "requested ε=0.2" in message and "remaining ε=0.1," in message
    adv, glob = ledger.remaining("acme")
    assert adv.epsilon == pytest.approx(0.1, abs=1e-12)
    assert glob.epsilon == pytest.approx(1.1, abs=1e-12)
    assert ledger.lookup("q3") is None  # the refused charge left no row
    assert sum(r["epsilon_spent"] for r in ledger.show() if r["scope"] == "advertiser") == pytest.approx(0.9)


def test_five_times_point_two_fits_a_cap_of_one_within_tolerance(ledger: BudgetLedger) -> None:
    for i in range(5):
        ledger.charge("acme", eps(0.2), f"q{i}")
    assert ledger.remaining("acme")[0].epsilon == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(BudgetExhaustedError):
        ledger.charge("acme", eps(1e-9), "q5")


def test_ten_times_point_one_fits_exactly(ledger: BudgetLedger) -> None:
    for i in range(10):
        ledger.charge("acme", eps(0.1), f"q{i}")  # fsum = 1.0; the float running sum would be 0.9999999999999999
    assert ledger.remaining("acme")[0].epsilon == pytest.approx(0.0, abs=1e-12)


def test_delta_is_capped_too(ledger: BudgetLedger) -> None:
    for i in range(5):
        ledger.charge("acme", PrivacyBudget(0.01, 2e-6), f"q{i}")
    with pytest.raises(BudgetExhaustedError, match="δ"):
        ledger.charge("acme", PrivacyBudget(0.01, 1e-7), "q5")
    assert ledger.remaining("acme")[0].delta == pytest.approx(0.0, abs=1e-18)


def test_global_cap_binds_across_advertisers(ledger: BudgetLedger) -> None:
    ledger.charge("acme", eps(1.0), "a")
    ledger.charge("beta", eps(0.7), "b")
    with pytest.raises(BudgetExhaustedError, match="global cap") as info:
        ledger.charge("gamma", eps(0.4), "c")  # gamma's own cap (1.0) is untouched
    assert "'gamma'" in str(info.value) and "remaining ε=0.3" in str(info.value)
    ledger.charge("gamma", eps(0.3), "c2")
    assert ledger.remaining("gamma")[1].epsilon == pytest.approx(0.0, abs=1e-12)


# --- idempotency and reports -----------------------------------------------------------------------
# Storing a report is private to the release (red-team B7: a public store_report let anyone holding the ledger
# plant the report a later identical release hands out); its contract is tested here through ``_store_report``.
def test_storing_a_report_is_not_public(ledger: BudgetLedger) -> None:
    assert not hasattr(ledger, "store_report")


def test_identical_query_is_not_charged_twice(ledger: BudgetLedger) -> None:
    first = ledger.charge("acme", eps(0.5), "same")
    again = ledger.charge("acme", eps(0.5), "same")
    assert again.charge_id == first.charge_id and not again.new_spend and again.report_json is None
    assert ledger.remaining("acme")[0].epsilon == pytest.approx(0.5)


def test_stored_report_is_returned_for_a_repeated_query(ledger: BudgetLedger) -> None:
    charge = ledger.charge("acme", eps(0.5), "same")
    report = json.dumps({"schema": "adtarget.segment_report/v1", "segments": []})
    assert ledger._store_report(charge.charge_id, report) == report
    assert ledger.lookup("same") == report
    again = ledger.charge("acme", eps(0.5), "same")
    assert again.report_json == report and again.status == "reported" and not again.new_spend
    assert ledger.remaining("acme")[0].epsilon == pytest.approx(0.5)


def test_first_stored_report_wins(ledger: BudgetLedger) -> None:
    charge = ledger.charge("acme", eps(0.5), "same")
    assert ledger._store_report(charge.charge_id, '{"n": 1}') == '{"n": 1}'
    assert ledger._store_report(charge.charge_id, '{"n": 2}') == '{"n": 1}'


def test_same_key_with_another_advertiser_or_budget_is_refused(ledger: BudgetLedger) -> None:
    ledger.charge("acme", eps(0.5), "same")
    with pytest.raises(ParameterError, match="another advertiser"):
        ledger.charge("beta", eps(0.5), "same")
    with pytest.raises(ParameterError, match="was charged with"):
        ledger.charge("acme", eps(0.4), "same")


@pytest.mark.parametrize(("charge_id", "report", "match"), [
    (999, "{}", "charge_id"), ("1", "{}", "charge_id"), (1, "not json", "report_json"), (1, b"{}", "report_json"),
])
def test_store_report_validates(ledger: BudgetLedger, charge_id: object, report: object, match: str) -> None:
    ledger.charge("acme", eps(0.1), "k")
    with pytest.raises(ParameterError, match=match):
        ledger._store_report(charge_id, report)  # type: ignore[arg-type]


# --- windows ---------------------------------------------------------------------------------------
def test_window_rolls_over(ledger: BudgetLedger, clock: Clock) -> None:
    ledger.charge("acme", eps(1.0), "w1")
    with pytest.raises(BudgetExhaustedError):
        ledger.charge("acme", eps(0.1), "w1b")
    clock.now = T0 + 25 * DAY - 1  # last second of the window
    with pytest.raises(BudgetExhaustedError):
        ledger.charge("acme", eps(0.1), "w1c")
    clock.now = T0 + 25 * DAY  # first second of the next window
    assert ledger.remaining("acme")[0].epsilon == 1.0
    second = ledger.charge("acme", eps(1.0), "w2")
    assert second.window_start == T0 + 25 * DAY and second.window_end - second.window_start == 30 * DAY
    assert ledger.charge("acme", eps(1.0), "w1").charge_id == 1  # old report key still idempotent


def test_window_start_must_be_the_current_window(ledger: BudgetLedger) -> None:
    start = T0 - 5 * DAY
    assert ledger.charge("acme", eps(0.1), "a", window_start=start).window_start == start
    aware = datetime.fromtimestamp(start, tz=timezone.utc)
    assert ledger.charge("acme", eps(0.1), "b", window_start=aware).window_start == start
    for bad in (start - 30 * DAY, start + 30 * DAY, start + 1, datetime.fromtimestamp(start), "2026-01-01"):
        with pytest.raises(ParameterError, match="window_start"):
            ledger.charge("acme", eps(0.1), f"c{bad}", window_start=bad)  # type: ignore[arg-type]


def test_shorter_window_still_counts_overlapping_spend(ledger: BudgetLedger, clock: Clock) -> None:
    ledger.charge("acme", eps(0.8), "a")
    ledger.set_caps(window_days=7)
    assert ledger.caps.window_days == 7
    assert ledger.remaining("acme")[0].epsilon == pytest.approx(0.2)  # the 30-day row overlaps this week


# --- caps and defaults -----------------------------------------------------------------------------
def test_defaults_are_documented_values(tmp_path: Path) -> None:
    caps = BudgetLedger(tmp_path / "b.sqlite").caps
    assert caps.advertiser_cap == DEFAULT_ADVERTISER_CAP == PrivacyBudget(4.0, 1e-5)
    assert caps.global_cap == DEFAULT_GLOBAL_CAP == PrivacyBudget(20.0, 1e-4)
    assert caps.window_days == DEFAULT_WINDOW_DAYS == 30 and caps.window_origin == 0


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"advertiser_cap": 1.0}, "budget"), ({"global_cap": PrivacyBudget(math.inf, allow_infinite_epsilon=True)},
                                          "budget"),
    ({"window_days": 0}, "window_days"), ({"window_days": 1.5}, "window_days"),
])
def test_set_caps_validates(ledger: BudgetLedger, kwargs: dict, name: str) -> None:
    with pytest.raises(ParameterError, match=name):
        ledger.set_caps(**kwargs)


def test_show_lists_every_registered_advertiser_then_the_global_row(ledger: BudgetLedger) -> None:
    ledger.register_advertiser("Zeta")
    ledger.charge("zeta", PrivacyBudget(0.25, 1e-6), "z")
    ledger.charge("acme", eps(0.5), "a")
    rows = ledger.show()
    # registered advertisers by canonical id, also those who spent nothing yet (beta, gamma)
    assert [(r["scope"], r["advertiser"]) for r in rows] == [
        ("advertiser", "acme"), ("advertiser", "beta"), ("advertiser", "gamma"), ("advertiser", "zeta"),
        ("global", None)]
    assert rows[-1]["epsilon_spent"] == 0.75 and rows[-1]["epsilon_remaining"] == 1.25
    assert rows[3]["delta_spent"] == 1e-6 and rows[0]["window_start"].endswith("Z")
    assert rows[1]["epsilon_spent"] == 0.0 and rows[1]["epsilon_remaining"] == 1.0


def test_an_unregistered_advertiser_is_refused_and_spends_nothing(ledger: BudgetLedger) -> None:
    with pytest.raises(UnknownAdvertiserError, match="'nobody' is not registered.*advertiser add"):
        ledger.charge("nobody", eps(0.1), "q")
    with pytest.raises(UnknownAdvertiserError, match="not registered"):
        ledger.remaining("nobody")
    assert ledger.lookup("q") is None and ledger.show()[-1]["epsilon_spent"] == 0.0


# --- advertiser names ------------------------------------------------------------------------------
def test_sql_looking_advertiser_is_just_a_name(ledger: BudgetLedger, tmp_path: Path) -> None:
    evil = "x'); DROP TABLE spend;--"
    assert ledger.register_advertiser(evil).advertiser_id == evil.lower()
    ledger.charge(evil, eps(0.5), "q")
    assert ledger.remaining(evil)[0].epsilon == pytest.approx(0.5)
    assert evil.lower() in [r["advertiser"] for r in ledger.show()]
    with closing(sqlite3.connect(tmp_path / "budget.sqlite")) as conn:
        assert conn.execute("SELECT advertiser FROM spend").fetchall() == [(evil.lower(),)]  # the canonical id


def test_unicode_names_are_one_canonical_advertiser(ledger: BudgetLedger) -> None:
    registered = ledger.register_advertiser("Caf\u00e9 広告 🚀")
    assert registered.advertiser_id == "caf\u00e9 広告 🚀"  # NFKC, case-folded
    assert ledger.register_advertiser("CAFE\u0301 広告 🚀") == registered  # decomposed é, upper case: the same one
    ledger.charge("Caf\u00e9 広告 🚀", eps(0.6), "a")
    with pytest.raises(BudgetExhaustedError):
        ledger.charge("Cafe\u0301 広告 🚀", eps(0.6), "b")  # same advertiser, decomposed é


@pytest.mark.parametrize("name", ["", " acme", "acme ", "a" * 201, "ac\x00me", "ac\nme", "ac\u200bme", 42, None])
def test_invalid_advertiser_names_are_refused(ledger: BudgetLedger, name: object) -> None:
    with pytest.raises(ParameterError, match="advertiser"):
        ledger.charge(name, eps(0.1), "q")  # type: ignore[arg-type]


@pytest.mark.parametrize(("budget", "key", "match"), [
    (0.1, "q", "budget"), (PrivacyBudget(math.inf, allow_infinite_epsilon=True), "q", "finite"),
    (PrivacyBudget(0.1), "", "query_key"), (PrivacyBudget(0.1), "a\nb", "query_key"), (PrivacyBudget(0.1), 7, "query_key"),
])
def test_invalid_charges_are_refused(ledger: BudgetLedger, budget: object, key: object, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        ledger.charge("acme", budget, key)  # type: ignore[arg-type]


# --- storage ---------------------------------------------------------------------------------------
def test_file_is_wal_with_a_busy_timeout_and_versioned(ledger: BudgetLedger, tmp_path: Path) -> None:
    conn = ledger._connect()
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000
    finally:
        conn.close()
    assert ledger.schema_version == SCHEMA_VERSION == 3
    assert BudgetLedger(tmp_path / "budget.sqlite").schema_version == 3  # reopening does not migrate again
    with closing(sqlite3.connect(tmp_path / "budget.sqlite")) as conn:
        assert [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")] == [1, 2, 3]


def test_spend_rows_are_append_only(ledger: BudgetLedger, tmp_path: Path) -> None:
    ledger.charge("acme", eps(0.5), "q")
    with closing(sqlite3.connect(tmp_path / "budget.sqlite")) as conn:
        for sql in ("DELETE FROM spend", "UPDATE spend SET epsilon = 0.001", "UPDATE spend SET advertiser = 'x'",
                    "DELETE FROM advertisers", "UPDATE advertisers SET advertiser = 'x'"):
            with pytest.raises(sqlite3.IntegrityError):
                conn.execute(sql)


def test_newer_schema_is_refused(ledger: BudgetLedger, tmp_path: Path) -> None:
    with closing(sqlite3.connect(tmp_path / "budget.sqlite")) as conn, conn:
        conn.execute("INSERT INTO schema_version VALUES (99, 0)")
    with pytest.raises(LedgerError, match="schema version 99"):
        BudgetLedger(tmp_path / "budget.sqlite")


def test_foreign_or_corrupt_files_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    with closing(sqlite3.connect(other)) as conn, conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(LedgerError, match="not an adtarget budget ledger"):
        BudgetLedger(other)
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(LedgerError):
        BudgetLedger(garbage)
    with pytest.raises(LedgerError):
        BudgetLedger(tmp_path / "missing-dir" / "b.sqlite")


CRASH = """
import os, sys
from adtarget import BudgetLedger, PrivacyBudget
BudgetLedger(sys.argv[1]).charge("acme", PrivacyBudget(0.4), "crashy")
os._exit(3)  # dies between charge and storing the report
"""


def test_crash_between_charge_and_store_keeps_the_spend(tmp_path: Path) -> None:
    path = tmp_path / "budget.sqlite"
    BudgetLedger(path, advertisers=["acme"]).set_caps(advertiser_cap=PrivacyBudget(1.0))
    proc = subprocess.run([sys.executable, "-c", CRASH, str(path)], capture_output=True, timeout=120)
    assert proc.returncode == 3, proc.stderr.decode()
    ledger = BudgetLedger(path)
    assert ledger.remaining("acme")[0].epsilon == pytest.approx(0.6)
    assert ledger.lookup("crashy") is None
    retry = ledger.charge("acme", PrivacyBudget(0.4), "crashy")
    assert not retry.new_spend and retry.report_json is None
    assert ledger._store_report(retry.charge_id, "{}") == "{}"
    assert ledger.remaining("acme")[0].epsilon == pytest.approx(0.6)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.sampled_from([0.05, 0.1, 0.2, 0.25, 0.3, 0.333, 0.5, 0.7]), min_size=1, max_size=12))
def test_accepted_spend_never_exceeds_the_cap(requests: list[float]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ledger = BudgetLedger(Path(tmp) / "b.sqlite", advertisers=["acme"], clock=Clock())
        ledger.set_caps(advertiser_cap=PrivacyBudget(1.0))
        accepted: list[float] = []
        for i, e in enumerate(requests):
            try:
                ledger.charge("acme", eps(e), f"q{i}")
                accepted.append(e)
            except BudgetExhaustedError:
                assert math.fsum(accepted) + e > 1.0 + 1e-12
        assert math.fsum(accepted) <= 1.0 + 1e-12
        assert ledger.remaining("acme")[0].epsilon == pytest.approx(1.0 - math.fsum(accepted), abs=1e-12)


def test_in_memory_ledger_keeps_its_state_and_copies_share_it() -> None:
    ledger = BudgetLedger(":memory:", advertisers=["acme"], clock=Clock())
    ledger.set_caps(advertiser_cap=PrivacyBudget(1.0))
    ledger.charge("acme", eps(0.75), "q")
    twin = copy.deepcopy(ledger)
    assert twin is ledger and copy.copy(ledger) is ledger
    with pytest.raises(BudgetExhaustedError):
        twin.charge("acme", eps(0.5), "q2")
    assert ledger.remaining("acme")[0].epsilon == pytest.approx(0.25) and repr(ledger) == "BudgetLedger(':memory:')"
