"""The consent contract's columns (DESIGN.md §3 "Consent"): what is required, what is refused, and reading
sources (CSV, Parquet, pandas, Arrow, mappings, row dicts) into raw numpy columns.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from adtarget._core._files import describe, holds_utf16, read_parquet_table, regular_file
from adtarget.events._header_checks import check_contract_columns, listed_columns
from adtarget.events._header_checks import identifying_columns as _identifying
from adtarget.exceptions import InputFormatError, SchemaError

__all__ = ["CONSENT_COLUMNS", "check_columns", "identifying_columns", "read_csv", "read_parquet",
           "read_records"]

CONSENT_COLUMNS: tuple[str, ...] = (
    "person_id", "birth_year", "ads_personalization", "cross_service", "policy_version", "updated_at",
    "deleted", "terminated", "location_deleted", "jurisdiction",
)

def identifying_columns(columns: Iterable[str]) -> tuple[str, ...]:
    """The columns whose names mark them as identifying (P1, P11), in input order."""
    return _identifying(columns, CONSENT_COLUMNS)


def check_columns(columns: Iterable[str], *, drop_unknown_columns: bool = False) -> tuple[str, ...]:
    """Validate column names against the consent contract; return the unknown columns that were dropped.
    ``birth_year`` and ``jurisdiction`` are required columns that may hold nulls."""
    _, unknown = check_contract_columns(
        columns, what="consent", required=CONSENT_COLUMNS, drop_unknown_columns=drop_unknown_columns,
        refusal="the consent ledger never stores names, contact details, network or device ids, coordinates "
                "or dates of birth; remove them",
    )
    return unknown


def read_csv(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``(columns, malformed)``: every field as a ``str`` object array (nothing inferred, so "007" stays
    "007"), and a mask of rows whose field count differs from the header's. Uses pyarrow's parser when
    installed, the standard library's otherwise or when a row is malformed (to number the rows exactly)."""
    file = _existing(path)
    header = _csv_header(file)
    fast = _read_csv_arrow(file, header)
    if fast is not None:
        return fast, np.zeros(len(next(iter(fast.values()))), dtype=bool)
    try:
        with open(file, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            next(reader, None)
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputFormatError(f"consent: {file} is not a readable UTF-8 CSV file ({describe(exc)})") from None
    width = len(header)
    malformed = np.fromiter((len(r) != width for r in rows), dtype=bool, count=len(rows))
    if malformed.any():
        rows = [r if len(r) == width else [""] * width for r in rows]
    columns = list(zip(*rows)) if rows else [() for _ in header]
    return {name: _objects(col) for name, col in zip(header, columns)}, malformed


def _csv_header(file: Path) -> list[str]:
    if holds_utf16(file):
        raise InputFormatError(f"consent: {file} holds UTF-16 text; save it as UTF-8")
    try:
        with open(file, encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle), None)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputFormatError(f"consent: {file} is not a readable UTF-8 CSV file ({describe(exc)})") from None
    if not header or not any(h.strip() for h in header):
        raise InputFormatError(f"consent: {file} has no header row")
    names = [h.strip() for h in header]
    if not set(CONSENT_COLUMNS) & set(names):  # no header row: these "names" are the first record
        raise SchemaError(f"consent: none of the required columns {list(CONSENT_COLUMNS)} is in {file.name}'s "
                          f"header (is the header row missing?)")
    counts = Counter(names)
    duplicated = sorted(c for c, k in counts.items() if k > 1)
    if duplicated:
        raise SchemaError(f"consent: duplicate column(s) {listed_columns(duplicated)}; each column may appear once")
    return names


def _read_csv_arrow(file: Path, header: list[str]) -> dict[str, np.ndarray] | None:
    """All columns as strings with pyarrow; None if pyarrow is missing or some row is malformed."""
    try:
        import pyarrow as pa
        import pyarrow.csv as pcsv
    except ImportError:  # pragma: no cover - pyarrow comes with the parquet extra
        return None
    invalid: list[bool] = []

    def on_invalid(_row: Any) -> str:
        invalid.append(True)
        return "skip"

    try:
        table = pcsv.read_csv(
            file,
            read_options=pcsv.ReadOptions(column_names=header, skip_rows=1),
            parse_options=pcsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid),
            convert_options=pcsv.ConvertOptions(column_types={h: pa.string() for h in header},
                                                strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError, OSError) as exc:
        raise InputFormatError(f"consent: {file} is not a readable UTF-8 CSV file ({_first_line(exc)})") from None
    return None if invalid else _arrow_columns(table)


def read_parquet(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``(columns, malformed)`` of a Parquet file or dataset directory (the union of its files' columns; each
    file must hold every contract column that any of them has, so a file without ``birth_year`` is refused,
    not read as unknown ages)."""
    table = read_parquet_table(Path(path), "consent", required_in_each=CONSENT_COLUMNS)
    return _arrow_columns(table), np.zeros(table.num_rows, dtype=bool)


def read_records(records: Any) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``(columns, malformed)`` of a mapping of columns, a pandas DataFrame, a pyarrow Table, or an iterable
    of row mappings (a key missing from a row reads as null)."""
    module = type(records).__module__.split(".")[0]
    if module == "pyarrow" and hasattr(records, "column_names"):
        columns = _arrow_columns(records)
    elif module == "pandas" and hasattr(records, "columns"):
        columns = {str(c): _column(records[c].to_numpy(), str(c)) for c in records.columns}
    elif isinstance(records, Mapping):
        columns = {str(k): _column(v, str(k)) for k, v in records.items()}
    elif isinstance(records, Iterable) and not isinstance(records, (str, bytes)):
        columns = _row_columns(list(records))
    else:
        raise SchemaError(f"consent: records must be a mapping of columns, a DataFrame, a pyarrow Table or an "
                          f"iterable of row mappings; received {type(records).__name__}")
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise SchemaError(f"consent: columns have different lengths {sorted(lengths)}")
    return columns, np.zeros(lengths.pop() if lengths else 0, dtype=bool)


def _row_columns(rows: list[Any]) -> dict[str, np.ndarray]:
    if not all(isinstance(r, Mapping) for r in rows):
        raise SchemaError("consent: every record must be a mapping of column name to value")
    names = list(dict.fromkeys(k for r in rows for k in r))
    return {str(n): _objects([r.get(n) for r in rows]) for n in names}


def _column(values: Any, name: str) -> np.ndarray:
    if type(values).__module__.split(".")[0] == "pyarrow":
        values = _arrow_to_numpy(values)
    array = np.asarray(values) if hasattr(values, "__array__") else _objects(list(values))
    if array.ndim != 1:
        raise SchemaError(f"consent: column {name!r} must be one-dimensional; received shape {array.shape}")
    return array


def _arrow_to_numpy(values: Any) -> np.ndarray:
    """An Arrow column as numpy. A low-cardinality string column is dictionary-encoded first, so only its
    distinct values become Python strings (then gathered; nulls become None)."""
    import pyarrow as pa

    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)) or len(values) < 1024:
        return np.asarray(values.to_numpy(zero_copy_only=False))
    array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    encoded = array.dictionary_encode()
    if len(encoded.dictionary) * 4 > len(array):
        return np.asarray(array.to_numpy(zero_copy_only=False))
    distinct = _objects([*encoded.dictionary.to_pylist(), None])
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    return distinct[codes]


def _arrow_columns(table: Any) -> dict[str, np.ndarray]:
    return {name: _column(table.column(name), name) for name in table.column_names}


def _objects(values: Any) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = list(values)
    return array


def _existing(path: str | os.PathLike[str]) -> Path:
    file = regular_file(Path(path), "consent")  # a FIFO or a device is refused before it is opened
    if file.stat().st_size == 0:
        raise InputFormatError(f"consent: {file} is empty")
    return file


def _first_line(exc: BaseException) -> str:
    return describe(exc)  # never the row or value pyarrow quotes after its first ": "
