"""Column normalisation at the ingestion boundary: factorise string-like columns, parse numbers and timestamps.

Everything here works on whole columns (Arrow compute or numpy); per-value Python runs only over the *distinct*
values of a column, or on the error path for values that the vectorised parser rejected.
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any

import numpy as np

from adtarget.exceptions import SchemaError

__all__ = [
    "INVALID_TS",
    "blank_values",
    "control_values",
    "invalid_id_values",
    "dictionary_chunks",
    "factorize",
    "float64_chunks",
    "int64_chunks",
    "parse_float",
    "parse_timestamps",
]


def _pyarrow() -> Any:
    try:
        import pyarrow
    except ImportError:  # pragma: no cover - pyarrow is installed with the parquet extra
        return None
    return pyarrow


def _is_arrow(values: Any) -> bool:
    pa = _pyarrow()
    return pa is not None and isinstance(values, (pa.Array, pa.ChunkedArray))


def _to_arrow(values: Any, name: str) -> Any:
    pa = _pyarrow()
    if _is_arrow(values):
        return values
    try:
        return pa.chunked_array([pa.array(values, from_pandas=True)])
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        pass
    # Mixed Python types (e.g. 4 and "4" in one object column): compare by text, as the pseudonymiser does.
    array = np.asarray(values, dtype=object)
    null = np.array([v is None or (isinstance(v, float) and math.isnan(v)) for v in array], dtype=bool)
    if any(isinstance(v, (list, dict, set, tuple, bytes)) for v in array[~null]):
        raise SchemaError(f"events: column {name!r} holds nested or binary values; expected scalars")
    text = array.astype(str).astype(object)
    text[null] = None
    return pa.chunked_array([pa.array(text, type=pa.string(), from_pandas=True)])


def factorize(values: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(uniques, codes)`` with ``codes == -1`` for nulls (None, NaN, empty string)."""
    pa = _pyarrow()
    if pa is None:
        return _factorize_numpy(np.asarray(values, dtype=object))
    import pyarrow.compute as pc

    arr = _to_arrow(values, name)
    if pa.types.is_null(arr.type) or len(arr) == 0:
        return np.zeros(0, dtype=object), np.full(len(arr), -1, dtype=np.int32)
    if isinstance(arr, pa.ChunkedArray) and not pa.types.is_dictionary(arr.type):
        arr = arr.combine_chunks()  # one hash table over the column, not one per chunk
    if not pa.types.is_dictionary(arr.type):
        arr = pc.dictionary_encode(arr)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.unify_dictionaries().combine_chunks()
    codes = arr.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    uniques = arr.dictionary.to_numpy(zero_copy_only=False)
    empty = blank_values(uniques)
    if empty.any():
        codes = np.where(empty[np.maximum(codes, 0)] & (codes >= 0), -1, codes).astype(np.int32)
    return uniques, codes


_CONTROL = "[\x00-\x1f\x7f-\x9f]"


def control_values(uniques: np.ndarray) -> np.ndarray:
    """Which distinct values hold a control character (NUL, ESC, newline, C1): never a valid id, category or
    service (numpy's fixed-width strings would even drop a trailing NUL, merging ``"a\\x00"`` with ``"a"``)."""
    if uniques.dtype.kind not in "OUS" or uniques.size == 0:
        return np.zeros(len(uniques), dtype=bool)
    pa = _pyarrow()
    text = [u if isinstance(u, str) else None for u in uniques]
    if pa is not None:
        import pyarrow.compute as pc

        hit = pc.match_substring_regex(pa.array(text, type=pa.string()), _CONTROL).fill_null(False)
        return np.asarray(hit.to_numpy(zero_copy_only=False), dtype=bool)
    import re

    pattern = re.compile(_CONTROL)
    return np.array([t is not None and pattern.search(t) is not None for t in text], dtype=bool)


_MAX_EXACT_FLOAT = 2.0**53


def invalid_id_values(uniques: np.ndarray) -> np.ndarray:
    """Which distinct person ids are never valid (``invalid_person_id``): a control character (see
    :func:`control_values`), a float that is not a whole number below 2**53 (``2.5`` names no account, and
    ``2**53 + 1`` would read as ``2**53``), or a boolean. Missing values (None, NaN, blank) are not invalid."""
    kind = uniques.dtype.kind
    if kind == "f":
        finite = np.isfinite(uniques)
        whole = np.where(finite, uniques, 0)
        return finite & ((whole != np.round(whole)) | (np.abs(whole) >= _MAX_EXACT_FLOAT))
    bad = control_values(uniques)
    if kind == "O" and uniques.size and not _only_strings(uniques):
        for i, u in enumerate(uniques.tolist()):  # a mixed object column (records, pandas): per value
            if isinstance(u, bool):
                bad[i] = True
            elif isinstance(u, float) and math.isfinite(u):
                bad[i] = not u.is_integer() or abs(u) >= _MAX_EXACT_FLOAT
    return bad


def _only_strings(values: np.ndarray) -> bool:
    try:
        from pandas.api.types import infer_dtype
    except ImportError:  # pragma: no cover - pandas comes with the parquet extra
        return False
    return bool(infer_dtype(values, skipna=True) in ("string", "empty"))


def blank_values(uniques: np.ndarray) -> np.ndarray:
    """Which distinct values count as missing: blank strings, and non-finite floats."""
    if uniques.dtype.kind in "OUS":
        return np.array([isinstance(u, (str, bytes)) and not u.strip() for u in uniques], dtype=bool)
    if uniques.dtype.kind == "f":
        return ~np.isfinite(uniques)
    return np.zeros(len(uniques), dtype=bool)


def int64_chunks(values: Any) -> list[np.ndarray] | None:
    """The column as int64 numpy chunks (no copy for int64), if it holds integers that fit int64 and no nulls;
    None for anything else (the caller then takes the general path)."""
    if isinstance(values, np.ndarray):
        kind, size = values.dtype.kind, values.dtype.itemsize
        ints = values.ndim == 1 and (kind == "i" or (kind == "u" and size < 8))
        return [np.ascontiguousarray(values, dtype=np.int64)] if ints else None
    pa = _pyarrow()
    if not _is_arrow(values) or values.null_count or not pa.types.is_integer(values.type):
        return None
    if pa.types.is_unsigned_integer(values.type) and values.type.bit_width == 64:
        return None
    return [c.cast(pa.int64()).to_numpy() for c in _chunks(values)]


def float64_chunks(values: Any, default: float) -> list[np.ndarray] | None:
    """The column as float64 numpy chunks, nulls as ``default``, if it holds float64; None otherwise."""
    if isinstance(values, np.ndarray):
        return [np.ascontiguousarray(values)] if values.ndim == 1 and values.dtype == np.float64 else None
    pa = _pyarrow()
    if not _is_arrow(values) or values.type != pa.float64():
        return None
    return [(c.fill_null(default) if c.null_count else c).to_numpy() for c in _chunks(values)]


def dictionary_chunks(values: Any) -> tuple[list[np.ndarray], list[tuple[np.ndarray, int]]] | None:
    """For an Arrow dictionary-encoded string column: its distinct dictionaries (object arrays of str) and, per
    chunk, the indices (nulls as -1) with the number of the chunk's dictionary. None for any other column, or
    when a dictionary holds nulls."""
    pa = _pyarrow()
    if not _is_arrow(values) or not pa.types.is_dictionary(values.type):
        return None
    if not (pa.types.is_string(values.type.value_type) or pa.types.is_large_string(values.type.value_type)):
        return None
    dictionaries: list[Any] = []
    chunks = []
    for chunk in _chunks(values):
        if chunk.dictionary.null_count:
            return None
        if not dictionaries or not chunk.dictionary.equals(dictionaries[-1]):
            dictionaries.append(chunk.dictionary)
        chunks.append((_indices(chunk), len(dictionaries) - 1))
    return [d.to_numpy(zero_copy_only=False) for d in dictionaries], chunks


def _chunks(values: Any) -> list[Any]:
    return list(values.chunks) if hasattr(values, "chunks") else [values]


def _indices(chunk: Any) -> np.ndarray:
    indices = chunk.indices
    if not chunk.null_count:
        return indices.to_numpy()
    pa = _pyarrow()
    return indices.cast(pa.int64()).fill_null(-1).to_numpy()


def _factorize_numpy(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    null = np.array([v is None or (isinstance(v, float) and math.isnan(v)) for v in values], dtype=bool)
    keys = values[~null].astype(str)
    uniques, inverse = np.unique(keys, return_inverse=True)
    codes = np.full(len(values), -1, dtype=np.int32)
    codes[~null] = inverse
    empty = np.char.str_len(np.char.strip(uniques)) == 0 if uniques.size else np.zeros(0, bool)
    codes = np.where((codes >= 0) & empty[np.maximum(codes, 0)] if uniques.size else False, -1, codes)
    return uniques.astype(object), codes.astype(np.int32)


def parse_float(values: Any, name: str, default: float) -> np.ndarray:
    """Parse a numeric column to float64; nulls become ``default``, unparseable strings NaN (quarantined)."""
    if _is_arrow(values):
        pa = _pyarrow()
        if pa.types.is_boolean(values.type):
            raise SchemaError(f"events: column {name!r} must be numeric, got booleans")
        if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
            return values.to_numpy().astype(np.float64) if values.null_count == 0 else np.asarray(
                values.fill_null(default).to_numpy(zero_copy_only=False), dtype=np.float64
            )
        values = values.to_numpy(zero_copy_only=False)
    array = np.asarray(values)
    if array.dtype.kind == "b":
        raise SchemaError(f"events: column {name!r} must be numeric, got booleans")
    if array.dtype.kind in "iuf":
        return array.astype(np.float64)
    uniques, codes = factorize(array, name)
    parsed = np.array([_float_or_nan(u) for u in uniques], dtype=np.float64)
    return np.where(codes >= 0, parsed[np.maximum(codes, 0)] if parsed.size else default, default)


def _float_or_nan(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


_INVALID_TS = np.iinfo(np.int64).min


def parse_timestamps(values: Any, name: str) -> np.ndarray:
    """Parse a timestamp column to int64 epoch seconds (UTC); unparseable or null values become a sentinel
    (``INVALID_TS``) that the caller quarantines. Accepts epoch seconds, datetime64, Arrow timestamps and
    ISO-8601 strings ("2026-11-01T10:00:00Z", offsets are honoured)."""
    pa = _pyarrow()
    if _is_arrow(values):
        if pa.types.is_timestamp(values.type):  # UTC counts whatever the zone; sub-second parts floored
            per_second = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[values.type.unit]
            counts = values.cast(pa.int64()).fill_null(_INVALID_TS).to_numpy(zero_copy_only=False)
            return np.where(counts == _INVALID_TS, _INVALID_TS, np.floor_divide(counts, per_second))
        if pa.types.is_date(values.type):
            seconds = values.cast(pa.timestamp("s"))
            return np.asarray(seconds.cast(pa.int64()).fill_null(_INVALID_TS).to_numpy(zero_copy_only=False))
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            return _parse_iso(values.to_numpy(zero_copy_only=False), name)
        values = values.to_numpy(zero_copy_only=False)
    array = np.asarray(values)
    kind = array.dtype.kind
    if kind == "b":
        raise SchemaError(f"events: column {name!r} must hold timestamps, got booleans")
    if kind == "M":
        out = array.astype("datetime64[s]").astype(np.int64)
        return np.where(np.isnat(array), _INVALID_TS, out)
    if kind == "u":  # uint64 past int64 would wrap to a negative time
        return np.where(array < 2**62, array, 0).astype(np.int64) + np.where(array < 2**62, 0, _INVALID_TS)
    if kind == "i":
        return array.astype(np.int64)
    if kind == "f":
        representable = np.isfinite(array) & (np.abs(array) < 2.0**62)
        return np.where(representable, np.floor(np.where(representable, array, 0)).astype(np.int64), _INVALID_TS)
    return _parse_iso(array, name)


def _parse_iso(values: np.ndarray, name: str) -> np.ndarray:
    fast = _parse_iso_arrow(values)
    if fast is not None:
        return fast
    uniques, codes = factorize(values, name)
    parsed = np.array([_iso_seconds(u) for u in uniques], dtype=np.int64)
    return np.where(codes >= 0, parsed[np.maximum(codes, 0)] if parsed.size else _INVALID_TS, _INVALID_TS)


def _parse_iso_arrow(values: np.ndarray) -> np.ndarray | None:
    """Arrow's vectorised ISO-8601 cast: first with zone offsets, then as naive UTC; None if neither parses all."""
    pa = _pyarrow()
    if pa is None:
        return None
    try:
        strings = pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    for target in (pa.timestamp("s", tz="UTC"), pa.timestamp("s")):
        try:
            parsed = strings.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        return np.asarray(parsed.cast(pa.int64()).fill_null(_INVALID_TS).to_numpy(zero_copy_only=False))
    return None


def _iso_seconds(value: Any) -> int:
    if not isinstance(value, str):
        return _float_seconds(value)
    text = value.strip()
    try:
        parsed = _dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        return _float_seconds(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_dt.timezone.utc)
    return int(parsed.timestamp())


def _float_seconds(value: Any) -> int:
    number = _float_or_nan(value)
    return int(math.floor(number)) if math.isfinite(number) and abs(number) < 2.0**62 else int(_INVALID_TS)


INVALID_TS = _INVALID_TS
