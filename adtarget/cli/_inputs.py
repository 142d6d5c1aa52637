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
    """Raise CommandInputError (missing file, unknown extension) or SchemaError (refused column)."""
    from adtarget.events._schema import check_columns

    if not path.exists():
        raise CommandInputError(f"--events {str(path)!r} does not exist", hint="check the path")
    if path.is_dir():
        return  # a Parquet dataset directory: the reader checks it
    name = path.name.lower()
    if not name.endswith(_PARQUET + _CSV + (".csv.gz",)):
        raise CommandInputError(f"--events {str(path)!r} must end in .parquet, .pq, .csv, .csv.gz or .tsv",
                                hint="write the events as Parquet or CSV")
    columns = _parquet_columns(path) if name.endswith(_PARQUET) else _csv_columns(path, name)
    if columns:
        check_columns(columns)


def _parquet_columns(path: Path) -> list[str] | None:
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(path).names)
    except Exception:  # noqa: BLE001 - unreadable: the library's reader names the problem
        return None


def _csv_columns(path: Path, name: str) -> list[str] | None:
    if not name.endswith(_CSV):
        return None
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            return next(csv.reader(handle, delimiter="\t" if name.endswith(".tsv") else ","), None)
    except (UnicodeDecodeError, OSError, csv.Error):
        return None
