"""SQL of the consent ledger: append to history, last-writer-wins into current, erase before deletions, and
read states back. Callers hold the transaction; every statement with values is parameterised.

A person's current state is their latest history row by ``updated_at``; records of one person with the same
``updated_at`` (a tie) merge field by field into the most restrictive state (``_ties``), whatever order the
rows came in. A deletion record erases every history row of the person that it supersedes (it stays as a
scrubbed tombstone), and a record older than it is erased on arrival.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from adtarget.consent._records import ConsentRecords
from adtarget.consent._ties import TIE_CHANGES, TIE_SET, latest_merged
from adtarget.events._pseudonym import hex_to_pseudonyms, pseudonyms_to_hex

__all__ = ["WriteResult", "latest_before", "read_current", "read_history", "read_state", "state_as_of",
           "write_records"]

_BATCH = 50_000


_FEW = 500  # at most this many persons are looked up by parameter list (SQLite allows 32766)
_FIELDS = ("birth_year, ads_personalization, cross_service, policy_version, updated_at, deleted, terminated, "
           "location_deleted, jurisdiction")
_INSERT_HISTORY = """INSERT INTO history (seq, pseudonym, birth_year, ads_personalization, cross_service,
    policy_version, updated_at, deleted, terminated, location_deleted, jurisdiction, recorded_at, source)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
_UPSERT_CURRENT = f"""INSERT INTO current (seq, pseudonym, birth_year, ads_personalization, cross_service,
    policy_version, updated_at, deleted, terminated, location_deleted, jurisdiction)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (pseudonym) DO UPDATE SET {TIE_SET}
    WHERE excluded.updated_at > current.updated_at
       OR (excluded.updated_at = current.updated_at AND {TIE_CHANGES})"""  # noqa: S608 - constant SQL (the tie rule), values are parameters
_LATEST_DELETIONS = """INSERT INTO temp.erasure (pseudonym, at, keep_seq)
    SELECT pseudonym, updated_at, seq
    FROM (SELECT pseudonym, updated_at, seq,
                 ROW_NUMBER() OVER (PARTITION BY pseudonym ORDER BY updated_at DESC, seq DESC) AS rn
          FROM history INDEXED BY history_deletions
          WHERE deleted = 1 AND pseudonym IN (SELECT pseudonym FROM temp.erasure_candidates))
    WHERE rn = 1"""
_ERASE = """DELETE FROM history WHERE seq IN (
    SELECT h.seq FROM temp.erasure AS e JOIN history AS h ON h.pseudonym = e.pseudonym
    WHERE h.updated_at < e.at OR (h.updated_at = e.at AND h.seq <> e.keep_seq))"""
# Snapshot reads aggregate each column into one string (fixed-width numbers, \x1f-separated text) so that a
# million rows cost a few C-level string operations instead of a million Python tuples. All aggregates of one
# SELECT walk the rows in the same order; the rows are then sorted in numpy, so no aggregate order is assumed.
_SNAPSHOT_AGGREGATES = (
    "COUNT(*), group_concat(pseudonym, ''), group_concat(printf('%04d', COALESCE(birth_year, 0)), ''), "
    "group_concat(char(48 + ((ads_personalization = 'opt_in') | (cross_service << 1) | (deleted << 2) "
    "| (terminated << 3) | (location_deleted << 4))), ''), group_concat(policy_version, char(31)), "
    "group_concat(COALESCE(jurisdiction, ''), char(31))")
_ORDER_AGGREGATES = "group_concat(printf('%011d', updated_at), ''), group_concat(printf('%019d', seq), '')"
FLAG_BITS: tuple[str, ...] = ("opted_in", "cross_service", "deleted", "terminated", "location_deleted")


@dataclass(frozen=True)
class WriteResult:
    """Counts of one write: history rows written, persons whose current state changed, rows erased."""

    written: int
    applied: int
    erased: int


def write_records(conn: sqlite3.Connection, records: ConsentRecords, *, recorded_at: int,
                  source: str) -> WriteResult:
    """Append ``records`` (already scrubbed) to history, update current, and apply erasures.

    Rows are written sorted by pseudonym (stable, so a person's rows keep their input order and ``seq``),
    which turns the index inserts into near-sequential ones.
    """
    if not len(records):
        return WriteResult(0, 0, 0)
    records = records.take(np.argsort(records.pseudonym, kind="stable"))
    seq0 = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM history").fetchone()[0]
    seq = np.arange(seq0 + 1, seq0 + 1 + len(records), dtype=np.int64)
    rows = records.sql_rows(seq, pseudonyms_to_hex(records.pseudonym).tolist(), recorded_at, source)
    for batch in _batches(rows):
        conn.executemany(_INSERT_HISTORY, batch)
    latest, merged = latest_merged(records.pseudonym, records.updated_at, seq, _tie_fields(records))
    current = ConsentRecords(pseudonym=records.pseudonym[latest], updated_at=records.updated_at[latest], **merged)
    hex_ids = [rows[i][1] for i in latest.tolist()]
    applied = 0
    for batch in _batches([row[:11] for row in current.sql_rows(seq[latest], hex_ids, recorded_at, source)]):
        applied += conn.executemany(_UPSERT_CURRENT, batch).rowcount
    return WriteResult(written=len(records), applied=applied, erased=_erase(conn, records))


def _tie_fields(records: ConsentRecords) -> dict[str, np.ndarray]:
    return {name: getattr(records, name) for name in ("birth_year", "opted_in", "cross_service", "policy_version",
                                                      "deleted", "terminated", "location_deleted", "jurisdiction")}


def _batches(rows: list[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    for start in range(0, len(rows), _BATCH):
        yield rows[start:start + _BATCH]


def _erase(conn: sqlite3.Connection, records: ConsentRecords) -> int:
    """Erase history rows superseded by a deletion record, for the persons of ``records`` that have one."""
    ordered = np.sort(records.pseudonym)  # (already sorted here; np.unique would hash, which is far slower)
    persons = ordered[np.append(True, ordered[1:] != ordered[:-1])] if ordered.size else ordered
    if persons.size <= _FEW:  # single updates and small imports: look only at these persons
        marks = ", ".join("?" * persons.size)
        deleted = conn.execute("SELECT DISTINCT pseudonym FROM history INDEXED BY history_deletions "  # noqa: S608
                               f"WHERE deleted = 1 AND pseudonym IN ({marks})",
                               pseudonyms_to_hex(persons).tolist()).fetchall()
    else:  # large imports: all persons with a deletion record (few: one tombstone per deleted person)
        deleted = conn.execute("SELECT DISTINCT pseudonym FROM history INDEXED BY history_deletions "
                               "WHERE deleted = 1").fetchall()
    if not deleted:
        return 0
    with_deletion = hex_to_pseudonyms(np.array([row[0] for row in deleted], dtype="U16"))
    candidates = persons[np.isin(persons, with_deletion)]
    if not candidates.size:
        return 0
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS erasure_candidates (pseudonym TEXT PRIMARY KEY)")
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS erasure (pseudonym TEXT PRIMARY KEY, at INTEGER, "
                 "keep_seq INTEGER)")
    conn.executemany("INSERT INTO temp.erasure_candidates (pseudonym) VALUES (?)",
                     [(h,) for h in pseudonyms_to_hex(candidates).tolist()])
    conn.execute(_LATEST_DELETIONS)
    erased = conn.execute(_ERASE).rowcount
    conn.execute("DELETE FROM temp.erasure_candidates")
    conn.execute("DELETE FROM temp.erasure")
    return erased


def read_state(conn: sqlite3.Connection) -> dict[str, np.ndarray]:
    """Current state of every person as snapshot columns, sorted by pseudonym."""
    row = conn.execute(f"SELECT {_SNAPSHOT_AGGREGATES} FROM current").fetchone()  # noqa: S608
    columns = _columns(row)
    order = np.argsort(columns["persons"], kind="stable")
    return {name: values[order] for name, values in columns.items()}


def state_as_of(conn: sqlite3.Connection, as_of: int) -> dict[str, np.ndarray]:
    """Each person's latest history row with ``updated_at <= as_of`` as snapshot columns, sorted by pseudonym:
    the rows in time, then the last row of each person (vectorised)."""
    row = conn.execute(f"SELECT {_SNAPSHOT_AGGREGATES}, {_ORDER_AGGREGATES} "  # noqa: S608
                       "FROM history WHERE updated_at <= ?", (as_of,)).fetchone()
    columns = _columns(row[:6])
    updated_at, seq = (_fixed_width(row[6], 11), _fixed_width(row[7], 19)) if row[0] else (np.zeros(0), np.zeros(0))
    rows, merged = latest_merged(columns["persons"], updated_at, seq,
                                 {n: v for n, v in columns.items() if n != "persons"})
    return {"persons": columns["persons"][rows], **merged}


def _columns(row: tuple[Any, ...]) -> dict[str, np.ndarray]:
    """Decode one row of ``_SNAPSHOT_AGGREGATES`` into snapshot columns, in scan order."""
    n = int(row[0])
    if not n:
        empty: dict[str, np.ndarray] = {name: np.zeros(0, dtype=bool) for name in FLAG_BITS}
        return {**empty, "persons": np.zeros(0, dtype=np.uint64), "birth_year": np.zeros(0, dtype=np.int16),
                "policy_version": np.zeros(0, dtype="U1"), "jurisdiction": np.zeros(0, dtype="U1")}
    _, hex_ids, birth, flags, policy, jurisdiction = row
    packed = np.frombuffer(flags.encode("ascii"), dtype=np.uint8) - 48
    return {
        "persons": np.frombuffer(bytes.fromhex(hex_ids), dtype=">u8").astype(np.uint64),
        "birth_year": _fixed_width(birth, 4).astype(np.int16),
        **{name: (packed >> bit) & 1 == 1 for bit, name in enumerate(FLAG_BITS)},
        "policy_version": np.array(policy.split("\x1f"), dtype=str),
        "jurisdiction": np.array(jurisdiction.split("\x1f"), dtype=str),
    }


def _fixed_width(text: str, width: int) -> np.ndarray:
    """Non-negative decimals of ``width`` digits each, concatenated, to int64 (digit arithmetic, vectorised)."""
    digits = (np.frombuffer(text.encode("ascii"), dtype=np.uint8) - 48).reshape(-1, width).astype(np.int64)
    return digits @ (10 ** np.arange(width - 1, -1, -1, dtype=np.int64))


_READ_FIELDS = f"SELECT {_FIELDS}"
_BOOLEANS = frozenset({"cross_service", "deleted", "terminated", "location_deleted"})


def read_history(conn: sqlite3.Connection, hex_id: str) -> list[dict[str, Any]]:
    """One person's history rows in order, as dicts of the contract fields plus recorded_at and source."""
    cursor = conn.execute(f"{_READ_FIELDS}, recorded_at, source FROM history WHERE pseudonym = ? "  # noqa: S608
                          "ORDER BY updated_at, seq", (hex_id,))
    return [_row_dict(cursor.description, row) for row in cursor.fetchall()]


def read_current(conn: sqlite3.Connection, hex_id: str) -> dict[str, Any] | None:
    """One person's current row as a dict of the contract fields, or None."""
    cursor = conn.execute(f"{_READ_FIELDS} FROM current WHERE pseudonym = ?", (hex_id,))  # noqa: S608
    row = cursor.fetchone()
    return None if row is None else _row_dict(cursor.description, row)


def latest_before(conn: sqlite3.Connection, hex_id: str, at: int) -> dict[str, Any] | None:
    """The person's state as of ``at``: their history rows at the latest ``updated_at <= at``, merged (a tie
    merges as in ``current``), as a dict of the contract fields; None if there is none."""
    cursor = conn.execute(f"{_READ_FIELDS} FROM history WHERE pseudonym = ? AND updated_at = (SELECT MAX(updated_at) "  # noqa: S608
                          "FROM history WHERE pseudonym = ? AND updated_at <= ?) ORDER BY seq", (hex_id, hex_id, at))
    found = [_row_dict(cursor.description, row) for row in cursor.fetchall()]
    if len(found) < 2:
        return found[0] if found else None
    n = len(found)
    _, merged = latest_merged(np.zeros(n, dtype=np.uint64), np.array([r["updated_at"] for r in found]),
                              np.arange(n), {
        "birth_year": np.array([r["birth_year"] or 0 for r in found], dtype=np.int16),
        "opted_in": np.array([r["ads_personalization"] == "opt_in" for r in found]),
        **{f: np.array([r[f] for r in found], dtype=bool) for f in _BOOLEANS},
        "policy_version": np.array([r["policy_version"] for r in found], dtype=object),
        "jurisdiction": np.array([r["jurisdiction"] or "" for r in found], dtype=object)})
    state = {name: values[0].item() if hasattr(values[0], "item") else values[0] for name, values in merged.items()}
    return {**found[-1], "birth_year": state["birth_year"] or None, "jurisdiction": state["jurisdiction"] or None,
            "policy_version": state["policy_version"],
            "ads_personalization": "opt_in" if state["opted_in"] else "opt_out",
            **{f: bool(state[f]) for f in _BOOLEANS}}


def _row_dict(description: Any, row: tuple[Any, ...]) -> dict[str, Any]:
    names = [d[0] for d in description]
    return {n: bool(v) if n in _BOOLEANS else v for n, v in zip(names, row)}
