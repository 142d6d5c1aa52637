"""Minors protected per person: for a person under the policy's adult age (18, stricter per jurisdiction) or
of unknown age, the age-restricted categories (alcohol, tobacco, gambling, dating, adult content, weapons,
nightlife) are never used, in every profile; adults' events and segments are unchanged."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from _consent_fixtures import snapshot_of
from hypothesis import given, settings
from hypothesis import strategies as st

import adtarget
from adtarget.exceptions import ParameterError
from adtarget.reference import SafeTaxonomy, SensitivityProfile, Taxonomy, age_restricted_mask

END = int(dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc).timestamp())
YEAR = dt.datetime.fromtimestamp(END, tz=dt.timezone.utc).year
PZ = adtarget.Pseudonymizer(bytes(range(32)))
RESTRICTED = ["211", "260", "181", "524", "480", "188", "158", "514"]  # IAB Content 2.2, see docs/sensitivity.md
SAFE = ["483", "239", "552", "150"]  # Sports, Hobbies & Interests, Style & Fashion, Events and Attractions


def _world(ages: list[int | None], jurisdictions: list[str], seed: int):
    """Each person has events on restricted and safe categories; ``None`` is an unknown age."""
    rng = np.random.default_rng(seed)
    people = {i + 1: {"birth_year": 0 if a is None else YEAR - a - 1, "jurisdiction": j}
              for i, (a, j) in enumerate(zip(ages, jurisdictions))}
    n = 30 * len(ages)
    rows = {"person_id": rng.integers(1, len(ages) + 1, n).astype(np.int64),
            "service": np.full(n, "video", dtype=object),
            "ts": (END - rng.integers(86_400, 30 * 86_400, n)).astype(np.int64),
            "category": rng.choice(RESTRICTED + SAFE, n).astype(object)}
    return rows, people


def _eligible(rows, people, policy, safe=None):
    batch = adtarget.ingest(rows, pseudonymizer=PZ, now=END).batch
    return adtarget.apply_gate(batch, snapshot_of(PZ, people, END), safe or SafeTaxonomy.default(), policy,
                               window_end=END)


def _members(assignments, segment_id: str) -> set[int]:
    if segment_id not in assignments.segment_ids:
        return set()
    column = assignments.membership[:, assignments.segment_ids.index(segment_id)]
    return set(np.asarray(assignments.persons)[column.nonzero()[0]].tolist())


def _restricted_events_per_person(eligible) -> dict[int, int]:
    mask = np.asarray(age_restricted_mask(Taxonomy.default()))
    persons = np.asarray(eligible.persons)[np.asarray(eligible.person)]
    hit = mask[np.asarray(eligible.category)]
    return {int(p): int(hit[persons == p].sum()) for p in np.unique(persons)}


ages = st.lists(st.one_of(st.integers(13, 40), st.none()), min_size=4, max_size=25)


@settings(max_examples=30, deadline=None)
@given(ages=ages, seed=st.integers(0, 10_000), us_21=st.booleans())
def test_no_person_under_the_adult_age_keeps_an_age_restricted_event(ages, seed, us_21):
    jurisdictions = ["US" if i % 2 else "DE" for i in range(len(ages))]
    rows, people = _world(ages, jurisdictions, seed)
    policy = adtarget.EligibilityPolicy(unknown_age="include", jurisdiction_adult_age={"US": 21} if us_21 else {})
    eligible = _eligible(rows, people, policy)
    kept = _restricted_events_per_person(eligible)
    for pid, person in people.items():
        age = ages[pid - 1]
        adult_age = 21 if us_21 and person["jurisdiction"] == "US" else 18
        pseudonym = int(PZ.pseudonymize(np.array([pid]))[0])
        had = int(np.isin(rows["category"][rows["person_id"] == pid], RESTRICTED).sum())
        if age is None or age < adult_age:
            assert kept.get(pseudonym, 0) == 0, (age, adult_age)
        else:
            assert kept.get(pseudonym, 0) == had  # adults: untouched


def test_adults_segments_are_unchanged_and_no_restricted_segment_has_a_13_17_cell():
    ages = [15, 16, 17] * 40 + [30, 45, 22] * 40
    rows, people = _world(ages, ["US"] * len(ages), seed=7)
    safe = SafeTaxonomy.default()
    catalog = adtarget.SegmentCatalog.default(safe)
    policy = adtarget.EligibilityPolicy()
    eligible = _eligible(rows, people, policy)
    adults_only = {p: c for p, c in people.items() if YEAR - c["birth_year"] - 1 >= 18}
    keep = np.isin(rows["person_id"], list(adults_only))
    eligible_adults = _eligible({k: v[keep] for k, v in rows.items()}, adults_only, policy)
    with_minors = catalog.assign(adtarget.build_profiles(eligible, half_life_days=30.0))
    without = catalog.assign(adtarget.build_profiles(eligible_adults, half_life_days=30.0))
    restricted_ids = {s.segment_id for s in catalog.segments if s.segment_id.split(":")[1] in RESTRICTED}
    assert restricted_ids
    adult_pseudonyms = PZ.pseudonymize(np.array(sorted(adults_only)))
    for segment in restricted_ids:
        members = _members(with_minors, segment)
        assert members <= set(adult_pseudonyms.tolist())  # no minor in a restricted segment
        assert members == _members(without, segment)  # and adults as they are without any minor in the data
    spec = adtarget.ReleaseSpec("acme", sorted(restricted_ids & set(with_minors.segment_ids)), epsilon=float("inf"),
                                breakdowns=("age_band",), min_reported_size=1)
    ledger = adtarget.BudgetLedger(":memory:", advertisers=["acme"])
    with pytest.warns(adtarget.PrivacyLeakWarning):
        report = adtarget.release(eligible, with_minors, spec, ledger=ledger, allow_infinite_epsilon=True).report
    assert report.segments and all("13-17" not in s.breakdowns["age_band"] for s in report.segments)


def test_a_taxonomy_of_your_own_maps_no_age_restricted_node():
    taxonomy = Taxonomy.default()
    assert age_restricted_mask(taxonomy).sum() >= len(RESTRICTED)
    profile = SensitivityProfile.from_nodes("mine", taxonomy, {})
    assert SafeTaxonomy(taxonomy, profile).safe_mask.all()


@pytest.mark.parametrize("bad", [{"adult_age": 17}, {"adult_age": True}, {"jurisdiction_adult_age": {"US": 16}}])
def test_adult_age_settings_are_checked(bad):
    with pytest.raises(ParameterError, match="adult_age"):
        adtarget.EligibilityPolicy(**bad)
