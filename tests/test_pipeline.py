"""The main job end to end on synthetic data: accounting, outputs, idempotency, and bit-identical reports
when excluded persons' events are added."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from adtarget import synth
from adtarget._consent import ConsentLedger
from adtarget._pipeline import RunSettings, run
from adtarget._release._budget_ledger import BudgetLedger
from adtarget.exceptions import PrivacyLeakWarning

pytestmark = pytest.mark.filterwarnings("ignore::adtarget.exceptions.PrivacyLeakWarning")


@pytest.fixture(scope="module")
def world(tmp_path_factory, pseudonymizer):
    d = tmp_path_factory.mktemp("pipeline")
    data = synth.generate(synth.SyntheticConfig(n_events=60_000, seed=3))
    synth.write_consent(data, d / "consent.csv")
    ledger = ConsentLedger(d / "consent.sqlite", pseudonymizer)
    ledger.import_csv(d / "consent.csv")
    return data, ledger.snapshot(), d


def test_run_accounts_for_every_row_and_writes_outputs(world, pseudonymizer, tmp_path):
    data, snapshot, _ = world
    budget = BudgetLedger(tmp_path / "budget.sqlite")
    result = run(data.events, snapshot, pseudonymizer=pseudonymizer, budget=budget, random_state=1)
    s = result.summary
    assert s["rows"]["input"] == 60_000
    assert s["rows"]["input"] == s["rows"]["quarantined"] + sum(s["excluded"].values()) + s["eligible_events"]
    assert s["excluded"]["opted_out"] > 0 and s["excluded"]["sensitive_category"] > 0
    assert s["epsilon_spent"] == 1.0
    paths = result.write(tmp_path / "out")
    report = json.loads(paths["report"].read_text())
    assert report["schema"] == "adtarget.segment_report/v1"
    assert len(report["segments"]) == s["segments"]["released"] > 0
    assert all(seg["size"] >= 50 for seg in report["segments"])
    assert json.loads(paths["summary"].read_text()) == json.loads(json.dumps(s))
    assert paths["assignments"].exists()


def test_identical_query_returns_the_stored_report_without_new_spend(world, pseudonymizer, tmp_path):
    data, snapshot, _ = world
    budget = BudgetLedger(tmp_path / "budget.sqlite")
    first = run(data.events, snapshot, pseudonymizer=pseudonymizer, budget=budget)
    second = run(data.events, snapshot, pseudonymizer=pseudonymizer, budget=budget)
    assert second.report.to_json() == first.report.to_json()
    assert second.summary["epsilon_spent"] == 0.0 and second.summary["reused_stored_report"]
    rows = {row["scope"]: row for row in budget.show()}
    assert rows["advertiser"]["epsilon_spent"] == pytest.approx(1.0)
    assert rows["global"]["epsilon_spent"] == pytest.approx(1.0)


def test_report_is_bit_identical_with_excluded_persons_added(world, pseudonymizer, tmp_path):
    data, snapshot, _ = world
    events = data.events
    opted_out = np.asarray(data.consent["person_id"])[np.asarray(data.consent["ads_personalization"]) == "opt_out"]
    mask = np.isin(np.asarray(events["person_id"]), opted_out)
    assert mask.any()
    without = {k: np.asarray(v)[~mask] for k, v in events.items()}
    reports = []
    for i, source in enumerate((without, events)):
        budget = BudgetLedger(tmp_path / f"b{i}.sqlite")
        result = run(source, snapshot, pseudonymizer=pseudonymizer, budget=budget, random_state=11)
        doc = json.loads(result.report.to_json())
        doc.pop("report_id"), doc.pop("created_at")
        reports.append(doc)
    assert reports[0] == reports[1]


def test_seeded_runs_warn(world, pseudonymizer, tmp_path):
    data, snapshot, _ = world
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(data.events, snapshot, pseudonymizer=pseudonymizer, budget=BudgetLedger(tmp_path / "b.sqlite"),
            settings=RunSettings(advertiser="acme"), random_state=5)
    assert any(issubclass(w.category, PrivacyLeakWarning) for w in caught)
