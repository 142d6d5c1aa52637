"""Type stub of adtarget.consent: the names below load on first use (``lazy_loader``, SPEC 1)."""

from ._contract import CONSENT_COLUMNS as CONSENT_COLUMNS
from ._import import IMPORT_REASONS as IMPORT_REASONS
from ._import import ConsentImportError as ConsentImportError
from ._import import ImportReport as ImportReport
from ._ledger import ConsentLedger as ConsentLedger
from ._schema import SCHEMA_VERSION as SCHEMA_VERSION
from ._snapshot import ConsentSnapshot as ConsentSnapshot

__all__ = [
    "CONSENT_COLUMNS",
    "IMPORT_REASONS",
    "SCHEMA_VERSION",
    "ConsentImportError",
    "ConsentLedger",
    "ConsentSnapshot",
    "ImportReport",
]
