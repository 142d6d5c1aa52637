"""Deletion and retention on files the SDK owns (promise P7): rewrite Parquet datasets without the rows of
forgotten persons or past retention, and forget a person everywhere.

A rewrite streams row groups into a temporary file beside the original and replaces it with ``os.replace``
(atomic on POSIX): a crash leaves each file either as it was or fully purged, and re-running completes the job.
A dataset directory is purged file by file. The consent ledger is marked first, so the gate already excludes
a forgotten person while their files are being rewritten.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from adtarget._core._atomic import atomic_path
from adtarget._core._files import dataset_files
from adtarget.events._schema import EVENT_KINDS
from adtarget.exceptions import InputFormatError, ParameterError
from adtarget.gate._policy import EligibilityPolicy

if TYPE_CHECKING:
    import numpy.typing as npt

    from adtarget.consent._ledger import ConsentLedger
    from adtarget.events._pseudonym import Pseudonymizer

__all__ = ["PurgeReport", "forget_everywhere", "purge_assignments", "purge_events"]


@dataclass(frozen=True)
class PurgeReport:
    """Rows read, kept and removed per reason, over every file rewritten."""

    files: int
    rows_in: int
    removed_forgotten: int
    removed_retention: int

    @property
    def rows_kept(self) -> int:
        return self.rows_in - self.removed_forgotten - self.removed_retention

    def __add__(self, other: PurgeReport) -> PurgeReport:
        return PurgeReport(self.files + other.files, self.rows_in + other.rows_in,
                           self.removed_forgotten + other.removed_forgotten,
                           self.removed_retention + other.removed_retention)


def _parquet_files(path: str | os.PathLike[str]) -> list[Path]:
    root = Path(path)
    if not root.exists():
        raise InputFormatError(f"purge: {root} does not exist")
    # the same files ingest reads from a dataset directory (an extension-less Spark part file included)
    files = dataset_files(root, "purge") if root.is_dir() else [root]
    for file in files:  # a purge killed mid-write leaves its temporary file; it holds a subset of the rows
        for stale in file.parent.glob(f".{file.name}.*.tmp"):
            stale.unlink(missing_ok=True)
    return files


def purge_events(
    path: str | os.PathLike[str],
    *,
    pseudonymizer: Pseudonymizer,
    forgotten: npt.ArrayLike | None = None,
    policy: EligibilityPolicy | None = None,
    now: float | None = None,
) -> PurgeReport:
    """Rewrite an events Parquet file or dataset directory without forgotten persons' rows and, when
    ``policy`` is given, without rows past their kind's retention at ``now``.

    Parameters
    ----------
    forgotten : pseudonyms (uint64) of persons to remove, e.g. ``snapshot.persons[snapshot.deleted]``.
    policy : retention windows per event kind; ``None`` keeps rows of every age.
    """
    removed = np.unique(np.asarray(forgotten if forgotten is not None else [], dtype=np.uint64))
    oldest = None
    if policy is not None:
        oldest = float(time.time() if now is None else now) - np.asarray(policy.retention_seconds(), dtype=float)
    total = PurgeReport(0, 0, 0, 0)
    for file in _parquet_files(path):
        total = total + _rewrite(file, lambda batch: _event_masks(batch, pseudonymizer, removed, oldest))
    return total


def purge_assignments(path: str | os.PathLike[str], forgotten: npt.ArrayLike) -> PurgeReport:
    """Rewrite an assignments Parquet file (column ``pseudonym``, hex) without the forgotten persons."""
    from adtarget.events._pseudonym import pseudonyms_to_hex

    removed = set(pseudonyms_to_hex(np.asarray(forgotten, dtype=np.uint64)).tolist())

    def masks(batch: Any) -> tuple[np.ndarray, np.ndarray]:
        hexes = np.asarray(batch.column("pseudonym").to_numpy(zero_copy_only=False)).astype(str)
        return np.isin(hexes, list(removed)), np.zeros(batch.num_rows, dtype=bool)

    total = PurgeReport(0, 0, 0, 0)
    for file in _parquet_files(path):
        total = total + _rewrite(file, masks)
    return total


def _event_masks(batch: Any, pseudonymizer: Any, removed: np.ndarray,
                 oldest: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    from adtarget.events._parsing import factorize, parse_timestamps

    names = batch.schema.names
    if "person_id" not in names:
        raise InputFormatError("purge: the events file has no person_id column")
    uniques, codes = factorize(batch.column("person_id"), "person_id")
    pseudonyms, valid = pseudonymizer.pseudonymize_with_mask(uniques)
    hit = np.isin(pseudonyms, removed) & valid
    forgotten = (codes >= 0) & hit[np.maximum(codes, 0)] if uniques.size else np.zeros(batch.num_rows, bool)
    expired = np.zeros(batch.num_rows, dtype=bool)
    if oldest is not None and "ts" in names:
        ts = parse_timestamps(batch.column("ts"), "ts")
        kind = np.full(batch.num_rows, EVENT_KINDS.index("content_view"))
        if "kind" in names:
            k_uniques, k_codes = factorize(batch.column("kind"), "kind")
            known = np.array([EVENT_KINDS.index(k) if k in EVENT_KINDS else EVENT_KINDS.index("content_view")
                              for k in k_uniques], dtype=np.int64)
            kind = np.where(k_codes >= 0, known[np.maximum(k_codes, 0)] if known.size else 0, kind)
        expired = ts < oldest[kind]
    return forgotten, expired & ~forgotten


def _rewrite(file: Path, masks: Any) -> PurgeReport:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        source = pq.ParquetFile(file)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputFormatError(f"purge: {file} is not a readable Parquet file ({exc})") from None
    rows_in = forgotten_n = expired_n = 0
    kept = []
    for batch in source.iter_batches(batch_size=1 << 20):
        table = pa.Table.from_batches([batch])
        forgotten, expired = masks(table)
        rows_in += table.num_rows
        forgotten_n += int(forgotten.sum())
        expired_n += int(expired.sum())
        kept.append(pa.array(~(forgotten | expired)))
    if forgotten_n or expired_n:  # second pass writes; untouched files are not rewritten
        with atomic_path(file) as temporary, pq.ParquetWriter(temporary, source.schema_arrow) as writer:
            for batch, keep in zip(source.iter_batches(batch_size=1 << 20), kept):
                writer.write_table(pa.Table.from_batches([batch]).filter(keep))
    return PurgeReport(1, rows_in, forgotten_n, expired_n)


def forget_everywhere(
    person_ids: Iterable[Any],
    *,
    ledger: ConsentLedger,
    pseudonymizer: Pseudonymizer,
    events: Iterable[str | os.PathLike[str]] = (),
    assignments: Iterable[str | os.PathLike[str]] = (),
) -> PurgeReport:
    """Forget persons in the consent ledger first, then purge their rows from event and assignment files."""
    ids = list(person_ids)
    if not ids:
        raise ParameterError("person_ids must name at least one person")
    for person_id in ids:
        ledger.forget(person_id)
    pseudonyms = np.array([pseudonymizer.pseudonymize_one(p) for p in ids], dtype=np.uint64)
    total = PurgeReport(0, 0, 0, 0)
    for path in events:
        total = total + purge_events(path, pseudonymizer=pseudonymizer, forgotten=pseudonyms)
    for path in assignments:
        total = total + purge_assignments(path, pseudonyms)
    return total
