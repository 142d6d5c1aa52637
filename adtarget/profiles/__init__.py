"""Interest profiles: per-person, time-decayed interest scores over the safe categories of a taxonomy
(persons × categories, sparse), built only from ``EligibleEvents``. The compiled kernels (the per-person event
cap, the CSR build) are ``_kernels``."""

import lazy_loader as _lazy

# public names: __init__.pyi (what type checkers read); each loads with its module on first use
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
