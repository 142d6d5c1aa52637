"""Ingest: events in the event contract (DESIGN.md §3 "Events") become an ``EventBatch``.

Sources (Parquet, CSV, Arrow, pandas, mappings of arrays) are read into named columns (``_sources``); identifying
columns are refused by name (``_header_checks``, ``_schema``, promise P1); values are parsed (``_parsing``) and
every row is accepted or quarantined with its first reason (``_validation``); person ids are factorised
(``_person_ids``) and replaced by keyed pseudonyms (``_pseudonym``, promise P11). The compiled kernels of these
steps sit beside them (``_factorize_kernels``, ``_blake2b_kernels``; SipHash in numpy: ``_siphash``).
"""

from adtarget.events._ingest import QUARANTINE_REASONS, EventBatch, IngestResult, Quarantine, ingest
from adtarget.events._pseudonym import Pseudonymizer
from adtarget.events._schema import EVENT_KINDS, OPTIONAL_COLUMNS, REQUIRED_COLUMNS

__all__ = ["EVENT_KINDS", "OPTIONAL_COLUMNS", "QUARANTINE_REASONS", "REQUIRED_COLUMNS", "EventBatch",
           "IngestResult", "Pseudonymizer", "Quarantine", "ingest"]
