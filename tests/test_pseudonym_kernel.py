"""The numba BLAKE2b kernel (adtarget.events._blake2b_kernels) against hashlib: ints by their decimal string, byte
strings in Arrow's buffer-plus-offsets layout, every length class around the 128-byte block, keys of 16-64
bytes; and the SipHash buffer packing against the list packing."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adtarget.events import _blake2b_kernels as kernel
from adtarget.events._siphash import siphash24_buffers, siphash24_packed

PERSON = b"adtarget-pid"
KEYS = [bytes(range(16)), bytes(range(100, 133)), bytes(range(200, 255)) + bytes(9), b"\xff" * 64]
INT64 = st.integers(-(2**63), 2**63 - 1)
EDGE_INTS = [0, 1, -1, 9, 10, -10, 99, 100, 2**63 - 1, -(2**63), -(2**63) + 1, 10**18, -(10**18), 10**17 - 1]
LENGTHS = [0, 1, 7, 8, 9, 127, 128, 129, 255, 256, 257, 1000]


def reference(key: bytes, message: bytes) -> int:
    digest = hashlib.blake2b(message, key=key, digest_size=8, person=PERSON).digest()
    return int.from_bytes(digest, "little")


def buffers(messages: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(messages) + 1, dtype=np.int64)
    np.cumsum([len(m) for m in messages], out=offsets[1:])
    return np.frombuffer(b"".join(messages), dtype=np.uint8), offsets


def hash_ints(key: bytes, values: np.ndarray) -> list[int]:
    state, key_block = kernel.initial_state(key, PERSON, 8)
    hashed = kernel.blake2b_uint64 if values.dtype == np.uint64 else kernel.blake2b_int64
    return hashed(state, key_block, values).tolist()


def hash_texts(key: bytes, messages: list[bytes]) -> list[int]:
    state, key_block = kernel.initial_state(key, PERSON, 8)
    return kernel.blake2b_buffers(state, key_block, *buffers(messages)).tolist()


@pytest.mark.parametrize("key", KEYS)
def test_int64_edge_values_equal_hashlib(key: bytes) -> None:
    values = np.array(EDGE_INTS * 3, dtype=np.int64)  # more than one batch of lanes, a partial last batch
    assert hash_ints(key, values) == [reference(key, str(v).encode()) for v in values.tolist()]


def test_uint64_edge_values_equal_hashlib() -> None:
    values = np.array([0, 1, 2**63 - 1, 2**63, 2**64 - 1, 10**19, 10**19 - 1], dtype=np.uint64)
    assert hash_ints(KEYS[1], values) == [reference(KEYS[1], str(v).encode()) for v in values.tolist()]


@pytest.mark.parametrize("key", KEYS)
def test_every_length_class_equals_hashlib(key: bytes) -> None:
    messages = [bytes((7 * i + n) % 256 for i in range(n)) for n in LENGTHS]
    messages += ["ünïcødé €".encode(), "🙂".encode() * 40]
    assert hash_texts(key, messages) == [reference(key, m) for m in messages]


def test_empty_inputs_and_offsets_not_starting_at_zero() -> None:
    state, key_block = kernel.initial_state(KEYS[0], PERSON, 8)
    assert kernel.blake2b_int64(state, key_block, np.zeros(0, np.int64)).size == 0
    assert kernel.blake2b_buffers(state, key_block, np.zeros(0, np.uint8), np.zeros(1, np.int64)).size == 0
    data = np.frombuffer(b"xxabcdef", dtype=np.uint8)
    got = kernel.blake2b_buffers(state, key_block, data, np.array([2, 5, 8], dtype=np.int64))
    assert got.tolist() == [reference(KEYS[0], b"abc"), reference(KEYS[0], b"def")]


def test_one_id_and_repeated_ids() -> None:
    assert hash_ints(KEYS[0], np.array([42], np.int64)) == [reference(KEYS[0], b"42")]
    same = hash_texts(KEYS[0], [b"same"] * 70)
    assert len(set(same)) == 1 and same[0] == reference(KEYS[0], b"same")


@settings(max_examples=60, deadline=None)
@given(st.lists(INT64, max_size=100), st.sampled_from(KEYS))
def test_random_int64_equal_hashlib(values: list[int], key: bytes) -> None:
    assert hash_ints(key, np.array(values, dtype=np.int64)) == [reference(key, str(v).encode()) for v in values]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=80), st.binary(max_size=300)), max_size=80), st.sampled_from(KEYS))
def test_random_texts_equal_hashlib(items: list[str | bytes], key: bytes) -> None:
    messages = [i.encode("utf-8", "surrogatepass") if isinstance(i, str) else i for i in items]
    assert hash_texts(key, messages) == [reference(key, m) for m in messages]


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=16, max_size=64), st.lists(st.binary(max_size=200), max_size=40))
def test_random_keys_equal_hashlib(key: bytes, messages: list[bytes]) -> None:
    assert hash_texts(key, messages) == [reference(key, m) for m in messages]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=70), max_size=40))
def test_siphash_buffers_equal_the_list_packing(messages: list[bytes]) -> None:
    key = bytes(range(16))
    data, offsets = buffers(messages)
    assert siphash24_buffers(key, data, offsets).tolist() == siphash24_packed(key, messages).tolist()
