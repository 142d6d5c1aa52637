"""Segments feed the advertiser release: ids pass the report schema, learned segments compose budgets (the fit
is a DP-derived definition charged globally once and to each advertiser who receives its segments)."""

from __future__ import annotations

import numpy as np
import pytest
from _segment_fixtures import synthetic_eligible

from adtarget import (
    AnyOf,
    BudgetLedger,
    DPKMeansSegmenter,
    ReleaseSpec,
    SegmentCatalog,
    TopicSegment,
    build_profiles,
    release,
    synth,
)


@pytest.fixture(scope="module")
def eligible(tmp_path_factory):
    return synthetic_eligible(synth.SyntheticConfig(n_events=60_000, n_groups=4, seed=2),
                              tmp_path_factory.mktemp("release"))[0]


@pytest.mark.filterwarnings("ignore::adtarget.exceptions.PrivacyLeakWarning")  # seeded release noise
def test_learned_segments_cost_the_fit_plus_the_release(eligible, tmp_path):
    ledger = BudgetLedger(tmp_path / "budget.sqlite", advertisers=["acme"])
    profiles = build_profiles(eligible, level="tier1", norm="l2")
    segmenter = DPKMeansSegmenter(4, epsilon=0.5, ledger=ledger, random_state=0).fit(profiles)
    rows = {row["scope"]: row for row in ledger.show()}
    assert rows["global"]["epsilon_spent"] == pytest.approx(0.5) and rows["advertiser"]["epsilon_spent"] == 0.0
    assignments = segmenter.assign(profiles)
    ids = tuple(s.segment_id for s in segmenter.segment_info_)
    spec = ReleaseSpec("acme", ids, epsilon=1.0, breakdowns=("age_band",), min_reported_size=10)
    result = release(eligible, assignments, spec, ledger=ledger, random_state=0)
    doc = result.report.to_dict()
    assert {s["segment_id"] for s in doc["segments"]} <= set(ids)
    assert len(doc["segments"]) + doc["suppressed_segments"] == len(ids)
    rows = {row["scope"]: row for row in ledger.show()}
    assert rows["advertiser"]["advertiser"] == "acme"
    assert rows["advertiser"]["epsilon_spent"] == pytest.approx(1.5, rel=1e-12)  # the release and the fit
    assert rows["global"]["epsilon_spent"] == pytest.approx(1.5, rel=1e-12)  # the fit once, the release
    assert result.explanation.definitions["charged"] == [f"dp-kmeans:{segmenter.model_id_}"]


@pytest.mark.filterwarnings("ignore::adtarget.exceptions.PrivacyLeakWarning")
def test_rule_based_and_composite_segments_are_released(eligible, tmp_path):
    safe = eligible.safe_taxonomy
    tier1 = [str(safe.taxonomy.ids[i]) for i in np.flatnonzero(safe.safe_mask & (safe.taxonomy.tier == 1))[:3]]
    catalog = SegmentCatalog([TopicSegment(tier1[0]), TopicSegment(tier1[1], rule="share", min_share=0.2),
                              AnyOf(TopicSegment(tier1[0]), TopicSegment(tier1[2]))], safe)
    assignments = catalog.assign(eligible)
    ids = tuple(s.segment_id for s in catalog.segments)
    spec = ReleaseSpec("acme", ids, epsilon=1.0, breakdowns=("age_band",), min_reported_size=10)
    ledger = BudgetLedger(tmp_path / "b.sqlite", advertisers=["acme"])
    result = release(eligible, assignments, spec, ledger=ledger, random_state=0)
    doc = result.report.to_dict()
    assert {s["segment_id"] for s in doc["segments"]} <= set(ids)
    assert len(doc["segments"]) + doc["suppressed_segments"] == len(ids)
    assert result.explanation.definitions == {}  # rule-based segments depend on no DP-derived definition
