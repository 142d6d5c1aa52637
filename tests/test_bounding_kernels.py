"""The compiled bounding/count/audit kernels against the numpy formulation they replaced (hypothesis).

The reference functions below are the numpy code of ``count_cells`` and ``class_mass`` before the kernels
(a stable lexsort ranks each person's pairs by (priority, key); distinct pairs by sorting combined keys;
counts by ``bincount``; audit masses by a sparse product). The kernels must choose exactly the same pairs and
give exactly the same counts, ties of priority included (forced here by repeating key hashes).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from adtarget.reports import _bounding_kernels as kernels
from adtarget.reports._bounding import priorities, stable64

U64_MAX = 2**64 - 1


# --- the numpy reference --------------------------------------------------------------------------------------
def rank_within_person(person, priority, tiebreak):
    order = np.lexsort((tiebreak, priority, person))
    start = np.ones(order.size, dtype=bool)
    start[1:] = person[order][1:] != person[order][:-1]
    first = np.maximum.accumulate(np.where(start, np.arange(order.size), 0))
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size) - first
    return rank


def bound_pairs(person, key, pseudonyms, key_hashes, salt, k):
    """Mask of kept (person, key) pairs, ``person`` sorted: the k smallest (priority, key) of each person."""
    prio = priorities(pseudonyms[person], key_hashes[key], salt)
    return rank_within_person(person, prio, key) < k


def distinct_pairs(person, value):
    """Distinct (person, value) pairs with value >= 0, sorted by person then value."""
    pairs = np.unique(np.stack([person, value], axis=1)[value >= 0].astype(np.int64), axis=0)
    return pairs[:, 0], pairs[:, 1]


def value_table(person, value, keep, n_persons, k):
    table = np.full((n_persons, k), -1, dtype=np.int64)
    p, v = person[keep], value[keep]
    for i in range(p.size):
        table[p[i], np.count_nonzero(p[:i] == p[i])] = v[i]
    return table


# --- strategies -----------------------------------------------------------------------------------------------
def pseudonyms_for(rng, n):
    """Random pseudonyms, with the extreme values 0 and 2**64-1 among them."""
    pseud = rng.integers(0, U64_MAX, n, dtype=np.uint64, endpoint=True)
    pseud[: min(n, 2)] = np.array([0, U64_MAX], dtype=np.uint64)[: min(n, 2)]
    return pseud


def key_hashes_for(rng, n, tied):
    """stable64-like key hashes; ``tied`` draws them from 3 values, so a person's priorities tie often."""
    pool = rng.integers(0, U64_MAX, 3 if tied else n, dtype=np.uint64, endpoint=True)
    return pool[rng.integers(0, pool.size, n)] if tied else pool


@st.composite
def memberships(draw):
    """(csr, col_key, row_person, n_persons, n_keys): a random membership with explicit zeros and a column map."""
    seed = draw(st.integers(0, 2**32 - 1))
    n_rows, n_cols = draw(st.integers(0, 12)), draw(st.integers(1, 45))
    rng = np.random.default_rng(seed)
    dense = rng.random((n_rows, n_cols)) < draw(st.sampled_from([0.1, 0.5, 0.95]))
    m = sp.csr_matrix(dense)
    m.data[rng.random(m.data.size) < 0.1] = False  # explicit zeros are not memberships
    n_keys = draw(st.integers(1, n_cols))
    col_key = np.full(n_cols, -1, dtype=np.int64)
    col_key[rng.permutation(n_cols)[:n_keys]] = rng.permutation(n_keys)
    n_persons = n_rows + draw(st.integers(0, 3))
    row_person = np.sort(rng.permutation(n_persons)[:n_rows]).astype(np.int64)
    return m, col_key, row_person, n_persons, n_keys, rng


# --- smallest_k -----------------------------------------------------------------------------------------------
@given(m=st.integers(0, 70), k=st.integers(0, 12), seed=st.integers(0, 2**32 - 1))
def test_smallest_k_is_the_first_k_of_a_stable_lexsort(m, k, seed):
    rng = np.random.default_rng(seed)
    prio = rng.integers(0, 4, m).astype(np.uint64)  # many exact ties
    prio[rng.random(m) < 0.2] = U64_MAX
    key = rng.integers(0, 6, m).astype(np.int64)  # repeated keys: ties broken by position
    keep = np.zeros(m + 3, dtype=bool)
    kernels.smallest_k(prio, key, m, k, keep)
    order = np.lexsort((np.arange(m), key, prio))
    expected = np.zeros(m, dtype=bool)
    expected[order[:k]] = True
    assert np.array_equal(keep[:m], expected)


# --- bound_rows -----------------------------------------------------------------------------------------------
@settings(max_examples=150)
@given(world=memberships(), k=st.integers(1, 12), tied=st.booleans())
def test_bound_rows_keeps_the_pairs_bound_pairs_keeps(world, k, tied):
    m, col_key, row_person, n_persons, n_keys, rng = world
    pseud, hashes = pseudonyms_for(rng, n_persons), key_hashes_for(rng, n_keys, tied)
    keep, sizes, counted = kernels.bound_rows(m.indptr, m.indices, m.data, col_key, row_person, pseud, hashes,
                                              np.uint64(stable64("s")), k)
    coo = m.tocoo()  # entries in storage order, as keep
    ok = coo.data & (col_key[coo.col] >= 0)
    p, c = row_person[coo.row[ok]], col_key[coo.col[ok]]
    expected = bound_pairs(p, c, pseud, hashes, "s", k)
    assert np.array_equal(keep[ok], expected) and not keep[~ok].any()
    assert np.array_equal(sizes, np.bincount(c[expected], minlength=n_keys))
    assert np.array_equal(counted, np.isin(np.arange(n_persons), p[expected]))
    assert keep.dtype == counted.dtype == bool and sizes.dtype == np.int64


def test_bound_rows_of_an_empty_membership():
    m = sp.csr_matrix((0, 4), dtype=bool)
    keep, sizes, counted = kernels.bound_rows(m.indptr, m.indices, m.data, np.arange(4), np.arange(0),
                                              np.zeros(2, np.uint64), np.arange(4, dtype=np.uint64), np.uint64(1), 5)
    assert keep.size == 0 and not sizes.any() and sizes.size == 4 and not counted.any() and counted.size == 2


# --- value bitsets and bound_values ---------------------------------------------------------------------------
@settings(max_examples=150)
@given(n_persons=st.integers(1, 15), n_events=st.integers(0, 150), n_values=st.integers(1, 140),
       k=st.integers(1, 6), tied=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_bound_values_equals_distinct_pairs_then_bound_pairs(n_persons, n_events, n_values, k, tied, seed):
    rng = np.random.default_rng(seed)
    person = rng.integers(0, n_persons, n_events).astype(np.int32)
    value = rng.integers(-1, min(n_values, rng.integers(1, 9) * 8), n_events).astype(np.int16)
    counted, in_domain = rng.random(n_persons) < 0.8, rng.random(n_values) < 0.8
    pseud, hashes = pseudonyms_for(rng, n_persons), key_hashes_for(rng, n_values, tied)
    bits = kernels.bitset_table(n_persons, n_values)
    kernels.value_bits(person, value, bits)
    table = kernels.bound_values(bits, counted, in_domain, pseud, hashes, np.uint64(stable64("s")), k)
    p, v = distinct_pairs(person, value)
    ok = counted[p] & in_domain[v]
    p, v = p[ok], v[ok]
    expected = value_table(p, v, bound_pairs(p, v, pseud, hashes, "s", k), n_persons, k)
    assert table.dtype == np.int32 and np.array_equal(table, expected)


@pytest.mark.parametrize("n_values, dtype, words", [(0, np.uint8, 1), (8, np.uint8, 1), (9, np.uint16, 1),
                                                     (32, np.uint32, 1), (33, np.uint64, 1), (129, np.uint64, 3)])
def test_bitsets_use_the_narrowest_words(n_values, dtype, words):
    bits = kernels.bitset_table(5, n_values)
    assert bits.dtype == dtype and bits.shape == (5, words) and not bits.any()
    if n_values:
        kernels.value_bits(np.array([4, 4, 0], np.int32), np.array([n_values - 1, -1, 0], np.int16), bits)
        cells = np.unpackbits(bits.view(np.uint8), axis=1, bitorder="little")
        assert cells[4, n_values - 1] and cells[0, 0] and cells.sum() == 1 + (n_values > 1)


def test_bound_values_without_events_or_counted_persons():
    bits = kernels.bitset_table(3, 5)
    kernels.value_bits(np.zeros(0, np.int32), np.zeros(0, np.int16), bits)
    table = kernels.bound_values(bits, np.ones(3, bool), np.ones(5, bool), np.arange(3, dtype=np.uint64),
                                 np.arange(5, dtype=np.uint64), np.uint64(0), 2)
    assert (table == -1).all() and table.shape == (3, 2)


# --- count_joined and value_persons -----------------------------------------------------------------------------
@settings(max_examples=150)
@given(world=memberships(), widths=st.lists(st.tuples(st.integers(1, 9), st.integers(1, 3)), min_size=1,
                                            max_size=3))
def test_count_joined_equals_bincounts_per_table_column(world, widths):
    m, col_key, row_person, n_persons, n_keys, rng = world
    keep = np.asarray(m.data, bool) & (col_key[m.indices] >= 0) & (rng.random(m.data.size) < 0.7)
    tables = [rng.integers(-1, n_values, (n_persons, k)).astype(np.int32) for n_values, k in widths]
    starts = np.cumsum([0] + [n for n, _ in widths])
    offset = np.repeat(starts[:-1], [k for _, k in widths]).astype(np.int64)
    table = np.hstack(tables)
    got = kernels.count_joined(m.indptr, m.indices, keep, col_key, row_person, table, offset, n_keys, starts[-1])
    coo = m.tocoo()
    person, key = row_person[coo.row[keep]], col_key[coo.col[keep]]
    counted = rng.random(n_persons) < 0.7
    per_cell = kernels.value_persons(table, offset, counted, starts[-1])
    for (n_values, k), t, start in zip(widths, tables, starts):
        expected, persons = np.zeros(n_keys * n_values, dtype=np.int64), np.zeros(n_values, dtype=np.int64)
        for r in range(k):
            v = t[person, r]
            expected += np.bincount(key[v >= 0] * n_values + v[v >= 0], minlength=n_keys * n_values)
            persons += np.bincount(t[counted, r][t[counted, r] >= 0], minlength=n_values)
        assert np.array_equal(got[:, start:start + n_values], expected.reshape(n_keys, n_values))
        assert np.array_equal(per_cell[start:start + n_values], persons)
    assert got.dtype == per_cell.dtype == np.int64 and got.shape == (n_keys, starts[-1])


# --- class_mass -----------------------------------------------------------------------------------------------
def person_mass(person, cls, n_persons, n_cls, scale):
    """(n_persons, n_cls + 1) sparse masses: scale split over each person's distinct classes, else "none"."""
    seen = np.zeros((n_persons, max(n_cls, 1)), dtype=bool)
    seen[person, cls] = True
    per_person = seen.sum(axis=1)
    dense = np.where(seen, scale // np.maximum(per_person, 1)[:, None], 0)[:, :n_cls]
    return sp.csr_matrix(np.column_stack([dense, np.where(per_person == 0, scale, 0)]).astype(np.int64))


@settings(max_examples=150)
@given(world=memberships(), n_cls=st.sampled_from([0, 1, 2, 3, 5, 10, 11, 12, 70]), n_audit=st.integers(0, 40))
def test_class_mass_equals_the_sparse_product(world, n_cls, n_audit):
    m, _, row_person, n_persons, _, rng = world
    scale = math.lcm(*range(1, min(n_cls, 12) + 1))  # lcm(1..n) overflows int64 beyond n = 42
    person = rng.integers(0, n_persons, n_audit if n_cls and n_persons else 0).astype(np.int32)
    cls = rng.integers(0, max(n_cls, 1), person.size).astype(np.int8)
    bits = kernels.bitset_table(n_persons, n_cls)
    kernels.value_bits(person, cls, bits)
    members, mass, population = kernels.class_mass(bits, n_cls, scale, m.indptr, m.indices, m.data, row_person,
                                                   m.shape[1])
    w = person_mass(person, cls, n_persons, n_cls, scale)
    weights = m.astype(np.int64)
    assert np.array_equal(population, np.asarray(w.sum(axis=0)).ravel())
    assert np.array_equal(mass, (weights.T @ w[row_person]).toarray())
    assert np.array_equal(members, np.asarray(weights.sum(axis=0)).ravel())
    assert mass.dtype == members.dtype == population.dtype == np.int64


@given(rows=st.lists(st.lists(st.integers(-2, 9), max_size=8), max_size=6))
def test_membership_problem_finds_repeats_and_out_of_range_columns(rows):
    from adtarget.segments._kernels import membership_problem

    def reference() -> int:  # the first problem in scan order
        for row in rows:
            seen: set[int] = set()
            for col in row:
                if not 0 <= col < 8:
                    return 2
                if col in seen:
                    return 1
                seen.add(col)
        return 0

    indptr = np.cumsum([0] + [len(r) for r in rows]).astype(np.int32)
    indices = np.array([c for r in rows for c in r], dtype=np.int32)
    assert membership_problem(indptr, indices, 8) == reference()
