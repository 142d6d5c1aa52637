"""Issue 14 ("Seal the advertiser boundary"), findings 1, 2, 4, 5 and 6, through public names only.

1. ``report_id`` is random (a UUID4 from secure randomness, or from the seed), never a hash of the counts.
2. Reuse of a stored report is keyed on public facts (spec, data window, snapshot id, segment definitions,
   policy), never on counts: after one person is forgotten, the same question on the same snapshot id gets the
   stored report (same bytes, nothing spent); another snapshot id gets a fresh, charged one.
4. A ``spec.data_window`` that does not match is refused before the charge, by a message that names the
   windows only (no count of events).
5. ``release_counts`` refuses counts made with other bounds than its spec's, before the charge.
6. Every public bypass of the gate and of provenance is refused, naming what was refused.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import hashlib
import json
import pickle
import re
import uuid
from types import SimpleNamespace

import numpy as np
import pytest
from _consent_fixtures import snapshot_of
from _release_fixtures import END, KEY, assignments_for, gate, registered, world_rows

import adtarget
from adtarget import BudgetLedger, EligibleEvents, PrivacyLeakWarning, ReleaseSpec, release
from adtarget.exceptions import ParameterError, ProvenanceError
from adtarget.reports import CellCounts, count_cells, release_counts

CREATED = dt.datetime(2026, 11, 2, 3, 0, tzinfo=dt.timezone.utc)
SNAPSHOT = "consent-2026-11-01"
ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


@pytest.fixture(scope="module")
def data():
    return world_rows(3, n_persons=200)


@pytest.fixture(scope="module")
def world(data):
    eligible = gate(*data, snapshot_id=SNAPSHOT)
    return eligible, assignments_for(eligible)


def spec_of(assignments, **kw):
    return ReleaseSpec("acme", assignments.segment_ids, **{"epsilon": 1.0, "delta": 1e-6, **kw})


def spent(ledger):
    adv, glob = ledger.remaining("acme")
    return (4.0 - adv.epsilon, 20.0 - glob.epsilon)


def seeded_release(eligible, assignments, spec, ledger, seed):
    with pytest.warns(PrivacyLeakWarning):
        return release(eligible, assignments, spec, ledger=ledger, random_state=seed, created_at=CREATED)


# --- finding 1: report_id is random -------------------------------------------------------------------------
def _digests(values) -> set[str]:
    """Hex digests an unkeyed hash of the counts would give (the old ``_report_id`` / ``_counts_digest``)."""
    out = set()
    for text in (json.dumps(values), json.dumps(values, separators=(",", ":")), repr(values), str(values)):
        for name in ("blake2b", "sha256", "sha1", "md5", "blake2s"):
            out.add(hashlib.new(name, text.encode()).hexdigest())
        for size in (8, 16):
            out.add(hashlib.blake2b(text.encode(), digest_size=size).hexdigest())
    return out


def test_report_id_is_a_random_uuid4_not_a_hash_of_the_counts(world):
    eligible, assignments = world
    spec = spec_of(assignments)
    a = seeded_release(eligible, assignments, spec, registered(), seed=1).report
    b = seeded_release(eligible, assignments, spec, registered(), seed=2).report
    assert a.report_id != b.report_id  # the same data, other seeds: other ids
    assert seeded_release(eligible, assignments, spec, registered(), seed=1).report.report_id == a.report_id
    for report in (a, b):
        assert report.report_id.startswith("rpt-")
        assert uuid.UUID(report.report_id[4:]).version == 4
    hex_id = a.report_id[4:].replace("-", "")
    exact = count_cells(eligible, assignments, spec).sizes.tolist()
    noisy = [s.size for s in a.segments]
    for values in (exact, noisy, {s.segment_id: s.size for s in a.segments}):
        for digest in _digests(values):
            assert hex_id not in digest and digest[:32] != hex_id


def test_report_id_is_the_same_for_any_data_under_the_same_seed(data, world):
    """A function of the seed alone: a neighbouring dataset (one person's events removed) gets the same id."""
    eligible, assignments = world
    rows, people = data
    keep = rows["person_id"] != 7
    other = gate({k: v[keep] for k, v in rows.items()}, people, snapshot_id=SNAPSHOT)
    spec = spec_of(assignments)
    a = seeded_release(eligible, assignments, spec, registered(), seed=5).report
    b = seeded_release(other, assignments_for(other), spec, registered(), seed=5).report
    assert a.report_id == b.report_id


def test_secure_report_ids_differ_every_time(world):
    eligible, assignments = world
    spec = spec_of(assignments)
    ids = {release(eligible, assignments, spec, ledger=registered(), created_at=CREATED).report.report_id
           for _ in range(5)}
    assert len(ids) == 5


# --- finding 2: reuse keyed on public facts, never on counts --------------------------------------------------
def _forget(data, person):
    rows, people = data
    return rows, {**people, person: {**people[person], "deleted": True}}


def test_a_forgotten_person_does_not_change_which_report_is_returned(data, world, tmp_path):
    eligible, assignments = world
    spec = spec_of(assignments)
    ledger = registered(tmp_path / "budget.sqlite")
    first = release(eligible, assignments, spec, ledger=ledger, created_at=CREATED)
    after_first = ledger.remaining("acme")
    forgotten = gate(*_forget(data, 1), snapshot_id=SNAPSHOT)  # same snapshot id, same window
    assert forgotten.n_persons == eligible.n_persons - 1
    again = assignments_for(forgotten)
    assert count_cells(forgotten, again, spec).sizes.tolist() != count_cells(eligible, assignments, spec).sizes.tolist()
    second = release(forgotten, again, spec, ledger=ledger, created_at=CREATED)
    assert second.explanation.reused
    assert second.report.to_json() == first.report.to_json()  # the stored report, byte for byte
    assert ledger.remaining("acme") == after_first  # budget_remaining did not change
    assert second.report.privacy["budget_remaining"] == first.report.privacy["budget_remaining"]


def test_another_snapshot_id_gets_a_fresh_charged_report(data, world, tmp_path):
    eligible, assignments = world
    spec = spec_of(assignments)
    ledger = registered(tmp_path / "budget.sqlite")
    first = release(eligible, assignments, spec, ledger=ledger, created_at=CREATED)
    forgotten = gate(*_forget(data, 1), snapshot_id="consent-2026-11-02")
    fresh = release(forgotten, assignments_for(forgotten), spec, ledger=ledger, created_at=CREATED)
    assert not fresh.explanation.reused and fresh.explanation.total["new_spend"] is True
    assert fresh.report.report_id != first.report.report_id
    assert fresh.explanation.query_key != first.explanation.query_key
    assert spent(ledger) == pytest.approx((2.0, 2.0))


def test_unchanged_data_under_another_snapshot_id_is_charged_again(world, data, tmp_path):
    """Equal counts are never the reason for reuse: the same data named by another snapshot id is a new
    question (and the same data under the same id is the stored answer)."""
    eligible, assignments = world
    spec = spec_of(assignments)
    ledger = registered(tmp_path / "budget.sqlite")
    release(eligible, assignments, spec, ledger=ledger)
    renamed = gate(*data, snapshot_id="consent-renamed")
    result = release(renamed, assignments_for(renamed), spec, ledger=ledger)
    assert not result.explanation.reused and spent(ledger) == pytest.approx((2.0, 2.0))


# --- finding 4: the data window is checked before the charge, in a message without counts ---------------------
@pytest.mark.parametrize("window", [(END - 10 * 86_400, END),  # starts after the earliest eligible event
                                    (END - 800 * 86_400, END - 86_400)])
def test_a_data_window_that_does_not_match_names_only_the_windows(data, world, window):
    eligible, assignments = world
    ledger = registered()
    messages = []
    rows, people = data
    keep = rows["person_id"] != 3
    neighbour = gate({k: v[keep] for k, v in rows.items()}, people, snapshot_id=SNAPSHOT)
    for e in (eligible, neighbour):
        with pytest.raises(ParameterError, match="spec.data_window") as info:
            release(e, assignments_for(e), spec_of(assignments, data_window=window), ledger=ledger)
        messages.append(str(info.value))
    message = messages[0]
    assert "eligible event" not in message and "event" not in message
    assert not re.search(r"\d", ISO.sub("", message)), message  # no number but the windows' dates and times
    assert len(ISO.findall(message)) == 4
    assert messages[1] == message  # the same for a neighbouring dataset
    assert spent(ledger) == (0.0, 0.0)


# --- finding 5: counts' bounds must be the spec's -------------------------------------------------------------
@pytest.mark.parametrize("counted, released, named", [
    ({"max_segments_per_person": 6, "salt": "s"}, {"max_segments_per_person": 1, "salt": "s"},
     "max_segments_per_person"),
    ({"max_segments_per_person": 6}, {"max_segments_per_person": 1, "breakdowns": (), "delta": 0.0}, "breakdowns"),
    ({"max_cells_per_person": {"region": 3}, "salt": "s"}, {"salt": "s"}, "max_cells_per_person"),
    ({"salt": "a"}, {"salt": "b"}, "bounding_salt"),
])
def test_counts_made_with_other_bounds_are_refused(world, counted, released, named):
    eligible, assignments = world
    cells = count_cells(eligible, assignments, spec_of(assignments, **counted))
    ledger = registered()
    with pytest.raises(ParameterError, match=f"cells were not counted with this spec's {named}"):
        release_counts(cells, spec_of(assignments, **released), ledger=ledger)
    assert spent(ledger) == (0.0, 0.0)


# --- finding 6: public bypasses of the gate and of provenance -------------------------------------------------
def test_eligible_events_cannot_be_replaced_constructed_subclassed_or_copied(world):
    eligible, assignments = world
    with pytest.raises(TypeError, match="dataclass"):
        dataclasses.replace(eligible, person=np.zeros(3, np.int32))
    with pytest.raises(ProvenanceError, match="EligibleEvents can only be made by adtarget.apply_gate"):
        EligibleEvents()
    forged = object.__new__(type(eligible))
    with pytest.raises(ProvenanceError, match="not made by adtarget.apply_gate"):
        forged.persons  # noqa: B018 - holds nothing
    spec = spec_of(assignments)
    refused = "eligible: must be a EligibleEvents made by adtarget.apply_gate; got a EligibleEvents not made"
    with pytest.raises(ProvenanceError, match=refused):
        adtarget.build_profiles(forged)
    ledger = registered()
    with pytest.raises(ProvenanceError, match=refused):
        release(forged, assignments, spec, ledger=ledger)
    with pytest.raises(TypeError, match="EligibleEvents cannot be subclassed"):
        type("AllEvents", (EligibleEvents,), {"__slots__": ()}, maker="me")
    assert copy.copy(eligible) is eligible and copy.deepcopy(eligible) is eligible
    with pytest.raises(AttributeError, match="immutable"):
        eligible.person = np.zeros(3, np.int32)
    assert spent(ledger) == (0.0, 0.0)


def test_engines_are_adtargets_own(data):
    class DuckEngine:
        def aggregate(self, events, context):
            raise AssertionError("never called")

    rows, people = data
    snapshot = snapshot_of(adtarget.Pseudonymizer(KEY), people, END)
    ledger = registered(":memory:", "demo-advertiser")
    with pytest.raises(ParameterError, match="engine must be adtarget's LocalEngine or SparkEngine, got DuckEngine"):
        adtarget.run(rows, snapshot, pseudonymizer=adtarget.Pseudonymizer(KEY), budget=ledger, engine=DuckEngine())
    with pytest.raises(ParameterError, match="got SubEngine"):
        adtarget.run(rows, snapshot, pseudonymizer=adtarget.Pseudonymizer(KEY), budget=ledger,
                     engine=type("SubEngine", (adtarget.LocalEngine,), {})())
    assert ledger.remaining("demo-advertiser")[0].epsilon == 4.0


def test_cell_counts_cannot_be_stood_in_for_replaced_or_made_writable(world):
    eligible, assignments = world
    spec = spec_of(assignments)
    cells = count_cells(eligible, assignments, spec)
    ledger = registered()
    stand_in = SimpleNamespace(segment_ids=cells.segment_ids, sizes=np.zeros(len(cells.segment_ids), np.int64),
                               values=cells.values, cells=cells.cells, value_persons=cells.value_persons,
                               n_persons=0, bounds=cells.bounds, facts=cells.facts)
    with pytest.raises(ProvenanceError, match="cells: must be a CellCounts made by adtarget.reports.count_cells; "
                                              "got SimpleNamespace"):
        release_counts(stand_in, spec, ledger=ledger)
    with pytest.raises(TypeError, match="dataclass"):
        dataclasses.replace(cells, sizes=cells.sizes * 0)
    with pytest.raises(ProvenanceError, match="CellCounts not made by adtarget.reports.count_cells"):
        release_counts(object.__new__(CellCounts), spec, ledger=ledger)
    for array in (cells.sizes, *cells.cells.values(), *cells.value_persons.values()):
        with pytest.raises(ValueError, match="WRITEABLE"):
            array.setflags(write=True)
        with pytest.raises(ValueError, match="read-only"):
            array[...] = 0
        base = array.base
        assert base is not None and not base.flags.writeable  # a read-only mapping the counts own
        with pytest.raises(ValueError, match="WRITEABLE"):
            np.asarray(base).setflags(write=True)
        if isinstance(base, np.ndarray) and base.base is not None:
            with pytest.raises(ValueError, match="WRITEABLE"):
                np.asarray(base.base).setflags(write=True)
    assert spent(ledger) == (0.0, 0.0)


def test_a_tampered_pickle_of_cell_counts_is_refused(world):
    eligible, assignments = world
    spec = spec_of(assignments)
    cells = count_cells(eligible, assignments, spec)
    blob = pickle.dumps(cells)
    assert pickle.loads(blob).sizes.tolist() == cells.sizes.tolist()
    at = blob.index(cells.sizes.tobytes())
    edited = blob[:at] + bytes([blob[at] ^ 1]) + blob[at + 1:]  # one person more in the first segment
    with pytest.raises(ProvenanceError, match="CellCounts: this pickle was not sealed by this process "
                                              r"\(or it was altered\); only adtarget.reports.count_cells makes a CellCounts"):
        pickle.loads(edited)


def test_a_stand_in_ledger_is_refused(world):
    class Ledger:  # charges nothing, returns no stored report
        def charge(self, *args, **kwargs):
            return SimpleNamespace(report_json=None, charge_id=1, new_spend=True, definitions_charged=())

        def remaining(self, advertiser):
            return (adtarget.PrivacyBudget(4.0, 1e-5), adtarget.PrivacyBudget(20.0, 1e-4))

        def store_report(self, charge_id, text):
            return text

    eligible, assignments = world
    spec = spec_of(assignments)
    for ledger in (Ledger(), type("SubLedger", (BudgetLedger,), {})(":memory:", advertisers=["acme"])):
        with pytest.raises(ParameterError, match="ledger must be an adtarget BudgetLedger"):
            release(eligible, assignments, spec, ledger=ledger)
        with pytest.raises(ParameterError, match=f"got {type(ledger).__name__}"):
            release_counts(count_cells(eligible, assignments, spec), spec, ledger=ledger)
