"""The consent ledger's SQLite schema: DDL, migrations, and opening a file safely.

One file, WAL journal, ``busy_timeout`` so that concurrent writers wait instead of failing, a
``schema_version`` table and a list of migrations. Opening a file that is not a ledger, a corrupted one, one
with a newer schema, or one written with another pseudonymisation key raises :class:`LedgerError` naming the
path. All SQL with values is parameterised.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING

from adtarget._core._atomic import private_file
from adtarget.exceptions import LedgerError

if TYPE_CHECKING:
    from adtarget.events._pseudonym import Pseudonymizer

__all__ = ["APPLICATION", "MIGRATIONS", "SCHEMA_VERSION", "connect", "ensure_schema"]

APPLICATION = "adtarget.consent_ledger"

_FIELDS_DDL = """
    birth_year INTEGER CHECK (birth_year IS NULL OR birth_year BETWEEN 1900 AND 9999),
    ads_personalization TEXT NOT NULL CHECK (ads_personalization IN ('opt_in', 'opt_out')),
    cross_service INTEGER NOT NULL CHECK (cross_service IN (0, 1)),
    policy_version TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted INTEGER NOT NULL CHECK (deleted IN (0, 1)),
    terminated INTEGER NOT NULL CHECK (terminated IN (0, 1)),
    location_deleted INTEGER NOT NULL CHECK (location_deleted IN (0, 1)),
    jurisdiction TEXT"""

_V1: tuple[str, ...] = (
    "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    f"""CREATE TABLE history (
        seq INTEGER PRIMARY KEY,
        pseudonym TEXT NOT NULL CHECK (length(pseudonym) = 16),{_FIELDS_DDL},
        recorded_at INTEGER NOT NULL,
        source TEXT NOT NULL)""",
    "CREATE INDEX history_person ON history (pseudonym, updated_at)",
    "CREATE INDEX history_deletions ON history (pseudonym, updated_at) WHERE deleted = 1",
    f"""CREATE TABLE current (
        pseudonym TEXT PRIMARY KEY CHECK (length(pseudonym) = 16),{_FIELDS_DDL},
        seq INTEGER NOT NULL) WITHOUT ROWID""",
)

#: (version, statements) in order; a file at version v gets every migration above v, in one transaction.
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = ((1, _V1),)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def connect(path: Path, timeout: float) -> sqlite3.Connection:
    """Open ``path`` in autocommit mode (transactions are explicit), WAL, ``busy_timeout`` = ``timeout``."""
    try:
        if str(path) != ":memory:":
            private_file(path)  # personal data: a new ledger (and its -wal, -shm) is readable by its owner only
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    except (sqlite3.Error, OSError) as exc:
        raise LedgerError(f"consent ledger {path}: cannot open ({exc})") from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000):d}")  # an int we computed, not input
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA cache_size = -65536")
    except sqlite3.Error as exc:
        conn.close()
        raise LedgerError(f"consent ledger {path}: not a readable SQLite consent ledger ({exc})") from None
    if str(mode).lower() != "wal":
        conn.close()
        raise LedgerError(f"consent ledger {path}: cannot use the WAL journal (journal_mode={mode})")
    return conn


def ensure_schema(conn: sqlite3.Connection, path: Path, pseudonymizer: Pseudonymizer) -> int:
    """Create or migrate the schema and check the key; return the schema version. Reads first, and takes the
    write lock only when the file is new or needs a migration."""
    state = _read_state(conn, path)
    if state is None or state[0] < SCHEMA_VERSION:
        conn.execute("BEGIN IMMEDIATE")
        try:
            state = _read_state(conn, path)  # another process may have initialised it meanwhile
            version = 0 if state is None else state[0]
            for target, statements in MIGRATIONS:
                if target > version:
                    _apply(conn, target, statements)
            if state is None:
                _init_meta(conn, pseudonymizer)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        state = _read_state(conn, path)
    assert state is not None
    _check_key(path, state[1], pseudonymizer)
    return state[0]


def _read_state(conn: sqlite3.Connection, path: Path) -> tuple[int, dict[str, str]] | None:
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables:
        return None
    if not {"schema_version", "meta", "history", "current"} <= tables:
        raise LedgerError(f"consent ledger {path}: this SQLite file is not an adtarget consent ledger "
                          f"(tables {sorted(tables)})")
    meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
    if meta.get("application") != APPLICATION:
        raise LedgerError(f"consent ledger {path}: this SQLite file is not an adtarget consent ledger "
                          f"(application={meta.get('application')!r})")
    version = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise LedgerError(f"consent ledger {path}: schema version {version} is newer than this adtarget "
                          f"supports ({SCHEMA_VERSION}); upgrade adtarget")
    return version, meta


def _apply(conn: sqlite3.Connection, version: int, statements: tuple[str, ...]) -> None:
    for statement in statements:
        conn.execute(statement)
    conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, int(time.time())))


def _init_meta(conn: sqlite3.Connection, pseudonymizer: Pseudonymizer) -> None:
    rows = [("application", APPLICATION), ("key_id", pseudonymizer.key_id),
            ("algorithm", pseudonymizer.algorithm), ("created_at", str(int(time.time())))]
    conn.executemany("INSERT INTO meta (name, value) VALUES (?, ?)", rows)


def _check_key(path: Path, meta: dict[str, str], pseudonymizer: Pseudonymizer) -> None:
    stored = (meta.get("key_id"), meta.get("algorithm"))
    given = (pseudonymizer.key_id, pseudonymizer.algorithm)
    if stored != given:
        raise LedgerError(
            f"consent ledger {path}: its pseudonyms were made with key_id={stored[0]} ({stored[1]}), but this "
            f"Pseudonymizer has key_id={given[0]} ({given[1]}); pseudonyms of different keys or algorithms "
            "cannot be mixed. To rotate the key, import consent from the source of truth into a new ledger "
            "(docs/privacy/pseudonymisation.md)")
