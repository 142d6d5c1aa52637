"""Type stub of adtarget.gate: the names below load on first use (``lazy_loader``, SPEC 1)."""

from ._gate import EligibleEvents as EligibleEvents
from ._gate import SensitiveAudit as SensitiveAudit
from ._gate import apply_gate as apply_gate
from ._policy import EligibilityPolicy as EligibilityPolicy
from ._rules import EXCLUSION_RULES as EXCLUSION_RULES

__all__ = ["EXCLUSION_RULES", "EligibilityPolicy", "EligibleEvents", "SensitiveAudit", "apply_gate"]
