"""Sensitivity profiles (P5): bundled node lists, subtree closure, IAB SCD cross-check, SafeTaxonomy, errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adtarget.exceptions import ParameterError, SensitiveCategoryError, TaxonomyError
from adtarget.reference import PROFILE_NAMES, SafeTaxonomy, SensitivityProfile, Taxonomy
from adtarget.reference._sensitivity import IAB_SCD_NOT_SPECIAL
from adtarget.reference._sensitivity_tables import AGE_RESTRICTED, GDPR_ART9_EXTRA, POLICY_CLASSES

TAXONOMIES = {
    "iab-2.2": Taxonomy.default,
    "topics-v2": Taxonomy.chrome_topics_v2,
    "iab-audience-1.1": Taxonomy.iab_audience_1_1,
}
POLICY = ("racial_or_ethnic_origin", "religious_or_philosophical_beliefs", "health")
ART9_EXTRA = ("political_opinions", "trade_union_membership", "genetic_data", "biometric_data",
              "sex_life_or_sexual_orientation")


def _class_at(profile: str, tax: str, node_id: str) -> str | None:
    t = TAXONOMIES[tax]()
    p = SensitivityProfile.named(profile)
    c = int(p.class_of(t)[int(t.index_of(node_id))])
    return None if c < 0 else p.classes[c]


# --- bundled profiles --------------------------------------------------------------------------------------
def test_profile_names_and_classes():
    assert PROFILE_NAMES == ("default", "gdpr_art9", "strict_minors")
    assert SensitivityProfile.named("default").classes == POLICY
    assert SensitivityProfile.named("gdpr_art9").classes == POLICY + ART9_EXTRA
    assert SensitivityProfile.named("strict_minors").classes == (*POLICY, *ART9_EXTRA, "age_restricted")
    assert SensitivityProfile.named("default") is SensitivityProfile.named("default")


def test_unknown_profile_lists_the_known_names():
    with pytest.raises(ParameterError, match=r"one of \['default', 'gdpr_art9', 'strict_minors'\], got 'gdpr'"):
        SensitivityProfile.named("gdpr")


@pytest.mark.parametrize("table", [POLICY_CLASSES, GDPR_ART9_EXTRA, AGE_RESTRICTED])
def test_every_listed_root_exists_with_the_name_written_beside_it(table):
    """Guards the hand-written lists: a mistyped id either misses or lands on another name."""
    for tax, per_class in table.items():
        t = TAXONOMIES[tax]()
        for cls, nodes in per_class.items():
            for node_id, name in nodes:
                i = int(t.index_of(node_id))
                assert i >= 0 and t.names[i] == name, (tax, cls, node_id, name)


@pytest.mark.parametrize("profile", PROFILE_NAMES)
@pytest.mark.parametrize("tax", TAXONOMIES)
def test_every_descendant_of_a_sensitive_root_is_sensitive(profile, tax):
    t = TAXONOMIES[tax]()
    p = SensitivityProfile.named(profile)
    mask, cls, root = p.sensitive_mask(t), p.class_of(t), p.root_of(t)
    for c, ids in p.roots[tax].items():
        for node_id in ids:
            sub = t.descendants(int(t.index_of(node_id)))
            assert mask[sub].all(), (c, node_id)
    # closure, node by node: a child of a sensitive node is sensitive; class/root agree with the mask
    has_parent = t.parent >= 0
    assert not np.any(mask[t.parent[has_parent]] & ~mask[has_parent])
    assert np.array_equal(cls >= 0, mask) and np.array_equal(root >= 0, mask)
    assert all(t.in_subtree([i], int(root[i]))[0] for i in np.flatnonzero(mask))


@pytest.mark.parametrize("tax", TAXONOMIES)
def test_profiles_are_nested(tax):
    t = TAXONOMIES[tax]()
    d, g, m = (SensitivityProfile.named(n).sensitive_mask(t) for n in PROFILE_NAMES)
    assert np.all(g[d]) and np.all(m[g])


def test_iab_scd_flags_are_all_covered_or_allow_listed_with_a_reason():
    t = Taxonomy.default()
    art9 = SensitivityProfile.named("gdpr_art9").sensitive_mask(t)
    flagged = set(t.ids[t.scd].tolist())
    assert len(flagged) == 64
    uncovered = set(t.ids[t.scd & ~art9].tolist())
    assert uncovered == set(IAB_SCD_NOT_SPECIAL), "each uncovered SCD node needs a documented reason"
    assert all(len(reason) > 20 for reason in IAB_SCD_NOT_SPECIAL.values())


def test_allow_list_is_documented_in_sensitivity_md():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "sensitivity.md").read_text(encoding="utf-8")
    t = Taxonomy.default()
    for node_id in IAB_SCD_NOT_SPECIAL:
        assert f"{node_id} {t.names[int(t.index_of(node_id))]}" in doc


@pytest.mark.parametrize(("profile", "tax", "node_id", "expected"), [
    ("default", "iab-2.2", "1", None),                                  # Automotive
    ("default", "iab-2.2", "308", "health"),                            # Sexual Conditions
    ("gdpr_art9", "iab-2.2", "308", "sex_life_or_sexual_orientation"),  # deeper root wins
    ("default", "iab-2.2", "214", "racial_or_ethnic_origin"),           # World Cuisines (IAB SCD)
    ("default", "iab-2.2", "457", "religious_or_philosophical_beliefs"),  # Atheism
    ("default", "iab-2.2", "387", None),                                # Elections: politics is not in the policy
    ("gdpr_art9", "iab-2.2", "387", "political_opinions"),
    ("gdpr_art9", "iab-2.2", "389", "political_opinions"),              # War and Conflicts, under Politics
    ("default", "iab-2.2", "225", None),                                # Fitness and Exercise
    ("default", "iab-2.2", "235", "health"),                            # Holistic Health, under Alternative Medicine
    ("strict_minors", "iab-2.2", "211", "age_restricted"),
    ("gdpr_art9", "iab-2.2", "211", None),
    ("default", "topics-v2", "160", "health"),                          # Health Insurance
    ("default", "topics-v2", "247", None),
    ("gdpr_art9", "topics-v2", "247", "political_opinions"),
    ("default", "iab-audience-1.1", "1097", "religious_or_philosophical_beliefs"),  # Matzoh, below Ethnic
    ("default", "iab-audience-1.1", "1096", "racial_or_ethnic_origin"),  # Asian food
    ("default", "iab-audience-1.1", "158", "racial_or_ethnic_origin"),   # *Language Extension
    ("default", "iab-audience-1.1", "1452", "health"),                   # Clinical Research
    ("default", "iab-audience-1.1", "1593", None),                       # Gyms and Health Clubs
])
def test_specific_nodes(profile, tax, node_id, expected):
    assert _class_at(profile, tax, node_id) == expected


# --- refusal of unmapped taxonomies, explicit custom profiles ----------------------------------------------
def _tiny() -> Taxonomy:
    return Taxonomy("tiny", ["1", "2", "3", "4"], ["", "1", "1", "3"], ["Root", "A", "B", "B1"])


def test_unmapped_taxonomy_is_refused_not_treated_as_safe():
    with pytest.raises(TaxonomyError, match=r"no mapping for taxonomy 'tiny'.*never treated as all-safe"):
        SensitivityProfile.named("default").class_of(_tiny())
    with pytest.raises(TaxonomyError, match="no mapping"):
        SafeTaxonomy(_tiny(), SensitivityProfile.named("gdpr_art9"))


def test_from_nodes_and_with_taxonomy():
    p = SensitivityProfile.from_nodes("mine", _tiny(), {"health": ["3"], "religion": [2]})
    assert p.classes == ("health", "religion") and p.class_of(_tiny()).tolist() == [-1, 1, 0, 0]
    assert SensitivityProfile.from_nodes("none", _tiny(), {}).sensitive_mask(_tiny()).tolist() == [False] * 4
    q = SensitivityProfile.named("default").with_taxonomy(_tiny(), {"health": ["4"]})
    assert q.covers(_tiny()) and q.sensitive_mask(_tiny()).tolist() == [False, False, False, True]
    assert q.covers(Taxonomy.default()) and not SensitivityProfile.named("default").covers(_tiny())


def test_roots_missing_from_the_taxonomy_fail_at_build_time():
    with pytest.raises(TaxonomyError, match=r"class 'health' root id\(s\) \['99'\] are not in taxonomy 'tiny'"):
        SensitivityProfile.from_nodes("mine", _tiny(), {"health": ["3", "99"]})
    with pytest.raises(TaxonomyError, match="not in taxonomy"):
        SensitivityProfile.named("default").with_taxonomy(_tiny(), {"health": ["x"]})


@pytest.mark.parametrize(("kwargs", "pattern"), [
    ({"name": ""}, "name must be a non-empty string"),
    ({"description": 3}, "description must be a string"),
    ({"classes": "health"}, "classes must be a sequence"),
    ({"classes": ("Health",)}, "lower-case identifiers, got 'Health'"),
    ({"classes": ("health", "health")}, "distinct"),
    ({"roots": []}, "roots must be a mapping"),
    ({"roots": {"tiny": ["3"]}}, r"roots\['tiny'\] must be a mapping"),
    ({"roots": {"tiny": {"religion": ["3"]}}}, "class 'religion', which is not in classes"),
    ({"roots": {"tiny": {"health": "3"}}}, "must be a list of node ids"),
    ({"classes": ("health", "other"), "roots": {"tiny": {"health": ["3"], "other": ["3"]}}},
     "node '3' under both 'health' and 'other'"),
])
def test_invalid_profiles(kwargs, pattern):
    args = {"name": "p", "description": "d", "classes": ("health",), "roots": {"tiny": {"health": ["3"]}}}
    with pytest.raises(ParameterError, match=pattern):
        SensitivityProfile(**{**args, **kwargs})


def test_profile_is_frozen_hashable_picklable_readable():
    p = SensitivityProfile.named("gdpr_art9")
    with pytest.raises(AttributeError):
        p.name = "x"  # type: ignore[misc]
    q = pickle.loads(pickle.dumps(p))
    assert q == p and hash(q) == hash(p) and q is not p
    assert str(p).startswith("sensitivity profile 'gdpr_art9' (all GDPR Art. 9 special categories): classes ")
    assert p != SensitivityProfile.named("default")


# --- property: classification against a naive ancestor walk ------------------------------------------------
@st.composite
def forest_and_roots(draw):
    n = draw(st.integers(1, 30))
    parent = [draw(st.integers(-1, k - 1)) if k else -1 for k in range(n)]
    ids = [str(k * 7) for k in range(n)]
    t = Taxonomy("rand", ids, ["" if p < 0 else ids[p] for p in parent], [f"n{k}" for k in range(n)])
    chosen = draw(st.lists(st.integers(0, n - 1), unique=True, max_size=6))
    classes = [draw(st.integers(0, 2)) for _ in chosen]
    return t, parent, dict(zip(chosen, classes, strict=True))


@settings(max_examples=60, deadline=None)
@given(forest_and_roots())
def test_class_is_that_of_the_deepest_root_above(case):
    t, parent, roots = case
    names = ("a", "b", "c")
    p = SensitivityProfile.from_nodes("p", t, {c: [t.ids[k] for k, v in roots.items() if v == j]
                                              for j, c in enumerate(names)})
    expected = []
    for i in range(len(t)):
        node, found = i, -1
        while node >= 0 and found < 0:  # walk up from the node; the first root met is the deepest
            found = roots.get(node, -1)
            node = parent[node]
        expected.append(found)
    assert p.class_of(t).tolist() == expected
    safe = SafeTaxonomy(t, p)
    assert safe.safe_mask.tolist() == [e < 0 for e in expected]


# --- SafeTaxonomy --------------------------------------------------------------------------------------------
def test_safe_taxonomy_check_node():
    s = SafeTaxonomy.default()
    assert s.check_node("1") == 0 and s.check_node(1) == 0
    with pytest.raises(SensitiveCategoryError, match=r"node '308' \(Medical Health > .*class 'health', via root "
                                                     r"'286' \(Medical Health\)"):
        s.check_node("308")
    with pytest.raises(TaxonomyError, match="not in taxonomy 'iab-2.2'") as info:
        s.check_node("nope")
    assert not isinstance(info.value, SensitiveCategoryError)
    with pytest.raises(TaxonomyError):
        s.check_node(None)  # type: ignore[arg-type]


def test_safe_taxonomy_arrays_and_is_safe():
    s = SafeTaxonomy(Taxonomy.default(), SensitivityProfile.named("default"))
    assert s.classes == POLICY and s.sensitive_class.dtype == np.int8 and s.safe_mask.dtype == bool
    assert np.array_equal(s.safe_mask, s.sensitive_class < 0)
    with pytest.raises(ValueError):
        s.safe_mask[0] = False
    idx = Taxonomy.default().index_of(["1", "308", "nope"])
    assert s.is_safe(idx).tolist() == [True, False, False]
    assert s.is_safe([len(Taxonomy.default())]).tolist() == [False]
    assert s == SafeTaxonomy.default() and pickle.loads(pickle.dumps(s)) == s
    assert str(s) == ("iab-2.2 under sensitivity profile 'default': 69 of 698 nodes sensitive "
                      "(racial_or_ethnic_origin 1, religious_or_philosophical_beliefs 14, health 54)")


def test_safe_taxonomy_type_checks():
    with pytest.raises(ParameterError, match="taxonomy must be a Taxonomy"):
        SafeTaxonomy("iab-2.2", SensitivityProfile.named("default"))  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="profile must be a SensitivityProfile"):
        SafeTaxonomy(Taxonomy.default(), "default")  # type: ignore[arg-type]
