"""Profile kernels against scipy: the std::sort port, the CSR build by counting sort, the decay exponent.

The reference for every kernel is the scipy/numpy formulation ``build_profiles`` used before the kernels
(COO -> CSR with duplicates summed, ``np.exp2`` of the clipped ages): results must be equal bit for bit, the
order of summing duplicate entries included.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _segment_fixtures import eligible_events, random_events, safe_taxonomy
from hypothesis import given
from hypothesis import strategies as st
from scipy import sparse

from adtarget._kernels import _profiles as kernels
from adtarget._profiles import build_profiles, column_of_node, decayed_weights, level_columns, profile_matrix


def scipy_sort(keys: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One row sorted by scipy's ``csr_sort_indices`` (libstdc++ ``std::sort`` on (column, value) pairs)."""
    m = sparse.csr_matrix((vals.copy(), keys.copy(), np.array([0, keys.size])), shape=(1, int(keys.max(initial=0)) + 1))
    m.has_sorted_indices = False
    m.sort_indices()
    return m.indices, m.data


def scipy_profile_matrix(person, column, values, shape) -> sparse.csr_matrix:
    """The formulation before the kernels: COO -> CSR, duplicates summed."""
    matrix = sparse.coo_matrix((values, (person, column)), shape=shape, dtype=np.float64).tocsr()
    matrix.sum_duplicates()
    return matrix


def assert_same_csr(got: sparse.csr_matrix, want: sparse.csr_matrix) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype
    for name in ("indptr", "indices", "data"):
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype, name
        np.testing.assert_array_equal(a, b, err_msg=name, strict=True)
    assert got.has_canonical_format


def killer_keys(n: int) -> tuple[np.ndarray, int]:
    """Keys that drive libstdc++'s introsort into its heapsort, and how many ranges went to the heapsort.

    McIlroy's adversary on a Python port of the introsort loop: items start as "gas" (equal, unknown); a
    comparison of two gas items freezes one to the next solid value, so pivots are always among the smallest
    and the depth limit is reached. The keys left as gas stay equal: the heapsort orders those ties.
    """
    gas, val, a = n, [n] * n, list(range(n))
    state = {"solid": 0, "candidate": 0, "heapsorts": 0}

    def less(x: int, y: int) -> bool:
        if val[x] == gas and val[y] == gas:
            z = x if x == state["candidate"] else y
            val[z], state["solid"] = state["solid"], state["solid"] + 1
        if val[x] == gas:
            state["candidate"] = x
        elif val[y] == gas:
            state["candidate"] = y
        return val[x] < val[y]

    def median_to_first(r: int, x: int, y: int, z: int) -> None:
        if less(a[x], a[y]):
            m = y if less(a[y], a[z]) else (z if less(a[x], a[z]) else x)
        else:
            m = x if less(a[x], a[z]) else (z if less(a[y], a[z]) else y)
        a[r], a[m] = a[m], a[r]

    def partition(f: int, last: int, p: int) -> int:
        while True:
            while less(a[f], a[p]):
                f += 1
            last -= 1
            while less(a[p], a[last]):
                last -= 1
            if not f < last:
                return f
            a[f], a[last] = a[last], a[f]
            f += 1

    def loop(first: int, last: int, depth: int) -> None:
        while last - first > 16:
            if depth == 0:
                state["heapsorts"] += 1
                return
            depth -= 1
            median_to_first(first, first + 1, first + (last - first) // 2, last - 1)
            cut = partition(first + 1, last, first)
            loop(cut, last, depth)
            last = cut

    loop(0, n, 2 * (n.bit_length() - 1))
    return np.array(val, dtype=np.int32), state["heapsorts"]


# --- std::sort --------------------------------------------------------------------------------------------
@given(keys=st.lists(st.integers(0, 6), max_size=300), seed=st.integers(0, 2**32 - 1))
def test_stl_sort_pairs_equals_scipy_csr_sort_indices(keys, seed):
    keys = np.array(keys, dtype=np.int32)
    vals = np.random.default_rng(seed).random(keys.size)
    want_keys, want_vals = scipy_sort(keys, vals)
    got_keys, got_vals = keys.copy(), vals.copy()
    kernels.stl_sort_pairs(got_keys, got_vals, 0, keys.size)
    np.testing.assert_array_equal(got_keys, want_keys)
    np.testing.assert_array_equal(got_vals, want_vals)  # equal keys in std::sort's (unstable) order


@pytest.mark.parametrize("n", [0, 1, 2, 16, 17, 33, 1000, 5000])
@pytest.mark.parametrize("kind", ["random", "sorted", "reversed", "equal", "killer"])
def test_stl_sort_pairs_edge_cases_equal_scipy(n, kind):
    rng = np.random.default_rng(n)
    keys = {"random": rng.integers(0, 50, n), "sorted": np.sort(rng.integers(0, 5, n)),
            "reversed": np.arange(n)[::-1] // 3, "equal": np.full(n, 7),
            "killer": killer_keys(n)[0] if n else np.zeros(0)}[kind].astype(np.int32)
    vals = np.arange(n, dtype=np.float64)  # values name the original slots: the order is checked exactly
    got_keys, got_vals = keys.copy(), vals.copy()
    kernels.stl_sort_pairs(got_keys, got_vals, 0, n)
    want_keys, want_vals = scipy_sort(keys, vals)
    np.testing.assert_array_equal(got_keys, want_keys)
    np.testing.assert_array_equal(got_vals, want_vals)


@pytest.mark.parametrize("n", [100, 1000])
def test_killer_keys_reach_the_heapsort(n):
    keys, heapsorts = killer_keys(n)
    assert heapsorts == 1 and np.unique(keys).size < n // 2  # many equal keys left for the heapsort


def test_stl_sort_pairs_sorts_a_slice_only():
    keys, vals = np.array([9, 3, 2, 1, 0], np.int32), np.arange(5.0)
    kernels.stl_sort_pairs(keys, vals, 1, 4)
    np.testing.assert_array_equal(keys, [9, 1, 2, 3, 0])
    np.testing.assert_array_equal(vals, [0.0, 3.0, 2.0, 1.0, 4.0])


# --- CSR build --------------------------------------------------------------------------------------------
def run_profile_matrix(person, column, values, keep, n_rows, n_columns) -> sparse.csr_matrix:
    kept = np.bincount(person if keep is None else person[keep], minlength=n_rows)
    return profile_matrix(person, column, np.arange(n_columns, dtype=np.int32), values, keep, kept, n_columns)


events = st.integers(0, 2**32 - 1).flatmap(lambda seed: st.tuples(
    st.just(seed), st.integers(1, 6), st.integers(1, 9), st.integers(0, 400), st.sampled_from(
        ["random", "sorted rows", "one row", "keep"])))


@given(case=events)
def test_profile_matrix_equals_scipy_coo_to_csr(case):
    seed, n_rows, n_columns, n, kind = case
    rng = np.random.default_rng(seed)
    person = rng.integers(0, 1 if kind == "one row" else n_rows, n).astype(np.int32)
    column = rng.integers(0, n_columns, n).astype(np.int32)
    if kind == "sorted rows":  # scipy then skips its (unstable) sort: duplicates summed in event order
        order = np.lexsort((column, person))
        person, column = person[order], column[order]
    values = rng.random(n) * 10.0 ** rng.integers(-8, 8, n)
    keep = rng.random(n) < 0.7 if kind == "keep" else None
    got = run_profile_matrix(person, column, values, keep, n_rows, n_columns)
    sel = slice(None) if keep is None else keep
    assert_same_csr(got, scipy_profile_matrix(person[sel], column[sel], values[sel], (n_rows, n_columns)))


@pytest.mark.parametrize("n_rows", [0, 1, 300, 5000])
def test_profile_matrix_edge_cases_equal_scipy(n_rows):
    rng = np.random.default_rng(n_rows)
    n = 20 * n_rows
    person = np.sort(rng.integers(0, max(n_rows, 1), n)).astype(np.int32)[::-1].copy()
    column = rng.integers(0, 3, n).astype(np.int32)
    values = np.where(rng.random(n) < 0.1, np.finfo(np.float64).max, rng.random(n))  # sums overflow to inf
    values[rng.random(n) < 0.1] = 0.0  # zero sums stay stored, as scipy keeps them
    got = run_profile_matrix(person, column, values, None, n_rows, 3)
    assert_same_csr(got, scipy_profile_matrix(person, column, values, (n_rows, 3)))


def test_profile_matrix_of_no_events_is_empty():
    empty = np.zeros(0, np.int32)
    got = run_profile_matrix(empty, empty, np.zeros(0), None, 4, 5)
    assert_same_csr(got, scipy_profile_matrix(empty, empty, np.zeros(0), (4, 5)))


# --- decay ------------------------------------------------------------------------------------------------
@given(ages=st.lists(st.integers(-10**6, 10**10), max_size=50), half_life=st.floats(1e-3, 1e4))
def test_decayed_weights_equal_the_numpy_expression(ages, half_life):
    window_end = 1_790_000_000
    ts = window_end - np.array(ages, dtype=np.int64)
    weight = np.linspace(0.0, 3.0, ts.size)
    age = np.maximum(window_end - ts, 0).astype(np.float64)
    want = weight * np.exp2(-age / (half_life * 86_400))
    np.testing.assert_array_equal(decayed_weights(ts, weight, window_end, half_life), want, strict=True)


# --- build_profiles end to end ------------------------------------------------------------------------------
def scipy_build_profiles(eligible, *, half_life_days, level, cap):
    """``build_profiles`` as written before the kernels (filter, decay, COO -> CSR)."""
    from adtarget._profiles import recent_events_mask

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
        values = weight * np.exp2(-age / (half_life_days * 86_400))
    column = column_of_node(safe, columns, level)[category]
    return scipy_profile_matrix(person, column, values, (eligible.persons.size, columns.size))


@pytest.fixture(scope="module")
def heavy_eligible(taxonomy):
    safe = safe_taxonomy(taxonomy)
    return eligible_events(safe, random_events(safe, n_persons=40, n_events=6000, seed=5, tie_share=0.5))


@pytest.mark.parametrize("level", ["node", "tier1"])
@pytest.mark.parametrize(("half_life", "cap"), [(30.0, 1000), (7.0, 60), (math.inf, 3), (30.0, None)])
def test_build_profiles_equals_the_scipy_formulation_bit_for_bit(heavy_eligible, level, half_life, cap):
    got = build_profiles(heavy_eligible, level=level, half_life_days=half_life, max_events_per_person=cap)
    want = scipy_build_profiles(heavy_eligible, half_life_days=half_life, level=level, cap=cap)
    assert_same_csr(got.matrix, want)


@given(person=st.lists(st.integers(0, 5), max_size=60), flags=st.lists(st.booleans(), min_size=6, max_size=6))
def test_events_of_equals_flatnonzero(person, flags):
    person, flagged = np.array(person, dtype=np.int32), np.array(flags)
    want = np.flatnonzero(flagged[person])
    got = np.empty(want.size, dtype=np.int64)
    kernels.events_of(person, flagged, got)
    np.testing.assert_array_equal(got, want, strict=True)


@pytest.mark.parametrize("unsorted_row", [None, 0, 2999, 5999])
def test_profile_matrix_sorts_every_row_or_none_as_scipy(unsorted_row):
    # Rows of 40 events on 3 columns, each row sorted except one: scipy then sorts all rows (std::sort
    # reorders equal columns of a sorted row of more than 16), or none when all are sorted. Many blocks.
    rng = np.random.default_rng(3)
    n_rows = 6000
    person = np.repeat(np.arange(n_rows, dtype=np.int32), 40)
    column = np.sort(rng.integers(0, 3, (n_rows, 40)), axis=1).astype(np.int32)
    if unsorted_row is not None:
        column[unsorted_row] = column[unsorted_row][::-1]
    column = column.ravel()
    values = rng.random(person.size) * 10.0 ** rng.integers(-8, 8, person.size)
    got = run_profile_matrix(person, column, values, None, n_rows, 3)
    assert_same_csr(got, scipy_profile_matrix(person, column, values, (n_rows, 3)))


@pytest.mark.parametrize("n_columns", [1, 2, 2**20, 2**28])
def test_profile_matrix_packs_row_and_column_for_any_number_of_columns(n_columns):
    # Row-in-block and column share one int32 in the kernel's first pass: wide columns mean smaller blocks.
    rng = np.random.default_rng(n_columns)
    n_rows, n = 5000, 60_000
    person = rng.integers(0, n_rows, n).astype(np.int32)
    column = np.minimum(rng.integers(0, 40, n) * (n_columns // 40 + 1), n_columns - 1).astype(np.int32)
    values = rng.random(n)
    kept = np.bincount(person, minlength=n_rows)
    column_of = np.array([0, n_columns - 1], dtype=np.int32)  # the table's largest column sets the packing
    category = (column == n_columns - 1).astype(np.int32)
    got = profile_matrix(person, category, column_of, values, None, kept, n_columns)
    want = scipy_profile_matrix(person, column_of[category], values, (n_rows, n_columns))
    assert_same_csr(got, want)
    if n_columns <= 2**20:  # 40 columns spread over the range (a column table of 2**28 would take 1 GB)
        got = run_profile_matrix(person, column, values, None, n_rows, n_columns)
        assert_same_csr(got, scipy_profile_matrix(person, column, values, (n_rows, n_columns)))


@given(row=st.lists(st.integers(0, 9), max_size=80))
def test_count_rows_equals_bincount(row):
    row = np.array(row, dtype=np.int32)
    counts = np.zeros(10, dtype=np.intp)
    kernels.count_rows(row, counts)
    np.testing.assert_array_equal(counts, np.bincount(row, minlength=10), strict=True)
