"""Pseudonymizer: reference vectors against hashlib, SipHash-2-4 against the published vectors, canonical ids,
missing ids, collisions, key handling (never in repr, messages or errors), pickling, hex helpers."""

from __future__ import annotations

import hashlib
import pickle
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

import adtarget.events._pseudonym as pseudonym_module
from adtarget.events import Pseudonymizer
from adtarget.events._pseudonym import ENV_VAR, hex_to_pseudonyms, pseudonyms_to_hex
from adtarget.events._siphash import siphash24_packed
from adtarget.exceptions import LedgerError, ParameterError, SchemaError

KEY = bytes(range(32))


def blake_ref(key: bytes, raw: int | str) -> int:
    """docs/internals.md, literally: first 8 bytes little-endian of keyed BLAKE2b of the canonical bytes."""
    data = str(raw).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(data, key=key, digest_size=8, person=b"adtarget-pid").digest(), "little")


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & 0xFFFFFFFFFFFFFFFF


def siphash_ref(key: bytes, message: bytes) -> int:
    """Scalar SipHash-2-4 written from the paper, with Python ints."""
    mask = 0xFFFFFFFFFFFFFFFF
    k0, k1 = int.from_bytes(key[:8], "little"), int.from_bytes(key[8:16], "little")
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D, k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573]

    def rounds(n: int) -> None:
        for _ in range(n):
            v[0] = (v[0] + v[1]) & mask
            v[1] = _rotl(v[1], 13) ^ v[0]
            v[0] = _rotl(v[0], 32)
            v[2] = (v[2] + v[3]) & mask
            v[3] = _rotl(v[3], 16) ^ v[2]
            v[0] = (v[0] + v[3]) & mask
            v[3] = _rotl(v[3], 21) ^ v[0]
            v[2] = (v[2] + v[1]) & mask
            v[1] = _rotl(v[1], 17) ^ v[2]
            v[2] = _rotl(v[2], 32)

    full = len(message) // 8 * 8
    blocks = [int.from_bytes(message[i:i + 8], "little") for i in range(0, full, 8)]
    blocks.append(int.from_bytes(message[full:], "little") | ((len(message) & 0xFF) << 56))
    for m in blocks:
        v[3] ^= m
        rounds(2)
        v[0] ^= m
    v[2] ^= 0xFF
    rounds(4)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


# The 64 SipHash-2-4 test vectors of the reference implementation (key 00..0f, message 00..i-1), LE bytes.
_SIP_TEXT = """
310e0edd47db6f72 fd67dc93c539f874 5a4fa9d909806c0d 2d7efbd796666785 b7877127e09427cf 8da699cd64557618
cee3fe586e46c9cb 37d1018bf50002ab 6224939a79f5f593 b0e4a90bdf82009e f3b9dd94c5bb5d7a a7ad6b22462fb3f4
fbe50e86bc8f1e75 903d84c02756ea14 eef27a8e90ca23f7 e545be4961ca29a1 db9bc2577fcc2a3f 9447be2cf5e99a69
9cd38d96f0b3c14b bd6179a71dc96dbb 98eea21af25cd6be c7673b2eb0cbf2d0 883ea3e395675393 c8ce5ccd8c030ca8
94af49f6c650adb8 eab8858ade92e1bc f315bb5bb835d817 adcf6b0763612e2f a5c91da7acaa4dde 716595876650a2a6
28ef495c53a387ad 42c341d8fa92d832 ce7cf2722f512771 e37859f94623f3a7 381205bb1ab0e012 ae97a10fd434e015
b4a31508beff4d31 81396229f0907902 4d0cf49ee5d4dcca 5c73336a76d8bf9a d0a704536ba93e0e 925958fcd6420cad
a915c29bc8067318 952b79f3bc0aa6d4 f21df2e41d4535f9 87577519048f53a9 10a56cf5dfcd9adb eb75095ccd986cd0
51a9cb9ecba312e6 96afadfc2ce666c7 72fe52975a4364ee 5a1645b276d592a1 b274cb8ebf87870a 6f9bb4203de7b381
eaecb2a30b22a87f 9924a43cc1315724 bd838d3aafbf8db7 0b1a2a3265d51aea 135079a3231ce660 932b2846e4d70666
e1915f5cb1eca46c f325965ca16d629f 575ff28e60381be5 724506eb4c328a95
"""
SIP_VECTORS = _SIP_TEXT.split()


@pytest.fixture
def pz() -> Pseudonymizer:
    return Pseudonymizer(KEY)


def test_matches_internals_reference(pz: Pseudonymizer) -> None:
    ids = [0, 1, 123, -7, 2**63 - 1, "abc", "ünïcødé", "0123", "a" * 300]
    got = pz.pseudonymize(np.array(ids, dtype=object))
    assert got.dtype == np.uint64
    assert got.tolist() == [blake_ref(KEY, i) for i in ids]


def test_int_and_decimal_string_agree_in_every_container(pz: Pseudonymizer) -> None:
    expected = [blake_ref(KEY, v) for v in (5, 17, 5)]
    containers = [
        np.array([5, 17, 5]), np.array([5, 17, 5], dtype=np.uint32), np.array(["5", "17", "5"]),
        np.array([5.0, 17.0, 5.0]), [5, "17", 5], ("5", 17, "5"), pd.Series([5, 17, 5]),
        pd.Series(["5", "17", "5"], dtype="string"), pa.array([5, 17, 5]), pa.chunked_array([["5", "17"], ["5"]]),
        np.array([5, "17", 5.0], dtype=object),
    ]
    for ids in containers:
        assert pz.pseudonymize(ids).tolist() == expected, type(ids)


def test_missing_ids_are_masked_not_hashed(pz: Pseudonymizer) -> None:
    ids = np.array([None, "x", "", float("nan"), 7, pd.NA], dtype=object)
    pseudonyms, valid = pz.pseudonymize_with_mask(ids)
    assert valid.tolist() == [False, True, False, False, True, False]
    assert pseudonyms[~valid].tolist() == [0, 0, 0, 0]
    assert pseudonyms[valid].tolist() == [blake_ref(KEY, "x"), blake_ref(KEY, 7)]
    floats, valid_f = pz.pseudonymize_with_mask(np.array([1.0, np.nan]))
    assert valid_f.tolist() == [True, False] and floats[0] == blake_ref(KEY, 1)
    with pytest.raises(SchemaError, match="3 of 4 ids are missing"):
        pz.pseudonymize(["a", None, "", float("nan")])


@pytest.mark.parametrize("ids, match", [
    (np.array([True, False]), "dtype bool"),
    (np.array([1, True], dtype=object), "boolean"),
    (np.array([1.5, 2.0]), "whole numbers"),
    (np.array([2.0**60]), "whole numbers"),
    (np.array([object()], dtype=object), "type object"),
    (np.zeros((2, 2), dtype=np.int64), "one-dimensional"),
    (np.array(["2020-01-01"], dtype="datetime64[D]"), "dtype"),
])
def test_unsupported_ids_are_refused(pz: Pseudonymizer, ids: object, match: str) -> None:
    with pytest.raises(SchemaError, match=match):
        pz.pseudonymize(ids)  # type: ignore[arg-type]


def test_collision_is_detected_without_naming_ids(monkeypatch: pytest.MonkeyPatch, pz: Pseudonymizer) -> None:
    monkeypatch.setattr(pseudonym_module, "_blake2b_many", lambda key, items: np.zeros(len(items), np.uint64))
    with pytest.raises(LedgerError, match="collision.*rotate the key") as err:
        pz.pseudonymize(["alice-1234", "bob-5678"])
    assert "alice" not in str(err.value) and "bob" not in str(err.value)
    assert pz.key_id in str(err.value)
    # the same id twice is not a collision
    assert pz.pseudonymize(["same", "same"]).tolist() == [0, 0]
    for ints in (np.array([7, 8, 9, 10]), np.array([7, 7, 7, 7, 7, 8])):  # hashed per row / factorised
        with pytest.raises(LedgerError, match="collision"):
            pz.pseudonymize(ints)
    assert pz.pseudonymize(np.array([7, 7, 7, 7])).tolist() == [0, 0, 0, 0]


@given(st.sets(st.integers(-(2**63), 2**63 - 1), max_size=60))
def test_sorted_pseudonyms_of_distinct_ints_equal_pseudonymize_sorted(ids: set[int]) -> None:
    pz = Pseudonymizer(KEY)
    array = np.array(sorted(ids), dtype=np.int64)
    order, persons = pz._sorted_pseudonyms(array)
    expected = pz.pseudonymize(array) if array.size else np.zeros(0, np.uint64)
    np.testing.assert_array_equal(order, np.argsort(expected, kind="stable"))
    np.testing.assert_array_equal(persons, np.sort(expected))


@pytest.mark.parametrize("weight", [1.0, -1.0], ids=["all-accepted", "one-quarantined"])
def test_ingest_of_int_ids_detects_a_collision(monkeypatch: pytest.MonkeyPatch, pz: Pseudonymizer,
                                              weight: float) -> None:
    from adtarget.events import ingest

    monkeypatch.setattr(pseudonym_module, "_blake2b_many", lambda key, items: np.zeros(len(items), np.uint64))
    events = {"person_id": np.array([11, 12, 13]), "service": ["video"] * 3, "ts": [1_700_000_000] * 3,
              "category": ["1"] * 3, "weight": [1.0, 1.0, weight]}
    with pytest.raises(LedgerError, match="collision.*rotate the key"):
        ingest(events, pseudonymizer=pz, now=1_800_000_000)


def test_mostly_distinct_ints_hashed_per_row_keep_repeats_consistent(pz: Pseudonymizer) -> None:
    ids = np.array([5, 6, 7, 5, 8, 9, 10, 11])  # mostly distinct: the per-row path
    out = pz.pseudonymize(ids)
    assert out.tolist() == [blake_ref(KEY, i) for i in ids.tolist()]


def test_distinct_canonical_ids_are_hashed_once(monkeypatch: pytest.MonkeyPatch, pz: Pseudonymizer) -> None:
    seen: list[int] = []
    real = pseudonym_module._blake2b_many

    def counting(key: bytes, items: list[bytes]) -> np.ndarray:
        seen.append(len(items))
        return real(key, items)

    monkeypatch.setattr(pseudonym_module, "_blake2b_many", counting)
    pz.pseudonymize(np.array([3, 1, 3, 3, 1, 2] * 1000))
    pz.pseudonymize(np.array([3, "3", "x", "x"], dtype=object))
    assert seen == [3, 2]


@pytest.mark.parametrize("key", [b"short", b"", bytes(65), "a string key" * 3, bytearray(3)])
def test_bad_keys_are_refused(key: object) -> None:
    with pytest.raises(ParameterError, match="key"):
        Pseudonymizer(key)  # type: ignore[arg-type]


def test_bad_algorithm_is_refused() -> None:
    with pytest.raises(ParameterError, match="algorithm"):
        Pseudonymizer(KEY, algorithm="md5")


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, KEY.hex())
    assert Pseudonymizer.from_env() == Pseudonymizer(KEY)
    secret = "zz" + "ab" * 20
    monkeypatch.setenv(ENV_VAR, secret)
    with pytest.raises(ParameterError, match="hexadecimal") as err:
        Pseudonymizer.from_env()
    assert secret not in str(err.value)
    monkeypatch.setenv(ENV_VAR, "abcd")
    with pytest.raises(ParameterError, match="2 bytes"):
        Pseudonymizer.from_env()
    monkeypatch.delenv(ENV_VAR)
    with pytest.raises(ParameterError, match="not set"):
        Pseudonymizer.from_env()


def test_key_never_in_repr_or_str_and_key_id_is_a_stable_fingerprint(pz: Pseudonymizer) -> None:
    for text in (repr(pz), str(pz), f"{pz}"):
        assert KEY.hex() not in text and str(KEY) not in text
        assert pz.key_id in text
    assert len(pz.key_id) == 8 and int(pz.key_id, 16) >= 0
    assert Pseudonymizer(KEY).key_id == pz.key_id
    assert Pseudonymizer(bytes(32)).key_id != pz.key_id
    assert KEY.hex()[:8] != pz.key_id


def test_pickle_round_trip_keeps_pseudonyms(pz: Pseudonymizer) -> None:
    for algorithm in ("blake2b", "siphash24"):
        original = Pseudonymizer(KEY, algorithm=algorithm)
        copy = pickle.loads(pickle.dumps(original))
        assert copy == original and hash(copy) == hash(original) and copy.algorithm == algorithm
        ids = np.arange(50)
        assert np.array_equal(copy.pseudonymize(ids), original.pseudonymize(ids))
    assert pz != Pseudonymizer(KEY, algorithm="siphash24") and pz != "not a pseudonymizer"


def test_siphash_kernel_matches_the_published_vectors() -> None:
    key = bytes(range(16))
    got = siphash24_packed(key, [bytes(range(i)) for i in range(64)])
    expected = [int.from_bytes(bytes.fromhex(v), "little") for v in SIP_VECTORS]
    assert got.tolist() == expected
    assert [siphash_ref(key, bytes(range(i))) for i in range(64)] == expected


def test_siphash_pseudonymizer_uses_a_derived_subkey_and_canonical_bytes() -> None:
    sip = Pseudonymizer(KEY, algorithm="siphash24")
    sub = hashlib.blake2b(key=KEY, digest_size=16, person=b"adtarget-sip").digest()
    ids = [0, 42, -9, 10**19, "x", "0042", "€uro" * 5]
    assert sip.pseudonymize(np.array(ids, dtype=object)).tolist() == [siphash_ref(sub, str(i).encode()) for i in ids]
    assert sip.pseudonymize(np.array([42, 10**18])).tolist() == sip.pseudonymize(["42", str(10**18)]).tolist()
    assert sip.pseudonymize([42])[0] != Pseudonymizer(KEY).pseudonymize([42])[0]


ids_strategy = st.lists(st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(min_size=1, max_size=40)), max_size=40)


@given(ids_strategy, st.sampled_from(["blake2b", "siphash24"]))
def test_vectorised_equals_per_id_reference(ids: list[int | str], algorithm: str) -> None:
    pz = Pseudonymizer(KEY, algorithm=algorithm)
    sub = hashlib.blake2b(key=KEY, digest_size=16, person=b"adtarget-sip").digest()
    expected = [blake_ref(KEY, i) if algorithm == "blake2b" else siphash_ref(sub, str(i).encode()) for i in ids]
    doubled = ids + ids[::-1]
    got = pz.pseudonymize(np.array(doubled, dtype=object))
    assert got.tolist() == expected + expected[::-1]
    ints = [i for i in ids if isinstance(i, int)]
    assert pz.pseudonymize(np.array(ints, dtype=np.int64)).tolist() == [e for i, e in zip(ids, expected)
                                                                          if isinstance(i, int)]


@given(st.lists(st.integers(0, 2**64 - 1), max_size=50))
def test_hex_round_trip(values: list[int]) -> None:
    array = np.array(values, dtype=np.uint64)
    text = pseudonyms_to_hex(array)
    assert text.tolist() == [f"{v:016x}" for v in values]
    assert np.array_equal(hex_to_pseudonyms(text), array)


@pytest.mark.parametrize("bad", [["abc"], ["0123456789abcdeg"], [123], ["0123456789abcdef0"]])
def test_hex_parse_refuses_malformed_values(bad: list[object]) -> None:
    with pytest.raises(SchemaError, match="16-hex-digit"):
        hex_to_pseudonyms(np.array(bad, dtype=object))


def test_pseudonymize_one(pz: Pseudonymizer) -> None:
    assert pz.pseudonymize_one(123) == pz.pseudonymize_one("123") == blake_ref(KEY, 123)
    for bad in ("", None, True, 1.5, b"raw"):
        with pytest.raises(ParameterError, match="person_id"):
            pz.pseudonymize_one(bad)


def test_many_distinct_ids_have_no_collision(pz: Pseudonymizer) -> None:
    ids = np.arange(200_000, dtype=np.int64) * 7919
    out = pz.pseudonymize(ids)
    assert np.unique(out).size == ids.size


@pytest.mark.parametrize("algorithm", ["blake2b", "siphash24"])
def test_every_compiled_path_equals_the_reference(algorithm: str) -> None:
    """Distinct ints (hashed per row), repeated ints (hash table), uint64 above 2**63 in both byte orders,
    numpy ``U``/``S`` arrays (inner NUL kept), object strings with missing values and long ids."""
    pz = Pseudonymizer(KEY, algorithm=algorithm)
    sub = hashlib.blake2b(key=KEY, digest_size=16, person=b"adtarget-sip").digest()

    def ref(raw: object) -> int:
        data = raw if isinstance(raw, bytes) else str(raw).encode("utf-8")
        return blake_ref(KEY, data.decode("utf-8")) if algorithm == "blake2b" else siphash_ref(sub, data)

    big = [2**64 - 1, 2**63, 5, 2**64 - 1]
    cases: list[tuple[Any, list[Any]]] = [
        (np.arange(-50, 50), list(range(-50, 50))),
        (np.array([9, -9, 9, 2**63 - 1, -(2**63)] * 3), [9, -9, 9, 2**63 - 1, -(2**63)] * 3),
        (np.array(big, dtype=np.uint64), big), (np.array(big, dtype=">u8"), big),
        (np.array(big[:3], dtype=np.uint64), big[:3]), (np.array(big[:3], dtype=">u8"), big[:3]),
        (np.array(["a\x00b", "é", "a\x00b"]), ["a\x00b", "é", "a\x00b"]),
        (np.array([b"a\x00b", b"xy"]), [b"a\x00b", b"xy"]),
        (np.array(["x" * 129, "y" * 1000, "x" * 129], dtype=object), ["x" * 129, "y" * 1000, "x" * 129]),
    ]
    for ids, raw in cases:
        assert pz.pseudonymize(ids).tolist() == [ref(r) for r in raw], ids
    nothing, none_valid = pz.pseudonymize_with_mask(np.array([np.nan, np.nan]))
    assert nothing.tolist() == [0, 0] and not none_valid.any()
    pseudonyms, valid = pz.pseudonymize_with_mask(np.array(["q", "", None, "q", "r"], dtype=object))
    assert valid.tolist() == [True, False, False, True, True]
    assert pseudonyms.tolist() == [ref("q"), 0, 0, ref("q"), ref("r")]
