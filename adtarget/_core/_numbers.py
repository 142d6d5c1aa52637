"""Exact numbers for privacy parameters: a built-in ``int``/``float`` (or a numpy scalar) and nothing that
only behaves like one. A subclass of ``float`` can answer every comparison a check asks and a different value
to the noise (``__float__``), so the checks in ``ReleaseSpec``, ``PrivacyBudget`` and ``EligibilityPolicy``
accept only these types and then hold the plain value."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["exact_int", "exact_real"]

_NUMPY_INTS = (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64)
_NUMPY_REALS = (np.float16, np.float32, np.float64, *_NUMPY_INTS)


def exact_int(value: Any) -> int | None:
    """``value`` as a plain ``int`` if it is exactly an ``int`` or a numpy integer scalar (not a bool, not a
    subclass), else None."""
    if type(value) is int:
        return value
    if type(value) in _NUMPY_INTS:
        return int(value)
    return None


def exact_real(value: Any) -> float | None:
    """``value`` as a plain ``float`` if it is exactly an ``int``, a ``float`` or a numpy number scalar (not a
    bool, not a subclass), else None."""
    if type(value) in (int, float):
        return float(value)
    if type(value) in _NUMPY_REALS:
        return float(value)
    return None
