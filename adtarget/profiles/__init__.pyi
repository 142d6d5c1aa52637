"""Type stub of adtarget.profiles: the names below load on first use (``lazy_loader``, SPEC 1)."""

from ._profiles import InterestProfiler as InterestProfiler
from ._profiles import InterestProfiles as InterestProfiles
from ._profiles import build_profiles as build_profiles

__all__ = ["InterestProfiler", "InterestProfiles", "build_profiles"]
