"""Issue 14: a black-box ε audit of the whole advertiser document (``adtarget.testing.audit_documents``).

The world is small and public-API built: 50 persons interested in one topic (a segment at the reporting
threshold of 50), 60 in another; the neighbour adds one person to the first. Each trial is one release at
ε = 1 with a seeded noise draw and report id; the audit searches every byte hash, every JSON leaf, key and
numeric threshold of the documents. The old ``report_id`` (an unkeyed hash of the spec and the exact sizes)
and the old reuse rule (a stored report handed back when the exact counts are equal) are re-created on top of
today's documents and must be caught; today's documents must pass.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import warnings
from functools import cache

import numpy as np
import pytest
from _consent_fixtures import snapshot_of

import adtarget
from adtarget.testing import DocumentAudit, DocumentLeak, audit_documents

END = int(dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc).timestamp())
DAY = 86_400
CREATED = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
EPSILON = 1.0
SAMPLES = 3000  # per dataset: 1500 choose the event, 1500 bound it


@cache
def _safe():
    return adtarget.SafeTaxonomy.default()


def _topics() -> tuple[str, str, str]:
    """Two safe tier-1 categories and one sensitive category (taxonomy ids)."""
    t = _safe().taxonomy
    mask = np.asarray(_safe().safe_mask)
    first, second = np.flatnonzero(mask & (np.asarray(t.tier) == 1))[:2]
    return str(t.ids[first]), str(t.ids[second]), str(t.ids[np.flatnonzero(~mask)[0]])


def _events(groups: dict[int, str], *, health_of: int | None = None) -> dict[str, np.ndarray]:
    """Three events per person in its category; ``health_of`` also gets three sensitive events."""
    rng = np.random.default_rng(7)
    rows = [(p, c) for p, c in sorted(groups.items()) for _ in range(3)]
    if health_of is not None:
        rows += [(health_of, _topics()[2])] * 3
    n = len(rows)
    return {"person_id": np.array([p for p, _ in rows], np.int64),
            "service": np.array(["video"] * n, object),
            "ts": (END - rng.integers(DAY, 30 * DAY, n)).astype(np.int64),
            "category": np.array([c for _, c in rows], object),
            "region": np.array(["US-CA"] * n, object)}


def _groups(n_first: int) -> dict[int, str]:
    first, second, _ = _topics()
    return {**{p: first for p in range(1, n_first + 1)}, **{1000 + p: second for p in range(60)}}


@cache
def _world(name: str) -> tuple[object, object, adtarget.ReleaseSpec]:
    """(eligible, assignments, spec) of a named dataset, gated and assigned once."""
    pz = adtarget.Pseudonymizer(bytes(range(32)))
    groups = _groups(51 if name == "one more" else 50)
    events = _events(groups, health_of=1 if name == "health" else None)
    batch = adtarget.ingest(events, pseudonymizer=pz, now=END).batch
    snapshot = snapshot_of(pz, {p: {} for p in groups}, END)
    eligible = adtarget.apply_gate(batch, snapshot, _safe(), adtarget.EligibilityPolicy(unknown_age="include"),
                                   window_end=END, snapshot_id="2026-11-01")
    assignments = adtarget.SegmentCatalog.default(_safe()).assign(adtarget.build_profiles(eligible))
    t = _safe().taxonomy
    ids = tuple(f"{t.name}:{c}" for c in _topics()[:2])
    spec = adtarget.ReleaseSpec(advertiser="acme", segment_ids=ids, epsilon=EPSILON, breakdowns=(),
                                max_segments_per_person=1, min_reported_size=50)
    return eligible, assignments, spec


def _release(name: str, seed: int, ledger: adtarget.BudgetLedger | None = None) -> str:
    eligible, assignments, spec = _world(name)
    ledger = ledger if ledger is not None else adtarget.BudgetLedger(":memory:", advertisers=["acme"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", adtarget.PrivacyLeakWarning)  # seeded noise: a test
        result = adtarget.release(eligible, assignments, spec, ledger=ledger, random_state=seed, created_at=CREATED)
    return result.report.to_json(indent=None)


@cache
def _document(name: str, seed: int) -> str:
    return _release(name, seed)


@cache
def _exact_sizes(name: str) -> tuple[tuple[str, int], ...]:
    """The exact sizes (an ε = ∞ release, tests only): what the old report id hashed."""
    eligible, assignments, spec = _world(name)
    exact = adtarget.ReleaseSpec(advertiser="acme", segment_ids=spec.segment_ids, epsilon=float("inf"),
                                 breakdowns=(), max_segments_per_person=1, min_reported_size=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", adtarget.PrivacyLeakWarning)  # ε = ∞: a test
        result = adtarget.release(eligible, assignments, exact, ledger=adtarget.BudgetLedger(
            ":memory:", advertisers=["acme"]), allow_infinite_epsilon=True, created_at=CREATED)
    return tuple((s.segment_id, s.size) for s in result.report.segments)


def _old_report_id(name: str) -> str:
    """The report id adtarget shipped before issue 14: an unkeyed hash of the spec and the exact counts."""
    _, _, spec = _world(name)
    text = repr((spec.fingerprint(), _exact_sizes(name)))
    return "rpt-" + hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _audit(mechanism, dataset: str, neighbour: str, n_samples: int = SAMPLES) -> DocumentAudit:
    return audit_documents(mechanism, dataset, neighbour, claimed_epsilon=EPSILON, n_samples=n_samples,
                           random_state=14)


# --- the documents as shipped ------------------------------------------------------------------------------------
def _whole(name: str, seed: int) -> list[str]:
    return [_document(name, seed)]


def _field(path: str):
    def mechanism(name: str, seed: int) -> list[str]:
        return [json.dumps(json.loads(_document(name, seed))[path])]
    return mechanism


def _presence(name: str, seed: int) -> list[str]:
    doc = json.loads(_document(name, seed))
    return [json.dumps({"shown": sorted(s["segment_id"] for s in doc["segments"]),
                        "suppressed_segments": doc["suppressed_segments"]})]


def _reuse(name: str, seed: int) -> list[str]:
    """Ask, then (after the data changed for the neighbour) ask the same question again, one ledger."""
    ledger = adtarget.BudgetLedger(":memory:", advertisers=["acme"])
    first = _release("base", seed, ledger)
    return [first, _release(name, seed + 1, ledger)]


@pytest.mark.slow
@pytest.mark.parametrize(("what", "mechanism"), [
    ("whole report bytes", _whole),
    ("report_id", _field("report_id")),
    ("segment presence at the threshold", _presence),
])
def test_documents_pass_the_audit_for_one_more_person(what, mechanism):
    audit = _audit(mechanism, "base", "one more")
    print(f"{what}: {audit}")  # the figures quoted in docs/privacy/release.md
    assert audit.passed, audit
    audit.raise_if_violated()


@pytest.mark.slow
def test_reuse_passes_the_audit_when_one_person_changes():
    audit = _audit(_reuse, "base", "one more", n_samples=2000)
    print(f"reuse: {audit}")
    assert audit.passed, audit
    ledger = adtarget.BudgetLedger(":memory:", advertisers=["acme"])
    first = _release("base", 1, ledger)
    assert _release("one more", 2, ledger) == first  # same public facts: the stored report, whatever the counts


@pytest.mark.slow
def test_one_persons_health_events_leave_no_trace_in_the_document():
    audit = _audit(_whole, "base", "health", n_samples=2000)
    print(f"health events: {audit}")
    assert audit.epsilon_lower_bound == -np.inf or audit.passed, audit
    assert _document("base", 3) == _document("health", 3)  # the gate removed them before anything


# --- the old channels, re-created, are caught -------------------------------------------------------------------
def _with_old_report_id(name: str, seed: int) -> list[str]:
    doc = json.loads(_document(name, seed))
    doc["report_id"] = _old_report_id(name)
    return [json.dumps(doc)]


def _with_old_reuse(name: str, seed: int) -> list[str]:
    """The stored report handed back when the exact counts are equal, a fresh one otherwise (finding 2)."""
    first = _document("base", seed)
    same = _exact_sizes(name) == _exact_sizes("base")
    return [first, first if same else _document(name, seed + 1)]


def test_the_old_report_id_is_caught():
    assert _old_report_id("base") != _old_report_id("one more")
    audit = _audit(_with_old_report_id, "base", "one more", n_samples=400)
    assert not audit.passed and audit.epsilon_lower_bound > 3.5, audit  # the most 200 held-out trials can show
    assert "report_id" in audit.event or "bytes" in audit.event
    with pytest.raises(DocumentLeak, match="documents leak"):
        audit.raise_if_violated()


def test_the_old_reuse_rule_is_caught():
    audit = _audit(_with_old_reuse, "base", "one more", n_samples=400)
    assert not audit.passed and audit.epsilon_lower_bound > 3.5, audit  # the most 200 held-out trials can show
    assert "byte-identical" in audit.event or "document 1" in audit.event


def test_a_document_audit_rejects_a_mechanism_that_returns_no_documents():
    with pytest.raises(adtarget.exceptions.ParameterError, match="sequence of documents"):
        audit_documents(lambda d, s: "not a list", "a", "b", claimed_epsilon=1.0, n_samples=100)
    with pytest.raises(adtarget.exceptions.ParameterError, match="mechanism must be callable"):
        audit_documents("nope", "a", "b", claimed_epsilon=1.0, n_samples=100)  # type: ignore[arg-type]


def test_ignored_paths_leave_the_audit():
    def stamped(name: str, seed: int) -> list[str]:
        return [json.dumps({"created_at": name, "value": seed % 2})]

    assert not _audit(stamped, "a", "b", n_samples=200).passed
    audit = audit_documents(stamped, "a", "b", claimed_epsilon=1.0, n_samples=200, ignore=("created_at",))
    assert audit.passed, audit
