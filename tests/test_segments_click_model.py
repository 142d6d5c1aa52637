"""Segments as features of an ad team's click model (the example of docs/segments.md).

Synthetic clicks depend on each person's latent interest group; a LogisticRegression on segment membership
(rule-based) or on distances to DP centroids (learned) must rank clicks better than a model without segments.
"""

from __future__ import annotations

import numpy as np
import pytest
from _segment_fixtures import synthetic_eligible
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler, StandardScaler

from adtarget import DPKMeansSegmenter, InMemoryAccountant, SegmentCatalog, build_profiles, synth


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    config = synth.SyntheticConfig(n_events=200_000, n_groups=6, seed=7)
    eligible, group = synthetic_eligible(config, tmp_path_factory.mktemp("clicks"))
    rng = np.random.default_rng(1)
    click_rate = np.array([0.02, 0.04, 0.08, 0.15, 0.25, 0.40])[rng.permutation(6)]
    clicked = rng.random(group.size) < click_rate[group]
    return eligible, clicked


def test_segment_features_beat_a_model_without_segments(population):
    eligible, clicked = population
    segments = SegmentCatalog.default(eligible.safe_taxonomy).assign(eligible).to_scipy().astype(np.float64)
    age = (2026 - eligible.birth_year.astype(np.float64))[:, None]
    with_segments = sparse.hstack([segments, sparse.csr_matrix(age)], format="csr")
    rows = np.arange(eligible.n_persons)
    train, test = train_test_split(rows, test_size=0.3, random_state=0, stratify=clicked)

    def auc(X, model):
        model.fit(X[train], clicked[train])
        return roc_auc_score(clicked[test], model.predict_proba(X[test])[:, 1])

    baseline = auc(age, make_pipeline(StandardScaler(), LogisticRegression()))
    rule_based = auc(with_segments, make_pipeline(MaxAbsScaler(), LogisticRegression(C=0.1, max_iter=2000)))
    accountant = InMemoryAccountant()
    profiles = build_profiles(eligible, level="tier1", norm="l2").matrix
    learned = auc(profiles, make_pipeline(DPKMeansSegmenter(12, epsilon=1.0, ledger=accountant),
                                          LogisticRegression(max_iter=2000)))
    print(f"\nAUC: no segments {baseline:.3f}, rule-based segments {rule_based:.3f}, DP k-means (ε=1) {learned:.3f}")
    assert baseline < 0.56
    assert rule_based > baseline + 0.1
    assert learned > baseline + 0.05
    assert accountant.spent_epsilon == 1.0  # the pipeline fitted the segmenter once
