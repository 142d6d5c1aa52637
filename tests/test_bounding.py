"""Keyed-priority contribution bounding and count_cells: by-construction bounds (hypothesis), agreement with the
definition, independence from row order and partitioning.

count_cells takes only EligibleEvents from the gate and assignments derived from them, so the worlds here are
event tables that go through ingest, the gate and a SegmentCatalog; a partition of persons is gated on its
own, as an engine's executor would hold it."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import scipy.sparse as sp
from _release_fixtures import prio
from _segment_fixtures import gate_table, rows_of, safe_taxonomy, world_catalog, world_table
from hypothesis import given
from hypothesis import strategies as st

from adtarget import ReleaseSpec
from adtarget.exceptions import ParameterError
from adtarget.reference import AGE_BANDS, age_band_codes
from adtarget.reports import CellCounts, count_cells
from adtarget.reports import _bounding_kernels as kernels
from adtarget.reports._bounding import priorities, splitmix64, stable64, stable64_many

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


# --- count_cells on small worlds through the gate ----------------------------------------------------------
@pytest.fixture(scope="module")
def safe(taxonomy):
    return safe_taxonomy(taxonomy)


def counted(safe, table, n_segments, spec):
    """count_cells over the gate's events of ``table`` and the catalog's assignments of them."""
    eligible = gate_table(safe, table)
    return count_cells(eligible, world_catalog(safe, n_segments).assign(eligible), spec)


def spec_for(safe, n_segments, k, cells, breakdowns=("age_band", "region", "service")):
    ids = [s.segment_id for s in world_catalog(safe, n_segments).segments]
    delta = 1e-6 if "region" in breakdowns else 0.0
    return ReleaseSpec("acme", ids, epsilon=1.0, delta=delta, max_segments_per_person=k, max_cells_per_person=cells,
                       breakdowns=breakdowns, salt="t")


def same(a: CellCounts, b: CellCounts) -> bool:
    return (a.segment_ids == b.segment_ids and np.array_equal(a.sizes, b.sizes) and a.n_persons == b.n_persons
            and all(a.values[d] == b.values[d] and np.array_equal(a.cells[d], b.cells[d])
                    and np.array_equal(a.value_persons[d], b.value_persons[d]) for d in a.cells))


@given(n=st.integers(1, 10), s=st.integers(1, 7), k=st.integers(1, 4), kr=st.integers(1, 3),
       ks=st.integers(1, 2), seed=st.integers(0, 2**16))
def test_no_person_counts_in_more_than_k_segments_or_cells(safe, n, s, k, kr, ks, seed):
    table = world_table(safe, n_persons=n, n_events=6 * n, n_segments=s, seed=seed)
    spec = spec_for(safe, s, k, {"region": kr, "service": ks})
    per_person = [counted(safe, rows_of(table, [1000 + i]), s, spec) for i in range(n)]
    for c in per_person:
        assert c.sizes.sum() <= k and c.sizes.max(initial=0) <= 1
        assert np.array_equal(c.cells["age_band"].sum(axis=1), c.sizes)
        assert (c.cells["region"].sum(axis=1) <= kr * c.sizes).all()
        assert (c.cells["service"].sum(axis=1) <= ks * c.sizes).all()
        assert c.value_persons["region"].sum() <= kr and c.value_persons["service"].sum() <= ks
    assert same(CellCounts.sum(per_person), counted(safe, table, s, spec))


@given(n=st.integers(2, 40), seed=st.integers(0, 2**16), cut=st.floats(0.1, 0.9))
def test_counts_over_a_partition_of_persons_add_up(safe, n, seed, cut):
    table = world_table(safe, n_persons=n, n_events=8 * n, n_segments=5, seed=seed)
    spec = spec_for(safe, 5, 2, {"region": 1, "service": 2})
    order = np.random.default_rng(seed).permutation(n) + 1000
    m = max(1, int(cut * n))
    parts = [counted(safe, rows_of(table, ids), 5, spec) for ids in (order[:m], order[m:])]
    assert same(parts[0] + parts[1], counted(safe, table, 5, spec))


def test_event_order_does_not_change_the_counts(safe):
    table = world_table(safe, n_persons=200, n_events=3000, n_segments=6, seed=1)
    spec = spec_for(safe, 6, 3, {"region": 2})
    perm = np.random.default_rng(2).permutation(3000)
    shuffled = {name: column[perm] for name, column in table.items()}
    assert same(counted(safe, shuffled, 6, spec), counted(safe, table, 6, spec))


def test_services_without_ads_permission_and_unused_regions_are_not_cells(safe):
    table = world_table(safe, n_persons=50, n_events=400, n_segments=2, seed=3, health_plus_share=0.1)
    eligible = gate_table(safe, table)
    assert eligible.exclusions["service_not_permitted"] > 0  # the gate removed the health_plus events
    c = count_cells(eligible, world_catalog(safe, 2).assign(eligible), spec_for(safe, 2, 2, {}))
    assert c.values["service"] == ("games", "music", "news", "payments", "search", "video")
    assert (c.cells["service"][:, [c.values["service"].index(x) for x in ("music", "payments", "search")]] == 0).all()
    assert set(c.values["region"]) <= {"CN-GD", "DE-BE", "US-CA", "US-NY"}
    assert (c.value_persons["region"] > 0).all()


def test_cellcounts_refuses_to_add_other_bounds_or_other_facts(safe):
    table = world_table(safe, n_persons=10, n_events=50, n_segments=2, seed=4)
    eligible = gate_table(safe, table)
    assignments = world_catalog(safe, 2).assign(eligible)
    a = count_cells(eligible, assignments, spec_for(safe, 2, 1, {}))
    b = count_cells(eligible, assignments, spec_for(safe, 2, 1, {}, breakdowns=()))
    with pytest.raises(ParameterError, match="cannot add CellCounts made with other bounds"):
        a + b
    later = gate_table(safe, table, snapshot_id="run-2")
    c = count_cells(later, world_catalog(safe, 2).assign(later), spec_for(safe, 2, 1, {}))
    with pytest.raises(ParameterError, match=r"over other data facts \(segments, policy, window, snapshot id"):
        a + c
    with pytest.raises(ValueError, match="at least one"):
        CellCounts.sum([])
