"""Post-processing after noise: non-negative integers, age bands summing to the size, clipping, thresholds,
and the noise/partition-selection stage (draw order, secure default, ε = ∞) on counts count_cells made of a gated
world (the only CellCounts there are)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _release_fixtures import assignments_for, gate, world_rows
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from adtarget import PrivacyLeakWarning, ReleaseSpec
from adtarget.exceptions import ParameterError
from adtarget.reference import AGE_BANDS
from adtarget.reports import count_cells
from adtarget.reports._postprocess import largest_remainder, noisy_release, postprocess, project_to_total

rows = st.integers(1, 6).flatmap(lambda n: st.integers(1, 9).flatmap(
    lambda m: st.tuples(arrays(np.int64, (n, m), elements=st.integers(-500, 500)),
                        arrays(np.int64, (n,), elements=st.integers(0, 3000)))))


@given(rows)
def test_projection_is_non_negative_sums_to_the_total_and_rounds_exactly(data):
    noisy, totals = data
    x = project_to_total(noisy, totals)
    assert (x >= 0).all()
    assert np.allclose(x.sum(axis=1), totals, atol=1e-6)
    r = largest_remainder(x, totals)
    assert r.dtype == np.int64 and (r >= 0).all() and np.array_equal(r.sum(axis=1), totals)
    assert (np.abs(r - x) < 1 + 1e-9).all()


@given(arrays(np.int64, (4, 8), elements=st.integers(0, 400)))
def test_consistent_counts_are_left_unchanged(cells):
    totals = cells.sum(axis=1)
    assert np.array_equal(largest_remainder(project_to_total(cells, totals), totals), cells)


def test_projection_is_the_least_squares_point():
    # θ = 4: (10 - 4, 3 - 4 -> 0, -4 - 4 -> 0); and with room for two cells, θ = 2.5
    assert project_to_total(np.array([[10.0, -4.0, 3.0]]), np.array([6])).tolist() == [[6.0, 0.0, 0.0]]
    assert project_to_total(np.array([[10.0, -4.0, 3.0]]), np.array([8])).tolist() == [[7.5, 0.0, 0.5]]
    assert project_to_total(np.array([[5.0, 5.0]]), np.array([0])).tolist() == [[0.0, 0.0]]


@pytest.fixture(scope="module")
def world():
    rows, people = world_rows(4, n_persons=200)
    eligible = gate(rows, people)
    return eligible, assignments_for(eligible)


def counts(world, **kw):
    """Exact CellCounts of the world (count_cells is their only maker) and the spec they were counted with."""
    eligible, assignments = world
    spec = ReleaseSpec("acme", assignments.segment_ids[:2], **{"epsilon": 1.0, "delta": 1e-6,
                                                               "min_reported_size": 10, **kw})
    return count_cells(eligible, assignments, spec), spec


def test_postprocess_clamps_clips_and_thresholds():
    sizes = np.array([120, 30, -4])
    age = np.array([[60, 70, 0, 0, 0, 0, 0, -10], [30, 0, 0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0]])
    service = np.array([[200, 51], [40, 3], [0, 0]])
    out = postprocess(sizes, {"age_band": AGE_BANDS, "service": ("news", "video")},
                      {"age_band": age, "service": service}, segment_ids=("a", "b", "c"),
                      keep_values={"age_band": np.ones(8, bool), "service": np.ones(2, bool)}, min_reported_size=50)
    assert out.sizes.tolist() == [120, 30, 0] and out.reported.tolist() == [True, False, False]
    assert out.cells["age_band"].sum(axis=1).tolist() == [120, 30, 0]
    assert out.cells["service"][0].tolist() == [120, 0]  # one service per person: the cells sum to the size
    assert out.cell_reported["service"][0].tolist() == [True, False]
    assert not out.cell_reported["service"][1:].any()
    assert out.suppressed == 2
    two = postprocess(sizes, {"service": ("news", "video")}, {"service": service}, segment_ids=("a", "b", "c"),
                      keep_values={"service": np.ones(2, bool)}, min_reported_size=50,
                      cells_per_person={"service": 2})
    assert two.cells["service"][0].tolist() == [120, 51]  # up to two per person: each <= size, sum <= 2 × size


def test_cells_of_up_to_k_values_per_person_sum_to_at_most_k_times_the_size():
    rng = np.random.default_rng(3)
    noisy = rng.integers(-100, 400, size=(200, 6))
    size = rng.integers(0, 300, size=200)
    for k in (1, 2, 3):
        out = postprocess(size, {"region": tuple("abcdef")}, {"region": noisy}, segment_ids=tuple(map(str, range(200))),
                          keep_values={"region": np.ones(6, bool)}, min_reported_size=1, cells_per_person={"region": k})
        cells = out.cells["region"]
        assert (cells >= 0).all() and (cells <= size[:, None]).all() and (cells.sum(axis=1) <= k * size).all()


def test_a_cell_is_shown_only_when_its_noisy_and_its_shown_value_clear_the_cell_threshold():
    sizes = np.array([1000, 1000])
    service = np.array([[700, 300], [400, 650]])
    out = postprocess(sizes, {"service": ("news", "video")}, {"service": service}, segment_ids=("a", "b"),
                      keep_values={"service": np.ones(2, bool)}, min_reported_size=50, size_threshold=120,
                      cell_threshold=500, cells_per_person={"service": 2})
    assert out.cell_reported["service"].tolist() == [[True, False], [False, True]]
    assert postprocess(np.array([119]), {}, {}, segment_ids=("a",), keep_values={}, min_reported_size=50,
                       size_threshold=120).suppressed == 1


def test_partition_selection_and_public_regions(world):
    c, spec = counts(world, epsilon=math.inf, min_reported_size=1, public_regions=["DE-BE", "US-CA", "XX-00"])
    with pytest.warns(PrivacyLeakWarning):
        out = noisy_release(c, spec, allow_infinite_epsilon=True).counts
    public, private = out.values["region"][:3], out.values["region"][3:]
    assert public == ("DE-BE", "US-CA", "XX-00")  # public first (zeros when absent), then selected keys, sorted
    assert private == tuple(sorted(set(c.values["region"]) - set(public)))
    exact = dict(zip(c.values["region"], c.cells["region"].T.tolist()))
    for j, region in enumerate(out.values["region"]):
        assert out.cells["region"][:, j].tolist() == exact.get(region, [0, 0])
    assert not out.cell_reported["region"][:, 2].any()  # XX-00: no data, never reported
    assert np.array_equal(out.sizes, c.sizes)


def test_noise_stage_refuses_infinite_epsilon_without_the_switch(world):
    c, spec = counts(world, epsilon=math.inf)
    with pytest.raises(ParameterError, match="allow_infinite_epsilon"):
        noisy_release(c, spec)


def test_seeded_noise_is_one_shared_stream_and_secure_noise_does_not_warn(world):
    c, spec = counts(world, breakdowns=("age_band", "service"), delta=0.0)
    with pytest.warns(PrivacyLeakWarning):
        a = noisy_release(c, spec, random_state=1).counts
    with pytest.warns(PrivacyLeakWarning):
        b = noisy_release(c, spec, random_state=np.random.RandomState(1)).counts
    assert np.array_equal(a.sizes, b.sizes) and np.array_equal(a.cells["service"], b.cells["service"])
    noise = a.sizes - c.sizes
    assert not np.array_equal(noise, (a.cells["service"] - c.cells["service"])[:, 0])
    secure = noisy_release(c, spec).counts  # would raise if it warned
    assert secure.sizes.shape == (2,)
    with pytest.raises(ParameterError, match="random_state"):
        noisy_release(c, spec, random_state="seed")


def test_noisy_release_refuses_counts_count_cells_did_not_make(world):
    from types import SimpleNamespace

    from adtarget.exceptions import ProvenanceError

    c, spec = counts(world)
    fake = SimpleNamespace(**{name: getattr(c, name) for name in ("segment_ids", "sizes", "values", "cells",
                                                                  "value_persons", "n_persons")})
    with pytest.raises(ProvenanceError, match="CellCounts made by adtarget.reports.count_cells"):
        noisy_release(fake, spec)
