"""Reading tabular sources (Parquet, CSV, Arrow, pandas, a mapping of arrays) into named columns.

Every failure becomes one typed error naming the path or the column; no raw pyarrow or numpy traceback escapes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from adtarget._core._files import describe, flat_columns, holds_utf16, read_parquet_table, regular_file
from adtarget.exceptions import InputFormatError, SchemaError

__all__ = ["read_columns"]

_PARQUET_SUFFIXES = (".parquet", ".pq")
# Identifier-like CSV columns are read as text, never inferred as numbers: "007" stays "007" (as the consent
# reader keeps it), so one account id pseudonymises alike in events and consent.
_TEXT_COLUMNS: tuple[str, ...] = ("person_id", "service", "category", "kind", "region")
_CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv")


def _text_columns() -> dict[str, Any]:
    """CSV column types: the identifier-like columns and the breakdown dimensions' event columns as text."""
    from adtarget.reference._breakdowns import coded_event_dimensions

    return {name: "string" for name in (*_TEXT_COLUMNS, *(d.source for d in coded_event_dimensions()))}


def read_columns(source: Any, *, what: str = "events") -> tuple[dict[str, Any], int]:
    """Return ``({column: values}, n_rows)`` for a path, Arrow table, pandas DataFrame or mapping of arrays."""
    if isinstance(source, (str, os.PathLike)):
        return _table_columns(_read_path(Path(source), what))
    module = type(source).__module__.split(".")[0]
    if module == "pyarrow" and hasattr(source, "column_names"):
        return _table_columns(_validated(source, what, "the Arrow table"))
    if module == "pandas" and hasattr(source, "columns"):
        return _pandas_columns(source, what)
    if isinstance(source, Mapping):
        return _mapping_columns(source, what)
    raise SchemaError(
        f"{what}: source must be a file path, a pyarrow Table, a pandas DataFrame or a mapping of column name to "
        f"array; got {type(source).__name__}"
    )


def _read_path(path: Path, what: str) -> Any:
    if not path.exists():
        raise InputFormatError(f"{what}: {path} does not exist")
    name = path.name.lower()
    if path.is_dir() or name.endswith(_PARQUET_SUFFIXES):
        return _validated(read_parquet_table(path, what, dictionary_strings=True), what, str(path))
    if name.endswith(_CSV_SUFFIXES):
        return _read_csv(regular_file(path, what), what)
    regular_file(path, what)
    raise InputFormatError(
        f"{what}: {path} has an unsupported extension; use Parquet ({', '.join(_PARQUET_SUFFIXES)}) "
        f"or CSV ({', '.join(_CSV_SUFFIXES)})"
    )


def _read_csv(path: Path, what: str) -> Any:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    if path.stat().st_size == 0:
        raise InputFormatError(f"{what}: {path} is empty")
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head == b"PAR1":
        raise InputFormatError(f"{what}: {path} is named like CSV but holds Parquet data")
    gz = path.name.lower().endswith(".gz")
    if head[:2] == b"\x1f\x8b" and not gz:
        raise InputFormatError(f"{what}: {path} holds gzip-compressed data; name it .csv.gz")
    if not gz and holds_utf16(path):  # pyarrow would read it as UTF-8 and fail on a later line
        raise InputFormatError(f"{what}: {path} holds UTF-16 text; save it as UTF-8")
    delimiter = "\t" if path.name.lower().endswith(".tsv") else ","
    try:
        table = pcsv.read_csv(
            path,
            parse_options=pcsv.ParseOptions(delimiter=delimiter),
            # text columns: only an empty field is missing; "NA" and "null" are values (NA is Namibia), as in consent
            convert_options=pcsv.ConvertOptions(strings_can_be_null=False, column_types=_text_columns()),
        )
    except pa.ArrowInvalid as exc:
        if str(exc).startswith("CSV parse error") and not gz:
            raise InputFormatError(f"{what}: {path} {_malformed_line(path, delimiter)} has another number of fields "
                                   f"than the header; fix or remove that row") from None
        raise InputFormatError(f"{what}: {path} is not a readable CSV file ({describe(exc)})") from None
    except (pa.ArrowTypeError, UnicodeDecodeError, OSError) as exc:
        raise InputFormatError(f"{what}: {path} is not a readable CSV file ({describe(exc)})") from None
    try:
        names = table.column_names
    except UnicodeDecodeError:
        raise InputFormatError(f"{what}: {path} has a header that is not UTF-8 text") from None
    if not names:
        raise InputFormatError(f"{what}: {path} has no header row")
    if names[0].startswith("\ufeff"):  # a UTF-8 byte-order mark before the header
        table = table.rename_columns([names[0][1:], *names[1:]])
    return table


def _malformed_line(path: Path, delimiter: str) -> str:
    """``"line N"`` of the first row whose field count differs from the header's, found by a second pass with
    the standard library's reader (only on this error path), or ``"a row"`` when it cannot say."""
    import csv

    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            width = len(next(reader, []))
            for row in reader:
                if row and len(row) != width:
                    return f"line {reader.line_num}"
    except csv.Error:
        pass
    return "a row"


def _validated(table: Any, what: str, where: str) -> Any:
    """Full Arrow validation (dictionary indices in range, valid UTF-8): corrupted files and hand-built tables
    become one InputFormatError instead of an IndexError deep inside ingestion."""
    import pyarrow as pa

    flat_columns(table.schema, what)
    try:
        table.validate()
        for column in table.columns:
            _validate_column(column)
    except (pa.ArrowInvalid, pa.ArrowException) as exc:
        raise InputFormatError(f"{what}: {where} holds invalid Arrow data ({describe(exc)})") from None
    return table


def _validated_column(column: Any, what: str, name: str) -> Any:
    import pyarrow as pa

    flat_columns(pa.schema([pa.field(name, column.type)]), what)
    where = f"column {name!r}"
    try:
        _validate_column(column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column]))
    except (pa.ArrowInvalid, pa.ArrowException) as exc:
        raise InputFormatError(f"{what}: {where} holds invalid Arrow data ({describe(exc)})") from None
    return column


def _validate_column(column: Any) -> None:
    """``validate(full=True)``, except that a dictionary column's indices are checked by their range (what the
    full validation checks of them, at a fraction of its cost) and each distinct dictionary fully, once."""
    import pyarrow as pa

    if not pa.types.is_dictionary(column.type):
        column.validate(full=True)
        return
    column.validate()
    checked = None
    for chunk in column.chunks:
        if checked is None or chunk.dictionary is not checked:
            chunk.dictionary.validate(full=True)
            checked = chunk.dictionary
        _check_indices(chunk)


def _check_indices(chunk: Any) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(chunk) == chunk.null_count:
        return
    if chunk.null_count:
        bounds = pc.min_max(chunk.indices)
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
    else:
        from adtarget.events._factorize_kernels import index_range

        low, high = index_range(chunk.indices.to_numpy())
    if low < 0 or high >= len(chunk.dictionary):
        raise pa.ArrowInvalid(f"dictionary indices must be in [0, {len(chunk.dictionary)}); found {low}..{high}")


def _table_columns(table: Any) -> tuple[dict[str, Any], int]:
    return {name: table.column(i) for i, name in enumerate(table.column_names)}, table.num_rows


def _unconvertible(frame: Any) -> str:
    """The first column of ``frame`` Arrow cannot convert (its name only)."""
    import pyarrow as pa

    for name in frame.columns:
        try:
            pa.Array.from_pandas(frame[name])
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            return "".join(c if c.isprintable() else "?" for c in str(name))[:40]
    return "?"


def _pandas_columns(frame: Any, what: str) -> tuple[dict[str, Any], int]:
    import pyarrow as pa

    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise SchemaError(f"{what}: DataFrame column {_unconvertible(frame)!r} has mixed or unsupported types "
                          f"({describe(exc)}); give each column one type (e.g. ids all str or all int)") from None
    flat_columns(table.schema, what)
    return _table_columns(table)


def _mapping_columns(mapping: Mapping[Any, Any], what: str) -> tuple[dict[str, Any], int]:
    columns: dict[str, Any] = {}
    for key, values in mapping.items():
        if not isinstance(key, str):
            raise SchemaError(f"{what}: column names must be strings; got {key!r}")
        if type(values).__module__.split(".")[0] == "pyarrow" and hasattr(values, "null_count"):
            columns[key] = _validated_column(values, what, key)  # 1-D; not copied to numpy
            continue
        array = values if hasattr(values, "__array__") or hasattr(values, "to_numpy") else np.asarray(values)
        if np.ndim(array) != 1:
            raise SchemaError(f"{what}: column {key!r} must be one-dimensional; got shape {np.shape(array)}")
        columns[key] = array
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        first = next(iter(lengths))
        other = next(n for n, k in lengths.items() if k != lengths[first])
        raise SchemaError(f"{what}: columns have different lengths (column {other!r} is not as long as {first!r})")
    return columns, next(iter(lengths.values()), 0)
