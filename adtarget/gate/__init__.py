"""The eligibility gate: the only constructor of ``EligibleEvents`` (promises P2, P3, P5, P6, P7, P9, P10, P12).

``apply_gate`` joins an ``EventBatch`` with a consent snapshot and the reference data under an
``EligibilityPolicy`` and counts every excluded event under its first rule (``EXCLUSION_RULES``, one table:
``_rules``); its compiled pass over the events is ``_kernels``.
"""

from adtarget.gate._gate import EligibleEvents, SensitiveAudit, apply_gate
from adtarget.gate._policy import EligibilityPolicy
from adtarget.gate._rules import EXCLUSION_RULES

__all__ = ["EXCLUSION_RULES", "EligibilityPolicy", "EligibleEvents", "SensitiveAudit", "apply_gate"]
