"""adtarget: privacy-preserving ad targeting.

Cross-service usage events pass one eligibility gate (consent, age, deletion, sensitive categories, service scope,
retention, cross-service permission) before they can become interest profiles and segments. Ad teams get
pseudonymous segment assignments; advertisers get only differentially private segment reports.

The package has one subpackage per stage of the data flow (docs/architecture.md has the module map):
``reference`` → ``events`` (ingest) → ``consent`` → ``gate`` → ``profiles`` → ``segments`` → ``reports`` (the
release), with ``budget`` beside them, ``engine`` (the main job, ``run``) on top, and ``rights``, ``synth``,
``testing`` and ``cli``. The names most programs need are here; each stage package exports the rest.

Names load on first use (``lazy_loader``, SPEC 1), so ``import adtarget`` stays light (no pandas, pyarrow,
pyspark, scikit-learn or matplotlib); ``__init__.pyi`` lists them with their types for type checkers.
"""

from typing import TYPE_CHECKING

import lazy_loader as _lazy

__version__ = "0.1.0"

# public names: __init__.pyi (what type checkers read); each loads with its module on first use
_getattr, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)

# names that were top-level before the stages had packages of their own -> where they live now
_MOVED: dict[str, str] = {
    **dict.fromkeys(['Advertiser'], "adtarget.budget"),
    **dict.fromkeys(['ConsentSnapshot', 'ImportReport'], "adtarget.consent"),
    **dict.fromkeys(['Aggregates', 'BuildContext', 'Engine'], "adtarget.engine"),
    **dict.fromkeys(['EVENT_KINDS', 'IngestResult', 'QUARANTINE_REASONS', 'Quarantine'], "adtarget.events"),
    **dict.fromkeys(['BudgetExhaustedError', 'ConsentError', 'InputFormatError', 'LedgerError', 'ParameterError', 'ProvenanceError', 'RefusedColumnError', 'ReportValidationError', 'SchemaError', 'SensitiveCategoryError', 'TaxonomyError', 'UnknownAdvertiserError'], "adtarget.exceptions"),
    **dict.fromkeys(['EXCLUSION_RULES', 'SensitiveAudit'], "adtarget.gate"),
    **dict.fromkeys(['InterestProfiles'], "adtarget.profiles"),
    **dict.fromkeys(['PROFILE_NAMES', 'Service'], "adtarget.reference"),
    **dict.fromkeys(['CellCounts', 'CountNoise', 'PartitionSelection', 'ProxyAudit', 'ReleaseExplanation', 'ReleaseResult', 'audit_proxies', 'audit_report', 'count_cells', 'default_window', 'release_counts', 'report_policy', 'validate_report'], "adtarget.reports"),
    **dict.fromkeys(['PurgeReport', 'purge_assignments', 'purge_events'], "adtarget.rights"),
    **dict.fromkeys(['LearnedModel', 'ProxyScreen', 'SegmentInfo', 'read_assignments_parquet'], "adtarget.segments"),
}

if not TYPE_CHECKING:  # type checkers read __init__.pyi: an unknown name is an error there, never Any

    def __getattr__(name: str):
        try:
            return _getattr(name)
        except AttributeError:
            home = _MOVED.get(name)
            if home is None:
                raise
            raise AttributeError(f"adtarget.{name} moved to {home}.{name} (import it from {home})") from None
