"""The one place adtarget's errors and warnings live.

Every error derives from :class:`AdtargetError` and also from the builtin that callers already catch
(``ValueError``, ``TypeError``, ``RuntimeError``, ``FileNotFoundError``), so ``except ValueError`` keeps working.
Messages name the parameter, column or row, the constraint, and the value received — never a person id,
a pseudonym or a key.
"""

from __future__ import annotations

import warnings

__all__ = [
    "AdtargetError",
    "BudgetExhaustedError",
    "ConsentError",
    "InputFormatError",
    "LedgerError",
    "ParameterError",
    "PrivacyLeakWarning",
    "ProvenanceError",
    "RefusedColumnError",
    "ReportValidationError",
    "SchemaError",
    "SensitiveCategoryError",
    "TaxonomyError",
    "UnknownAdvertiserError",
]


class AdtargetError(Exception):
    """Root of every error raised by adtarget."""


class ParameterError(AdtargetError, ValueError):
    """A parameter is out of its documented domain (the message names it, the constraint and the value)."""


class UnknownAdvertiserError(ParameterError):
    """A release or budget query names an advertiser the budget ledger does not have registered (the message
    says which registered advertiser it looks like, if any)."""


class SchemaError(AdtargetError, ValueError):
    """Input columns or their types do not match the contract."""


class RefusedColumnError(SchemaError):
    """An input has a column adtarget refuses: an identifying column, or an unknown one."""

    def __init__(self, message: str, columns: tuple[str, ...]) -> None:
        super().__init__(message)
        self.columns = columns


class InputFormatError(AdtargetError, ValueError):
    """An input file is empty, missing, or not in the format its name or the caller says."""


class TaxonomyError(AdtargetError, ValueError):
    """A taxonomy file is malformed, or a node id is not in the taxonomy."""


class SensitiveCategoryError(TaxonomyError):
    """A segment or query names a sensitive taxonomy node (or one of its descendants)."""


class ConsentError(AdtargetError, ValueError):
    """Consent records are malformed or inconsistent."""


class LedgerError(AdtargetError, RuntimeError):
    """A ledger file (consent or budget) is corrupted, unwritable or of an unknown schema version."""


class BudgetExhaustedError(AdtargetError, RuntimeError):
    """A release would exceed an advertiser's or the global privacy budget; nothing was spent."""


class ReportValidationError(AdtargetError, ValueError):
    """A segment report does not conform to the adtarget.segment_report schema (v2, or a stored v1) or to the policy."""


class ProvenanceError(AdtargetError, TypeError):
    """An object that only one adtarget function may make (EligibleEvents, SegmentAssignments, CellCounts, ...)
    was made, copied or altered some other way; the message names what was refused and who makes it."""


class PrivacyLeakWarning(UserWarning):
    """Something weakens the privacy guarantee (seeded noise, bounds read from data, ...). Always shown."""


warnings.simplefilter("always", PrivacyLeakWarning)
