"""release(): correctness at ε = ∞ against a pandas oracle, exact accounting, reuse of stored reports, invariance
to excluded data, release from counts summed over partitions, and validation of the spec against the data —
every check before the charge.

Worlds go through ingest, the gate and a SegmentCatalog (tests/_release_fixtures.py); every ledger has the
advertiser registered. The tests of issue 14's findings 1, 2, 4, 5 and 6 are in test_advertiser_boundary.py.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import pickle

import numpy as np
import pytest
from _release_fixtures import END, assignments_for, gate, oracle, registered, world_rows

from adtarget import (
    BudgetLedger,
    PrivacyBudget,
    PrivacyLeakWarning,
    ReleaseSpec,
    SafeTaxonomy,
    SegmentCatalog,
    TopicSegment,
    release,
)
from adtarget.exceptions import BudgetExhaustedError, ParameterError, ProvenanceError, SensitiveCategoryError
from adtarget.reports import CellCounts, count_cells, release_counts

CREATED = dt.datetime(2026, 11, 2, 3, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def world():
    rows, people = world_rows(0)
    eligible = gate(rows, people)
    return eligible, assignments_for(eligible)


@pytest.fixture
def ledger(tmp_path):
    return registered(tmp_path / "budget.sqlite")


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
    assert stages == [(0.6, 0.0), (pytest.approx(0.3), 0.0), (0.1, 1e-6)]  # sizes, cells, partition selection
    assert result.explanation.total == {"epsilon": 1.0, "delta": 1e-6, "new_spend": True}
    adv, glob = ledger.remaining("acme")
    assert (adv.epsilon, glob.epsilon) == (3.0, 19.0)
    assert math.isclose(adv.delta, 9e-6) and math.isclose(glob.delta, 9.9e-5)
    privacy = result.report.privacy
    assert privacy["epsilon"] == 1.0 and privacy["delta"] == 1e-6 and privacy["unit"] == "person"
    assert privacy["budget_remaining"] == {"advertiser": 3.0, "global": 19.0}
    assert result.explanation.sensitivity["l1"] == 5 * (1 + 3)
    assert result.explanation.noise["sizes"]["scale"] == pytest.approx(5 / 0.6)
    assert result.explanation.noise["breakdowns"]["scale"] == pytest.approx(15 / 0.3)
    assert privacy["budget_split"] == pytest.approx({"sizes": 0.6, "breakdowns": 0.3, "partition_selection": 0.1})
    assert privacy["false_segment_rate"] == 1e-6 and privacy["size_threshold"] == result.explanation.noise[
        "size_threshold"] > 50


def test_exact_accounting_gaussian_without_regions(world, ledger):
    eligible, assignments = world
    spec = ReleaseSpec("acme", ids_of(assignments)[:3], epsilon=0.5, delta=1e-6, mechanism="discrete_gaussian",
                       breakdowns=("age_band", "service"))
    result = release(eligible, assignments, spec, ledger=ledger)
    stages = [(s["epsilon"], s["delta"]) for s in result.explanation.stages]
    assert stages == [(0.3, pytest.approx(6e-7)), (pytest.approx(0.2), pytest.approx(4e-7))]  # sizes, cells
    assert result.explanation.sensitivity["l1"] == 3 * 3  # S = min(5, 3 segments) = 3
    assert result.explanation.noise["sizes"]["l2_sensitivity"] == pytest.approx(math.sqrt(3))
    assert result.explanation.noise["breakdowns"]["l2_sensitivity"] == pytest.approx(math.sqrt(6))
    assert ledger.remaining("acme")[0].epsilon == pytest.approx(3.6763364315792617)  # the window composes by RDP


def test_identical_query_returns_the_stored_report_without_new_spend(world, ledger):
    eligible, assignments = world
    spec = ReleaseSpec("acme", ids_of(assignments), epsilon=1.0, delta=1e-6)
    first = release(eligible, assignments, spec, ledger=ledger)
    second = release(eligible, assignments, spec, ledger=ledger)
    assert second.report.to_json() == first.report.to_json() and second.explanation.reused
    assert second.explanation.query_key == first.explanation.query_key
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
        return release(eligible, assignments, spec, ledger=registered(path), random_state=7, created_at=CREATED)


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
    assert other.report.to_json() == base.report.to_json()


def test_seeded_release_is_reproducible_and_secure_release_is_not(world, tmp_path):
    a = seeded(*world, tmp_path / "a.sqlite").report.to_json()
    assert seeded(*world, tmp_path / "b.sqlite").report.to_json() == a
    eligible, assignments = world
    spec = ReleaseSpec("acme", ids_of(assignments), epsilon=1.0, delta=1e-6, public_regions=["US-CA"],
                       min_reported_size=20)
    sizes = set()
    for i in range(3):  # secure randomness: no PrivacyLeakWarning (pytest turns warnings into errors)
        r = release(eligible, assignments, spec, ledger=registered(tmp_path / f"s{i}.sqlite"), created_at=CREATED)
        sizes.add(tuple(s.size for s in r.report.segments))
    assert len(sizes) > 1


def test_release_counts_over_partitions_equals_release(world, tmp_path):
    """An engine counts each partition of persons on its own (ingest, gate and assign per partition) and sums:
    release_counts of the sum is the release of the whole, byte for byte."""
    eligible, assignments = world
    rows, people = world_rows(0)
    spec = ReleaseSpec("acme", ids_of(assignments), epsilon=1.0, delta=1e-6, min_reported_size=20)
    with pytest.warns(PrivacyLeakWarning):
        whole = release(eligible, assignments, spec, ledger=registered(tmp_path / "a.sqlite"), random_state=3,
                        created_at=CREATED)
    parts = []
    for part in range(3):
        keep = rows["person_id"] % 3 == part
        e = gate({k: v[keep] for k, v in rows.items()}, people)
        parts.append(count_cells(e, assignments_for(e), spec))
    cells = CellCounts.sum(parts)
    assert isinstance(cells, CellCounts)
    assert cells.sizes.tolist() == count_cells(eligible, assignments, spec).sizes.tolist()
    with pytest.warns(PrivacyLeakWarning):
        summed = release_counts(cells, spec, ledger=registered(tmp_path / "b.sqlite"), random_state=3,
                                created_at=CREATED)
    assert summed.report.to_json() == whole.report.to_json()


@pytest.mark.parametrize("kw, match", [
    ({"segment_ids": ["iab-2.2:99999"]}, "segment_ids must be segments of the assignments"),
    ({"epsilon": math.inf}, "allow_infinite_epsilon"),
    ({"data_window": (END - 86_400 * 400, END - 1)}, "must equal the data window"),
    ({"data_window": (END - 86_400 * 10, END)}, "must equal the data window"),
    ({"advertiser": "nobody"}, "'nobody' is not registered"),
])
def test_release_validates_the_spec_against_the_data(world, ledger, kw, match):
    eligible, assignments = world
    args = {"advertiser": "acme", "segment_ids": ids_of(assignments), "epsilon": 1.0, "delta": 1e-6, **kw}
    with pytest.raises(ParameterError, match=match):
        release(eligible, assignments, ReleaseSpec(**args), ledger=ledger)
    assert ledger.remaining("acme")[0].epsilon == 4.0
    assert ledger.remaining("acme")[1].epsilon == 20.0


def test_release_refuses_anything_but_eligible_events(world, ledger):
    _, assignments = world
    with pytest.raises(ProvenanceError, match="must be a EligibleEvents made by adtarget.apply_gate; got object"):
        release(object(), assignments, ReleaseSpec("acme", ids_of(assignments), epsilon=1.0, delta=1e-6),
                ledger=ledger)


def test_explanation_is_readable_and_json_able(world, ledger):
    eligible, assignments = world
    spec = ReleaseSpec("acme", ids_of(assignments), epsilon=1.0, delta=1e-6)
    result = release(eligible, assignments, spec, ledger=ledger)
    text = str(result.explanation)
    for needle in ("ε=0.6", "ε=0.1", "sizes L1=5", "cells L1=15", "discrete_laplace", "partition selection",
                   "thresholds: a size is shown at >=", "budget remaining"):
        assert needle in text
    data = json.loads(json.dumps(result.explanation.as_dict()))
    assert data["total"]["epsilon"] == 1.0 and "audit" not in data  # the release no longer audits
    report, explanation = result
    assert report is result.report and explanation is result.explanation


def test_completing_a_charged_but_unreported_query_spends_nothing_new(world, ledger, monkeypatch):
    eligible, assignments = world
    spec = ReleaseSpec("acme", ids_of(assignments), epsilon=1.0, delta=1e-6)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed between charge and store")

    with monkeypatch.context() as m:  # the release stores through the class (no instance attribute to patch)
        m.setattr(BudgetLedger, "_store_report", crash)
        with pytest.raises(KeyboardInterrupt):
            release(eligible, assignments, spec, ledger=ledger)
    assert ledger.remaining("acme")[0].epsilon == 3.0  # charged before anything was emitted
    result = release(eligible, assignments, spec, ledger=ledger)
    assert result.explanation.total["new_spend"] is False and not result.explanation.reused
    assert ledger.remaining("acme")[0].epsilon == 3.0
    assert release(eligible, assignments, spec, ledger=ledger).report == result.report


def test_cell_counts_cannot_be_constructed():
    """CellCounts come only from count_cells (or sums of its results)."""
    with pytest.raises(ProvenanceError, match="CellCounts can only be made by adtarget.reports.count_cells"):
        CellCounts(("iab-2.2:1",), np.array([500]), {}, {}, {}, 500)


def test_a_segment_on_a_sensitive_node_is_never_defined_or_counted(world):
    """P5 by construction: a catalog refuses a segment on a sensitive node, and count_cells counts only segments
    of the assignments (which a catalog made), so a sensitive id named in a spec is refused too."""
    eligible, assignments = world
    with pytest.raises(SensitiveCategoryError, match="286"):
        SegmentCatalog([TopicSegment("286")], SafeTaxonomy.default())
    spec = ReleaseSpec(advertiser="acme", segment_ids=("iab-2.2:286",), epsilon=1.0, breakdowns=())
    with pytest.raises(ParameterError, match="segment_ids must be segments of the assignments"):
        count_cells(eligible, assignments, spec)
    with pytest.raises(ProvenanceError, match="EligibleEvents"):
        count_cells(object(), assignments, spec)


def test_exact_counts_survive_pickling_between_engine_processes(world):
    """Counts of disjoint partitions of persons, pickled as an engine's processes send them, add up to the
    whole; counts added to themselves (or to a copy) are refused: the noise is for each person counted once."""
    eligible, assignments = world
    rows, people = world_rows(0)
    spec = ReleaseSpec(advertiser="acme", segment_ids=ids_of(assignments)[:1], epsilon=1.0, breakdowns=())
    parts = []
    for part in range(2):
        keep = rows["person_id"] % 2 == part
        e = gate({k: v[keep] for k, v in rows.items()}, people)
        parts.append(pickle.loads(pickle.dumps(count_cells(e, assignments_for(e), spec))))
    assert all(type(p) is CellCounts and not p.sizes.flags.writeable for p in parts)
    assert (parts[0] + parts[1]).sizes.tolist() == count_cells(eligible, assignments, spec).sizes.tolist()
    for twice in ((parts[0], parts[0]), (parts[0], pickle.loads(pickle.dumps(parts[0])))):
        with pytest.raises(ParameterError, match="cannot add CellCounts over partitions that share persons"):
            twice[0] + twice[1]  # noqa: B018


def test_assignments_of_other_eligible_events_are_refused(world, ledger):
    """What the removed kernel-input checks guarded against (stray or repeated persons, entries out of range)
    needs assignments that do not belong to the events counted: those are refused by lineage, before any
    charge (forging or editing assignments is refused in test_segments_assignments.py)."""
    eligible, _ = world
    rows, people = world_rows(0)
    keep = rows["person_id"] != 1
    other = assignments_for(gate({k: v[keep] for k, v in rows.items()}, people))
    spec = ReleaseSpec("acme", ids_of(other), epsilon=1.0, delta=1e-6)
    with pytest.raises(ParameterError, match="derived from other EligibleEvents"):
        count_cells(eligible, other, spec)
    with pytest.raises(ParameterError, match="derived from other EligibleEvents"):
        release(eligible, other, spec, ledger=ledger)
    assert ledger.remaining("acme")[0].epsilon == 4.0


def test_a_spec_subclass_or_a_changed_spec_is_refused(world, ledger):
    """The noise is calibrated from the spec: a subclass could override ``count_budget`` or the bounds, and
    ``object.__setattr__`` skips the checks, so only ReleaseSpec itself is taken and its fields are checked
    again; nothing is charged."""
    eligible, assignments = world

    class Cheap(ReleaseSpec):
        count_budget = property(lambda self: (1e6, 0.0))

    ids = ids_of(assignments)
    with pytest.raises(ParameterError, match="not a subclass"):
        release(eligible, assignments, Cheap("acme", ids, epsilon=1.0, delta=1e-6), ledger=ledger)
    with pytest.raises(ParameterError, match="not a subclass"):
        count_cells(eligible, assignments, Cheap("acme", ids, epsilon=1.0, delta=1e-6))
    changed = ReleaseSpec("acme", ids, epsilon=1.0, delta=1e-6)
    object.__setattr__(changed, "max_cells_per_person", (("age_band", 0), ("region", 1), ("service", 1)))
    with pytest.raises(ParameterError, match="changed after it was made"):
        release(eligible, assignments, changed, ledger=ledger)
    object.__setattr__(changed, "max_cells_per_person", (("age_band", 1), ("region", 1), ("service", 1)))
    object.__setattr__(changed, "max_segments_per_person", -3)
    with pytest.raises(ParameterError, match="changed after it was made"):
        release(eligible, assignments, changed, ledger=ledger)
    assert ledger.remaining("acme")[0].epsilon == 4.0
