"""The compiled ingestion kernels against plain numpy references, on random input and on the edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import adtarget.events._person_ids as person_ids_module
from adtarget.events import _factorize_kernels as kernels
from adtarget.events._person_ids import PersonIds, _factorized

I64 = np.iinfo(np.int64)
EXTREMES = [int(I64.min), int(I64.min) + 1, -1, 0, 1, int(I64.max) - 1, int(I64.max)]
ids = st.lists(st.one_of(st.integers(int(I64.min), int(I64.max)), st.sampled_from(EXTREMES),
                         st.integers(-3, 3)), max_size=300)


def _factorize(keys: np.ndarray, n_chunks: int = 1, first_bits: int | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """The compiled path end to end: ``(uniques sorted, codes into them)`` like ``np.unique``; ``first_bits``
    forces a small first table (it then grows many times)."""
    chunks = np.array_split(keys, n_chunks) if keys.size else [keys]
    saved = person_ids_module._MAX_FIRST_TABLE_BITS
    if first_bits is not None:
        person_ids_module._MAX_FIRST_TABLE_BITS = first_bits
    try:
        result = _factorized(chunks)
    finally:
        person_ids_module._MAX_FIRST_TABLE_BITS = saved
    assert result.complete and result.missing is None
    order = np.argsort(result.uniques, kind="stable")
    rank = np.empty(order.size, dtype=np.int32)
    rank[order] = np.arange(order.size, dtype=np.int32)
    return result.uniques[order], result.row_codes(rank)


def _check_against_unique(keys: np.ndarray, **kw: int) -> None:
    uniques, codes = _factorize(keys, **kw)
    expected, inverse = np.unique(keys, return_inverse=True)
    np.testing.assert_array_equal(uniques, expected)
    assert codes.dtype == np.int32
    np.testing.assert_array_equal(codes, inverse.astype(np.int32))


@given(ids, st.integers(1, 4), st.sampled_from([None, 1, 2, 3, 10]))
def test_factorize_equals_numpy_unique(values, n_chunks, first_bits):
    _check_against_unique(np.array(values, dtype=np.int64), n_chunks=n_chunks, first_bits=first_bits)


@pytest.mark.parametrize("keys", [
    np.zeros(0, dtype=np.int64),
    np.array([I64.max], dtype=np.int64),
    np.full(1000, I64.min, dtype=np.int64),
    np.arange(5000, dtype=np.int64) * -(2**40),
    np.repeat(np.array(EXTREMES, dtype=np.int64), 3),
], ids=["empty", "one", "all-equal", "all-distinct", "extremes"])
def test_factorize_edge_cases(keys):
    for first_bits in (1, 2, 10, None):
        _check_against_unique(keys, first_bits=first_bits)


def test_factorize_grows_its_table_and_keeps_first_appearance_order():
    rng = np.random.default_rng(7)
    keys = rng.integers(I64.min, I64.max, 20_000, dtype=np.int64)
    keys = np.concatenate([keys, keys[::-1]])
    result = _factorized([keys[:7_000], keys[7_000:]])  # the first table (2**12 slots) doubles 4 times
    np.testing.assert_array_equal(result.uniques[result.codes], keys)
    np.testing.assert_array_equal(result.uniques, keys[:20_000])


def test_factorize_rows_stops_before_a_key_that_does_not_fit():
    table = np.full(2 * 8, -1, dtype=np.int64)
    codes = np.full(4, -7, dtype=np.int32)
    uniques = np.empty(2, dtype=np.int64)
    keys = np.array([5, 9, 5, 4], dtype=np.int64)
    assert kernels.factorize_rows(keys, table, codes, uniques, 0) == (3, 2)
    np.testing.assert_array_equal(codes, [0, 1, 0, -7])
    np.testing.assert_array_equal(uniques, [5, 9])


narrow_ids = st.lists(st.one_of(st.integers(0, 2**32 - 2), st.integers(0, 40), st.sampled_from([0, 2**32 - 2])),
                      max_size=300)


@given(narrow_ids, narrow_ids, st.sampled_from([-1, 2**32 - 1, 2**32, int(I64.min), int(I64.max)]),
       st.integers(1, 3), st.sampled_from([None, 1, 3]))
def test_factorize_moves_from_narrow_to_wide_slots(before, after, wide, n_chunks, first_bits):
    """Ids that fit the narrow table, then one that does not (the table becomes pairs), then more."""
    _check_against_unique(np.array(before, dtype=np.int64), n_chunks=n_chunks, first_bits=first_bits)
    keys = np.array([*before, wide, *after], dtype=np.int64)
    _check_against_unique(keys, n_chunks=n_chunks, first_bits=first_bits)


def test_factorize_rows_narrow_stops_before_a_key_out_of_its_range():
    table = np.full(8, -1, dtype=np.int64)
    codes = np.full(4, -7, dtype=np.int32)
    uniques = np.empty(4, dtype=np.int64)
    keys = np.array([5, 2**32 - 2, 5, 2**32 - 1], dtype=np.int64)
    assert kernels.factorize_rows_narrow(keys, table, codes, uniques, 0) == (3, 2)
    np.testing.assert_array_equal(codes, [0, 1, 0, -7])
    assert kernels.factorize_rows_narrow(keys[:1], table, codes, uniques[:1], 1) == (1, 1)  # known: no room needed


@given(st.sets(st.integers(0, 2**32 - 2), max_size=200), st.integers(0, 3))
def test_rehash_narrow_then_factorize_finds_every_key(keys, extra_bits):
    uniques = np.array(sorted(keys), dtype=np.int64)
    slots = 1 << (max(1, 2 * uniques.size - 1).bit_length() + extra_bits)
    table = np.full(slots, -1, dtype=np.int64)
    kernels.rehash_narrow(table, uniques)
    codes = np.empty(uniques.size, dtype=np.int32)
    assert kernels.factorize_rows_narrow(uniques[::-1].copy(), table, codes, uniques.copy(), uniques.size) == (
        uniques.size, uniques.size)
    np.testing.assert_array_equal(codes, np.arange(uniques.size)[::-1])


@given(st.sets(st.integers(int(I64.min), int(I64.max)), max_size=200), st.integers(0, 3))
def test_rehash_then_factorize_finds_every_key(keys, extra_bits):
    uniques = np.array(sorted(keys), dtype=np.int64)
    slots = 1 << (max(1, 2 * uniques.size - 1).bit_length() + extra_bits)
    table = np.full(2 * slots, -1, dtype=np.int64)
    kernels.rehash(table, uniques)
    codes = np.empty(uniques.size, dtype=np.int32)
    assert kernels.factorize_rows(uniques[::-1].copy(), table, codes, uniques.copy(), uniques.size) == (
        uniques.size, uniques.size)
    np.testing.assert_array_equal(codes, np.arange(uniques.size)[::-1])


@given(st.lists(st.integers(-2, 9), max_size=300), st.integers(0, 8))
def test_relabel_equals_numpy_take(codes, size):
    table = np.arange(size, dtype=np.int32) * 3 + 1
    array = np.array(codes, dtype=np.int32)
    inside = bool(np.all((array >= 0) & (array < size)))
    work = array.copy()
    assert kernels.relabel(work, table) == inside
    if inside:
        np.testing.assert_array_equal(work, table[array])


def test_person_ids_row_codes_of_the_general_form():
    ids = PersonIds(uniques=np.array([5, 9]), codes=np.array([1, 0, 1], dtype=np.int32))
    np.testing.assert_array_equal(ids.row_codes(np.array([7, 3], dtype=np.int32)), [3, 7, 3])


@given(st.lists(st.integers(0, 2**64 - 1), max_size=300), st.booleans())
def test_argsort_uint64_equals_numpy_stable(values, small):
    array = np.array(values, dtype=np.uint64)
    if small:  # many ties, and every value in the same top bits
        array = array % np.uint64(5)
    np.testing.assert_array_equal(kernels.argsort_uint64(array), np.argsort(array, kind="stable"))


@pytest.mark.parametrize("array", [
    np.zeros(0, dtype=np.uint64),
    np.array([2**64 - 1], dtype=np.uint64),
    np.array([2**64 - 1, 0, 2**63, 2**64 - 1, 0], dtype=np.uint64),
    np.arange(3000, dtype=np.uint64)[::-1].copy(),  # one long run of tied top bits
    np.random.default_rng(3).integers(0, 2**64 - 1, 50_000, dtype=np.uint64),
], ids=["empty", "one", "extremes", "long-tie-run", "random"])
def test_argsort_uint64_edge_cases(array):
    np.testing.assert_array_equal(kernels.argsort_uint64(array), np.argsort(array, kind="stable"))


codes_and_reasons = st.integers(1, 6).flatmap(lambda size: st.tuples(
    st.lists(st.integers(-1, size - 1), max_size=200),
    st.lists(st.integers(-100, 100), min_size=size + 1, max_size=size + 1),
    st.lists(st.integers(0, 127), min_size=size + 1, max_size=size + 1),
    st.integers(0, 127),
))


@given(codes_and_reasons, st.sampled_from(["drawn", "values clean", "all clean"]))
def test_map_codes_equals_numpy_gather(case, cleanliness):
    codes, values, reasons, start = case
    codes_a = np.array(codes, dtype=np.int32)
    values_a, reasons_a = np.array(values, dtype=np.int16), np.array(reasons, dtype=np.int8)
    if cleanliness != "drawn":  # every value's reason clean (the common case): its own loop
        reasons_a[:-1 if cleanliness == "values clean" else None] = 127
    out = np.empty(codes_a.size, dtype=np.int16)
    reason = np.full(codes_a.size, start, dtype=np.int8)
    assert kernels.map_codes(codes_a, values_a, reasons_a, out, reason)
    np.testing.assert_array_equal(out, values_a[codes_a])  # -1 picks the last entry, the null's
    np.testing.assert_array_equal(reason, np.minimum(start, reasons_a[codes_a]))


def test_map_codes_refuses_out_of_range_codes():
    table = np.array([1, 2, 3], dtype=np.int16)  # two values and the null's
    reason = np.zeros(1, dtype=np.int8)
    for reasons in (table.astype(np.int8), np.array([127, 127, 3], dtype=np.int8)):  # both loops
        for bad in (2, 3, 2**31 - 1):
            out = np.empty(1, dtype=np.int16)
            assert not kernels.map_codes(np.array([bad], dtype=np.int64), table, reasons, out, reason)


@given(st.lists(st.sampled_from([int(I64.min), -5, 0, 99, 100, 101, 200, int(I64.max)]), max_size=100),
       st.lists(st.integers(0, 20), max_size=100))
def test_copy_timestamps_flags_like_numpy(ts, start):
    ts_a = np.array(ts, dtype=np.int64)
    reason = np.resize(np.array(start or [20], dtype=np.int8), ts_a.size)
    expected = np.minimum(reason, np.where(ts_a < 100, 5, np.where(ts_a > 150, 6, 127)))
    out = np.empty_like(ts_a)
    kernels.copy_timestamps(ts_a, out, reason, 100, 150, 5, 6)
    np.testing.assert_array_equal(out, ts_a)
    np.testing.assert_array_equal(reason, expected)


@given(st.lists(st.sampled_from([np.nan, np.inf, -np.inf, -1.0, -0.0, 0.0, 2.5, 1e308]), max_size=100),
       st.integers(0, 20))
def test_copy_weights_flags_like_numpy(weights, start):
    w = np.array(weights, dtype=np.float64)
    reason = np.full(w.size, start, dtype=np.int8)
    finite = np.isfinite(w)
    expected = np.minimum(reason, np.where(~finite, 9, np.where(w < 0, 8, 127)))
    out = np.empty_like(w)
    kernels.copy_weights(w, out, reason, 8, 9)
    np.testing.assert_array_equal(out, w)
    np.testing.assert_array_equal(reason, expected)


@given(st.lists(st.integers(int(I64.min), int(I64.max)), min_size=1, max_size=200),
       st.sampled_from([np.int8, np.int32, np.int64]))
def test_index_range_equals_numpy_min_max(values, dtype):
    info = np.iinfo(dtype)
    array = np.clip(np.array(values, dtype=object), info.min, info.max).astype(dtype)
    assert kernels.index_range(array) == (int(array.min()), int(array.max()))
