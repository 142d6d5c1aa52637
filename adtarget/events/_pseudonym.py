"""Pseudonymisation: a keyed hash from raw account ids to ``uint64`` pseudonyms (promise P11).

The reference algorithm is keyed BLAKE2b (``digest_size=8``, ``person=b"adtarget-pid"``) of the id's canonical
bytes (int -> decimal string, str -> UTF-8), read little-endian (docs/internals.md), computed by the numba
kernel :mod:`adtarget.events._blake2b_kernels` (equal to ``hashlib``). An opt-in vectorised SipHash-2-4
(``algorithm="siphash24"``) gives different pseudonyms for the same key; ledgers record the algorithm with the
key fingerprint so the two can never be mixed. Only the distinct ids are hashed. Raw ids are never stored,
logged or put in a message. See docs/privacy/pseudonymisation.md.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from adtarget.events._person_ids import PersonIds, person_ids
from adtarget.events._siphash import siphash24_buffers, siphash24_packed
from adtarget.exceptions import LedgerError, ParameterError, SchemaError

__all__ = [
    "pseudonymise",
    "ALGORITHMS",
    "ENV_VAR",
    "Pseudonymizer",
    "factorize",
    "hex_to_pseudonyms",
    "pseudonyms_to_hex",
]

ENV_VAR = "ADTARGET_PSEUDONYM_KEY"
ALGORITHMS: tuple[str, ...] = ("blake2b", "siphash24")
PERSON = b"adtarget-pid"
MIN_KEY_BYTES = 16
MAX_KEY_BYTES = 64  # BLAKE2b's key limit
_MAX_EXACT_FLOAT = 2**53


class Pseudonymizer:
    """Keyed hash from raw account ids (int or str) to ``uint64`` pseudonyms.

    Parameters
    ----------
    key : bytes
        Secret key, 16 to 64 bytes. It never appears in ``repr``, ``str`` or error messages.
    algorithm : {"blake2b", "siphash24"}
        ``"blake2b"`` (default) is the reference of docs/internals.md. ``"siphash24"`` is a vectorised numpy
        SipHash-2-4 keyed with a 16-byte subkey derived from ``key``; it gives different pseudonyms, so data
        made with one cannot be joined with the other (since the compiled BLAKE2b it is no longer faster).

    Notes
    -----
    Instances pickle (Spark ships them to executors) and **the pickle contains the key**: treat it as secret,
    never persist it. ``key_id`` is an 8-hex-digit fingerprint, safe to store and print.
    """

    __slots__ = ("_algorithm", "_key", "_key_id")

    def __init__(self, key: bytes, *, algorithm: str = "blake2b") -> None:
        if not isinstance(key, (bytes, bytearray)):
            raise ParameterError(f"key: must be bytes of length {MIN_KEY_BYTES}..{MAX_KEY_BYTES}; "
                                 f"received {type(key).__name__}")
        if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
            raise ParameterError(f"key: must be {MIN_KEY_BYTES}..{MAX_KEY_BYTES} bytes long; "
                                 f"received {len(key)} bytes")
        if algorithm not in ALGORITHMS:
            raise ParameterError(f"algorithm: must be one of {ALGORITHMS}; received {algorithm!r}")
        self._key = bytes(key)
        self._algorithm = algorithm
        self._key_id = hashlib.blake2b(key=self._key, digest_size=4, person=b"adtarget-kid").hexdigest()

    @classmethod
    def from_env(cls, variable: str = ENV_VAR, *, algorithm: str = "blake2b") -> Pseudonymizer:
        """Build from a hex-encoded key in the environment variable ``variable`` (default
        ``ADTARGET_PSEUDONYM_KEY``)."""
        text = os.environ.get(variable)
        if not text:
            raise ParameterError(f"{variable}: environment variable is not set; expected a hex-encoded key of "
                                 f"{MIN_KEY_BYTES}..{MAX_KEY_BYTES} bytes")
        try:
            key = bytes.fromhex(text.strip())
        except ValueError:
            raise ParameterError(f"{variable}: must be hexadecimal; received {len(text)} characters that are "
                                 "not valid hex (value not shown)") from None
        return cls(key, algorithm=algorithm)

    @property
    def key_id(self) -> str:
        """Non-secret 8-hex-digit fingerprint of the key (keyed BLAKE2b of nothing, another person string)."""
        return self._key_id

    @property
    def algorithm(self) -> str:
        """``"blake2b"`` or ``"siphash24"``."""
        return self._algorithm

    def pseudonymize(self, ids: np.ndarray | Sequence[Any]) -> np.ndarray:
        """Pseudonyms (``uint64``) of ``ids``; raises :class:`SchemaError` if any id is missing.

        Ints are hashed by their decimal string, so ``123`` and ``"123"`` give the same pseudonym.
        Raises :class:`LedgerError` if two distinct ids collide (rotate the key).
        """
        pseudonyms, valid = self.pseudonymize_with_mask(ids)
        if not valid.all():
            raise SchemaError(f"ids: {int((~valid).sum())} of {valid.size} ids are missing (None, NaN or empty "
                              "string); use pseudonymize_with_mask to skip them")
        return pseudonyms

    def pseudonymize_with_mask(self, ids: np.ndarray | Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """``(pseudonyms, valid)``: missing ids (None, NaN, empty string) get ``valid=False`` and pseudonym 0."""
        array = _as_id_array(ids)
        if array.dtype.kind in "iu" and _looks_distinct(array):
            hashes = self._hash(array)  # one id per row: hash first, sort the input only if hashes repeat
            distinct_hashes = _count_distinct(hashes)
            if distinct_hashes != hashes.size and distinct_hashes != _count_distinct(array):
                raise self._collision()
            return hashes, np.ones(hashes.size, dtype=bool)
        codes, canonical, distinct = _canonical_codes(array)
        hashes = self._hash(canonical)
        if _count_distinct(hashes) != distinct:
            raise self._collision()
        valid = codes >= 0
        if valid.all():
            return hashes[codes], valid
        out = np.zeros(codes.size, dtype=np.uint64)
        out[valid] = hashes[codes[valid]]
        return out, valid

    def pseudonymize_one(self, person_id: Any, name: str = "person_id") -> int:
        """The pseudonym of one id as a Python int; :class:`ParameterError` if it is missing."""
        if isinstance(person_id, (bool, np.bool_)) or not isinstance(person_id, (int, np.integer, str)):
            raise ParameterError(f"{name}: must be a non-empty str or an int; received {type(person_id).__name__}")
        pseudonyms, valid = self.pseudonymize_with_mask(np.array([person_id], dtype=object))
        if not valid[0]:
            raise ParameterError(f"{name}: must be a non-empty str or an int; received an empty string")
        return int(pseudonyms[0])

    def _sorted_pseudonyms(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(order, pseudonyms)`` of distinct int64 ``ids`` (the compiled ingest path): the stable order that
        sorts their pseudonyms and the sorted pseudonyms, i.e. ``pseudonymize(ids)[order]``; the collision check
        reads the sorted pseudonyms (no second sort). Raises :class:`LedgerError` if two ids collide."""
        from adtarget.events._factorize_kernels import argsort_uint64

        hashes = self._hash(np.ascontiguousarray(ids, dtype=np.int64))
        order = argsort_uint64(hashes)
        pseudonyms = hashes[order]
        if bool((pseudonyms[1:] == pseudonyms[:-1]).any()):
            raise self._collision()
        return order, pseudonyms

    def _hash(self, canonical: np.ndarray | CanonicalTexts) -> np.ndarray:
        if self._algorithm == "siphash24":
            sub = hashlib.blake2b(key=self._key, digest_size=16, person=b"adtarget-sip").digest()
            if isinstance(canonical, CanonicalTexts):
                return siphash24_buffers(sub, canonical.data, canonical.offsets)
            return siphash24_packed(sub, canonical.astype("S20"))
        return _blake2b_many(self._key, canonical)

    def _collision(self) -> LedgerError:
        return LedgerError(f"pseudonym collision: two distinct ids map to the same 64-bit pseudonym under "
                           f"key_id={self._key_id} ({self._algorithm}); rotate the key "
                           "(docs/privacy/pseudonymisation.md)")

    def __repr__(self) -> str:
        return f"Pseudonymizer(algorithm={self._algorithm!r}, key_id={self._key_id!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pseudonymizer):
            return NotImplemented
        return self._algorithm == other._algorithm and hmac.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash((self._algorithm, self._key_id))

    def __getstate__(self) -> dict[str, Any]:
        return {"key": self._key, "algorithm": self._algorithm}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["key"], algorithm=state["algorithm"])  # type: ignore[misc]


class CanonicalTexts:
    """Canonical bytes of distinct text ids in Arrow's layout: item ``i`` is ``data[offsets[i]:offsets[i + 1]]``."""

    __slots__ = ("data", "offsets")

    def __init__(self, data: np.ndarray, offsets: np.ndarray) -> None:
        self.data = np.ascontiguousarray(data, dtype=np.uint8)
        self.offsets = np.ascontiguousarray(offsets, dtype=np.int64)

    @classmethod
    def from_bytes(cls, items: Sequence[bytes]) -> CanonicalTexts:
        """From a list of bytes (C-level joins, no Python loop per item)."""
        lengths = np.fromiter(map(len, items), dtype=np.int64, count=len(items))
        offsets = np.zeros(lengths.size + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return cls(np.frombuffer(b"".join(items), dtype=np.uint8), offsets)

    def __len__(self) -> int:
        return int(self.offsets.size - 1)


def _blake2b_many(key: bytes, items: np.ndarray | CanonicalTexts | Sequence[bytes]) -> np.ndarray:
    """Keyed BLAKE2b-64 of each canonical id (ints: their decimal string; bytes as they are), little-endian
    uint64, computed by the numba kernel of :mod:`adtarget.events._blake2b_kernels` (equal to ``hashlib``, tested)."""
    from adtarget.events import _blake2b_kernels as kernel

    state, key_block = kernel.initial_state(key, PERSON, 8)
    if not isinstance(items, (np.ndarray, CanonicalTexts)):
        items = CanonicalTexts.from_bytes(items)
    if isinstance(items, CanonicalTexts):
        return kernel.blake2b_buffers(state, key_block, items.data, items.offsets)
    if items.dtype.kind == "u" and items.dtype.itemsize == 8:
        return kernel.blake2b_uint64(state, key_block, np.ascontiguousarray(items, dtype=np.uint64))
    return kernel.blake2b_int64(state, key_block, np.ascontiguousarray(items, dtype=np.int64))


def _looks_distinct(array: np.ndarray) -> bool:
    """Whether an evenly spaced sample of at most 4096 ids has no repeat: then the ids are most likely (nearly)
    all distinct, e.g. the distinct ids of an ingest batch. A heuristic for speed only."""
    sample = array[:: max(1, array.size // 4096)]
    return _count_distinct(sample) == sample.size

def _count_distinct(values: np.ndarray) -> int:
    """Distinct values of a 1-D array (sort based: numpy's SIMD sort beats a hash table here)."""
    ordered = np.sort(values)
    return int(ordered.size and 1 + np.count_nonzero(ordered[1:] != ordered[:-1]))


def _as_id_array(ids: Any) -> np.ndarray:
    if isinstance(ids, np.ndarray):
        array = ids
    elif hasattr(ids, "__array__") or hasattr(ids, "to_numpy"):
        array = ids.to_numpy(zero_copy_only=False) if type(ids).__module__.startswith("pyarrow") else np.asarray(ids)
    else:
        array = np.empty(len(ids), dtype=object)
        array[:] = list(ids)
    if array.ndim != 1:
        raise SchemaError(f"ids: must be one-dimensional; received shape {array.shape}")
    return array


def _canonical_codes(array: np.ndarray) -> tuple[np.ndarray, np.ndarray | CanonicalTexts, int]:
    """``(codes, canonical, distinct)``: per row, the index of its canonical id in ``canonical`` (-1 if
    missing); the canonical ids to hash (an int array, or :class:`CanonicalTexts`); the number of distinct
    canonical ids (``len(canonical)``)."""
    kind = array.dtype.kind
    if kind in "iu":
        return _int_codes(array)
    if kind == "f":
        return _float_codes(array)
    if kind in "US":
        codes, uniques = factorize(array)
        empty = uniques == ("" if kind == "U" else b"")
        codes = np.where((codes >= 0) & empty[np.maximum(codes, 0)], -1, codes) if empty.any() else codes
        return codes, _texts(uniques), uniques.size
    if kind == "O":
        arrow_codes = _arrow_strings(array)
        if arrow_codes is not None:
            return arrow_codes
        codes, distinct_ids = _object_codes(array)
        return codes, CanonicalTexts.from_bytes(distinct_ids), len(distinct_ids)
    raise SchemaError(f"ids: must hold integer or string ids; received dtype {array.dtype}")


def _texts(uniques: np.ndarray) -> CanonicalTexts:
    """UTF-8 of a ``U`` or ``S`` array of distinct ids; ``U`` through Arrow when importable (from Python
    strings: Arrow would cut a numpy ``U`` item at an inner NUL, as it does ``S`` items, which keep the list
    path)."""
    if uniques.dtype.kind == "S":
        return CanonicalTexts.from_bytes(uniques.tolist())
    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover - pyarrow comes with the parquet extra
        return CanonicalTexts.from_bytes([u.encode("utf-8") for u in uniques.tolist()])
    return _arrow_texts(pa.array(uniques.astype(object), type=pa.large_string()))


def _arrow_strings(array: np.ndarray) -> tuple[np.ndarray, CanonicalTexts, int] | None:
    """``_canonical_codes`` of an object array of str (None, NaN, NA and "" as missing), converted and
    factorised by Arrow in C; None when pyarrow is missing or an item is anything else (ints, booleans, floats,
    invalid UTF-8: the per-value path decides)."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:  # pragma: no cover - pyarrow comes with the parquet extra
        return None
    try:
        arrow = pa.array(array, type=pa.large_string(), from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):
        return None
    encoded = pc.dictionary_encode(arrow)
    codes = np.asarray(encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False))
    texts = _arrow_texts(encoded.dictionary)
    keep = np.diff(texts.offsets) > 0
    if not keep.all():  # the empty string, at most one entry: missing
        remap = np.where(keep, np.cumsum(keep) - 1, -1)
        codes = np.where(codes >= 0, remap[np.maximum(codes, 0)], -1)
        texts = CanonicalTexts(texts.data, np.concatenate([texts.offsets[:-1][keep], texts.offsets[-1:]]))
    return codes, texts, len(texts)


def _arrow_texts(arrow: Any) -> CanonicalTexts:
    """The buffers of a ``pa.large_string()`` array without nulls, as :class:`CanonicalTexts` (no copy)."""
    _, offsets, data = arrow.buffers()
    bounds = np.frombuffer(offsets, dtype=np.int64)[arrow.offset:arrow.offset + len(arrow) + 1]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    return CanonicalTexts(raw, bounds)


def _int_codes(array: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Ints with repeats: the ingest's compiled factorisation (:func:`adtarget.events._person_ids.person_ids`) gives
    each row the code of its distinct id (each distinct id is hashed once) and counts the distinct ids for the
    collision check."""
    unsigned = array.dtype.kind == "u" and array.dtype.itemsize == 8
    wide = array.astype(np.uint64, copy=False).view(np.int64) if unsigned else array.astype(np.int64, copy=False)
    if wide.size == 0:
        return np.zeros(0, dtype=np.int32), array[:0], 0
    ids = person_ids(np.ascontiguousarray(wide))  # an int64 array: always the compiled path
    codes, uniques = ids.row_codes(), ids.uniques
    return codes, uniques.view(np.uint64) if unsigned else uniques, int(uniques.size)


def _float_codes(array: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    present = ~np.isnan(array)
    values = array[present]
    if not (np.all(values == np.round(values)) and np.all(np.abs(values) < _MAX_EXACT_FLOAT)):
        raise SchemaError("ids: a float id column must hold whole numbers below 2**53 (or NaN for missing); "
                          "received fractional or too large values")
    sub_codes, canonical, distinct = _int_codes(values.astype(np.int64))
    codes = np.full(array.size, -1, dtype=np.int64)
    codes[present] = sub_codes
    return codes, canonical, distinct


def _object_codes(array: np.ndarray) -> tuple[np.ndarray, list[bytes]]:
    if _may_hold_booleans(array) and any(isinstance(v, (bool, np.bool_)) for v in array.tolist()):
        raise SchemaError("ids: must hold integer or string ids; received a boolean")  # factorize merges True, 1
    codes, uniques = factorize(array)
    values = uniques.tolist()
    if set(map(type, values)) <= {str}:  # the common case (CSV, Arrow strings): no per-value type checks
        canonical: list[bytes | None] = [u.encode("utf-8") if u else None for u in values]
    else:
        canonical = [_canonical(u) for u in values]
    missing = np.array([c is None for c in canonical], dtype=bool)
    present = [c for c in canonical if c is not None]
    remap = np.full(len(canonical), -1, dtype=np.int64)
    if len(set(present)) == len(present):
        remap[~missing] = np.arange(len(present))
        distinct = present
    else:  # e.g. 123 and "123" in one column: same canonical bytes, one pseudonym
        seen: dict[bytes, int] = {}
        remap[~missing] = [seen.setdefault(c, len(seen)) for c in present]
        distinct = list(seen)
    return np.where(codes >= 0, remap[np.maximum(codes, 0)], -1) if remap.size else codes, distinct


def _may_hold_booleans(array: np.ndarray) -> bool:
    """False when pandas' type inference (C speed) rules booleans out; True when unsure."""
    try:
        from pandas.api.types import infer_dtype
    except ImportError:  # pragma: no cover - pandas comes with the parquet extra
        return True
    return infer_dtype(array, skipna=True) not in ("string", "integer", "floating", "empty", "bytes")


def _canonical(value: Any) -> bytes | None:
    """Canonical bytes of one distinct id, or None if it counts as missing."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return None
    if isinstance(value, (bool, np.bool_)):
        raise SchemaError("ids: must hold integer or string ids; received a boolean")
    if isinstance(value, (int, np.integer)):
        return str(int(value)).encode("ascii")
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if number != number:
            return None
        if not number.is_integer() or abs(number) >= _MAX_EXACT_FLOAT:
            raise SchemaError("ids: float ids must be whole numbers below 2**53; received a fractional or too "
                              "large value")
        return str(int(number)).encode("ascii")
    if isinstance(value, str):
        return value.encode("utf-8") if value else None
    if isinstance(value, bytes):
        return value or None
    raise SchemaError(f"ids: must hold integer or string ids; received an element of type {type(value).__name__}")


def factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, uniques)`` of a 1-D array; ``codes == -1`` for None/NaN. Uses pandas when importable
    (hash based), else numpy (sort based; object arrays through a dict)."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas comes with the parquet extra
        return _factorize_numpy(values)
    codes, uniques = pd.factorize(values)
    return codes.astype(np.int64, copy=False), np.asarray(uniques, dtype=values.dtype)


def _factorize_numpy(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - no pandas
    if values.dtype.kind != "O":
        if values.dtype.kind == "f":
            present = ~np.isnan(values)
            uniques, inverse = np.unique(values[present], return_inverse=True)
            codes = np.full(values.size, -1, dtype=np.int64)
            codes[present] = inverse
            return codes, uniques
        uniques, inverse = np.unique(values, return_inverse=True)
        return inverse.astype(np.int64).reshape(-1), uniques
    table: dict[Any, int] = {}
    codes = np.fromiter((-1 if v is None or v != v else table.setdefault(v, len(table)) for v in values),
                        dtype=np.int64, count=values.size)
    uniques = np.empty(len(table), dtype=object)
    uniques[:] = list(table)
    return codes, uniques


def pseudonyms_to_hex(pseudonyms: np.ndarray) -> np.ndarray:
    """``f"{p:016x}"`` of each pseudonym, vectorised, as a ``<U16`` array."""
    values = np.ascontiguousarray(pseudonyms, dtype=">u8")
    text = values.tobytes().hex().encode("ascii")
    return np.frombuffer(text, dtype="S16").astype("<U16")


def hex_to_pseudonyms(texts: Sequence[str] | np.ndarray) -> np.ndarray:
    """Inverse of :func:`pseudonyms_to_hex`; :class:`SchemaError` unless every item is 16 hex digits."""
    array = np.asarray(texts)
    if array.size == 0:
        return np.zeros(0, dtype=np.uint64)
    if array.dtype.kind not in "UO" or array.ndim != 1:
        raise SchemaError(f"pseudonym: must be a 1-D array of 16-hex-digit strings; received dtype {array.dtype}")
    text = array.astype("U")
    if not (np.char.str_len(text) == 16).all():
        raise SchemaError("pseudonym: every value must be a 16-hex-digit string")
    try:
        raw = bytes.fromhex("".join(text.tolist()))
    except ValueError:
        raise SchemaError("pseudonym: every value must be a 16-hex-digit string") from None
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64)


def pseudonymise(ids: PersonIds, accepted: np.ndarray | None, pseudonymizer: Pseudonymizer
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``(person, persons)``: the accepted rows' indices (int32) into the sorted unique pseudonyms (uint64) of
    the ids that accepted rows use. ``accepted`` None means every row."""
    if accepted is None and ids.complete:  # compiled path: every unique id occurs in some row
        order, persons = _sorted_pseudonyms(ids, ids.uniques, pseudonymizer)
        rank = np.empty(order.size, dtype=np.int32)
        rank[order] = np.arange(order.size, dtype=np.int32)
        return ids.row_codes(rank), persons
    codes = ids.row_codes() if accepted is None else ids.row_codes()[accepted]
    used = np.zeros(ids.uniques.size, dtype=bool)
    used[codes] = True
    used_codes = np.flatnonzero(used)
    order, persons = _sorted_pseudonyms(ids, ids.uniques[used_codes], pseudonymizer)
    rank = np.full(ids.uniques.size, -1, dtype=np.int32)
    rank[used_codes[order]] = np.arange(order.size, dtype=np.int32)
    return rank[codes], persons


def _sorted_pseudonyms(ids: PersonIds, uniques: np.ndarray, pseudonymizer: Pseudonymizer
                       ) -> tuple[np.ndarray, np.ndarray]:
    """``(order, pseudonyms[order])`` of some of ``ids``' distinct ids; int64 ids of the compiled path are
    hashed and sorted in one step (one sort serves the collision check)."""
    if ids.complete:
        return pseudonymizer._sorted_pseudonyms(uniques)
    from adtarget.events import _factorize_kernels as kernels

    pseudonyms = np.asarray(pseudonymizer.pseudonymize(uniques), dtype=np.uint64)
    order = kernels.argsort_uint64(pseudonyms)
    return order, pseudonyms[order]
