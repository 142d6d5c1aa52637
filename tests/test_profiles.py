"""Interest profiles: exact against a pandas groupby oracle, deterministic capping, decay, invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _segment_fixtures import DAY, WINDOW_END, eligible_events, profile_oracle, random_events, safe_taxonomy
from hypothesis import given
from hypothesis import strategies as st

from adtarget.exceptions import ParameterError
from adtarget.profiles import InterestProfiles, build_profiles
from adtarget.profiles._profiles import level_columns, recent_events_mask


@pytest.fixture(scope="module")
def safe(taxonomy):
    return safe_taxonomy(taxonomy)


@pytest.fixture(scope="module")
def eligible(safe):
    return eligible_events(safe, random_events(safe, n_persons=300, n_events=6000, seed=1))


@pytest.mark.parametrize("level", ["node", "tier1", "tier2"])
@pytest.mark.parametrize(("half_life", "cap"), [(30.0, 1000), (7.0, 5), (math.inf, 1), (30.0, None)])
def test_profiles_equal_pandas_oracle(eligible, level, half_life, cap):
    profiles = build_profiles(eligible, level=level, half_life_days=half_life, max_events_per_person=cap)
    expected, columns = profile_oracle(eligible, level=level, half_life_days=half_life, cap=cap)
    np.testing.assert_array_equal(profiles.columns, columns)
    np.testing.assert_allclose(profiles.matrix.toarray(), expected, rtol=1e-12, atol=1e-12)
    assert profiles.matrix.dtype == np.float64 and profiles.columns.dtype == np.int32
    np.testing.assert_array_equal(profiles.persons, eligible.persons)


def test_columns_are_safe_and_data_independent(safe, taxonomy):
    for level, deepest in (("node", taxonomy.max_tier), ("tier1", 1), ("tier2", 2)):
        cols = level_columns(safe, level)
        assert np.all(safe.safe_mask[cols]) and np.all(taxonomy.tier[cols] <= deepest)
        assert cols.size == np.count_nonzero(safe.safe_mask & (taxonomy.tier <= deepest))
    empty = eligible_events(safe, random_events(safe, n_persons=3, n_events=3, seed=2))
    assert np.array_equal(build_profiles(empty, level="tier2").columns, level_columns(safe, "tier2"))


def test_decay_halves_per_half_life(safe):
    node = int(np.flatnonzero(safe.safe_mask)[0])
    events = {"person": np.zeros(3, np.int32), "ts": WINDOW_END - np.array([0, 10, 20]) * DAY,
              "category": np.full(3, node, np.int32), "weight": np.array([1.0, 1.0, 2.0])}
    profiles = build_profiles(eligible_events(safe, events), half_life_days=10, max_events_per_person=None)
    assert profiles.matrix.sum() == pytest.approx(1 + 0.5 + 2 * 0.25)


def test_cap_keeps_the_most_recent_events(safe):
    a, b = (int(n) for n in np.flatnonzero(safe.safe_mask)[:2])
    ts = WINDOW_END - np.arange(6) * DAY  # newest first: 3 on node a, then 3 on node b
    events = {"person": np.zeros(6, np.int32), "ts": ts, "category": np.array([a] * 3 + [b] * 3, np.int32),
              "weight": np.ones(6)}
    profiles = build_profiles(eligible_events(safe, events), half_life_days=math.inf, max_events_per_person=3)
    col = {int(n): j for j, n in enumerate(profiles.columns)}
    assert profiles.matrix[0, col[a]] == 3 and profiles.matrix[0, col[b]] == 0


@given(seed=st.integers(0, 2**31), cap=st.integers(1, 8))
def test_cap_does_not_depend_on_event_order(safe, seed, cap):
    events = random_events(safe, n_persons=20, n_events=200, seed=seed, tie_share=0.6)
    perm = np.random.default_rng(seed).permutation(events["person"].size)
    shuffled = {k: v[perm] for k, v in events.items()}
    first = build_profiles(eligible_events(safe, events), max_events_per_person=cap, level="tier2")
    second = build_profiles(eligible_events(safe, shuffled), max_events_per_person=cap, level="tier2")
    np.testing.assert_allclose(first.matrix.toarray(), second.matrix.toarray(), rtol=1e-12)
    keep = recent_events_mask(events["person"], events["ts"], events["category"], events["weight"], cap)
    per_person = np.bincount(events["person"][keep] if keep is not None else events["person"], minlength=20)
    assert per_person.max() <= cap


def test_no_cap_needed_returns_none():
    person = np.array([0, 1, 1], np.int32)
    assert recent_events_mask(person, np.zeros(3, np.int64), np.zeros(3, np.int32), np.ones(3), 2) is None


@pytest.mark.parametrize("norm", ["l1", "l2"])
def test_norm_scales_rows(eligible, norm):
    profiles = build_profiles(eligible, norm=norm)
    dense = profiles.matrix.toarray()
    nonzero = dense.sum(axis=1) > 0
    expected = np.abs(dense).sum(axis=1) if norm == "l1" else np.sqrt((dense**2).sum(axis=1))
    np.testing.assert_allclose(expected[nonzero], 1.0)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"half_life_days": 0}, "half_life_days must be a number > 0"),
    ({"half_life_days": "30"}, "half_life_days"),
    ({"level": "tier3"}, "level must be one of"),
    ({"max_events_per_person": 0}, "max_events_per_person must be an integer >= 1"),
    ({"max_events_per_person": 2.5}, "max_events_per_person"),
    ({"max_events_per_person": True}, "max_events_per_person"),
    ({"norm": "max"}, "norm must be None, 'l1' or 'l2', got 'max'"),
])
def test_invalid_parameters_are_named(eligible, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        build_profiles(eligible, **kwargs)


def test_profiles_are_marked_personal_and_repr_shows_shapes_only(eligible):
    profiles = build_profiles(eligible)
    assert isinstance(profiles, InterestProfiles) and profiles.classification == "personal"
    text = repr(profiles)
    assert "n_persons=300" in text and "Personal Information" in text
    assert f"{int(eligible.persons[0]):016x}" not in text and str(int(eligible.persons[0])) not in text
