"""Interest profiles: per-person, time-decayed interest scores over the safe categories of a taxonomy
(persons × categories, sparse), built only from ``EligibleEvents``. The compiled kernels (the per-person event
cap, the CSR build) are ``_kernels``."""

from adtarget.profiles._profiles import InterestProfiler, InterestProfiles, build_profiles

__all__ = ["InterestProfiler", "InterestProfiles", "build_profiles"]
