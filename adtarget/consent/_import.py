"""Validating a consent import: every row is accepted or rejected with a reason code, and the report adds up.

Rows are numbered from 1 in input order (the CSV header is not a row). Reasons name the column and the rule,
never the raw id or its pseudonym.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from adtarget.consent._records import (
    ConsentRecords,
    parse_birth_year,
    parse_bool,
    parse_choice,
    parse_epoch,
    parse_text,
)
from adtarget.events._parsing import blank_values, invalid_id_values
from adtarget.events._pseudonym import factorize
from adtarget.exceptions import ConsentError

if TYPE_CHECKING:
    from adtarget.events._pseudonym import Pseudonymizer

__all__ = ["IMPORT_REASONS", "ConsentImportError", "ImportReport", "rejection_message", "validate_columns"]

# Order matters: a row with several problems is rejected for the first one.
IMPORT_REASONS: tuple[str, ...] = (
    "malformed_row",
    "missing_person_id",
    "invalid_person_id",
    "bad_ads_personalization",
    "bad_updated_at",
    "future_updated_at",
    "missing_policy_version",
    "bad_policy_version",
    "bad_birth_year",
    "bad_cross_service",
    "bad_deleted",
    "bad_terminated",
    "bad_location_deleted",
    "bad_jurisdiction",
)
_REASON = {name: code for code, name in enumerate(IMPORT_REASONS)}
MIN_UPDATED_AT = 946_684_800  # 2000-01-01T00:00:00Z: older consent timestamps are taken as unparseable
CLOCK_SKEW_S = 300
MAX_POLICY_VERSION = 10  # an ISO date, YYYY-MM-DD
_JURISDICTION = re.compile(r"[A-Za-z]{2}(-[A-Za-z0-9]{1,3})?")
#: the policy's version is the ISO date it took effect (``min_policy_version`` compares them in order)
_POLICY_VERSION = re.compile(r"(19|20)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])")


@dataclass(frozen=True, eq=False)
class ImportReport:
    """What one consent import did. ``input_rows == accepted + len(rejected_rows)``; accepted rows were all
    written to history, ``applied`` of them became a person's current state, and ``erased`` history rows
    (of this or earlier imports) were removed because a newer deletion record supersedes them.

    ``rejected_rows`` are 1-based input row numbers and ``rejected_reasons`` codes into ``IMPORT_REASONS``.
    """

    source: str
    input_rows: int
    accepted: int
    rejected_rows: np.ndarray
    rejected_reasons: np.ndarray
    strict: bool
    committed: bool = False
    applied: int = 0
    erased: int = 0
    dropped_columns: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.input_rows != self.accepted + self.rejected_rows.size:
            raise AssertionError("consent import accounting does not add up")
        for array in (self.rejected_rows, self.rejected_reasons):
            array.flags.writeable = False

    @property
    def rejected(self) -> int:
        return int(self.rejected_rows.size)

    def reasons(self) -> dict[str, int]:
        """Rejected rows per reason, in ``IMPORT_REASONS`` order (reasons with no rows are left out)."""
        counts = np.bincount(self.rejected_reasons.astype(np.int64), minlength=len(IMPORT_REASONS))
        return {name: int(n) for name, n in zip(IMPORT_REASONS, counts) if n}

    def first_rejections(self, limit: int = 5) -> list[tuple[int, str]]:
        """The first ``limit`` rejected ``(row, reason)`` pairs."""
        rows = self.rejected_rows[:limit].tolist()
        return [(r, IMPORT_REASONS[c]) for r, c in zip(rows, self.rejected_reasons[:limit].tolist())]

    def __str__(self) -> str:
        state = "committed" if self.committed else "not committed"
        return (f"consent import from {self.source} ({state}): {self.input_rows} rows, {self.accepted} accepted, "
                f"{self.rejected} rejected {self.reasons()}, {self.applied} applied, {self.erased} erased")


class ConsentImportError(ConsentError):
    """A strict consent import found bad rows and wrote nothing; ``report`` lists every rejected row."""

    def __init__(self, message: str, report: ImportReport) -> None:
        super().__init__(message)
        self.report = report


def validate_columns(columns: dict[str, np.ndarray], malformed: np.ndarray, pseudonymizer: Pseudonymizer,
                     now: float) -> tuple[ConsentRecords, np.ndarray, np.ndarray]:
    """Parse and check every contract column; return ``(accepted records, rejected rows, reasons)``.
    Raw ids are pseudonymised here and dropped."""
    reason = np.where(malformed, _REASON["malformed_row"], -1).astype(np.int8)

    def flag(name: str, mask: np.ndarray) -> None:
        reason[(reason < 0) & mask] = _REASON[name]

    ids, invalid_id = _person_ids(columns["person_id"])
    pseudonym, valid_id = pseudonymizer.pseudonymize_with_mask(ids)
    flag("missing_person_id", ~valid_id & ~invalid_id)
    flag("invalid_person_id", invalid_id)
    opted_in = _checked(parse_choice(columns["ads_personalization"]), "bad_ads_personalization", flag)
    updated_at = _updated_at(columns["updated_at"], now, flag)
    policy, null_policy, bad_policy = parse_text(iso_dates(columns["policy_version"]),
                                                 max_length=MAX_POLICY_VERSION, pattern=_POLICY_VERSION)
    bad_policy |= ~null_policy & ~bad_policy & ~_real_dates(policy)
    flag("missing_policy_version", null_policy)
    flag("bad_policy_version", bad_policy)
    max_year = _dt.datetime.fromtimestamp(now, _dt.timezone.utc).year
    birth_year = _checked(parse_birth_year(columns["birth_year"], max_year), "bad_birth_year", flag)
    flags = {name: _checked(parse_bool(columns[name]), f"bad_{name}", flag)
             for name in ("cross_service", "deleted", "terminated", "location_deleted")}
    jurisdiction, _, bad_jurisdiction = parse_text(columns["jurisdiction"], max_length=6, pattern=_JURISDICTION)
    flag("bad_jurisdiction", bad_jurisdiction)
    ok = reason < 0
    records = ConsentRecords(
        pseudonym=pseudonym[ok], birth_year=birth_year[ok], opted_in=opted_in[ok],
        cross_service=flags["cross_service"][ok], policy_version=policy[ok], updated_at=updated_at[ok],
        deleted=flags["deleted"][ok], terminated=flags["terminated"][ok],
        location_deleted=flags["location_deleted"][ok], jurisdiction=jurisdiction[ok],
    )
    rejected = np.flatnonzero(~ok)
    return records.scrubbed(), rejected.astype(np.int64) + 1, reason[rejected]


def iso_dates(values: np.ndarray) -> np.ndarray:
    """A policy-version column as text: datetime64 and ``datetime.date`` values (a Parquet ``date32``) as their
    ISO date, anything else as it is (``parse_text`` checks it)."""
    if values.dtype.kind == "M":
        text = np.datetime_as_string(values, unit="D").astype(object)
        text[np.isnat(values)] = None
        return text
    if values.dtype.kind == "O" and any(isinstance(v, _dt.date) for v in values[:1].tolist() + values[-1:].tolist()):
        return np.array([v.isoformat()[:10] if isinstance(v, _dt.date) else v for v in values.tolist()], dtype=object)
    return values


def _real_dates(text: np.ndarray) -> np.ndarray:
    """Which ISO-shaped strings are days of the calendar (``2023-02-30`` is not)."""
    codes, uniques = factorize(text)
    ok = np.array([_is_date(u) for u in uniques.tolist()], dtype=bool)
    return np.where(codes >= 0, ok[np.maximum(codes, 0)] if ok.size else False, True)


def _is_date(text: object) -> bool:
    try:
        _dt.date.fromisoformat(str(text))
    except ValueError:
        return not text  # "" is a missing value, checked on its own
    return True


def _person_ids(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, invalid)``: the id column as events read it — blank ids (``" "``) missing, never-valid ids (a
    control character, a fractional or too large float, a boolean: ``invalid_person_id``) blanked and marked."""
    if values.dtype.kind in "iu":  # integers are always valid ids
        return values, np.zeros(values.size, dtype=bool)
    codes, uniques = factorize(values)
    if not uniques.size:
        return values, np.zeros(codes.size, dtype=bool)
    invalid, blank = invalid_id_values(uniques), blank_values(uniques)
    if not (invalid.any() or blank.any()):
        return values, np.zeros(codes.size, dtype=bool)
    rows_invalid = invalid[codes] & (codes >= 0)
    drop = (invalid | blank)[codes] & (codes >= 0)
    ids = values.astype(np.float64 if values.dtype.kind == "f" else object, copy=True)
    ids[drop] = np.nan if ids.dtype.kind == "f" else None
    return ids, rows_invalid


def _checked(parsed: tuple[np.ndarray, np.ndarray], reason: str, flag: Callable[[str, np.ndarray], None],
             ) -> np.ndarray:
    values, bad = parsed
    flag(reason, bad)
    return values


def _updated_at(values: np.ndarray, now: float, flag: Callable[[str, np.ndarray], None]) -> np.ndarray:
    seconds = parse_epoch(values)
    flag("bad_updated_at", seconds < MIN_UPDATED_AT)
    flag("future_updated_at", seconds > int(now) + CLOCK_SKEW_S)
    return seconds


def rejection_message(report: ImportReport) -> str:
    """One line for a strict import that found bad rows: the first rows and their reasons (row numbers and
    rule names, never a value or a count; the counts are in ``report``)."""
    first = ", ".join(f"row {r}: {name}" for r, name in report.first_rejections())
    more = ", ..." if report.rejected > len(report.first_rejections()) else ""
    return (f"consent import from {report.source}: rows rejected ({first}{more}); nothing was written. Fix the "
            "rows or pass strict=False to import the good rows and report the bad ones")

