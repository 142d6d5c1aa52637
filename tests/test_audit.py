"""Sensitive-proxy audit: class masses against a pandas oracle, total-variation distance, additivity over
partitions of persons, blocking above t."""

from __future__ import annotations

from types import SimpleNamespace as NS

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from adtarget._release._audit import AuditCounts, audit_segments, class_mass

CLASSES = ("racial_or_ethnic_origin", "religious_or_philosophical_beliefs", "health")


def fake(n, n_events, n_segments, seed, classes=CLASSES):
    rng = np.random.default_rng(seed)
    persons = np.arange(1, n + 1, dtype=np.uint64) * np.uint64(7919)
    audit = NS(person=rng.integers(0, n, n_events).astype(np.int32),
               sensitive_class=rng.integers(0, len(classes), n_events).astype(np.int8), classes=classes)
    dense = rng.random((n, n_segments)) < 0.4
    segs = tuple(NS(segment_id=f"iab-2.2:{i + 1}") for i in range(n_segments))
    return NS(persons=persons, sensitive_audit=audit), NS(persons=persons, membership=sp.csr_matrix(dense),
                                                           segments=segs)


def oracle_distance(eligible, assignments):
    """TV distance per segment, from per-person fractional class distributions, with pandas."""
    import pandas as pd

    n, labels = eligible.persons.size, (*eligible.sensitive_audit.classes, "none")
    ev = pd.DataFrame({"person": eligible.sensitive_audit.person,
                       "cls": [labels[c] for c in eligible.sensitive_audit.sensitive_class]}).drop_duplicates()
    per = ev.groupby("person")["cls"].apply(list).to_dict()
    dist = np.zeros((n, len(labels)))
    for p in range(n):
        classes = per.get(p, ["none"])
        for c in classes:
            dist[p, labels.index(c)] += 1 / len(classes)
    pop = dist.mean(axis=0)
    member = assignments.membership.toarray()
    return {s.segment_id: 0.5 * np.abs(dist[member[:, j]].mean(axis=0) - pop).sum() if member[:, j].any() else 0.0
            for j, s in enumerate(assignments.segments)}


@given(n=st.integers(1, 40), n_events=st.integers(0, 80), seed=st.integers(0, 2**16))
def test_distances_equal_the_pandas_oracle(n, n_events, seed):
    eligible, assignments = fake(n, n_events, 4, seed)
    outcome = audit_segments(class_mass(eligible, assignments), [s.segment_id for s in assignments.segments])
    expected = oracle_distance(eligible, assignments)
    assert outcome.distance == pytest.approx(expected, abs=1e-12)
    assert outcome.metric == "total_variation"


@given(n=st.integers(2, 40), seed=st.integers(0, 2**16))
def test_audit_counts_add_up_over_partitions_of_persons(n, seed):
    eligible, assignments = fake(n, 2 * n, 3, seed)
    cut = n // 2

    def part(rows):
        keep = np.isin(eligible.sensitive_audit.person, rows)
        new = np.full(n, -1)
        new[rows] = np.arange(rows.size)
        audit = NS(person=new[eligible.sensitive_audit.person[keep]].astype(np.int32),
                   sensitive_class=eligible.sensitive_audit.sensitive_class[keep], classes=CLASSES)
        return class_mass(NS(persons=eligible.persons[rows], sensitive_audit=audit),
                            NS(persons=eligible.persons[rows], membership=assignments.membership[rows],
                               segments=assignments.segments))

    total = part(np.arange(cut)) + part(np.arange(cut, n))
    whole = class_mass(eligible, assignments)
    assert isinstance(total, AuditCounts) and total.n_population == whole.n_population == n
    for name in ("members", "mass", "population"):
        assert np.array_equal(getattr(total, name), getattr(whole, name))


def test_masses_are_exact_integers_scaled_by_lcm():
    eligible, assignments = fake(5, 0, 1, 0)
    eligible.sensitive_audit.person = np.array([0, 0, 0, 1], dtype=np.int32)
    eligible.sensitive_audit.sensitive_class = np.array([0, 1, 2, 2], dtype=np.int8)
    counts = class_mass(eligible, assignments)
    assert counts.scale == 6 and counts.classes == (*CLASSES, "none")
    assert counts.population.tolist() == [2, 2, 2 + 6, 3 * 6]  # person 0: 1/3 each; person 1: health


def test_a_segment_over_representing_a_class_is_blocked():
    eligible, assignments = fake(100, 0, 1, 0)
    eligible.sensitive_audit.person = np.arange(10, dtype=np.int32)  # 10% have health events
    eligible.sensitive_audit.sensitive_class = np.full(10, 2, dtype=np.int8)
    members = np.zeros((100, 2), dtype=bool)
    members[:20, 0] = True  # 50% health: TV = 0.4
    members[::2, 1] = True  # 10% health: TV = 0
    assignments = NS(persons=eligible.persons, membership=sp.csr_matrix(members),
                     segments=(NS(segment_id="iab-2.2:1"), NS(segment_id="iab-2.2:2")))
    outcome = audit_segments(class_mass(eligible, assignments), ["iab-2.2:1", "iab-2.2:2"], t=0.1)
    assert outcome.distance["iab-2.2:1"] == pytest.approx(0.4)
    assert outcome.distance["iab-2.2:2"] == pytest.approx(0.0)
    assert outcome.blocked == ("iab-2.2:1",) and outcome.worst_class == {"iab-2.2:1": "health"}
    assert audit_segments(class_mass(eligible, assignments), ["iab-2.2:1"], t=0.5).blocked == ()
    assert outcome.as_dict()["blocked"] == ["iab-2.2:1"]
