"""Profile kernels against numpy references: the CSR build by counting sort, the decay exponent, the counts.

The CSR reference sums each (person, column) cell's values in input order, as ``np.add.at`` does on a zeroed
dense row (``0.0 + v1 + v2 + ...``); ``build_profiles`` must equal it bit for bit (indices, index dtype and
data), zero sums kept as stored entries. The decay reference is the expression ``build_profiles`` used before
the kernels, with the C library's ``exp2`` (what the compiled kernel calls): numpy's own ``exp2`` is vectorised
and may differ from it in the last bit on some CPUs (seen here with numpy 2.4 on AMD EPYC).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math

import numpy as np
import pytest
from _segment_fixtures import eligible_events, random_events, safe_taxonomy
from hypothesis import given
from hypothesis import strategies as st
from scipy import sparse

from adtarget.profiles import _kernels as kernels
from adtarget.profiles import build_profiles
from adtarget.profiles._profiles import (
    column_of_node,
    decayed_weights,
    dropped_events,
    level_columns,
    profile_matrix,
)

_LIBM_EXP2 = ctypes.CDLL(ctypes.util.find_library("m")).exp2
_LIBM_EXP2.restype, _LIBM_EXP2.argtypes = ctypes.c_double, [ctypes.c_double]


def libm_exp2(x: np.ndarray) -> np.ndarray:
    """``exp2`` of the C library, element by element (float64)."""
    return np.array([_LIBM_EXP2(float(v)) for v in np.ravel(x)], dtype=np.float64).reshape(np.shape(x))


def input_order_profile_matrix(person, column, values, shape) -> sparse.csr_matrix:
    """Each touched cell's values summed in input order (``np.add.at`` on zeroed rows); sorted, zeros kept."""
    n_rows, _ = shape
    order = np.argsort(person, kind="stable")  # rows one at a time: a dense row of any width stays small
    data, indices, indptr = [], [], np.zeros(n_rows + 1, dtype=np.int64)
    bounds = np.searchsorted(person[order], np.arange(n_rows + 1))
    for r in range(n_rows):
        events = order[bounds[r]:bounds[r + 1]]
        cols = np.unique(column[events])  # sorted; local ids by searchsorted keep the input order of adds
        row = np.zeros(cols.size, dtype=np.float64)
        with np.errstate(over="ignore"):  # sums of huge values overflow to inf, in the kernel too
            np.add.at(row, np.searchsorted(cols, column[events]), values[events])
        data.append(row)
        indices.append(cols)
        indptr[r + 1] = indptr[r] + cols.size
    idx_dtype = np.int32 if max(person.size, *shape) <= np.iinfo(np.int32).max else np.int64
    matrix = sparse.csr_matrix((np.concatenate([np.zeros(0), *data]),
                                np.concatenate([np.zeros(0, np.int64), *indices]).astype(idx_dtype),
                                indptr.astype(idx_dtype)), shape=shape)
    matrix.has_canonical_format = True
    return matrix


def assert_same_csr(got: sparse.csr_matrix, want: sparse.csr_matrix) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype
    for name in ("indptr", "indices", "data"):
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype, name
        np.testing.assert_array_equal(a, b, err_msg=name, strict=True)
    assert got.has_canonical_format


# --- CSR build --------------------------------------------------------------------------------------------
def run_profile_matrix(person, column, values, keep, n_rows, n_columns) -> sparse.csr_matrix:
    kept = np.bincount(person if keep is None else person[keep], minlength=n_rows)
    dropped = None if keep is None else np.flatnonzero(~keep)
    return profile_matrix(person, column, np.arange(n_columns, dtype=np.int32), values, dropped, kept, n_columns)


events = st.integers(0, 2**32 - 1).flatmap(lambda seed: st.tuples(
    st.just(seed), st.integers(1, 6), st.integers(1, 9), st.integers(0, 400), st.sampled_from(
        ["random", "sorted rows", "one row", "keep", "wide", "zeros"])))


@given(case=events)
def test_profile_matrix_sums_each_cell_in_input_order(case):
    seed, n_rows, n_columns, n, kind = case
    rng = np.random.default_rng(seed)
    if kind == "wide":  # more columns than the bitmap covers: the touched columns are listed and sorted
        n_columns = 4097 + int(rng.integers(0, 3000))
    person = rng.integers(0, 1 if kind == "one row" else n_rows, n).astype(np.int32)  # rows of up to 400
    column = rng.integers(0, n_columns, n).astype(np.int32)
    if kind == "sorted rows":
        order = np.lexsort((column, person))
        person, column = person[order], column[order]
    values = rng.random(n) * 10.0 ** rng.integers(-8, 8, n)  # magnitudes where the order of adds shows
    if kind == "zeros":
        values[rng.random(n) < 0.5] = 0.0
    keep = rng.random(n) < 0.7 if kind == "keep" else None
    got = run_profile_matrix(person, column, values, keep, n_rows, n_columns)
    sel = slice(None) if keep is None else keep
    want = input_order_profile_matrix(person[sel], column[sel], values[sel], (n_rows, n_columns))
    assert_same_csr(got, want)


def test_profile_matrix_adds_in_input_order_not_sorted_order():
    # 0 + 1 + 1e16 + 1 rounds to 1e16 twice; ascending order (1 + 1 + 1e16) would give 1e16 + 2.
    person, column = np.zeros(3, np.int32), np.zeros(3, np.int32)
    got = run_profile_matrix(person, column, np.array([1.0, 1e16, 1.0]), None, 1, 1)
    assert got.data.tolist() == [1e16]


@pytest.mark.parametrize("n_rows", [0, 1, 300, 5000])
def test_profile_matrix_edge_cases(n_rows):
    rng = np.random.default_rng(n_rows)
    n = 20 * n_rows
    person = np.sort(rng.integers(0, max(n_rows, 1), n)).astype(np.int32)[::-1].copy()
    column = rng.integers(0, 3, n).astype(np.int32)
    values = np.where(rng.random(n) < 0.1, np.finfo(np.float64).max, rng.random(n))  # sums overflow to inf
    values[rng.random(n) < 0.1] = 0.0
    values[rng.random(n) < 0.05] = -0.0  # a cell of -0.0 alone sums to 0.0, as on a zeroed row
    got = run_profile_matrix(person, column, values, None, n_rows, 3)
    assert_same_csr(got, input_order_profile_matrix(person, column, values, (n_rows, 3)))


def test_profile_matrix_keeps_zero_sums_and_skips_empty_rows():
    person, column = np.array([2, 0, 2, 2], np.int32), np.array([1, 4, 1, 3], np.int32)
    got = run_profile_matrix(person, column, np.array([0.0, 2.0, 0.0, 5.0]), None, 4, 5)
    assert got.indptr.tolist() == [0, 1, 1, 3, 3] and got.indices.tolist() == [4, 1, 3]
    assert got.data.tolist() == [2.0, 0.0, 5.0]


def test_profile_matrix_of_no_events_is_empty():
    empty = np.zeros(0, np.int32)
    got = run_profile_matrix(empty, empty, np.zeros(0), None, 4, 5)
    assert_same_csr(got, input_order_profile_matrix(empty, empty, np.zeros(0), (4, 5)))


@pytest.mark.parametrize("n_columns", [64, 4096, 4097])
def test_profile_matrix_rows_over_every_column(n_columns):
    # Every column of a row touched, several times, in a shuffled order: the bitmap's last word, full rows
    # and the listed path with rows longer than its insertion sort handles.
    rng = np.random.default_rng(n_columns)
    column = rng.permutation(np.tile(np.arange(n_columns, dtype=np.int32), 3))
    person = np.zeros(column.size, np.int32)
    values = rng.random(column.size) * 10.0 ** rng.integers(-8, 8, column.size)
    got = run_profile_matrix(person, column, values, None, 1, n_columns)
    assert_same_csr(got, input_order_profile_matrix(person, column, values, (1, n_columns)))


@pytest.mark.parametrize("n_columns", [1, 2, 2**20, 2**28])
def test_profile_matrix_packs_row_and_column_for_any_number_of_columns(n_columns):
    # Row-in-block and local column share one int32 in the kernel's first pass; the scratch row covers the
    # columns the categories map to, not the whole range.
    rng = np.random.default_rng(n_columns)
    n_rows, n = 5000, 60_000
    person = rng.integers(0, n_rows, n).astype(np.int32)
    column = np.minimum(rng.integers(0, 40, n) * (n_columns // 40 + 1), n_columns - 1).astype(np.int32)
    values = rng.random(n)
    kept = np.bincount(person, minlength=n_rows)
    column_of = np.array([0, n_columns - 1], dtype=np.int32)
    category = (column == n_columns - 1).astype(np.int32)
    got = profile_matrix(person, category, column_of, values, None, kept, n_columns)
    want = input_order_profile_matrix(person, column_of[category], values, (n_rows, n_columns))
    assert_same_csr(got, want)
    if n_columns <= 2**20:  # 40 columns spread over the range (a column table of 2**28 would take 1 GB)
        got = run_profile_matrix(person, column, values, None, n_rows, n_columns)
        assert_same_csr(got, input_order_profile_matrix(person, column, values, (n_rows, n_columns)))


def test_profile_matrix_rows_in_many_blocks():
    # 6000 rows of 40 events on 3 columns: many blocks of rows, each row's duplicates summed in input order.
    rng = np.random.default_rng(3)
    n_rows = 6000
    person = rng.permutation(np.repeat(np.arange(n_rows, dtype=np.int32), 40))
    column = rng.integers(0, 3, person.size).astype(np.int32)
    values = rng.random(person.size) * 10.0 ** rng.integers(-8, 8, person.size)
    got = run_profile_matrix(person, column, values, None, n_rows, 3)
    assert_same_csr(got, input_order_profile_matrix(person, column, values, (n_rows, 3)))


# --- decay ------------------------------------------------------------------------------------------------
@given(ages=st.lists(st.integers(-10**6, 10**10), max_size=50), half_life=st.floats(1e-3, 1e4))
def test_decayed_weights_equal_the_numpy_expression(ages, half_life):
    window_end = 1_790_000_000
    ts = window_end - np.array(ages, dtype=np.int64)
    weight = np.linspace(0.0, 3.0, ts.size)
    age = np.maximum(window_end - ts, 0).astype(np.float64)
    want = weight * libm_exp2(-age / (half_life * 86_400))
    np.testing.assert_array_equal(decayed_weights(ts, weight, window_end, half_life), want, strict=True)


# --- build_profiles end to end ------------------------------------------------------------------------------
def reference_build_profiles(eligible, *, half_life_days, level, cap):
    """``build_profiles`` in numpy: filter, decay, each cell summed in input order."""
    from adtarget.profiles._profiles import recent_events_mask

    safe = eligible.safe_taxonomy
    columns = level_columns(safe, level)
    person, ts, category, weight = eligible.person, eligible.ts, eligible.category, eligible.weight
    keep = recent_events_mask(person, ts, category, weight, cap)
    if keep is not None:
        person, ts, category, weight = person[keep], ts[keep], category[keep], weight[keep]
    if math.isinf(half_life_days):
        values = weight.astype(np.float64)
    else:
        age = np.maximum(int(eligible.window_end) - ts, 0).astype(np.float64)
        values = weight * libm_exp2(-age / (half_life_days * 86_400))
    column = column_of_node(safe, columns, level)[category]
    return input_order_profile_matrix(person, column, values, (eligible.persons.size, columns.size))


@pytest.fixture(scope="module")
def heavy_eligible(taxonomy):
    safe = safe_taxonomy(taxonomy)
    return eligible_events(safe, random_events(safe, n_persons=40, n_events=6000, seed=5, tie_share=0.5))


@pytest.mark.parametrize("level", ["node", "tier1"])
@pytest.mark.parametrize(("half_life", "cap"), [(30.0, 1000), (7.0, 60), (math.inf, 3), (30.0, None)])
def test_build_profiles_equals_the_numpy_reference_bit_for_bit(heavy_eligible, level, half_life, cap):
    got = build_profiles(heavy_eligible, level=level, half_life_days=half_life, max_events_per_person=cap)
    want = reference_build_profiles(heavy_eligible, half_life_days=half_life, level=level, cap=cap)
    assert_same_csr(got.matrix, want)


def lexsort_dropped(person, ts, category, weight, cap) -> np.ndarray:
    """Events beyond each person's ``cap`` first by ``np.lexsort((category, -weight, -ts, person))``, sorted."""
    order = np.lexsort((category, -weight, -ts, person))
    sorted_person = person[order]
    rank = np.arange(order.size) - np.searchsorted(sorted_person, sorted_person)
    return np.sort(order[rank >= cap])


capped = st.integers(0, 2**32 - 1).flatmap(lambda seed: st.tuples(
    st.just(seed), st.integers(1, 5), st.integers(0, 300), st.integers(1, 40), st.integers(1, 50)))


@given(case=capped)
def test_dropped_events_equal_the_lexsort_ranking(case):
    # Few timestamps, weights and categories: many events tie on some or all keys (ties go by input order).
    seed, n_persons, n, n_times, cap = case
    rng = np.random.default_rng(seed)
    person = rng.integers(0, n_persons, n).astype(np.int32)
    ts = 1_790_000_000 - rng.integers(0, n_times, n).astype(np.int64)
    category = rng.integers(0, 4, n).astype(np.int32)
    weight = rng.choice([0.0, 0.5, 1.0, 2.0], n)
    counts = np.bincount(person, minlength=n_persons)
    got = dropped_events(person, ts, category, weight, cap, counts)
    want = lexsort_dropped(person, ts, category, weight, cap)
    if got is None:
        assert want.size == 0
    else:
        np.testing.assert_array_equal(got, want, strict=True)


@pytest.mark.parametrize("cap", [1, 999, 1000])
def test_dropped_events_of_one_person_all_tied(cap):
    n = 1000
    person, ts = np.zeros(n, np.int32), np.full(n, 1_790_000_000, np.int64)
    category, weight = np.zeros(n, np.int32), np.ones(n)
    got = dropped_events(person, ts, category, weight, cap, np.bincount(person))
    assert (got is None) if cap == n else np.array_equal(got, np.arange(cap, n))


@given(case=events, half_life=st.floats(1e-3, 1e4) | st.just(math.inf))
def test_profile_matrix_decays_as_decayed_weights(case, half_life):
    seed, n_rows, n_columns, n, _ = case
    rng = np.random.default_rng(seed)
    person = rng.integers(0, n_rows, n).astype(np.int32)
    column = rng.integers(0, n_columns, n).astype(np.int32)
    ts = 1_790_000_000 - rng.integers(-10**5, 10**8, n)
    weight = rng.choice([0.0, 0.5, 1.0, 3.0], n) * rng.random(n)
    keep = rng.random(n) < 0.8
    kept = np.bincount(person[keep], minlength=n_rows)
    got = profile_matrix(person, column, np.arange(n_columns, dtype=np.int32), weight, np.flatnonzero(~keep), kept,
                         n_columns, decay=(ts, 1_790_000_000, half_life))
    values = decayed_weights(ts, weight, 1_790_000_000, half_life)
    assert_same_csr(got, run_profile_matrix(person, column, values, keep, n_rows, n_columns))


@given(row=st.lists(st.integers(0, 9), max_size=80))
def test_count_rows_equals_bincount(row):
    row = np.array(row, dtype=np.int32)
    counts = np.zeros(10, dtype=np.intp)
    kernels.count_rows(row, counts)
    np.testing.assert_array_equal(counts, np.bincount(row, minlength=10), strict=True)
