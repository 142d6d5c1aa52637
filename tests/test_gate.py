"""The eligibility gate: nothing of an excluded person, sensitive node or unpermitted service passes,
and input == eligible + excluded per rule, always."""

from __future__ import annotations

import datetime as dt

import _consent_fixtures
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adtarget.events import ingest
from adtarget.exceptions import ParameterError
from adtarget.gate import EXCLUSION_RULES, EligibilityPolicy, EligibleEvents, apply_gate
from adtarget.reference import SafeTaxonomy, SensitivityProfile

END = int(dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc).timestamp())
DAY = 86_400
SERVICES = ["video", "news", "games", "search", "music", "payments", "health_plus"]


@pytest.fixture(scope="module")
def safe(taxonomy):
    return SafeTaxonomy(taxonomy, SensitivityProfile.named("default"))


@pytest.fixture(scope="module")
def node_pools(safe):
    """Safe and sensitive category ids to draw from."""
    tax = safe.taxonomy
    safe_ids = tax.ids[np.asarray(safe.safe_mask)][:60]
    sensitive_ids = tax.ids[~np.asarray(safe.safe_mask)][:30]
    return list(safe_ids), list(sensitive_ids)


def snapshot_of(pseudonymizer, people: dict[int, dict], as_of: int = END):
    return _consent_fixtures.snapshot_of(pseudonymizer, people, as_of)


def events_of(pseudonymizer, rows):
    cols = {
        "person_id": np.array([r[0] for r in rows], dtype=np.int64),
        "service": np.array([r[1] for r in rows], dtype=object),
        "ts": np.array([r[2] for r in rows], dtype=np.int64),
        "category": np.array([r[3] for r in rows], dtype=object),
        "kind": np.array([r[4] for r in rows], dtype=object),
        "region": np.array([r[5] for r in rows], dtype=object),
    }
    return ingest(cols, pseudonymizer=pseudonymizer, now=END + 30 * DAY).batch


def test_each_rule_excludes_what_it_names(pseudonymizer, safe, node_pools):
    ok, sens = node_pools[0][0], node_pools[1][0]
    people = {1: {}, 2: {"opted_in": False}, 3: {"deleted": True}, 4: {"terminated": True},
              5: {"birth_year": 2015}, 6: {"birth_year": 0}, 7: {"policy_version": "2016-01-01"},
              8: {"cross_service": False}, 9: {"location_deleted": True}}
    rows = [(p, "video", END - DAY, ok, "content_view", "US-CA") for p in range(1, 10)]
    rows += [(10, "video", END - DAY, ok, "content_view", "US-CA"),            # no consent record
             (1, "health_plus", END - DAY, ok, "content_view", "US-CA"),      # own privacy policy
             (8, "news", END - DAY, ok, "content_view", "US-CA"),             # cross-service, target video
             (1, "video", END - DAY, sens, "content_view", "US-CA"),          # sensitive
             (1, "search", END - 200 * DAY, ok, "search", "US-CA"),           # search retention 180 d
             (1, "video", END + 60, ok, "content_view", "US-CA")]             # after the window
    batch = events_of(pseudonymizer, rows)
    policy = EligibilityPolicy(min_policy_version="2018-05-14")
    eligible = apply_gate(batch, snapshot_of(pseudonymizer, people), safe, policy, target_service="video")
    expected = {r: 1 for r in EXCLUSION_RULES}
    assert dict(eligible.exclusions) == expected
    assert eligible.n_events == 2 + 1  # persons 1, 8 (own service), 9
    assert eligible.input_events == len(rows) == eligible.n_events + sum(eligible.exclusions.values())
    assert eligible.region_redacted == 1 and (eligible.region == -1).sum() == 1
    assert eligible.sensitive_audit.person.size == 1


def test_unknown_age_can_be_included_explicitly(pseudonymizer, safe, node_pools):
    ok = node_pools[0][0]
    batch = events_of(pseudonymizer, [(1, "video", END - DAY, ok, "search", "US")])
    snap = snapshot_of(pseudonymizer, {1: {"birth_year": 0}})
    assert apply_gate(batch, snap, safe).n_events == 0
    assert apply_gate(batch, snap, safe, EligibilityPolicy(unknown_age="include")).n_events == 1


def test_age_is_taken_as_the_youngest_possible(pseudonymizer, safe, node_pools):
    ok = node_pools[0][0]
    batch = events_of(pseudonymizer, [(1, "video", END - DAY, ok, "search", "US"),
                                      (2, "video", END - DAY, ok, "search", "US")])
    snap = snapshot_of(pseudonymizer, {1: {"birth_year": 2013}, 2: {"birth_year": 2012}})  # 12-13, 13-14
    eligible = apply_gate(batch, snap, safe)
    assert eligible.exclusions["under_min_age"] == 1 and eligible.n_events == 1
    strict = EligibilityPolicy(jurisdiction_min_age={"US": 16})
    assert apply_gate(batch, snap, safe, strict).exclusions["under_min_age"] == 2


def test_jurisdiction_profile_adds_sensitive_classes(pseudonymizer, taxonomy, safe):
    strict = SensitivityProfile.named("gdpr_art9")
    extra = np.flatnonzero(np.asarray(strict.sensitive_mask(taxonomy)) & np.asarray(safe.safe_mask))
    node = str(taxonomy.ids[extra[0]])
    batch = events_of(pseudonymizer, [(1, "video", END - DAY, node, "search", "DE"),
                                      (2, "video", END - DAY, node, "search", "US")])
    snap = snapshot_of(pseudonymizer, {1: {"jurisdiction": "DE"}, 2: {"jurisdiction": "US"}})
    policy = EligibilityPolicy(jurisdiction_profiles={"DE": "gdpr_art9"})
    eligible = apply_gate(batch, snap, safe, policy)
    assert eligible.exclusions["sensitive_category"] == 1 and eligible.n_events == 1


def test_a_custom_profile_is_used_for_its_jurisdiction(pseudonymizer, taxonomy, safe, node_pools):
    """A jurisdiction's own profile (built with ``SensitivityProfile.from_nodes``) adds its nodes for the
    persons of that jurisdiction only; a name that is not a bundled profile, or another type, is refused."""
    node = node_pools[0][0]  # safe under the build's profile
    local = SensitivityProfile.from_nodes("br_lgpd_local", taxonomy, {"gambling": [node]},
                                          description="gambling is sensitive in this jurisdiction")
    batch = events_of(pseudonymizer, [(1, "video", END - DAY, node, "search", "BR"),
                                      (2, "video", END - DAY, node, "search", "US")])
    snap = snapshot_of(pseudonymizer, {1: {"jurisdiction": "BR"}, 2: {"jurisdiction": "US"}})
    policy = EligibilityPolicy(jurisdiction_profiles={"BR": local, "DE": "gdpr_art9"})
    eligible = apply_gate(batch, snap, safe, policy)
    assert eligible.exclusions["sensitive_category"] == 1 and eligible.n_events == 1
    assert policy.jurisdiction_profiles["DE"] == SensitivityProfile.named("gdpr_art9")
    assert "'BR': 'br_lgpd_local'" in str(policy)
    with pytest.raises(ParameterError, match="sensitivity profile must be one of"):
        EligibilityPolicy(jurisdiction_profiles={"BR": "lgpd"})
    with pytest.raises(ParameterError, match=r"jurisdiction_profiles\['BR'\] must be"):
        EligibilityPolicy(jurisdiction_profiles={"BR": {"gambling": [node]}})
    with pytest.raises(ParameterError, match="its constructor did not make"):
        EligibilityPolicy(jurisdiction_profiles={"BR": object.__new__(SensitivityProfile)})


def test_eligible_events_cannot_be_built_outside_the_gate():
    with pytest.raises(TypeError, match="apply_gate"):
        EligibleEvents(*([None] * 20), _token=object())  # type: ignore[misc]


def test_gate_refuses_a_foreign_taxonomy_or_service(pseudonymizer, safe, node_pools):
    from adtarget.reference import Taxonomy

    batch = events_of(pseudonymizer, [(1, "video", END - DAY, node_pools[0][0], "search", "US")])
    snap = snapshot_of(pseudonymizer, {1: {}})
    topics = SafeTaxonomy(Taxonomy.chrome_topics_v2(), SensitivityProfile.named("default"))
    with pytest.raises(ParameterError, match="taxonomy"):
        apply_gate(batch, snap, topics)
    with pytest.raises(ParameterError, match="target_service"):
        apply_gate(batch, snap, safe, target_service="tv")


def test_removing_an_excluded_person_changes_nothing(pseudonymizer, safe, node_pools):
    ok = node_pools[0]
    base = [(p, SERVICES[p % 6], END - (p % 30) * DAY, ok[p % 20], "content_view", "US-CA") for p in range(1, 40)]
    people = {p: {} for p in range(1, 40)}
    people.update({100: {"opted_in": False}, 101: {"birth_year": 2016}, 102: {"deleted": True}})
    extra = [(p, "video", END - DAY, ok[0], "search", "FR") for p in (100, 101, 102) for _ in range(3)]
    snap = snapshot_of(pseudonymizer, people)
    a = apply_gate(events_of(pseudonymizer, base), snap, safe)
    b = apply_gate(events_of(pseudonymizer, base + extra), snap, safe)
    for name in ("person", "service", "ts", "category", "kind", "weight", "persons", "birth_year"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


# --- the property test: an independent oracle, random events and consent states ---------------------------
@st.composite
def worlds(draw):
    n_people = draw(st.integers(1, 12))
    people = {}
    for p in range(1, n_people + 1):
        if draw(st.booleans()) or p == 1:
            people[p] = {
                "opted_in": draw(st.booleans()) or draw(st.booleans()),
                "deleted": draw(st.integers(0, 9)) == 0,
                "terminated": draw(st.integers(0, 9)) == 0,
                "birth_year": draw(st.sampled_from([0, 1970, 1999, 2010, 2012, 2013, 2014])),
                "cross_service": draw(st.booleans()),
                "location_deleted": draw(st.booleans()),
                "policy_version": draw(st.sampled_from(["2016-01-01", "2018-05-14"])),
            }
    n_events = draw(st.integers(0, 40))
    events = [
        (
            draw(st.integers(1, n_people + 1)),
            draw(st.sampled_from(SERVICES)),
            END - draw(st.sampled_from([0, DAY, 100 * DAY, 200 * DAY, 500 * DAY, -DAY])),
            draw(st.integers(0, 89)),
            draw(st.sampled_from(["app_use", "search", "content_view", "purchase"])),
            draw(st.sampled_from(["US-CA", "DE", None])),
        )
        for _ in range(n_events)
    ]
    target = draw(st.sampled_from([None, "video", "news"]))
    unknown = draw(st.sampled_from(["exclude", "include"]))
    return people, events, target, unknown


@given(worlds())
def test_gate_matches_an_independent_oracle(pseudonymizer, safe, node_pools, world):
    people, events, target, unknown = world
    pool = node_pools[0] + node_pools[1]
    rows = [(p, s, t, pool[c], k, r) for p, s, t, c, k, r in events]
    policy = EligibilityPolicy(unknown_age=unknown, min_policy_version="2018-05-14")
    eligible = apply_gate(events_of(pseudonymizer, rows), snapshot_of(pseudonymizer, people), safe, policy,
                          target_service=target)
    retention = dict(policy.retention_days)
    sensitive_ids = set(node_pools[1])

    def allowed(p, s, t, cat, k):
        c = people.get(p)
        if c is None or c["deleted"] or c["terminated"] or not c["opted_in"]:
            return False
        if c["birth_year"] and 2026 - c["birth_year"] - 1 < 13:
            return False
        if not c["birth_year"] and unknown == "exclude":
            return False
        if c["policy_version"] < "2018-05-14" or s == "health_plus":
            return False
        if target is not None and not c["cross_service"] and s != target:
            return False
        return cat not in sensitive_ids and END - retention[k] * DAY <= t <= END

    expected = sorted((pseudonymizer.pseudonymize([p])[0], s, t, cat) for p, s, t, cat, k, _ in rows
                      if allowed(p, s, t, cat, k))
    tax = safe.taxonomy
    got = sorted(zip(eligible.persons[eligible.person], np.asarray(eligible.services.names)[eligible.service],
                     eligible.ts, tax.ids[eligible.category]))
    assert [(int(a), str(b), int(c), str(d)) for a, b, c, d in got] == \
        [(int(a), b, c, d) for a, b, c, d in expected]
    assert eligible.input_events == eligible.n_events + sum(eligible.exclusions.values()) == len(rows)
    assert not set(tax.ids[eligible.category]) & sensitive_ids
    assert np.all(np.asarray(safe.safe_mask)[eligible.category])
    redacted = {pseudonymizer.pseudonymize([p])[0] for p, c in people.items() if c["location_deleted"]}
    assert not np.any(np.isin(eligible.persons[eligible.person][eligible.region >= 0], list(redacted)))


def test_what_the_gate_applies_cannot_be_changed_after_it_was_made(pseudonymizer, taxonomy, safe, node_pools):
    """The masks are sealed (``setflags(write=True)`` fails), and the gate builds the safe taxonomy and the
    policy again from their fields, so a mask or a minimum age swapped in with ``object.__setattr__`` is either
    refused or never used."""
    sensitive_node = node_pools[1][0]
    with pytest.raises(ValueError):
        SensitivityProfile.named("default").sensitive_mask(taxonomy).setflags(write=True)
    with pytest.raises(ValueError):
        safe.safe_mask.setflags(write=True)
    tampered = SafeTaxonomy(taxonomy, SensitivityProfile.named("default"))
    object.__setattr__(tampered, "safe_mask", np.ones(taxonomy.n_nodes, dtype=bool))
    batch = events_of(pseudonymizer, [(1, "video", END - DAY, sensitive_node, "search", "US")])
    snap = snapshot_of(pseudonymizer, {1: {}})
    assert apply_gate(batch, snap, tampered).exclusions["sensitive_category"] == 1
    young = EligibilityPolicy()
    object.__setattr__(young, "min_age", 0)
    with pytest.raises(ParameterError, match="policy was changed after it was made"):
        apply_gate(batch, snap, safe, young)


def test_a_bundled_profile_refuses_another_taxonomy_under_a_bundled_name(taxonomy):
    from adtarget.exceptions import TaxonomyError
    from adtarget.reference import Taxonomy

    parents = np.where(taxonomy.parent >= 0, taxonomy.ids[np.maximum(taxonomy.parent, 0)], "")
    moved = parents.copy()
    moved[np.flatnonzero(taxonomy.parent >= 0)[0]] = ""  # one node made a root: out of its root's subtree
    other = Taxonomy("iab-2.2", taxonomy.ids, moved, taxonomy.names, scd=taxonomy.scd)
    with pytest.raises(TaxonomyError, match="not the bundled one"):
        SafeTaxonomy(other, SensitivityProfile.named("default"))
    assert SafeTaxonomy(Taxonomy("iab-2.2", taxonomy.ids, parents, taxonomy.names, scd=taxonomy.scd),
                        SensitivityProfile.named("default")).safe_mask.sum() == safe_count(taxonomy)


def safe_count(taxonomy):
    return int(SafeTaxonomy(taxonomy, SensitivityProfile.named("default")).safe_mask.sum())
