"""The gate's compiled kernels against plain numpy: each kernel alone, and apply_gate as a whole against the
numpy formulation it replaced (same columns, dtypes, persons, exclusion counts, redactions and audit), on
batches that ``adtarget.ingest`` made from real event tables.

The gate trusts its batch (its codes are in range because ``ingest`` checked them), so the tests that fed it
hand-made batches with out-of-range indices are now tests that such a batch cannot be made: every route to a
forged or edited EventBatch is refused, naming what was refused.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import mmap
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adtarget import EligibilityPolicy, EventBatch, SafeTaxonomy, SensitivityProfile, apply_gate, ingest
from adtarget.consent import ConsentSnapshot
from adtarget.events import EVENT_KINDS
from adtarget.exceptions import ProvenanceError
from adtarget.gate import EXCLUSION_RULES
from adtarget.gate import _kernels as kernels
from adtarget.reference import age_restricted_mask

END = int(dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc).timestamp())
DAY = 86_400
REGIONS = ("US-CA", "DE", "KR")


# --- the numpy formulation the kernels replaced (adtarget/gate/_gate.py before the compiled kernels) -------------
def _lookup(mapping, code, default):
    """A jurisdiction's entry: the code upper-cased, else its country's (``US-CA`` -> ``US``)."""
    code = str(code).upper()
    return mapping.get(code, mapping.get(code.split("-")[0], default))


def reference_gate(batch, snapshot, safe, policy, target, end):
    """Everything apply_gate computes, as the numpy code before the kernels computed it."""
    rule_of = {name: code for code, name in enumerate(EXCLUSION_RULES)}
    at = np.searchsorted(snapshot.persons, batch.persons)
    at = np.minimum(at, max(snapshot.persons.size - 1, 0))
    found = (snapshot.persons[at] == batch.persons) if snapshot.persons.size else np.zeros(batch.n_persons, bool)
    rule = np.full(batch.n_persons, -1, dtype=np.int8)

    def flag(name, mask):
        rule[(rule < 0) & mask] = rule_of[name]

    flag("no_consent_record", ~found)
    if snapshot.persons.size:
        flag("deleted", snapshot.deleted[at])
        flag("terminated", snapshot.terminated[at])
        flag("opted_out", ~snapshot.opted_in[at])
        birth = snapshot.birth_year[at].astype(np.int64)
        min_age = np.array([_lookup(policy.jurisdiction_min_age, c, policy.min_age) for c in snapshot.jurisdiction[at]],
                           dtype=np.int64)
        youngest = dt.datetime.fromtimestamp(end, tz=dt.timezone.utc).year - birth - 1
        flag("under_min_age", (birth > 0) & (youngest < min_age))
        if policy.unknown_age == "exclude":
            flag("unknown_age", birth <= 0)
        if policy.min_policy_version is not None:
            flag("policy_version", snapshot.policy_version[at] < policy.min_policy_version)
    event_rule = rule[batch.person]
    sensitive = ~safe.safe_mask[batch.category]
    if policy.jurisdiction_profiles and snapshot.persons.size:
        jurisdiction = np.where(found, snapshot.jurisdiction[at], "")
        for profile in policy.jurisdiction_profiles.values():
            stricter = profile.sensitive_mask(batch.taxonomy)
            mine = np.array([_lookup(policy.jurisdiction_profiles, c, None) is profile for c in jurisdiction],
                            dtype=bool)
            sensitive |= mine[batch.person] & stricter[batch.category]
    if snapshot.persons.size:  # persons under the adult age (or of unknown age): age-restricted nodes too
        jurisdiction = np.where(found, snapshot.jurisdiction[at], "")
        birth = np.where(found, snapshot.birth_year[at], 0).astype(np.int64)
        adult = np.array([_lookup(policy.jurisdiction_adult_age, c, policy.adult_age) for c in jurisdiction],
                         dtype=np.int64)
        youngest = dt.datetime.fromtimestamp(end, tz=dt.timezone.utc).year - birth - 1
        minor = (birth <= 0) | (youngest < adult)
        sensitive |= minor[batch.person] & age_restricted_mask(batch.taxonomy)[batch.category]
    cross = found & snapshot.cross_service[at] if snapshot.persons.size else found
    masks = {"service_not_permitted": ~batch.services.ads_permitted[batch.service]}
    if target is not None:
        masks["cross_service_not_permitted"] = ~cross[batch.person] & (
            batch.service != batch.services.names.index(target))
    masks["sensitive_category"] = sensitive
    oldest = end - np.asarray(policy.retention_seconds(), dtype=np.int64)
    masks["outside_retention"] = batch.ts < oldest[batch.kind]
    masks["after_window_end"] = batch.ts > end
    only_sensitive = sensitive & (event_rule < 0)
    for name, mask in masks.items():
        if name != "sensitive_category":
            only_sensitive &= ~mask
        event_rule[(event_rule < 0) & mask] = rule_of[name]
    eligible = event_rule < 0
    counts = np.bincount(event_rule[~eligible].astype(np.int64), minlength=len(EXCLUSION_RULES))
    keep = np.zeros(batch.n_persons, dtype=bool)
    keep[batch.person[eligible]] = True
    new_index = np.cumsum(keep) - 1
    redacted = found & snapshot.location_deleted[at] if snapshot.persons.size else found
    region = batch.region[eligible].copy()
    hide = redacted[batch.person[eligible]] & (region >= 0)
    region[hide] = -1
    birth_year = np.where(found, snapshot.birth_year[at], 0).astype(np.int16) if snapshot.persons.size else \
        np.zeros(batch.n_persons, np.int16)
    classes = safe.sensitive_class[batch.category]
    audit = only_sensitive & (classes >= 0) & keep[batch.person]
    return {
        "person": new_index[batch.person[eligible]].astype(np.int32), "service": batch.service[eligible],
        "ts": batch.ts[eligible], "category": batch.category[eligible], "kind": batch.kind[eligible],
        "region": region, "weight": batch.weight[eligible], "persons": batch.persons[keep],
        "birth_year": birth_year[keep], "region_redacted": int(hide.sum()),
        "exclusions": {name: int(n) for name, n in zip(EXCLUSION_RULES, counts)},
        "audit_person": new_index[batch.person[audit]].astype(np.int32),
        "audit_class": classes[audit].astype(np.int8),
    }


def outputs(eligible):
    got = {name: getattr(eligible, name) for name in ("person", "service", "ts", "category", "kind", "region",
                                                        "weight", "persons", "birth_year", "region_redacted")}
    got["exclusions"] = dict(eligible.exclusions)
    got["audit_person"] = eligible.sensitive_audit.person
    got["audit_class"] = eligible.sensitive_audit.sensitive_class
    return got


def assert_same(got, expected):
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        if isinstance(value, np.ndarray):
            assert got[name].dtype == value.dtype, name
            np.testing.assert_array_equal(got[name], value, err_msg=name)
        else:
            assert got[name] == value, name


# --- random event tables, ingested, and snapshots of their pseudonyms ----------------------------------------
def make_world(seed, n_persons, n_events, n_snapshot_only, taxonomy, services, pseudonymizer):
    """(EventBatch made by ``ingest`` from a random event table, a ConsentSnapshot of ~80 % of its persons and
    ``n_snapshot_only`` persons without events)."""
    rng = np.random.default_rng(seed)
    ids = rng.permutation(10 * (n_persons + n_snapshot_only) + 10)[:n_persons + n_snapshot_only].astype(np.int64) + 1
    offsets = np.array([-800, -400, -200, -179, -100, -1, 0, 1], dtype=np.int64) * DAY
    table = {
        "person_id": ids[rng.integers(0, max(n_persons, 1), n_events)],
        "service": np.asarray(services.names, dtype=object)[rng.integers(0, len(services.names), n_events)],
        "ts": END + rng.choice(offsets, n_events) + rng.integers(-2, 3, n_events),
        "category": np.asarray(taxonomy.ids, dtype=object)[rng.integers(0, taxonomy.n_nodes, n_events)],
        "kind": np.asarray(EVENT_KINDS, dtype=object)[rng.integers(0, len(EVENT_KINDS), n_events)],
        "region": np.asarray(("",) + REGIONS, dtype=object)[rng.integers(0, len(REGIONS) + 1, n_events)],
        "weight": rng.random(n_events),
    }
    result = ingest(table, pseudonymizer=pseudonymizer, taxonomy=taxonomy, services=services, now=END + 2 * DAY)
    batch = result.batch
    assert batch.n_events == n_events and len(result.quarantine) == 0, "the test table must be valid"
    extra = pseudonymizer.pseudonymize(ids[n_persons:]) if n_snapshot_only else np.zeros(0, np.uint64)
    with_record = np.unique(np.concatenate([batch.persons[rng.random(batch.n_persons) < 0.8], extra]))
    n = with_record.size
    snapshot = ConsentSnapshot(
        as_of=END, persons=with_record,
        birth_year=rng.choice(np.array([0, 1970, 1999, 2010, 2012, 2013, 2014], np.int16), n),
        opted_in=rng.random(n) < 0.85, cross_service=rng.random(n) < 0.5, deleted=rng.random(n) < 0.05,
        terminated=rng.random(n) < 0.05, location_deleted=rng.random(n) < 0.3,
        policy_version=rng.choice(np.array(["2016-01-01", "2018-05-14", "2020-01-01"]), n),
        jurisdiction=rng.choice(np.array(["US", "DE", "KR", ""]), n),
    )
    return batch, snapshot


def empty_snapshot():
    return ConsentSnapshot(as_of=END, persons=np.zeros(0, np.uint64), birth_year=np.zeros(0, np.int16),
                           **{name: np.zeros(0, bool) for name in ("opted_in", "cross_service", "deleted",
                                                                    "terminated", "location_deleted")},
                           policy_version=np.zeros(0, "<U10"), jurisdiction=np.zeros(0, "<U2"))


POLICIES = [
    EligibilityPolicy(),
    EligibilityPolicy(unknown_age="include", min_policy_version="2018-05-14"),
    EligibilityPolicy(jurisdiction_min_age={"KR": 14, "US": 16}, jurisdiction_profiles={"DE": "gdpr_art9"}),
    EligibilityPolicy(jurisdiction_profiles={"DE": "gdpr_art9", "KR": "strict_minors", "": "gdpr_art9"},
                      retention_days={"search": 30}),
    EligibilityPolicy(unknown_age="include", adult_age=19, jurisdiction_adult_age={"US": 21}),
]


@pytest.fixture(scope="module")
def safes(taxonomy):
    return [SafeTaxonomy(taxonomy, SensitivityProfile.named(name)) for name in ("default", "strict_minors")]


@given(seed=st.integers(0, 2**32 - 1), n_persons=st.integers(0, 40), n_events=st.integers(0, 400),
       n_snapshot_only=st.integers(0, 10), policy=st.sampled_from(POLICIES),
       target=st.sampled_from([None, "video", "news"]), which_safe=st.integers(0, 1),
       window=st.sampled_from([None, END - 100 * DAY]))
def test_gate_equals_the_numpy_formulation(taxonomy, services, pseudonymizer, safes, seed, n_persons, n_events,
                                           n_snapshot_only, policy, target, which_safe, window):
    n_events = n_events if n_persons else 0
    batch, snapshot = make_world(seed, n_persons, n_events, n_snapshot_only, taxonomy, services, pseudonymizer)
    safe = safes[which_safe]
    eligible = apply_gate(batch, snapshot, safe, policy, target_service=target, window_end=window)
    end = END if window is None else window
    assert_same(outputs(eligible), reference_gate(batch, snapshot, safe, policy, target, end))
    assert eligible.input_events == eligible.n_events + sum(eligible.exclusions.values())


@pytest.mark.parametrize("case", ["empty snapshot", "nobody has a record", "one person", "no events"])
def test_gate_edge_cases_equal_the_numpy_formulation(taxonomy, services, pseudonymizer, safes, case):
    n_persons, n_events = (1, 50) if case == "one person" else (20, 0 if case == "no events" else 300)
    batch, snapshot = make_world(7, n_persons, n_events, 3, taxonomy, services, pseudonymizer)
    if case == "empty snapshot":
        snapshot = empty_snapshot()
    if case == "nobody has a record":  # records only for persons without events
        _, other = make_world(8, 5, 20, 0, taxonomy, services, pseudonymizer)
        snapshot = other
    for policy in POLICIES:
        eligible = apply_gate(batch, snapshot, safes[0], policy, target_service="news")
        assert_same(outputs(eligible), reference_gate(batch, snapshot, safes[0], policy, "news", END))


# --- a batch the gate trusts cannot be forged --------------------------------------------------------------------
@pytest.fixture
def world(taxonomy, services, pseudonymizer):
    return make_world(3, 20, 100, 0, taxonomy, services, pseudonymizer)


COLUMNS = ("person", "persons", "service", "ts", "category", "kind", "region", "weight")


def test_an_event_batch_cannot_be_constructed(world):
    batch, _ = world
    fields = {name: getattr(batch, name) for name in (*COLUMNS, "regions", "taxonomy", "services")}
    with pytest.raises(ProvenanceError, match="EventBatch can only be made by adtarget.ingest"):
        EventBatch(**fields)
    with pytest.raises(ProvenanceError, match="EventBatch can only be made by adtarget.ingest"):
        EventBatch()


def test_an_event_batch_made_with_object_new_holds_nothing_and_is_refused(world, safes):
    _, snapshot = world
    forged = object.__new__(EventBatch)
    assert repr(forged) == "EventBatch(<not made by adtarget.ingest>)"
    with pytest.raises(ProvenanceError, match="was not made by adtarget.ingest: it holds nothing"):
        forged.person  # noqa: B018
    with pytest.raises(ProvenanceError, match="batch: must be a EventBatch made by adtarget.ingest; got a EventBatch "
                                              "not made by adtarget.ingest"):
        apply_gate(forged, snapshot, safes[0])
    with pytest.raises(AttributeError, match="immutable|no attribute"):
        object.__setattr__(forged, "person", np.zeros(3, np.int32))


@pytest.mark.parametrize("column, value", [("person", 20), ("person", -1), ("category", 698), ("kind", 4),
                                           ("service", -3), ("region", 3), ("region", -2)])
def test_an_event_batch_cannot_be_replaced_with_out_of_range_codes(world, safes, column, value):
    batch, snapshot = world
    bad = getattr(batch, column).copy()
    bad[17] = value
    with pytest.raises(TypeError, match="dataclass"):
        dataclasses.replace(batch, **{column: bad})
    with pytest.raises(ProvenanceError, match="batch: must be a EventBatch made by adtarget.ingest; got dict"):
        apply_gate({**{c: getattr(batch, c) for c in COLUMNS}, column: bad}, snapshot, safes[0])


@pytest.mark.parametrize("column", COLUMNS)
def test_event_columns_cannot_be_made_writable(world, column):
    batch, _ = world
    array = getattr(batch, column)
    assert not array.flags.writeable
    with pytest.raises(ValueError, match="WRITEABLE"):
        array.setflags(write=True)
    with pytest.raises(ValueError, match="read-only"):
        array[:1] = 0
    root = array
    while isinstance(root, np.ndarray):  # every view on the way down refuses too
        with pytest.raises(ValueError, match="WRITEABLE"):
            root.setflags(write=True)
        root = root.base
    assert isinstance(root, memoryview) and root.readonly and isinstance(root.obj, mmap.mmap)
    with pytest.raises(TypeError):  # memory the process maps read-only (a sealed memfd)
        root.obj.write(b"x")
    with pytest.raises(ValueError, match="WRITEABLE"):
        np.frombuffer(root, dtype=np.uint8).setflags(write=True)


def test_a_writable_alias_of_a_sealed_column_faults_instead_of_writing(world, tmp_path):
    """A writable array made from a column's address (``__array_interface__``, no ctypes) cannot change the
    data: the page is mapped read-only, so the first write ends the process (SIGSEGV) before a release."""
    script = tmp_path / "alias.py"
    script.write_text(
        "import sys, numpy as np\n"
        f"sys.path[:0] = {[str(Path(__file__).parent)]!r}\n"
        "from test_document_audit import _world\n"
        "eligible, _, _ = _world('base')\n"
        "col = eligible.ts\n"
        "class Alias: pass\n"
        "alias = Alias()\n"
        "alias.__array_interface__ = {**col.__array_interface__, 'data': (col.__array_interface__['data'][0], False)}\n"
        "w = np.asarray(alias)\n"
        "w[0] = 0\n"
        "print('WRITTEN')\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGSEGV, done.stderr[-2000:]
    assert "WRITTEN" not in done.stdout


def test_an_event_batch_cannot_be_subclassed_copied_changed_or_unpickled_edited(world):
    batch, _ = world
    with pytest.raises(TypeError, match="cannot be subclassed"):
        type("Forged", (EventBatch,), {"__slots__": ()}, maker="x")
    assert copy.copy(batch) is batch and copy.deepcopy(batch) is batch
    with pytest.raises(AttributeError, match="immutable"):
        batch.person = np.zeros(3, np.int32)
    blob = pickle.dumps(batch)
    assert pickle.loads(blob).n_events == batch.n_events
    at = blob.index(batch.weight.tobytes()[:16])
    edited = blob[:at] + bytes([blob[at] ^ 1]) + blob[at + 1:]
    with pytest.raises(ProvenanceError, match="not sealed by this process .* only adtarget.ingest makes a EventBatch"):
        pickle.loads(edited)


def test_out_of_range_codes_never_reach_a_batch(taxonomy, services, pseudonymizer):
    """What the removed range check guarded against is quarantined by ingest, row by row."""
    table = {"person_id": np.array([1, 2, 3, 4, 5]), "ts": np.full(5, END),
             "service": np.array(["video", "no-such-service", "news", "news", "news"], dtype=object),
             "category": np.array(["483", "483", "no-such-node", "483", "483"], dtype=object),
             "kind": np.array(["search", "search", "search", "no-such-kind", "search"], dtype=object),
             "region": np.array(["DE", "DE", "DE", "DE", "52.5,13.4"], dtype=object)}
    result = ingest(table, pseudonymizer=pseudonymizer, taxonomy=taxonomy, services=services, now=END + DAY)
    assert result.batch.n_events == 1 and len(result.quarantine) == 4
    assert result.batch.category.max() < taxonomy.n_nodes and result.batch.service.max() < len(services.names)


# --- each kernel against numpy --------------------------------------------------------------------------------
uint64s = st.lists(st.one_of(st.integers(0, 20), st.integers(2**64 - 20, 2**64 - 1), st.integers(0, 2**64 - 1)),
                   max_size=60)


@given(needles=uint64s, haystack=uint64s)
def test_sorted_rows_equals_searchsorted(needles, haystack):
    needles = np.unique(np.array(needles, dtype=np.uint64))
    haystack = np.unique(np.array(haystack, dtype=np.uint64))
    rows, ok = kernels.sorted_rows(needles, haystack)
    assert ok
    at = np.minimum(np.searchsorted(haystack, needles), max(haystack.size - 1, 0))
    found = haystack[at] == needles if haystack.size else np.zeros(needles.size, bool)
    np.testing.assert_array_equal(rows, np.where(found, at, -1))


def test_sorted_rows_refuses_unsorted_input():
    sorted_ = np.array([1, 5, 9], dtype=np.uint64)
    assert not kernels.sorted_rows(np.array([5, 1], dtype=np.uint64), sorted_)[1]
    assert not kernels.sorted_rows(np.array([5, 5], dtype=np.uint64), sorted_)[1]
    assert not kernels.sorted_rows(sorted_, np.array([9, 1], dtype=np.uint64))[1]


@given(person=st.lists(st.integers(0, 29), max_size=200), n_extra=st.integers(0, 5))
def test_renumber_persons_equals_numpy(person, n_extra):
    person = np.array(person, dtype=np.int32)
    n_persons = 30 + n_extra
    keep = np.zeros(n_persons, bool)
    keep[person] = True
    expected = (np.cumsum(keep) - 1)[person].astype(np.int32)
    got_keep, new_index = kernels.renumber_persons(person, n_persons)
    np.testing.assert_array_equal(got_keep, keep)
    np.testing.assert_array_equal(person, expected)
    np.testing.assert_array_equal(new_index, np.where(keep, np.cumsum(keep) - 1, -1))


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 100))
def test_compact_audit_equals_numpy(seed, n):
    rng = np.random.default_rng(seed)
    person = rng.integers(0, 12, n + 5).astype(np.int32)
    classes = rng.integers(0, 3, n + 5).astype(np.int8)
    new_index = np.where(rng.random(12) < 0.5, np.arange(12), -1).astype(np.int32)
    mask = new_index[person[:n]] >= 0
    expected = new_index[person[:n][mask]], classes[:n][mask]
    m = kernels.compact_audit(person, classes, n, new_index)
    np.testing.assert_array_equal(person[:m], expected[0])
    np.testing.assert_array_equal(classes[:m], expected[1])


