"""Keyed-priority contribution bounding and the count_cells kernel: by-construction bounds (hypothesis),
agreement with the definition, independence from row order and partitioning."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace as NS

import numpy as np
import pytest
import scipy.sparse as sp
from _release_fixtures import prio
from hypothesis import given
from hypothesis import strategies as st

from adtarget._kernels import _bounding as kernels
from adtarget._release._bounding import priorities, splitmix64, stable64, stable64_many
from adtarget._release._cells import AGE_BANDS, CellCounts, age_band_codes
from adtarget._release._cells import bounded_counts as count_cells
from adtarget._release._spec import ReleaseSpec

END = 1_790_000_000  # 2026-09-21


def test_splitmix64_matches_the_reference_sequence():
    # splitmix64 seeded with 0: the first outputs are mix(γ), mix(2γ) (Vigna's reference implementation)
    out = splitmix64(np.array([0, 0x9E3779B97F4A7C15], dtype=np.uint64))
    assert [int(x) for x in out] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4]


def test_stable64_is_little_endian_blake2b_8():
    digest = hashlib.blake2b(b"iab-2.2:239", digest_size=8).digest()
    assert stable64("iab-2.2:239") == int.from_bytes(digest, "little")
    assert stable64_many(["a", "b"]).tolist() == [stable64("a"), stable64("b")]


def test_priorities_equal_the_definition_over_python_ints():
    rng = np.random.default_rng(0)
    pseud = rng.integers(0, 2**64 - 1, 50, dtype=np.uint64)
    keys = [f"iab-2.2:{i}" for i in range(50)]
    got = priorities(pseud, stable64_many(keys), "salt")
    assert [int(x) for x in got] == [prio(int(p), k, "salt") for p, k in zip(pseud, keys)]


pairs_strategy = st.lists(st.tuples(st.integers(0, 12), st.integers(0, 9)), min_size=0, max_size=80, unique=True)


@given(pairs=pairs_strategy, k=st.integers(1, 12), seed=st.integers(0, 2**32 - 1))
def test_bounding_keeps_the_k_smallest_priorities_per_person(pairs, k, seed):
    pairs = sorted(pairs)
    m = sp.csr_matrix((np.ones(len(pairs), bool), ([p for p, _ in pairs], [c for _, c in pairs])), shape=(13, 10))
    pseud = np.random.default_rng(seed).integers(0, 2**64 - 1, 13, dtype=np.uint64)
    hashes = stable64_many([f"seg{i}" for i in range(10)])
    keep, _, _ = kernels.bound_rows(m.indptr, m.indices, m.data, np.arange(10), np.arange(13), pseud, hashes,
                                    np.uint64(stable64("s")), k)
    coo = m.tocoo()
    kept = list(zip(coo.row[keep].tolist(), coo.col[keep].tolist()))
    for p in {q for q, _ in pairs}:
        mine = sorted(c for q, c in kept if q == p)
        ranked = sorted((prio(int(pseud[p]), f"seg{c}", "s"), c) for q, c in pairs if q == p)
        assert len(mine) <= k
        assert mine == sorted(c for _, c in ranked[:k])


def test_age_bands_at_the_window_end():
    years = np.array([0, 2012, 2008, 2007, 2001, 1992, 1982, 1972, 1961, 1960, 1900, 2030], dtype=np.int16)
    got = [AGE_BANDS[c] for c in age_band_codes(years, END)]  # 2026: youngest age = 2025 - birth year
    assert got == ["unknown", "13-17", "13-17", "18-24", "18-24", "25-34", "35-44", "45-54", "55-64", "65+",
                   "65+", "unknown"]


# --- count_cells on small synthetic worlds ------------------------------------------------------------------
REGIONS = ("CN-GD", "DE-BE", "US-CA", "US-NY")
SERVICES = NS(names=("video", "news", "games", "health_plus"), ads_permitted=np.array([1, 1, 1, 0], bool))


def fake_world(n_persons, n_events, n_segments, seed):
    """A duck-typed eligible/assignments pair (count_cells trusts its inputs)."""
    rng = np.random.default_rng(seed)
    persons = np.unique(rng.integers(0, 2**64 - 1, n_persons + 5, dtype=np.uint64))[:n_persons]
    eligible = NS(persons=persons, birth_year=rng.integers(1950, 2010, n_persons).astype(np.int16),
                  person=rng.integers(0, n_persons, n_events).astype(np.int32),
                  region=rng.integers(-1, len(REGIONS), n_events).astype(np.int16),
                  service=rng.integers(0, 3, n_events).astype(np.int16), regions=REGIONS, services=SERVICES,
                  window_end=END)
    dense = rng.random((n_persons, n_segments)) < 0.6
    segs = tuple(NS(segment_id=f"iab-2.2:{i + 1}") for i in range(n_segments))
    return eligible, NS(persons=persons, membership=sp.csr_matrix(dense), segments=segs)


def subset(eligible, assignments, rows):
    """The partition holding persons ``rows`` (with all their events), as the Spark engine would see it."""
    rows = np.asarray(rows)
    ev = np.isin(eligible.person, rows)
    new = np.full(eligible.persons.size, -1)
    new[rows] = np.arange(rows.size)
    el = NS(**{**vars(eligible), "persons": eligible.persons[rows], "birth_year": eligible.birth_year[rows],
               "person": new[eligible.person[ev]].astype(np.int32), "region": eligible.region[ev],
               "service": eligible.service[ev]})
    return el, NS(persons=eligible.persons[rows], membership=assignments.membership[rows],
                  segments=assignments.segments)


def spec_for(n_segments, k, cells):
    return ReleaseSpec("acme", [f"iab-2.2:{i + 1}" for i in range(n_segments)], epsilon=1.0, delta=1e-6,
                       max_segments_per_person=k, max_cells_per_person=cells, salt="t")


def same(a: CellCounts, b: CellCounts) -> bool:
    return (a.segment_ids == b.segment_ids and np.array_equal(a.sizes, b.sizes) and a.n_persons == b.n_persons
            and all(a.values[d] == b.values[d] and np.array_equal(a.cells[d], b.cells[d])
                    and np.array_equal(a.value_persons[d], b.value_persons[d]) for d in a.cells))


@given(n=st.integers(1, 25), s=st.integers(1, 7), k=st.integers(1, 4), kr=st.integers(1, 3),
       ks=st.integers(1, 2), seed=st.integers(0, 2**16))
def test_no_person_counts_in_more_than_k_segments_or_cells(n, s, k, kr, ks, seed):
    eligible, assignments = fake_world(n, 6 * n, s, seed)
    spec = spec_for(s, k, {"region": kr, "service": ks})
    per_person = [count_cells(*subset(eligible, assignments, [i]), spec) for i in range(n)]
    for c in per_person:
        assert c.sizes.sum() <= k and c.sizes.max(initial=0) <= 1
        assert np.array_equal(c.cells["age_band"].sum(axis=1), c.sizes)
        assert (c.cells["region"].sum(axis=1) <= kr * c.sizes).all()
        assert (c.cells["service"].sum(axis=1) <= ks * c.sizes).all()
        assert c.value_persons["region"].sum() <= kr and c.value_persons["service"].sum() <= ks
    assert same(CellCounts.sum(per_person), count_cells(eligible, assignments, spec))


@given(n=st.integers(2, 40), seed=st.integers(0, 2**16), cut=st.floats(0.1, 0.9))
def test_counts_over_a_partition_of_persons_add_up(n, seed, cut):
    eligible, assignments = fake_world(n, 8 * n, 5, seed)
    spec = spec_for(5, 2, {"region": 1, "service": 2})
    order = np.random.default_rng(seed).permutation(n)
    m = max(1, int(cut * n))
    parts = [count_cells(*subset(eligible, assignments, np.sort(r)), spec) for r in (order[:m], order[m:])]
    assert same(parts[0] + parts[1], count_cells(eligible, assignments, spec))


@given(n=st.integers(1, 30), seed=st.integers(0, 2**16))
def test_assignments_over_some_of_the_eligible_persons(n, seed):
    """Rows for a subset of the persons (the searchsorted path) count as the full matrix with the rest empty."""
    eligible, assignments = fake_world(n, 6 * n, 4, seed)
    rows = np.flatnonzero(np.random.default_rng(seed).random(n) < 0.5)
    some = NS(persons=eligible.persons[rows], membership=assignments.membership[rows],
              segments=assignments.segments)
    emptied = assignments.membership.tolil()
    emptied[np.setdiff1d(np.arange(n), rows)] = False
    full = NS(persons=eligible.persons, membership=emptied.tocsr(), segments=assignments.segments)
    spec = spec_for(4, 2, {"region": 1, "service": 2})
    assert same(count_cells(eligible, some, spec), count_cells(eligible, full, spec))


def test_event_order_does_not_change_the_counts():
    eligible, assignments = fake_world(200, 3000, 6, 1)
    spec = spec_for(6, 3, {"region": 2})
    perm = np.random.default_rng(2).permutation(3000)
    shuffled = NS(**{**vars(eligible), "person": eligible.person[perm], "region": eligible.region[perm],
                     "service": eligible.service[perm]})
    assert same(count_cells(shuffled, assignments, spec), count_cells(eligible, assignments, spec))


def test_services_without_ads_permission_and_unused_regions_are_not_cells():
    eligible, assignments = fake_world(50, 400, 2, 3)
    eligible.service[:10] = 3  # health_plus: not ads-permitted (the gate removes such events anyway)
    c = count_cells(eligible, assignments, spec_for(2, 2, {}))
    assert c.values["service"] == ("games", "news", "video")
    assert set(c.values["region"]) <= set(REGIONS) and (c.value_persons["region"] > 0).all()


def test_cellcounts_refuses_to_add_different_breakdowns():
    eligible, assignments = fake_world(10, 50, 2, 4)
    a = count_cells(eligible, assignments, spec_for(2, 1, {}))
    b = count_cells(eligible, assignments, ReleaseSpec("acme", ["iab-2.2:1"], epsilon=1.0, breakdowns=()))
    with pytest.raises(ValueError, match="different breakdowns"):
        a + b
    with pytest.raises(ValueError, match="at least one"):
        CellCounts.sum([])
