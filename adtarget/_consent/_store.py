"""SQL of the consent ledger: append to history, last-writer-wins into current, erase before deletions, and
read states back. Callers hold the transaction; every statement with values is parameterised.

Order of records: by ``(updated_at, seq)``, ``seq`` being the history insertion order, so ties go to the later
write. A person's current row is their latest history row. A deletion record erases every history row of the
person that it supersedes (it stays as a scrubbed tombstone), and a record older than it is erased on arrival.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from adtarget._consent._records import ConsentRecords
from adtarget._pseudonym import pseudonyms_to_hex

__all__ = ["FIELD_COLUMNS", "WriteResult", "read_history", "read_state", "state_as_of", "write_records"]

FIELD_COLUMNS: tuple[str, ...] = ("birth_year", "ads_personalization", "cross_service", "policy_version",
                                  "updated_at", "deleted", "terminated", "location_deleted", "jurisdiction")
_BATCH = 50_000

_INSERT_HISTORY = """INSERT INTO history (pseudonym, birth_year, ads_personalization, cross_service,
    policy_version, updated_at, deleted, terminated, location_deleted, jurisdiction, recorded_at, source)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""

_UPSERT_CURRENT = """INSERT INTO current (pseudonym, birth_year, ads_personalization, cross_service,
    policy_version, updated_at, deleted, terminated, location_deleted, jurisdiction, seq)
    SELECT pseudonym, birth_year, ads_personalization, cross_service, policy_version, updated_at, deleted,
        terminated, location_deleted, jurisdiction, seq
    FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY pseudonym ORDER BY updated_at DESC, seq DESC) AS rn
          FROM history WHERE seq > ?)
    WHERE rn = 1
    ON CONFLICT (pseudonym) DO UPDATE SET birth_year = excluded.birth_year,
        ads_personalization = excluded.ads_personalization, cross_service = excluded.cross_service,
        policy_version = excluded.policy_version, updated_at = excluded.updated_at, deleted = excluded.deleted,
        terminated = excluded.terminated, location_deleted = excluded.location_deleted,
        jurisdiction = excluded.jurisdiction, seq = excluded.seq
    WHERE excluded.updated_at > current.updated_at
       OR (excluded.updated_at = current.updated_at AND excluded.seq > current.seq)"""

_LATEST_DELETIONS = """INSERT INTO temp.erasure (pseudonym, at, keep_seq)
    SELECT pseudonym, updated_at, seq
    FROM (SELECT pseudonym, updated_at, seq,
                 ROW_NUMBER() OVER (PARTITION BY pseudonym ORDER BY updated_at DESC, seq DESC) AS rn
          FROM history INDEXED BY history_deletions
          WHERE deleted = 1 AND pseudonym IN (SELECT pseudonym FROM history WHERE seq > ?))
    WHERE rn = 1"""

_ERASE = """DELETE FROM history WHERE seq IN (
    SELECT h.seq FROM temp.erasure AS e JOIN history AS h ON h.pseudonym = e.pseudonym
    WHERE h.updated_at < e.at OR (h.updated_at = e.at AND h.seq < e.keep_seq))"""

_SELECT_FIELDS = ("pseudonym, COALESCE(birth_year, 0), ads_personalization = 'opt_in', cross_service, "
                  "policy_version, deleted, terminated, location_deleted, COALESCE(jurisdiction, '')")


@dataclass(frozen=True)
class WriteResult:
    """Counts of one write: history rows written, persons whose current state changed, rows erased."""

    written: int
    applied: int
    erased: int


def write_records(conn: sqlite3.Connection, records: ConsentRecords, *, recorded_at: int,
                  source: str) -> WriteResult:
    """Append ``records`` (already scrubbed) to history, update current, and apply erasures."""
    if not len(records):
        return WriteResult(0, 0, 0)
    seq0 = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM history").fetchone()[0]
    hex_ids = pseudonyms_to_hex(records.pseudonym).tolist()
    for batch in _batches(records.sql_rows(hex_ids, recorded_at, source)):
        conn.executemany(_INSERT_HISTORY, batch)
    applied = conn.execute(_UPSERT_CURRENT, (seq0,)).rowcount
    erased = _erase_superseded(conn, seq0) if records.deleted.any() or _has_deletions(conn) else 0
    return WriteResult(written=len(records), applied=applied, erased=erased)


def _batches(rows: list[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    for start in range(0, len(rows), _BATCH):
        yield rows[start:start + _BATCH]


def _has_deletions(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM history INDEXED BY history_deletions WHERE deleted = 1 LIMIT 1").fetchone() \
        is not None


def _erase_superseded(conn: sqlite3.Connection, seq0: int) -> int:
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS erasure (pseudonym TEXT PRIMARY KEY, at INTEGER, keep_seq INTEGER)")
    conn.execute("DELETE FROM temp.erasure")
    conn.execute(_LATEST_DELETIONS, (seq0,))
    erased = conn.execute(_ERASE).rowcount
    conn.execute("DELETE FROM temp.erasure")
    return erased


def read_state(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """Current state of every person, sorted by pseudonym, as snapshot rows."""
    return conn.execute(f"SELECT {_SELECT_FIELDS} FROM current ORDER BY pseudonym").fetchall()  # noqa: S608


def state_as_of(conn: sqlite3.Connection, as_of: int) -> list[tuple[Any, ...]]:
    """Each person's latest history row with ``updated_at <= as_of``, sorted by pseudonym, as snapshot rows."""
    query = (f"SELECT {_SELECT_FIELDS} FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY pseudonym "  # noqa: S608
             "ORDER BY updated_at DESC, seq DESC) AS rn FROM history WHERE updated_at <= ?) "
             "WHERE rn = 1 ORDER BY pseudonym")
    return conn.execute(query, (as_of,)).fetchall()


def read_history(conn: sqlite3.Connection, hex_id: str) -> list[dict[str, Any]]:
    """One person's history rows in order, as dicts of the contract fields plus recorded_at and source."""
    cursor = conn.execute(
        "SELECT birth_year, ads_personalization, cross_service, policy_version, updated_at, deleted, terminated, "
        "location_deleted, jurisdiction, recorded_at, source FROM history WHERE pseudonym = ? "
        "ORDER BY updated_at, seq", (hex_id,))
    return [_row_dict(cursor.description, row) for row in cursor.fetchall()]


def read_current(conn: sqlite3.Connection, hex_id: str) -> dict[str, Any] | None:
    """One person's current row as a dict of the contract fields, or None."""
    cursor = conn.execute(
        "SELECT birth_year, ads_personalization, cross_service, policy_version, updated_at, deleted, terminated, "
        "location_deleted, jurisdiction FROM current WHERE pseudonym = ?", (hex_id,))
    row = cursor.fetchone()
    return None if row is None else _row_dict(cursor.description, row)


def latest_before(conn: sqlite3.Connection, hex_id: str, at: int) -> dict[str, Any] | None:
    """The person's latest history row with ``updated_at <= at``, or None."""
    cursor = conn.execute(
        "SELECT birth_year, ads_personalization, cross_service, policy_version, updated_at, deleted, terminated, "
        "location_deleted, jurisdiction FROM history WHERE pseudonym = ? AND updated_at <= ? "
        "ORDER BY updated_at DESC, seq DESC LIMIT 1", (hex_id, at))
    row = cursor.fetchone()
    return None if row is None else _row_dict(cursor.description, row)


_BOOLEANS = frozenset({"cross_service", "deleted", "terminated", "location_deleted"})


def _row_dict(description: Any, row: tuple[Any, ...]) -> dict[str, Any]:
    names = [d[0] for d in description]
    return {n: bool(v) if n in _BOOLEANS else v for n, v in zip(names, row)}
