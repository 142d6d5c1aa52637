"""The main job end to end on synthetic data: accounting, outputs (and who may receive them), reuse keyed on the
snapshot id, bit-identical reports when excluded persons' events are added, and the checks run makes before any
work (a registered advertiser; the engine check is in test_advertiser_boundary.py)."""

from __future__ import annotations

import json
import stat
import warnings

import numpy as np
import pytest
from _consent_fixtures import consented_world
from _release_fixtures import registered

from adtarget import PrivacyLeakWarning, RunResult, RunSettings, run, synth
from adtarget.exceptions import UnknownAdvertiserError

pytestmark = pytest.mark.filterwarnings("ignore::adtarget.exceptions.PrivacyLeakWarning")


@pytest.fixture(scope="module")
def world(tmp_path_factory, pseudonymizer):
    d = tmp_path_factory.mktemp("pipeline")
    data, snapshot = consented_world(d, pseudonymizer, synth.SyntheticConfig(n_events=150_000, seed=3))
    return data, snapshot, d


DEMO_ADVERTISER = "demo-advertiser"  # RunSettings' default advertiser


def budget_at(path):
    return registered(path, DEMO_ADVERTISER)


def test_run_accounts_for_every_row_and_writes_outputs(world, pseudonymizer, tmp_path):
    data, snapshot, _ = world
    budget = budget_at(tmp_path / "budget.sqlite")
    result = run(data.events, snapshot, pseudonymizer=pseudonymizer, budget=budget, random_state=1)
    s = result.summary
    assert s["rows"]["input"] == 150_000
    assert s["rows"]["input"] == s["rows"]["quarantined"] + sum(s["excluded"].values()) + s["eligible_events"]
    assert s["excluded"]["opted_out"] > 0 and s["excluded"]["sensitive_category"] > 0
    assert s["epsilon_spent"] == 1.0
    paths = result.write(tmp_path / "out")
    report = json.loads(paths["report"].read_text())
    assert report["schema"] == "adtarget.segment_report/v2"
    assert report["advertiser"] == DEMO_ADVERTISER
    assert len(report["segments"]) == s["segments"]["released"] > 0
    assert all(seg["size"] >= 50 for seg in report["segments"])
    assert json.loads(paths["summary"].read_text()) == json.loads(json.dumps(s))
    assert "audit" not in json.loads(paths["explanation"].read_text())  # the release no longer audits
    assert paths["assignments"].exists()
    assert set(paths) == set(RunResult.AUDIENCE)
    assert {k for k, v in RunResult.AUDIENCE.items() if v == "advertiser"} == {"report", "explanation"}
    for path in paths.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def test_identical_query_returns_the_stored_report_without_new_spend(world, pseudonymizer, tmp_path):
    data, snapshot, _ = world
    budget = budget_at(tmp_path / "budget.sqlite")
    first = run(data.events, snapshot, pseudonymizer=pseudonymizer, budget=budget, snapshot_id="run-1")
    second = run(data.events, snapshot, pseudonymizer=pseudonymizer, budget=budget, snapshot_id="run-1")
    assert second.report.to_json() == first.report.to_json()
    assert second.summary["epsilon_spent"] == 0.0 and second.summary["reused_stored_report"]
    rows = {row["scope"]: row for row in budget.show()}
    assert rows["advertiser"]["epsilon_spent"] == pytest.approx(1.0)
    assert rows["global"]["epsilon_spent"] == pytest.approx(1.0)
    third = run(data.events, snapshot, pseudonymizer=pseudonymizer, budget=budget, snapshot_id="run-2")
    assert not third.summary["reused_stored_report"] and third.summary["epsilon_spent"] == 1.0
    assert third.report.report_id != first.report.report_id


def test_report_is_bit_identical_with_excluded_persons_added(world, pseudonymizer, tmp_path):
    data, snapshot, _ = world
    events = data.events
    opted_out = np.asarray(data.consent["person_id"])[np.asarray(data.consent["ads_personalization"]) == "opt_out"]
    mask = np.isin(np.asarray(events["person_id"]), opted_out)
    assert mask.any()
    without = {k: np.asarray(v)[~mask] for k, v in events.items()}
    reports = []
    for i, source in enumerate((without, events)):
        budget = budget_at(tmp_path / f"b{i}.sqlite")
        result = run(source, snapshot, pseudonymizer=pseudonymizer, budget=budget, random_state=11)
        doc = json.loads(result.report.to_json())
        doc.pop("created_at")  # the report id is drawn from the seed alone: equal too
        reports.append(doc)
    assert reports[0] == reports[1]


def test_seeded_runs_warn(world, pseudonymizer, tmp_path):
    data, snapshot, _ = world
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(data.events, snapshot, pseudonymizer=pseudonymizer, budget=registered(tmp_path / "b.sqlite"),
            settings=RunSettings(advertiser="acme"), random_state=5)
    assert any(issubclass(w.category, PrivacyLeakWarning) for w in caught)


def test_an_unregistered_advertiser_is_refused_before_any_work(world, pseudonymizer, tmp_path):
    data, snapshot, _ = world
    budget = registered(tmp_path / "b.sqlite")  # acme only

    class Events:  # reading the events would be work: run must refuse first
        def __getattr__(self, name):
            raise AssertionError("events read before the advertiser was checked")

    with pytest.raises(UnknownAdvertiserError, match="'demo-advertiser' is not registered"):
        run(Events(), snapshot, pseudonymizer=pseudonymizer, budget=budget)
    assert budget.remaining("acme")[0].epsilon == 4.0
