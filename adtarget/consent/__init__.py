"""Consent: the ConsentLedger (SQLite), its imports and snapshots (DESIGN.md §3 "Consent")."""

from __future__ import annotations

from adtarget.consent._contract import CONSENT_COLUMNS
from adtarget.consent._import import IMPORT_REASONS, ConsentImportError, ImportReport
from adtarget.consent._ledger import ConsentLedger
from adtarget.consent._schema import SCHEMA_VERSION
from adtarget.consent._snapshot import ConsentSnapshot

__all__ = [
    "CONSENT_COLUMNS",
    "IMPORT_REASONS",
    "SCHEMA_VERSION",
    "ConsentImportError",
    "ConsentLedger",
    "ConsentSnapshot",
    "ImportReport",
]
