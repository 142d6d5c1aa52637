"""The persistent privacy-budget ledger: SQLite, one BEGIN IMMEDIATE transaction per charge.

Every advertiser release is charged here *before* anything is emitted. A charge checks two caps over the
accounting window containing now: the advertiser's cap and a global cap across all advertisers (who may
collude), each window composed by its route: basic composition, or Rényi DP (zCDP) for a window of
Gaussian releases (``_composition``). Advertisers are registered first, under a canonical id
(``_advertisers``), so one advertiser cannot spend as many. A DP-derived definition (a DP k-means fit, a DP
proxy audit) is charged once against the global cap when it is made, and once to every advertiser who receives
segments that depend on it. An identical
repeated query (same ``query_key``: hash of the release spec and public facts) returns the stored charge, and
its stored report, without new spending. Spend rows and registrations are append-only (SQLite triggers).
See ``docs/privacy/budget-ledger.md``.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from adtarget._core._atomic import private_file
from adtarget.budget._accountant import InMemoryAccountant
from adtarget.budget._advertisers import canonical_advertiser, skeleton
from adtarget.budget._composition import (
    ROUTES,
    TOLERANCE,
    Spend,
    check_accounting,
    choose_route,
    events_json,
    fits,
    left,
    parse_events,
    spend_of,
    total,
)
from adtarget.budget._composition import composed as composed_spend
from adtarget.budget._spec import PrivacyBudget, ReleaseAccounting, RemainingBudget
from adtarget.exceptions import BudgetExhaustedError, LedgerError, ParameterError, UnknownAdvertiserError

__all__ = ["DEFAULT_ADVERTISER_CAP", "DEFAULT_GLOBAL_CAP", "DEFAULT_WINDOW_DAYS", "SCHEMA_VERSION", "TOLERANCE",
           "Advertiser", "BudgetCaps", "BudgetLedger", "Charge", "charge_definition_to"]

DEFAULT_ADVERTISER_CAP = PrivacyBudget(4.0, 1e-5)
DEFAULT_GLOBAL_CAP = PrivacyBudget(20.0, 1e-4)
DEFAULT_WINDOW_DAYS = 30
_DAY = 86_400

_IMMUTABLE_SPEND = """CREATE TRIGGER spend_amounts_immutable BEFORE UPDATE OF
        advertiser, epsilon, delta, query_key, window_start, window_end, charged_at ON spend
        BEGIN SELECT RAISE(ABORT, 'spend amounts are immutable'); END"""
_MIGRATION_1 = (
    "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    """CREATE TABLE settings (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        advertiser_epsilon REAL NOT NULL, advertiser_delta REAL NOT NULL,
        global_epsilon REAL NOT NULL, global_delta REAL NOT NULL,
        window_seconds INTEGER NOT NULL CHECK (window_seconds > 0), window_origin INTEGER NOT NULL)""",
    # the defaults above (a test checks they match): advertiser ε=4, δ=1e-5; global ε=20, δ=1e-4; 30 days
    "INSERT INTO settings VALUES (1, 4.0, 1e-05, 20.0, 0.0001, 2592000, 0)",
    """CREATE TABLE spend (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        advertiser TEXT NOT NULL,
        epsilon REAL NOT NULL CHECK (epsilon > 0), delta REAL NOT NULL CHECK (delta >= 0 AND delta < 1),
        query_key TEXT NOT NULL UNIQUE,
        window_start INTEGER NOT NULL, window_end INTEGER NOT NULL, charged_at INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('charged', 'reported')),
        report_json TEXT, reported_at INTEGER)""",
    "CREATE INDEX spend_window ON spend (window_start, window_end)",
    "CREATE INDEX spend_advertiser ON spend (advertiser, window_start)",
    """CREATE TRIGGER spend_no_delete BEFORE DELETE ON spend
        BEGIN SELECT RAISE(ABORT, 'spend rows are append-only'); END""",
    _IMMUTABLE_SPEND,
    """CREATE TRIGGER spend_report_once BEFORE UPDATE OF report_json ON spend WHEN OLD.report_json IS NOT NULL
        BEGIN SELECT RAISE(ABORT, 'a stored report is immutable'); END""",
)
_MIGRATION_2 = (
    # advertiser: the canonical id (NFKC, case-folded); skeleton: the look-alike key, one advertiser per skeleton;
    # a NULL cap is the ledger's advertiser cap
    """CREATE TABLE advertisers (
        advertiser TEXT PRIMARY KEY, display_name TEXT NOT NULL, skeleton TEXT NOT NULL UNIQUE,
        epsilon_cap REAL CHECK (epsilon_cap IS NULL OR epsilon_cap > 0),
        delta_cap REAL CHECK (delta_cap IS NULL OR (delta_cap >= 0 AND delta_cap < 1)),
        registered_at INTEGER NOT NULL)""",
    """CREATE TRIGGER advertisers_no_delete BEFORE DELETE ON advertisers
        BEGIN SELECT RAISE(ABORT, 'advertisers are never removed'); END""",
    """CREATE TRIGGER advertisers_id_immutable BEFORE UPDATE OF advertiser, skeleton, registered_at ON advertisers
        BEGIN SELECT RAISE(ABORT, 'an advertiser id is immutable'); END""",
    # advertiser '' is the definition itself (counted against the global cap); any other value is an advertiser
    # who received segments that depend on it (counted against that advertiser's cap); once per window each
    """CREATE TABLE definition_spend (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        artefact_id TEXT NOT NULL, advertiser TEXT NOT NULL,
        epsilon REAL NOT NULL CHECK (epsilon > 0), delta REAL NOT NULL CHECK (delta >= 0 AND delta < 1),
        window_start INTEGER NOT NULL, window_end INTEGER NOT NULL, charged_at INTEGER NOT NULL,
        UNIQUE (artefact_id, advertiser, window_start))""",
    "CREATE INDEX definition_spend_window ON definition_spend (advertiser, window_start)",
    """CREATE TRIGGER definition_spend_no_delete BEFORE DELETE ON definition_spend
        BEGIN SELECT RAISE(ABORT, 'spend rows are append-only'); END""",
    """CREATE TRIGGER definition_spend_no_update BEFORE UPDATE ON definition_spend
        BEGIN SELECT RAISE(ABORT, 'spend amounts are immutable'); END""",
)
_IMMUTABLE_SPEND_3 = """CREATE TRIGGER spend_amounts_immutable BEFORE UPDATE OF
        advertiser, epsilon, delta, query_key, window_start, window_end, charged_at,
        rdp_events, basic_epsilon, basic_delta ON spend
        BEGIN SELECT RAISE(ABORT, 'spend amounts are immutable'); END"""
_MIGRATION_3 = (
    # issue 17: each release's accounting (docs/privacy/budget-ledger.md "Composition"). rdp_events: its
    # Gaussian and pure-ε blocks as JSON; basic_epsilon/basic_delta: its (ε, δ)-DP remainder. A row without
    # events is all basic (every row written before this version: its whole (ε, δ)).
    "ALTER TABLE spend ADD COLUMN rdp_events TEXT NOT NULL DEFAULT '[]'",
    "ALTER TABLE spend ADD COLUMN basic_epsilon REAL NOT NULL DEFAULT 0 CHECK (basic_epsilon >= 0)",
    "ALTER TABLE spend ADD COLUMN basic_delta REAL NOT NULL DEFAULT 0 CHECK (basic_delta >= 0 AND basic_delta < 1)",
    "UPDATE spend SET basic_epsilon = epsilon, basic_delta = delta",
    "DROP TRIGGER spend_amounts_immutable",
    _IMMUTABLE_SPEND_3,
    # the accounting route of each scope's window, fixed by its first charge (scope '': global); write-once
    """CREATE TABLE window_routes (
        scope TEXT NOT NULL, window_start INTEGER NOT NULL, window_end INTEGER NOT NULL,
        route TEXT NOT NULL CHECK (route IN ('basic', 'rdp')), chosen_at INTEGER NOT NULL,
        PRIMARY KEY (scope, window_start, window_end))""",
    """CREATE TRIGGER window_routes_no_delete BEFORE DELETE ON window_routes
        BEGIN SELECT RAISE(ABORT, 'a window route is immutable'); END""",
    """CREATE TRIGGER window_routes_no_update BEFORE UPDATE ON window_routes
        BEGIN SELECT RAISE(ABORT, 'a window route is immutable'); END""",
)
#: (version, statements) applied in order to bring an older ledger file up to SCHEMA_VERSION.
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = ((1, _MIGRATION_1), (2, _MIGRATION_2), (3, _MIGRATION_3))
SCHEMA_VERSION = MIGRATIONS[-1][0]


def _register_existing(conn: sqlite3.Connection, now: int) -> None:
    """Migration 2's data step: register every advertiser of a version-1 ledger under its canonical id.

    Names that are one advertiser now (``Acme`` and ``acme``, or look-alikes) are merged into the first one
    charged, so their spending adds up under one cap (the conservative reading of an old ledger).
    """
    names = [r[0] for r in conn.execute("SELECT advertiser FROM spend GROUP BY advertiser ORDER BY MIN(id)")]
    by_skeleton: dict[str, str] = {}
    renamed: dict[str, str] = {}
    for name in names:
        try:
            canonical = canonical_advertiser(name)
        except ParameterError:  # a name older checks allowed: kept as it is, still one advertiser
            canonical = name
        key = skeleton(canonical)
        if key not in by_skeleton:
            by_skeleton[key] = canonical
            conn.execute("INSERT INTO advertisers (advertiser, display_name, skeleton, registered_at) "
                         "VALUES (?, ?, ?, ?)", (canonical, name, key, now))
        renamed[name] = by_skeleton[key]
    conn.execute("DROP TRIGGER spend_amounts_immutable")
    conn.executemany("UPDATE spend SET advertiser = ? WHERE advertiser = ?",
                     [(new, old) for old, new in renamed.items() if new != old])
    conn.execute(_IMMUTABLE_SPEND)


_DATA_STEPS: dict[int, Callable[[sqlite3.Connection, int], None]] = {2: _register_existing}


def _iso(ts: int) -> str:
    if not _is_int(ts) or abs(ts) >= 2**40:
        raise _CorruptValue("a stored time is not epoch seconds")
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def checked_advertiser(value: Any) -> str:
    """The canonical advertiser id of ``value`` (NFKC, case-folded; see ``_advertisers``)."""
    return canonical_advertiser(value)


def _checked_key(value: Any, name: str = "query_key") -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 256 or not value.isprintable():
        raise ParameterError(f"{name} must be a printable string of 1 to 256 characters, got {value!r}")
    return value


def _checked_budget(budget: Any) -> PrivacyBudget:
    if not isinstance(budget, PrivacyBudget):
        raise ParameterError(f"budget must be a PrivacyBudget, got {type(budget).__name__}")
    if budget.is_infinite:
        raise ParameterError(f"budget must be finite to be charged, got {budget} (ε = inf is for tests that "
                             "bypass the ledger)")
    return budget


@dataclass(frozen=True)
class Charge:
    """One spend row: what was charged, to whom, in which window, and the stored report if any.

    ``new_spend`` is False when an identical earlier query was found: then nothing new was spent, and
    ``report_json`` holds the stored report (None if the earlier run stopped before storing one).
    ``accounting`` is how the release spends its budget (None: one (ε, δ) block); ``route`` and
    ``global_route`` are the accounting routes (``"basic"`` or ``"rdp"``) of the advertiser's and of the global
    window it was charged to (docs/privacy/budget-ledger.md "Composition").
    """

    charge_id: int
    advertiser: str
    budget: PrivacyBudget
    query_key: str
    window_start: int
    window_end: int
    status: str
    new_spend: bool
    report_json: str | None
    definitions_charged: tuple[str, ...] = ()
    accounting: ReleaseAccounting | None = None
    route: str = "basic"
    global_route: str = "basic"


@dataclass(frozen=True)
class Advertiser:
    """A registered advertiser: its canonical id (what releases are charged to), the name it was registered
    with, its cap (None: the ledger's advertiser cap) and when it was registered (ISO 8601 UTC)."""

    advertiser_id: str
    display_name: str
    cap: PrivacyBudget | None
    registered_at: str


@dataclass(frozen=True)
class BudgetCaps:
    """The ledger's caps: per advertiser and global (all advertisers), per window of ``window_days``."""

    advertiser_cap: PrivacyBudget
    global_cap: PrivacyBudget
    window_days: float
    window_origin: int = 0


def charge_definition_to(ledger: Any, artefact_id: str, budget: PrivacyBudget) -> bool:
    """``charge_definition`` on adtarget's own accountant, called through its class (an instance attribute
    cannot replace it); a subclass or a stand-in that spends nothing is refused."""
    for cls in (BudgetLedger, InMemoryAccountant):
        if type(ledger) is cls:
            return bool(cls.charge_definition(ledger, artefact_id, budget))
    raise ParameterError(f"ledger must be an adtarget BudgetLedger or InMemoryAccountant (not a subclass or a "
                         f"stand-in), got {type(ledger).__name__}")



class _CorruptValue(Exception):
    """A value read back from the ledger file is not one the ledger writes (a hand-edited or damaged file);
    ``_transaction`` turns it into a LedgerError naming the file."""


_MAX_WINDOW_S = 100 * 365 * 86_400


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)


def _stored(epsilon: object, delta: object, what: str) -> PrivacyBudget:
    """A budget read from the file, checked as the ledger checks what it writes."""
    if not (_is_number(epsilon) and _is_number(delta)):
        raise _CorruptValue(f"a stored {what} is not a number")
    try:
        return PrivacyBudget(epsilon, delta)  # type: ignore[arg-type]
    except ParameterError:
        raise _CorruptValue(f"a stored {what} is not a valid budget") from None


_ROUTE_NAMES = {"basic": "basic composition", "rdp": "Rényi-DP (zCDP) accounting"}


def _stored_amounts(epsilon: object, delta: object) -> tuple[float, float]:
    """A stored spend's (ε, δ): non-negative numbers."""
    if not (_is_number(epsilon) and _is_number(delta) and epsilon >= 0 and delta >= 0):  # type: ignore[operator]
        raise _CorruptValue("a stored spend is not a non-negative number")
    return float(epsilon), float(delta)  # type: ignore[arg-type]


def _stored_accounting(epsilon: float, delta: float, events: object, basic_epsilon: object,
                       basic_delta: object) -> ReleaseAccounting | None:
    """The accounting of a stored spend row, checked as ``charge`` checks it (None: the row is one (ε, δ)
    block, as every row written before schema version 3)."""
    try:
        gaussian, pure = parse_events(events)
    except ValueError as exc:
        raise _CorruptValue(f"a stored spend's rdp_events is not what the ledger writes ({exc})") from None
    b_eps, b_delta = _stored_amounts(basic_epsilon, basic_delta)
    if not gaussian and not pure and (b_eps, b_delta) == (epsilon, delta):
        return None
    try:
        basic = PrivacyBudget(b_eps, b_delta) if b_eps > 0 or b_delta > 0 else None
        return check_accounting(PrivacyBudget(epsilon, delta), ReleaseAccounting(gaussian, pure, basic))
    except ParameterError:
        raise _CorruptValue("a stored spend's accounting does not fit its budget") from None


def _stored_route(conn: sqlite3.Connection, scope: str, window: tuple[int, int]) -> str | None:
    """The stored route of ``scope``'s window (``""``: global), None when none was chosen."""
    row = conn.execute("SELECT route FROM window_routes WHERE scope = ? AND window_start = ? AND window_end = ?",
                       (scope, window[0], window[1])).fetchone()
    if row is not None and row[0] not in ROUTES:
        raise _CorruptValue("a stored window route is not one the ledger writes")
    return None if row is None else str(row[0])


def _same_accounting(stored: Any, asked: Any, budget: PrivacyBudget) -> bool:
    """Whether a stored charge's accounting is the one now asked for. ``asked`` None (a plain repeated charge)
    accepts the stored one; a release always asks with its own."""
    if asked is None:
        return True

    def form(accounting: Any) -> tuple[str, float, float]:
        if accounting is None:
            return "[]", float(budget.epsilon), float(budget.delta)
        basic = accounting.basic
        return (events_json(accounting), 0.0 if basic is None else float(basic.epsilon),
                0.0 if basic is None else float(basic.delta))

    (a_events, a_eps, a_delta), (b_events, b_eps, b_delta) = form(stored), form(asked)
    return a_events == b_events and math.isclose(a_eps, b_eps, rel_tol=1e-12, abs_tol=1e-15) \
        and math.isclose(a_delta, b_delta, rel_tol=1e-12, abs_tol=1e-18)


def _stored_advertiser(advertiser_id: object, display_name: object) -> str:
    """An advertiser id read from the file: the canonical id of its registered name, as registration writes
    it (an edited id with control characters or one that is not canonical never reaches a terminal or a
    report)."""
    try:
        ok = (isinstance(advertiser_id, str) and canonical_advertiser(advertiser_id) == advertiser_id
              and canonical_advertiser(display_name) == advertiser_id)
    except ParameterError:
        ok = False
    if not ok:
        raise _CorruptValue("a stored advertiser is not the canonical id of its registered name")
    return advertiser_id  # type: ignore[return-value]


class BudgetLedger:
    """Persistent (ε, δ) spending per registered advertiser and globally, per fixed accounting window (SQLite).

    Parameters
    ----------
    path : str or os.PathLike
        The SQLite file; created (mode 0600, with the current schema) when missing, migrated when older.
    advertisers : iterable of str, default ()
        Names to register (idempotent, see :meth:`register_advertiser`), for tests and notebooks.
    busy_timeout_s : float, default 30.0
        How long a transaction waits for another process's lock (SQLite busy_timeout).
    clock : callable returning epoch seconds, optional
        Source of "now" (``time.time`` by default); tests inject one to cross window boundaries.

    Privacy
    -------
    Caps bound the (ε, δ) released per advertiser and in total per window, composed by each window's route:
    basic composition, or, for a window whose first charge is a Gaussian release that gains by it, Rényi DP
    (zCDP; ``adtarget.budget._composition``, docs/privacy/budget-ledger.md "Composition"); only
    registered advertisers are charged, under their canonical id, so ``Acme`` and ``ACME`` share one cap and a
    look-alike cannot be registered. Windows are fixed: ``[origin + i·length, origin + (i+1)·length)`` UTC,
    origin 1970-01-01 by default.

    Raises
    ------
    LedgerError
        The file is not a ledger, is of a newer schema version, is corrupted or stays locked.
    """

    # no instance dictionary: ``ledger.charge = lambda *a: None`` cannot switch the budget off
    __slots__ = ("_busy_timeout_s", "_clock", "_path", "_shared")

    def __init__(self, path: str | os.PathLike[str], *, advertisers: Iterable[str] = (),
                 busy_timeout_s: float = 30.0, clock: Callable[[], float] | None = None) -> None:
        self._path = os.fspath(path)
        self._busy_timeout_s = busy_timeout_s
        self._clock = clock if clock is not None else time.time
        # ":memory:" (tests, notebooks) lives in one connection kept for the ledger's lifetime
        self._shared: sqlite3.Connection | None = None
        if isinstance(advertisers, str):
            raise ParameterError(f"advertisers must be a list of names, got the string {advertisers!r}")
        self._migrate()
        for name in advertisers:
            self.register_advertiser(name)

    def __repr__(self) -> str:
        return f"BudgetLedger({self._path!r})"

    def __copy__(self) -> BudgetLedger:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> BudgetLedger:
        """A ledger is a handle on shared state: copies (e.g. by sklearn ``clone``) keep charging the same one."""
        return self

    # --- connections and schema --------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self._shared is not None:
            return self._shared
        if self._path != ":memory:":
            private_file(self._path)  # the ledger holds stored reports and who was charged what: 0600
        # timeout= is SQLite's busy_timeout; isolation_level=None: we issue BEGIN IMMEDIATE ourselves
        conn = sqlite3.connect(self._path, timeout=self._busy_timeout_s, isolation_level=None)
        conn.execute("PRAGMA synchronous = FULL")
        if self._path == ":memory:":
            self._shared = conn
        return conn

    def _close(self, conn: sqlite3.Connection) -> None:
        if conn is not self._shared:
            conn.close()

    @contextmanager
    def _transaction(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction, committed or rolled back: BEGIN IMMEDIATE (write lock up front) or a read."""
        try:
            conn = self._connect()
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")
                try:
                    yield conn
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            finally:
                self._close(conn)
        except _CorruptValue as exc:
            raise LedgerError(f"budget ledger {self._path!r} is corrupt: {exc}") from None
        except sqlite3.Error as exc:
            raise LedgerError(f"budget ledger {self._path!r}: {exc}") from exc
        except OSError as exc:
            raise LedgerError(f"budget ledger {self._path!r} cannot be opened: {exc.strerror or exc}") from exc

    def _migrate(self) -> None:
        try:
            conn = self._connect()
            try:
                conn.execute("PRAGMA journal_mode = WAL")  # stays "memory" for ":memory:"
            finally:
                self._close(conn)
        except (sqlite3.Error, OSError) as exc:
            raise LedgerError(f"budget ledger {self._path!r} cannot be opened: {exc}") from exc
        with self._transaction() as conn:
            version = self._schema_version(conn)
            if version > SCHEMA_VERSION:
                raise LedgerError(f"budget ledger {self._path!r} has schema version {version}, newer than "
                                  f"this adtarget supports ({SCHEMA_VERSION})")
            for target, statements in MIGRATIONS:
                if target > version:
                    for statement in statements:
                        conn.execute(statement)
                    if target in _DATA_STEPS:
                        _DATA_STEPS[target](conn, self._now())
                    conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                                 (target, self._now()))

    def _schema_version(self, conn: sqlite3.Connection) -> int:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "schema_version" not in tables:
            if tables - {"sqlite_sequence"}:
                raise LedgerError(f"{self._path!r} is an SQLite file but not an adtarget budget ledger "
                                  f"(tables {sorted(tables)})")
            return 0
        return int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0])

    @property
    def schema_version(self) -> int:
        """The schema version of the file."""
        with self._transaction(write=False) as conn:
            return self._schema_version(conn)

    # --- time and caps -----------------------------------------------------------------------------
    def _now(self) -> int:
        return math.floor(self._clock())

    @staticmethod
    def _caps(conn: sqlite3.Connection) -> BudgetCaps:
        row = conn.execute(
            "SELECT advertiser_epsilon, advertiser_delta, global_epsilon, global_delta, window_seconds, "
            "window_origin FROM settings WHERE id = 1").fetchone()
        if row is None:
            raise _CorruptValue("its settings row is missing")
        a_eps, a_delta, g_eps, g_delta, seconds, origin = row
        if not (_is_int(seconds) and _is_int(origin) and 0 < seconds <= _MAX_WINDOW_S and abs(origin) < 2**40):
            raise _CorruptValue("the stored budget window is not a whole number of seconds up to 100 years")
        return BudgetCaps(_stored(a_eps, a_delta, "advertiser cap"), _stored(g_eps, g_delta, "global cap"),
                          seconds / _DAY, origin)

    @staticmethod
    def _window_at(caps: BudgetCaps, ts: int) -> tuple[int, int]:
        length = round(caps.window_days * _DAY)
        start = caps.window_origin + ((ts - caps.window_origin) // length) * length
        return start, start + length

    @property
    def caps(self) -> BudgetCaps:
        """The current caps and window length."""
        with self._transaction(write=False) as conn:
            return self._caps(conn)

    def set_caps(self, *, advertiser_cap: PrivacyBudget | None = None, global_cap: PrivacyBudget | None = None,
                 window_days: int | None = None) -> BudgetCaps:
        """Change the default per-advertiser cap, the global cap and/or the window length; returns the new caps.

        Spend already recorded keeps its window; a spend row counts against every window it overlaps. An
        advertiser registered with its own cap keeps it (:meth:`set_advertiser_cap`).
        """
        for cap in (advertiser_cap, global_cap):
            if cap is not None:
                _checked_budget(cap)
        if window_days is not None and (not isinstance(window_days, int) or isinstance(window_days, bool)
                                        or not 1 <= window_days <= 3660):
            raise ParameterError(f"window_days must be an integer in [1, 3660], got {window_days!r}")
        with self._transaction() as conn:
            old = self._caps(conn)
            adv, glob = advertiser_cap or old.advertiser_cap, global_cap or old.global_cap
            seconds = window_days * _DAY if window_days is not None else round(old.window_days * _DAY)
            conn.execute("UPDATE settings SET advertiser_epsilon = ?, advertiser_delta = ?, global_epsilon = ?, "
                         "global_delta = ?, window_seconds = ? WHERE id = 1",
                         (adv.epsilon, adv.delta, glob.epsilon, glob.delta, seconds))
            return self._caps(conn)

    # --- advertisers -------------------------------------------------------------------------------
    @staticmethod
    def _advertiser_row(conn: sqlite3.Connection, advertiser_id: str) -> Advertiser | None:
        row = conn.execute("SELECT advertiser, display_name, epsilon_cap, delta_cap, registered_at FROM "
                           "advertisers WHERE advertiser = ?", (advertiser_id,)).fetchone()
        if row is None:
            return None
        cap = None if row[2] is None else _stored(row[2], row[3], "advertiser cap")
        return Advertiser(_stored_advertiser(row[0], row[1]), row[1], cap, _iso(row[4]))

    def _registered(self, conn: sqlite3.Connection, name: Any) -> Advertiser:
        """The registered advertiser ``name`` stands for, or UnknownAdvertiserError."""
        canonical = canonical_advertiser(name)
        found = self._advertiser_row(conn, canonical)
        if found is not None:
            return found
        like = conn.execute("SELECT advertiser FROM advertisers WHERE skeleton = ?",
                            (skeleton(canonical),)).fetchone()
        hint = (f"; it looks like the registered advertiser {like[0]!r} but is a different string (a look-alike "
                "is never a second advertiser)") if like else \
            "; register it first (adtarget advertiser add NAME, or BudgetLedger.register_advertiser)"
        raise UnknownAdvertiserError(f"advertiser {name!r} is not registered in budget ledger {self._path!r}{hint}")

    def register_advertiser(self, name: str, *, cap: PrivacyBudget | None = None) -> Advertiser:
        """Register an advertiser under its canonical id; idempotent for the same canonical id.

        Parameters
        ----------
        name : str
            Any name; ``Acme``, ``ACME`` and ``ａｃｍｅ`` are one advertiser (canonical id ``acme``).
        cap : PrivacyBudget, optional
            Its own per-window cap (default: the ledger's advertiser cap). Given for an advertiser already
            registered, it must equal that advertiser's cap (change it with :meth:`set_advertiser_cap`).

        Raises
        ------
        ParameterError
            The name is not a valid advertiser name, or it looks like (same confusable skeleton) another
            registered advertiser, or ``cap`` contradicts the registered one.
        """
        canonical = canonical_advertiser(name)
        if cap is not None:
            _checked_budget(cap)
        key = skeleton(canonical)
        with self._transaction() as conn:
            found = self._advertiser_row(conn, canonical)
            if found is not None:
                if cap is not None and found.cap != cap:
                    raise ParameterError(f"advertiser {canonical!r} is registered with cap {found.cap or 'default'}, "
                                         f"got cap={cap}; change it with set_advertiser_cap")
                return found
            like = conn.execute("SELECT advertiser FROM advertisers WHERE skeleton = ?", (key,)).fetchone()
            if like is not None:
                raise ParameterError(f"advertiser {name!r} looks like the registered advertiser {like[0]!r} "
                                     "(same confusable skeleton): one advertiser cannot be registered twice")
            conn.execute("INSERT INTO advertisers (advertiser, display_name, skeleton, epsilon_cap, delta_cap, "
                         "registered_at) VALUES (?, ?, ?, ?, ?, ?)",
                         (canonical, unicodedata.normalize("NFC", name), key,
                          None if cap is None else cap.epsilon, None if cap is None else cap.delta, self._now()))
            registered = self._advertiser_row(conn, canonical)
            assert registered is not None
            return registered

    def advertiser(self, name: str) -> Advertiser:
        """The registered advertiser ``name`` stands for (any spelling of its canonical id)."""
        with self._transaction(write=False) as conn:
            return self._registered(conn, name)

    def advertisers(self) -> list[Advertiser]:
        """Every registered advertiser, by canonical id."""
        with self._transaction(write=False) as conn:
            ids = [r[0] for r in conn.execute("SELECT advertiser FROM advertisers ORDER BY advertiser")]
            return [a for a in (self._advertiser_row(conn, i) for i in ids) if a is not None]

    def set_advertiser_cap(self, name: str, cap: PrivacyBudget | None) -> Advertiser:
        """Give a registered advertiser its own cap, or (``None``) the ledger's advertiser cap again."""
        if cap is not None:
            _checked_budget(cap)
        with self._transaction() as conn:
            who = self._registered(conn, name)
            conn.execute("UPDATE advertisers SET epsilon_cap = ?, delta_cap = ? WHERE advertiser = ?",
                         (None if cap is None else cap.epsilon, None if cap is None else cap.delta,
                          who.advertiser_id))
            updated = self._advertiser_row(conn, who.advertiser_id)
            assert updated is not None
            return updated

    # --- spending ----------------------------------------------------------------------------------
    @staticmethod
    def _check_spend_rows(conn: sqlite3.Connection) -> None:
        """Every spend row's window is two whole epoch seconds, start before end (a row edited to text would
        silently fall out of every window's sum)."""
        for table in ("spend", "definition_spend"):
            bad = conn.execute(f"SELECT 1 FROM {table} WHERE typeof(window_start) <> 'integer' "  # noqa: S608
                               "OR typeof(window_end) <> 'integer' OR window_start >= window_end LIMIT 1").fetchone()
            if bad is not None:
                raise _CorruptValue(f"a stored {table.replace('_', ' ')} window is not whole epoch seconds")

    @staticmethod
    def _spent(conn: sqlite3.Connection, window: tuple[int, int], advertiser: str | None) -> tuple[Spend, int]:
        """What ``advertiser`` (None: everyone, globally) has spent in ``window`` (releases and definitions), and
        how many charges that is."""
        where = "WHERE window_start < ? AND window_end > ? AND advertiser = ?"
        who = advertiser if advertiser is not None else ""
        rows = conn.execute(f"SELECT epsilon, delta FROM definition_spend {where}",  # noqa: S608 (constant)
                            (window[1], window[0], who)).fetchall()
        spends = [spend_of(*_stored_amounts(e, d)) for e, d in rows]
        sql = ("SELECT epsilon, delta, rdp_events, basic_epsilon, basic_delta FROM spend "
               "WHERE window_start < ? AND window_end > ?")
        args: tuple[Any, ...] = (window[1], window[0])
        if advertiser is not None:
            sql, args = sql + " AND advertiser = ?", (*args, advertiser)
        for e, d, events, b_eps, b_delta in conn.execute(sql, args):
            eps, delta = _stored_amounts(e, d)
            spends.append(spend_of(eps, delta, _stored_accounting(eps, delta, events, b_eps, b_delta)))
        return total(spends), len(spends)

    @staticmethod
    def _route(conn: sqlite3.Connection, window: tuple[int, int], scope: str, n_charges: int,
               first: Spend | None, cap: PrivacyBudget) -> tuple[str, bool]:
        """(route, new) of ``scope``'s window (``""``: global): the stored one; else ``basic`` when the window
        already holds charges (written before routes existed, or under another window length); else the one
        ``first`` chooses (``new``: to be stored with it), or ``basic`` with no charge to choose."""
        stored = _stored_route(conn, scope, window)
        if stored is not None:
            return stored, False
        if first is None:
            return "basic", False
        return ("basic" if n_charges else choose_route(first, cap)), True

    def _check_caps(self, conn: sqlite3.Connection, caps: BudgetCaps, who: Advertiser | None,
                    requests: tuple[PrivacyBudget, PrivacyBudget], spends: tuple[Spend, Spend],
                    window: tuple[int, int]) -> dict[str, tuple[str, bool]]:
        """``requests`` (for the advertiser, globally; ``spends`` describe them) fit the advertiser's (if any)
        and the global cap under each window's route; returns {scope: (route, new)} (scope ``""``: global)."""
        scopes: list[tuple[str, PrivacyBudget, str | None, PrivacyBudget, Spend]] = [
            ("all advertisers (global cap)", caps.global_cap, None, requests[1], spends[1])]
        if who is not None:
            scopes.insert(0, (f"advertiser {who.advertiser_id!r}", who.cap or caps.advertiser_cap,
                              who.advertiser_id, requests[0], spends[0]))
        routes: dict[str, tuple[str, bool]] = {}
        for label, cap, name, budget, request in scopes:
            spent, n_charges = self._spent(conn, window, name)
            route, new = self._route(conn, window, name or "", n_charges, request, cap)
            routes[name or ""] = (route, new)
            if not fits(route, total([spent, request]), cap):
                subject = f"advertiser {who.advertiser_id!r}" if who is not None else "a segment definition"
                raise BudgetExhaustedError(
                    f"privacy budget exhausted for {subject}: requested {budget}, remaining "
                    f"{left(route, spent, cap)} for {label} (cap {cap}; {_ROUTE_NAMES[route]}) in window "
                    f"{_iso(window[0])}..{_iso(window[1])}; nothing was spent")
        return routes

    def _store_routes(self, conn: sqlite3.Connection, routes: dict[str, tuple[str, bool]],
                      window: tuple[int, int]) -> None:
        conn.executemany("INSERT INTO window_routes (scope, window_start, window_end, route, chosen_at) "
                         "VALUES (?, ?, ?, ?, ?)",
                         [(scope, window[0], window[1], route, self._now())
                          for scope, (route, new) in routes.items() if new])

    def _charge_window(self, caps: BudgetCaps, window_start: Any) -> tuple[int, int]:
        current = self._window_at(caps, self._now())
        if window_start is None:
            return current
        ts = int(window_start.timestamp()) if isinstance(window_start, datetime) and window_start.tzinfo \
            else window_start
        if not isinstance(ts, int) or isinstance(ts, bool) or ts != current[0]:
            raise ParameterError(f"window_start must be the start of the current window {_iso(current[0])} "
                                 f"(epoch {current[0]}), got {window_start!r}: a release is charged to the "
                                 f"window in which it is emitted")
        return current

    @staticmethod
    def _definition_budget(conn: sqlite3.Connection, artefact_id: str, advertiser: str,
                           window: tuple[int, int]) -> PrivacyBudget | None:
        row = conn.execute("SELECT epsilon, delta FROM definition_spend WHERE artefact_id = ? AND advertiser = ? "
                           "AND window_start = ?", (artefact_id, advertiser, window[0])).fetchone()
        return None if row is None else _stored(row[0], row[1], "definition spend")

    def _insert_definition(self, conn: sqlite3.Connection, artefact_id: str, advertiser: str,
                           budget: PrivacyBudget, window: tuple[int, int]) -> None:
        conn.execute("INSERT INTO definition_spend (artefact_id, advertiser, epsilon, delta, window_start, "
                     "window_end, charged_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (artefact_id, advertiser, budget.epsilon, budget.delta, window[0], window[1], self._now()))

    def charge_definition(self, artefact_id: str, budget: PrivacyBudget) -> bool:
        """Charge a DP-derived segment definition (a DP k-means fit, a DP proxy audit) against the global cap.

        Called before the definition is computed. Once per ``artefact_id`` and window: returns False (nothing
        new spent) when it was charged in the current window already. Every advertiser who later receives
        segments depending on it is charged its budget too (``charge(..., definitions=...)``).
        """
        key, budget = _checked_key(artefact_id, "artefact_id"), _checked_budget(budget)
        with self._transaction() as conn:
            caps = self._caps(conn)
            window = self._window_at(caps, self._now())
            if self._same_definition(conn, key, "", budget, window):
                return False
            one = spend_of(budget.epsilon, budget.delta)
            routes = self._check_caps(conn, caps, None, (budget, budget), (one, one), window)
            self._insert_definition(conn, key, "", budget, window)
            self._store_routes(conn, routes, window)
            return True

    def _same_definition(self, conn: sqlite3.Connection, artefact_id: str, advertiser: str, budget: PrivacyBudget,
                         window: tuple[int, int]) -> bool:
        """True when ``artefact_id`` is charged to ``advertiser`` in ``window`` already (with this budget)."""
        found = self._definition_budget(conn, artefact_id, advertiser, window)
        if found is not None and not _same_budget(found, budget):
            raise ParameterError(f"definition {artefact_id!r} was charged with {found}, got {budget}")
        return found is not None

    def charge(self, advertiser: str, budget: PrivacyBudget, query_key: str, *,
               window_start: int | datetime | None = None,
               definitions: Iterable[tuple[str, PrivacyBudget]] = (),
               accounting: ReleaseAccounting | None = None) -> Charge:
        """Record the spending of ``budget`` by ``advertiser`` for ``query_key``, before anything is emitted.

        Parameters
        ----------
        advertiser : str
            A registered advertiser, in any spelling of its canonical id.
        budget : PrivacyBudget
            The (ε, δ) of the whole release by basic composition of its blocks; must be finite. It is what a
            window under basic composition is charged.
        query_key : str
            Hash of the release spec and public facts. A key seen before returns its charge without new
            spending (``new_spend=False``) and its stored report, if any.
        window_start : int or aware datetime, optional
            Asserts the accounting window (epoch seconds of its start); a release is always charged to the
            window containing now, so any other value raises ParameterError.
        definitions : iterable of (artefact_id, PrivacyBudget), default ()
            The DP-derived definitions the released segments depend on. Each is charged to this advertiser
            once per window (and globally, if it was not charged when it was made); all or nothing.
        accounting : ReleaseAccounting, optional
            The release's blocks (Gaussian noise multipliers, pure ε, an (ε, δ) remainder), for windows composed
            by Rényi DP (zCDP); None: the release is one (ε, δ)-DP block. Its parts must lie within ``budget``.
            A reused ``query_key`` keeps the accounting stored with it.

        Returns
        -------
        Charge
            ``definitions_charged`` names the definitions this call charged to the advertiser; ``route`` and
            ``global_route`` say how the advertiser's and the global window compose (``"basic"``, ``"rdp"``).

        Raises
        ------
        UnknownAdvertiserError
            ``advertiser`` is not registered.
        BudgetExhaustedError
            The advertiser's or the global cap would be exceeded in the current window, composed by that
            window's route; nothing is spent.
        ParameterError
            Invalid arguments, or ``query_key`` was charged with another advertiser or budget.
        """
        budget, key = _checked_budget(budget), _checked_key(query_key)
        accounting = check_accounting(budget, accounting)
        wanted = _checked_definitions(definitions)
        with self._transaction() as conn:
            who = self._registered(conn, advertiser)
            caps = self._caps(conn)  # read (and checked) on every charge, a reused one too: a corrupt ledger is refused
            self._check_spend_rows(conn)
            found = self._find(conn, key)
            if found is not None:
                self._check_reused_definitions(conn, found, who.advertiser_id, wanted)
                return self._reused(found, who.advertiser_id, budget, accounting)
            window = self._charge_window(caps, window_start)
            new_global = [(a, b) for a, b in wanted if not self._same_definition(conn, a, "", b, window)]
            new_use = [(a, b) for a, b in wanted if not self._same_definition(conn, a, who.advertiser_id, b, window)]
            release = spend_of(budget.epsilon, budget.delta, accounting)
            spends = (total([release, *(spend_of(b.epsilon, b.delta) for _, b in new_use)]),
                      total([release, *(spend_of(b.epsilon, b.delta) for _, b in new_global)]))
            routes = self._check_caps(conn, caps, who, (_plus(budget, new_use), _plus(budget, new_global)), spends,
                                      window)
            for artefact, cost in new_global:
                self._insert_definition(conn, artefact, "", cost, window)
            for artefact, cost in new_use:
                self._insert_definition(conn, artefact, who.advertiser_id, cost, window)
            basic = budget if accounting is None else accounting.basic
            cur = conn.execute(
                "INSERT INTO spend (advertiser, epsilon, delta, query_key, window_start, window_end, charged_at, "
                "status, rdp_events, basic_epsilon, basic_delta) VALUES (?, ?, ?, ?, ?, ?, ?, 'charged', ?, ?, ?)",
                (who.advertiser_id, budget.epsilon, budget.delta, key, window[0], window[1], self._now(),
                 events_json(accounting), basic.epsilon if basic else 0.0, basic.delta if basic else 0.0))
            self._store_routes(conn, routes, window)
            return Charge(int(cur.lastrowid or 0), who.advertiser_id, budget, key, window[0], window[1], "charged",
                          True, None, tuple(a for a, _ in new_use), accounting, routes[who.advertiser_id][0],
                          routes[""][0])

    @staticmethod
    def _find(conn: sqlite3.Connection, key: str) -> Charge | None:
        row = conn.execute("SELECT id, advertiser, epsilon, delta, window_start, window_end, status, report_json, "
                           "rdp_events, basic_epsilon, basic_delta FROM spend WHERE query_key = ?", (key,)).fetchone()
        if row is None:
            return None
        budget = _stored(row[2], row[3], "spend")
        accounting = _stored_accounting(budget.epsilon, budget.delta, row[8], row[9], row[10])
        routes = [_stored_route(conn, scope, (row[4], row[5])) or "basic" for scope in (str(row[1]), "")]
        return Charge(row[0], row[1], budget, key, row[4], row[5], row[6], False, row[7], (), accounting, *routes)

    @staticmethod
    def _reused(found: Charge, advertiser: str, budget: PrivacyBudget, accounting: Any) -> Charge:
        """The stored charge of a repeated key, if it was charged exactly as now asked: the same advertiser,
        budget and accounting (a key charged earlier with a cheaper accounting would otherwise let a release
        emit under noise the ledger never priced)."""
        if found.advertiser != advertiser:
            raise ParameterError(f"query_key {found.query_key!r} was charged to another advertiser, "
                                 f"not to {advertiser!r}")
        if not _same_budget(found.budget, budget):
            raise ParameterError(f"query_key {found.query_key!r} was charged with {found.budget}, "
                                 f"got {budget}")
        if not _same_accounting(found.accounting, accounting, budget):
            raise ParameterError(f"query_key {found.query_key!r} was charged with another accounting than this "
                                 f"release's; make a new query")
        return found

    def _check_reused_definitions(self, conn: sqlite3.Connection, found: Charge, advertiser: str,
                                  wanted: list[tuple[str, PrivacyBudget]]) -> None:
        """A repeated key must have charged every DP-derived definition it now names to the advertiser in its
        window (else a release would emit segments whose definition the advertiser never paid for)."""
        window = (found.window_start, found.window_end)
        missing = [a for a, b in wanted if not self._same_definition(conn, a, advertiser, b, window)]
        if missing:
            raise ParameterError(f"query_key {found.query_key!r} was charged without the DP-derived definition "
                                 f"{missing[0]!r} it now names; make a new query")

    # --- reports -----------------------------------------------------------------------------------
    def _store_report(self, charge_id: int, report_json: str) -> str:
        """Attach the report of a charge; returns the report to emit (the first one stored wins).

        Private to the release (``release_counts``): a public method would let anyone holding the ledger
        plant a report that a later identical release hands out as its stored one (red-team B7).

        Emit exactly what this returns: if another process stored a report for the same charge first, that
        report is returned and ``report_json`` is discarded, so one spend never yields two noisy reports.
        """
        if not isinstance(charge_id, int) or isinstance(charge_id, bool):
            raise ParameterError(f"charge_id must be an integer, got {type(charge_id).__name__}")
        if not isinstance(report_json, str):
            raise ParameterError(f"report_json must be a JSON string, got {type(report_json).__name__}")
        try:
            json.loads(report_json)
        except ValueError as exc:
            raise ParameterError(f"report_json must be valid JSON ({exc.__class__.__name__} at "
                                 f"{getattr(exc, 'pos', '?')})") from None
        with self._transaction() as conn:
            row = conn.execute("SELECT report_json FROM spend WHERE id = ?", (charge_id,)).fetchone()
            if row is None:
                raise ParameterError(f"charge_id must name an existing charge, got {charge_id}")
            if row[0] is not None:
                return str(row[0])
            conn.execute("UPDATE spend SET status = 'reported', report_json = ?, reported_at = ? WHERE id = ?",
                         (report_json, self._now(), charge_id))
            return report_json

    def lookup(self, query_key: str) -> str | None:
        """The stored report of ``query_key``, or None when it was never charged or has no report yet."""
        key = _checked_key(query_key)
        with self._transaction(write=False) as conn:
            row = conn.execute("SELECT report_json FROM spend WHERE query_key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    # --- reading -----------------------------------------------------------------------------------
    def remaining(self, advertiser: str) -> tuple[RemainingBudget, RemainingBudget]:
        """(advertiser_left, global_left) in the window containing now, each clipped at 0: the cap minus what
        the window has spent composed by its route (basic composition, or Rényi DP for a window of Gaussian
        releases)."""
        with self._transaction(write=False) as conn:
            who = self._registered(conn, advertiser)
            caps = self._caps(conn)
            self._check_spend_rows(conn)
            window = self._window_at(caps, self._now())
            return (self._left(conn, window, who.advertiser_id, who.cap or caps.advertiser_cap),
                    self._left(conn, window, None, caps.global_cap))

    def _left(self, conn: sqlite3.Connection, window: tuple[int, int], advertiser: str | None,
              cap: PrivacyBudget) -> RemainingBudget:
        spent, n_charges = self._spent(conn, window, advertiser)
        route, _ = self._route(conn, window, advertiser or "", n_charges, None, cap)
        return left(route, spent, cap)

    def show(self) -> list[dict[str, Any]]:
        """One row per registered advertiser (by canonical id), then the global row (for ``budget show``)."""
        with self._transaction(write=False) as conn:
            caps = self._caps(conn)
            self._check_spend_rows(conn)
            window = self._window_at(caps, self._now())
            ids = [r[0] for r in conn.execute("SELECT advertiser FROM advertisers ORDER BY advertiser")]
            who = [a for a in (self._advertiser_row(conn, i) for i in ids) if a is not None]
            rows = [self._row(conn, "advertiser", a.advertiser_id, a.cap or caps.advertiser_cap, window)
                    for a in who]
            return [*rows, self._row(conn, "global", None, caps.global_cap, window)]

    def _row(self, conn: sqlite3.Connection, scope: str, advertiser: str | None, cap: PrivacyBudget,
             window: tuple[int, int]) -> dict[str, Any]:
        spent, n_charges = self._spent(conn, window, advertiser)
        route, _ = self._route(conn, window, advertiser or "", n_charges, None, cap)
        eps, delta = composed_spend(route, spent, cap)
        rest = left(route, spent, cap)
        return {"scope": scope, "advertiser": advertiser, "window_start": _iso(window[0]),
                "window_end": _iso(window[1]), "epsilon_spent": eps, "delta_spent": delta,
                "epsilon_cap": cap.epsilon, "delta_cap": cap.delta,
                "epsilon_remaining": rest.epsilon, "delta_remaining": rest.delta, "accounting": route}


def _same_budget(a: PrivacyBudget, b: PrivacyBudget) -> bool:
    return math.isclose(a.epsilon, b.epsilon, rel_tol=TOLERANCE) and math.isclose(a.delta, b.delta, rel_tol=TOLERANCE)


def _plus(budget: PrivacyBudget, extra: list[tuple[str, PrivacyBudget]]) -> PrivacyBudget:
    return PrivacyBudget(math.fsum([budget.epsilon, *(b.epsilon for _, b in extra)]),
                         min(math.fsum([budget.delta, *(b.delta for _, b in extra)]), 1 - 1e-15))


def _checked_definitions(definitions: Any) -> list[tuple[str, PrivacyBudget]]:
    if isinstance(definitions, (str, bytes)):
        raise ParameterError("definitions must be a sequence of (artefact_id, PrivacyBudget) pairs, got a string")
    out: dict[str, PrivacyBudget] = {}
    for item in definitions:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise ParameterError(f"definitions must hold (artefact_id, PrivacyBudget) pairs, got {item!r}")
        artefact, budget = _checked_key(item[0], "artefact_id"), _checked_budget(item[1])
        if artefact in out and not _same_budget(out[artefact], budget):
            raise ParameterError(f"definitions name {artefact!r} twice with different budgets")
        out[artefact] = budget
    return sorted(out.items())
