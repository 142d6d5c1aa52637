"""release(): correctness at ε = ∞ against a pandas oracle, exact accounting, idempotency, invariance to
excluded data, the sensitive-proxy audit, and validation of the spec against the data."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pytest
from _release_fixtures import END, assignments_for, gate, oracle, world_rows

from adtarget._release._budget_ledger import BudgetLedger
from adtarget._release._budget_spec import PrivacyBudget
from adtarget._release._cells import CellCounts, count_cells
from adtarget._release._release import release, release_counts
from adtarget._release._spec import ReleaseSpec
from adtarget.exceptions import BudgetExhaustedError, ParameterError, PrivacyLeakWarning

CREATED = dt.datetime(2026, 11, 2, 3, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def world():
    rows, people = world_rows(0)
    eligible = gate(rows, people)
    return eligible, assignments_for(eligible)


@pytest.fixture
def ledger(tmp_path):
    return BudgetLedger(tmp_path / "budget.sqlite")


def ids_of(assignments):
    return [s.segment_id for s in assignments.segments]


def exact(world, ledger, **kw):
    eligible, assignments = world
    spec = ReleaseSpec("acme", ids_of(assignments), **{"epsilon": math.inf, "delta": 1e-6, "min_reported_size": 1,
                                                       **kw})
    with pytest.warns(PrivacyLeakWarning):
        result = release(eligible, assignments, spec, ledger=ledger, allow_infinite_epsilon=True)
    return spec, result


def flat_cells(report):
    return {(s.segment_id, d, v): c for s in report.segments for d, cs in s.breakdowns.items() for v, c in cs.items()}


@pytest.mark.parametrize("kw", [
    {"salt": "a"},
    {"salt": "b", "max_segments_per_person": 2, "max_cells_per_person": {"region": 2, "service": 3}},
    {"max_segments_per_person": 1, "public_regions": ["US-CA", "XX-00"]},
    {"breakdowns": ("service",), "delta": 0.0},
])
def test_infinite_epsilon_release_equals_the_pandas_oracle(world, ledger, kw):
    spec, result = exact(world, ledger, **kw)
    sizes, cells = oracle(*world, spec)
    assert {s.segment_id: s.size for s in result.report.segments} == sizes
    assert flat_cells(result.report) == cells
    assert result.report.suppressed_segments == len(spec.segment_ids) - len(sizes)


def test_bounding_binds_in_the_test_world(world, ledger):
    """The oracle comparison is only meaningful if persons really lose segments and values to the bounds."""
    spec, result = exact(world, ledger, max_segments_per_person=2)
    unbounded = np.asarray(world[1].membership.sum(axis=0)).ravel()
    assert sum(s.size for s in result.report.segments) < unbounded.sum()
    assert sum(s.size for s in result.report.segments) <= 2 * world[0].n_persons


def test_exact_accounting_laplace(world, ledger):
    eligible, assignments = world
    spec = ReleaseSpec("acme", ids_of(assignments), epsilon=1.0, delta=1e-6)
    result = release(eligible, assignments, spec, ledger=ledger)
    stages = [(s["epsilon"], s["delta"]) for s in result.explanation.stages]
    assert stages == [(0.9, 0.0), (0.1, 1e-6)]
    assert result.explanation.total == {"epsilon": 1.0, "delta": 1e-6, "new_spend": True}
    adv, glob = ledger.remaining("acme")
    assert (adv.epsilon, glob.epsilon) == (3.0, 19.0)
    assert math.isclose(adv.delta, 9e-6) and math.isclose(glob.delta, 9.9e-5)
    privacy = result.report.privacy
    assert privacy["epsilon"] == 1.0 and privacy["delta"] == 1e-6 and privacy["unit"] == "person"
    assert privacy["budget_remaining"] == {"advertiser": 3.0, "global": 19.0}
    assert result.explanation.sensitivity["l1"] == 5 * (1 + 3)
    assert result.explanation.noise["scale"] == pytest.approx(20 / 0.9)


def test_exact_accounting_gaussian_without_regions(world, ledger):
    eligible, assignments = world
    spec = ReleaseSpec("acme", ids_of(assignments)[:3], epsilon=0.5, delta=1e-6, mechanism="discrete_gaussian",
                       breakdowns=("age_band", "service"))
    result = release(eligible, assignments, spec, ledger=ledger)
    assert [(s["epsilon"], s["delta"]) for s in result.explanation.stages] == [(0.5, 1e-6)]
    assert result.explanation.sensitivity["l1"] == 3 * 3  # S = min(5, 3 segments) = 3
    assert result.explanation.noise["l2_sensitivity"] == pytest.approx(3.0)
    assert ledger.remaining("acme")[0].epsilon == 3.5


def test_identical_query_returns_the_stored_report_without_new_spend(world, ledger):
    eligible, assignments = world
    spec = ReleaseSpec("acme", ids_of(assignments), epsilon=1.0, delta=1e-6)
    first = release(eligible, assignments, spec, ledger=ledger)
    second = release(eligible, assignments, spec, ledger=ledger)
    assert second.report == first.report and second.explanation.reused
    assert ledger.remaining("acme")[0].epsilon == 3.0
    other = release(eligible, assignments, ReleaseSpec("acme", ids_of(assignments), epsilon=0.5, delta=1e-6),
                    ledger=ledger)
    assert other.report.report_id != first.report.report_id
    assert ledger.remaining("acme")[0].epsilon == 2.5


def test_budget_exhausted_spends_and_emits_nothing(world, ledger):
    eligible, assignments = world
    ledger.set_caps(advertiser_cap=PrivacyBudget(1.0, 1e-5))
    release(eligible, assignments, ReleaseSpec("acme", ids_of(assignments), epsilon=0.8, delta=1e-6),
            ledger=ledger)
    with pytest.raises(BudgetExhaustedError):
        release(eligible, assignments, ReleaseSpec("acme", ids_of(assignments), epsilon=0.3, delta=1e-6),
                ledger=ledger)
    assert ledger.remaining("acme")[0].epsilon == pytest.approx(0.2)


def seeded(eligible, assignments, path, **kw):
    spec = ReleaseSpec("acme", ids_of(assignments), epsilon=1.0, delta=1e-6, public_regions=["US-CA"],
                       min_reported_size=20, **kw)
    with pytest.warns(PrivacyLeakWarning):
        return release(eligible, assignments, spec, ledger=BudgetLedger(path), random_state=7, created_at=CREATED)


@pytest.mark.parametrize("change", ["excluded", "extra_sensitive"])
def test_report_is_bit_identical_when_excluded_data_is_added(world, tmp_path, change):
    base = seeded(*world, tmp_path / "a.sqlite")
    rows, people = world_rows(0, **{change: True})
    eligible = gate(rows, people)
    assert np.array_equal(eligible.persons, world[0].persons)
    if change == "excluded":
        assert "ZZ-99" in eligible.regions  # the excluded persons' region reaches the batch, not the counts
    else:
        assert eligible.sensitive_audit.person.size > world[0].sensitive_audit.person.size
    other = seeded(eligible, assignments_for(eligible), tmp_path / "b.sqlite")
    assert not base.explanation.audit["blocked"] and not other.explanation.audit["blocked"]
    assert other.report.to_json() == base.report.to_json()


def test_seeded_release_is_reproducible_and_secure_release_is_not(world, tmp_path):
    a = seeded(*world, tmp_path / "a.sqlite").report.to_json()
    assert seeded(*world, tmp_path / "b.sqlite").report.to_json() == a
    eligible, assignments = world
    spec = ReleaseSpec("acme", ids_of(assignments), epsilon=1.0, delta=1e-6, public_regions=["US-CA"],
                       min_reported_size=20)
    sizes = set()
    for i in range(3):  # secure randomness: no PrivacyLeakWarning (pytest turns warnings into errors)
        r = release(eligible, assignments, spec, ledger=BudgetLedger(tmp_path / f"s{i}.sqlite"), created_at=CREATED)
        sizes.add(tuple(s.size for s in r.report.segments))
    assert len(sizes) > 1


def test_audit_blocks_a_proxy_segment_and_says_so(tmp_path):
    rows, people = world_rows(1)
    eligible = gate(rows, people)
    proxy = np.zeros(eligible.n_persons, dtype=bool)
    proxy[np.unique(eligible.sensitive_audit.person)] = True
    assignments = assignments_for(eligible, proxy_of=proxy)
    spec = ReleaseSpec("acme", ids_of(assignments), epsilon=math.inf, delta=1e-6, min_reported_size=1)
    with pytest.warns(PrivacyLeakWarning):
        result = release(eligible, assignments, spec, ledger=BudgetLedger(tmp_path / "l.sqlite"),
                         allow_infinite_epsilon=True)
    assert result.explanation.audit["blocked"] == ["iab-2.2:239"]
    assert result.explanation.audit["distance"]["iab-2.2:239"] > 0.1
    assert "iab-2.2:239" not in {s.segment_id for s in result.report.segments}
    assert result.report.suppressed_segments == 1
    assert result.explanation.suppression["audit_blocked"] == 1
    assert "1 blocked" in str(result.explanation)


def test_release_counts_over_partitions_equals_release(world, tmp_path):
    from adtarget._release._audit import audit_counts

    eligible, assignments = world
    spec = ReleaseSpec("acme", ids_of(assignments), epsilon=1.0, delta=1e-6, min_reported_size=20)
    with pytest.warns(PrivacyLeakWarning):
        whole = release(eligible, assignments, spec, ledger=BudgetLedger(tmp_path / "a.sqlite"), random_state=3,
                        created_at=CREATED)
    cells = count_cells(eligible, assignments, spec)
    assert isinstance(cells, CellCounts)
    infos = tuple(assignments.segments)
    policy = {"version": "any", "sensitivity_profile": "default", "min_age": 13}
    window = (END - 730 * 86_400, END)
    with pytest.warns(PrivacyLeakWarning):
        parts = release_counts(cells, audit_counts(eligible, assignments), spec, segments=infos, policy=policy,
                               data_window=window, ledger=BudgetLedger(tmp_path / "b.sqlite"), random_state=3,
                               created_at=CREATED)
    assert parts.report.to_json() == whole.report.to_json()


@pytest.mark.parametrize("kw, match", [
    ({"segment_ids": ["iab-2.2:99999"]}, "segment_ids must be segments of the assignments"),
    ({"epsilon": math.inf}, "allow_infinite_epsilon"),
    ({"data_window": (END - 86_400 * 400, END - 1)}, "data_window end"),
    ({"data_window": (END - 86_400 * 10, END)}, "data_window start"),
])
def test_release_validates_the_spec_against_the_data(world, ledger, kw, match):
    eligible, assignments = world
    args = {"advertiser": "acme", "segment_ids": ids_of(assignments), "epsilon": 1.0, "delta": 1e-6, **kw}
    with pytest.raises(ParameterError, match=match):
        release(eligible, assignments, ReleaseSpec(**args), ledger=ledger)
    assert ledger.remaining("acme")[0].epsilon == 4.0


def test_release_refuses_anything_but_eligible_events(world, ledger):
    _, assignments = world
    with pytest.raises(ParameterError, match="EligibleEvents"):
        release(object(), assignments, ReleaseSpec("acme", ids_of(assignments), epsilon=1.0, delta=1e-6),
                ledger=ledger)


def test_explanation_is_readable_and_json_able(world, ledger):
    eligible, assignments = world
    spec = ReleaseSpec("acme", ids_of(assignments), epsilon=1.0, delta=1e-6)
    result = release(eligible, assignments, spec, ledger=ledger)
    text = str(result.explanation)
    for needle in ("ε=0.9", "ε=0.1", "L1=20", "discrete_laplace", "partition selection", "audit"):
        assert needle in text
    assert json.loads(json.dumps(result.explanation.as_dict()))["total"]["epsilon"] == 1.0
    report, explanation = result
    assert report is result.report and explanation is result.explanation


def test_completing_a_charged_but_unreported_query_spends_nothing_new(world, ledger, monkeypatch):
    eligible, assignments = world
    spec = ReleaseSpec("acme", ids_of(assignments), epsilon=1.0, delta=1e-6)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed between charge and store")

    with monkeypatch.context() as m:
        m.setattr(ledger, "store_report", crash)
        with pytest.raises(KeyboardInterrupt):
            release(eligible, assignments, spec, ledger=ledger)
    assert ledger.remaining("acme")[0].epsilon == 3.0  # charged before anything was emitted
    result = release(eligible, assignments, spec, ledger=ledger)
    assert result.explanation.total["new_spend"] is False and not result.explanation.reused
    assert ledger.remaining("acme")[0].epsilon == 3.0
    assert release(eligible, assignments, spec, ledger=ledger).report == result.report


def test_release_inputs_cannot_be_forged_past_the_gate():
    """CellCounts and AuditCounts come only from count_cells / audit_counts over EligibleEvents."""
    import numpy as np

    from adtarget._release._audit import AuditCounts
    from adtarget._release._cells import CellCounts

    with pytest.raises(TypeError, match="count_cells"):
        CellCounts(("iab-2.2:1",), np.array([500]), {}, {}, {}, 500)
    with pytest.raises(TypeError, match="audit_counts"):
        AuditCounts(("none",), ("iab-2.2:1",), np.array([1]), np.array([[1]]), np.array([1]), 1, 1)


def test_a_hand_built_segment_on_a_sensitive_node_is_never_counted(pseudonymizer):
    """P5 by construction: count_cells refuses segment ids on sensitive nodes, whoever built the assignments."""
    import numpy as np
    from scipy import sparse

    from adtarget._release._cells import count_cells
    from adtarget._segments._info import SegmentAssignments, SegmentInfo
    from adtarget.exceptions import SensitiveCategoryError

    eligible = _tiny_eligible(pseudonymizer)
    health = SegmentInfo("iab-2.2:286", "Medical Health", ("Medical Health",))
    assignments = SegmentAssignments(eligible.persons, sparse.csr_matrix(np.ones((eligible.n_persons, 1), bool)),
                                     (health,))
    spec = ReleaseSpec(advertiser="acme", segment_ids=("iab-2.2:286",), epsilon=1.0, breakdowns=())
    with pytest.raises(SensitiveCategoryError, match="286"):
        count_cells(eligible, assignments, spec)
    with pytest.raises(ParameterError, match="EligibleEvents"):
        count_cells(object(), assignments, spec)


def _tiny_eligible(pseudonymizer):
    import numpy as np

    from adtarget import ConsentSnapshot, SafeTaxonomy, SensitivityProfile, apply_gate, ingest

    end = 1_790_000_000
    batch = ingest({"person_id": np.array([1, 2]), "service": np.array(["video", "news"], dtype=object),
                    "ts": np.array([end - 10, end - 10]), "category": np.array(["1", "1"], dtype=object)},
                   pseudonymizer=pseudonymizer, now=end).batch
    snap = ConsentSnapshot(
        as_of=end, persons=batch.persons, birth_year=np.array([1980, 1990], np.int16),
        opted_in=np.ones(2, bool), cross_service=np.ones(2, bool), deleted=np.zeros(2, bool),
        terminated=np.zeros(2, bool), location_deleted=np.zeros(2, bool),
        policy_version=np.array(["2018-05-14"] * 2), jurisdiction=np.array(["US"] * 2))
    return apply_gate(batch, snap, SafeTaxonomy(batch.taxonomy, SensitivityProfile.named("default")))


def test_exact_counts_survive_pickling_between_engine_processes(pseudonymizer):
    import pickle

    from scipy import sparse

    from adtarget._release._audit import audit_counts
    from adtarget._segments._info import SegmentAssignments, SegmentInfo

    eligible = _tiny_eligible(pseudonymizer)
    info = SegmentInfo("iab-2.2:1", "Automotive", ("Automotive",))
    assignments = SegmentAssignments(eligible.persons, sparse.csr_matrix(np.ones((eligible.n_persons, 1), bool)),
                                     (info,))
    spec = ReleaseSpec(advertiser="acme", segment_ids=("iab-2.2:1",), epsilon=1.0, breakdowns=())
    cells = pickle.loads(pickle.dumps(count_cells(eligible, assignments, spec)))
    audit = pickle.loads(pickle.dumps(audit_counts(eligible, assignments)))
    assert (cells + cells).sizes.tolist() == [4] and (audit + audit).n_population == 4


def _assignments_with(assignments, persons, membership):
    import dataclasses

    return dataclasses.replace(assignments, persons=persons, membership=membership)


@pytest.mark.parametrize("change", ["stray person", "repeated person"])
def test_counting_refuses_persons_that_are_not_eligible_or_repeat(world, change):
    """The compiled counting kernels index by these persons and bound per row: never let one through."""
    from adtarget._release._audit import audit_counts
    from adtarget._release._cells import count_cells

    eligible, assignments = world
    persons = np.array(assignments.persons, copy=True)
    if change == "stray person":
        persons[-1] = np.uint64(2**64 - 1) if persons[-1] != np.uint64(2**64 - 1) else np.uint64(0)
        persons.sort()
    else:
        persons[1] = persons[0]
    bad = _assignments_with(assignments, persons, assignments.membership)
    spec = ReleaseSpec("acme", ids_of(assignments), epsilon=1.0, delta=1e-6)
    for count in (lambda: count_cells(eligible, bad, spec), lambda: audit_counts(eligible, bad)):
        with pytest.raises(ParameterError, match="assignments.persons"):
            count()


def test_a_membership_entry_stored_twice_counts_once(world):
    from scipy import sparse

    from adtarget._release._cells import count_cells

    eligible, assignments = world
    m = assignments.membership.tocsr()
    doubled = sparse.csr_matrix((np.repeat(m.data, 2), np.repeat(m.indices, 2), 2 * m.indptr), shape=m.shape)
    assert doubled.nnz == 2 * m.nnz  # every entry stored twice
    spec = ReleaseSpec("acme", ids_of(assignments), epsilon=1.0, delta=1e-6)
    once = count_cells(eligible, assignments, spec)
    twice = count_cells(eligible, _assignments_with(assignments, assignments.persons, doubled), spec)
    assert np.array_equal(once.sizes, twice.sizes)


def test_a_membership_column_out_of_range_is_refused(world):
    from scipy import sparse

    eligible, assignments = world
    m = assignments.membership.tocsr()
    indices = m.indices.copy()
    indices[0] = m.shape[1] + 3  # a hand-built matrix scipy does not bounds-check
    bad = sparse.csr_matrix((m.data.copy(), indices, m.indptr.copy()), shape=m.shape)
    spec = ReleaseSpec("acme", ids_of(assignments), epsilon=1.0, delta=1e-6)
    with pytest.raises(ParameterError, match="out of range"):
        count_cells(eligible, _assignments_with(assignments, assignments.persons, bad), spec)
