"""ConsentLedger: the persistent consent store (SQLite, one file, WAL), with append-only history, current
state, and snapshots as of any time (promises P3, P6, P7, P8, P10, P11, P12).
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from adtarget.consent._contract import check_columns, read_csv, read_parquet, read_records
from adtarget.consent._import import (
    ConsentImportError,
    ImportReport,
    rejection_message,
    validate_columns,
)
from adtarget.consent._schema import connect, ensure_schema
from adtarget.consent._single import single_record
from adtarget.consent._snapshot import ConsentSnapshot
from adtarget.consent._store import (
    latest_before,
    read_current,
    read_history,
    read_state,
    state_as_of,
    write_records,
)
from adtarget.events._parsing import blank_values, invalid_id_values
from adtarget.events._pseudonym import Pseudonymizer, pseudonyms_to_hex
from adtarget.exceptions import ConsentError, LedgerError, ParameterError

__all__ = ["ConsentLedger"]


def _import_rejects(person_id: Any) -> str | None:
    """The reason a consent import would reject ``person_id`` (``invalid_person_id`` for a control character,
    ``missing_person_id`` for a blank string), or None; the same tests as imports and events."""
    if not isinstance(person_id, str):
        return None  # an int is always valid; pseudonymize_one refuses the other types
    value = np.array([person_id], dtype=object)
    if invalid_id_values(value)[0]:
        return "invalid_person_id"
    return "missing_person_id" if blank_values(value)[0] else None


def _never_imported(reason: str) -> ParameterError:
    what = "holds a control character" if reason == "invalid_person_id" else "is blank"
    return ParameterError(f"person_id: {what}, so no consent import accepts it ({reason}); no consent is "
                          f"recorded for such an id")


class ConsentLedger:
    """Consent records of every person, keyed by pseudonym, in one SQLite file.

    Parameters
    ----------
    path : str or path-like
        The ledger file; created (schema version 1) if it does not exist.
    pseudonymizer : Pseudonymizer
        Turns raw account ids into pseudonyms at once; the ledger refuses one with another key or algorithm.
    timeout : float
        Seconds a write waits for another process's write lock (SQLite ``busy_timeout``) before failing.

    Notes
    -----
    Last writer wins by ``updated_at`` (ties: the later write); older records still go to history. A record
    with ``deleted=True`` is stored scrubbed and erases the person's earlier history. Every write is one
    transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``): a crash leaves the ledger before or after it. Use one
    ledger object per thread; any number of processes may open the same file.
    """

    def __init__(self, path: str | os.PathLike[str], pseudonymizer: Pseudonymizer, *, timeout: float = 60.0,
                 ) -> None:
        if not isinstance(pseudonymizer, Pseudonymizer):
            raise ParameterError(f"pseudonymizer: must be a Pseudonymizer; received {type(pseudonymizer).__name__}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 3600:
            raise ParameterError(f"timeout: must be seconds in (0, 3600]; received {timeout!r}")
        self._path = Path(path)
        if self._path.is_dir():
            raise LedgerError(f"consent ledger {self._path}: is a directory, not a ledger file")
        self._pseudonymizer = pseudonymizer
        self._timeout = float(timeout)
        self._conn: sqlite3.Connection | None = connect(self._path, self._timeout)
        try:
            with self._guard():
                self._version = ensure_schema(self._conn, self._path, pseudonymizer)
        except BaseException:
            self.close()
            raise

    # --- plumbing ------------------------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        return self._path

    @property
    def key_id(self) -> str:
        """Fingerprint of the pseudonymisation key this ledger's pseudonyms were made with."""
        return self._pseudonymizer.key_id

    @property
    def schema_version(self) -> int:
        return self._version

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            busy = "locked" in str(exc) or "busy" in str(exc)
            hint = f"; another process held the write lock for more than timeout={self._timeout}s" if busy else ""
            raise LedgerError(f"consent ledger {self._path}: {exc}{hint}") from None
        except sqlite3.Error as exc:
            raise LedgerError(f"consent ledger {self._path}: {exc} (corrupted or not a consent ledger?)") from None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise LedgerError(f"consent ledger {self._path}: is closed")
        return self._conn

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        with self._guard():
            conn.execute(begin)
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> ConsentLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ConsentLedger({str(self._path)!r}, key_id={self.key_id!r}, schema_version={self._version})"

    # --- imports -------------------------------------------------------------------------------------------
    def import_csv(self, path: str | os.PathLike[str], *, strict: bool = True, source: str | None = None,
                   drop_unknown_columns: bool = False, now: float | None = None) -> ImportReport:
        """Import a consent CSV (header + contract columns, UTF-8). See :meth:`import_records`."""
        columns, malformed = read_csv(path)
        return self._import(columns, malformed, source or f"csv:{Path(path).name}", strict, drop_unknown_columns,
                            now)

    def import_parquet(self, path: str | os.PathLike[str], *, strict: bool = True, source: str | None = None,
                       drop_unknown_columns: bool = False, now: float | None = None) -> ImportReport:
        """Import a consent Parquet file. See :meth:`import_records`."""
        columns, malformed = read_parquet(path)
        return self._import(columns, malformed, source or f"parquet:{Path(path).name}", strict,
                            drop_unknown_columns, now)

    def import_records(self, records: Any, *, strict: bool = True, source: str = "records",
                       drop_unknown_columns: bool = False, now: float | None = None) -> ImportReport:
        """Import consent records: a mapping of columns, a DataFrame, a pyarrow Table or row mappings.

        Every row is validated first. With ``strict=True`` (default) any bad row rejects the whole import
        (:class:`ConsentImportError`, whose ``report`` lists rows and reasons) and nothing is written; with
        ``strict=False`` the good rows are imported and the bad ones reported. Either way the write is one
        transaction. Identifying or unknown columns raise :class:`RefusedColumnError`; ``now`` (epoch s)
        is the clock for the future-timestamp check.
        """
        columns, malformed = read_records(records)
        return self._import(columns, malformed, source, strict, drop_unknown_columns, now)

    def _import(self, columns: dict[str, np.ndarray], malformed: np.ndarray, source: str, strict: bool,
                drop_unknown_columns: bool, now: float | None) -> ImportReport:
        dropped = check_columns(columns, drop_unknown_columns=drop_unknown_columns)
        clock = time.time() if now is None else float(now)
        records, rows, reasons = validate_columns(columns, malformed, self._pseudonymizer, clock)
        report = ImportReport(source=source, input_rows=int(malformed.size), accepted=len(records),
                              rejected_rows=rows, rejected_reasons=reasons, strict=bool(strict),
                              dropped_columns=dropped)
        if strict and rows.size:
            raise ConsentImportError(rejection_message(report), report)
        with self._transaction("BEGIN IMMEDIATE") as conn:
            result = write_records(conn, records, recorded_at=int(time.time()), source=source)
        return dataclasses.replace(report, committed=True, applied=result.applied, erased=result.erased)

    # --- single updates ------------------------------------------------------------------------------------
    def record(self, person_id: Any, *, updated_at: Any = None, source: str = "api", **fields: Any) -> bool:
        """Record a change of some consent fields for one person; the other fields keep their value as of
        ``updated_at`` (default: now, or the person's latest ``updated_at`` if later). Returns whether the
        change is the person's current state (False if a newer record exists).

        A person with no record starts opted out, without cross-service use, with ``policy_version`` "".
        Opting in needs a ``policy_version``. A deleted person is reinstated only by ``deleted=False``.
        """
        return self._single(person_id, fields, updated_at, source, on_deleted="raise")

    def opt_out(self, person_id: Any, *, updated_at: Any = None, source: str = "api") -> bool:
        """Record that the person opted out of ads personalisation (P3)."""
        return self._single(person_id, {"ads_personalization": "opt_out"}, updated_at, source, on_deleted="skip")

    def opt_in(self, person_id: Any, *, policy_version: str, updated_at: Any = None, source: str = "api") -> bool:
        """Record that the person opted in under ``policy_version`` (P10)."""
        changes = {"ads_personalization": "opt_in", "policy_version": policy_version}
        return self._single(person_id, changes, updated_at, source, on_deleted="raise")

    def set_cross_service(self, person_id: Any, allowed: bool, *, updated_at: Any = None,
                          source: str = "api") -> bool:
        """Record whether the person allows using one service's data for ads in another (P2)."""
        if not isinstance(allowed, (bool, np.bool_)):
            raise ParameterError(f"allowed: must be a bool; received {type(allowed).__name__}")
        return self._single(person_id, {"cross_service": bool(allowed)}, updated_at, source,
                            on_deleted="skip" if not allowed else "raise")

    def forget(self, person_id: Any, *, source: str = "forget") -> None:
        """Mark the person deleted (P7) and erase their consent history except a scrubbed tombstone. Purging
        their events and derived data is the job of the modules that hold them. An id that no import accepts
        (blank, a control character) is forgotten only when the ledger holds it; otherwise ParameterError."""
        self._single(person_id, {"deleted": True}, None, source, on_deleted="write")

    def _single(self, person_id: Any, changes: dict[str, Any], updated_at: Any, source: str,
                on_deleted: str) -> bool:
        pseudonym = self._pseudonymizer.pseudonymize_one(person_id)
        hex_id = str(pseudonyms_to_hex(np.array([pseudonym], dtype=np.uint64))[0])
        rejected = _import_rejects(person_id)
        if rejected is not None and on_deleted != "write":
            raise _never_imported(rejected)
        now = time.time()
        with self._transaction("BEGIN IMMEDIATE") as conn:
            if rejected is not None and read_current(conn, hex_id) is None:  # forget: only an id stored earlier
                raise _never_imported(rejected)
            if updated_at is None:  # a call without a time comes after the current record, never ties it
                base = read_current(conn, hex_id)
                at = max(int(now), base["updated_at"] + 1) if base else int(now)
            else:
                at = _epoch(updated_at, "updated_at")
                base = latest_before(conn, hex_id, at)
            if base is not None and base["deleted"] and "deleted" not in changes:
                if on_deleted == "skip":
                    return False
                raise ConsentError("the person is deleted (forgotten); only a record with deleted=False "
                                   "reinstates them")
            record = single_record(pseudonym, base, changes, at, now)
            return write_records(conn, record, recorded_at=int(now), source=source).applied > 0

    # --- reads ---------------------------------------------------------------------------------------------
    def snapshot(self, as_of: Any = None) -> ConsentSnapshot:
        """Consent state of every person: current (``as_of=None``), or as of a past time (epoch seconds or an
        aware ``datetime``), reconstructed from history. Read in one transaction."""
        at = None if as_of is None else _epoch(as_of, "as_of")
        with self._transaction("BEGIN") as conn:
            columns = read_state(conn) if at is None else state_as_of(conn, at)
        return ConsentSnapshot.from_columns(columns, int(time.time()) if at is None else at)

    def history(self, person_id: Any) -> list[dict[str, Any]]:
        """The person's consent history, oldest first (fields, ``recorded_at``, ``source``)."""
        return self.export_person(person_id)["history"]

    def export_person(self, person_id: Any) -> dict[str, Any]:
        """Everything the ledger holds about one person, for an access request (P8); JSON-serialisable."""
        pseudonym = self._pseudonymizer.pseudonymize_one(person_id)
        hex_id = str(pseudonyms_to_hex(np.array([pseudonym], dtype=np.uint64))[0])
        with self._transaction("BEGIN") as conn:
            current, history = read_current(conn, hex_id), read_history(conn, hex_id)
        return {"schema": "adtarget.consent_export/v1", "key_id": self.key_id, "pseudonym": hex_id,
                "current": current, "history": history}

    def stats(self) -> dict[str, int]:
        """Counts: persons, opted in, cross-service, deleted, terminated, location-deleted, history rows."""
        with self._transaction("BEGIN") as conn:
            row = conn.execute(
                "SELECT COUNT(*), TOTAL(ads_personalization = 'opt_in'), TOTAL(cross_service), TOTAL(deleted), "
                "TOTAL(terminated), TOTAL(location_deleted) FROM current").fetchone()
            history_rows = conn.execute("SELECT COUNT(*) FROM history").fetchone()[0]
        names = ("persons", "opted_in", "cross_service", "deleted", "terminated", "location_deleted")
        return {**{n: int(v) for n, v in zip(names, row)}, "history_rows": int(history_rows),
                "schema_version": self._version}

    def check_integrity(self) -> None:
        """Run SQLite's ``quick_check``; :class:`LedgerError` if the file is damaged."""
        with self._guard():
            result = self._connection().execute("PRAGMA quick_check").fetchall()
        if result != [("ok",)]:
            raise LedgerError(f"consent ledger {self._path}: integrity check failed ({result[0][0]})")


def _epoch(value: Any, name: str) -> int:
    import datetime as dt

    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ParameterError(f"{name}: a datetime must be timezone-aware (UTC); received a naive datetime")
        return int(value.timestamp())
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ParameterError(f"{name}: must be int epoch seconds or an aware datetime; received "
                             f"{type(value).__name__}")
    return int(value)
