"""Cheap checks of an events file before any heavy work: it exists, has a readable extension, and its header
names only contract columns (identifying columns are refused by name). The library checks again on ingest;
these checks only make a wrong file fail in a second instead of after the imports and the consent step."""

from __future__ import annotations

import csv
from pathlib import Path

from adtarget.cli._errors import CommandInputError

__all__ = ["check_events_path"]

_PARQUET = (".parquet", ".pq")
_CSV = (".csv", ".tsv")


def check_events_path(path: Path) -> None:
    """Raise CommandInputError (missing file, unknown extension), InputFormatError (not a regular file, nested
    columns, files of a dataset that disagree) or SchemaError (refused column, in any file of a dataset)."""
    from adtarget._core._files import parquet_schema, regular_file
    from adtarget.events._schema import check_columns

    if not path.exists():
        raise CommandInputError(f"--events {str(path)!r} does not exist", hint="check the path")
    name = path.name.lower()
    if path.is_dir() or name.endswith(_PARQUET):
        check_columns(parquet_schema(path, "events").names)
        return
    if not name.endswith(_CSV + (".csv.gz",)):
        raise CommandInputError(f"--events {str(path)!r} must end in .parquet, .pq, .csv, .csv.gz or .tsv",
                                hint="write the events as Parquet or CSV")
    columns = _csv_columns(regular_file(path, "events"), name)
    if columns:
        check_columns(columns)


def _csv_columns(path: Path, name: str) -> list[str] | None:
    if not name.endswith(_CSV):
        return None
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return next(csv.reader(handle, delimiter="\t" if name.endswith(".tsv") else ","), None)
    except (UnicodeDecodeError, OSError, csv.Error):
        return None
