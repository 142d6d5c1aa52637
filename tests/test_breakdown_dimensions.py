"""Breakdown dimensions are one table (``adtarget.reference.BREAKDOWN_DIMENSIONS``): adding an entry is all it
takes for ingest to accept and code its column, the gate to carry it, counting to bound and count it, the
release to noise, select and post-process it and the schema to admit it.

The tests add ``device_class`` the way a developer would — one entry in the table (here patched into the
module the table lives in, so every stage reads it) — and compare an ε = ∞ release with a pandas oracle.
"""

from __future__ import annotations

import json
import math
from importlib import resources

import _consent_fixtures
import numpy as np
import pandas as pd
import pytest
from _release_fixtures import END, KEY, assignments_for, prio, registered, safe_taxonomy, world_rows

import adtarget
from adtarget import PrivacyLeakWarning, ReleaseSpec, release
from adtarget.exceptions import ParameterError, SchemaError
from adtarget.reference import BREAKDOWN_DIMENSIONS, BreakdownDimension
from adtarget.reports import breakdowns_schema, validate_report

DEVICE_CLASS = BreakdownDimension("device_class", source="device_class", per="event", values="selected",
                                  pattern=r"[a-z]{2,16}")
CLASSES = np.array(["phone", "tv", "desktop", "tablet"], dtype=object)


@pytest.fixture
def device_class(monkeypatch):
    """The table with one more entry (what adding ``device_class`` to the source is)."""
    from adtarget.reference import _breakdowns

    monkeypatch.setattr(_breakdowns, "BREAKDOWN_DIMENSIONS", (*BREAKDOWN_DIMENSIONS, DEVICE_CLASS))
    return DEVICE_CLASS


def rows_with_device_class(seed: int = 0):
    """The release tests' world with a ``device_class`` column: persons use one or two classes; some values
    are invalid (quarantined) and some missing (kept, no value)."""
    rows, people = world_rows(seed)
    rng = np.random.default_rng(seed + 7)
    n = rows["person_id"].size
    first = CLASSES[rows["person_id"] % 3]
    value = np.where(rng.random(n) < 0.2, CLASSES[rng.integers(0, 4, n)], first).astype(object)
    value[rng.random(n) < 0.05] = None
    invalid = rng.random(n) < 0.02
    value[invalid] = "Smart TV!"
    return {**rows, "device_class": value}, people, int(invalid.sum())


def gate_of(rows, people):
    pz = adtarget.Pseudonymizer(KEY)
    result = adtarget.ingest(rows, pseudonymizer=pz, now=END)
    snapshot = _consent_fixtures.snapshot_of(pz, people, END)
    eligible = adtarget.apply_gate(result.batch, snapshot, safe_taxonomy(),
                                   adtarget.EligibilityPolicy(unknown_age="include"), window_end=END)
    return result, eligible


def oracle_cells(eligible, assignments, spec, dim):
    """{(segment, value): distinct persons} of an event-level dimension after bounding, with pandas."""
    salt, persons = spec.bounding_salt, np.asarray(eligible.persons)
    coo = assignments.membership.tocoo()
    ids = [s.segment_id for s in assignments.segments]
    seg = pd.DataFrame({"person": coo.row, "seg": [ids[c] for c in coo.col]})
    seg["prio"] = [prio(persons[p], s, salt) for p, s in zip(seg["person"], seg["seg"])]
    seg = seg.sort_values(["person", "prio"])
    seg = seg[seg.groupby("person").cumcount() < spec.max_segments_per_person]
    names = eligible.dimension_values[dim]
    ev = pd.DataFrame({"person": eligible.person, "code": eligible.dimension_codes[dim]})
    ev = ev[(ev["code"] >= 0) & ev["person"].isin(set(seg["person"]))].drop_duplicates()
    ev["value"] = [names[c] for c in ev["code"]]
    ev["prio"] = [prio(persons[p], f"{dim}:{v}", salt) for p, v in zip(ev["person"], ev["value"])]
    ev = ev.sort_values(["person", "prio"])
    ev = ev[ev.groupby("person").cumcount() < spec.cells_per_person(dim)]
    joined = seg.merge(ev[["person", "value"]], on="person")
    return {k: int(n) for k, n in joined.groupby(["seg", "value"])["person"].nunique().items()}


def test_a_new_dimension_is_one_table_entry(device_class, tmp_path):
    rows, people, n_invalid = rows_with_device_class()
    result, eligible = gate_of(rows, people)
    assert result.quarantine.counts() == {"invalid_breakdown_value": n_invalid}
    assert result.batch.n_events + len(result.quarantine) == rows["person_id"].size
    assert eligible.dimension_values["device_class"] == tuple(sorted(CLASSES))
    assignments = assignments_for(eligible)
    spec = ReleaseSpec("acme", [s.segment_id for s in assignments.segments], epsilon=math.inf, delta=1e-6,
                       min_reported_size=1, breakdowns=("age_band", "region", "service", "device_class"),
                       max_cells_per_person={"device_class": 2})
    assert spec.breakdowns[-1] == "device_class" and spec.cells_per_person("device_class") == 2
    with pytest.warns(PrivacyLeakWarning):
        out = release(eligible, assignments, spec, ledger=registered(tmp_path / "b.sqlite"),
                      allow_infinite_epsilon=True)
    got = {(s.segment_id, v): c for s in out.report.segments for v, c in s.breakdowns["device_class"].items()}
    assert got == oracle_cells(eligible, assignments, spec, "device_class") and got
    assert out.explanation.sensitivity["l1"] == 5 * (1 + 1 + 1 + 1 + 2)


def test_a_new_dimension_is_noised_selected_and_kept_within_the_size(device_class, tmp_path):
    rows, people, _ = rows_with_device_class(1)
    _, eligible = gate_of(rows, people)
    assignments = assignments_for(eligible)
    spec = ReleaseSpec("acme", [s.segment_id for s in assignments.segments], epsilon=1.0, delta=1e-6,
                       min_reported_size=20, breakdowns=("service", "device_class"),
                       false_segment_rate=0.2)  # a small world: low thresholds, so that some cells are shown
    assert spec.needs_partition_selection and spec.selected_breakdowns == ("device_class",)
    with pytest.warns(PrivacyLeakWarning):
        out = release(eligible, assignments, spec, ledger=registered(tmp_path / "b.sqlite"), random_state=3)
    stages = [s["stage"] for s in out.explanation.stages]
    assert stages[-1] == "partition selection of non-public device_class keys"
    for seg in out.report.segments:
        assert set(seg.breakdowns["device_class"]) <= set(CLASSES)
        assert all(out.report.privacy["cell_threshold"] <= c <= seg.size for c in seg.breakdowns["device_class"].values())
    assert any(seg.breakdowns["device_class"] for seg in out.report.segments)
    validate_report(json.loads(out.report.to_json()))


def test_without_its_entry_the_column_is_refused_by_name():
    rows, people, _ = rows_with_device_class()
    with pytest.raises(SchemaError, match="device_class"):
        adtarget.ingest(rows, pseudonymizer=adtarget.Pseudonymizer(KEY), now=END)
    with pytest.raises(ParameterError, match="device_class"):
        ReleaseSpec("acme", ["iab-2.2:1"], epsilon=1.0, breakdowns=("device_class",))


def test_location_values_of_a_new_dimension_are_erased_like_regions(monkeypatch):
    from adtarget.reference import _breakdowns

    metro = BreakdownDimension("metro", source="metro", per="event", values="selected", location=True,
                               pattern=r"[a-z]{3}")
    monkeypatch.setattr(_breakdowns, "BREAKDOWN_DIMENSIONS", (*BREAKDOWN_DIMENSIONS, metro))
    rows, people = world_rows(2)
    rows = {**rows, "metro": np.where(rows["person_id"] % 2 == 0, "sfo", "nyc").astype(object)}
    people = {p: {**c, "location_deleted": p % 5 == 0} for p, c in people.items()}
    _, eligible = gate_of(rows, people)
    hidden = np.isin(np.asarray(eligible.persons)[eligible.person],
                     adtarget.Pseudonymizer(KEY).pseudonymize(np.array([p for p in people if p % 5 == 0])))
    codes = np.asarray(eligible.dimension_codes["metro"])
    assert hidden.any() and (codes[hidden] == -1).all() and (codes[~hidden] >= 0).all()
    assert (np.asarray(eligible.region)[hidden] == -1).all()


@pytest.mark.parametrize("kw, match", [
    ({"name": "device_class", "source": "device_class", "per": "event", "values": "selected"}, "pattern"),
    ({"name": "tier", "source": "tier", "per": "event", "values": "selected", "pattern": "[a-z]+",
      "consistency": "sums_to_size"}, "person-level"),
    ({"name": "cohort", "source": "birth_year", "per": "person", "values": "selected"}, "person-level"),
    ({"name": "x", "source": "service", "per": "event", "values": "fixed"}, "fixed_values"),
    ({"name": "Bad Name", "source": "x", "per": "event", "values": "selected", "pattern": "a"}, "name"),
    ({"name": "other", "source": "other", "per": "event", "values": "registry", "pattern": "a"}, "services"),
    ({"name": "device", "source": "device", "per": "event", "values": "fixed", "fixed_values": ("phone", "tv"),
      "pattern": "[a-z]+"}, "person-level dimension"),
    ({"name": "size", "source": "service", "per": "event", "values": "registry"}, "reserved"),
])
def test_an_inconsistent_entry_is_refused(kw, match):
    with pytest.raises(ParameterError, match=match):
        BreakdownDimension(**kw)


def test_the_bundled_schema_is_the_tables():
    text = resources.files("adtarget").joinpath("data/segment_report_v1.schema.json").read_text("utf-8")
    bundled = json.loads(text)["$defs"]["segment"]["properties"]["breakdowns"]["properties"]
    assert bundled == breakdowns_schema(BREAKDOWN_DIMENSIONS), (
        "adtarget/data/segment_report_v1.schema.json's breakdowns object must be "
        "adtarget.reports.breakdowns_schema(BREAKDOWN_DIMENSIONS)")


def test_the_schema_admits_a_new_dimension_only_when_it_is_in_the_table(device_class):
    from adtarget.reports import load_schema

    assert "device_class" in load_schema()["$defs"]["segment"]["properties"]["breakdowns"]["properties"]


@pytest.mark.parametrize("entries, match", [
    ((DEVICE_CLASS, BreakdownDimension("device_class", source="device", per="event", values="selected",
                                       pattern="[a-z]+")), "share the name 'device_class'"),
    ((DEVICE_CLASS, BreakdownDimension("device_kind", source="device_class", per="event", values="selected",
                                       pattern="[a-z]+", location=True)), "share the source 'device_class'"),
])
def test_the_table_refuses_two_entries_on_one_name_or_column(monkeypatch, entries, match):
    from adtarget.reference import _breakdowns

    monkeypatch.setattr(_breakdowns, "BREAKDOWN_DIMENSIONS", (*BREAKDOWN_DIMENSIONS, *entries))
    with pytest.raises(ParameterError, match=match):
        ReleaseSpec("acme", ["iab-2.2:1"], epsilon=1.0)


def test_an_entry_changed_after_construction_is_refused(monkeypatch):
    from adtarget.reference import _breakdowns

    changed = BreakdownDimension("device_class", source="device_class", per="event", values="selected",
                                 pattern="[a-z]+")
    object.__setattr__(changed, "consistency", "sums_to_size")
    monkeypatch.setattr(_breakdowns, "BREAKDOWN_DIMENSIONS", (*BREAKDOWN_DIMENSIONS, changed))
    with pytest.raises(ParameterError, match="person-level"):
        ReleaseSpec("acme", ["iab-2.2:1"], epsilon=1.0)


def test_values_that_cannot_be_report_keys_are_quarantined(monkeypatch):
    """A pattern wider than the report's keys never lets a value reach a release that would then refuse it
    (after charging): hex runs (pseudonym-like) and non-key characters are quarantined at ingest."""
    from adtarget.reference import _breakdowns

    wide = BreakdownDimension("device_class", source="device_class", per="event", values="selected",
                              pattern=r".{1,80}")
    monkeypatch.setattr(_breakdowns, "BREAKDOWN_DIMENSIONS", (*BREAKDOWN_DIMENSIONS, wide))
    rows, people = world_rows(3)
    n = rows["person_id"].size
    value = np.array(["phone", "abcdefabcdefabcd", "-starts-badly", "x" * 70], dtype=object)[np.arange(n) % 4]
    result, _ = gate_of({**rows, "device_class": value}, people)
    assert result.quarantine.counts() == {"invalid_breakdown_value": int((value != "phone").sum())}
    assert result.batch.dimension_values["device_class"] == ("phone",)
