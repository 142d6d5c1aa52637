"""Consent: the ConsentLedger (SQLite), its imports and snapshots (DESIGN.md §3 "Consent")."""

from __future__ import annotations

from adtarget._consent._columns import CONSENT_COLUMNS
from adtarget._consent._import import IMPORT_REASONS, ConsentImportError, ImportReport
from adtarget._consent._ledger import ConsentLedger
from adtarget._consent._schema import SCHEMA_VERSION
from adtarget._consent._snapshot import ConsentSnapshot

__all__ = [
    "CONSENT_COLUMNS",
    "IMPORT_REASONS",
    "SCHEMA_VERSION",
    "ConsentImportError",
    "ConsentLedger",
    "ConsentSnapshot",
    "ImportReport",
]
