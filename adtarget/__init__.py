"""adtarget: privacy-preserving ad targeting.

Cross-service usage events pass one eligibility gate (consent, age, deletion, sensitive categories, service scope,
retention, cross-service permission) before they can become interest profiles and segments. Ad teams get
pseudonymous segment assignments; advertisers get only differentially private segment reports.

Public names are loaded lazily so that ``import adtarget`` stays light (no pandas, pyarrow, pyspark or
matplotlib at import time).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> private module that defines it
_EXPORTS: dict[str, str] = {
    # errors
    "AdtargetError": "adtarget.exceptions",
    "BudgetExhaustedError": "adtarget.exceptions",
    "ConsentError": "adtarget.exceptions",
    "InputFormatError": "adtarget.exceptions",
    "LedgerError": "adtarget.exceptions",
    "ParameterError": "adtarget.exceptions",
    "PrivacyLeakWarning": "adtarget.exceptions",
    "ProvenanceError": "adtarget.exceptions",
    "UnknownAdvertiserError": "adtarget.exceptions",
    "RefusedColumnError": "adtarget.exceptions",
    "ReportValidationError": "adtarget.exceptions",
    "SchemaError": "adtarget.exceptions",
    "SensitiveCategoryError": "adtarget.exceptions",
    "TaxonomyError": "adtarget.exceptions",
    # taxonomy, sensitivity, services
    "Taxonomy": "adtarget.reference._taxonomy",
    "SensitivityProfile": "adtarget.reference._sensitivity",
    "SafeTaxonomy": "adtarget.reference._sensitivity",
    "PROFILE_NAMES": "adtarget.reference._sensitivity",
    "Service": "adtarget.reference._services",
    "ServiceRegistry": "adtarget.reference._services",
    # events and the gate
    "EVENT_KINDS": "adtarget.events._schema",
    "EventBatch": "adtarget.events._ingest",
    "IngestResult": "adtarget.events._ingest",
    "Quarantine": "adtarget.events._ingest",
    "QUARANTINE_REASONS": "adtarget.events._ingest",
    "ingest": "adtarget.events._ingest",
    "EligibilityPolicy": "adtarget.gate._policy",
    "EligibleEvents": "adtarget.gate._gate",
    "EXCLUSION_RULES": "adtarget.gate._rules",
    "SensitiveAudit": "adtarget.gate._gate",
    "apply_gate": "adtarget.gate._gate",
    # consent and pseudonymisation
    "Pseudonymizer": "adtarget.events._pseudonym",
    "ConsentLedger": "adtarget.consent",
    "ConsentSnapshot": "adtarget.consent",
    "ImportReport": "adtarget.consent",
    "access_export": "adtarget.rights._access",
    "forget_everywhere": "adtarget.rights._purge",
    "purge_events": "adtarget.rights._purge",
    "purge_assignments": "adtarget.rights._purge",
    "PurgeReport": "adtarget.rights._purge",
    # profiles and segments
    "InterestProfiler": "adtarget.profiles._profiles",
    "InterestProfiles": "adtarget.profiles._profiles",
    "build_profiles": "adtarget.profiles._profiles",
    "TopicSegment": "adtarget.segments._rules",
    "AllOf": "adtarget.segments._rules",
    "AnyOf": "adtarget.segments._rules",
    "SegmentCatalog": "adtarget.segments._rules",
    "SegmentInfo": "adtarget.segments._info",
    "SegmentAssignments": "adtarget.segments._info",
    "DPKMeansSegmenter": "adtarget.segments._dp_kmeans",
    "InMemoryAccountant": "adtarget.budget._accountant",
    "LearnedModel": "adtarget.segments._dp_kmeans",
    "read_assignments_parquet": "adtarget.segments._assignments_read",
    # the advertiser release
    "PrivacyBudget": "adtarget.budget._spec",
    "CountNoise": "adtarget.reports._noise",
    "PartitionSelection": "adtarget.reports._partition",
    "Advertiser": "adtarget.budget._ledger",
    "BudgetLedger": "adtarget.budget._ledger",
    "ReleaseSpec": "adtarget.reports._spec",
    "SegmentReport": "adtarget.reports._report",
    "audit_report": "adtarget.reports._report",
    "ReleaseExplanation": "adtarget.reports._explain",
    "ReleaseResult": "adtarget.reports._release",
    "release": "adtarget.reports._release",
    "release_counts": "adtarget.reports._release",
    "report_policy": "adtarget.reports._release",
    "default_window": "adtarget.reports._release",
    "count_cells": "adtarget.reports._cells",
    "CellCounts": "adtarget.reports._cells",
    "audit_proxies": "adtarget.reports._audit",
    "ProxyAudit": "adtarget.reports._audit",
    "ProxyScreen": "adtarget.segments._screen",
    "validate_report": "adtarget.reports._report",
    # the main job and engines
    "RunSettings": "adtarget.engine._run",
    "RunResult": "adtarget.engine._run",
    "run": "adtarget.engine._run",
    "Engine": "adtarget.engine._protocol",
    "LocalEngine": "adtarget.engine._protocol",
    "SparkEngine": "adtarget.engine._spark",
    "BuildContext": "adtarget.engine._context",
    "Aggregates": "adtarget.engine._aggregates",
    # memory
    "buffer_cache_limit": "adtarget._core._buffers",
    "buffer_stats": "adtarget._core._buffers",
    "release_buffers": "adtarget._core._buffers",
}

__all__ = sorted([*_EXPORTS, "__version__"])


_SUBMODULES = ("synth", "exceptions", "testing")


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"adtarget.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'adtarget' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
