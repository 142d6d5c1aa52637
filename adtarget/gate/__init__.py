"""The eligibility gate: the only constructor of ``EligibleEvents`` (promises P2, P3, P5, P6, P7, P9, P10, P12).

``apply_gate`` joins an ``EventBatch`` with a consent snapshot and the reference data under an
``EligibilityPolicy`` and counts every excluded event under its first rule (``EXCLUSION_RULES``, one table:
``_rules``); its compiled pass over the events is ``_kernels``.
"""

import lazy_loader as _lazy

# public names: __init__.pyi (what type checkers read); each loads with its module on first use
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
