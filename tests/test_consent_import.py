"""Consent imports: CSV, Parquet and records agree; an invalid-import table of bad files and bad rows; strict
and non-strict modes; refused columns; row numbers and reasons that never reveal an id."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adtarget.consent import (
    CONSENT_COLUMNS,
    IMPORT_REASONS,
    ConsentImportError,
    ConsentLedger,
)
from adtarget.events import Pseudonymizer
from adtarget.exceptions import ConsentError, InputFormatError, RefusedColumnError, SchemaError

PZ = Pseudonymizer(bytes(range(32)))
NOW = 1_790_000_000  # 2026-09-21
GOOD: dict[str, Any] = {
    "person_id": "acct-1001", "birth_year": "1990", "ads_personalization": "opt_in", "cross_service": "true",
    "policy_version": "2018-05-14", "updated_at": "2024-03-01T10:00:00Z", "deleted": "false",
    "terminated": "false", "location_deleted": "false", "jurisdiction": "CN",
}


def _write_csv(path: Path, rows: list[dict[str, Any]], header: list[str] | None = None) -> Path:
    header = header or list(CONSENT_COLUMNS)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            writer.writerow([row.get(c, "") for c in header])
    return path


def _good_rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{**GOOD, "person_id": f"acct-{start + i}", "updated_at": str(1_700_000_000 + i)} for i in range(n)]


@pytest.fixture
def ledger(tmp_path: Path):
    with ConsentLedger(tmp_path / "consent.sqlite", PZ) as led:
        yield led


# --- the three sources agree -----------------------------------------------------------------------------
def test_csv_parquet_and_records_give_the_same_snapshot(tmp_path: Path) -> None:
    columns: dict[str, Any] = {
        "person_id": np.array([11, 12, 13, 14]),
        "birth_year": np.array([1980.0, np.nan, 2001.0, 1999.0]),
        "ads_personalization": np.array(["opt_in", "opt_out", "OPT_IN", " opt_in "]),
        "cross_service": np.array([True, False, True, False]),
        "policy_version": np.array(["2018-05-14"] * 4),
        "updated_at": np.array([1_700_000_000, 1_700_000_100, 1_700_000_200, 1_700_000_300]),
        "deleted": np.array([False, False, False, True]),
        "terminated": np.array([False, True, False, False]),
        "location_deleted": np.array([False, False, True, False]),
        "jurisdiction": np.array(["CN", "", "US-CA", "DE"]),
    }
    table = pa.table({k: pa.array(v, mask=(v == "") if k == "jurisdiction" else None) for k, v in columns.items()})
    pq.write_table(table, tmp_path / "c.parquet")
    rows = [{k: _csv_value(v[i]) for k, v in columns.items()} for i in range(4)]
    _write_csv(tmp_path / "c.csv", rows)
    snaps = []
    for name, load in [("records", lambda led: led.import_records(columns, now=NOW)),
                       ("csv", lambda led: led.import_csv(tmp_path / "c.csv", now=NOW)),
                       ("parquet", lambda led: led.import_parquet(tmp_path / "c.parquet", now=NOW)),
                       ("rows", lambda led: led.import_records(rows, now=NOW))]:
        with ConsentLedger(tmp_path / f"{name}.sqlite", PZ) as led:
            report = load(led)
            assert report.committed and report.accepted == 4 and report.applied == 4
            snaps.append(led.snapshot())
    for other in snaps[1:]:
        assert snaps[0].equals(other)
    snap = snaps[0]
    order = np.argsort(PZ.pseudonymize(columns["person_id"]))
    assert snap.persons.tolist() == PZ.pseudonymize(columns["person_id"])[order].tolist()
    assert snap.birth_year.tolist() == [[1980, 0, 2001, 0][i] for i in order]  # deleted -> scrubbed
    assert snap.opted_in.tolist() == [[True, False, True, False][i] for i in order]
    assert snap.jurisdiction.tolist() == [["CN", "", "US-CA", ""][i] for i in order]
    assert snap.location_deleted.tolist() == [[False, False, True, True][i] for i in order]


def _csv_value(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, float):
        return "" if np.isnan(value) else str(int(value))
    return str(value)


# --- invalid rows: one bad row per case, reported by row number and reason ----------------------------------
BAD_ROWS = [
    ({"person_id": ""}, "missing_person_id"),
    ({"ads_personalization": "maybe"}, "bad_ads_personalization"),
    ({"ads_personalization": ""}, "bad_ads_personalization"),
    ({"updated_at": "yesterday"}, "bad_updated_at"),
    ({"updated_at": "2024-02-30T00:00:00Z"}, "bad_updated_at"),
    ({"updated_at": "12"}, "bad_updated_at"),
    ({"updated_at": str(NOW + 3600)}, "future_updated_at"),
    ({"policy_version": ""}, "missing_policy_version"),
    ({"policy_version": "v" * 65}, "bad_policy_version"),
    ({"policy_version": "2018\x1f05"}, "bad_policy_version"),
    ({"birth_year": "1800"}, "bad_birth_year"),
    ({"birth_year": "nineteen"}, "bad_birth_year"),
    ({"birth_year": "1990.5"}, "bad_birth_year"),
    ({"birth_year": "2031"}, "bad_birth_year"),
    ({"cross_service": "perhaps"}, "bad_cross_service"),
    ({"deleted": ""}, "bad_deleted"),
    ({"terminated": "2"}, "bad_terminated"),
    ({"location_deleted": "x"}, "bad_location_deleted"),
    ({"jurisdiction": "Somewhere far away"}, "bad_jurisdiction"),
    ({"jurisdiction": "39.9042,116.4074"}, "bad_jurisdiction"),
]


@pytest.mark.parametrize("change, reason", BAD_ROWS, ids=[r for _, r in BAD_ROWS])
def test_bad_row_rejects_a_strict_import_and_names_row_and_reason(tmp_path: Path, ledger: ConsentLedger,
                                                                   change: dict[str, str], reason: str) -> None:
    rows = _good_rows(5)
    rows[3] = {**rows[3], **change}
    path = _write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(ConsentImportError, match=f"row 4: {reason}") as err:
        ledger.import_csv(path, now=NOW)
    report = err.value.report
    assert report.rejected_rows.tolist() == [4] and IMPORT_REASONS[report.rejected_reasons[0]] == reason
    assert not report.committed and report.reasons() == {reason: 1}
    assert "acct-" not in str(err.value) and "acct-" not in str(report)
    assert isinstance(err.value, ConsentError) and isinstance(err.value, ValueError)
    assert len(ledger.snapshot()) == 0 and ledger.stats()["history_rows"] == 0
    lenient = ledger.import_csv(path, now=NOW, strict=False)
    assert lenient.committed and lenient.accepted == 4 and lenient.rejected_rows.tolist() == [4]
    assert len(ledger.snapshot()) == 4


def test_malformed_csv_row_is_reported_with_exact_row_numbers(tmp_path: Path, ledger: ConsentLedger) -> None:
    path = _write_csv(tmp_path / "ragged.csv", _good_rows(4))
    lines = path.read_text().splitlines()
    lines.insert(2, "acct-x,1990,opt_in")  # becomes data row 2
    path.write_text("\n".join(lines) + "\n")
    report = ledger.import_csv(path, now=NOW, strict=False)
    assert report.input_rows == 5 and report.rejected_rows.tolist() == [2] and report.reasons() == {"malformed_row": 1}


def test_several_problems_report_the_first_in_reason_order(ledger: ConsentLedger) -> None:
    rows = [{**_good_rows(1)[0], "person_id": None, "birth_year": "1700", "deleted": "?"},
            {**_good_rows(1)[0], "birth_year": "1700", "deleted": "?"}]
    report = ledger.import_records(rows, now=NOW, strict=False)
    assert report.first_rejections() == [(1, "missing_person_id"), (2, "bad_birth_year")]
    assert report.input_rows == report.accepted + report.rejected == 2


# --- whole-file failures ---------------------------------------------------------------------------------
def _bad_files(tmp: Path) -> list[tuple[Path, type[Exception], str]]:
    empty = tmp / "empty.csv"
    empty.write_text("")
    blank_header = tmp / "blank.csv"
    blank_header.write_text("\n\n")
    binary = tmp / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage\x00\x81" * 20)
    parquet_as_csv = tmp / "parquet.csv"
    pq.write_table(pa.table({"a": [1]}), parquet_as_csv)
    broken_parquet = tmp / "broken.parquet"
    broken_parquet.write_bytes(b"PAR1 this is not parquet PAR1")
    header = list(CONSENT_COLUMNS)
    return [
        (empty, InputFormatError, "empty"),
        (blank_header, InputFormatError, "no header"),
        (binary, InputFormatError, "not a readable"),
        (parquet_as_csv, InputFormatError, "not a readable"),
        (broken_parquet, InputFormatError, "not a readable Parquet"),
        (tmp / "missing.csv", InputFormatError, "does not exist"),
        (_write_csv(tmp / "no_updated_at.csv", _good_rows(2), [h for h in header if h != "updated_at"]),
         SchemaError, r"missing required column\(s\) \['updated_at'\]"),
        (_write_csv(tmp / "email.csv", _good_rows(2), [*header, "email"]), RefusedColumnError, "identifying.*email"),
        (_write_csv(tmp / "dob.csv", _good_rows(2), [*header, "DateOfBirth"]), RefusedColumnError, "DateOfBirth"),
        (_write_csv(tmp / "ip.csv", _good_rows(2), [*header, "last_ip"]), RefusedColumnError, "last_ip"),
        (_write_csv(tmp / "unknown.csv", _good_rows(2), [*header, "colour"]), RefusedColumnError, "unknown.*colour"),
        (_write_csv(tmp / "dup.csv", _good_rows(2), [*header, "deleted"]), SchemaError, "duplicate"),
    ]


def test_invalid_files_are_refused_with_a_clear_error(tmp_path: Path, ledger: ConsentLedger) -> None:
    cases = _bad_files(tmp_path)
    assert len(cases) >= 10
    for path, error, match in cases:
        load = ledger.import_parquet if path.suffix == ".parquet" else ledger.import_csv
        with pytest.raises(error, match=match):
            load(path, now=NOW)
    assert ledger.stats()["history_rows"] == 0


def test_unknown_columns_can_be_dropped_but_identifying_ones_never(tmp_path: Path, ledger: ConsentLedger) -> None:
    header = [*CONSENT_COLUMNS, "colour"]
    report = ledger.import_csv(_write_csv(tmp_path / "u.csv", _good_rows(2), header), now=NOW,
                               drop_unknown_columns=True)
    assert report.dropped_columns == ("colour",) and report.accepted == 2
    with pytest.raises(RefusedColumnError) as err:
        ledger.import_records({**{c: [GOOD[c]] for c in CONSENT_COLUMNS}, "phone_number": ["+1"]},
                              drop_unknown_columns=True, now=NOW)
    assert err.value.columns == ("phone_number",)


def test_header_only_file_imports_nothing(tmp_path: Path, ledger: ConsentLedger) -> None:
    report = ledger.import_csv(_write_csv(tmp_path / "h.csv", []), now=NOW)
    assert report.input_rows == 0 and report.committed


def test_ids_are_not_reinterpreted(tmp_path: Path, ledger: ConsentLedger) -> None:
    rows = _good_rows(2)
    rows[0]["person_id"], rows[1]["person_id"] = "007", "7"
    ledger.import_csv(_write_csv(tmp_path / "ids.csv", rows), now=NOW)
    assert set(ledger.snapshot().persons.tolist()) == set(PZ.pseudonymize(["007", "7"]).tolist())


@pytest.mark.parametrize("value, expected", [
    ("2024-03-01T10:00:00Z", 1709287200), ("2024-03-01T10:00:00+00:00", 1709287200),
    ("2024-03-01T12:00:00+02:00", 1709287200), ("2024-03-01 10:00:00", 1709287200),
    ("1709287200", 1709287200), (1709287200, 1709287200), (1709287200.9, 1709287200),
    (np.datetime64("2024-03-01T10:00:00"), 1709287200),
])
def test_updated_at_formats(ledger: ConsentLedger, value: Any, expected: int) -> None:
    ledger.import_records([{**GOOD, "updated_at": value}], now=NOW)
    assert ledger.history("acct-1001")[0]["updated_at"] == expected


def test_records_must_be_columns_or_rows(ledger: ConsentLedger) -> None:
    with pytest.raises(SchemaError, match="records must be"):
        ledger.import_records(42)
    with pytest.raises(SchemaError, match="every record must be a mapping"):
        ledger.import_records([GOOD, ["not", "a", "mapping"]])
    with pytest.raises(SchemaError, match="different lengths"):
        ledger.import_records({**{c: [GOOD[c]] for c in CONSENT_COLUMNS}, "deleted": [False, True]})


def test_large_files_take_the_same_path_as_records(tmp_path: Path) -> None:
    """Over 1024 rows, Arrow string columns are dictionary-encoded before numpy: same result as records."""
    n = 3000
    k = np.arange(n)
    jurisdiction = np.where(k % 4 == 0, None, np.where(k % 2 == 0, "CN", "US-CA")).astype(object)
    columns: dict[str, Any] = {
        "person_id": np.array([f"acct-{i}" for i in k], dtype=object),
        "birth_year": np.where(k % 5 == 0, np.nan, 1950 + k % 50),
        "ads_personalization": np.where(k % 3 == 0, "opt_out", "opt_in").astype(object),
        "cross_service": k % 2 == 0, "policy_version": np.array(["2018-05-14"] * n, dtype=object),
        "updated_at": 1_700_000_000 + k, "deleted": k % 97 == 0, "terminated": k % 89 == 0,
        "location_deleted": k % 7 == 0, "jurisdiction": jurisdiction,
    }
    pq.write_table(pa.table({name: pa.array(v, from_pandas=True) for name, v in columns.items()}),
                   tmp_path / "big.parquet")
    rows = [{name: _csv_value(v[i]) if v[i] is not None else "" for name, v in columns.items()} for i in range(n)]
    _write_csv(tmp_path / "big.csv", rows)
    snaps = []
    for name in ("records", "csv", "parquet"):
        with ConsentLedger(tmp_path / f"{name}.sqlite", PZ) as led:
            if name == "records":
                led.import_records(columns, now=NOW)
            else:
                getattr(led, f"import_{name}")(tmp_path / f"big.{name}", now=NOW)
            snaps.append(led.snapshot())
    assert len(snaps[0]) == n and snaps[0].equals(snaps[1]) and snaps[0].equals(snaps[2])
    assert int((snaps[0].jurisdiction == "").sum()) == int(((k % 4 == 0) | (k % 97 == 0)).sum())
