"""The gate's exclusion rules, in the one order the gate applies them and its kernel codes them.

An event is excluded under the first rule it breaks: person rules first (in this order), then event rules. The
compiled kernel (``_kernels``) writes an event rule's index in :data:`EVENT_RULES` as its code, and
:data:`SENSITIVE_ONLY` for a sensitive event that breaks no other rule (counted as ``sensitive_category``; the
proxy audit's candidate). Adding a rule is one entry here plus its test in the kernel.
"""

from __future__ import annotations

__all__ = ["EVENT_CODE", "EVENT_RULES", "EXCLUSION_RULES", "PERSON_RULES", "SENSITIVE_ONLY"]

PERSON_RULES: tuple[str, ...] = (
    "no_consent_record",
    "deleted",
    "terminated",
    "opted_out",
    "under_min_age",
    "unknown_age",
    "policy_version",
)
EVENT_RULES: tuple[str, ...] = (
    "service_not_permitted",
    "cross_service_not_permitted",
    "sensitive_category",  # sensitive, and also outside the retention or after the window's end
    "outside_retention",
    "after_window_end",
)
EXCLUSION_RULES: tuple[str, ...] = PERSON_RULES + EVENT_RULES

#: an event rule's code in the kernel
EVENT_CODE: dict[str, int] = {name: code for code, name in enumerate(EVENT_RULES)}
#: sensitive, and no other rule fails
SENSITIVE_ONLY = len(EVENT_RULES)
