"""One person's consent change (``ConsentLedger.record`` and friends) as a validated one-row record."""

from __future__ import annotations

import datetime as _dt
from typing import Any

import numpy as np

from adtarget.consent._import import (
    _JURISDICTION,
    _POLICY_VERSION,
    CLOCK_SKEW_S,
    MAX_POLICY_VERSION,
    MIN_UPDATED_AT,
    _is_date,
    iso_dates,
)
from adtarget.consent._records import (
    FIELDS,
    ConsentRecords,
    parse_birth_year,
    parse_bool,
    parse_choice,
    parse_text,
)
from adtarget.exceptions import ParameterError

__all__ = ["single_record"]

_DEFAULT: dict[str, Any] = {"birth_year": 0, "opted_in": False, "cross_service": False, "policy_version": "",
                            "deleted": False, "terminated": False, "location_deleted": False, "jurisdiction": ""}
_RULES = {
    "birth_year": "an int year of birth (1900 to this year) or None",
    "ads_personalization": "'opt_in' or 'opt_out'",
    "policy_version": "the ISO date of the policy version (YYYY-MM-DD)",
    "jurisdiction": "a region code like 'CN' or 'US-CA', or None",
}


def single_record(pseudonym: int, base: dict[str, Any] | None, changes: dict[str, Any], at: int,
                  now: float) -> ConsentRecords:
    """The full record after applying ``changes`` to ``base`` (a stored row, or None for a new person)."""
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise ParameterError(f"fields: unknown consent field(s) {unknown}; allowed are {list(FIELDS)}")
    if not MIN_UPDATED_AT <= at <= int(now) + CLOCK_SKEW_S:
        raise ParameterError(f"updated_at: must be epoch seconds from 2000-01-01 up to now; received {at}")
    state = dict(_DEFAULT) if base is None else _from_row(base)
    max_year = _dt.datetime.fromtimestamp(now, _dt.timezone.utc).year
    state.update({_key(name): _parse(name, value, max_year) for name, value in changes.items()})
    if state["opted_in"] and not state["policy_version"]:
        raise ParameterError("policy_version: required to opt in (consent is recorded with the policy version it "
                             "was given under); received none")
    record = ConsentRecords(
        pseudonym=np.array([pseudonym], dtype=np.uint64), updated_at=np.array([at], dtype=np.int64),
        birth_year=np.array([state["birth_year"]], dtype=np.int16),
        policy_version=_objects(state["policy_version"]), jurisdiction=_objects(state["jurisdiction"]),
        **{k: np.array([bool(state[k])]) for k in ("opted_in", "cross_service", "deleted", "terminated",
                                                   "location_deleted")},
    )
    return record.scrubbed()


def _key(name: str) -> str:
    return "opted_in" if name == "ads_personalization" else name


def _from_row(row: dict[str, Any]) -> dict[str, Any]:
    return {"birth_year": row["birth_year"] or 0, "opted_in": row["ads_personalization"] == "opt_in",
            "cross_service": row["cross_service"], "policy_version": row["policy_version"],
            "deleted": row["deleted"], "terminated": row["terminated"],
            "location_deleted": row["location_deleted"], "jurisdiction": row["jurisdiction"] or ""}


def _parse(name: str, value: Any, max_year: int) -> Any:
    column = _objects(value)
    if name == "birth_year":
        parsed, bad = parse_birth_year(column, max_year)
    elif name == "ads_personalization":
        parsed, bad = parse_choice(column)
    elif name in ("policy_version", "jurisdiction"):
        pattern = _JURISDICTION if name == "jurisdiction" else _POLICY_VERSION
        text = iso_dates(column) if name == "policy_version" else column
        parsed, null, bad = parse_text(text, max_length=6 if name == "jurisdiction" else MAX_POLICY_VERSION,
                                       pattern=pattern)
        bad = bad | ((null | ~_is_date_array(parsed)) if name == "policy_version" else False)
    else:
        if not isinstance(value, (bool, np.bool_)):
            raise ParameterError(f"{name}: must be a bool; received {type(value).__name__}")
        parsed, bad = parse_bool(column)
    if bad[0]:
        raise ParameterError(f"{name}: must be {_RULES.get(name, 'valid')}; received {_short(value)}")
    return parsed[0].item() if isinstance(parsed[0], np.generic) else parsed[0]


def _is_date_array(text: np.ndarray) -> np.ndarray:
    return np.array([_is_date(t) and bool(t) for t in text.tolist()], dtype=bool)


def _objects(value: Any) -> np.ndarray:
    array = np.empty(1, dtype=object)
    array[0] = value
    return array


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
