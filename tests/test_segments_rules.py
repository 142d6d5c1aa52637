"""Rule-based segments: definition-time validation, membership against a pandas oracle, composites."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from _segment_fixtures import eligible_events, membership_oracle, profile_oracle, random_events, safe_taxonomy

from adtarget.exceptions import ParameterError, SensitiveCategoryError, TaxonomyError
from adtarget.profiles import build_profiles
from adtarget.segments import AllOf, AnyOf, SegmentAssignments, SegmentCatalog, TopicSegment


@pytest.fixture(scope="module")
def safe(taxonomy):
    return safe_taxonomy(taxonomy)


@pytest.fixture(scope="module")
def eligible(safe):
    return eligible_events(safe, random_events(safe, n_persons=250, n_events=5000, seed=3))


@pytest.fixture(scope="module")
def profiles(eligible):
    return build_profiles(eligible, half_life_days=math.inf)


def _node_ids(safe, tier, n, seed=0):
    tax = safe.taxonomy
    nodes = np.flatnonzero(safe.safe_mask & (tax.tier == tier))
    return [str(tax.ids[i]) for i in np.random.default_rng(seed).choice(nodes, n, replace=False)]


def test_topic_membership_equals_pandas_oracle(safe, eligible, profiles):
    tax = safe.taxonomy
    dense, columns = profile_oracle(eligible, level="node", half_life_days=math.inf, cap=1000)
    definitions = ([TopicSegment(i, k=k) for i, k in zip(_node_ids(safe, 1, 8), [1, 2, 3, 5, 5, 1, 2, 3])]
                   + [TopicSegment(i, rule="share", min_share=s) for i, s in zip(_node_ids(safe, 1, 4, 1),
                                                                                    [0.05, 0.1, 0.2, 0.5])]
                   + [TopicSegment(i, k=3) for i in _node_ids(safe, 2, 10, 2)]
                   + [TopicSegment(i, rule="share", min_share=0.02) for i in _node_ids(safe, 3, 6, 3)])
    catalog = SegmentCatalog(definitions, safe)
    assignments = catalog.assign(profiles)
    member = assignments.membership.toarray()
    assert member.sum() > 0
    for j, d in enumerate(definitions):
        node = int(tax.index_of(d.node_id))
        expected = membership_oracle(dense, columns, tax, node, d.rule, d.k, d.min_share)
        np.testing.assert_array_equal(member[:, j], expected, err_msg=str(d))


def test_default_catalog_is_every_safe_tier1_and_tier2_node(safe):
    catalog = SegmentCatalog.default(safe)
    tax = safe.taxonomy
    nodes = tax.index_of(np.array([d.node_id for d in catalog.definitions]))
    expected = np.flatnonzero(safe.safe_mask & (tax.tier <= 2))
    np.testing.assert_array_equal(np.sort(nodes), expected)
    assert all(d.rule == "top_k" and d.k == 5 for d in catalog.definitions)
    assert catalog.segments[0].segment_id == f"iab-2.2:{tax.ids[expected[0]]}"
    assert catalog.segments[0].path == tuple(tax.path(int(expected[0])))


def test_default_catalog_puts_each_person_in_at_most_k_segments_per_tier(safe, profiles):
    catalog = SegmentCatalog.default(safe, k=3)
    member = catalog.assign(profiles).membership.toarray()
    tiers = safe.taxonomy.tier[safe.taxonomy.index_of(np.array([d.node_id for d in catalog.definitions]))]
    for t in (1, 2):
        assert member[:, tiers == t].sum(axis=1).max() <= 3
    interested = np.asarray(profiles.matrix.sum(axis=1)).ravel() > 0
    assert member[interested][:, tiers == 1].sum(axis=1).min() >= 1
    assert not member[~interested].any()


def test_sensitive_node_is_refused_at_definition_time_naming_the_class(safe):
    tax = safe.taxonomy
    unsafe = np.flatnonzero(~safe.safe_mask)
    deep = int(unsafe[np.argmax(tax.tier[unsafe])])
    cls = safe.profile.classes[int(safe.sensitive_class[deep])]
    with pytest.raises(SensitiveCategoryError, match=cls):
        SegmentCatalog([TopicSegment(_node_ids(safe, 1, 1)[0]), TopicSegment(str(tax.ids[deep]))], safe)
    with pytest.raises(SensitiveCategoryError):
        SegmentCatalog([AnyOf(TopicSegment(_node_ids(safe, 1, 1)[0]), TopicSegment(str(tax.ids[deep])))], safe)


@pytest.mark.parametrize(("definitions", "error", "match"), [
    ([TopicSegment("no-such-node")], TaxonomyError, "'no-such-node' is not a node of taxonomy 'iab-2.2'"),
    ([], ParameterError, "at least one"),
    (["483"], ParameterError, "TopicSegment, AllOf or AnyOf, got str"),
    ([TopicSegment("483"), AnyOf(TopicSegment(1), TopicSegment(2)), TopicSegment(483)], ParameterError,
     "definitions 0 and 2 both define segment 'iab-2.2:483'"),
])
def test_invalid_catalogs(safe, definitions, error, match):
    with pytest.raises(error, match=match):
        SegmentCatalog(definitions, safe)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"node_id": ""}, "node_id must be a non-empty string"),
    ({"node_id": True}, "node_id"),
    ({"node_id": "1", "rule": "top"}, "rule of segment '1' must be one of"),
    ({"node_id": "1", "k": 0}, "k of segment '1' must be an integer >= 1, got 0"),
    ({"node_id": "1", "min_share": 0.0}, r"min_share of segment '1' must be a number in \(0, 1\]"),
    ({"node_id": "1", "min_share": float("nan")}, "min_share"),
])
def test_invalid_topic_segments(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        TopicSegment(**kwargs)


def test_composites_need_two_definitions():
    with pytest.raises(ParameterError, match="AllOf needs at least 2 definitions, got 1"):
        AllOf(TopicSegment("1"))
    with pytest.raises(ParameterError, match="AnyOf parts must be"):
        AnyOf(TopicSegment("1"), "2")


def test_a_composite_that_declares_no_kind_is_refused_not_taken_as_or(safe):
    class Sneaky(AllOf):  # no kind of its own: it would otherwise inherit AllOf's rule silently
        pass

    a, b = (TopicSegment(i) for i in _node_ids(safe, 1, 2))
    with pytest.raises(ParameterError, match="TopicSegment, AllOf or AnyOf, got Sneaky"):
        SegmentCatalog([Sneaky(a, b)], safe)
    with pytest.raises(ParameterError, match="got Sneaky"):
        AnyOf(a, Sneaky(a, b))
    with pytest.raises(ParameterError, match="made without its constructor"):
        SegmentCatalog([object.__new__(AnyOf)], safe)
    with pytest.raises(ParameterError, match="constructor did not make"):
        SegmentCatalog([AnyOf(a, object.__new__(TopicSegment))], safe)
    changed = TopicSegment(a.node_id)
    object.__setattr__(changed, "k", 0)
    with pytest.raises(ParameterError, match="must be an integer >= 1, got 0"):
        SegmentCatalog([changed], safe)
    with pytest.raises(TypeError):
        dataclasses.replace(AllOf(a, b), parts=(a,))


def test_what_the_catalog_checked_is_what_it_assigns(safe, profiles, monkeypatch):
    """Objects changed after the catalog was made (their class swapped, their parts replaced, a kind's rule
    reassigned) change nothing: the catalog assigns its own copies with the rules the kinds declared."""
    a, b = (TopicSegment(i, k=3) for i in _node_ids(safe, 1, 2))
    both = AllOf(a, b)
    catalog = SegmentCatalog([a, b, both], safe)
    expected = catalog.assign(profiles).membership.toarray()
    object.__setattr__(both, "__class__", AnyOf)
    object.__setattr__(catalog.definitions[2], "parts", (a, a))
    monkeypatch.setattr(AllOf, "combine", staticmethod(lambda x, y: x.maximum(y)))
    got = catalog.assign(profiles).membership.toarray()
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got[:, 2], got[:, 0] & got[:, 1])
    deep = a
    with pytest.raises(ParameterError, match="nest deeper than 32"):
        for _ in range(40):
            deep = AnyOf(deep, b)


def test_a_composite_kind_declares_its_name_operator_and_rule(safe, profiles, monkeypatch):
    from adtarget.segments import _rules
    from adtarget.segments._rules import _Composite

    monkeypatch.setattr(_rules, "_KINDS", dict(_rules._KINDS))  # the kinds declared here stay in this test

    with pytest.raises(TypeError, match="declares a new"):
        class Half(_Composite):  # a rule without a kind name
            operator = "BUT NOT"

    class ButNot(_Composite):
        kind = "butnot"
        operator = "BUT NOT"

        @staticmethod
        def combine(a, b):
            return a - a.multiply(b)

    a, b = (TopicSegment(i, k=3) for i in _node_ids(safe, 1, 2))
    catalog = SegmentCatalog([a, b, ButNot(a, b)], safe)
    m = catalog.assign(profiles).membership.toarray()
    np.testing.assert_array_equal(m[:, 2], m[:, 0] & ~m[:, 1])
    assert catalog.segments[2].segment_id.startswith("iab-2.2:butnot2-")
    assert " BUT NOT " in catalog.segments[2].name
    with pytest.raises(TypeError, match="declares a new"):
        class Again(_Composite):  # the kind name is taken
            kind = "butnot"
            operator = "X"

            @staticmethod
            def combine(a, b):
                return a


def test_composites_are_intersection_and_union(safe, profiles):
    a, b, c = (TopicSegment(i, k=3) for i in _node_ids(safe, 1, 3, 7))
    catalog = SegmentCatalog([a, b, c, AllOf(a, b), AnyOf(a, b), AnyOf(AllOf(a, b), c)], safe)
    m = catalog.assign(profiles).membership.toarray()
    np.testing.assert_array_equal(m[:, 3], m[:, 0] & m[:, 1])
    np.testing.assert_array_equal(m[:, 4], m[:, 0] | m[:, 1])
    np.testing.assert_array_equal(m[:, 5], (m[:, 0] & m[:, 1]) | m[:, 2])
    ids = [s.segment_id for s in catalog.segments]
    assert ids[3] == f"iab-2.2:all2-{a.node_id}-top3-{b.node_id}-top3"
    assert ids[5] == f"iab-2.2:any2-all2-{a.node_id}-top3-{b.node_id}-top3-{c.node_id}-top3"
    assert " AND " in catalog.segments[3].name and catalog.segments[5].name.startswith("(")


def test_membership_does_not_change_when_rows_are_rescaled(safe, eligible):
    catalog = SegmentCatalog([TopicSegment(i, k=2) for i in _node_ids(safe, 1, 6)]
                             + [TopicSegment(i, rule="share", min_share=0.1) for i in _node_ids(safe, 2, 6)], safe)
    raw = catalog.assign(build_profiles(eligible)).membership
    for norm in ("l1", "l2"):
        assert (catalog.assign(build_profiles(eligible, norm=norm)).membership != raw).nnz == 0


def test_coarse_profiles_are_refused_for_deeper_segments(safe, eligible):
    catalog = SegmentCatalog([TopicSegment(_node_ids(safe, 2, 1)[0])], safe)
    with pytest.raises(ParameterError, match="level 'tier1' are too coarse for segments on tier-2 nodes"):
        catalog.assign(build_profiles(eligible, level="tier1"))
    assert catalog.assign(build_profiles(eligible, level="tier2")).membership.shape == (eligible.n_persons, 1)


def test_tier_level_profiles_give_the_same_tier1_segments(safe, eligible):
    catalog = SegmentCatalog([TopicSegment(i, k=2) for i in _node_ids(safe, 1, 10)], safe)
    by_node = catalog.assign(build_profiles(eligible)).membership
    by_tier1 = catalog.assign(build_profiles(eligible, level="tier1")).membership
    assert (by_node != by_tier1).nnz == 0


def test_assign_refuses_other_inputs(safe):
    catalog = SegmentCatalog([TopicSegment(_node_ids(safe, 1, 1)[0])], safe)
    with pytest.raises(ParameterError, match="data must be EligibleEvents or InterestProfiles, got ndarray"):
        catalog.assign(np.ones((3, 3)))


def test_assignments_are_aligned_with_the_eligible_persons(safe, eligible, profiles):
    assignments = SegmentCatalog.default(safe).assign(profiles)
    assert isinstance(assignments, SegmentAssignments)
    assert assignments.persons is eligible.persons or np.array_equal(assignments.persons, eligible.persons)
    assert assignments.membership.shape == (eligible.n_persons, len(SegmentCatalog.default(safe)))


def test_segment_ids_match_the_report_pattern_and_name_the_rule(safe):
    import re

    from adtarget.reports._spec import SEGMENT_ID_PATTERN

    a, b = _node_ids(safe, 1, 2, 11)
    many = AllOf(*(TopicSegment(i, rule="share", min_share=0.125) for i in _node_ids(safe, 2, 12, 12)))
    definitions = [TopicSegment(a), TopicSegment(a, k=2), TopicSegment(a, rule="share", min_share=0.125),
                   AnyOf(TopicSegment(a), TopicSegment(b)), many]
    segments = SegmentCatalog(definitions, safe).segments
    ids = [s.segment_id for s in segments]
    assert ids[:4] == [f"iab-2.2:{a}", f"iab-2.2:{a}-top2", f"iab-2.2:{a}-share12_5", f"iab-2.2:any2-{a}-{b}"]
    assert re.fullmatch(r"iab-2\.2:all-[0-9a-f]{12}", ids[4])
    assert all(re.fullmatch(SEGMENT_ID_PATTERN, i) for i in ids)
    name = safe.taxonomy.names[safe.taxonomy.index_of(a)]
    assert [s.name for s in segments[:3]] == [name, f"{name} (top 2)", f"{name} (share >= 12.5%)"]
