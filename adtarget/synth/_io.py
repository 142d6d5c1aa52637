"""Writers for synthetic data: events and consent records as Parquet or CSV files (pyarrow, imported on use).

Parquet keeps timestamps as int64 epoch seconds and dictionary-encodes the events' string columns straight from
the generator's codes; CSV writes timestamps as ISO-8601 UTC strings, formatted with numpy (no per-row Python).
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from adtarget._core._atomic import atomic_path
from adtarget.exceptions import ParameterError
from adtarget.synth._model import SyntheticData

__all__ = ["write_consent", "write_events"]


def write_events(data: SyntheticData, path: str | PathLike[str]) -> Path:
    """Write ``data.events`` as Parquet (``.parquet``/``.pq``) or CSV (``.csv``) by extension.

    Parquet keeps ``ts`` as int64 epoch seconds and dictionary-encodes the string columns; CSV writes ``ts`` as
    ISO-8601 UTC (``2026-10-31T23:59:59Z``). Returns the path written. Needs pyarrow.
    """
    import pyarrow as pa

    fmt, path = _file_format(path)
    ev = data.events
    cols: dict[str, Any] = {"person_id": pa.array(ev["person_id"], type=pa.int64())}
    for col in ("service", "ts", "category", "kind", "region"):
        cols[col] = _timestamps(ev["ts"], fmt) if col == "ts" else _strings(data, col, fmt)
    cols["weight"] = pa.array(ev["weight"], type=pa.float64())
    _write_table(pa.table(cols), path, fmt)
    return path


def write_consent(data: SyntheticData, path: str | PathLike[str]) -> Path:
    """Write ``data.consent`` as CSV (``.csv``) or Parquet (``.parquet``/``.pq``) by extension.

    ``birth_year`` is a nullable integer and an unknown ``jurisdiction`` is null (empty in CSV); ``updated_at``
    is int64 epoch seconds in Parquet and ISO-8601 UTC in CSV. Returns the path written. Needs pyarrow.
    """
    import pyarrow as pa

    fmt, path = _file_format(path)
    c = data.consent
    birth_year = c["birth_year"]
    unknown_year = np.isnan(birth_year)
    cols = {
        "person_id": pa.array(c["person_id"], type=pa.int64()),
        "birth_year": pa.array(np.where(unknown_year, 0, birth_year).astype(np.int16), mask=unknown_year),
        "ads_personalization": pa.array(c["ads_personalization"], type=pa.string()),
        "cross_service": pa.array(c["cross_service"]),
        "policy_version": pa.array(c["policy_version"], type=pa.string()),
        "updated_at": _timestamps(c["updated_at"], fmt),
        **{col: pa.array(c[col]) for col in ("deleted", "terminated", "location_deleted")},
        "jurisdiction": pa.array(c["jurisdiction"], type=pa.string(), mask=c["jurisdiction"] == ""),
    }
    _write_table(pa.table(cols), path, fmt)
    return path


def _file_format(path: str | PathLike[str]) -> tuple[str, Path]:
    p = Path(path)
    name = p.name.lower()
    for fmt, suffixes in (("parquet", (".parquet", ".pq")), ("csv", (".csv",))):
        if name.endswith(suffixes):
            return fmt, p
    raise ParameterError(f"path must end in .parquet, .pq or .csv, got {p.name!r}")


def _strings(data: SyntheticData, col: str, fmt: str) -> Any:
    """A string column: dictionary-encoded from the generator's codes when the array is unchanged."""
    import pyarrow as pa

    array = data.events[col]
    cached = data._codes.get(col)
    if cached is not None and cached[0] is array:
        encoded = pa.DictionaryArray.from_arrays(pa.array(cached[1], type=pa.int32()),
                                                 pa.array(list(cached[2]), type=pa.string()))
    else:
        encoded = pa.array(array, type=pa.string()).dictionary_encode()
    return encoded if fmt == "parquet" else encoded.cast(pa.string())


def _timestamps(ts: np.ndarray, fmt: str) -> Any:
    """int64 epoch seconds for Parquet; ISO-8601 ``YYYY-MM-DDTHH:MM:SSZ`` strings for CSV (vectorised)."""
    import pyarrow as pa

    ts = np.asarray(ts, dtype=np.int64)
    if fmt == "parquet":
        return pa.array(ts, type=pa.int64())
    day, second = np.divmod(ts, 86_400)
    first = int(day.min()) if ts.size else 0
    dates = np.datetime_as_string(np.arange(first, first + (int(day.max()) - first + 1 if ts.size else 1))
                                  .astype("datetime64[D]")).astype("S10")
    out = np.empty((ts.size, 20), dtype=np.uint8)
    out[:, :10] = dates.view(np.uint8).reshape(-1, 10)[day - first]
    out[:, [10, 13, 16, 19]] = np.frombuffer(b"T::Z", dtype=np.uint8)
    for col, value in ((11, second // 3600), (14, second // 60 % 60), (17, second % 60)):
        out[:, col] = 48 + value // 10
        out[:, col + 1] = 48 + value % 10
    return pa.array(out.reshape(-1).view("S20"), type=pa.binary(20)).cast(pa.string())


def _write_table(table: Any, path: Path, fmt: str) -> None:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    with atomic_path(path) as temporary:  # synthetic persons are still person-level rows: 0600 like real ones
        if fmt == "parquet":
            pq.write_table(table, temporary)
        else:
            pacsv.write_csv(table, temporary)
