"""Type stub of adtarget.events: the names below load on first use (``lazy_loader``, SPEC 1)."""

from ._ingest import QUARANTINE_REASONS as QUARANTINE_REASONS
from ._ingest import EventBatch as EventBatch
from ._ingest import IngestResult as IngestResult
from ._ingest import Quarantine as Quarantine
from ._ingest import ingest as ingest
from ._pseudonym import Pseudonymizer as Pseudonymizer
from ._schema import EVENT_KINDS as EVENT_KINDS
from ._schema import OPTIONAL_COLUMNS as OPTIONAL_COLUMNS
from ._schema import REQUIRED_COLUMNS as REQUIRED_COLUMNS

__all__ = ["EVENT_KINDS", "OPTIONAL_COLUMNS", "QUARANTINE_REASONS", "REQUIRED_COLUMNS", "EventBatch",
           "IngestResult", "Pseudonymizer", "Quarantine", "ingest"]
