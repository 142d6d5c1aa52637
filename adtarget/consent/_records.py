"""Consent records as validated numpy columns, and the vectorised parsers that produce them.

Every parser takes one raw column (numpy array of any dtype: ints, floats with NaN, bools, datetime64, or
objects/strings from CSV, Parquet, pandas or Python records) and returns the parsed values with a ``bad`` mask.
Per-value Python runs only over the *distinct* values of low-cardinality columns, or on the error path.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from adtarget.events._pseudonym import factorize

__all__ = ["FIELDS", "ConsentRecords", "parse_birth_year", "parse_bool", "parse_choice", "parse_epoch",
           "parse_text"]

#: The consent fields besides ``person_id`` and ``updated_at``, in contract order.
FIELDS: tuple[str, ...] = ("birth_year", "ads_personalization", "cross_service", "policy_version", "deleted",
                           "terminated", "location_deleted", "jurisdiction")
MIN_BIRTH_YEAR = 1900
_TRUE = frozenset({"true", "t", "1", "yes", "y"})
_FALSE = frozenset({"false", "f", "0", "no", "n"})
_CHOICE = {"opt_in": True, "opt_out": False}


@dataclass(frozen=True, eq=False)
class ConsentRecords:
    """Validated consent rows as aligned numpy columns (internal: crosses only ``_consent`` modules).

    ``birth_year`` 0 and ``jurisdiction`` "" mean unknown; ``policy_version`` and ``jurisdiction`` are object
    arrays of ``str``. Rows with ``deleted`` are tombstones (see :meth:`scrubbed`).
    """

    pseudonym: np.ndarray
    birth_year: np.ndarray
    opted_in: np.ndarray
    cross_service: np.ndarray
    policy_version: np.ndarray
    updated_at: np.ndarray
    deleted: np.ndarray
    terminated: np.ndarray
    location_deleted: np.ndarray
    jurisdiction: np.ndarray

    def __len__(self) -> int:
        return int(self.pseudonym.size)

    def __repr__(self) -> str:
        return f"ConsentRecords({len(self)} rows)"  # never the pseudonyms

    def scrubbed(self) -> ConsentRecords:
        """Deletion rows keep only what a tombstone needs: opted out, no cross-service use, location deleted,
        birth year and jurisdiction unknown (``policy_version`` and ``terminated`` are kept)."""
        d = self.deleted
        if not d.any():
            return self
        return ConsentRecords(
            pseudonym=self.pseudonym, birth_year=np.where(d, 0, self.birth_year).astype(np.int16),
            opted_in=self.opted_in & ~d, cross_service=self.cross_service & ~d,
            policy_version=self.policy_version, updated_at=self.updated_at, deleted=d,
            terminated=self.terminated, location_deleted=self.location_deleted | d,
            jurisdiction=np.where(d, "", self.jurisdiction).astype(object),
        )

    def take(self, index: np.ndarray) -> ConsentRecords:
        """The rows at ``index``, in that order."""
        return ConsentRecords(**{f: getattr(self, f)[index] for f in self.__dataclass_fields__})

    def sql_rows(self, seq: np.ndarray, hex_ids: list[str], recorded_at: int, source: str,
                 ) -> list[tuple[Any, ...]]:
        """Rows for ``INSERT INTO history`` in ``_store.HISTORY_COLUMNS`` order; the first 11 values are also
        a row of ``current``."""
        birth: list[Any] = [b if b else None for b in self.birth_year.tolist()]
        jurisdiction: list[Any] = [j if j else None for j in self.jurisdiction.tolist()]
        n = len(self)
        return list(zip(
            seq.tolist(), hex_ids, birth, np.where(self.opted_in, "opt_in", "opt_out").tolist(),
            self.cross_service.astype(np.int64).tolist(), self.policy_version.tolist(),
            self.updated_at.tolist(), self.deleted.astype(np.int64).tolist(),
            self.terminated.astype(np.int64).tolist(), self.location_deleted.astype(np.int64).tolist(),
            jurisdiction, [recorded_at] * n, [source] * n,
        ))


def _is_missing(value: Any) -> bool:
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, (float, np.floating)) and value != value


def _per_unique(values: np.ndarray, parse: Any, fill: Any, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``parse(unique) -> (value, ok)`` to each distinct value; nulls get ``parse(None)``."""
    codes, uniques = factorize(values)
    parsed = [parse(None if _is_missing(u) else u) for u in uniques.tolist()]
    null_value, null_ok = parse(None)
    table = np.array([p[0] for p in parsed] + [null_value], dtype=dtype)
    ok = np.array([p[1] for p in parsed] + [null_ok], dtype=bool)
    index = np.where(codes >= 0, codes, len(parsed))
    out, good = table[index], ok[index]
    return np.where(good, out, fill).astype(dtype), ~good


def parse_bool(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Booleans: bool dtype, 0/1, or "true"/"false"/"1"/"0"/"yes"/"no" (any case). Nulls are bad."""
    kind = values.dtype.kind
    if kind == "b":
        return values.astype(bool), np.zeros(values.size, dtype=bool)
    if kind in "iuf":
        bad = ~np.isin(values, (0, 1))
        return (values == 1) & ~bad, bad
    return _per_unique(values, _one_bool, False, bool)


def _one_bool(value: Any) -> tuple[bool, bool]:
    if isinstance(value, (bool, np.bool_)):
        return bool(value), True
    if isinstance(value, (int, np.integer, float, np.floating)) and value in (0, 1):
        return bool(value), True
    text = value.strip().lower() if isinstance(value, str) else None
    return text in _TRUE, text in _TRUE or text in _FALSE


def parse_choice(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``ads_personalization``: "opt_in" -> True, "opt_out" -> False (case and surrounding space ignored)."""
    def one(value: Any) -> tuple[bool, bool]:
        text = value.strip().lower() if isinstance(value, str) else None
        return _CHOICE.get(text or "", False), text in _CHOICE

    return _per_unique(values, one, False, bool)


def parse_birth_year(values: np.ndarray, max_year: int) -> tuple[np.ndarray, np.ndarray]:
    """Nullable year of birth in ``MIN_BIRTH_YEAR..max_year``; unknown -> 0 (int16)."""
    kind = values.dtype.kind
    if kind in "iuf":
        number = values.astype(np.float64)
        null = np.isnan(number)
        ok = null | ((number == np.round(number)) & (number >= MIN_BIRTH_YEAR) & (number <= max_year))
        return np.where(ok & ~null, number, 0).astype(np.int16), ~ok
    if kind == "b":
        return np.zeros(values.size, dtype=np.int16), np.ones(values.size, dtype=bool)

    def one(value: Any) -> tuple[int, bool]:
        if value is None:
            return 0, True
        if isinstance(value, (bool, np.bool_)):
            return 0, False
        try:
            number = float(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            return 0, False
        good = number.is_integer() and MIN_BIRTH_YEAR <= number <= max_year
        return (int(number) if good else 0), good

    return _per_unique(values, one, 0, np.int16)


def parse_text(values: np.ndarray, *, max_length: int, pattern: re.Pattern[str] | None = None,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nullable short text: ``(values as str with "" for null, null mask, bad mask)``. Surrounding space is
    stripped; a non-string value, a too long one or one not matching ``pattern`` is bad."""
    def one(value: Any) -> tuple[str, bool]:
        if value is None:
            return "", True
        if not isinstance(value, str):
            return "", False
        text = value.strip()
        return text, len(text) <= max_length and (pattern is None or bool(pattern.fullmatch(text)))

    text, bad = _per_unique(values.astype(object) if values.dtype.kind != "O" else values, one, "", object)
    return text, (text == "") & ~bad, bad


_INVALID = np.iinfo(np.int64).min


def parse_epoch(values: np.ndarray) -> np.ndarray:
    """``updated_at`` to int64 epoch seconds (UTC); unparseable or null -> ``np.iinfo(int64).min``.

    Accepts integer or float epoch seconds (floored), datetime64, and strings: decimal epoch seconds or
    ISO-8601 (a ``Z`` or ``+00:00`` suffix, other offsets converted to UTC, no suffix read as UTC).
    """
    kind = values.dtype.kind
    if kind == "u":  # uint64 past int64 would wrap to a negative time
        return np.where(values < 2**62, values, 0).astype(np.int64) + np.where(values < 2**62, 0, _INVALID)
    if kind == "i":
        return values.astype(np.int64)
    if kind == "f":
        finite = np.isfinite(values) & (np.abs(values) < 2.0**62)
        return np.where(finite, np.floor(np.where(finite, values, 0)), _INVALID).astype(np.int64)
    if kind == "M":
        seconds = values.astype("datetime64[s]").astype(np.int64)
        return np.where(np.isnat(values), _INVALID, seconds)
    if kind == "b":
        return np.full(values.size, _INVALID, dtype=np.int64)
    return _parse_epoch_objects(values if kind == "O" else values.astype(object))


def _parse_epoch_objects(values: np.ndarray) -> np.ndarray:
    out = np.full(values.size, _INVALID, dtype=np.int64)
    if _all_strings(values):  # CSV and Arrow string columns: skip the per-value type check
        return _parse_epoch_strings(values.astype("U")) if values.size else out
    is_str = np.fromiter((isinstance(v, str) for v in values), dtype=bool, count=values.size)
    others = np.flatnonzero(~is_str)
    if others.size:  # Python ints/floats/datetimes in a record column: rare, per value
        out[others] = [_one_epoch(v) for v in values[others].tolist()]
    strings = np.flatnonzero(is_str)
    if strings.size:
        out[strings] = _parse_epoch_strings(values[strings].astype("U"))
    return out


def _all_strings(values: np.ndarray) -> bool:
    try:
        from pandas.api.types import infer_dtype
    except ImportError:  # pragma: no cover - pandas comes with the parquet extra
        return False
    return bool(infer_dtype(values, skipna=False) == "string")


def _parse_epoch_strings(text: np.ndarray) -> np.ndarray:
    text = np.char.strip(text)
    out = np.full(text.size, _INVALID, dtype=np.int64)
    all_digits = np.char.isdigit(text)
    digits = all_digits & (np.char.str_len(text) <= 18)  # longer: far past any plausible time (stays invalid)
    out[digits] = text[digits].astype(np.int64)
    iso = np.flatnonzero(~all_digits & (np.char.str_len(text) > 0))
    if iso.size:
        stripped = np.char.rstrip(np.char.replace(text[iso], "+00:00", ""), "Zz")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                parsed = stripped.astype("datetime64[s]")
            out[iso] = np.where(np.isnat(parsed), _INVALID, parsed.astype(np.int64))
        except (ValueError, TypeError, Warning):
            out[iso] = [_one_epoch(v) for v in text[iso].tolist()]  # error path: find the bad values
    return out


def _one_epoch(value: Any) -> int:
    if _is_missing(value) or isinstance(value, (bool, np.bool_)):
        return int(_INVALID)
    if isinstance(value, (int, np.integer)):
        return int(value) if abs(int(value)) < 2**62 else int(_INVALID)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return int(math.floor(number)) if math.isfinite(number) and abs(number) < 2**62 else int(_INVALID)
    if isinstance(value, np.datetime64):
        return int(_INVALID) if np.isnat(value) else int(value.astype("datetime64[s]").astype(np.int64))
    if isinstance(value, _dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=_dt.timezone.utc)
        return int(moment.timestamp())
    if not isinstance(value, str):
        return int(_INVALID)
    text = value.strip()
    if text.isdigit():
        return int(text) if len(text) <= 18 else int(_INVALID)
    try:
        moment = _dt.datetime.fromisoformat(text)
    except ValueError:
        return int(_INVALID)
    return _one_epoch(moment)
